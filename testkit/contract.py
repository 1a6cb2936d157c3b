"""Every JSON response the tests receive is checked against openapi.json (openapi-core), so the
document cannot drift from the handlers: an undocumented status, a missing or extra field, a
wrong type fails the test that caused it."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Handler
from openapi_core import OpenAPI
from openapi_core.contrib.aiohttp import AIOHTTPOpenAPIWebRequest, AIOHTTPOpenAPIWebResponse
from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound

# The contract as it stands in the repository: what the game server's developers read.
OPENAPI_IN_REPO = Path(__file__).parents[1] / "service" / "image_sidecar" / "openapi.json"


def load_openapi() -> dict:
    return json.loads(OPENAPI_IN_REPO.read_text(encoding="utf-8"))


@cache
def contract() -> OpenAPI:
    return OpenAPI.from_dict(load_openapi())


class ResponseChecker:
    """An outermost middleware for test apps, collecting every violation it sees."""

    def __init__(self) -> None:
        self.violations: list[str] = []

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        # A 405 is the router's answer for a method a path lacks, never an operation's.
        if (
            isinstance(response, web.Response)
            and response.content_type == "application/json"
            and response.status != 405
        ):
            self._check(request, response)
        return response

    def _check(self, request: web.Request, response: web.Response) -> None:
        try:
            contract().validate_response(
                AIOHTTPOpenAPIWebRequest(request, body=None), AIOHTTPOpenAPIWebResponse(response)
            )
        except (PathNotFound, OperationNotFound):
            # A path aiohttp has no route for is its own 404. A route the document lacks is a
            # violation; a documented one can still miss here (a {key} that spans segments).
            resource = request.match_info.route.resource
            if resource is not None and resource.canonical not in load_openapi()["paths"]:
                self.violations.append(f"{resource.canonical}: a route not in openapi.json")
        except Exception as exc:  # every other openapi-core error is a violation
            detail = "; ".join(dict.fromkeys(str(cause)[:300] for cause in _causes(exc)))
            self.violations.append(
                f"{request.method} {request.path_qs} -> {response.status}: {detail}\n"
                f"  body: {response.text[:500] if response.text else ''}"
            )


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception and the schema errors openapi-core nests under it."""
    found = [exc]
    for cause in getattr(exc, "schema_errors", ()) or ():
        found.append(cause)
    if exc.__cause__ is not None:
        found += _causes(exc.__cause__)
    return found

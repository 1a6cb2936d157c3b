"""The domain's exceptions. Each carries its HTTP status; `api.errors` renders them."""

from __future__ import annotations

from typing import Any
from uuid import UUID


class SidecarError(Exception):
    """Base of every error the sidecar reports to a client."""

    status = 500
    code = "internal_error"
    # Whether the answer closes the connection instead of reading the rest of the request.
    close_connection = False

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def details(self) -> dict[str, Any]:
        """What the error body carries besides code and message (the field at fault...)."""
        return {} if self.field is None else {"field": self.field}

    def headers(self) -> dict[str, str]:
        """Headers the answer carries (Retry-After, Content-Range...)."""
        return {}


class InvalidField(SidecarError):
    status = 400
    code = "invalid_field"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", field=field)
        self.reason = message  # what is wrong, without the field's name


class BadRequest(SidecarError):
    status = 400
    code = "bad_request"


class UndecodableBody(BadRequest):
    """A body that does not decode as its Content-Encoding says: the rest of it is not read
    (aiohttp would read it to keep the connection, meet the same error and log it)."""

    close_connection = True


class RequestTimeout(SidecarError):
    """The client did not send its body in time; its connection is closed, not drained."""

    status = 408
    code = "request_timeout"
    close_connection = True


class Unauthorized(SidecarError):
    status = 401
    code = "unauthorized"


class NotFound(SidecarError):
    status = 404
    code = "not_found"


class Conflict(SidecarError):
    """What a request says contradicts what is stored; `field` names the contradiction."""

    status = 409
    code = "conflict"


class AmbiguousGame(Conflict):
    """A destructive call named a code that several games hold, without saying which."""

    code = "ambiguous_game"

    def __init__(self, game_code: str, game_ids: list[UUID]) -> None:
        super().__init__(
            f"{len(game_ids)} games hold the code {game_code}: name one with ?game_id= "
            "or all of them with ?all=true"
        )
        self.game_ids = game_ids

    def details(self) -> dict[str, Any]:
        return {"game_ids": [str(game_id) for game_id in self.game_ids]}


class ImageDamaged(SidecarError):
    """The scrub found the original's bytes damaged or missing, with no intact copy: the image
    is out of service."""

    status = 410
    code = "image_damaged"


class PreconditionFailed(SidecarError):
    """A conditional request (If-Match) whose condition does not hold."""

    status = 412
    code = "precondition_failed"


class RangeNotSatisfiable(SidecarError):
    """A Range that starts past the end of the image (or cannot be parsed)."""

    status = 416
    code = "range_not_satisfiable"

    def __init__(self, message: str, *, size: int) -> None:
        super().__init__(message)
        self.size = size

    def headers(self) -> dict[str, str]:
        return {"Content-Range": f"bytes */{self.size}"}


class PayloadTooLarge(SidecarError):
    status = 413
    code = "too_large"


class UnsupportedEncoding(SidecarError):
    """A request body in a Content-Encoding the server does not decode."""

    status = 415
    code = "unsupported_encoding"


class NotAnImage(SidecarError):
    status = 415
    code = "unsupported_media_type"


class CorruptImage(NotAnImage):
    """The bytes start like an image but do not decode (truncated, garbled)."""

    code = "corrupt_image"


class TooManyPixels(SidecarError):
    """More pixels than IMAGE_MAX_PIXELS: refused from the header, before decoding."""

    status = 413
    code = "too_many_pixels"


class BlockedContent(SidecarError):
    """The bytes were taken down (moderation), or look like bytes that were (`match`)."""

    status = 422
    code = "blocked_content"

    def __init__(self, message: str, *, match: str = "exact") -> None:
        super().__init__(message)
        self.match = match  # exact or lookalike


class RejectedByModeration(SidecarError):
    """The moderation hook refused the picture; `reason` is the hook's, passed on."""

    status = 422
    code = "rejected_by_moderation"

    def __init__(self, reason: str | None) -> None:
        refused = "the moderation hook refused this picture"
        super().__init__(f"{refused}: {reason}" if reason else refused)
        self.reason = reason

    def details(self) -> dict[str, Any]:
        return {} if self.reason is None else {"reason": self.reason}


class ModerationUnavailable(SidecarError):
    """The moderation hook failed and IMAGE_MODERATION_FAILURE is `closed`: retry later."""

    status = 503
    code = "moderation_unavailable"
    retry_after_seconds = 5

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_seconds)}


class DatabaseUnavailable(SidecarError):
    """PostgreSQL did not answer in time; the client should retry."""

    status = 503
    code = "database_unavailable"
    retry_after_seconds = 5

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_seconds)}


class ServiceBusy(SidecarError):
    """The sidecar is overloaded and says so, so that callers back off instead of blaming
    PostgreSQL: every database connection of this process is in use by its own requests, or
    the picture work queued would keep this request waiting too long."""

    status = 503
    code = "busy"

    def __init__(self, message: str, *, retry_after_seconds: int = 1) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_seconds)}


class StorageError(SidecarError):
    """The blob store failed (StorageFull when it is out of space)."""

    status = 500
    code = "storage_error"


class StorageFull(StorageError):
    status = 507
    code = "storage_full"

"""What a setting's value may be: its type in the generated dataclasses, how a raw string
becomes it, and the words a refusal uses to say what was expected."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from image_sidecar.config.limits import limits
from image_sidecar.lifecycle.cron import CronSchedule
from image_sidecar.prompt_cache.costs import GenerationCosts

# Pillow refuses images over this many pixels by itself (its decompression bomb guard).
PILLOW_PIXEL_LIMIT = 89_478_485


class Refused(ValueError):
    """A parser's refusal with a reason worth showing next to what the setting expects."""


@dataclass(frozen=True)
class Kind:
    annotation: str  # the field's type, as written in config/sections.py
    expects: str
    parse: Callable[[str], Any]


def whole(unit: str, *, low: int = 1, high: int | None = None, expects: str = "") -> Kind:
    """A whole number from `low` (default: positive) to `high`."""
    if not expects:
        if high is not None:
            expects = f"a whole number of {unit} from {low} to {high}"
        elif low == 1:
            expects = f"a positive whole number of {unit}"
        else:
            expects = f"a whole number of {unit}, at least {low}"

    def parse(raw: str) -> int:
        value = int(raw)
        if value < low or (high is not None and value > high):
            raise ValueError
        return value

    return Kind("int", expects, parse)


def processes() -> Kind:
    """`auto` (what the container grants: `config.limits`) or a positive whole number."""

    def parse(raw: str) -> int:
        if raw.strip().lower() == "auto":
            return limits().workers()
        value = int(raw)
        if value < 1:
            raise ValueError
        return value

    return Kind("int", "auto or a positive whole number of processes", parse)


def seconds() -> Kind:
    """A positive, finite number of seconds."""

    def parse(raw: str) -> float:
        value = float(raw)
        if not value > 0 or value == float("inf"):
            raise ValueError
        return value

    return Kind("float", "a positive number of seconds", parse)


def flag() -> Kind:
    def parse(raw: str) -> bool:
        value = raw.strip().lower()
        if value in ("1", "true", "yes", "on"):
            return True
        if value in ("0", "false", "no", "off"):
            return False
        raise ValueError

    return Kind("bool", "true or false", parse)


def choice(*options: str) -> Kind:
    """One of `options`, in any case."""

    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in options:
            raise ValueError
        return value

    literal = ", ".join(f'"{option}"' for option in options)
    return Kind(f"Literal[{literal}]", " or ".join(options), parse)


def text(expects: str) -> Kind:
    return Kind("str", expects, str)


def optional_text(expects: str) -> Kind:
    """Any text; empty means unset (None)."""
    return Kind("str | None", expects, lambda raw: raw.strip() or None)


def optional_http_url() -> Kind:
    def parse(raw: str) -> str | None:
        value = raw.strip()
        if not value:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError
        return value

    return Kind("str | None", "an http(s) URL", parse)


def url_prefix() -> Kind:
    """An absolute path or an http(s) URL, without its trailing slash."""

    def parse(raw: str) -> str:
        value = raw.strip().rstrip("/")
        if not (value.startswith("/") or value.startswith(("http://", "https://"))):
            raise ValueError
        return value

    return Kind("str", "an absolute path such as /generated-images or an http(s) URL", parse)


def directory() -> Kind:
    return Kind("Path", "a directory path", Path)


def subset(*options: str) -> Kind:
    """A comma-separated list of `options` (duplicates dropped, order kept), or empty."""

    def parse(raw: str) -> tuple[str, ...]:
        chosen = tuple(dict.fromkeys(p.strip().lower() for p in raw.split(",") if p.strip()))
        if not set(chosen) <= set(options):
            raise ValueError
        return chosen

    return Kind(
        "tuple[str, ...]",
        f"a comma-separated list of {' and '.join(options)}, or empty",
        parse,
    )


def label_set(expects: str) -> Kind:
    """A comma-separated list of label values, compared without case (empty: none)."""

    def parse(raw: str) -> frozenset[str]:
        values = {part.strip().casefold() for part in raw.split(",") if part.strip()}
        if any(len(value) > 50 for value in values):
            raise ValueError
        return frozenset(values)

    return Kind("frozenset[str]", expects, parse)


def _refusing(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """A domain type's parser, whose ValueError says what is wrong: shown as the reason."""

    def wrapped(raw: str) -> Any:
        try:
            return parse(raw)
        except ValueError as exc:
            raise Refused(str(exc)) from None

    return wrapped


def cron() -> Kind:
    return Kind(
        "CronSchedule",
        "a five-field cron expression such as '0 2 * * *', or @hourly, @daily, @weekly, @monthly",
        _refusing(CronSchedule.parse),
    )


def optional_cron() -> Kind:
    """A cron expression, or empty for never."""
    parse = _refusing(CronSchedule.parse)
    return Kind(
        "CronSchedule | None",
        "a five-field cron expression, or empty for never",
        lambda raw: parse(raw) if raw.strip() else None,
    )


def costs() -> Kind:
    return Kind(
        "GenerationCosts",
        "a list like dall-e-3=0.040,default=0.020 (non-negative US dollars)",
        _refusing(GenerationCosts.parse),
    )


@dataclass(frozen=True)
class Setting:
    """One environment variable: where it goes (`section.field`), its kind, default and help."""

    name: str
    where: str
    kind: Kind
    default: str
    help: str

    @property
    def section(self) -> str:
        return self.where.partition(".")[0]

    @property
    def field(self) -> str:
        return self.where.partition(".")[2]

    @property
    def expects(self) -> str:
        return self.kind.expects

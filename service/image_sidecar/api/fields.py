"""Validation of every client-supplied value. Each failure names its field."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from uuid import UUID

from aiohttp import web

from image_sidecar.errors import InvalidField
from image_sidecar.models import Description, ImageMetadata, RoundRef

# Game codes become directory names: letters, digits, "-" and "_" only, never "." or "/".
_GAME_CODE = re.compile(r"[A-Za-z0-9_-]{1,32}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_ROUND_NUMBER = re.compile(r"[0-9]{1,5}")
# Art styles and AI service names become metric labels, so they stay short and plain.
_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.:/-]{0,63}")
MAX_ROUND_NUMBER = 10_000
MAX_SENTENCE_CHARS = 1_000
MAX_PROMPT_CHARS = 4_000
MAX_RETENTION_DAYS = 3_650
MAX_REASON_CHARS = 500
MAX_GENERATION_COST_USD = Decimal(100)
_MICRODOLLAR = Decimal("0.000001")  # the column's scale

IMAGE_METADATA_FIELDS = frozenset(
    {
        "game_code",
        "game_id",
        "round_id",
        "round_number",
        "player_id",
        "submission_id",
        "completed_sentence",
        "art_style",
        "ai_service",
        "prompt",
        "generation_cost_usd",
        "retention_days",
        "model",
        "size",
        "player_name",
    }
)


def game_code(raw: str, field: str = "game_code") -> str:
    """Room codes compare case-insensitively; they are kept in upper case."""
    if not _GAME_CODE.fullmatch(raw):
        raise InvalidField(field, "must be 1-32 letters, digits, '-' or '_'")
    return raw.upper()


def uuid_value(raw: str, field: str) -> UUID:
    try:
        return UUID(raw)
    except ValueError:
        raise InvalidField(field, "must be a UUID") from None


def bounded_int(raw: str, field: str, low: int, high: int) -> int:
    if not re.fullmatch(r"[0-9]{1,9}", raw) or not low <= int(raw) <= high:
        raise InvalidField(field, f"must be a whole number from {low} to {high}")
    return int(raw)


def round_ref(raw: str) -> RoundRef:
    """A round given as its number or as the game server's round UUID."""
    if _ROUND_NUMBER.fullmatch(raw) and int(raw) <= MAX_ROUND_NUMBER:
        return int(raw)
    try:
        return UUID(raw)
    except ValueError:
        raise InvalidField(
            "round", f"must be a round number (0-{MAX_ROUND_NUMBER}) or a round UUID"
        ) from None


def text(raw: str, field: str, max_chars: int) -> str:
    value = raw.strip()
    if not value:
        raise InvalidField(field, "must not be empty")
    if len(raw) > max_chars:  # counted as sent, as openapi.json's maxLength counts
        raise InvalidField(field, f"must be at most {max_chars} characters")
    if "\x00" in value:
        raise InvalidField(field, "must not contain NUL characters")
    return _encodable(value, field)


def _encodable(value: str, field: str) -> str:
    """JSON may carry lone UTF-16 surrogates ("\\ud800"), which no UTF-8 text can hold."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidField(field, "must be valid Unicode text (no lone surrogates)") from None
    return value


# art_style, ai_service and model: the story's VARCHAR(50), in any script.
MAX_STYLE_CHARS = 50
MAX_PLAYER_NAME_CHARS = 40


def style(raw: str | None, field: str, max_chars: int = MAX_STYLE_CHARS) -> str | None:
    """Text a player or game server chose (an art style, a service or model name, a player's
    name): 1 to `max_chars` characters in any script, no control characters, trimmed; empty or
    blank means none (the picture has no style), never a refusal after the AI call was paid."""
    if raw is None:
        return None
    value = raw.strip()
    if not value:
        return None
    if len(value) > max_chars:
        raise InvalidField(field, f"must be at most {max_chars} characters")
    if any(unicodedata.category(char) == "Cc" for char in value):
        raise InvalidField(field, "must not contain control characters")
    return _encodable(value, field)


def label(raw: str | None, field: str) -> str | None:
    """Absent is None; an empty value is an error, not a silent absence."""
    if raw is None:
        return None
    value = raw.strip()
    if not _LABEL.fullmatch(value):
        raise InvalidField(field, "must be 1-64 letters, digits, spaces or '_.:/-'")
    return value


def cost_usd(raw: str | None, field: str = "generation_cost_usd") -> Decimal | None:
    if raw is None:
        return None
    try:
        value = Decimal(raw.strip())
    except InvalidOperation:
        raise InvalidField(field, "must be a decimal number of US dollars") from None
    if not value.is_finite() or not Decimal(0) <= value <= MAX_GENERATION_COST_USD:
        raise InvalidField(field, f"must be between 0 and {MAX_GENERATION_COST_USD}")
    if value != value.quantize(_MICRODOLLAR):  # 1E-1001 would be stored as 0
        raise InvalidField(field, "must have at most 6 decimal places")
    return value


def prompt_hash(raw: str) -> str:
    return sha256_hex(raw, "prompt_hash")


def sha256_hex(raw: str, field: str = "sha256") -> str:
    if not _SHA256.fullmatch(raw):
        raise InvalidField(field, "must be 64 lowercase hexadecimal characters (SHA-256)")
    return raw


def reason(request: web.Request) -> str | None:
    """`?reason=` of a moderation call (logged), and no other query parameter."""
    reject_unknown(request.query, frozenset({"reason"}))
    return _reason(request)


def _reason(request: web.Request) -> str | None:
    raw = request.query.get("reason")
    return None if raw is None else text(raw, "reason", MAX_REASON_CHARS)


@dataclass(frozen=True)
class TakedownQuery:
    reason: str | None  # logged and kept with the block
    similar: bool  # also remove the stored look-alikes


def takedown_query(request: web.Request) -> TakedownQuery:
    """`?reason=` (logged) and `?similar=true|false`, and no other query parameter."""
    reject_unknown(request.query, frozenset({"reason", "similar"}))
    return TakedownQuery(
        reason=_reason(request),
        similar=boolean(request.query.get("similar", "false"), "similar"),
    )


def boolean(raw: str, field: str) -> bool:
    if raw.lower() not in ("true", "false"):
        raise InvalidField(field, "must be true or false")
    return raw.lower() == "true"


def optional_uuid(raw: str | None, field: str) -> UUID | None:
    return None if raw is None else uuid_value(raw, field)


def game_selector(request: web.Request) -> UUID | None:
    """`?game_id=`: which of the games sharing a room code is meant (default: the newest)."""
    return optional_uuid(request.query.get("game_id"), "game_id")


@dataclass(frozen=True)
class PurgeTarget:
    game_id: UUID | None
    all_games: bool


def purge_target(request: web.Request) -> PurgeTarget:
    """`?game_id=` or `?all=true`: a destructive call never guesses between games."""
    reject_unknown(request.query, frozenset({"game_id", "all"}))
    game_id = game_selector(request)
    all_games = boolean(request.query.get("all", "false"), "all")
    if game_id is not None and all_games:
        raise InvalidField("all", "cannot be combined with game_id")
    return PurgeTarget(game_id=game_id, all_games=all_games)


# Fields whose JSON value is a number; like every field of a form, they may also come as the
# number's text (the upload's multipart heritage: a hit is an upload without the bytes).
NUMERIC_FIELDS = frozenset(
    {"round_number", "retention_days", "generation_cost_usd", "wait_ms", "expires_in_days"}
)


def string_fields(body: Mapping[str, Any]) -> dict[str, str]:
    """JSON values as the form-style strings the field validators take: text must be a JSON
    string, a number a JSON number or its text; null means absent (every optional field is
    nullable in openapi.json)."""
    fields: dict[str, str] = {}
    for name, value in body.items():
        if value is None:
            continue
        if isinstance(value, str):
            fields[name] = value
        elif (
            name in NUMERIC_FIELDS
            and isinstance(value, int | float)
            and not isinstance(value, bool)
        ):
            fields[name] = str(value)
        elif name in NUMERIC_FIELDS:
            raise InvalidField(name, "must be a number")
        else:
            raise InvalidField(name, "must be a string")
    return fields


def _required(fields: Mapping[str, str], name: str) -> str:
    value = fields.get(name)
    if value is None:
        raise InvalidField(name, "is required")
    return value


def reject_unknown(fields: Mapping[str, object], known: frozenset[str]) -> None:
    """A misspelt optional field would otherwise be silently ignored."""
    unknown = sorted(set(fields) - known)
    if unknown:
        raise InvalidField(unknown[0], "is not a known field")


def image_metadata(fields: Mapping[str, str], *, described: bool = True) -> ImageMetadata:
    """The metadata of an upload (or of a cache hit, which is an upload without bytes).

    With `described=False` (an upload) the sentence may come later (`describe`): the story's
    game server saves a picture before it describes it. A prompt without a sentence is refused,
    since the sentence is the caption every listing shows.
    """
    reject_unknown(fields, IMAGE_METADATA_FIELDS)
    raw_sentence = fields.get("completed_sentence")
    if raw_sentence is None and (described or "prompt" in fields):
        raise InvalidField("completed_sentence", "is required")
    retention = fields.get("retention_days")
    sentence, prompt = (None, None) if raw_sentence is None else _sentence_and_prompt(fields)
    return ImageMetadata(
        game_code=game_code(_required(fields, "game_code")),
        game_id=uuid_value(_required(fields, "game_id"), "game_id"),
        round_id=uuid_value(_required(fields, "round_id"), "round_id"),
        round_number=bounded_int(
            _required(fields, "round_number"), "round_number", 0, MAX_ROUND_NUMBER
        ),
        player_id=uuid_value(_required(fields, "player_id"), "player_id"),
        submission_id=uuid_value(_required(fields, "submission_id"), "submission_id"),
        completed_sentence=sentence,
        prompt=prompt,
        art_style=style(fields.get("art_style"), "art_style"),
        ai_service=style(fields.get("ai_service"), "ai_service"),
        generation_cost_usd=cost_usd(fields.get("generation_cost_usd")),
        retention_days=None
        if retention is None
        else bounded_int(retention, "retention_days", 1, MAX_RETENTION_DAYS),
        model=style(fields.get("model"), "model"),
        size=label(fields.get("size"), "size"),
        player_name=style(fields.get("player_name"), "player_name", MAX_PLAYER_NAME_CHARS),
    )


DESCRIPTION_FIELDS = frozenset(
    {"completed_sentence", "prompt", "art_style", "ai_service", "model", "size"}
)


def description(fields: Mapping[str, str]) -> Description:
    """What describes a picture: its sentence, the prompt (default: the sentence) and what
    shaped it: the body of `PATCH /api/images/{image_id}`."""
    reject_unknown(fields, DESCRIPTION_FIELDS)
    sentence, prompt = _sentence_and_prompt(fields)
    return Description(
        completed_sentence=sentence,
        prompt=prompt,
        art_style=style(fields.get("art_style"), "art_style"),
        ai_service=style(fields.get("ai_service"), "ai_service"),
        model=style(fields.get("model"), "model"),
        size=label(fields.get("size"), "size"),
    )


def _sentence_and_prompt(fields: Mapping[str, str]) -> tuple[str, str]:
    sentence = text(
        _required(fields, "completed_sentence"), "completed_sentence", MAX_SENTENCE_CHARS
    )
    prompt = fields.get("prompt")
    return sentence, sentence if prompt is None else text(prompt, "prompt", MAX_PROMPT_CHARS)

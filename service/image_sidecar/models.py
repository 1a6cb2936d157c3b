"""Value types shared by the use cases, the database layer and the handlers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from uuid import UUID

RoundRef = int | UUID
"""A round named by its number within the game or by the game server's round UUID."""


@dataclass(frozen=True)
class ImageMetadata:
    """What the game server says about a picture; validated by the API before it gets here."""

    game_code: str
    game_id: UUID
    round_id: UUID
    round_number: int
    player_id: UUID
    submission_id: UUID
    # None when the picture is saved first and described later (the story's saveImage, then
    # cacheImageMetadata); the prompt defaults to the sentence.
    completed_sentence: str | None
    prompt: str | None
    art_style: str | None
    ai_service: str | None
    generation_cost_usd: Decimal | None
    retention_days: int | None
    # Generation parameters that shape the picture (part of the prompt hash when given).
    model: str | None = None
    size: str | None = None
    player_name: str | None = None  # as the game shows the player


@dataclass(frozen=True)
class Description:
    """What a picture saved without its sentence is later described with."""

    completed_sentence: str
    prompt: str
    art_style: str | None = None
    ai_service: str | None = None
    model: str | None = None
    size: str | None = None


@dataclass(frozen=True)
class StoredRendition:
    """A web rendition of an image (a smaller WebP or AVIF), stored beside its original."""

    name: str
    format: str
    image_path: str
    content_type: str
    width: int
    height: int
    size_bytes: int | None  # None until it is made (on first request)
    sha256: str | None = None  # of the bytes made (None before the scrub existed: see scrub)

    @property
    def made(self) -> bool:
        return self.size_bytes is not None


@dataclass(frozen=True)
class StoredBytes:
    """Facts about image bytes that are already in (or about to enter) the blob store."""

    image_path: str
    content_type: str
    size_bytes: int
    sha256: str
    # The displayed size (EXIF orientation applied); None for images stored before decoding.
    width: int | None = None
    height: int | None = None
    placeholder: str | None = None
    perceptual_hash: bytes | None = None  # images.likeness; None when not decoded here


@dataclass(frozen=True)
class ImageRecord:
    image_id: UUID
    submission_id: UUID
    game_id: UUID
    game_code: str
    round_id: UUID
    round_number: int
    player_id: UUID
    completed_sentence: str | None  # None until the picture is described (with its prompt)
    prompt: str | None
    art_style: str | None
    ai_service: str | None
    image_path: str
    content_type: str
    size_bytes: int
    sha256: str
    prompt_hash: str | None
    generation_cost_usd: Decimal | None
    reused_from: UUID | None
    generated_at: datetime
    created_at: datetime
    expires_at: datetime
    model: str | None = None
    size: str | None = None
    width: int | None = None
    height: int | None = None
    placeholder: str | None = None
    renditions: tuple[StoredRendition, ...] = ()
    is_winner: bool = False  # the judge's pick of its round
    player_name: str | None = None


@dataclass(frozen=True)
class CacheEntry:
    """A prompt's cached image, with how often it was reused."""

    prompt_hash: str
    hit_count: int
    last_hit: datetime
    created_at: datetime
    image: ImageRecord


@dataclass(frozen=True)
class RoundWinner:
    """The judge's pick of a round."""

    game_code: str
    game_id: UUID
    round_id: UUID
    round_number: int
    player_id: UUID
    image_id: UUID
    chosen_at: datetime


@dataclass(frozen=True)
class Share:
    """A share link of a whole game (round_number None) or of one round."""

    share_id: str
    game_id: UUID
    game_code: str
    round_number: int | None
    created_at: datetime
    expires_at: datetime

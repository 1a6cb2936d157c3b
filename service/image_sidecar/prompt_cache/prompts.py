"""Canonical prompts and their hashes: the key under which an image is reused."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass

CANONICAL_VERSION = "v1"
# With generation parameters (model, size) the encoding carries them, as version 2.
CANONICAL_VERSION_WITH_PARAMETERS = "v2"
_WHITESPACE = re.compile(r"\s+")


def canonical_text(text: str) -> str:
    """NFC, case-folded, whitespace collapsed: spellings a player cannot tell apart are equal."""
    normalized = unicodedata.normalize("NFC", text)
    return _WHITESPACE.sub(" ", normalized).strip().casefold()


def prompt_hash(
    prompt: str, art_style: str | None, model: str | None = None, size: str | None = None
) -> str:
    """SHA-256 hex of the versioned canonical encoding of what shapes the picture.

    Without model and size it is version 1, (prompt, art style), so every v1 hash published
    or stored stays valid; with either, version 2 adds them: a game that moves to another model
    or size no longer gets the old one's pictures.
    """
    parts = [canonical_text(prompt), canonical_text(art_style or "")]
    if model is None and size is None:
        encoding = [CANONICAL_VERSION, *parts]
    else:
        encoding = [
            CANONICAL_VERSION_WITH_PARAMETERS,
            *parts,
            canonical_text(model or ""),
            canonical_text(size or ""),
        ]
    encoded = json.dumps(encoding, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Prompt:
    """What a caller asks the cache for: the prompt and what shapes its picture."""

    text: str
    art_style: str | None = None
    model: str | None = None
    size: str | None = None

    @property
    def hash(self) -> str:
        return prompt_hash(self.text, self.art_style, self.model, self.size)

"""Canonical prompts and their hashes: the key under which an image is reused."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata

CANONICAL_VERSION = "v1"
_WHITESPACE = re.compile(r"\s+")


def canonical_text(text: str) -> str:
    """NFC, case-folded, whitespace collapsed: spellings a player cannot tell apart are equal."""
    normalized = unicodedata.normalize("NFC", text)
    return _WHITESPACE.sub(" ", normalized).strip().casefold()


def prompt_hash(prompt: str, art_style: str | None) -> str:
    """SHA-256 hex of the versioned canonical encoding of (prompt, art style)."""
    encoded = json.dumps(
        [CANONICAL_VERSION, canonical_text(prompt), canonical_text(art_style or "")],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()

"""The canonical prompt encoding and its published test vectors (docs/prompt-cache.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from image_sidecar.prompt_cache.prompts import canonical_text, prompt_hash

# The vectors of both versions, which the Node client's tests read too (and docs/prompt-cache.md).
VECTORS_FILE = Path(__file__).resolve().parents[1] / "vectors" / "prompt_hash.json"
VECTORS = json.loads(VECTORS_FILE.read_text(encoding="utf-8"))


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: f"{v['version']}-{v['prompt_hash'][:8]}")
def test_published_vectors(vector):
    found = prompt_hash(vector["prompt"], vector["art_style"], vector["model"], vector["size"])
    assert found == vector["prompt_hash"]
    without_parameters = vector["model"] is None and vector["size"] is None
    assert vector["version"] == ("v1" if without_parameters else "v2")


def test_both_versions_have_vectors():
    assert {vector["version"] for vector in VECTORS} == {"v1", "v2"}


def test_vectors_are_published_in_the_docs():
    published = (Path(__file__).resolve().parents[2] / "docs" / "prompt-cache.md").read_text()
    for vector in VECTORS:
        assert vector["prompt_hash"] in published


def test_a_model_or_a_size_changes_the_hash_and_neither_keeps_v1():
    v1 = prompt_hash("a cat", "oil")
    assert prompt_hash("a cat", "oil", None, None) == v1
    assert prompt_hash("a cat", "oil", "dall-e-3") != v1
    assert prompt_hash("a cat", "oil", "dall-e-3") != prompt_hash("a cat", "oil", "gpt-image-1")
    assert prompt_hash("a cat", "oil", None, "512x512") != prompt_hash("a cat", "oil", "512x512")


def test_canonical_text_folds_case_whitespace_and_unicode_forms():
    assert canonical_text("  Straße\u00a0 IS\n big ") == "strasse is big"
    assert canonical_text("e\u0301") == canonical_text("\u00e9")


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (("a cat", "watercolor"), ("a cat", "oil")),
        (("a cat", None), ("a cats", None)),
        (("a cat", "x"), ("a catx", None)),  # the style is not glued onto the prompt
        (('a","b', None), ("a", "b")),  # nor can a prompt forge the separator
    ],
)
def test_different_prompts_hash_differently(a, b):
    assert prompt_hash(*a) != prompt_hash(*b)

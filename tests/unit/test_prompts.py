"""The canonical prompt encoding and its published test vectors (README, "Prompt cache")."""

from __future__ import annotations

import pytest

from image_sidecar.prompts import canonical_text, prompt_hash

# The same vectors are published in README.md: other clients can check their implementation.
VECTORS = [
    (
        "A cat riding a skateboard",
        "watercolor",
        "62f794204ec35f5bea9349f4f4b5eb6808150e43739707d751428eb316048e49",
    ),
    (
        "  a CAT   riding a\tskateboard ",
        "Watercolor",
        "62f794204ec35f5bea9349f4f4b5eb6808150e43739707d751428eb316048e49",
    ),
    ("Café au lait", None, "8c1d6cd8ef2a3af42eee8f7ac82a3e2a056cf16e40d935fc5f854af7a657cfcf"),
    (
        "Cafe\u0301 au lait",
        "",
        "8c1d6cd8ef2a3af42eee8f7ac82a3e2a056cf16e40d935fc5f854af7a657cfcf",
    ),
    (
        "A dog riding a skateboard",
        "watercolor",
        "8ff56fc6b956af5d224ff76b37395f35c85b98f5930cfc545fa5d086df8506d5",
    ),
]


@pytest.mark.parametrize(("prompt", "art_style", "expected"), VECTORS)
def test_published_vectors(prompt, art_style, expected):
    assert prompt_hash(prompt, art_style) == expected


def test_vectors_are_published_in_the_readme():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for _, _, expected in VECTORS:
        assert expected in readme


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

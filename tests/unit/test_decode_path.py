"""The upload's one decode gives the perceptual hash and placeholder of the decode path it
replaced (a copy for the upright picture, a copy for the conversion to RGB, each reduced on its
own, and the `blurhash` package's pure-Python encoder), on the benchmark's pictures as PNG, WebP
and JPEG originals: the placeholder of the same reduced picture, and a hash within 8 bits of
256 of the full picture's (measured: 0-4; unrelated pictures are 84 bits or more apart, crops of one
picture within 44: docs/moderation.md)."""

from __future__ import annotations

import io

import blurhash as reference_blurhash
import pytest
from PIL import Image, ImageOps

from image_sidecar.images.decoding import inspect
from image_sidecar.images.likeness import distance, perceptual_hash, reduced_for_looks
from image_sidecar.images.placeholder import blurhash
from testkit.images import ai_picture, save_as
from testkit.lookalikes import photo_like

MAX_PIXELS = 50_000_000


def _reference_blurhash(small: Image.Image, components: tuple[int, int]) -> str:
    """The `blurhash` package's string for an RGB picture, as the sidecar passed it pixels."""
    raw = small.tobytes()
    pixels = [tuple(raw[i : i + 3]) for i in range(0, len(raw), 3)]
    rows = [pixels[y * small.width : (y + 1) * small.width] for y in range(small.height)]
    return reference_blurhash.encode(rows, *components)


def _as_before(data: bytes) -> tuple[bytes | None, str]:
    """The full picture's perceptual hash, and the reference encoder's placeholder of the
    picture reduced for its looks."""
    image = Image.open(io.BytesIO(data))
    image.load()
    web = ImageOps.exif_transpose(image).convert("RGB")
    small = reduced_for_looks(web).convert("RGB")
    small.thumbnail((16, 16), Image.Resampling.BILINEAR)
    components = (4, 3) if small.width >= small.height else (3, 4)
    return perceptual_hash(web), _reference_blurhash(small, components)


def _originals(image_format: str) -> list[bytes]:
    pictures = [Image.open(io.BytesIO(ai_picture(seed))) for seed in range(6)]
    pictures += [photo_like(seed, 512) for seed in range(20)]
    if image_format == "PNG":
        return [save_as(picture, "PNG") for picture in pictures]
    return [save_as(picture.convert("RGB"), image_format, quality=85) for picture in pictures]


@pytest.mark.parametrize("image_format", ["PNG", "WEBP", "JPEG"])
def test_the_one_decode_hashes_and_paints_each_picture_as_the_full_picture(image_format):
    for data in _originals(image_format):
        inspected = inspect(data, MAX_PIXELS, ("webp",), (("large", "webp"),))
        full_hash, placeholder = _as_before(data)
        assert inspected.placeholder == placeholder
        assert (inspected.perceptual_hash is None) == (full_hash is None)
        if full_hash is not None:
            assert distance(inspected.perceptual_hash, full_hash) <= 8


def test_the_numpy_blurhash_is_the_reference_encoders():
    for seed in range(200):
        small = photo_like(seed, 64).resize((16, 9 + seed % 8))
        for components in ((4, 3), (3, 4), (1, 1), (9, 9)):
            assert blurhash(small, *components) == _reference_blurhash(small, components)

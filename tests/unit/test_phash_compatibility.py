"""The perceptual hash is imagehash's pHash bit for bit, without scipy: hashes stored before
(every upload's, and the blocklist's look-alikes) stay comparable with those made now. Compared
on the look-alike corpus: the pictures taken down, every edit a re-upload makes of them, the
crops a takedown blocks, and unrelated pictures."""

from __future__ import annotations

import io

import imagehash
import pytest
from PIL import Image

from image_sidecar.images.likeness import perceptual_hash, variant_hashes
from testkit.lookalikes import edited_copies, photo_like

# The working copy and crops of images.likeness, hashed by imagehash as the sidecar once did.
WORKING_SIDE, CROP, ANCHORS = 256, 0.05, (0.0, 0.5, 1.0)


def _imagehash_phash(grey: Image.Image) -> bytes:
    bits = imagehash.phash(grey, hash_size=16).hash.flatten()
    return int("".join("1" if bit else "0" for bit in bits), 2).to_bytes(32, "big")


def _working(image: Image.Image) -> Image.Image:
    grey = image.convert("L")
    grey.thumbnail((WORKING_SIDE, WORKING_SIDE), Image.Resampling.BOX)
    return grey


def _imagehash_variants(image: Image.Image) -> list[bytes]:
    working = _working(image)
    width, height = working.size
    cut_x, cut_y = round(width * CROP), round(height * CROP)
    hashes = [_imagehash_phash(working)]
    for across in ANCHORS:
        for down in ANCHORS:
            left, top = round(cut_x * across), round(cut_y * down)
            hashes.append(
                _imagehash_phash(
                    working.crop((left, top, left + width - cut_x, top + height - cut_y))
                )
            )
    return hashes


def _corpus() -> list[Image.Image]:
    pictures = []
    for seed in range(12):
        picture = photo_like(seed, 384)
        pictures.append(picture)
        pictures.extend(
            Image.open(io.BytesIO(data)).convert("RGB") for data in edited_copies(picture).values()
        )
    pictures.extend(photo_like(seed, 256) for seed in range(1_000, 1_100))
    return pictures


@pytest.fixture(scope="module")
def corpus() -> list[Image.Image]:
    return _corpus()


def test_the_hash_of_every_picture_is_imagehashs_phash(corpus):
    differing = [
        i
        for i, picture in enumerate(corpus)
        if perceptual_hash(picture) != _imagehash_phash(_working(picture))
    ]
    assert len(corpus) > 250
    assert differing == []


def test_the_crops_a_takedown_blocks_hash_as_imagehash_hashed_them(corpus):
    for picture in corpus[::7]:
        assert variant_hashes(picture) == _imagehash_variants(picture)

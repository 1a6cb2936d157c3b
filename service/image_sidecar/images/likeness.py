"""Perceptual hashes: what a picture looks like, in 256 bits, so that look-alikes of a picture
taken down are refused too (run in the picture pool, on the decode that already happens).

The hash is `imagehash`'s pHash at hash_size 16: the signs, against their median, of the 16x16
lowest frequencies of the DCT of a 64x64 grey copy (a Lanczos resample), 256 bits. It is computed
here with numpy alone, bit for bit as `imagehash.phash(image, hash_size=16)` computes it (a test
compares the two on the look-alike corpus, so blocklists made before stay valid): imagehash takes
the DCT from scipy, which with PyWavelets was 160 MB of the container image for one 64x64
transform, and the 16 rows of a DCT-II that the hash keeps are a 16x64 matrix, so the transform
is two small matrix products. pHash, not PDQ: `pdqhash` has no wheels (it would need a C++
toolchain on every install) and is not maintained. The 16x16 hash, not the 8x8 default: measured
on the corpus in `testkit/lookalikes.py`, the 64-bit hash put unrelated pictures 10 bits apart
where crops of one picture were 20 apart.

pHash shrugs off resizing, re-encoding, brightness and noise (a few bits of 256) but not a crop:
cutting 5% off one edge moves every frequency (up to 104 bits). So a takedown blocks its
picture's hash and the hashes of nine crops of it (5% of each side's length cut, anchored
left, centre and right by top, middle and bottom, `variant_hashes`): a re-upload cropped by up
to 5% then lies within 44 bits of one of them, while unrelated pictures stay 84 bits or more
from all ten (docs/moderation.md has the distributions and the chosen threshold).

A picture with too little to look at gets no hash and is matched by its exact bytes only: every
picture of one flat colour has the same pHash, and so do most tiny ones (a takedown of a 1x1
PNG would block them all).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageStat

HASH_BITS = 256
_HASH_SIZE = 16  # imagehash's hash_size: a hash of HASH_BITS bits
_DCT_SIDE = _HASH_SIZE * 4  # imagehash's highfreq_factor 4: the grey copy the DCT reads
# Downscaled (a box filter, fast) to this side before the hash's own 64x64 resample: the hash
# is the same within a bit or two, for a tenth of the time on a 1024 px picture.
_WORKING_SIDE = 256
_CROP = 0.05  # of each side's length, cut by the crops a takedown also blocks
_ANCHORS = (0.0, 0.5, 1.0)  # where the cut goes: all before, half each side, all after
# Below either, a picture has no hash: smaller than this on its short side, or with a grey
# level varying less than this (standard deviation, of 255).
_MIN_SIDE = 64
_MIN_CONTRAST = 4.0


def reduced_for_looks(image: Image.Image) -> Image.Image:
    """The picture reduced once, by a box filter of the whole factor that keeps its short side
    at least the working side: all the perceptual hash and the placeholder need (a 1024 px
    picture's two reductions of their own cost 1.8 ms more an upload). The hash of the reduced
    picture is within 4 bits of 256 of the full one's, far inside the look-alike margins."""
    factor = min(image.size) // _WORKING_SIDE
    return image.reduce(factor) if factor > 1 else image


def perceptual_hash(image: Image.Image) -> bytes | None:
    """The picture's 256-bit pHash (32 bytes), from its upright, sRGB pixels; None for a
    picture too small or too flat to be told from others by its look."""
    working = _working_copy(image)
    return _phash(working) if _has_a_look(working) else None


def variant_hashes(image: Image.Image) -> list[bytes]:
    """The picture's hash and those of nine crops of it: what a takedown blocks (none for a
    picture without a hash)."""
    working = _working_copy(image)
    if not _has_a_look(working):
        return []
    width, height = working.size
    cut_x, cut_y = round(width * _CROP), round(height * _CROP)
    hashes = [_phash(working)]
    for across in _ANCHORS:
        for down in _ANCHORS:
            left, top = round(cut_x * across), round(cut_y * down)
            box = (left, top, left + width - cut_x, top + height - cut_y)
            hashes.append(_phash(working.crop(box)))
    return hashes


def distance(a: bytes, b: bytes) -> int:
    """How many of the 256 bits differ."""
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).bit_count()


def _has_a_look(grey: Image.Image) -> bool:
    return min(grey.size) >= _MIN_SIDE and ImageStat.Stat(grey).stddev[0] >= _MIN_CONTRAST


def _working_copy(image: Image.Image) -> Image.Image:
    grey = image.convert("L")
    grey.thumbnail((_WORKING_SIDE, _WORKING_SIDE), Image.Resampling.BOX)
    return grey


def _dct_rows(side: int, rows: int) -> np.ndarray:
    """The first `rows` rows of the unnormalised DCT-II matrix of `side` points, as
    `scipy.fftpack.dct` computes it: 2 cos(pi k (2n + 1) / 2N)."""
    k = np.arange(rows, dtype=np.float64)[:, None]
    n = np.arange(side, dtype=np.float64)[None, :]
    return 2.0 * np.cos(np.pi * k * (2.0 * n + 1.0) / (2.0 * side))


_LOW_FREQUENCIES = _dct_rows(_DCT_SIDE, _HASH_SIZE)


def _phash(grey: Image.Image) -> bytes:
    small = grey.resize((_DCT_SIDE, _DCT_SIDE), Image.Resampling.LANCZOS)
    pixels = np.asarray(small, dtype=np.float64)
    # The DCT down the columns, then along the rows, kept to the lowest 16 of each.
    low = _LOW_FREQUENCIES @ pixels @ _LOW_FREQUENCIES.T
    bits = (low > np.median(low)).flatten()
    return np.packbits(bits).tobytes()

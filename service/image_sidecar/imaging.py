"""Decoding uploads with Pillow, off the event loop: the bytes must be the picture they claim.

Sniffing the first bytes is not enough: a truncated file, or a valid header with garbage after
it, sniffs as an image and would be served to every player as a broken picture. Every upload is
decoded in full (its first frame, for an animated WebP) in a bounded thread pool, after its
pixel count, read from the header alone, is checked against IMAGE_MAX_PIXELS, so a
decompression bomb is refused before it is decoded. The original bytes are never re-encoded.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import warnings
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import structlog
from aiohttp import web
from PIL import Image

from image_sidecar.errors import CorruptImage, TooManyPixels
from image_sidecar.imagetypes import JPEG, PNG, WEBP, ImageType, sniff
from image_sidecar.typedefs import config_key, image_processor_key

log = structlog.get_logger(__name__)

_PILLOW_FORMATS = {JPEG: "JPEG", PNG: "PNG", WEBP: "WEBP"}
# EXIF orientations that turn the picture by a quarter: its displayed width is its height.
_QUARTER_TURNS = {5, 6, 7, 8}
_ORIENTATION_TAG = 0x0112


@dataclass(frozen=True)
class InspectedImage:
    """What decoding an upload established: its type, its displayed size, its digest."""

    image_type: ImageType
    width: int
    height: int
    sha256: str


def inspect(data: bytes, max_pixels: int) -> InspectedImage:
    """Sniff, bound, decode and hash `data` (blocking: run it in the pool). Raises NotAnImage,
    TooManyPixels or CorruptImage; nothing else escapes whatever the bytes are."""
    image_type = sniff(data)
    try:
        with warnings.catch_warnings():
            # Pillow's own bomb guard warns, then fails; either way it is too many pixels.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[_PILLOW_FORMATS[image_type]]) as image:
                width, height = image.size
                if width * height > max_pixels:
                    raise TooManyPixels(
                        f"the image is {width}x{height}: more than IMAGE_MAX_PIXELS "
                        f"({max_pixels}) pixels"
                    )
                image.load()  # the whole first frame: a truncated or garbled file fails here
                orientation = image.getexif().get(_ORIENTATION_TAG)
    except TooManyPixels:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise TooManyPixels(
            f"the image has more than IMAGE_MAX_PIXELS ({max_pixels}) pixels"
        ) from None
    except Exception as exc:  # a hostile file can make a decoder raise anything: all are 415
        log.info("image_not_decodable", error=f"{type(exc).__name__}: {exc}")
        raise CorruptImage(
            f"the {image_type.extension.upper()} file is truncated or corrupt and cannot be decoded"
        ) from None
    if orientation in _QUARTER_TURNS:
        width, height = height, width
    return InspectedImage(image_type, width, height, hashlib.sha256(data).hexdigest())


class ImageProcessor:
    """The bounded pool where image work runs (IMAGE_PROCESSING_WORKERS threads)."""

    def __init__(self, *, max_pixels: int, workers: int) -> None:
        self.max_pixels = max_pixels
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="imaging")

    async def inspect(self, data: bytes) -> InspectedImage:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, inspect, data, self.max_pixels)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


async def imaging_context(app: web.Application) -> AsyncIterator[None]:
    storage = app[config_key].storage
    processor = ImageProcessor(max_pixels=storage.max_pixels, workers=storage.processing_workers)
    app[image_processor_key] = processor
    yield
    processor.close()

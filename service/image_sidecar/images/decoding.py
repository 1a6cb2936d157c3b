"""Decoding uploads and making their web renditions with Pillow, in a pool of processes.

Sniffing the first bytes is not enough: a truncated file, or a valid header with garbage after
it, sniffs as an image and would be served to every player as a broken picture. Every upload is
decoded in full (its first frame, for an animated WebP) in a bounded pool of processes (apart
from the event loop and its GIL), after its pixel count, read from the header alone, is checked
against IMAGE_MAX_PIXELS, so a decompression bomb is refused before it is decoded. The original
bytes are never re-encoded.

The renditions phones load instead of the original (a 1024x1024 PNG is 1.5-3 MB) are `thumb`
(longest side 256) and `large` (1024, or the original's size if smaller), as WebP and, where this
Pillow can encode it, AVIF; EXIF orientation applied, colour in sRGB, transparency kept. Those
made at upload (IMAGE_RENDITIONS_AT_UPLOAD) come from the upload's own decode, with a BlurHash
placeholder the game paints before any bytes arrive; the others are rendered from the stored
original when first asked for (`images.renditions`).

Pillow, not pyvips: Pillow's wheels carry WebP and AVIF encoders on every platform we ship, with
no system library to install, and at these sizes (an AI picture is at most a few megapixels)
the encoder's time dominates either way; `bench/renditions.py` compares it with vipsthumbnail.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

import structlog
from PIL import Image, ImageCms, ImageOps, features

from image_sidecar.errors import CorruptImage, TooManyPixels
from image_sidecar.images.formats import JPEG, PNG, WEBP, ImageType, sniff
from image_sidecar.images.likeness import perceptual_hash, reduced_for_looks, variant_hashes
from image_sidecar.images.placeholder import blurhash

log = structlog.get_logger(__name__)

_PILLOW_FORMATS = {JPEG: "JPEG", PNG: "PNG", WEBP: "WEBP"}
# EXIF orientations that turn the picture by a quarter: its displayed width is its height.
_QUARTER_TURNS = {5, 6, 7, 8}
_ORIENTATION_TAG = 0x0112


# name -> longest side; a picture smaller than that keeps its size (never upscaled).
RENDITION_SIDES = {"thumb": 256, "large": 1024}
_ENCODERS: dict[str, tuple[str, str, dict[str, object]]] = {
    # format -> (Pillow's name, content type, encoder options). Measured on 1024x1024 AI-sized
    # pictures (docs/benchmarks.md): WebP method 0 takes 35 ms where method 2 takes 46-52 and
    # method 4 100, for 8-10% more bytes (still a tenth of the PNG); AVIF speed 10 is four times
    # as fast as 8 for the same bytes, and is made only when asked for.
    "webp": ("WEBP", "image/webp", {"quality": 80, "method": 0}),
    "avif": ("AVIF", "image/avif", {"quality": 60, "speed": 10}),
}
# BlurHash keeps 4x3 components, which 16 samples a side resolve.
_PLACEHOLDER_SIDE = 16
_SRGB = ImageCms.createProfile("sRGB")


# Pillow's block allocator (https://pillow.readthedocs.io/en/stable/reference/block_allocator.html)
# keeps no freed block by default: each upload's pictures (4 MB for a 1024 px one) come fresh
# from the kernel, page by page. Keeping 16 freed blocks of 2 MB (at most 32 MB a process) saved
# 5-7 ms of a PNG or WebP upload's 30-55 ms in the picture processes (docs/benchmarks.md).
_KEPT_BLOCKS = 16
_BLOCK_BYTES = 2 << 20


def reuse_image_memory() -> None:
    """Have Pillow keep freed image memory for the next picture (in a picture process)."""
    Image.core.set_block_size(_BLOCK_BYTES)
    Image.core.set_blocks_max(_KEPT_BLOCKS)


def rendition_formats(wanted: tuple[str, ...] = ("webp", "avif")) -> tuple[str, ...]:
    """Those of `wanted` this Pillow can encode (WebP always; AVIF when built with it)."""
    return tuple(f for f in wanted if f == "webp" or (f == "avif" and features.check("avif")))


def fitted(width: int, height: int, side: int) -> tuple[int, int]:
    """The size of a rendition whose longest side is at most `side` (never upscaled)."""
    longest = max(width, height)
    if longest <= side:
        return width, height
    return max(1, round(width * side / longest)), max(1, round(height * side / longest))


@dataclass(frozen=True)
class PlannedRendition:
    """A rendition as it will be: known from the original's displayed size before it is made."""

    name: str
    format: str
    content_type: str
    width: int
    height: int


def planned_renditions(
    width: int, height: int, formats: tuple[str, ...]
) -> tuple[PlannedRendition, ...]:
    """Every rendition of a picture of this displayed size, thumb then large, in `formats`."""
    return tuple(
        PlannedRendition(
            name, image_format, _ENCODERS[image_format][1], *fitted(width, height, side)
        )
        for name, side in RENDITION_SIDES.items()
        for image_format in formats
    )


@dataclass(frozen=True)
class Rendition:
    name: str
    format: str
    content_type: str
    width: int
    height: int
    data: bytes
    sha256: str  # hashed in the pool with the encoding, never on the event loop


@dataclass(frozen=True)
class InspectedImage:
    """What decoding an upload established: its type, its displayed size, its digest, its
    perceptual hash, and (when asked for) the renditions made from the same decode and its
    placeholder."""

    image_type: ImageType
    width: int
    height: int
    sha256: str
    perceptual_hash: bytes | None  # None for a picture too small or flat (images.likeness)
    renditions: tuple[Rendition, ...] = ()
    placeholder: str | None = None


def inspect(
    data: bytes,
    max_pixels: int,
    rendition_formats: tuple[str, ...] = (),
    made_now: tuple[tuple[str, str], ...] | None = None,
    looks: bool = True,
    web_ready_max_bytes: int = 0,
) -> InspectedImage:
    """Sniff, bound, decode and hash `data` (its SHA-256 and its perceptual hash); with
    `rendition_formats`, make its placeholder and the renditions `made_now` names (all of them
    when None) from the same decode (blocking: run it in the pool); without `looks`, no
    perceptual hash (the benchmark's baseline). A web-ready WebP original of at most
    `web_ready_max_bytes` is its own large WebP (`_web_ready`). Raises NotAnImage,
    TooManyPixels or CorruptImage; nothing else escapes whatever the bytes are."""
    image_type = sniff(data)
    digest = hashlib.sha256(data).hexdigest()
    with _decoded(data, image_type, max_pixels) as image:
        width, height = image.size
        orientation = image.getexif().get(_ORIENTATION_TAG)
        # Decoded fine: what fails from here on is a bug of ours (500).
        web_image = _for_the_web(image)
        small = reduced_for_looks(web_image)
        looked = perceptual_hash(small) if looks else None
        renditions: tuple[Rendition, ...] = ()
        placeholder = None
        if rendition_formats:
            wanted = [
                planned
                for planned in planned_renditions(*web_image.size, rendition_formats)
                if made_now is None or (planned.name, planned.format) in made_now
            ]
            large = _as_large(data, image_type, image, web_ready_max_bytes, digest)
            renditions = tuple(_render(web_image, wanted, large))
            placeholder = _placeholder(small)
    if orientation in _QUARTER_TURNS:
        width, height = height, width
    return InspectedImage(image_type, width, height, digest, looked, renditions, placeholder)


def lookalike_hashes(data: bytes, max_pixels: int, crops: bool = True) -> list[bytes]:
    """What a takedown of these bytes blocks, `likeness.variant_hashes`; without `crops`, only
    the picture's own hash (blocking: run it in the pool)."""
    with _decoded(data, sniff(data), max_pixels) as image:
        web_image = reduced_for_looks(_for_the_web(image))  # as `inspect` hashes an upload
        if crops:
            return variant_hashes(web_image)
        looks = perceptual_hash(web_image)
        return [] if looks is None else [looks]


def render(
    data: bytes, max_pixels: int, name: str, image_format: str, web_ready_max_bytes: int = 0
) -> Rendition:
    """One rendition of a stored original, made when it is first asked for (blocking: run it in
    the pool). A JPEG is decoded at the smallest scale its DCT offers that still covers the
    rendition (draft mode: a quarter of the work for a thumb of a 1024 px JPEG)."""
    image_type = sniff(data)
    with _decoded(data, image_type, max_pixels, draft_side=RENDITION_SIDES[name]) as image:
        web_image = _for_the_web(image)
        (planned,) = (
            planned
            for planned in planned_renditions(*web_image.size, (image_format,))
            if planned.name == name
        )
        large = _as_large(data, image_type, image, web_ready_max_bytes)
        (made,) = _render(web_image, [planned], large)
    return made


@contextmanager
def _decoded(
    data: bytes, image_type: ImageType, max_pixels: int, draft_side: int | None = None
) -> Iterator[Image.Image]:
    """The first frame, decoded in full (a JPEG, with `draft_side`, at the smallest DCT scale
    whose longest side is still at least that); TooManyPixels (from the header) or
    CorruptImage."""
    try:
        with warnings.catch_warnings():
            # Pillow's own bomb guard warns, then fails; either way it is too many pixels.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=[_PILLOW_FORMATS[image_type]])
            width, height = image.size
            if width * height > max_pixels:
                raise TooManyPixels(
                    f"the image is {width}x{height}: more than IMAGE_MAX_PIXELS "
                    f"({max_pixels}) pixels"
                )
            if draft_side is not None and image_type is JPEG:
                # A box around the wanted size, turned as the picture is stored: the scale
                # keeps both sides of the rendition covered whatever the orientation.
                image.draft(image.mode, (draft_side, draft_side))
            image.load()  # the whole first frame: a truncated or garbled file fails here
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
    with image:
        yield image


def _upright(image: Image.Image) -> bool:
    """Whether the picture needs no EXIF turn (Pillow parses the EXIF once per image)."""
    return image.getexif().get(_ORIENTATION_TAG) in (None, 1)


def _for_the_web(image: Image.Image) -> Image.Image:
    """Upright, in sRGB, 8 bits per channel, RGB or (with any transparency) RGBA: `image`
    itself when it is all of these already (no copy)."""
    upright = image if _upright(image) else ImageOps.exif_transpose(image)
    if upright.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit grey: scale, do not clip
        upright = upright.point(lambda value: value * (1 / 256)).convert("L")
    has_alpha = upright.mode in ("RGBA", "LA", "PA") or "transparency" in upright.info
    target = "RGBA" if has_alpha else "RGB"
    icc = upright.info.get("icc_profile")
    if icc:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            converted = ImageCms.profileToProfile(upright, source, _SRGB, outputMode=target)
            if converted is not None:
                return converted
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # an unreadable profile: take the pixels as sRGB
    return upright if upright.mode == target else upright.convert(target)


def _web_ready(data: bytes, image_type: ImageType, image: Image.Image, max_bytes: int) -> bool:
    """Whether the original is already what `large` would be, so that its bytes are served as
    its large WebP: a WebP of one frame, no larger than the large size, upright, without a
    colour profile to convert from, and at most `max_bytes` (IMAGE_WEB_READY_MAX_BYTES)."""
    return (
        image_type is WEBP
        and len(data) <= max_bytes
        and max(image.size) <= RENDITION_SIDES["large"]
        and getattr(image, "n_frames", 1) == 1
        and _upright(image)
        and not image.info.get("icc_profile")
        and image.mode in ("RGB", "RGBA")
    )


def _as_large(
    data: bytes,
    image_type: ImageType,
    image: Image.Image,
    max_bytes: int,
    sha256: str | None = None,
) -> Rendition | None:
    """A web-ready original (`_web_ready`) as its own large WebP (`sha256`, the original's
    digest, when the caller took it already); None for any other."""
    if not _web_ready(data, image_type, image, max_bytes):
        return None
    digest = sha256 or hashlib.sha256(data).hexdigest()
    return Rendition("large", "webp", _ENCODERS["webp"][1], *image.size, data, digest)


def _render(
    image: Image.Image, wanted: list[PlannedRendition], web_ready: Rendition | None = None
) -> list[Rendition]:
    """The `wanted` renditions of `image`; the large WebP is `web_ready` when given (the
    original's own bytes: `_as_large`), not a new encoding."""
    renditions: list[Rendition] = []
    encoded: dict[tuple[int, int, str], Rendition] = {}
    if web_ready is not None:
        encoded[web_ready.width, web_ready.height, web_ready.format] = web_ready
    for planned in wanted:
        # A picture no larger than the thumbnail is never upscaled: its renditions are the
        # same pixels, encoded once.
        same = encoded.get((planned.width, planned.height, planned.format))
        if same is None:
            resized = image
            if image.size != (planned.width, planned.height):
                # A box reduction by the whole factor that leaves at least twice the size, then
                # LANCZOS the rest: a 1024 px picture's thumb in 5 ms instead of 11.5, within
                # 52-54 dB PSNR of LANCZOS all the way (docs/benchmarks.md).
                resized = image.resize(
                    (planned.width, planned.height), Image.Resampling.LANCZOS, reducing_gap=2.0
                )
            same = encoded[planned.width, planned.height, planned.format] = _encode(
                resized, planned.name, planned.format
            )
        renditions.append(replace(same, name=planned.name))
    return renditions


def _encode(image: Image.Image, name: str, image_format: str) -> Rendition:
    pillow_format, content_type, options = _ENCODERS[image_format]
    buffer = io.BytesIO()
    image.save(buffer, format=pillow_format, **options)
    data = buffer.getvalue()
    return Rendition(
        name,
        image_format,
        content_type,
        image.width,
        image.height,
        data,
        hashlib.sha256(data).hexdigest(),
    )


def _placeholder(image: Image.Image) -> str:
    """A BlurHash (about 30 characters) of the picture, for the grid before its bytes arrive."""
    small = image.convert("RGB")
    small.thumbnail((_PLACEHOLDER_SIDE, _PLACEHOLDER_SIDE), Image.Resampling.BILINEAR)
    x_components, y_components = (4, 3) if small.width >= small.height else (3, 4)
    return blurhash(small, x_components, y_components)

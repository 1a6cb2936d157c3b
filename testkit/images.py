"""Small, valid images made on the fly, each with distinct bytes."""

from __future__ import annotations

import io
import random
import struct
import zlib

from PIL import Image, ImageDraw


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bytes(seed: int = 0, size: int = 8) -> bytes:
    """A real size x size RGB PNG whose pixels depend on `seed`."""
    rows = b"".join(
        b"\x00"
        + bytes(
            ((x * 31 + y * 17 + seed * 101 + c * 7) % 256) for x in range(size) for c in range(3)
        )
        for y in range(size)
    )
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(rows))
        + _chunk(b"IEND", b"")
    )


def noise_png(side: int, seed: int = 0) -> bytes:
    """A real side x side RGB PNG of random pixels: it does not compress (about 3 * side**2
    bytes), like the detail of a generated picture."""
    pixels = random.Random(seed).randbytes(side * side * 3)
    buffer = io.BytesIO()
    Image.frombytes("RGB", (side, side), pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def encoded(image_format: str, seed: int = 0, size: int = 8, **options: object) -> bytes:
    """A real image in `image_format` (Pillow's name), pixels from `seed`, as Pillow saves it."""
    image = Image.open(io.BytesIO(png_bytes(seed, size)))
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def jpeg_bytes(seed: int = 0) -> bytes:
    return encoded("JPEG", seed)


def webp_bytes(seed: int = 0) -> bytes:
    return encoded("WEBP", seed)


def drawing_png(seed: int, side: int = 512) -> bytes:
    """A real side x side PNG that looks like a picture: a sky, a ground, bright shapes and a
    grain (about 2 bytes a pixel, like an AI service's PNG), different for every seed. The
    gallery's tests look at these in a browser."""
    rnd = random.Random(seed)
    image = Image.new("RGB", (side, side))
    draw = ImageDraw.Draw(image)
    sky = tuple(rnd.randint(90, 220) for _ in range(3))
    for y in range(side):
        shade = y / side
        draw.line([(0, y), (side, y)], fill=tuple(int(c * (1 - shade / 2)) for c in sky))
    draw.rectangle(
        [0, side * 2 // 3, side, side], fill=tuple(rnd.randint(20, 120) for _ in range(3))
    )
    for _ in range(6):
        x, y, r = rnd.randrange(side), rnd.randrange(side), rnd.randint(side // 16, side // 5)
        colour = tuple(rnd.randint(0, 255) for _ in range(3))
        if rnd.random() < 0.5:
            draw.ellipse([x - r, y - r, x + r, y + r], fill=colour, outline=(20, 20, 20), width=3)
        else:
            draw.rectangle(
                [x - r, y - r, x + r, y + r // 2], fill=colour, outline=(20, 20, 20), width=3
            )
    # The fine grain of a generated picture, which PNG cannot compress away.
    grain = Image.frombytes("L", (side, side), rnd.randbytes(side * side)).convert("RGB")
    image = Image.blend(image, grain, 0.08)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def save_as(image: Image.Image, image_format: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def animated_webp() -> bytes:
    frames = [Image.new("RGB", (12, 10), color) for color in ("red", "green", "blue")]
    return save_as(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=100)


def rotated_jpeg() -> bytes:
    """8 wide, 4 high as stored; EXIF orientation 6 shows it 4 wide, 8 high."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return save_as(Image.new("RGB", (8, 4), "white"), "JPEG", exif=exif)


# Pictures every decoder must take, with the size they are displayed at.
DECODABLE = {
    "1x1 PNG": (png_bytes(size=1), (1, 1)),
    "PNG with alpha": (save_as(Image.new("RGBA", (5, 3), (255, 0, 0, 128)), "PNG"), (5, 3)),
    "16-bit PNG": (save_as(Image.new("I;16", (6, 4), 40000), "PNG"), (6, 4)),
    "CMYK JPEG": (save_as(Image.new("CMYK", (7, 5), (0, 255, 255, 0)), "JPEG"), (7, 5)),
    "animated WebP (its first frame)": (animated_webp(), (12, 10)),
    "JPEG turned by EXIF": (rotated_jpeg(), (4, 8)),
}


def ai_picture(seed: int, side: int = 1024, grain: float = 16) -> bytes:
    """A PNG as an AI service returns one: smooth colour fields under photographic grain, so it
    compresses like a photograph (1024 px: 1.3-1.8 MB; 640 px: about 0.7 MB)."""
    rnd = random.Random(seed)
    field = Image.frombytes("RGB", (24, 24), bytes(rnd.getrandbits(8) for _ in range(24 * 24 * 3)))
    picture = field.resize((side, side), Image.Resampling.BICUBIC)
    noise = Image.effect_noise((side, side), grain).convert("RGB")
    buffer = io.BytesIO()
    Image.blend(picture, noise, 0.12).save(buffer, "PNG")
    return buffer.getvalue()


def ai_pictures(count: int, seed: int = 0) -> list[bytes]:
    """Distinct AI-sized pictures: three in four 1024x1024 PNGs of 1.3-1.8 MB (as DALL-E 3
    returns them), the rest 512-640 px of 0.3-0.7 MB."""
    return [
        ai_picture(seed + n, 1024, 8 + 8 * (n % 4))
        if n % 4
        else ai_picture(seed + n, 512 + 64 * (n % 3), 32)
        for n in range(count)
    ]


ORIGINAL_FORMATS = ("PNG", "WEBP", "JPEG")


def as_originals(pictures: list[bytes], image_format: str) -> list[bytes]:
    """The pictures as an AI service returns them in `image_format`: PNG as they are, WebP and
    JPEG at quality 90 (100-250 KB a 1024 px picture, what the services' WebP and JPEG outputs
    weigh)."""
    if image_format == "PNG":
        return pictures
    return [
        save_as(Image.open(io.BytesIO(data)).convert("RGB"), image_format, quality=90)
        for data in pictures
    ]

"""A corpus for look-alike blocking: photo-like pictures, and the edits a re-upload makes.

Unrelated pictures come from `photo_like(seed)`: a gradient sky, a horizon, shapes in colour, a
texture and grain, all chosen by the seed, so two seeds share the kind of picture (as two AI
pictures of one game do) but not the picture. `edited_copies` makes of one picture what someone
would upload again after a takedown: resized, re-encoded as JPEG, brighter or darker, cropped a
little, with noise, and a few of those at once.
"""

from __future__ import annotations

import io
import random
from collections.abc import Callable

from PIL import Image, ImageDraw, ImageEnhance


def photo_like(seed: int, side: int = 384) -> Image.Image:
    rnd = random.Random(seed)
    image = Image.new("RGB", (side, side))
    draw = ImageDraw.Draw(image)
    top = [rnd.randint(40, 230) for _ in range(3)]
    bottom = [rnd.randint(10, 200) for _ in range(3)]
    horizon = rnd.randint(side // 4, side * 3 // 4)
    for y in range(side):
        shade = tuple(int(a + (b - a) * y / side) for a, b in zip(top, bottom, strict=True))
        draw.line([(0, y), (side, y)], fill=shade)
    ground = tuple(rnd.randint(10, 160) for _ in range(3))
    tilt = rnd.randint(-side // 6, side // 6)
    draw.polygon(
        [(0, horizon - tilt), (side, horizon + tilt), (side, side), (0, side)], fill=ground
    )
    for _ in range(rnd.randint(3, 9)):
        x, y = rnd.randrange(side), rnd.randrange(side)
        r = rnd.randint(side // 20, side // 4)
        colour = tuple(rnd.randint(0, 255) for _ in range(3))
        shape = rnd.choice(("ellipse", "rectangle", "triangle"))
        if shape == "ellipse":
            draw.ellipse([x - r, y - r, x + r, y + r * rnd.uniform(0.4, 1.2)], fill=colour)
        elif shape == "rectangle":
            draw.rectangle([x - r, y - r // 2, x + r // 2, y + r], fill=colour)
        else:
            draw.polygon([(x, y - r), (x + r, y + r), (x - r, y + r)], fill=colour)
    # A texture (blurred noise at a scale of its own) and a photographic grain.
    cells = side // rnd.choice((8, 16, 32))
    texture = Image.frombytes("L", (cells, cells), rnd.randbytes(cells * cells))
    texture = texture.resize((side, side), Image.Resampling.BICUBIC).convert("RGB")
    image = Image.blend(image, texture, rnd.uniform(0.05, 0.25))
    grain = Image.frombytes("L", (side, side), rnd.randbytes(side * side)).convert("RGB")
    return Image.blend(image, grain, 0.06)


def as_png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def as_jpeg(image: Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def _cropped(image: Image.Image, fraction: float, before: float = 1.0) -> Image.Image:
    """`fraction` of the width and of the height cut: `before` of it from the left and top
    edges, the rest from the right and bottom."""
    width, height = image.size
    left, top = round(width * fraction * before), round(height * fraction * before)
    right, bottom = round(width * fraction) - left, round(height * fraction) - top
    return image.crop((left, top, width - right, height - bottom))


def _noisy(image: Image.Image) -> Image.Image:
    """Light noise over the picture (8% of a grey noise of deviation 24)."""
    noise = Image.effect_noise(image.size, 24).convert("RGB")
    return Image.blend(image, noise, 0.08)


def _brightness(image: Image.Image, factor: float) -> Image.Image:
    return ImageEnhance.Brightness(image).enhance(factor)


def _resized(image: Image.Image, factor: float) -> Image.Image:
    width, height = image.size
    return image.resize((round(width * factor), round(height * factor)), Image.Resampling.LANCZOS)


# name -> the edit; every one is something a re-upload after a takedown would do.
EDITS: dict[str, Callable[[Image.Image], bytes]] = {
    "half size": lambda image: as_png(_resized(image, 0.5)),
    "double size": lambda image: as_png(_resized(image, 2.0)),
    "JPEG 60": lambda image: as_jpeg(image, 60),
    "JPEG 90": lambda image: as_jpeg(image, 90),
    "10% brighter": lambda image: as_png(_brightness(image, 1.1)),
    "10% darker": lambda image: as_png(_brightness(image, 0.9)),
    "3% cropped": lambda image: as_png(_cropped(image, 0.03)),
    "5% cropped": lambda image: as_png(_cropped(image, 0.05)),
    "4% cropped around": lambda image: as_png(_cropped(image, 0.04, before=0.5)),
    "5% cropped right and bottom": lambda image: as_png(_cropped(image, 0.05, before=0.0)),
    "2% cropped left and top, 1% right and bottom": lambda image: as_png(
        _cropped(image, 0.03, before=2 / 3)
    ),
    "noise": lambda image: as_png(_noisy(image)),
    "5% cropped, 10% darker, half size, JPEG 60": lambda image: as_jpeg(
        _resized(_brightness(_cropped(image, 0.05), 0.9), 0.5), 60
    ),
}


def edited_copies(image: Image.Image) -> dict[str, bytes]:
    return {name: edit(image) for name, edit in EDITS.items()}

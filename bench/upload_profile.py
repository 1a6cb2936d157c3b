"""Where an upload's picture work goes: each step of `images.decoding.inspect`, in one process,
for PNG, WebP and JPEG originals of the benchmark's AI-sized pictures (CPU milliseconds, the
median over the pictures); and the whole of it done by pyvips instead of Pillow, where pyvips
is installed (the `dev` extra brings it), to say whether another library would pay.

The steps are the functions `inspect` itself calls, run one after another on the one decode,
so their sum is the upload's picture work (the thumb, made when a gallery first asks for it
from a decode of its own, is shown apart); the service adds the pool's hand-over and the
serving worker's own work (HTTP, SQL, writes), which `bench.nights.cpu_per_operation` measures
black-box.
"""

from __future__ import annotations

import hashlib
import statistics
import time
from collections.abc import Callable
from typing import Any

from PIL import Image

from image_sidecar.images import decoding
from image_sidecar.images.formats import sniff
from image_sidecar.images.likeness import perceptual_hash, reduced_for_looks
from image_sidecar.images.placeholder import blurhash

MAX_PIXELS = 50_000_000
WEB_READY_MAX_BYTES = 300_000  # IMAGE_WEB_READY_MAX_BYTES' default


def _cpu_ms(work: Callable[[], Any]) -> tuple[Any, float]:
    started = time.process_time()
    result = work()
    return result, (time.process_time() - started) * 1000


def _steps(data: bytes) -> dict[str, float]:
    """The CPU milliseconds of each step of an upload's picture work on `data`."""
    times: dict[str, float] = {}

    def step(name: str, work: Callable[[], Any]) -> Any:
        result, ms = _cpu_ms(work)
        times[name] = times.get(name, 0.0) + ms
        return result

    image_type = step("sniff", lambda: sniff(data))
    opened = decoding._decoded(data, image_type, MAX_PIXELS)
    image = step("decode", opened.__enter__)
    try:
        web = step("upright, sRGB, RGB(A)", lambda: decoding._for_the_web(image))
        small = step("one 256 px reduction for the looks", lambda: reduced_for_looks(web))
        step("perceptual hash", lambda: perceptual_hash(small))
        step("placeholder", lambda: decoding._placeholder(small))
        (planned,) = (
            p for p in decoding.planned_renditions(*web.size, ("webp",)) if p.name == "large"
        )
        large = decoding._as_large(data, image_type, image, WEB_READY_MAX_BYTES)
        name = "large WebP (encoded)" if large is None else "large WebP (the original's bytes)"
        step(name, lambda: decoding._render(web, [planned], large))
        step("SHA-256 of the original", lambda: hashlib.sha256(data).hexdigest())
        (thumb,) = (
            p for p in decoding.planned_renditions(*web.size, ("webp",)) if p.name == "thumb"
        )
        step(
            "thumb WebP: resize and encode (made on its first GET)",
            lambda: decoding._render(web, [thumb]),
        )
    finally:
        opened.__exit__(None, None, None)
    return times


def _whole(data: bytes) -> float:
    _, ms = _cpu_ms(
        lambda: decoding.inspect(
            data,
            MAX_PIXELS,
            ("webp",),
            (("large", "webp"),),
            web_ready_max_bytes=WEB_READY_MAX_BYTES,
        )
    )
    return ms


def _with_pyvips(data: bytes) -> float | None:
    """The same picture work with pyvips: one decode into memory, the large WebP (encoded
    always: the comparison is of the encoder), a 256 px grey copy hashed and a 16 px copy for
    the placeholder; None without pyvips."""
    try:
        import numpy as np
        import pyvips
    except ImportError:
        return None

    def work() -> None:
        image = pyvips.Image.new_from_buffer(data, "").copy_memory()
        large = image if max(image.width, image.height) <= 1024 else image.thumbnail_image(1024)
        large.webpsave_buffer(Q=80, effort=0)
        grey = image.thumbnail_image(256).colourspace("b-w")[0]
        perceptual_hash(
            Image.fromarray(
                np.ndarray(
                    buffer=grey.write_to_memory(), dtype=np.uint8, shape=(grey.height, grey.width)
                )
            )
        )
        small = image.thumbnail_image(16)[0:3]
        pixels = np.ndarray(
            buffer=small.write_to_memory(), dtype=np.uint8, shape=(small.height, small.width, 3)
        )
        blurhash(Image.fromarray(pixels), 4, 3)
        hashlib.sha256(data).hexdigest()

    work()  # libvips' first call sets up its operation cache
    _, ms = _cpu_ms(work)
    return ms


def profile(originals: dict[str, list[bytes]]) -> dict[str, dict[str, float | None]]:
    """format -> step -> median CPU ms (with `whole inspect()` and `whole, pyvips`)."""
    decoding.reuse_image_memory()  # as the picture processes do
    table: dict[str, dict[str, float | None]] = {}
    for image_format, pictures in originals.items():
        _whole(pictures[0])  # warm: the first decode of a format loads its plugin
        runs = [_steps(data) for data in pictures]
        names = list(dict.fromkeys(name for run in runs for name in run))
        column: dict[str, float | None] = {
            name: statistics.median(run.get(name, 0.0) for run in runs) for name in names
        }
        column["whole inspect()"] = statistics.median(_whole(data) for data in pictures)
        vips = [_with_pyvips(data) for data in pictures]
        column["whole, with pyvips"] = (
            None if None in vips else statistics.median(v for v in vips if v is not None)
        )
        column["original, KB"] = statistics.median(len(data) / 1000 for data in pictures)
        table[image_format] = column
    return table


def rows(table: dict[str, dict[str, float | None]]) -> list[str]:
    formats = list(table)
    names = list(dict.fromkeys(name for column in table.values() for name in column))
    lines = [
        "| step (CPU ms, median) | " + " | ".join(formats) + " |",
        "|---" * (len(formats) + 1) + "|",
    ]
    for name in names:
        cells = []
        for image_format in formats:
            value = table[image_format].get(name)
            cells.append("-" if value is None else f"{value:.1f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines

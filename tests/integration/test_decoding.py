"""Every upload is decoded: broken files are 415 corrupt_image, pixel bombs 413 before decoding,
and every real picture gets its displayed width and height."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from tests.helpers import storage_files, uploader
from tests.integration.test_prompt_cache import hit
from tests.sample_images import noise_png, png_bytes


def _save(image: Image.Image, image_format: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height over a few bytes of data: a pixel bomb."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def _animated_webp() -> bytes:
    frames = [Image.new("RGB", (12, 10), color) for color in ("red", "green", "blue")]
    return _save(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=100)


def _rotated_jpeg() -> bytes:
    """8 wide, 4 high as stored; EXIF orientation 6 shows it 4 wide, 8 high."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return _save(Image.new("RGB", (8, 4), "white"), "JPEG", exif=exif)


BROKEN = {
    "truncated PNG": noise_png(64)[:-600],
    "truncated JPEG": _save(Image.open(io.BytesIO(noise_png(64))), "JPEG")[:-200],
    "truncated WebP": _save(Image.open(io.BytesIO(noise_png(64))), "WEBP")[:-100],
    "PNG header then garbage": png_bytes()[:33] + b"garbage" * 20,
    "JPEG header then garbage": b"\xff\xd8\xff\xe0" + b"garbage" * 20,
    "WebP header then garbage": b"RIFF\x40\x00\x00\x00WEBPVP8 " + b"garbage" * 8,
}


@pytest.mark.parametrize("data", BROKEN.values(), ids=BROKEN.keys())
async def test_a_file_that_does_not_decode_is_415_corrupt_image(
    upload, database, storage_dir, data
):
    response = await upload(image=data)
    assert response.status == 415
    assert (await response.json())["error"]["code"] == "corrupt_image"
    assert database.count("generated_images") == 0
    assert storage_files(storage_dir) == []


async def test_a_pixel_bomb_is_413_before_it_is_decoded(upload, database, storage_dir):
    response = await upload(image=_png_claiming(20_000, 20_000))
    assert response.status == 413
    assert (await response.json())["error"]["code"] == "too_many_pixels"
    assert database.count("generated_images") == 0
    assert storage_files(storage_dir) == []


async def test_the_pixel_limit_is_a_setting(make_client):
    client = await make_client(IMAGE_MAX_PIXELS="63")  # 8x8 = 64 pixels
    response = await uploader(client)(image=png_bytes(size=8))
    assert response.status == 413


GOOD = {
    "1x1 PNG": (png_bytes(size=1), (1, 1)),
    "PNG with alpha": (_save(Image.new("RGBA", (5, 3), (255, 0, 0, 128)), "PNG"), (5, 3)),
    "16-bit PNG": (_save(Image.new("I;16", (6, 4), 40000), "PNG"), (6, 4)),
    "CMYK JPEG": (_save(Image.new("CMYK", (7, 5), (0, 255, 255, 0)), "JPEG"), (7, 5)),
    "animated WebP (its first frame)": (_animated_webp(), (12, 10)),
    "JPEG turned by EXIF": (_rotated_jpeg(), (4, 8)),
}


@pytest.mark.parametrize(("data", "size"), GOOD.values(), ids=GOOD.keys())
async def test_every_real_picture_is_stored_with_its_displayed_size(upload, client, data, size):
    response = await upload(image=data)
    assert response.status == 201, await response.text()
    record = await response.json()
    assert (record["width"], record["height"]) == size
    served = await client.get(record["image_url"])
    assert await served.read() == data  # the original, byte for byte


async def test_a_reuse_carries_the_cached_pictures_size(client, upload):
    original = await (await upload(image=noise_png(20))).json()
    reuse = await (await hit(client, key=original["prompt_hash"])).json()
    assert (reuse["width"], reuse["height"]) == (20, 20)

"""Every upload is decoded: broken files are 415 corrupt_image, pixel bombs 413 before decoding,
and every real picture gets its displayed width and height."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from testkit.cache import hit
from testkit.helpers import storage_files, uploader
from testkit.images import DECODABLE, noise_png, png_bytes, save_as


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


BROKEN = {
    "truncated PNG": noise_png(64)[:-600],
    "truncated JPEG": save_as(Image.open(io.BytesIO(noise_png(64))), "JPEG")[:-200],
    "truncated WebP": save_as(Image.open(io.BytesIO(noise_png(64))), "WEBP")[:-100],
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


@pytest.mark.parametrize(("data", "size"), DECODABLE.values(), ids=DECODABLE.keys())
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

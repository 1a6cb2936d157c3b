"""Small, valid images made on the fly, each with distinct bytes."""

from __future__ import annotations

import struct
import zlib


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


def jpeg_bytes(seed: int = 0) -> bytes:
    """JPEG magic and markers around filler: enough for type sniffing and byte comparisons."""
    return b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes([seed % 256]) * 64 + b"\xff\xd9"


def webp_bytes(seed: int = 0) -> bytes:
    body = b"WEBPVP8 " + bytes([seed % 256]) * 32
    return b"RIFF" + struct.pack("<I", len(body)) + body

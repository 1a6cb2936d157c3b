"""BlurHash placeholders (https://blurha.sh), encoded with numpy: the same strings as the
reference encoder (the `blurhash` package, pure Python, whose loops took 6 ms an upload in the
picture processes; this takes a tenth of a millisecond). A test compares the two on the
benchmark's pictures."""

from __future__ import annotations

import numpy as np
from PIL import Image

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~"


def blurhash(image: Image.Image, x_components: int, y_components: int) -> str:
    """The BlurHash of an RGB `image` (small: every pixel is summed into every component)."""
    srgb = np.asarray(image, dtype=np.float64) / 255.0
    linear = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
    height, width = linear.shape[:2]
    basis_y = np.cos(np.pi * np.outer(np.arange(y_components), np.arange(height)) / height)
    basis_x = np.cos(np.pi * np.outer(np.arange(x_components), np.arange(width)) / width)
    # components[j, i] = the sum over pixels of basis_y[j, y] * basis_x[i, x] * linear[y, x]
    components = np.einsum("jy,ix,yxc->jic", basis_y, basis_x, linear) / (width * height)
    components[1:, :] *= 2.0
    components[0, 1:] *= 2.0
    flat = components.reshape(-1, 3)
    dc, ac = flat[0], flat[1:]
    max_ac = float(np.abs(ac).max()) if len(ac) else 0.0
    quantised_max = int(max(0, min(82, np.floor(max_ac * 166 - 0.5))))
    norm = (quantised_max + 1) / 166.0
    signed_root = np.copysign(np.sqrt(np.abs(ac / norm)), ac)
    levels = np.clip(np.floor(signed_root * 9.0 + 9.5), 0, 18).astype(int)
    ac_values = levels[:, 0] * 19 * 19 + levels[:, 1] * 19 + levels[:, 2]
    dc_value = (_to_srgb(dc[0]) << 16) + (_to_srgb(dc[1]) << 8) + _to_srgb(dc[2])
    return (
        _base83((x_components - 1) + (y_components - 1) * 9, 1)
        + _base83(quantised_max, 1)
        + _base83(dc_value, 4)
        + "".join(_base83(int(value), 2) for value in ac_values)
    )


def _to_srgb(value: float) -> int:
    value = max(0.0, min(1.0, float(value)))
    if value <= 0.0031308:
        return int(value * 12.92 * 255 + 0.5)
    return int((1.055 * value ** (1 / 2.4) - 0.055) * 255 + 0.5)


def _base83(value: int, length: int) -> str:
    return "".join(_ALPHABET[value // 83 ** (length - i) % 83] for i in range(1, length + 1))

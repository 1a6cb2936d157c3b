from __future__ import annotations

import pytest

from image_sidecar.errors import NotAnImage
from image_sidecar.images.formats import JPEG, PNG, WEBP, sniff
from testkit.images import jpeg_bytes, png_bytes, webp_bytes


@pytest.mark.parametrize(
    ("data", "expected"), [(png_bytes(), PNG), (jpeg_bytes(), JPEG), (webp_bytes(), WEBP)]
)
def test_sniff_recognises_accepted_formats(data, expected):
    assert sniff(data) == expected


@pytest.mark.parametrize(
    "data", [b"", b"GIF89a....", b"<svg xmlns='http://www.w3.org/2000/svg'/>", b"RIFF1234WAVE"]
)
def test_sniff_refuses_everything_else(data):
    with pytest.raises(NotAnImage):
        sniff(data)

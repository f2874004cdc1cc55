"""convcli.io.limits: images checked from their headers before decoding (pixels, pages, memory)."""

from __future__ import annotations

import base64
import io
import struct
import time

import numpy as np
import pytest
from PIL import Image

from convcli.errors import InputFileError, ParameterError
from convcli.io import limits
from convcli.io.inputs import decode_input
from convcli.io.limits import DEFAULT_MAX_PIXELS, ReadLimits, check_image_size, decoder_reason


def jpeg_declaring(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "JPEG")
    data = bytearray(buffer.getvalue())
    sof = data.find(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


def float_pages(pages: int, side: int) -> bytes:
    buffer = io.BytesIO()
    page = Image.fromarray(np.zeros((side, side), np.float32))
    page.save(buffer, "TIFF", save_all=True, append_images=[page] * (pages - 1), compression="tiff_adobe_deflate")
    return buffer.getvalue()


def test_a_small_file_declaring_many_pixels_is_refused_undecoded() -> None:
    bomb = jpeg_declaring(10000, 10000)
    assert len(bomb) < 1000
    start = time.monotonic()
    with pytest.raises(InputFileError) as excinfo:
        decode_input(bomb, "bomb.jpg")
    assert time.monotonic() - start < 2  # decoding it took seconds and 3.6 GB
    assert str(excinfo.value) == (
        "'bomb.jpg' (JPEG) would decode to 10000×10000 pixels (100,000,000), more than --max-pixels 89,478,485; "
        "if the image is real, give --max-pixels 100000000"
    )
    check_image_size(bomb, "bomb.jpg", ReadLimits(max_pixels=100_000_000))  # raised: allowed


def test_pages_count_toward_the_pixels_and_their_number_is_capped() -> None:
    with pytest.raises(InputFileError, match=r"would decode to 5 pages of 64×64 pixels \(20,480\), more than "
                                             r"--max-pixels 10,000"):
        check_image_size(float_pages(5, 64), "p.tif", ReadLimits(max_pixels=10_000))
    with pytest.raises(InputFileError, match="has more than 4 pages; convcli reads at most 4 pages"):
        check_image_size(float_pages(6, 2), "p.tif", ReadLimits(max_pages=4))
    check_image_size(float_pages(4, 2), "p.tif", ReadLimits(max_pages=4))


def test_the_decoded_size_must_fit_in_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "machine_memory", lambda: 2**20)
    buffer = io.BytesIO()
    Image.new("RGB", (300, 300)).save(buffer, "PNG")
    with pytest.raises(InputFileError, match=r"needs about .* to decode, more than this machine's 1 MiB of memory"):
        check_image_size(buffer.getvalue(), "big.png")


def test_malformed_headers_are_one_error() -> None:
    with pytest.raises(InputFileError, match="cannot read 'x.png' as an image: not a recognised image format"):
        check_image_size(b"\x89PNG\r\n\x1a\n" + b"\0" * 30, "x.png")
    assert decoder_reason(KeyError(229)) == "malformed headers (KeyError 229)"
    assert decoder_reason(OSError("truncated")) == "truncated"


#: Found by atheris: a 622-byte GIF whose second frame declares a canvas of millions of pixels.
#: Seeking to that frame (as the first size check did, frame by frame) decoded and grew the
#: canvas: 13 s and gigabytes.  Only TIFF pages are opened now; other frames are counted.
GIF_WITH_A_HUGE_SECOND_FRAME = base64.b64decode(
    "R0lGODdhBwAGAIUAANz69MzrQ+z2A+7QAHvi7nDzfz3fDvqupZq6imye/Wm7tVuRUiX44izcihXUyATP6DLwXRDWEQq6nB+rpRqg"
    "7Ae3BPF1wcGC7LeFT9F6O5xh/q9jIn6GyIlw7Vdt9pdWY0xrB+M5nss6DaJECu0dudoIupNMq49CPWcyF1UmcgAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAEAAAAsAAAAAAcABgAACDIARwAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAsAAAAAAcABgAACDIARzxAMKBEAxATNBzYgIHAgg8hHBhIIQKFCQgUCiSwwEEB"
    "CQEAGGQI0EFChQsRPJwICAAh+QQBAAAoACwAAAAABzAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAw"
    "MDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwAAYAAAAAAAAAAAIAAAAAAAAAAAAAAADFxcXFxcXFxcXFxcXFxcXFxcXF"
    "xcXFxcXFxcXFxcXFxcXFxcXFxcUAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAACwAAAAABwAGAAAIMgBHAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAALAAAgAAHAAYAAAgyAEc8QDCgRAMQEzQc2ICBwIIPIRwYSCEChQkIFAok"
    "sMBBAQkBABhkCNBBQoULETycCAgAOw=="
)


def test_frames_of_a_gif_are_counted_not_decoded() -> None:
    start = time.monotonic()
    try:
        decode_input(GIF_WITH_A_HUGE_SECOND_FRAME, "slow.gif")
    except InputFileError:
        pass
    assert time.monotonic() - start < 2


def test_limits_are_checked() -> None:
    assert ReadLimits.of(None).max_pixels == DEFAULT_MAX_PIXELS
    assert ReadLimits.of(5).max_pixels == 5
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ParameterError, match="max_pixels must be a positive integer"):
            ReadLimits(max_pixels=bad)  # type: ignore[arg-type]

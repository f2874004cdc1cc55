"""The parallel PNG writer: files any decoder reads back exactly, for every depth and channel count."""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from convcli.errors import OutputFileError
from convcli.io import png
from convcli.io.png import adler32_combine, write_png


def decode_png(data: bytes) -> tuple[NDArray[np.unsignedinteger], int]:
    """A PNG decoder written independently of convcli's writer: chunks, CRCs, zlib, all five filters."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert crc == zlib.crc32(kind + body), kind
        chunks.append((kind, body))
        pos += 12 + length
    assert chunks[0][0] == b"IHDR" and chunks[-1] == (b"IEND", b"")
    width, height, depth, colour = struct.unpack(">IIBB", chunks[0][1][:10])
    channels = {0: 1, 4: 2, 2: 3, 6: 4}[colour]
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))  # checks the Adler-32
    bpp = channels * depth // 8
    stride = width * bpp
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(height, stride + 1)
    out = np.zeros((height, stride), dtype=np.int64)
    for r in range(height):
        kind, line = rows[r, 0], rows[r, 1:].astype(np.int64)
        up = out[r - 1] if r else np.zeros(stride, dtype=np.int64)
        for i in range(stride):
            left = out[r, i - bpp] if i >= bpp else 0
            ul = up[i - bpp] if i >= bpp else 0
            pred = {0: 0, 1: left, 2: up[i], 3: (left + up[i]) // 2}.get(int(kind))
            if pred is None:
                p = left + up[i] - ul
                pa, pb, pc = abs(p - left), abs(p - up[i]), abs(p - ul)
                pred = left if pa <= pb and pa <= pc else (up[i] if pb <= pc else ul)
            out[r, i] = (line[i] + pred) % 256
    samples = out.astype(np.uint8).reshape(height, width, channels, depth // 8)
    if depth == 16:
        return (samples[..., 0].astype(np.uint16) << 8 | samples[..., 1]), 16
    return samples[..., 0], 8


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_round_trip_exact(channels: int, dtype: type) -> None:
    pixels = np.random.default_rng(channels).integers(0, np.iinfo(dtype).max + 1, (13, 11, channels), dtype=dtype)
    back, depth = decode_png(write_png(pixels))
    assert depth == 8 * np.dtype(dtype).itemsize
    np.testing.assert_array_equal(back, pixels)


def test_bands_compressed_apart_make_one_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    """With tiny bands (many sync-flushed deflate streams, compressed on threads) the file is still one
    valid zlib stream that Pillow decodes exactly; the result is the same whatever the thread count."""
    monkeypatch.setattr(png, "BAND_BYTES", 100)
    pixels = np.random.default_rng(0).integers(0, 256, (57, 23, 3), dtype=np.uint8)
    data = write_png(pixels, threads=2)
    assert data.count(b"IDAT") > 10
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(data))), pixels)
    assert write_png(pixels, threads=1) == data
    for level in (0, 6, 9):
        np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(write_png(pixels, level=level)))), pixels)


def test_strided_and_two_dimensional_inputs() -> None:
    base = np.random.default_rng(1).integers(0, 256, (20, 30, 4), dtype=np.uint8)
    view = base[::2, ::3, 1:4]  # not contiguous
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(write_png(view)))), view)
    gray = base[:, :, 0]
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(write_png(gray)))), gray)


def test_imagemagick_reads_16_bit_rgba(tmp_path: Path) -> None:
    convert = shutil.which("convert")
    if convert is None or b"ImageMagick" not in subprocess.run([convert, "-version"], capture_output=True).stdout:
        pytest.skip("ImageMagick is not installed")
    pixels = np.random.default_rng(2).integers(0, 65536, (8, 9, 4), dtype=np.uint16)
    path = tmp_path / "p.png"
    path.write_bytes(write_png(pixels))
    raw = subprocess.run([convert, str(path), "-depth", "16", "-endian", "MSB", "rgba:-"], capture_output=True,
                         check=True).stdout
    np.testing.assert_array_equal(np.frombuffer(raw, dtype=">u2").reshape(8, 9, 4), pixels)


def test_adler32_combine() -> None:
    rng = np.random.default_rng(3)
    parts = [rng.integers(0, 256, n, dtype=np.uint8).tobytes() for n in (0, 1, 5000, 70_000, 3)]
    whole, combined = b"", 1
    for part in parts:
        whole += part
        combined = adler32_combine(combined, zlib.adler32(part), len(part))
        assert combined == zlib.adler32(whole)


@pytest.mark.parametrize(
    ("pixels", "level", "message"),
    [
        (np.zeros((2, 2, 5), np.uint8), 1, r"shape \(H, W\) or \(H, W, 1..4\), got \(2, 2, 5\)"),
        (np.zeros((2, 2), np.float32), 1, "uint8 or uint16 pixels, got float32"),
        (np.zeros((0, 2), np.uint8), 1, r"got \(0, 2, 1\)"),
        (np.zeros((2, 2), np.uint8), 10, "level must be an integer 0..9, got 10"),
    ],
)
def test_refuses(pixels: NDArray[np.generic], level: int, message: str) -> None:
    with pytest.raises(OutputFileError, match=message):
        write_png(pixels, level=level)

"""Fuzz targets: convcli's parsers and decoders on arbitrary input, where only a result or a ConvcliError may come out.

Each target takes bytes (or text) and calls one reader; a :class:`~convcli.errors.ConvcliError`
is an allowed outcome (bad input, said in one line), anything else is a bug the fuzzer has
found.  The targets are shared by the hypothesis tests (``test_fuzz.py``: a few hundred
examples in the normal suite, 100,000 per target with ``pytest -m fuzz``) and by the
coverage-guided atheris driver (``run_atheris.py``).

=================  ==========================================================================
target             what it reads
=================  ==========================================================================
``kernel_spec``    text after ``-k``: built-ins with arguments, inline and ImageMagick matrices
``kernel_file``    kernel file bytes: .npy, .npz, text, JSON (sniffed, or by a named format)
``arrays``         .npy, .npz and text array bytes, and inputs told by their first bytes
``image``          image bytes (PNG, JPEG, GIF, BMP, TIFF, WebP), size-checked from the headers
=================  ==========================================================================

:func:`seeds` gives each target valid inputs to start from (the fuzzers mutate them).
"""

from __future__ import annotations

import io
import json
import os
import struct
import warnings
import zlib
from typing import Callable

import numpy as np
from PIL import Image

from convcli.errors import ConvcliError
from convcli.io.arrays import load_npy, load_npz, load_text
from convcli.io.inputs import decode_input
from convcli.io.limits import ReadLimits
from convcli.io.outputs import npy_bytes, npz_bytes
from convcli.kernels.spec import load_kernel_bytes, parse_kernel

#: Images the image target decodes may be at most this large: the size check is fuzzed, not Pillow's speed.
FUZZ_LIMITS = ReadLimits(max_pixels=2**20, max_pages=64)

os.environ.setdefault("CONVCLI_FIFO_WAIT", "0")  # a spec naming some FIFO on this machine must not wait


def _allowed(call: Callable[[], object]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # warnings are allowed (they become notes)
        try:
            call()
        except ConvcliError:
            pass


def kernel_spec(data: bytes) -> None:
    """``parse_kernel`` of ``data`` as text (never '-': standard input is not fuzzed)."""
    text = data.decode("utf-8", "replace")
    if text.strip() == "-":
        return
    _allowed(lambda: parse_kernel(text))


_KERNEL_FORMATS = (None, "npy", "npz", "text", "json")


def kernel_file(data: bytes) -> None:
    """``load_kernel_bytes`` of ``data``: sniffed, and as the format its first byte picks."""
    _allowed(lambda: load_kernel_bytes(data))
    fmt = _KERNEL_FORMATS[data[0] % len(_KERNEL_FORMATS)] if data else None
    if fmt is not None:
        _allowed(lambda: load_kernel_bytes(data[1:], fmt))


def arrays(data: bytes) -> None:
    """The array readers (.npy, .npz, text) and the input decoder that tells them apart."""
    _allowed(lambda: load_npy(data, "x.npy"))
    _allowed(lambda: load_npz(data, "x.npz"))
    _allowed(lambda: load_text(data, "x.txt"))
    _allowed(lambda: decode_input(data, "x.txt"))
    _allowed(lambda: decode_input(data, "-"))


def image(data: bytes) -> None:
    """The image reader, as an input (``decode_input``: size check, then Pillow), plain and gray.

    A PNG's chunk CRCs are fixed first (:func:`fix_png_crcs`), so mutations reach the decoder.
    """
    data = fix_png_crcs(data)
    _allowed(lambda: decode_input(data, "x.png", limits=FUZZ_LIMITS))
    _allowed(lambda: decode_input(data, "x.png", gray=True, keep_alpha=True, limits=FUZZ_LIMITS))


TARGETS: dict[str, Callable[[bytes], None]] = {
    "kernel_spec": kernel_spec, "kernel_file": kernel_file, "arrays": arrays, "image": image,
}


# ---------------------------------------------------------------- seeds


def _image_bytes(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def seeds(target: str) -> list[bytes]:
    """Valid inputs of ``target`` to start mutating from."""
    rng = np.random.default_rng(0)
    if target == "kernel_spec":
        specs = ["sobel-x", "gaussian:1.5", "gaussian:2:7", "box:3", "log:1.4", "unsharp:1:2", "identity:3",
                 "1,2,1;2,4,2;1,2,1", "3x3: 0,-1,0,-1,5,-1,0,-1,0", "2x3: 1,2;3,4;5,6", "3: 1,1,1,1,1,1,1,1,1",
                 "1 2 1", "laplacian-8", "emboss", "k.npy", "1e308", "0.5,0.25;0.25,0"]
        return [s.encode() for s in specs]
    if target == "kernel_file":
        weights = rng.standard_normal((3, 3))
        layer = rng.standard_normal((2, 1, 3, 3))
        return [
            npy_bytes(weights), npy_bytes(layer.astype(np.float32)), npz_bytes({"W": layer, "b": np.ones(2)}),
            b"1 2 1\n2 4 2\n1 2 1\n", b"# a comment\n1, 0, -1\n2, 0, -2\n", json.dumps(weights.tolist()).encode(),
            json.dumps({"W": layer.tolist(), "b": [0.5, 1.0]}).encode(),
        ]
    if target == "arrays":
        return [
            npy_bytes(np.arange(12, dtype=np.float32).reshape(3, 4)), npy_bytes(np.zeros((1, 3, 4, 5), np.uint8)),
            npy_bytes(np.array([[True, False]])), npz_bytes({"x": np.ones((2, 3))}),
            npz_bytes({"dx": np.ones((1, 1, 2, 2)), "dW": np.zeros((1, 1, 3, 3))}),
            _compressed_npz(), b"1 2 3\n4 5 6\n", b"1,2\n3,4\n# end\n", _python2_npy(),
        ]
    if target == "image":
        rgb = Image.fromarray((rng.random((6, 7, 3)) * 255).astype(np.uint8))
        gray = Image.fromarray((rng.random((5, 4)) * 255).astype(np.uint8))
        floats = Image.fromarray(rng.random((4, 5)).astype(np.float32))
        deep = Image.fromarray((rng.random((4, 5)) * 65535).astype(np.uint16))
        rgba = rgb.convert("RGBA")
        return [
            _image_bytes(rgb, "PNG"), _image_bytes(gray, "PNG"), _image_bytes(rgba, "PNG"), _image_bytes(deep, "PNG"),
            _image_bytes(rgb.convert("P"), "PNG"), _image_bytes(rgb, "JPEG", quality=50), _image_bytes(rgb, "GIF"),
            _image_bytes(rgb, "BMP"), _image_bytes(gray, "TIFF"), _image_bytes(floats, "TIFF"),
            _image_bytes(floats, "TIFF", save_all=True, append_images=[floats, floats]),
            _image_bytes(rgb, "TIFF", compression="tiff_deflate"), _image_bytes(rgb, "WEBP", lossless=True),
            _image_bytes(rgb, "GIF", save_all=True, append_images=[gray.convert("RGB").resize((7, 6))] * 2),
        ]
    raise KeyError(target)


def _compressed_npz() -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, x=np.zeros((1, 1, 16, 16)))
    return buffer.getvalue()


def _python2_npy() -> bytes:
    header = b"{'descr': u'<f4', 'fortran_order': False, 'shape': (2L, 2L), }"
    header += b" " * (118 - len(header) - 1) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + np.ones(4, np.float32).tobytes()


def fix_png_crcs(data: bytes) -> bytes:
    """``data`` with every PNG chunk's CRC recomputed, so a mutation reaches the decoder, not only its CRC check.

    Data that is no PNG, or whose chunk lengths run past its end, is returned as it is
    (from the first such chunk on).
    """
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return data
    out = bytearray(data)
    at = 8
    while at + 12 <= len(out):
        length = struct.unpack(">I", out[at:at + 4])[0]
        end = at + 8 + length
        if end + 4 > len(out):
            break
        struct.pack_into(">I", out, end, zlib.crc32(bytes(out[at + 4:end])) & 0xFFFFFFFF)
        at = end + 4
    return bytes(out)

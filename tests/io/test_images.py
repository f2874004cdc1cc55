"""convcli.io.images: Pillow ⇄ NCHW float, modes, bit depths, alpha, EXIF, errors."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from convcli.errors import InputFileError, OutputFileError, ShapeError
from convcli.io.images import (
    LUMA_WEIGHTS,
    encode_png,
    encode_tiff_float,
    load_image,
    png_header,
)

EXPECTED = "expected PNG, JPEG, TIFF, BMP, WebP or GIF"


def encoded(im: Image.Image, fmt: str = "PNG", **kwargs: object) -> bytes:
    buffer = io.BytesIO()
    im.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def raw_png(samples: np.ndarray, depth: int, colour_type: int) -> bytes:
    """A PNG written by hand (Pillow cannot write 16-bit colour): samples (H, W, S) big-endian."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    h, w = samples.shape[:2]
    dtype = ">u2" if depth == 16 else "u1"
    rows = b"".join(b"\x00" + row.astype(dtype).tobytes() for row in samples)  # filter 0 per row
    ihdr = struct.pack(">IIBBBBB", w, h, depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def f8(ints: object) -> np.ndarray:
    """8-bit integers as the loader scales them: float32 / 255."""
    return np.asarray(ints, dtype=np.float32) / np.float32(255)


def f16(ints: object) -> np.ndarray:
    """16-bit integers as the loader scales them: float32 / 65535."""
    return np.asarray(ints, dtype=np.float32) / np.float32(65535)


def position_image(h: int, w: int, channels: int, rng: np.random.Generator) -> np.ndarray:
    """Random 8-bit samples (H, W, C) so that flips and channel swaps show."""
    return rng.integers(0, 256, size=(h, w, channels), dtype=np.uint8)


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_png_8bit_round_trip_is_exact(channels: int) -> None:
    rng = np.random.default_rng(channels)
    ints = rng.integers(0, 256, size=(channels, 5, 7))
    pixels = (ints / 255.0).astype(np.float32)
    loaded = load_image(encode_png(pixels), "x.png", keep_alpha=True)
    assert loaded.data.shape == (1, channels, 5, 7)
    assert loaded.data.dtype == np.float32
    assert loaded.bits == 8
    assert loaded.mode == {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[channels]
    np.testing.assert_array_equal(loaded.data[0], pixels)


def test_png_16bit_gray_round_trip_is_exact() -> None:
    ints = np.array([[0, 1, 2, 255, 256], [257, 32767, 32768, 65534, 65535]])
    pixels = (ints / 65535.0)[None]
    data = encode_png(pixels, bits=16)
    assert png_header(data) == (16, 0)
    loaded = load_image(data, "x.png")
    assert loaded.mode == "I;16" and loaded.bits == 16 and loaded.notes == []
    np.testing.assert_array_equal(loaded.data[0], (ints / 65535.0).astype(np.float32)[None])
    with Image.open(io.BytesIO(data)) as im:  # and the file holds the integers themselves
        np.testing.assert_array_equal(np.asarray(im), ints)


@given(arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(1, 6), st.integers(1, 6)), elements=st.floats(0, 1)))
@settings(max_examples=40, deadline=None)
def test_png_8bit_round_trip_is_within_half_a_step(pixels: np.ndarray) -> None:
    loaded = load_image(encode_png(pixels), "x.png", keep_alpha=True)
    assert np.max(np.abs(loaded.data[0] - pixels)) <= 0.5 / 255 + 1e-6


def test_png_rounds_clips_and_zeroes_nan() -> None:
    pixels = np.array([[[100.49 / 255, 100.51 / 255, -0.3, 1.7, np.nan, np.inf, -np.inf]]])
    with Image.open(io.BytesIO(encode_png(pixels))) as im:
        assert list(np.asarray(im)[0]) == [100, 101, 0, 255, 0, 255, 0]
    with Image.open(io.BytesIO(encode_png(pixels, bits=16))) as im:
        assert list(np.asarray(im)[0]) == [25826, 25831, 0, 65535, 0, 65535, 0]  # 100.49 * 257 = 25825.93


def test_png_accepts_2d_pixels() -> None:
    loaded = load_image(encode_png(np.full((3, 4), 1.0)), "x.png")
    assert loaded.data.shape == (1, 1, 3, 4)
    assert np.all(loaded.data == 1.0)


@pytest.mark.parametrize("channels", [2, 3, 4])
def test_png_16bit_colour_round_trips(channels: int) -> None:
    """16-bit colour PNGs are written (Pillow reads them back at 8 bits, so this decodes them itself)."""
    from test_png import decode_png

    pixels = np.random.default_rng(channels).random((channels, 9, 7))
    data = encode_png(pixels, bits=16)
    back, depth = decode_png(data)
    assert depth == 16 and back.shape == (9, 7, channels)
    np.testing.assert_array_equal(back, np.rint(pixels.transpose(1, 2, 0) * 65535).astype(np.uint16))


@pytest.mark.parametrize(
    ("shape", "bits", "error", "message"),
    [
        ((5, 2, 2), 8, OutputFileError, "PNG holds 1 to 4 channels .* got 5"),
        ((1, 2, 2), 12, OutputFileError, "bit depth must be 8 or 16, got 12"),
        ((4,), 8, ShapeError, r"shape \(C, H, W\) or \(H, W\), got shape \(4,\)"),
        ((1, 1, 2, 2), 8, ShapeError, r"got shape \(1, 1, 2, 2\)"),
        ((1, 0, 2), 8, ShapeError, "non-empty"),
    ],
)
def test_png_bad_arguments(shape: tuple[int, ...], bits: int, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        encode_png(np.zeros(shape), bits=bits)


def test_float_tiff_single_channel_is_exact() -> None:
    values = np.array([[-1.5, 0.0, 1e-30, 3.25], [np.nan, np.inf, -np.inf, 1e30]], dtype=np.float32)
    for given_shape in (values, values[None]):
        loaded = load_image(encode_tiff_float(given_shape), "x.tif")
        assert loaded.mode == "F" and loaded.data.dtype == np.float32
        np.testing.assert_array_equal(loaded.data, values[None, None])


def test_float_tiff_multichannel_is_one_page_per_channel() -> None:
    rng = np.random.default_rng(0)
    values = rng.standard_normal((3, 5, 4)).astype(np.float32)
    data = encode_tiff_float(values)
    with Image.open(io.BytesIO(data)) as im:
        assert getattr(im, "n_frames", 1) == 3
        for c in range(3):
            im.seek(c)
            assert im.mode == "F"
            np.testing.assert_array_equal(np.asarray(im), values[c])
    loaded = load_image(data, "x.tif")
    np.testing.assert_array_equal(loaded.data[0], values)
    assert loaded.notes == []


def test_float_tiff_gray() -> None:
    values = np.arange(3 * 2 * 2, dtype=np.float32).reshape(3, 2, 2)
    loaded = load_image(encode_tiff_float(values), "x.tif", gray=True)
    np.testing.assert_allclose(loaded.data[0], np.tensordot(LUMA_WEIGHTS, values, axes=1)[None], rtol=1e-6)
    with pytest.raises(ShapeError, match="gray needs 1 or 3 channels; 'x.tif' has 2"):
        load_image(encode_tiff_float(values[:2]), "x.tif", gray=True)


def test_float_tiff_rounds_float64_to_float32() -> None:
    values = np.array([[0.1, 1 / 3]], dtype=np.float64)
    loaded = load_image(encode_tiff_float(values), "x.tif")
    np.testing.assert_array_equal(loaded.data[0, 0], values.astype(np.float32))


# --------------------------------------------------------------------------- 16-bit colour PNG


def test_16bit_rgb_png_is_read_as_8bit_with_a_note() -> None:
    samples = np.array([[[0x1234, 0x5678, 0x9ABC], [0xFFFF, 0x0000, 0x80FF]]])
    data = raw_png(samples, 16, 2)
    assert png_header(data) == (16, 2)
    loaded = load_image(data, "deep.png")
    assert loaded.mode == "RGB" and loaded.bits == 8
    np.testing.assert_array_equal(loaded.data[0], f8((samples >> 8).transpose(2, 0, 1)))
    assert len(loaded.notes) == 1
    assert "16-bit RGB PNG" in loaded.notes[0] and "8-bit" in loaded.notes[0]


def test_16bit_rgba_png_note_and_alpha() -> None:
    samples = np.array([[[0x1200, 0x3400, 0x5600, 0x8000]]])
    loaded = load_image(raw_png(samples, 16, 6), "deep.png", keep_alpha=True)
    np.testing.assert_array_equal(loaded.data[0, :, 0, 0], f8(np.array([0x12, 0x34, 0x56, 0x80])))
    assert any("16-bit RGBA PNG" in note for note in loaded.notes)


def test_16bit_gray_alpha_png_gives_gray_and_alpha_channels() -> None:
    samples = np.array([[[0x1234, 0xFF00], [0xABCD, 0x0101]]])
    loaded = load_image(raw_png(samples, 16, 4), "ga.png", keep_alpha=True)
    assert loaded.data.shape == (1, 2, 1, 2)
    np.testing.assert_array_equal(loaded.data[0, 0, 0], f8(np.array([0x12, 0xAB])))
    np.testing.assert_array_equal(loaded.data[0, 1, 0], f8(np.array([0xFF, 0x01])))
    assert any("16-bit grayscale+alpha PNG" in note for note in loaded.notes)


def test_16bit_gray_png_written_by_hand_keeps_full_precision() -> None:
    samples = np.array([[[0x1234], [0xFFFF], [0x0001]]])
    loaded = load_image(raw_png(samples, 16, 0), "g.png")
    assert loaded.notes == [] and loaded.bits == 16
    np.testing.assert_array_equal(loaded.data[0, 0, 0], f16(np.array([0x1234, 0xFFFF, 1])))


def raw_tiff_rgb16(samples: np.ndarray) -> bytes:
    """A little-endian 16-bit RGB TIFF written by hand: samples (H, W, 3)."""
    h, w, _ = samples.shape
    data = samples.astype("<u2").tobytes()
    data_offset = 14  # after the 8-byte header and the 3 BitsPerSample values
    ifd_offset = data_offset + len(data) + len(data) % 2
    short, long_ = 3, 4
    tags = [
        (256, short, 1, w),
        (257, short, 1, h),
        (258, short, 3, 8),  # BitsPerSample: offset of (16, 16, 16)
        (259, short, 1, 1),  # no compression
        (262, short, 1, 2),  # RGB
        (273, long_, 1, data_offset),
        (277, short, 1, 3),
        (278, short, 1, h),
        (279, long_, 1, len(data)),
        (284, short, 1, 1),
    ]
    entries = b"".join(
        struct.pack("<HHII", tag, kind, count, value)
        if kind == long_ or count > 1
        else struct.pack("<HHIHH", tag, kind, count, value, 0)
        for tag, kind, count, value in tags
    )
    head = b"II*\x00" + struct.pack("<I", ifd_offset) + struct.pack("<HHH", 16, 16, 16) + data
    return head.ljust(ifd_offset, b"\x00") + struct.pack("<H", len(tags)) + entries + struct.pack("<I", 0)


def test_16bit_rgb_tiff_is_read_as_8bit_with_a_note() -> None:
    samples = np.array([[[0x1234, 0x5678, 0x9ABC], [0xFFFF, 0x0000, 0x80FF]]])
    loaded = load_image(raw_tiff_rgb16(samples), "deep.tif")
    assert loaded.bits == 8
    np.testing.assert_array_equal(loaded.data[0], f8((samples >> 8).transpose(2, 0, 1)))
    assert len(loaded.notes) == 1 and "16-bit RGB TIFF" in loaded.notes[0]


# --------------------------------------------------------------------------- EXIF orientation


def halves_jpeg(orientation: int) -> bytes:
    """A 16 wide × 8 high JPEG: left half black, right half white, with an EXIF orientation."""
    pixels = np.zeros((8, 16), np.uint8)
    pixels[:, 8:] = 255
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encoded(Image.fromarray(pixels).convert("RGB"), "JPEG", quality=100, exif=exif.tobytes())


@pytest.mark.parametrize(
    ("orientation", "shape", "dark"),
    [
        (1, (8, 16), "left"),
        (3, (8, 16), "right"),  # rotated 180°
        (6, (16, 8), "top"),  # shown rotated 90° clockwise: the left edge goes to the top
        (8, (16, 8), "bottom"),  # rotated 90° anticlockwise
    ],
)
def test_exif_orientation_is_applied(orientation: int, shape: tuple[int, int], dark: str) -> None:
    loaded = load_image(halves_jpeg(orientation), "photo.jpg", gray=True)
    plane = loaded.data[0, 0]
    assert plane.shape == shape
    h, w = shape
    halves = {
        "left": (plane[:, : w // 2], plane[:, w // 2 :]),
        "right": (plane[:, w // 2 :], plane[:, : w // 2]),
        "top": (plane[: h // 2], plane[h // 2 :]),
        "bottom": (plane[h // 2 :], plane[: h // 2]),
    }[dark]
    assert halves[0].max() < 0.1 and halves[1].min() > 0.9


# --------------------------------------------------------------------------- modes and alpha


def test_alpha_is_dropped_with_a_note() -> None:
    rgba = np.array([[[10, 20, 30, 128], [40, 50, 60, 255]]], np.uint8)
    loaded = load_image(encoded(Image.fromarray(rgba)), "a.png")
    assert loaded.data.shape == (1, 3, 1, 2)
    np.testing.assert_array_equal(loaded.data[0], f8(rgba[..., :3].transpose(2, 0, 1)))
    assert len(loaded.notes) == 1 and "alpha channel dropped" in loaded.notes[0]


def test_alpha_is_kept_as_last_channel() -> None:
    rgba = np.array([[[10, 20, 30, 128], [40, 50, 60, 255]]], np.uint8)
    loaded = load_image(encoded(Image.fromarray(rgba)), "a.png", keep_alpha=True)
    assert loaded.data.shape == (1, 4, 1, 2)
    np.testing.assert_array_equal(loaded.data[0], f8(rgba.transpose(2, 0, 1)))
    assert loaded.notes == []


def test_opaque_alpha_is_dropped_silently() -> None:
    rgba = np.full((2, 2, 4), 255, np.uint8)
    assert load_image(encoded(Image.fromarray(rgba)), "a.png").notes == []


def test_keep_alpha_without_alpha_changes_nothing() -> None:
    rgb = position_image(3, 4, 3, np.random.default_rng(1))
    loaded = load_image(encoded(Image.fromarray(rgb)), "x.png", keep_alpha=True)
    assert loaded.data.shape == (1, 3, 3, 4)


def test_la_image() -> None:
    la = np.array([[[200, 100], [50, 255]]], np.uint8)
    data = encoded(Image.fromarray(la, "LA"))
    kept = load_image(data, "la.png", keep_alpha=True)
    assert kept.mode == "LA"
    np.testing.assert_array_equal(kept.data[0], f8(la.transpose(2, 0, 1)))
    dropped = load_image(data, "la.png")
    np.testing.assert_array_equal(dropped.data[0], f8(la[None, :, :, 0]))


def test_palette_image_becomes_rgb() -> None:
    im = Image.new("P", (3, 1))
    im.putpalette([255, 0, 0, 0, 128, 255, 10, 20, 30])
    im.putdata([2, 0, 1])
    loaded = load_image(encoded(im), "p.png")
    assert loaded.mode == "P" and loaded.data.shape == (1, 3, 1, 3)
    expected = f8(np.array([[10, 20, 30], [255, 0, 0], [0, 128, 255]]).T[:, None, :])
    np.testing.assert_array_equal(loaded.data[0], expected)


def test_palette_with_transparency_has_alpha() -> None:
    im = Image.new("P", (2, 1))
    im.putpalette([255, 0, 0, 0, 0, 255])
    im.putdata([0, 1])
    im.info["transparency"] = 0
    loaded = load_image(encoded(im, transparency=0), "p.png", keep_alpha=True)
    assert loaded.data.shape == (1, 4, 1, 2)
    np.testing.assert_array_equal(loaded.data[0, 3, 0], [0.0, 1.0])


def test_gray_palette_gives_one_channel() -> None:
    im = Image.new("P", (2, 1))
    im.putpalette([0, 0, 0, 51, 51, 51])
    im.putdata([1, 0])
    loaded = load_image(encoded(im), "p.png")
    np.testing.assert_array_equal(loaded.data, np.array([[[[0.2, 0.0]]]], np.float32))


def test_one_bit_image_gives_zero_and_one() -> None:
    im = Image.new("1", (3, 2), 0)
    im.putpixel((1, 0), 1)
    im.putpixel((2, 1), 1)
    loaded = load_image(encoded(im), "b.png")
    assert loaded.mode == "1" and loaded.bits == 8
    np.testing.assert_array_equal(loaded.data[0, 0], [[0, 1, 0], [0, 0, 1]])


def test_gray_uses_601_luma_in_float() -> None:
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 200, 77]]], np.uint8)
    loaded = load_image(encoded(Image.fromarray(rgb)), "c.png", gray=True)
    assert loaded.data.shape == (1, 1, 1, 4)
    expected = (rgb / 255.0) @ np.array(LUMA_WEIGHTS)
    np.testing.assert_allclose(loaded.data[0, 0], expected, rtol=0, atol=1e-6)
    pillow = np.asarray(Image.fromarray(rgb).convert("L")) / 255.0  # Pillow's L, rounded to 8 bits
    np.testing.assert_allclose(loaded.data[0, 0], pillow, atol=0.5 / 255 + 1e-6)


def test_gray_with_alpha_gives_luma_and_alpha() -> None:
    rgba = np.array([[[255, 0, 0, 64]]], np.uint8)
    loaded = load_image(encoded(Image.fromarray(rgba)), "a.png", gray=True, keep_alpha=True)
    np.testing.assert_allclose(loaded.data[0, :, 0, 0], [0.299, 64 / 255], atol=1e-6)


def test_gray_on_16bit_gray_keeps_precision() -> None:
    ints = np.array([[1, 2, 65534]])
    loaded = load_image(encode_png((ints / 65535.0)[None], bits=16), "g.png", gray=True)
    np.testing.assert_array_equal(loaded.data[0, 0], (ints / 65535.0).astype(np.float32))


def test_32bit_integer_image() -> None:
    ints = np.array([[0, 1000, 65535]], np.int32)
    loaded = load_image(encoded(Image.fromarray(ints), "TIFF"), "i.tif")
    assert loaded.mode == "I" and loaded.bits == 16 and loaded.notes == []
    np.testing.assert_array_equal(loaded.data[0, 0], (ints / 65535.0).astype(np.float32))
    wide = np.array([[-5, 100000]], np.int32)
    loaded = load_image(encoded(Image.fromarray(wide), "TIFF"), "i.tif")
    np.testing.assert_array_equal(loaded.data[0, 0], wide.astype(np.float32))
    assert any("unscaled" in note for note in loaded.notes)


@pytest.mark.parametrize(
    ("fmt", "kwargs"),
    [("PNG", {}), ("BMP", {}), ("TIFF", {}), ("WEBP", {"lossless": True}), ("GIF", {})],
)
def test_lossless_formats_read_exactly(fmt: str, kwargs: dict[str, object]) -> None:
    rgb = position_image(6, 5, 3, np.random.default_rng(3))
    if fmt == "GIF":
        rgb = (rgb // 128) * 255  # at most 8 colours, so the palette is exact
    loaded = load_image(encoded(Image.fromarray(rgb), fmt, **kwargs), f"x.{fmt.lower()}")
    np.testing.assert_array_equal(loaded.data[0], f8(rgb.transpose(2, 0, 1)))


def test_jpeg_and_cmyk_jpeg_read_as_rgb() -> None:
    rgb = np.full((8, 8, 3), (200, 100, 50), np.uint8)
    loaded = load_image(encoded(Image.fromarray(rgb), "JPEG", quality=100), "x.jpg")
    np.testing.assert_allclose(loaded.data[0, :, 0, 0], np.array([200, 100, 50]) / 255, atol=3 / 255)
    cmyk = load_image(encoded(Image.fromarray(rgb).convert("CMYK"), "JPEG", quality=100), "k.jpg")
    assert cmyk.mode == "CMYK" and cmyk.data.shape == (1, 3, 8, 8)


def test_gif_reads_the_first_frame_with_a_note() -> None:
    first, second = Image.new("L", (4, 4), 0), Image.new("L", (4, 4), 200)
    loaded = load_image(encoded(first, "GIF", save_all=True, append_images=[second]), "anim.gif")
    assert loaded.notes == ["2 frames; only the first was read"]
    assert np.all(loaded.data == 0)


# --------------------------------------------------------------------------- errors


def assert_one_line_unreadable(excinfo: pytest.ExceptionInfo[InputFileError], name: str) -> None:
    message = str(excinfo.value)
    assert "\n" not in message
    assert message.startswith(f"cannot read {name!r} as an image: ")
    assert message.endswith(EXPECTED)
    assert excinfo.value.exit_code == 3


@pytest.mark.parametrize("data", [b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\x00" * 30, b"GIF89a"])
def test_garbage_is_refused(data: bytes) -> None:
    with pytest.raises(InputFileError) as excinfo:
        load_image(data, "junk.png")
    assert_one_line_unreadable(excinfo, "junk.png")


def test_truncated_png_is_refused() -> None:
    rgb = position_image(64, 64, 3, np.random.default_rng(4))
    data = encoded(Image.fromarray(rgb))
    with pytest.raises(InputFileError) as excinfo:
        load_image(data[: len(data) // 2], "cut.png")
    assert_one_line_unreadable(excinfo, "cut.png")


def test_truncated_jpeg_is_refused() -> None:
    rgb = position_image(64, 64, 3, np.random.default_rng(5))
    data = encoded(Image.fromarray(rgb), "JPEG")
    with pytest.raises(InputFileError) as excinfo:
        load_image(data[: len(data) // 2], "cut.jpg")
    assert_one_line_unreadable(excinfo, "cut.jpg")


def test_decompression_bomb_is_refused() -> None:
    header = raw_png(np.zeros((1, 1, 1)), 8, 0)
    ihdr = struct.pack(">IIBBBBB", 30000, 30000, 8, 0, 0, 0, 0)
    body = b"IHDR" + ihdr
    bomb = header[:8] + struct.pack(">I", 13) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF) + header[33:]
    with pytest.raises(InputFileError, match="900000000 pixels, over Pillow's decompression-bomb limit") as excinfo:
        load_image(bomb, "bomb.png")
    assert_one_line_unreadable(excinfo, "bomb.png")


# --------------------------------------------------------------------------- small helpers


def test_png_header() -> None:
    assert png_header(encode_png(np.zeros((3, 1, 1)))) == (8, 2)
    assert png_header(b"\xff\xd8\xff\xe0") is None


# --------------------------------------------------------------------------- sample images

SAMPLES = Path(__file__).resolve().parents[2] / "sample_images"


@pytest.mark.parametrize(
    ("name", "mode", "channels", "bits"),
    [("photo.png", "RGB", 3, 8), ("gray.png", "L", 1, 8), ("gray16.png", "I;16", 1, 16), ("alpha.png", "RGBA", 4, 8)],
)
def test_sample_images(name: str, mode: str, channels: int, bits: int) -> None:
    path = SAMPLES / name
    assert path.stat().st_size < 200_000
    loaded = load_image(path.read_bytes(), name, keep_alpha=True)
    assert (loaded.mode, loaded.bits) == (mode, bits)
    assert loaded.data.shape == (1, channels, 192, 256)
    if name == "gray16.png":  # smooth shading that needs more than 8 bits
        assert len(np.unique(loaded.data)) > 1000
    if name == "alpha.png":
        alpha = loaded.data[0, 3]
        assert alpha.min() == 0.0 and alpha.max() == 1.0 and np.any((alpha > 0) & (alpha < 1))

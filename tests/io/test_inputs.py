"""convcli.io.inputs: reading sources, sniffing, NCHW shapes, whole inputs of every kind."""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from convcli.errors import InputFileError, ShapeError
from convcli.io.arrays import load_npz
from convcli.io.images import LUMA_WEIGHTS, encode_png
from convcli.io.inputs import LoadedInput, load_input, read_source, sniff, to_nchw
from convcli.io.outputs import npy_bytes, npz_bytes

NOT_ROOT = pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root ignores file permissions")


def png_bytes(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


def fake_stdin(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", SimpleNamespace(buffer=io.BytesIO(data)))


# --------------------------------------------------------------------------- read_source


def test_read_source_reads_a_file(tmp_path: Path) -> None:
    (tmp_path / "a.bin").write_bytes(b"\x00\x01abc")
    assert read_source(str(tmp_path / "a.bin")) == b"\x00\x01abc"


def test_read_source_reads_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_stdin(monkeypatch, b"\x93NUMPY...")
    assert read_source("-") == b"\x93NUMPY..."


def test_read_source_empty_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_stdin(monkeypatch, b"")
    with pytest.raises(InputFileError) as excinfo:
        read_source("-")
    assert str(excinfo.value) == "standard input is empty; expected .npy or image bytes"


def test_read_source_missing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputFileError) as excinfo:
        read_source("x.png")
    assert str(excinfo.value) == "input file 'x.png' not found"
    assert excinfo.value.exit_code == 3


def test_read_source_directory(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="is a directory, not a file"):
        read_source(str(tmp_path))


def test_read_source_empty_file(tmp_path: Path) -> None:
    (tmp_path / "e.npy").write_bytes(b"")
    with pytest.raises(InputFileError, match="'.*e.npy' is empty"):
        read_source(str(tmp_path / "e.npy"))


def test_read_source_permission_denied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "secret.png"
    path.write_bytes(b"x")

    real_open = os.open

    def denied(name: str, *args: object, **kwargs: object) -> int:
        if str(name) == str(path):
            raise PermissionError(13, "Permission denied")
        return real_open(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", denied)
    with pytest.raises(InputFileError, match="cannot read input file '.*secret.png': permission denied"):
        read_source(str(path))


@NOT_ROOT
def test_read_source_permission_denied_for_real(tmp_path: Path) -> None:
    path = tmp_path / "secret.png"
    path.write_bytes(b"x")
    path.chmod(0)
    try:
        with pytest.raises(InputFileError, match="permission denied"):
            read_source(str(path))
    finally:
        path.chmod(0o600)


# --------------------------------------------------------------------------- sniff


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"\x93NUMPY\x01\x00", "npy"),
        (b"PK\x03\x04rest", "npz"),
        (b"PK\x05\x06" + b"\x00" * 18, "npz"),
        (b"\x89PNG\r\n\x1a\n....", "image"),
        (b"\xff\xd8\xff\xe0", "image"),
        (b"GIF87a..", "image"),
        (b"GIF89a..", "image"),
        (b"BM\x00\x00", "image"),
        (b"II*\x00....", "image"),
        (b"MM\x00*....", "image"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image"),
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", "unknown"),
        (b"1 2 3\n4 5 6\n", "unknown"),
        (b"", "unknown"),
        (b"\x93NUMP", "unknown"),
    ],
)
def test_sniff(head: bytes, kind: str) -> None:
    assert sniff(head) == kind


def test_sniff_real_files() -> None:
    assert sniff(npy_bytes(np.zeros(3))) == "npy"
    assert sniff(npz_bytes({"x": np.zeros(3)})) == "npz"
    assert sniff(npz_bytes({})) == "npz"
    assert sniff(encode_png(np.zeros((1, 2, 2)))) == "image"


def test_format_comes_from_bytes_not_extension(tmp_path: Path) -> None:
    rgb = np.arange(24, dtype=np.uint8).reshape(2, 4, 3)
    (tmp_path / "image.npy").write_bytes(png_bytes(rgb))
    (tmp_path / "array.png").write_bytes(npy_bytes(np.ones((2, 3), np.int16)))
    image = load_input(str(tmp_path / "image.npy"))
    assert image.kind == "image" and image.data.shape == (1, 3, 2, 4)
    array = load_input(str(tmp_path / "array.png"))
    assert array.kind == "array" and array.data.dtype == np.int16 and array.data.shape == (1, 1, 2, 3)


# --------------------------------------------------------------------------- to_nchw


@pytest.mark.parametrize(
    ("shape", "nchw"),
    [((4, 5), (1, 1, 4, 5)), ((3, 4, 5), (1, 3, 4, 5)), ((2, 3, 4, 5), (2, 3, 4, 5)), ((1, 1), (1, 1, 1, 1))],
)
def test_to_nchw_shapes(shape: tuple[int, ...], nchw: tuple[int, ...]) -> None:
    array = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
    out = to_nchw(array, "a.npy")
    assert out.shape == nchw and out.dtype == np.float32
    assert np.shares_memory(out, array)
    np.testing.assert_array_equal(out.ravel(), array.ravel())


@given(st.lists(st.integers(1, 3), min_size=0, max_size=6))
def test_to_nchw_any_shape(shape: list[int]) -> None:
    array = np.zeros(shape, np.int32)
    if len(shape) in (2, 3, 4):
        out = to_nchw(array, "a")
        assert out.ndim == 4 and out.shape[4 - len(shape) :] == tuple(shape)
    else:
        with pytest.raises(ShapeError):
            to_nchw(array, "a")


@pytest.mark.parametrize("shape", [(), (7,), (1, 2, 3, 4, 5)])
def test_to_nchw_wrong_ndim_names_shapes(shape: tuple[int, ...]) -> None:
    with pytest.raises(ShapeError) as excinfo:
        to_nchw(np.zeros(shape), "a.npy")
    message = str(excinfo.value)
    assert f"'a.npy' has shape {shape} ({len(shape)}-D)" in message
    assert "expected (H, W), (C, H, W) or (N, C, H, W)" in message
    assert excinfo.value.exit_code == 2


def test_to_nchw_empty_axis() -> None:
    with pytest.raises(ShapeError, match=r"shape \(0, 5\), with an empty axis"):
        to_nchw(np.zeros((0, 5)), "a.npy")


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.array([["a", "b"], ["c", "d"]]), "holds <U1 values; expected a numeric"),
        (np.zeros((2, 2), dtype=object), "holds object values"),
        (np.zeros((2, 2), dtype=np.complex64), "complex values"),
        (np.zeros((2, 2), dtype="datetime64[s]"), "holds datetime64"),
        (np.zeros((2, 2), dtype=[("a", "f4")]), "expected a numeric"),
    ],
)
def test_to_nchw_non_numeric_is_refused(array: np.ndarray, message: str) -> None:
    with pytest.raises(InputFileError, match=message):
        to_nchw(array, "a.npy")


def test_to_nchw_bool_becomes_uint8() -> None:
    out = to_nchw(np.array([[True, False]]), "mask.npy")
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, [[[[1, 0]]]])


# --------------------------------------------------------------------------- load_input


def test_load_input_image_file(tmp_path: Path) -> None:
    rgb = np.arange(24, dtype=np.uint8).reshape(2, 4, 3)
    path = tmp_path / "pic.final.png"
    path.write_bytes(png_bytes(rgb))
    item = load_input(str(path))
    assert isinstance(item, LoadedInput)
    assert item.kind == "image" and item.name == str(path) and item.stem == "pic.final"
    assert item.data.dtype == np.float32
    np.testing.assert_array_equal(item.data[0], rgb.transpose(2, 0, 1).astype(np.float32) / np.float32(255))


def test_load_input_image_options(tmp_path: Path) -> None:
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[..., 3] = 100
    (tmp_path / "a.png").write_bytes(png_bytes(rgba))
    item = load_input(str(tmp_path / "a.png"), gray=True, keep_alpha=True)
    np.testing.assert_allclose(item.data[0, :, 0, 0], [0.299, 100 / 255], atol=1e-6)
    dropped = load_input(str(tmp_path / "a.png"))
    assert dropped.data.shape == (1, 3, 2, 2) and dropped.notes


def test_load_input_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    array = np.arange(12, dtype=np.float64).reshape(3, 4)
    fake_stdin(monkeypatch, npy_bytes(array))
    item = load_input("-")
    assert (item.name, item.stem, item.kind) == ("<stdin>", "stdin", "array")
    assert item.data.shape == (1, 1, 3, 4) and item.data.dtype == np.float64


def test_load_input_stdin_image(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_stdin(monkeypatch, png_bytes(np.zeros((3, 5, 3), np.uint8)))
    item = load_input("-")
    assert item.kind == "image" and item.data.shape == (1, 3, 3, 5)


def test_load_input_stdin_text(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_stdin(monkeypatch, b"1 2\n3 4\n")
    item = load_input("-")
    np.testing.assert_array_equal(item.data, [[[[1, 2], [3, 4]]]])


def test_load_input_empty_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_stdin(monkeypatch, b"")
    with pytest.raises(InputFileError, match="standard input is empty"):
        load_input("-")


def test_load_input_text_by_extension(tmp_path: Path) -> None:
    (tmp_path / "k.csv").write_text("1,2,3\n4,5,6\n")
    item = load_input(str(tmp_path / "k.csv"))
    assert item.kind == "array" and item.stem == "k" and item.data.shape == (1, 1, 2, 3)


def test_load_input_unknown_format(tmp_path: Path) -> None:
    (tmp_path / "notes.dat").write_bytes(b"1 2 3\n")
    with pytest.raises(InputFileError, match="cannot tell the format of '.*notes.dat' from its first bytes") as excinfo:
        load_input(str(tmp_path / "notes.dat"))
    assert "\n" not in str(excinfo.value)


def test_load_input_npz_choice(tmp_path: Path) -> None:
    (tmp_path / "one.npz").write_bytes(npz_bytes({"weights": np.ones((2, 2), np.int8)}))
    assert load_input(str(tmp_path / "one.npz")).data.dtype == np.int8
    (tmp_path / "x.npz").write_bytes(npz_bytes({"a": np.zeros((2, 2)), "x": np.ones((3, 2, 2), np.float32)}))
    item = load_input(str(tmp_path / "x.npz"))
    assert item.data.shape == (1, 3, 2, 2) and item.data.dtype == np.float32
    (tmp_path / "two.npz").write_bytes(npz_bytes({"a": np.zeros((2, 2)), "b": np.zeros((2, 2))}))
    with pytest.raises(InputFileError, match=r"holds several arrays \(a, b\) and none named 'x'"):
        load_input(str(tmp_path / "two.npz"))
    (tmp_path / "empty.npz").write_bytes(npz_bytes({}))
    with pytest.raises(InputFileError, match="empty .npz"):
        load_input(str(tmp_path / "empty.npz"))


def test_load_input_gray_on_arrays(tmp_path: Path) -> None:
    rgb = np.arange(2 * 3 * 2 * 2, dtype=np.float64).reshape(2, 3, 2, 2)
    (tmp_path / "rgb.npy").write_bytes(npy_bytes(rgb))
    item = load_input(str(tmp_path / "rgb.npy"), gray=True)
    assert item.data.shape == (2, 1, 2, 2) and item.data.dtype == np.float64
    expected = np.tensordot(np.array(LUMA_WEIGHTS), rgb, axes=([0], [1]))[:, None]
    np.testing.assert_allclose(item.data, expected, rtol=1e-15)

    ints = np.full((3, 2, 2), 100, np.uint8)
    (tmp_path / "ints.npy").write_bytes(npy_bytes(ints))
    gray = load_input(str(tmp_path / "ints.npy"), gray=True)
    assert gray.data.dtype == np.float32
    np.testing.assert_allclose(gray.data, 100.0, rtol=1e-6)

    one = np.arange(4, dtype=np.int16).reshape(1, 2, 2)
    (tmp_path / "one.npy").write_bytes(npy_bytes(one))
    same = load_input(str(tmp_path / "one.npy"), gray=True)
    assert same.data.dtype == np.int16
    np.testing.assert_array_equal(same.data[0], one)

    (tmp_path / "four.npy").write_bytes(npy_bytes(np.zeros((4, 2, 2))))
    with pytest.raises(ShapeError, match=r"gray needs 1 or 3 channels; '.*four.npy' has shape \(1, 4, 2, 2\)"):
        load_input(str(tmp_path / "four.npy"), gray=True)


def test_load_input_notes_for_arrays(tmp_path: Path) -> None:
    (tmp_path / "hwc.npy").write_bytes(npy_bytes(np.zeros((20, 30, 3), np.uint8)))
    item = load_input(str(tmp_path / "hwc.npy"))
    assert item.data.shape == (1, 20, 30, 3)
    assert any("looks like (H, W, C)" in note for note in item.notes)
    (tmp_path / "nan.npy").write_bytes(npy_bytes(np.array([[np.nan, 1.0], [np.inf, 2.0]], np.float32)))
    item = load_input(str(tmp_path / "nan.npy"))
    assert item.notes == ["2 non-finite values (NaN or inf); they spread through the convolution"]
    assert np.isnan(item.data[0, 0, 0, 0])


def test_load_input_missing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputFileError, match="^input file 'x.png' not found$"):
        load_input("x.png")


def test_load_input_pickled_npy(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.array([1, "a"], dtype=object), allow_pickle=True)
    (tmp_path / "evil.npy").write_bytes(buffer.getvalue())
    with pytest.raises(InputFileError, match="allow_pickle=False"):
        load_input(str(tmp_path / "evil.npy"))


def test_inputs_carry_the_image_bit_depth(tmp_path: Path) -> None:
    Image.fromarray(np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000).save(tmp_path / "g16.png")
    Image.fromarray(np.arange(12, dtype=np.uint8).reshape(3, 4)).save(tmp_path / "g8.png")
    np.save(tmp_path / "a.npy", np.ones((3, 4)))
    assert load_input(str(tmp_path / "g16.png")).bits == 16
    assert load_input(str(tmp_path / "g8.png")).bits == 8
    assert load_input(str(tmp_path / "a.npy")).bits is None


def test_decode_input_is_load_input_of_bytes(tmp_path: Path) -> None:
    from convcli.io.inputs import array_input, decode_input, pick_npz

    data = npz_bytes({"a": np.zeros((2, 2)), "x": np.arange(6.0).reshape(2, 3)})
    got = decode_input(data, "-")
    assert got.name == "<stdin>" and got.stem == "stdin" and got.data.shape == (1, 1, 2, 3)
    picked = pick_npz(load_npz(data, "n.npz"), "n.npz")
    np.testing.assert_array_equal(array_input(picked, "n.npz").data, got.data)
    with pytest.raises(InputFileError, match="several arrays"):
        pick_npz({"a": np.zeros(1), "b": np.zeros(1)}, "n.npz")
    assert decode_input(b"1 2\n3 4\n", "m.txt").data.shape == (1, 1, 2, 2)

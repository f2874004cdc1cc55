"""convcli.io.arrays: .npy/.npz/text bytes into arrays, and the one .npz member rule."""

from __future__ import annotations

import io
import pickle
import re
import struct
import zipfile

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from convcli.errors import InputFileError, KernelSpecError
from convcli.io.arrays import choose_member, load_npy, load_npz, load_text, parse_row
from convcli.io.outputs import npy_bytes, npz_bytes

# --------------------------------------------------------------------------- .npy / .npz


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int64, np.float16, np.float32, np.float64, np.bool_])
def test_npy_round_trip_keeps_dtype(dtype: type) -> None:
    array: np.ndarray = (np.arange(24).reshape(2, 3, 4) % 7).astype(dtype)
    back = load_npy(npy_bytes(array), "a.npy")
    assert back.dtype == array.dtype
    np.testing.assert_array_equal(back, array)


def test_npy_big_endian_and_fortran_order() -> None:
    array = np.asfortranarray(np.arange(6, dtype=">f8").reshape(2, 3))
    back = load_npy(npy_bytes(array), "a.npy")
    assert back.dtype == np.dtype(">f8")
    np.testing.assert_array_equal(back, array)


def test_pickled_npy_is_refused() -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(InputFileError, match=r"'evil.npy' holds Python objects .*allow_pickle=False") as excinfo:
        load_npy(buffer.getvalue(), "evil.npy")
    assert "\n" not in str(excinfo.value)


def test_pickle_file_is_not_npy() -> None:
    with pytest.raises(InputFileError, match="does not start with the .npy magic"):
        load_npy(pickle.dumps(np.zeros(3)), "p.npy")


@pytest.mark.parametrize("cut", [10, 60, 100])
def test_truncated_npy_is_refused(cut: int) -> None:
    data = npy_bytes(np.arange(20.0))
    with pytest.raises(InputFileError, match="cannot read 'a.npy' as .npy: ") as excinfo:
        load_npy(data[:cut], "a.npy")
    assert "\n" not in str(excinfo.value)


def test_npy_promising_more_data_than_present_is_refused_before_allocating() -> None:
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (100000000000,), }"
    header += " " * (64 - 10 - len(header) - 1) + "\n"
    data = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + b"\x00" * 80
    with pytest.raises(InputFileError) as excinfo:
        load_npy(data, "big.npy")
    assert str(excinfo.value) == (
        "cannot read 'big.npy' as .npy: it is truncated "
        "(shape (100000000000,) of float64 needs 800000000000 bytes of data, 80 found)"
    )


def test_corrupt_npy_header_is_refused() -> None:
    data = bytearray(npy_bytes(np.arange(4.0)))
    data[10:20] = b"!!!!!!!!!!"
    with pytest.raises(InputFileError, match="cannot read 'a.npy' as .npy"):
        load_npy(bytes(data), "a.npy")


def deflated(npz: bytes) -> bytes:
    """The same archive with its members compressed (as np.savez_compressed writes)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(npz)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for name in source.namelist():
            target.writestr(name, source.read(name))
    return out.getvalue()


def test_npz_round_trip_keeps_names_and_dtypes() -> None:
    members: dict[str, np.ndarray] = {
        "x": np.arange(6, dtype=np.uint16).reshape(2, 3),
        "file": np.ones(2, np.float32),
        "allow_pickle": np.array(3.5),
    }
    for compress in (False, True):
        data = deflated(npz_bytes(members)) if compress else npz_bytes(members)
        back = load_npz(data, "a.npz")
        assert list(back) == ["x", "file", "allow_pickle"]
        assert back["x"].dtype == np.uint16 and back["file"].dtype == np.float32
        np.testing.assert_array_equal(back["x"], members["x"])
        with np.load(io.BytesIO(data)) as archive:  # numpy reads it too
            np.testing.assert_array_equal(archive["x"], members["x"])


def test_npz_written_by_numpy_is_read() -> None:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, a=np.eye(2), b=np.zeros(3, np.int8))
    back = load_npz(buffer.getvalue(), "n.npz")
    assert set(back) == {"a", "b"} and back["b"].dtype == np.int8


def test_pickled_npz_member_is_refused() -> None:
    buffer = io.BytesIO()
    np.savez(buffer, x=np.array([object()], dtype=object))
    with pytest.raises(InputFileError, match="holds Python objects"):
        load_npz(buffer.getvalue(), "evil.npz")


def test_corrupt_npz_is_refused() -> None:
    data = npz_bytes({"x": np.arange(100.0)})
    with pytest.raises(InputFileError, match="cannot read 'a.npz' as .npz: ") as excinfo:
        load_npz(data[: len(data) // 2], "a.npz")
    assert "\n" not in str(excinfo.value)


def test_zip_of_other_files_is_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("x.npy", b"not an npy file")
    with pytest.raises(InputFileError, match="cannot read 'z.npz' as .npz"):
        load_npz(buffer.getvalue(), "z.npz")


# --------------------------------------------------------------------------- text arrays


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"1 2 3\n4 5 6\n", [[1, 2, 3], [4, 5, 6]]),
        (b"1,2\n3,4.5\n", [[1, 2], [3, 4.5]]),
        (b"# comment\n-1e-3\t2\n", [[-1e-3, 2]]),
        (b"\xef\xbb\xbf7 8\n", [[7, 8]]),
    ],
)
def test_load_text(text: bytes, expected: list[list[float]]) -> None:
    array = load_text(text, "t.txt")
    assert array.dtype == np.float64
    np.testing.assert_array_equal(array, expected)


@pytest.mark.parametrize("text", [b"1 2\n3\n", b"1 x\n", b"\xff\xfe\x00", b"# only a comment\n"])
def test_bad_text_is_refused(text: bytes) -> None:
    with pytest.raises(InputFileError, match="'t.txt'") as excinfo:
        load_text(text, "t.txt")
    assert "\n" not in str(excinfo.value)


def _reference_row(text: str) -> list[float]:
    """parse_row's rule in one line: split at commas and/or white space, every piece a number."""
    return [float(token) for token in re.split(r"\s*,\s*|\s+", text.strip())]


@given(st.text(alphabet=" \t,1.5e-x", max_size=12))
def test_parse_row_agrees_with_its_rule(text: str) -> None:
    try:
        expected = _reference_row(text)
    except ValueError:
        with pytest.raises(ValueError, match=r"\(row 1, value \d+\)|empty value in row 1 \(value \d+\)"):
            parse_row(text, "row 1")
    else:
        assert parse_row(text, "row 1") == expected


def test_parse_row_names_the_place() -> None:
    assert parse_row(" 1, 2\t3 ,4 ", "line 1") == [1, 2, 3, 4]
    for text, message in [("1,,2", "empty value in line 7 (value 2)"), (",1", "empty value in line 7 (value 1)"),
                          ("1 2,", "empty value in line 7 (value 3)"), ("", "empty value in line 7 (value 1)"),
                          ("1 x 2", "'x' is not a number (line 7, value 2)")]:
        with pytest.raises(ValueError) as excinfo:
            parse_row(text, "line 7")
        assert message in str(excinfo.value)


# --------------------------------------------------------------------------- choose_member: which array of an .npz


def test_choose_member_prefers_the_named_array_then_a_single_one() -> None:
    a, b = np.zeros(1), np.ones(1)
    assert choose_member({"a": a, "x": b}, ("x",), "'in.npz'") == "x"
    assert choose_member({"weights": a}, ("x",), "'in.npz'") == "weights"
    assert choose_member({"y": a, "dout": b}, ("dout", "y"), "--dout 'g.npz'") == "dout"  # in order of preference
    assert choose_member({"y": a, "z": b}, ("dout", "y"), "--dout 'g.npz'") == "y"
    assert choose_member({"a": a, "b": b}, ("x",), "'in.npz'", several="none") is None


def test_choose_member_messages_name_what_the_archive_holds() -> None:
    a = np.zeros(1)
    with pytest.raises(InputFileError, match=r"^'in.npz' holds several arrays \(a, b\) and none named 'x'; "
                                             r"expected 'x' or a single array$"):
        choose_member({"b": a, "a": a}, ("x",), "'in.npz'")
    with pytest.raises(InputFileError, match=r"^'in.npz' is an empty .npz archive$"):
        choose_member({}, ("x",), "'in.npz'", several="none")
    with pytest.raises(InputFileError, match=r"^--dout 'g.npz' holds a, b; expected an array named dout or y, "
                                             r"or a single array$"):
        choose_member({"b": a, "a": a}, ("dout", "y"), "--dout 'g.npz'")
    with pytest.raises(InputFileError, match=r"^--dout 'g.npz' holds no arrays; expected"):
        choose_member({}, ("dout", "y"), "--dout 'g.npz'")


def test_choose_member_with_companions_is_a_closed_archive() -> None:
    a = np.zeros(1)
    assert choose_member({"W": a}, ("W",), "kernel file 'k.npz'", companions=("b",)) == "W"
    assert choose_member({"b": a, "W": a}, ("W",), "kernel file 'k.npz'", companions=("b",)) == "W"
    message = (r"^kernel file 'k.npz' must hold an array named 'W' and optionally 'b' "
               r"\(np.savez\(path, W=..., b=...\)\); it has {}$")
    with pytest.raises(KernelSpecError, match=message.format("arr_0")):
        choose_member({"arr_0": a}, ("W",), "kernel file 'k.npz'", companions=("b",), error=KernelSpecError)
    with pytest.raises(KernelSpecError, match=message.format("W, B")):  # in file order
        choose_member({"W": a, "B": a}, ("W",), "kernel file 'k.npz'", companions=("b",), error=KernelSpecError)
    with pytest.raises(InputFileError, match=message.format("nothing")):
        choose_member({}, ("W",), "kernel file 'k.npz'", companions=("b",))

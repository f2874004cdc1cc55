"""``convcli info`` through Typer's CliRunner: what it prints for images, arrays and archives, and its errors."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cli_helpers import assert_one_line_error, ok, run, runner
from PIL import Image

from convcli.cli import app

SAMPLES = Path(__file__).resolve().parents[2] / "sample_images"


def info_rows(text: str) -> dict[str, list[str]]:
    """Rows of the info table by file name: [file, kind, shape, dtype, min, max, mean, notes]."""
    rows = {}
    for line in text.splitlines():
        if line.startswith("│"):
            cells = [c.strip() for c in line.strip("│").split("│")]
            rows[cells[0]] = cells
    return rows


# ---------------------------------------------------------------- info


def test_info_images_and_arrays(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.arange(24, dtype=np.float64).reshape(2, 3, 4))
    np.save(tmp_path / "i.npy", np.array([[0, 255], [7, 9]], dtype=np.uint8))
    files = [SAMPLES / n for n in ("photo.png", "gray.png", "gray16.png")] + [tmp_path / "x.npy", tmp_path / "i.npy"]
    result = ok("info", *files)
    assert result.stderr == ""
    rows = info_rows(result.stdout)
    photo = rows[str(SAMPLES / "photo.png")]
    assert photo[1:4] == ["image", "1×3×192×256", "float32"]
    assert float(photo[4]) >= 0 and float(photo[5]) <= 1
    assert rows[str(SAMPLES / "gray.png")][2] == "1×1×192×256"
    g16 = rows[str(SAMPLES / "gray16.png")]
    with Image.open(SAMPLES / "gray16.png") as im:
        raw = np.asarray(im).astype(np.float64) / 65535
    assert g16[2] == "1×1×192×256"
    np.testing.assert_allclose([float(v) for v in g16[4:7]], [raw.min(), raw.max(), raw.mean()], rtol=1e-5)
    assert rows[str(tmp_path / "x.npy")][1:7] == ["array", "1×2×3×4", "float64", "0", "23", "11.5"]
    assert rows[str(tmp_path / "i.npy")][1:7] == ["array", "1×1×2×2", "uint8", "0", "255", "67.75"]


def test_info_alpha_gray_keep_alpha() -> None:
    source = SAMPLES / "alpha.png"
    row = info_rows(ok("info", source).stdout)[str(source)]
    assert row[2] == "1×3×192×256" and "alpha channel dropped" in row[7]
    assert info_rows(ok("info", source, "--keep-alpha").stdout)[str(source)][2] == "1×4×192×256"
    assert info_rows(ok("info", source, "--gray").stdout)[str(source)][2] == "1×1×192×256"
    assert info_rows(ok("info", source, "--gray", "--keep-alpha").stdout)[str(source)][2] == "1×2×192×256"


def test_info_stdin_npy_and_png() -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.full((5, 6), 2.5, dtype=np.float32))
    row = info_rows(ok("info", "-", input=buffer.getvalue()).stdout)["<stdin>"]
    assert row[1:7] == ["array", "1×1×5×6", "float32", "2.5", "2.5", "2.5"]
    row = info_rows(ok("info", "-", input=(SAMPLES / "gray.png").read_bytes()).stdout)["<stdin>"]
    assert row[1:3] == ["image", "1×1×192×256"]


def test_info_npz(tmp_path: Path) -> None:
    np.savez(tmp_path / "one.npz", y=np.ones((1, 2, 3, 4)))
    np.savez(tmp_path / "x.npz", x=np.zeros((3, 3)), other=np.ones(2))
    np.savez(tmp_path / "g.npz", dx=np.ones((1, 3, 4, 4)), dW=np.zeros((2, 3, 3, 3)), db=np.array([0.0, 1.0]))
    rows = info_rows(ok("info", tmp_path / "one.npz", tmp_path / "x.npz", tmp_path / "g.npz").stdout)
    assert rows[str(tmp_path / "one.npz")][1:3] == ["array", "1×2×3×4"]  # as apply reads it
    assert rows[str(tmp_path / "x.npz")][1:3] == ["array", "1×1×3×3"]  # the array named x
    # several arrays, none named x (what 'grad' writes): one row per array, as stored
    assert rows[f"{tmp_path / 'g.npz'}:dx"][1:4] == ["npz member", "1×3×4×4", "float64"]
    assert rows[f"{tmp_path / 'g.npz'}:dW"][2] == "2×3×3×3"
    assert rows[f"{tmp_path / 'g.npz'}:db"][2:7] == ["2", "float64", "0", "1", "0.5"]


def test_info_nan_values_are_noted(tmp_path: Path) -> None:
    np.save(tmp_path / "n.npy", np.array([[1.0, np.nan], [np.inf, 0.0]]))
    row = info_rows(ok("info", tmp_path / "n.npy").stdout)[str(tmp_path / "n.npy")]
    assert "2 non-finite values" in row[7]


def test_info_piped_output_is_not_truncated(tmp_path: Path) -> None:
    # CliRunner's stdout is no terminal: the table keeps its natural width, nothing is elided
    deep = tmp_path / ("a-rather-long-folder-name-" * 3)
    deep.mkdir()
    np.save(deep / "values.npy", np.linspace(0.123456789, 1, 7 * 11).reshape(1, 7, 11))
    out = ok("info", deep / "values.npy").stdout
    assert "…" not in out
    row = info_rows(out)[str(deep / "values.npy")]
    assert row[2:5] == ["1×1×7×11", "float64", "0.123457"]


def test_info_errors(tmp_path: Path) -> None:
    assert_one_line_error(run("info", tmp_path / "nope.png"), 3, "not found")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 30)
    assert_one_line_error(run("info", tmp_path / "bad.png"), 3, "cannot read", "bad.png")
    (tmp_path / "what.bin").write_bytes(b"\x00\x01\x02 not anything")
    assert_one_line_error(run("info", tmp_path / "what.bin"), 3, "cannot tell the format")
    np.save(tmp_path / "five.npy", np.zeros((1, 1, 1, 2, 2)))
    assert_one_line_error(run("info", tmp_path / "five.npy"), 2, "5-D", "expected")
    np.save(tmp_path / "four.npy", np.zeros((4, 2, 2)))
    assert_one_line_error(run("info", tmp_path / "four.npy", "--gray"), 2, "gray needs 1 or 3 channels")
    assert_one_line_error(run("info", "-", input=b""), 3, "standard input is empty")
    result = run("info")
    assert result.exit_code == 2 and "Missing argument" in result.stderr and "Traceback" not in result.stderr


def test_info_reads_a_multi_array_npz_from_standard_input(tmp_path: Path) -> None:
    # what 'convcli grad x.npy -k box:3 --dout ones -o - | convcli info -' pipes: dx, dW, db, dK, none named x
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((1, 1, 6, 7)).astype(np.float32))
    piped = runner.invoke(app, ["grad", str(tmp_path / "x.npy"), "-k", "box:3", "--dout", "ones", "-o", "-", "-q"])
    assert piped.exit_code == 0, piped.stderr
    by_path = info_rows(ok("info", tmp_path / "x.npy").stdout)
    rows = info_rows(ok("info", "-", input=piped.stdout_bytes).stdout)
    assert rows["-:dx"][1:4] == ["npz member", "1×1×6×7", "float32"]
    assert rows["-:dK"][2] == "3×3" and rows["-:db"][2] == "1"
    assert by_path[str(tmp_path / "x.npy")][2] == rows["-:dx"][2]
    buffer = io.BytesIO()
    np.savez(buffer, x=np.ones((2, 3)), other=np.zeros(4))  # one input (x): read as apply reads it
    assert info_rows(ok("info", "-", input=buffer.getvalue()).stdout)["<stdin>"][1:3] == ["array", "1×1×2×3"]


def test_info_reads_each_file_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins
    import os

    np.savez(tmp_path / "g.npz", dx=np.ones((1, 3, 4, 4)), dW=np.zeros((2, 3, 3, 3)))
    np.save(tmp_path / "x.npy", np.ones((2, 2)))
    opened: list[str] = []
    real, real_os = builtins.open, os.open

    def counting(file: Any, *args: Any, **kwargs: Any) -> Any:
        opened.append(str(file))
        return real(file, *args, **kwargs)

    def counting_os(file: Any, *args: Any, **kwargs: Any) -> Any:
        opened.append(str(file))
        return real_os(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", counting)
    monkeypatch.setattr(os, "open", counting_os)
    rows = info_rows(ok("info", tmp_path / "g.npz", tmp_path / "x.npy").stdout)
    assert f"{tmp_path / 'g.npz'}:dW" in rows
    assert [f for f in opened if f.startswith(str(tmp_path))] == [str(tmp_path / "g.npz"), str(tmp_path / "x.npy")]

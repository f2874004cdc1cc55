"""``convcli kernels`` and ``convcli info`` through Typer's CliRunner: what they print, and their errors."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import typer.main
from cli_helpers import assert_one_line_error, ok, run, runner
from PIL import Image

from convcli.cli import app
from convcli.kernels.builtins import BUILTINS, SOBEL_X, gaussian_kernel

SAMPLES = Path(__file__).resolve().parent.parent / "sample_images"


def matrix(text: str) -> np.ndarray:
    """The numbers of printed matrix rows."""
    return np.array([[float(v) for v in line.split()] for line in text.strip().splitlines()])


def info_rows(text: str) -> dict[str, list[str]]:
    """Rows of the info table by file name: [file, kind, shape, dtype, min, max, mean, notes]."""
    rows = {}
    for line in text.splitlines():
        if line.startswith("│"):
            cells = [c.strip() for c in line.strip("│").split("│")]
            rows[cells[0]] = cells
    return rows


# ---------------------------------------------------------------- kernels


def test_kernels_lists_every_builtin() -> None:
    result = ok("kernels")
    assert result.stderr == ""
    for builtin in BUILTINS.values():
        assert builtin.usage in result.stdout, builtin.usage
    assert "sums to 0" in result.stdout and "sums to 1" in result.stdout
    assert "cross-correlation" in result.stdout  # the title says how they are applied


def test_every_builtin_example_prints() -> None:
    for builtin in BUILTINS.values():
        result = ok("kernels", builtin.example)
        header, _, body = result.stdout.partition("\n")
        weights = builtin.make(builtin.example.split(":")[1:])
        assert header.startswith(f"{builtin.name}") and f"{weights.shape[0]}×{weights.shape[1]}" in header
        np.testing.assert_allclose(matrix(body), weights, rtol=1e-5, atol=1e-6)


def test_kernels_sobel_matrix_and_sum() -> None:
    result = ok("kernels", "sobel-x")
    assert result.stdout.splitlines()[0] == "sobel-x: 3×3, sum 0"
    np.testing.assert_array_equal(matrix(result.stdout.split("\n", 1)[1]), SOBEL_X)


def test_kernels_gaussian_sums_to_one() -> None:
    result = ok("kernels", "gaussian:1.5")
    header, _, body = result.stdout.partition("\n")
    assert header == "gaussian-1.5: 11×11, sum 1"
    np.testing.assert_allclose(matrix(body), gaussian_kernel(1.5), rtol=1e-5)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("1,2,1;2,4,2;1,2,1", [[1, 2, 1], [2, 4, 2], [1, 2, 1]]),
        ("3x2: 1,2,4,8,16,32", [[1, 2, 4], [8, 16, 32]]),  # ImageMagick: 3 columns, 2 rows
        ("2: 1,2,3,4", [[1, 2], [3, 4]]),
        ("0.5 -0.25", [[0.5, -0.25]]),
    ],
)
def test_kernels_inline(spec: str, expected: list[list[float]]) -> None:
    result = ok("kernels", spec)
    np.testing.assert_array_equal(matrix(result.stdout.split("\n", 1)[1]), expected)


def test_kernels_layer_file(tmp_path: Path) -> None:
    w = np.arange(12.0).reshape(3, 1, 2, 2)
    np.save(tmp_path / "w.npy", w)
    out = ok("kernels", tmp_path / "w.npy").stdout
    assert out.splitlines()[0] == "w: layer 3×1×2×2 (FN, C/groups, FH, FW)"
    blocks = re.split(r"^\[(\d+), (\d+)\]$", out.split("\n", 1)[1], flags=re.M)[1:]
    assert len(blocks) == 3 * 3
    for f in range(3):
        assert blocks[3 * f : 3 * f + 2] == [str(f), "0"]
        np.testing.assert_array_equal(matrix(blocks[3 * f + 2]), w[f, 0])


def test_kernels_from_stdin_and_text_file(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.array([[1.0, 2.0], [3.0, 4.0]]))
    out = ok("kernels", "-", input=buffer.getvalue()).stdout
    assert out.startswith("stdin: 2×2, sum 10")
    (tmp_path / "k.txt").write_text("# a comment\n1 2 3\n4 5 6\n")
    np.testing.assert_array_equal(matrix(ok("kernels", tmp_path / "k.txt").stdout.split("\n", 1)[1]),
                                  [[1, 2, 3], [4, 5, 6]])


@pytest.mark.parametrize(
    ("spec", "fragments"),
    [
        ("sobelx", ["unknown kernel 'sobelx'", "did you mean 'sobel-x'"]),
        ("gausian:2", ["did you mean 'gaussian'"]),
        ("laplacain", ["did you mean 'laplacian'"]),
        ("zzz", ["unknown kernel 'zzz'", "convcli kernels"]),
        ("gaussian:0", ["SIGMA", "got 0"]),
        ("gaussian", ["'gaussian' takes"]),
        ("box:2:3", ["'box' takes"]),
        ("box:x", ["box", "'x'"]),
        ("3x3: 1,2", ["needs 3×3 = 9 values", "got 2"]),
        ("1,2;3", ["row 2"]),
        ("1,nan", ["non-finite"]),
        ("", ["empty kernel spec"]),
    ],
)
def test_kernels_errors(spec: str, fragments: list[str]) -> None:
    assert_one_line_error(run("kernels", spec), 2, *fragments)


def test_kernels_unreadable_file_is_exit_3(tmp_path: Path) -> None:
    # a missing or unreadable kernel file is an unreadable input (3), like any input; bad content is 2
    assert_one_line_error(run("kernels", "missing.npy"), 3, "kernel file 'missing.npy' not found")
    (tmp_path / "d.npy").mkdir()
    assert_one_line_error(run("kernels", tmp_path / "d.npy"), 3, "is a directory")
    (tmp_path / "folder").mkdir()
    assert_one_line_error(run("kernels", tmp_path / "folder"), 3, repr(str(tmp_path / "folder")), "is a directory")


def test_kernels_corrupt_file(tmp_path: Path) -> None:
    (tmp_path / "bad.npy").write_bytes(b"\x93NUMPY\x01\x00garbage")
    assert_one_line_error(run("kernels", tmp_path / "bad.npy"), 2, "bad.npy")
    np.save(tmp_path / "three.npy", np.ones((2, 3, 3)))
    assert_one_line_error(run("kernels", tmp_path / "three.npy"), 2, "3-D", "expected 2-D")


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


# ---------------------------------------------------------------- help


@pytest.mark.parametrize("name", ["apply", "kernels", "info"])
def test_help_mentions_every_option(name: str) -> None:
    command = typer.main.get_command(app).commands[name]  # type: ignore[attr-defined]
    result = ok(name, "--help")
    assert result.stderr == ""
    text = result.stdout
    for param in command.params:
        names = [o for o in param.opts if o.startswith("-")]
        for option in names:
            assert option in text, (name, option)
        if not names:  # an argument: its help text is shown
            assert (param.help or "")[:20] in text.replace("\n", " ") or param.name in text.lower(), param.name
    assert "Usage: convcli " + name in " ".join(text.split())


def test_root_help_lists_commands() -> None:
    text = ok("--help").stdout
    for command in ("apply", "grad", "kernels", "info"):
        assert command in text
    assert ok("--version").stdout.startswith("convcli ")


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

    np.savez(tmp_path / "g.npz", dx=np.ones((1, 3, 4, 4)), dW=np.zeros((2, 3, 3, 3)))
    np.save(tmp_path / "x.npy", np.ones((2, 2)))
    opened: list[str] = []
    real = builtins.open

    def counting(file: Any, *args: Any, **kwargs: Any) -> Any:
        opened.append(str(file))
        return real(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", counting)
    rows = info_rows(ok("info", tmp_path / "g.npz", tmp_path / "x.npy").stdout)
    assert f"{tmp_path / 'g.npz'}:dW" in rows
    assert [f for f in opened if f.startswith(str(tmp_path))] == [str(tmp_path / "g.npz"), str(tmp_path / "x.npy")]


def test_kernels_help_mentions_standard_input() -> None:
    result = runner.invoke(app, ["kernels", "--help"], env={"COLUMNS": "200"}, terminal_width=200)
    text = " ".join(result.stdout.split())
    assert "'-' for a kernel file on standard input" in text
    buffer = io.BytesIO()
    np.save(buffer, SOBEL_X)
    assert ok("kernels", "-", input=buffer.getvalue()).stdout.startswith("stdin: 3×3, sum 0")


def test_kernels_layer_uses_the_matrix_printer(tmp_path: Path) -> None:
    from convcli.commands.kernels import format_matrix

    w = np.arange(12.0).reshape(3, 1, 2, 2) / 4
    np.save(tmp_path / "w.npy", w)
    out = ok("kernels", tmp_path / "w.npy").stdout
    assert out.split("\n", 1)[1] == format_matrix(w) + "\n"

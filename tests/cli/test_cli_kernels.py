"""``convcli kernels`` through Typer's CliRunner: the listing, one kernel's matrix, and its errors."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import assert_one_line_error, ok, run, runner

from convcli.cli import app
from convcli.kernels.builtins import BUILTINS, SOBEL_X, gaussian_kernel


def matrix(text: str) -> np.ndarray:
    """The numbers of printed matrix rows."""
    return np.array([[float(v) for v in line.split()] for line in text.strip().splitlines()])


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

"""convcli.commands.grad, its outputs: naming and checking grad's output files, and their PNG layouts."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import numpy as np
import pytest
from grad_helpers import rng_array
from hypothesis import given
from hypothesis import strategies as st

from convcli.commands.grad import grad_png, plan_outputs
from convcli.errors import OutputFileError, ParameterError


def test_plan_outputs(tmp_path: Path) -> None:
    d = str(tmp_path / "x-grad.npz")
    assert [(t.what, t.format) for t in plan_outputs(None, {"dx": None, "dW": None, "db": None}, d)] == [("npz", "npz")]
    singles = {"dx": str(tmp_path / "dx.png"), "dW": str(tmp_path / "dw.npy"), "db": "-"}
    got = plan_outputs(None, singles, d)
    assert [(t.what, t.format) for t in got] == [("dx", "png"), ("dW", "npy"), ("db", "npy")]
    got = plan_outputs("-", singles | {"db": None}, d)
    assert [(t.what, t.path) for t in got][0] == ("npz", "-")


@pytest.mark.parametrize(("output", "singles", "message"), [
    ("g.npy", {}, "grad writes an .npz archive"),
    (None, {"db": "db.png"}, "--db 'db.png': expected a .npy name"),
    (None, {"dx": "dx.txt"}, "--dx 'dx.txt': expected a .npy or .png name"),
    ("-", {"dx": "-"}, "only one output can go to standard output"),
    (None, {"dx": "a.npy", "dW": "a.npy"}, "two outputs would be written to 'a.npy'"),
    (None, {"dx": "nodir/a.npy"}, "output directory 'nodir' does not exist"),
    (None, {"dx": "x.npy"}, "refusing to overwrite input 'x.npy'"),
])
def test_plan_outputs_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, output: Optional[str], singles: dict[str, str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    np.save("x.npy", np.zeros(3))
    full = {"dx": None, "dW": None, "db": None, **singles}
    with pytest.raises(OutputFileError, match=message):
        plan_outputs(output, full, "x-grad.npz", protect=["x.npy"])


def test_grad_png_layouts() -> None:
    # maps under 96 pixels are enlarged by a whole factor first: 5x4 by 20, 3x3 by 32
    assert grad_png(rng_array((2, 3, 5, 4)), "dx", "minmax").shape == (3, 201, 80)  # 2 colour images, stacked
    assert grad_png(rng_array((1, 2, 5, 4)), "dx", "minmax").shape == (1, 100, 161)  # 2 gray maps side by side
    assert grad_png(rng_array((3, 3)), "dW", "minmax").shape == (1, 96, 96)
    assert grad_png(rng_array((2, 3, 3)), "dW", "offset").shape == (1, 96, 193)
    assert grad_png(rng_array((4, 2, 3, 3)), "dW", "abs").shape == (1, 387, 193)
    big = rng_array((1, 1, 120, 100))
    np.testing.assert_array_equal(grad_png(big, "dx", "minmax").shape, (1, 120, 100))  # large maps as they are
    kernel = grad_png(rng_array((3, 3)), "dW", "minmax")[0]
    np.testing.assert_array_equal(kernel, np.repeat(np.repeat(kernel[::32, ::32], 32, 0), 32, 1))
    with pytest.raises(ParameterError, match="--display"):
        grad_png(rng_array((3, 3)), "dW", "nope")


@given(st.integers(1, 3), st.integers(1, 3))
def test_grad_png_values_in_unit_range(rows: int, cols: int) -> None:
    pixels = grad_png(rng_array((rows, cols, 3, 2)), "dW", "minmax")
    assert pixels.min() >= 0 and pixels.max() <= 1


def test_plan_outputs_refuses_an_unwritable_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # every target goes through convcli.io.outputs.check_target, its writability check included
    monkeypatch.setattr(os, "access", lambda path, mode: os.fspath(path) != str(tmp_path))
    with pytest.raises(OutputFileError, match=r"cannot write '.*dx\.npy': permission denied \(directory"):
        plan_outputs(None, {"dx": str(tmp_path / "dx.npy"), "dW": None, "db": None}, "x-grad.npz")

"""--algorithm on apply and grad: every algorithm gives the same maps and gradients; layer kernels keep im2col."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from cli_helpers import assert_one_line_error, ok, run

from convcli.kernels.bank import LayerOptions, build_layer
from convcli.kernels.kernel import Kernel


@pytest.mark.parametrize("kernel", ["box:9", "gaussian:2", "log:1.4", "11x11: " + ",".join(["1"] * 121)])
def test_every_algorithm_gives_the_same_maps(tmp_path: Path, kernel: str) -> None:
    x = tmp_path / "x.npy"
    np.save(x, np.random.default_rng(0).random((1, 3, 40, 33)).astype(np.float32))
    outputs = {}
    for algorithm in ("auto", "im2col", "separable", "banded"):
        out = tmp_path / f"{algorithm}.npy"
        ok("apply", x, "-k", kernel, "--algorithm", algorithm, "--padding-mode", "symmetric", "-o", out, "-q")
        outputs[algorithm] = np.load(out)
    for algorithm, values in outputs.items():
        np.testing.assert_allclose(values, outputs["im2col"], rtol=2e-6, atol=2e-6, err_msg=algorithm)


def test_grad_is_the_same_whatever_the_algorithm(tmp_path: Path) -> None:
    x = tmp_path / "x.npy"
    np.save(x, np.random.default_rng(1).standard_normal((1, 2, 20, 17)))
    grads = []
    for algorithm in ("im2col", "banded", "separable"):
        out = tmp_path / f"{algorithm}.npz"
        ok("grad", x, "-k", "gaussian:1.5", "--dout", "randn:3", "--algorithm", algorithm, "-o", out, "-q")
        grads.append(dict(np.load(out)))
    for other in grads[1:]:
        for name in ("dx", "dW", "db", "dK"):
            np.testing.assert_allclose(other[name], grads[0][name], rtol=0, atol=1e-10, err_msg=name)


def test_layer_kernels_keep_im2col_under_auto() -> None:
    layer_kernel = Kernel(np.ones((2, 3, 9, 9)), label="w")
    assert build_layer([layer_kernel], 3, LayerOptions(), np.dtype(np.float32)).algorithm == "im2col"
    flat = Kernel(np.ones((9, 9)), label="k")
    assert build_layer([flat], 3, LayerOptions(), np.dtype(np.float32)).algorithm == "auto"
    assert build_layer([layer_kernel], 3, LayerOptions(algorithm="banded"), np.dtype(np.float32)).algorithm == \
        "banded"


def test_separable_for_a_layer_that_mixes_channels_is_a_usage_error(tmp_path: Path) -> None:
    w = tmp_path / "w.npy"
    np.save(w, np.ones((2, 3, 3, 3)))
    x = tmp_path / "x.npy"
    np.save(x, np.ones((1, 3, 8, 8)))
    result = run("apply", x, "-k", w, "--algorithm", "separable", "-o", tmp_path / "o.npy")
    assert_one_line_error(result, 2, "'separable' needs filters that read one channel each", "(2, 3, 3, 3)")
    assert not (tmp_path / "o.npy").exists()

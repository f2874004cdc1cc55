"""convcli.commands.gradcheck: the numerical gradient check, its local windows and batched perturbations.

The windowed differences are compared with central differences of ``L = sum(y * dout)`` over the
*whole* output (tests/reference.py's :func:`numerical_gradient`); the check must pass on correct
gradients and fail on tampered ones.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest
from grad_helpers import F64, K1, K2, K3, grads_for, rng_array
from hypothesis import HealthCheck, given, settings
from reference import conv_cases, numerical_gradient

from convcli import Convolution
from convcli.commands.grad import Gradients
from convcli.commands.gradcheck import _Probe, _weight_variants, check_options, default_tolerance, gradient_check
from convcli.errors import ParameterError
from convcli.kernels.bank import LayerOptions
from convcli.kernels.gradient import kernel_gradient
from convcli.kernels.kernel import Kernel


def full_loss_numeric(x: F64, w: F64, b: F64, dout: F64, kw: dict[str, Any]) -> tuple[F64, F64, F64]:
    """Every entry's central difference of L over the whole output (the slow, obvious way)."""
    x, w, b = x.copy(), w.copy(), b.copy()
    layer = Convolution(w, b, kw["stride"], kw["pad"], dilation=kw["dilation"], groups=kw["groups"],
                        padding_mode=kw["padding_mode"])

    def loss() -> float:
        return float(np.sum(layer.forward(x) * dout))

    return numerical_gradient(loss, x, 1e-3), numerical_gradient(loss, w, 1e-3), numerical_gradient(loss, b, 1e-3)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=conv_cases(max_batch=2, max_groups=2, max_per_group=2, max_kernel=3, max_extra=2))
def test_windowed_differences_equal_whole_loss_differences(case: Any) -> None:
    """The check evaluates L only over the outputs an entry reaches; that must change nothing."""
    x_shape, w_shape, kw = case
    x, w = rng_array(x_shape, 1), rng_array(w_shape, 2)
    b = rng_array((w_shape[0],), 3)
    layer = Convolution(w, b, kw["stride"], kw["pad"], dilation=kw["dilation"], groups=kw["groups"],
                        padding_mode=kw["padding_mode"])
    dout = rng_array(layer.output_shape(x_shape), 4)
    probe = _Probe(layer, x, dout)
    want_dx, want_dw, want_db = full_loss_numeric(x, w, b, dout, kw)
    got_dx = np.array([probe.x_numeric(i, 1e-3) for i in range(x.size)]).reshape(x.shape)
    np.testing.assert_allclose(got_dx, want_dx, rtol=1e-7, atol=1e-9)
    for which, want in (("W", want_dw), ("b", want_db)):
        variants = [v for i in range(want.size) for v in _weight_variants(probe, i, 1e-3, which)]
        losses = probe.filter_losses(variants)
        got = (np.array(losses[0::2]) - np.array(losses[1::2])) / 2e-3
        np.testing.assert_allclose(got.reshape(want.shape), want, rtol=1e-7, atol=1e-9)
    # and the exact analytic gradients agree with both
    layer.forward(x)
    np.testing.assert_allclose(layer.backward(dout), want_dx, rtol=1e-7, atol=1e-9)


CHECK_CASES = [
    pytest.param([Kernel(rng_array((4, 3, 3, 3), 5))], LayerOptions(), id="layer"),
    pytest.param([Kernel(rng_array((6, 1, 3, 2), 5))], LayerOptions(groups=3, stride=(2, 1), pad=(2, 0, 1, 1),
                                                                     padding_mode="replicate"), id="groups"),
    pytest.param([Kernel(K1), Kernel(K2)], LayerOptions(flip=True, normalize=True, padding_mode="reflect",
                                                        dilation=2), id="2d-flip-normalize"),
    pytest.param([Kernel(K3)], LayerOptions(padding_mode="circular", stride=3, pad=2), id="circular"),
    pytest.param([Kernel(rng_array((2, 3, 2, 2), 6) + 0.5)], LayerOptions(flip=True, normalize=True), id="layer-dK"),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("kernels", "options"), CHECK_CASES)
def test_check_passes_on_correct_gradients(kernels: list[Kernel], options: LayerOptions, dtype: Any) -> None:
    x = rng_array((2, 3, 11, 10), 7, dtype)
    grads, dout = grads_for(x, kernels, options)
    rows = gradient_check(x, grads, dout, samples=30)
    names = ["dx", "dW", "db"] + (["dK"] if grads.dK is not None else [])
    assert [r.name for r in rows] == names
    tol = default_tolerance(np.dtype(dtype))
    for row in rows:
        assert row.passed, row
        assert row.max_rel <= tol
        assert row.samples == min(30, {"dx": x.size, "dW": grads.dW.size, "db": grads.db.size,
                                       "dK": grads.dK.size if grads.dK is not None else 0}[row.name])
    if dtype == np.float64:  # L is linear in x, W and b: no truncation error, float64 far inside its tolerance
        assert max(r.max_rel for r in rows if r.name != "dK") < 1e-9


def tampered(grads: Gradients, name: str, how: str) -> Gradients:
    values = {"dx": grads.dx, "dW": grads.dW, "db": grads.db, "dK": grads.dK}
    assert values[name] is not None
    bad = np.array(values[name], copy=True)
    if how == "scale":
        bad *= 1.01
    elif how == "shift":
        bad = np.roll(bad, 1, axis=-1)
    elif how == "flip":
        bad = bad[..., ::-1, ::-1].copy()
    elif how == "nan":
        bad.reshape(-1)[:] = np.nan
    values[name] = bad
    return Gradients(values["dx"], values["dW"], values["db"], values["dK"], grads.layer, grads.seconds,
                     grads.kernels, grads.options)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("name", "how"), [
    ("dx", "scale"), ("dx", "shift"), ("dx", "nan"), ("dW", "scale"), ("dW", "flip"), ("db", "scale"),
    ("dK", "flip"), ("dK", "scale"),
])
def test_check_fails_on_wrong_gradients(name: str, how: str, dtype: Any) -> None:
    x = rng_array((1, 3, 9, 9), 8, dtype)
    grads, dout = grads_for(x, [Kernel(K2), Kernel(K3)], LayerOptions(flip=True, normalize=True))
    rows = gradient_check(x, tampered(grads, name, how), dout, samples=200)
    failed = {r.name for r in rows if not r.passed}
    assert failed == {name}, rows


def test_check_fails_when_dK_ignores_the_flip() -> None:
    """dK computed as if there were no --flip (the classic mistake) is caught."""
    x = rng_array((1, 3, 9, 9), 8)
    grads, dout = grads_for(x, [Kernel(K1)], LayerOptions(flip=True))
    wrong = kernel_gradient(grads.dW, [Kernel(K1)], 3, LayerOptions(flip=False))
    bad = Gradients(grads.dx, grads.dW, grads.db, wrong, grads.layer, grads.seconds, grads.kernels, grads.options)
    rows = {r.name: r for r in gradient_check(x, bad, dout)}
    assert not rows["dK"].passed and rows["dx"].passed and rows["dW"].passed


def test_check_of_normalized_kernels_with_small_sums_passes_in_float64() -> None:
    """L is rational in a tap under --normalize; plain central differences are off by (eps/sum)²."""
    kernels = [Kernel(np.array([[0.2, -0.5, 0.4], [0.1, 0.3, -0.2], [0.05, 0.1, -0.15]])),  # sum 0.3
               Kernel(rng_array((2, 3, 3, 3), 4) / 10 + 0.01)]
    x = rng_array((1, 3, 10, 10), 5)
    for k in ([kernels[0]], [kernels[1]]):
        grads, dout = grads_for(x, k, LayerOptions(normalize=True, flip=True))
        rows = {r.name: r for r in gradient_check(x, grads, dout, samples=100)}
        assert rows["dK"].passed and rows["dK"].max_rel < 1e-7, rows["dK"]


def test_check_leaves_out_zero_sum_kernels_under_normalize() -> None:
    sobel = np.array([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    x = rng_array((1, 3, 8, 8), 9)
    grads, dout = grads_for(x, [Kernel(sobel)], LayerOptions(normalize=True))
    rows = {r.name: r for r in gradient_check(x, grads, dout)}
    assert rows["dK"].samples == 0 and rows["dK"].passed and "zero-sum" in rows["dK"].note
    grads, dout = grads_for(x, [Kernel(sobel), Kernel(K2)], LayerOptions(normalize=True))
    rows = {r.name: r for r in gradient_check(x, grads, dout, samples=100)}
    assert rows["dK"].samples == 9 and rows["dK"].passed and "zero-sum" in rows["dK"].note  # only K2's taps


def test_check_leaves_out_large_tap_zero_sum_kernels_under_normalize() -> None:
    from convcli.kernels.spec import parse_kernel

    log = parse_kernel("log:0.01")  # taps ~1e4, sum ~1e-12: zero-sum by the relative test normalize uses
    x = rng_array((1, 1, 8, 8), 9)
    grads, dout = grads_for(x, [log], LayerOptions(normalize=True))
    rows = {r.name: r for r in gradient_check(x, grads, dout)}
    assert rows["dK"].samples == 0 and rows["dK"].passed and "zero-sum" in rows["dK"].note


def test_check_judges_entries_that_should_be_zero_in_absolute_terms() -> None:
    """A zero-sum kernel with dout = ones: most of dx is exactly 0; rounding noise must not fail it."""
    sobel = np.array([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    for dtype in (np.float32, np.float64):
        x = np.random.default_rng(0).random((1, 3, 40, 40)).astype(dtype)
        grads, dout = grads_for(x, [Kernel(sobel)], LayerOptions(), dout=np.ones((1, 3, 40, 40), dtype))
        assert all(r.passed for r in gradient_check(x, grads, dout, samples=50)), dtype


def test_check_samples_are_seeded() -> None:
    x = rng_array((1, 3, 12, 12), 1, np.float32)
    grads, dout = grads_for(x, [Kernel(K1)], LayerOptions())
    a = gradient_check(x, grads, dout, seed=3)
    b = gradient_check(x, grads, dout, seed=3)
    c = gradient_check(x, grads, dout, seed=4)
    assert [r.max_abs for r in a] == [r.max_abs for r in b]
    assert [r.max_abs for r in a] != [r.max_abs for r in c]


def test_check_on_a_big_input_is_fast_and_accurate() -> None:
    """1x3x256x256 with 8 filters of 3x3: the check computes only what each entry reaches."""
    x = np.random.default_rng(0).random((1, 3, 256, 256))
    grads, dout = grads_for(x, [Kernel(rng_array((8, 3, 3, 3), 1))], LayerOptions(padding_mode="reflect"))
    start = time.perf_counter()
    rows = gradient_check(x, grads, dout)
    assert time.perf_counter() - start < 5.0  # about 0.1 s; whole-image forwards took ~10 s
    for row in rows:
        assert row.passed and row.max_rel < 1e-9, row  # float64 numerics stay sharp on big images


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"samples": 0}, "--check-samples"),
    ({"eps": 0.0}, "--eps"),
    ({"eps": float("nan")}, "--eps"),
    ({"eps": float("inf")}, "--eps"),
    ({"seed": -1}, "--seed"),
    ({"tolerance": -1.0}, "--tol"),
    ({"tolerance": float("nan")}, "--tol"),
])
def test_check_options_are_validated(kwargs: dict[str, Any], message: str) -> None:
    options = {"samples": 20, "eps": 1e-3, "seed": 0, "tolerance": None, **kwargs}
    with pytest.raises(ParameterError, match=message):
        check_options(options["samples"], options["eps"], options["seed"], options["tolerance"])

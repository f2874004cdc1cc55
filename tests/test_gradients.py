"""convcli.gradients: backward, dK (the gradient for the kernels as given), the numerical check, dout, outputs.

References are this file's own: float64 central differences of the loss ``L = sum(y * dout)``
over the *whole* output, perturbing one entry at a time (tests/reference.py's
:func:`numerical_gradient`), with layer weights built here from the user's kernels by hand
(flip, then divide by the sum), not through :func:`convcli.bank.filter_bank`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from reference import conv2d_backward, conv_cases, numerical_gradient

from convcli import Convolution
from convcli.errors import InputFileError, OutputFileError, ParameterError, ShapeError
from convcli.filtering import LayerOptions
from convcli.gradients import (
    Gradients,
    _Probe,
    _weight_variants,
    backward,
    build_grad_layer,
    check_options,
    default_tolerance,
    grad_png,
    gradient_check,
    kernel_gradient,
    load_dout,
    make_dout,
    plan_outputs,
)
from convcli.kernels import Kernel

F64 = NDArray[np.float64]
# all taps distinct and non-symmetric, so a missing or extra flip shows; sums far from 0
K1 = np.array([[1.0, 2.0, 4.0], [8.0, 16.0, 32.0], [64.0, 128.0, 256.0]]) / 100
K2 = np.array([[0.5, -1.0, 3.0], [2.0, 0.25, -4.0], [1.5, 6.0, 0.75]])
K3 = np.array([[-2.0, 1.0, 0.3], [0.7, 5.0, -1.1], [2.2, -0.4, 1.9]])


def rng_array(shape: tuple[int, ...], seed: int = 0, dtype: Any = np.float64) -> NDArray[Any]:
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def prepared(kernel: F64, flip: bool, normalize: bool) -> F64:
    """What the layer runs for a user kernel: rotated 180° under flip, divided by its sum under normalize."""
    k = np.array(kernel, dtype=np.float64)
    if flip:
        k = k[..., ::-1, ::-1]
    if normalize:
        sums = k.reshape(k.shape[0], -1).sum(axis=1) if k.ndim == 4 else np.array([k.sum()])
        if k.ndim == 4:
            keep = np.abs(sums) > 1e-12
            k[keep] /= sums[keep, None, None, None]
        elif abs(sums[0]) > 1e-12:
            k = k / sums[0]
    return k


def depthwise_loss(
    x: F64, kernels: list[F64], dout: F64, flip: bool, normalize: bool, **geometry: Any
) -> float:
    """L = sum(y * dout) for 2-D kernels applied to every channel, built by hand: filter c*M + m is kernel m."""
    c, m = x.shape[1], len(kernels)
    w = np.stack([prepared(k, flip, normalize) for k in kernels])
    weights = np.tile(w, (c, 1, 1))[:, None]
    layer = Convolution(weights, None, geometry.pop("stride", 1), geometry.pop("pad", "same"), groups=c, **geometry)
    assert weights.shape[0] == c * m
    return float(np.sum(layer.forward(x) * dout))


def grads_for(
    x: NDArray[Any], kernels: list[Kernel], options: LayerOptions, dout: Optional[NDArray[Any]] = None, seed: int = 1
) -> tuple[Gradients, NDArray[Any]]:
    layer = build_grad_layer(kernels, x.shape[1], options, x.dtype)
    if dout is None:
        dout = rng_array(layer.output_shape(x.shape), seed, x.dtype)
    return backward(layer, x, dout, kernels, options), dout


# ---------------------------------------------------------------- backward and dK


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_backward_is_the_layers_backward(dtype: Any) -> None:
    x = rng_array((2, 3, 7, 6), 0, dtype)
    w = rng_array((4, 3, 3, 2), 1)
    options = LayerOptions(stride=(2, 1), pad=(1, 0, 2, 1), dilation=(1, 2), padding_mode="reflect")
    grads, dout = grads_for(x, [Kernel(w)], options)
    direct = Convolution(w.astype(dtype), np.zeros(4, dtype), (2, 1), (1, 0, 2, 1), dilation=(1, 2),
                         padding_mode="reflect")
    direct.forward(x)
    np.testing.assert_array_equal(grads.dx, direct.backward(dout))
    np.testing.assert_array_equal(grads.dW, direct.dW)
    np.testing.assert_array_equal(grads.db, direct.db)
    assert grads.dx.dtype == grads.dW.dtype == grads.db.dtype == dtype
    assert grads.dK is None  # a layer kernel without flip/normalize: dW is already its gradient
    # and the naive loop agrees
    ref_dx, ref_dw, ref_db = conv2d_backward(x, w.astype(dtype), dout, stride=(2, 1), pad=(1, 0, 2, 1),
                                             dilation=(1, 2), padding_mode="reflect")
    tol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(grads.dx, ref_dx, rtol=tol, atol=tol)
    np.testing.assert_allclose(grads.dW, ref_dw, rtol=tol, atol=tol)
    np.testing.assert_allclose(grads.db, ref_db, rtol=tol, atol=tol)


DK_CASES = [
    pytest.param([K1], False, False, {}, id="one"),
    pytest.param([K1], True, False, {}, id="flip"),
    pytest.param([K2], False, True, {}, id="normalize"),
    pytest.param([K2], True, True, {}, id="flip-normalize"),
    pytest.param([K1, K2, K3], False, False, {}, id="three"),
    pytest.param([K1, K2, K3], True, True, {}, id="three-flip-normalize"),
    pytest.param([K2, K3], True, True, {"stride": 2, "dilation": 2, "padding_mode": "circular"}, id="geometry"),
    pytest.param([K3, K1], False, True, {"pad": "valid", "padding_mode": "replicate"}, id="valid"),
]


@pytest.mark.parametrize(("kernels", "flip", "normalize", "geometry"), DK_CASES)
def test_dK_is_the_numerical_gradient_for_the_kernels_as_given(
    kernels: list[F64], flip: bool, normalize: bool, geometry: dict[str, Any]
) -> None:
    x = rng_array((2, 3, 9, 8), 3)  # RGB-like: three channels share each kernel
    options = LayerOptions(flip=flip, normalize=normalize, **geometry)
    grads, dout = grads_for(x, [Kernel(k) for k in kernels], options)
    assert grads.dK is not None
    assert grads.dK.shape == ((3, 3) if len(kernels) == 1 else (len(kernels), 3, 3))
    stack = np.stack(kernels).astype(np.float64)

    def loss() -> float:
        return depthwise_loss(x, list(stack), dout, flip, normalize, **geometry)

    numeric = numerical_gradient(loss, stack, eps=1e-5)
    np.testing.assert_allclose(grads.dK, numeric.reshape(grads.dK.shape), rtol=1e-6, atol=1e-6)


def test_dK_without_flip_or_normalize_sums_dW_over_channels() -> None:
    x = rng_array((1, 3, 5, 5), 0)
    grads, _ = grads_for(x, [Kernel(K1), Kernel(K2)], LayerOptions())
    assert grads.dK is not None
    np.testing.assert_allclose(grads.dK, grads.dW[:, 0].reshape(3, 2, 3, 3).sum(axis=0))


@pytest.mark.parametrize(("flip", "normalize"), [(True, False), (False, True), (True, True)])
def test_dK_for_layer_kernels_under_flip_or_normalize(flip: bool, normalize: bool) -> None:
    x = rng_array((1, 4, 6, 5), 0)
    w1, w2 = rng_array((2, 2, 3, 2), 1) + 0.3, rng_array((2, 2, 3, 2), 2) + 0.3
    options = LayerOptions(groups=2, flip=flip, normalize=normalize)
    grads, dout = grads_for(x, [Kernel(w1), Kernel(w2)], options)
    assert grads.dK is not None and grads.dK.shape == (4, 2, 3, 2)
    raw = np.concatenate([w1, w2])

    def loss() -> float:
        layer = Convolution(prepared(raw, flip, normalize), None, 1, "same", groups=2)
        return float(np.sum(layer.forward(x) * dout))

    np.testing.assert_allclose(grads.dK, numerical_gradient(loss, raw, eps=1e-5), rtol=1e-6, atol=1e-6)


def test_kernel_gradient_of_a_zero_sum_kernel_under_normalize_is_left_alone() -> None:
    sobel = np.array([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    dW = rng_array((3, 1, 3, 3), 0)
    got = kernel_gradient(dW, [Kernel(sobel)], 3, LayerOptions(normalize=True))
    np.testing.assert_allclose(got, dW[:, 0].sum(axis=0))


def test_backward_refuses_a_dout_of_the_wrong_shape() -> None:
    x = rng_array((1, 3, 8, 8))
    layer = build_grad_layer([Kernel(K1)], 3, LayerOptions(stride=2), np.dtype(np.float64))
    with pytest.raises(ShapeError, match=r"expected the forward output's shape \(1, 3, 4, 4\)"):
        backward(layer, x, np.zeros((1, 3, 8, 8)), [Kernel(K1)], LayerOptions(stride=2))


# ---------------------------------------------------------------- the numerical check


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


# ---------------------------------------------------------------- dout


def test_generators() -> None:
    shape, f32 = (1, 2, 3, 4), np.dtype(np.float32)
    ones = make_dout("ones", shape, f32)
    assert ones is not None and ones.dtype == np.float32 and np.all(ones == 1)
    r0, r0b, r7 = make_dout("randn", shape, f32), make_dout("randn:0", shape, f32), make_dout("randn:7", shape, f32)
    assert r0 is not None and r0b is not None and r7 is not None
    np.testing.assert_array_equal(r0, r0b)
    np.testing.assert_array_equal(r7, np.random.default_rng(7).standard_normal(shape).astype(np.float32))
    assert not np.array_equal(r0, r7)
    assert make_dout("g.npy", shape, f32) is None and make_dout("-", shape, f32) is None


@pytest.mark.parametrize("spec", ["randn:x", "randn:", "randn:-1", "randn:1.5", "ones:2", "Ones", "RANDN"])
def test_malformed_generators_are_named(spec: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ParameterError, match=r"is not a generator: expected ones, randn or randn:SEED"):
        load_dout(spec, (1, 1, 2, 2), np.dtype(np.float32))


def test_a_file_named_like_a_generator_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with open("randn:x", "wb") as f:
        np.save(f, np.full((1, 1, 2, 2), 3.0))
    np.testing.assert_array_equal(load_dout("randn:x", (1, 1, 2, 2), np.dtype(np.float64)), 3.0)


def test_dout_files(tmp_path: Path) -> None:
    shape, f32 = (1, 2, 3, 3), np.dtype(np.float32)
    np.save(tmp_path / "d.npy", np.arange(18.0).reshape(shape))
    got = load_dout(str(tmp_path / "d.npy"), shape, f32)
    assert got.dtype == np.float32 and got.shape == shape
    np.savez(tmp_path / "y.npz", y=np.ones(shape))
    assert np.all(load_dout(str(tmp_path / "y.npz"), shape, f32) == 1)
    np.savez(tmp_path / "two.npz", a=np.ones(shape), b=np.ones(shape))
    with pytest.raises(InputFileError, match="expected an array named dout or y"):
        load_dout(str(tmp_path / "two.npz"), shape, f32)
    np.save(tmp_path / "int.npy", np.ones(shape, dtype=np.int16))
    assert load_dout(str(tmp_path / "int.npy"), shape, f32).dtype == np.float32


@pytest.mark.parametrize(("array", "error", "message"), [
    (np.zeros((1, 2, 3, 4)), ShapeError,
     r"has shape \(1, 2, 3, 4\); expected the forward output's shape \(1, 2, 3, 3\)"),
    (np.zeros((2, 3, 3)), ShapeError, r"expected the forward output's shape \(1, 2, 3, 3\) \(N, FN, OH, OW\)"),
    (np.array(["a"] * 18).reshape(1, 2, 3, 3), ParameterError, "expected real numbers"),
    (np.full((1, 2, 3, 3), np.nan), ParameterError, "non-finite"),
])
def test_bad_dout(tmp_path: Path, array: NDArray[Any], error: type, message: str) -> None:
    np.save(tmp_path / "d.npy", array)
    with pytest.raises(error, match=message):
        load_dout(str(tmp_path / "d.npy"), (1, 2, 3, 3), np.dtype(np.float32))


def test_missing_dout_file_lists_what_is_accepted(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match=r"--dout file .* not found; expected a \.npy .* ones, randn, randn:SEED"):
        load_dout(str(tmp_path / "nope.npy"), (1, 1, 2, 2), np.dtype(np.float32))


# ---------------------------------------------------------------- outputs


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
    assert grad_png(rng_array((2, 3, 5, 4)), "dx", "minmax").shape == (3, 11, 4)  # 2 colour images, stacked
    assert grad_png(rng_array((1, 2, 5, 4)), "dx", "minmax").shape == (1, 5, 9)  # 2 gray maps side by side
    assert grad_png(rng_array((3, 3)), "dW", "minmax").shape == (1, 3, 3)
    assert grad_png(rng_array((2, 3, 3)), "dW", "offset").shape == (1, 3, 7)
    assert grad_png(rng_array((4, 2, 3, 3)), "dW", "abs").shape == (1, 15, 7)
    with pytest.raises(ParameterError, match="--display"):
        grad_png(rng_array((3, 3)), "dW", "nope")


@given(st.integers(1, 3), st.integers(1, 3))
def test_grad_png_values_in_unit_range(rows: int, cols: int) -> None:
    pixels = grad_png(rng_array((rows, cols, 3, 2)), "dW", "minmax")
    assert pixels.min() >= 0 and pixels.max() <= 1

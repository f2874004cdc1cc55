"""convcli.commands.grad: backward, the upstream gradient dout, run_grad."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from grad_helpers import K1, grads_for, rng_array
from numpy.typing import NDArray
from reference import conv2d_backward

from convcli import Convolution
from convcli.commands.grad import backward, build_grad_layer, load_dout, make_dout, run_grad
from convcli.errors import InputFileError, MemoryLimitError, ParameterError, ShapeError
from convcli.kernels.bank import LayerOptions
from convcli.kernels.kernel import Kernel

# ---------------------------------------------------------------- backward


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


def test_backward_refuses_a_dout_of_the_wrong_shape() -> None:
    x = rng_array((1, 3, 8, 8))
    layer = build_grad_layer([Kernel(K1)], 3, LayerOptions(stride=2), np.dtype(np.float64))
    with pytest.raises(ShapeError, match=r"expected the forward output's shape \(1, 3, 4, 4\)"):
        backward(layer, x, np.zeros((1, 3, 8, 8)), [Kernel(K1)], LayerOptions(stride=2))


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


# ---------------------------------------------------------------- run_grad


def test_run_grad_is_backward_of_the_layer_apply_builds() -> None:
    x = rng_array((1, 3, 8, 8), 4, np.float32)
    options = LayerOptions(stride=2, flip=True, dtype="float64")
    run = run_grad(x, [Kernel(K1)], options, "ones")
    assert run.dtype == np.float64 and run.x.dtype == np.float64 and run.dout.dtype == np.float64
    assert run.output_shape == (1, 3, 4, 4)
    want, _ = grads_for(x.astype(np.float64), [Kernel(K1)], options, dout=np.ones((1, 3, 4, 4)))
    assert want.dK is not None and run.grads.dK is not None
    for got, expected in ((run.grads.dx, want.dx), (run.grads.dW, want.dW), (run.grads.db, want.db),
                          (run.grads.dK, want.dK)):
        np.testing.assert_allclose(got, expected, rtol=1e-12)
    norms = run.grads.norms()
    assert [(name, shape) for name, _, shape in norms] == [
        ("dx", (1, 3, 8, 8)), ("dW", (3, 1, 3, 3)), ("db", (3,)), ("dK", (3, 3))
    ]
    assert norms[0][1] == pytest.approx(float(np.linalg.norm(want.dx)))
    assert run_grad(x, [Kernel(K1)], LayerOptions(), "ones").dtype == np.float32  # the input's float dtype


def test_run_grad_checks_dout_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import convcli.commands.grad as gradients

    calls: list[tuple[Any, ...]] = []
    real = gradients.check_dout_shape

    def counting(*args: Any) -> None:
        calls.append(args)
        real(*args)

    monkeypatch.setattr(gradients, "check_dout_shape", counting)
    np.save(tmp_path / "d.npy", np.ones((1, 3, 8, 8), np.float32))
    run_grad(rng_array((1, 3, 8, 8)), [Kernel(K1)], LayerOptions(), str(tmp_path / "d.npy"))
    assert len(calls) == 1


def test_run_grad_refuses_an_output_larger_than_memory_before_making_dout() -> None:
    expected = r"output of shape \(1, 3, 2000006, 2000006\) \(float32\) needs 43.7 TiB"
    with pytest.raises(MemoryLimitError, match=expected):
        run_grad(rng_array((1, 3, 8, 8), 0, np.float32), [Kernel(K1)], LayerOptions(pad=1_000_000), "ones")


# ---------------------------------------------------------------- grad_command: the command as a library call


def test_grad_command_writes_the_default_npz_and_stops_on_a_failed_check(tmp_path: Path) -> None:
    from convcli.commands.common import LayerJob
    from convcli.commands.grad import CheckOptions, GradOutputOptions, default_output, grad_command
    from convcli.errors import GradientCheckError

    source = str(tmp_path / "x.npy")
    np.save(source, rng_array((1, 1, 6, 6)))
    assert default_output(source) == str(tmp_path / "x-grad.npz") and default_output("-") == "stdin-grad.npz"
    written = grad_command(source, ["box:3"], "ones", LayerJob(), GradOutputOptions(), CheckOptions(samples=5))
    assert [(t.what, t.path) for t, _ in written] == [("npz", str(tmp_path / "x-grad.npz"))]
    with np.load(tmp_path / "x-grad.npz") as archive:
        assert sorted(archive.files) == ["dK", "dW", "db", "dx"]
    shown = []
    with pytest.raises(GradientCheckError, match=r"^gradient check failed: .* > tolerance 1e-30; nothing written$"):
        grad_command(source, ["box:3"], "randn", LayerJob(), GradOutputOptions(output=str(tmp_path / "no.npz")),
                     CheckOptions(eps=0.5, tolerance=1e-30), show_check=shown.append)
    assert len(shown) == 1 and shown[0].failed and not (tmp_path / "no.npz").exists()

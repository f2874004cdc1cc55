"""What ``convcli grad`` does, as a library: the backward pass and its numerical check.

:func:`backward` runs the layer that :func:`convcli.filtering.build_layer` describes
forward and then backward for an upstream gradient ``dout``, giving ``dx``, ``dW`` and
``db`` (the seed's names).  :func:`gradient_check` compares them with central
differences computed in float64.

The loss behind ``dout`` is ``L = sum(y * dout)``, whose gradient with respect to the
output ``y`` is ``dout`` itself; ``dout = y`` is the gradient of ``½‖y‖²``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

import numpy as np
from numpy.typing import NDArray

from .errors import ParameterError, ShapeError
from .filtering import LayerOptions, build_layer
from .kernels import Kernel
from .layer import Convolution, compute_dtype

_RANDN = re.compile(r"^randn(?::(\d+))?$")


@dataclass
class Gradients:
    """Result of :func:`backward`.

    Attributes
    ----------
    dx : ndarray, shape (N, C, H, W)
    dW : ndarray, shape (FN, C/groups, FH, FW)
        With respect to the layer's weights.
    db : ndarray, shape (FN,)
        With respect to the bias (a zero bias when none was given).
    dK : ndarray or None
        For 2-D kernels only: the gradient with respect to the kernels as given,
        shape (FH, FW) for one kernel, (M, FH, FW) for M.  A 2-D kernel is shared by
        every channel (the layer's filter c*M + m is kernel m), so dK[m] sums dW over
        the channels, then undoes --flip and --normalize by the chain rule.
    layer : Convolution
        The layer (its W, b and geometry).
    seconds : float
        Time of forward + backward.
    """

    dx: NDArray[np.floating]
    dW: NDArray[np.floating]
    db: NDArray[np.floating]
    dK: Optional[NDArray[np.floating]]
    layer: Convolution
    seconds: float


def make_dout(spec: str, shape: tuple[int, ...], dtype: np.dtype) -> Optional[NDArray[np.floating]]:
    """A generated upstream gradient: ``ones`` or ``randn[:SEED]``; None for anything else.

    Returns
    -------
    ndarray, shape ``shape``, or None
        None when ``spec`` names no generator (it is then a file or '-').
    """
    if spec == "ones":
        return np.ones(shape, dtype=dtype)
    match = _RANDN.match(spec)
    if match:
        seed = int(match.group(1)) if match.group(1) else 0
        return np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    return None


def build_grad_layer(
    kernels: Sequence[Kernel], channels: int, options: LayerOptions, dtype: np.dtype
) -> Convolution:
    """The layer of :func:`convcli.filtering.build_layer`, with a zero bias when it has none (so db exists)."""
    layer = build_layer(kernels, channels, options, dtype)
    if layer.b is None:
        layer.b = np.zeros(np.asarray(layer.W).shape[0], dtype=dtype)
    return layer


def kernel_gradient(
    dW: NDArray[np.floating], kernels: Sequence[Kernel], channels: int, options: LayerOptions
) -> Optional[NDArray[np.floating]]:
    """Gradient with respect to the 2-D kernels as the user gave them (see :class:`Gradients`).

    Parameters
    ----------
    dW : ndarray, shape (C*M, 1, FH, FW)
        Gradient with respect to the depthwise layer's weights.

    Returns
    -------
    ndarray, shape (FH, FW) for one kernel or (M, FH, FW) for M; None for layer kernels.
    """
    if any(k.is_layer for k in kernels):
        return None
    m = len(kernels)
    fh, fw = dW.shape[2:]
    grads = dW.reshape(channels, m, fh, fw).sum(axis=0)  # filter c*M + m is kernel m
    result = np.empty_like(grads)
    for index, kern in enumerate(kernels):
        g = grads[index]
        raw = np.asarray(kern.weights, dtype=np.float64)
        if options.flip:
            g = g[::-1, ::-1]
        total = raw.sum()
        if options.normalize and abs(total) > 1e-12:
            # k_used = k / sum(k)  =>  dL/dk = (g - <g, k_used>) / sum(k)
            g = (g - np.sum(g * (raw / total))) / total
        result[index] = g
    return result[0] if m == 1 else result


def backward(
    layer: Convolution,
    x: NDArray[np.floating],
    dout: NDArray[np.generic],
    kernels: Sequence[Kernel],
    options: LayerOptions,
) -> Gradients:
    """Forward then backward through ``layer`` (from :func:`build_grad_layer`).

    Parameters
    ----------
    layer : Convolution
        Built from ``kernels`` and ``options``.
    x : ndarray, shape (N, C, H, W)
    dout : ndarray, shape (N, FN, OH, OW)
        Upstream gradient; must match the forward output's shape.
    kernels, options
        What the layer was built from (to map dW back to 2-D kernels).

    Returns
    -------
    Gradients
    """
    expected = layer.output_shape(x.shape)
    if tuple(dout.shape) != expected:
        raise ShapeError(
            f"--dout has shape {tuple(dout.shape)}; expected the forward output's shape {expected} "
            "(N, FN, OH, OW) for this input, kernel and options"
        )
    dtype = compute_dtype(x, np.asarray(layer.W))
    start = time.perf_counter()
    layer.forward(x)
    dx = layer.backward(dout.astype(dtype, copy=False))
    seconds = time.perf_counter() - start
    if layer.dW is None or layer.db is None:
        raise ShapeError("the layer has no bias: build it with build_grad_layer")
    return Gradients(
        dx=dx,
        dW=layer.dW,
        db=layer.db,
        dK=kernel_gradient(layer.dW, kernels, x.shape[1], options),
        layer=layer,
        seconds=seconds,
    )


@dataclass
class CheckRow:
    """Numerical check of one tensor: errors over the sampled entries."""

    name: str
    samples: int
    max_abs: float
    max_rel: float
    passed: bool


def default_tolerance(dtype: np.dtype) -> float:
    """Relative tolerance for a check of gradients computed in ``dtype``."""
    return 1e-6 if dtype == np.float64 else 1e-3


def gradient_check(
    x: NDArray[np.floating],
    grads: Gradients,
    dout: NDArray[np.generic],
    *,
    samples: int = 20,
    eps: float = 1e-3,
    seed: int = 0,
    tolerance: Optional[float] = None,
) -> list[CheckRow]:
    """Compare ``grads`` with central differences of ``L = sum(y * dout)`` in float64.

    For each of x, W and b, ``samples`` entries are drawn at random (all of them when
    the tensor is smaller); entry ``i`` gets ``(L(p_i + eps) - L(p_i - eps)) / (2 eps)``
    from two float64 forward passes of a copy of the layer.  The relative error of an
    entry is ``|analytic - numeric| / max(|analytic|, |numeric|, floor)``, where the floor
    is 1e-6 times the tensor's largest numeric value, so entries that should be 0 are
    judged in absolute terms.

    Returns
    -------
    list of CheckRow
        Rows for x, W and b; ``passed`` is ``max_rel <= tolerance``.

    Notes
    -----
    Costs ``2 * samples`` float64 forward passes per tensor.
    """
    if samples < 1:
        raise ParameterError(f"--check-samples must be >= 1, got {samples}")
    if not eps > 0:
        raise ParameterError(f"--eps must be > 0, got {eps}")
    layer = grads.layer
    tol = default_tolerance(grads.dx.dtype) if tolerance is None else tolerance
    x64 = np.array(x, dtype=np.float64)
    w64 = np.array(layer.W, dtype=np.float64)
    b64 = np.array(layer.b, dtype=np.float64)
    dout64 = np.asarray(dout, dtype=np.float64)
    probe = Convolution(
        w64, b64, layer.stride, layer.pad, dilation=layer.dilation, groups=layer.groups,
        padding_mode=layer.padding_mode,
    )
    rng = np.random.default_rng(seed)

    def loss() -> float:
        return float(np.sum(probe.forward(x64) * dout64))

    rows = []
    for name, param, analytic in (("dx", x64, grads.dx), ("dW", w64, grads.dW), ("db", b64, grads.db)):
        count = min(samples, param.size)
        picks = rng.choice(param.size, size=count, replace=False)
        numeric = np.empty(count)
        flat = param.reshape(-1)  # a view: the probe layer sees the perturbation
        for k, index in enumerate(picks):
            saved = flat[index]
            flat[index] = saved + eps
            plus = loss()
            flat[index] = saved - eps
            minus = loss()
            flat[index] = saved
            numeric[k] = (plus - minus) / (2 * eps)
        got = np.asarray(analytic, dtype=np.float64).reshape(-1)[picks]
        diff = np.abs(got - numeric)
        floor = max(1e-6 * float(np.max(np.abs(numeric))), 1e-30)
        rel = diff / np.maximum(np.maximum(np.abs(got), np.abs(numeric)), floor)
        max_rel = float(rel.max())
        rows.append(CheckRow(name, count, float(diff.max()), max_rel, max_rel <= tol))
    return rows

"""What ``convcli grad`` computes, as a library: the backward pass and the upstream gradient.

:func:`run_grad` is the whole computation (as :func:`convcli.filtering.apply_filters` is
``apply``'s): it picks the compute dtype, builds the layer, loads ``dout`` and runs
:func:`backward`, which runs the layer that :func:`convcli.layerspec.build_layer` describes
forward and then backward for an upstream gradient ``dout``, giving ``dx``, ``dW`` and
``db`` (the seed's names), and ``dK``, the gradient with respect to the kernels as the
user gave them (:func:`kernel_gradient`).  :func:`load_dout` reads or generates ``dout``.
Its numerical check is :mod:`convcli.gradcheck`; its files, :mod:`convcli.grad_outputs`.

The loss behind ``dout`` is ``L = sum(y * dout)``, whose gradient with respect to the
output ``y`` is ``dout`` itself; ``dout = y`` is the gradient of ``½‖y‖²``.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
from numpy.typing import NDArray

from ..engine.dtypes import compute_dtype
from ..engine.layer import Convolution
from ..engine.memory import allocation_guard, check_result_size
from ..errors import InputFileError, ParameterError, ShapeError
from ..io.inputs import load_npy, load_npz, read_source, sniff
from ..kernels.bank import kernel_stack, zero_sum_filters
from ..kernels.builtins import Kernel
from ..kernels.layerspec import LayerOptions, build_layer, working_dtype

_RANDN = re.compile(r"^randn(?::(\d+))?$")
_GENERATOR_LIKE = re.compile(r"^(ones|randn)\b", re.IGNORECASE)


@dataclass
class Gradients:
    """Result of :func:`backward`.

    Attributes
    ----------
    dx : ndarray, shape (N, C, H, W)
    dW : ndarray, shape (FN, C/groups, FH, FW)
        With respect to the layer's weights as it runs them (after ``flip`` and
        ``normalize`` of :class:`~convcli.layerspec.LayerOptions`).
    db : ndarray, shape (FN,)
        With respect to the bias (a zero bias when none was given).
    dK : ndarray or None
        With respect to the kernels as the user gave them (see :func:`kernel_gradient`):
        shape (FH, FW) for one 2-D kernel, (M, FH, FW) for M, (FN, C/groups, FH, FW)
        for layer kernels with ``flip`` or ``normalize``; None for layer kernels
        otherwise (dW is then already that gradient).
    layer : Convolution
        The layer (its W, b and geometry).
    seconds : float
        Time of forward + backward.
    kernels, options
        What the layer was built from (:func:`convcli.gradcheck.gradient_check` rebuilds it to check dK).
    """

    dx: NDArray[np.floating]
    dW: NDArray[np.floating]
    db: NDArray[np.floating]
    dK: Optional[NDArray[np.floating]]
    layer: Convolution
    seconds: float
    kernels: Sequence[Kernel] = ()
    options: LayerOptions = field(default_factory=LayerOptions)

    def norms(self) -> list[tuple[str, float, tuple[int, ...]]]:
        """(name, Euclidean norm, shape) of dx, dW, db and, when there is one, dK: a summary."""
        named = [("dx", self.dx), ("dW", self.dW), ("db", self.db)]
        named += [("dK", self.dK)] if self.dK is not None else []
        return [(name, float(np.linalg.norm(value)), tuple(value.shape)) for name, value in named]


# ---------------------------------------------------------------- dout


def make_dout(spec: str, shape: tuple[int, ...], dtype: np.dtype) -> Optional[NDArray[np.floating]]:
    """A generated upstream gradient: ``ones`` or ``randn[:SEED]``; None for anything else.

    Returns
    -------
    ndarray, shape ``shape``, or None
        None when ``spec`` names no generator (it is then a file or '-').  ``randn``
        draws standard normal values with numpy's ``default_rng(SEED)`` (SEED 0 when
        not given), in float64, then casts to ``dtype``.

    Raises
    ------
    ParameterError
        ``spec`` looks like a generator but is malformed (``randn:x``, ``ones:2``) and
        names no existing file.
    """
    if spec == "ones":
        return np.ones(shape, dtype=dtype)
    match = _RANDN.match(spec)
    if match:
        seed = int(match.group(1)) if match.group(1) else 0
        return np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    if _GENERATOR_LIKE.match(spec) and not os.path.exists(spec):
        raise ParameterError(
            f"--dout {spec!r} is not a generator: expected ones, randn or randn:SEED with SEED a non-negative "
            "integer (e.g. randn:7), or a .npy file"
        )
    return None


def load_dout(spec: str, shape: tuple[int, ...], dtype: np.dtype) -> NDArray[np.floating]:
    """The upstream gradient ``spec`` names (``--dout``), checked against the forward output.

    Parameters
    ----------
    spec : str
        A generator (:func:`make_dout`), ``-`` for standard input, or a file: ``.npy``,
        or ``.npz`` holding ``dout``, ``y`` (what ``apply -f npz`` writes) or one array.
    shape : tuple, (N, FN, OH, OW)
        The forward output's shape.
    dtype : numpy dtype
        The compute dtype; the result is cast to it.

    Returns
    -------
    ndarray, shape ``shape``, dtype ``dtype``

    Raises
    ------
    ShapeError
        The array's shape is not ``shape`` (the message states the expected shape).
    ParameterError
        Non-numeric values, or NaN/inf.
    InputFileError
        Unreadable or not .npy/.npz.
    """
    generated = make_dout(spec, shape, dtype)
    if generated is not None:
        return generated
    name = "standard input" if spec == "-" else spec
    if spec != "-" and not os.path.exists(spec):
        raise InputFileError(
            f"--dout file {spec!r} not found; expected a .npy of the forward output's shape {tuple(shape)}, "
            "'-' for standard input, or a generator: ones, randn, randn:SEED"
        )
    data = read_source(spec)
    if sniff(data) == "npz":
        arrays = load_npz(data, name)
        picked = next((arrays[k] for k in ("dout", "y") if k in arrays), None)
        if picked is None and len(arrays) == 1:
            picked = next(iter(arrays.values()))
        if picked is None:
            raise InputFileError(
                f"--dout {name!r} holds {', '.join(sorted(arrays)) or 'no arrays'}; expected an array named "
                "dout or y, or a single array"
            )
        array = picked
    else:
        array = load_npy(data, name)
    if array.dtype.kind not in "biuf":
        raise ParameterError(f"--dout {name!r} holds {array.dtype} values; expected real numbers")
    check_dout_shape(tuple(array.shape), shape, name)
    result = array.astype(dtype, copy=False)
    bad = int(np.count_nonzero(~np.isfinite(result)))
    if bad:
        raise ParameterError(f"--dout {name!r} holds {bad} non-finite value(s) (NaN or inf); gradients would be too")
    return result


def check_dout_shape(got: tuple[int, ...], expected: tuple[int, ...], name: str = "--dout") -> None:
    """Raise :class:`ShapeError` naming the expected shape unless ``got == expected``."""
    if tuple(got) != tuple(expected):
        where = name if name.startswith("--dout") else f"--dout {name!r}"
        raise ShapeError(
            f"{where} has shape {tuple(got)}; expected the forward output's shape {tuple(expected)} "
            "(N, FN, OH, OW) for this input, kernel and options"
        )


# ---------------------------------------------------------------- forward and backward


def build_grad_layer(
    kernels: Sequence[Kernel], channels: int, options: LayerOptions, dtype: np.dtype
) -> Convolution:
    """The layer of :func:`convcli.layerspec.build_layer`, with a zero bias when it has none (so db exists)."""
    layer = build_layer(kernels, channels, options, dtype)
    if layer.b is None:
        layer.b = np.zeros(np.asarray(layer.W).shape[0], dtype=dtype)
    return layer


def kernel_gradient(
    dW: NDArray[np.floating], kernels: Sequence[Kernel], channels: int, options: LayerOptions
) -> Optional[NDArray[np.floating]]:
    """Gradient with respect to the kernels as the user gave them, from the layer's ``dW``.

    The layer runs ``W = normalize(flip(stack(kernels)))``; the chain rule back through it:

    * stack: M 2-D kernels become the depthwise weights (C*M, 1, FH, FW), filter
      ``c*M + m`` being kernel m on channel c, so ``dK[m] = sum_c dW[c*M + m, 0]``.
      Layer kernels are concatenated along FN: dK is dW, cut nowhere.
    * flip (true convolution): ``dK`` is flipped back (rotated 180°).
    * normalize: each filter is ``w = k / s`` with ``s = sum(k)``, so
      ``dL/dk = (g - <g, w>) / s`` for its gradient ``g``; a zero-sum kernel
      (:func:`convcli.bank.is_zero_sum`, the test normalize uses) is not normalized and
      keeps ``g``.

    Parameters
    ----------
    dW : ndarray, shape (FN, C/groups, FH, FW)
        Gradient with respect to the layer's weights.
    kernels : sequence of Kernel
        All 2-D or all 4-D, as given to :func:`convcli.bank.filter_bank`.
    channels : int
        Input channels C.
    options : LayerOptions
        Its ``flip`` and ``normalize``.

    Returns
    -------
    ndarray or None
        2-D kernels: shape (FH, FW) for one kernel, (M, FH, FW) for M.  Layer
        kernels: (FN, C/groups, FH, FW) with ``flip`` or ``normalize``, else None (dW
        is already the gradient with respect to them).  dW's dtype.
    """
    layers = any(k.is_layer for k in kernels)
    if layers and not (options.flip or options.normalize):
        return None
    fh, fw = dW.shape[2:]
    if layers:
        grads = dW
    else:
        grads = dW.reshape(channels, len(kernels), fh, fw).sum(axis=0)  # filter c*M + m is kernel m
    raws = kernel_stack(kernels)
    zero = zero_sum_filters(raws)
    result = np.empty_like(grads)
    for index, raw in enumerate(raws):
        g = grads[index]
        if options.flip:
            g = g[..., ::-1, ::-1]
        if options.normalize and not zero[index]:
            total = float(raw.sum())
            g = (g - np.sum(g * (raw / total))) / total
        result[index] = g
    return result[0] if not layers and len(kernels) == 1 else result


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
        Upstream gradient; must match the forward output's shape.  Cast to the
        compute dtype.
    kernels, options
        What the layer was built from (to map dW back to the kernels as given).

    Returns
    -------
    Gradients

    Raises
    ------
    ShapeError
        ``dout`` of another shape, or a layer without a bias.
    """
    check_dout_shape(tuple(dout.shape), layer.output_shape(x.shape))
    dtype = compute_dtype(x, np.asarray(layer.W))
    return _backward(layer, x, dout.astype(dtype, copy=False), kernels, options)


def _backward(
    layer: Convolution,
    x: NDArray[np.floating],
    dout: NDArray[np.floating],
    kernels: Sequence[Kernel],
    options: LayerOptions,
) -> Gradients:
    """:func:`backward` for a ``dout`` already checked and in the compute dtype (from :func:`load_dout`)."""
    if layer.b is None:
        raise ShapeError("the layer has no bias: build it with build_grad_layer")
    start = time.perf_counter()
    layer.forward(x)
    dx = layer.backward(dout)
    seconds = time.perf_counter() - start
    assert layer.dW is not None and layer.db is not None  # set by backward when b is given
    return Gradients(
        dx=dx,
        dW=layer.dW,
        db=layer.db,
        dK=kernel_gradient(layer.dW, kernels, x.shape[1], options),
        layer=layer,
        seconds=seconds,
        kernels=list(kernels),
        options=options,
    )


@dataclass
class GradRun:
    """What :func:`run_grad` computed: the input and ``dout`` as used, and the gradients.

    Attributes
    ----------
    x : ndarray, shape (N, C, H, W)
        The input in the compute dtype.
    dout : ndarray, shape (N, FN, OH, OW)
        The upstream gradient in the compute dtype.
    grads : Gradients
    """

    x: NDArray[np.floating]
    dout: NDArray[np.floating]
    grads: Gradients

    @property
    def dtype(self) -> np.dtype:
        """The compute dtype."""
        return self.x.dtype

    @property
    def output_shape(self) -> tuple[int, ...]:
        """The forward output's shape (N, FN, OH, OW)."""
        return tuple(self.dout.shape)


def run_grad(x: NDArray[np.generic], kernels: Sequence[Kernel], options: LayerOptions, dout: str) -> GradRun:
    """The backward pass ``convcli grad`` runs: dtype, layer, upstream gradient, forward and backward.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
        The input; computed in :func:`convcli.layerspec.working_dtype` (``options.dtype``,
        else a float input's own dtype, else float32).
    kernels : sequence of Kernel
    options : LayerOptions
        The same options describe the same layer as ``apply``'s.
    dout : str
        ``--dout``: a generator, ``-`` or a file (:func:`load_dout`).

    Returns
    -------
    GradRun

    Raises
    ------
    ConvcliError
        Bad kernels or geometry, a ``dout`` of the wrong shape or unreadable, or a
        result too large for memory (:class:`~convcli.errors.MemoryLimitError`, checked
        before ``dout`` is read or generated).

    Notes
    -----
    Cost: one forward and one backward pass; memory for x, dout, the output y and dx.
    """
    dtype = working_dtype(x, options.dtype)
    xs = x.astype(dtype, copy=False)
    layer = build_grad_layer(kernels, xs.shape[1], options, dtype)
    expected = layer.output_shape(xs.shape)
    check_result_size(expected, dtype)
    with allocation_guard(expected, dtype):
        upstream = load_dout(dout, expected, dtype)
        grads = _backward(layer, xs, upstream, kernels, options)
    return GradRun(xs, upstream, grads)

"""What ``convcli grad`` does, as a library: the backward pass, its numerical check, its files.

:func:`backward` runs the layer that :func:`convcli.filtering.build_layer` describes
forward and then backward for an upstream gradient ``dout``, giving ``dx``, ``dW`` and
``db`` (the seed's names), and ``dK``, the gradient with respect to the kernels as the
user gave them.  :func:`gradient_check` compares them with central differences computed
in float64.  :func:`plan_outputs` and :func:`write_outputs` name, check and write the files.

The loss behind ``dout`` is ``L = sum(y * dout)``, whose gradient with respect to the
output ``y`` is ``dout`` itself; ``dout = y`` is the gradient of ``½‖y‖²``.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
from numpy.typing import NDArray

from .arrays import load_npy, load_npz, read_source, sniff
from .bank import ZERO_SUM_ATOL, filter_bank
from .display import DISPLAY_MODES, to_display
from .errors import InputFileError, OutputFileError, ParameterError, ShapeError
from .filtering import LayerOptions, build_layer
from .geometry import ConvGeometry
from .im2col import band_rows, gather_band, pad_source_index
from .images import encode_png
from .kernels import Kernel
from .layer import Convolution, compute_dtype
from .outputs import npy_bytes, npz_bytes, write_output

#: The --dout generators.
DOUT_GENERATORS = ("ones", "randn[:SEED]")

_RANDN = re.compile(r"^randn(?::(\d+))?$")
_GENERATOR_LIKE = re.compile(r"^(ones|randn)\b", re.IGNORECASE)

#: Bytes of float64 output one batched forward of :func:`gradient_check` may allocate.
CHECK_BYTES = 64 * 1024 * 1024


@dataclass
class Gradients:
    """Result of :func:`backward`.

    Attributes
    ----------
    dx : ndarray, shape (N, C, H, W)
    dW : ndarray, shape (FN, C/groups, FH, FW)
        With respect to the layer's weights as it runs them (after --flip and --normalize).
    db : ndarray, shape (FN,)
        With respect to the bias (a zero bias when none was given).
    dK : ndarray or None
        With respect to the kernels as the user gave them (see :func:`kernel_gradient`):
        shape (FH, FW) for one 2-D kernel, (M, FH, FW) for M, (FN, C/groups, FH, FW)
        for layer kernels under --flip or --normalize; None for layer kernels otherwise
        (dW is then already that gradient).
    layer : Convolution
        The layer (its W, b and geometry).
    seconds : float
        Time of forward + backward.
    kernels, options
        What the layer was built from (:func:`gradient_check` rebuilds it to check dK).
    """

    dx: NDArray[np.floating]
    dW: NDArray[np.floating]
    db: NDArray[np.floating]
    dK: Optional[NDArray[np.floating]]
    layer: Convolution
    seconds: float
    kernels: Sequence[Kernel] = ()
    options: LayerOptions = field(default_factory=LayerOptions)


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
    """The upstream gradient ``--dout`` names, checked against the forward output.

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
    """The layer of :func:`convcli.filtering.build_layer`, with a zero bias when it has none (so db exists)."""
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
      ``dL/dk = (g - <g, w>) / s`` for its gradient ``g``; a kernel whose sum is 0
      (``|s| <= ZERO_SUM_ATOL``) is not normalized and keeps ``g``.

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
        kernels: (FN, C/groups, FH, FW) under --flip or --normalize, else None (dW
        is already the gradient with respect to them).  dW's dtype.
    """
    layers = any(k.is_layer for k in kernels)
    if layers and not (options.flip or options.normalize):
        return None
    fh, fw = dW.shape[2:]
    if layers:
        grads = dW
        raws = np.concatenate([np.asarray(k.weights, dtype=np.float64) for k in kernels])
    else:
        grads = dW.reshape(channels, len(kernels), fh, fw).sum(axis=0)  # filter c*M + m is kernel m
        raws = np.stack([np.asarray(k.weights, dtype=np.float64) for k in kernels])
    result = np.empty_like(grads)
    for index, raw in enumerate(raws):
        g = grads[index]
        if options.flip:
            g = g[..., ::-1, ::-1]
        total = float(raw.sum())
        if options.normalize and abs(total) > ZERO_SUM_ATOL:
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
        Upstream gradient; must match the forward output's shape.
    kernels, options
        What the layer was built from (to map dW back to the kernels as given).

    Returns
    -------
    Gradients
    """
    check_dout_shape(tuple(dout.shape), layer.output_shape(x.shape))
    if layer.b is None:
        raise ShapeError("the layer has no bias: build it with build_grad_layer")
    dtype = compute_dtype(x, np.asarray(layer.W))
    start = time.perf_counter()
    layer.forward(x)
    dx = layer.backward(dout.astype(dtype, copy=False))
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


# ---------------------------------------------------------------- gradient check


@dataclass
class CheckRow:
    """Numerical check of one tensor: errors over the sampled entries."""

    name: str
    samples: int
    max_abs: float
    max_rel: float
    passed: bool
    note: str = ""


def default_tolerance(dtype: np.dtype) -> float:
    """Relative tolerance for a check of gradients computed in ``dtype``."""
    return 1e-6 if dtype == np.float64 else 1e-3


@dataclass
class _Variant:
    """One perturbed copy of some filters: ``weights[i]``/``bias[i]`` replace filter ``filters[i]``."""

    filters: tuple[int, ...]
    weights: NDArray[np.float64]
    bias: NDArray[np.float64]


class _Probe:
    """Float64 evaluations of ``L = sum(y * dout)`` restricted to the outputs a perturbation reaches.

    A perturbed entry changes only some outputs: an entry of x only those whose
    receptive field (after padding) holds it, in its group's filters; an entry of W
    or b only its filter's outputs.  The loss over the other outputs does not change,
    so ``L(p + eps) - L(p - eps)`` equals the same difference of the loss over the
    reached outputs.  Each value is still a full float64 forward (the layer's own
    padding and im2col code) of those outputs with the perturbed parameter.
    """

    def __init__(self, layer: Convolution, x: NDArray[np.generic], dout: NDArray[np.generic]) -> None:
        self.x = np.array(x, dtype=np.float64)
        self.W = np.array(layer.W, dtype=np.float64)
        self.b = np.zeros(self.W.shape[0]) if layer.b is None else np.array(layer.b, dtype=np.float64)
        self.dout = np.asarray(dout, dtype=np.float64)
        self.geom: ConvGeometry = layer.geometry(self.x.shape)

    # -- x: windows of outputs

    def _reached(self, index: int, axis: int) -> list[tuple[int, int]]:
        """Runs ``[o0, o1)`` of output rows (axis 0) or columns (axis 1) that read input row/column ``index``."""
        g = self.geom
        size = (g.height, g.width)[axis]
        before = g.pads[2 * axis]
        padded = g.padded_hw[axis]
        k, s, d = (g.kernel_h, g.kernel_w)[axis], g.stride[axis], g.dilation[axis]
        out = (g.out_h, g.out_w)[axis]
        sources = [index + before]
        if g.padding_mode != "zeros":
            for p in [*range(before), *range(before + size, padded)]:
                if pad_source_index(p - before, size, g.padding_mode) == index:
                    sources.append(p)
        reached = sorted({
            (p - i * d) // s
            for p in sources
            for i in range(k)
            if p - i * d >= 0 and (p - i * d) % s == 0 and (p - i * d) // s < out
        })
        runs: list[tuple[int, int]] = []
        for o in reached:
            if runs and runs[-1][1] == o:
                runs[-1] = (runs[-1][0], o + 1)
            else:
                runs.append((o, o + 1))
        return runs

    def x_loss(self, n: int, c: int, rows: list[tuple[int, int]], cols: list[tuple[int, int]]) -> float:
        """Loss over output rows ``rows`` x columns ``cols`` of image n, in the filters of channel c's group."""
        g = self.geom
        cg, fg = g.channels_per_group, g.filters_per_group
        group = c // cg
        filters = slice(group * fg, (group + 1) * fg)
        layer = Convolution(self.W[filters], self.b[filters], g.stride, 0, dilation=g.dilation)
        image = self.x[n:n + 1, group * cg:(group + 1) * cg]
        total = 0.0
        for r0, r1 in rows:
            band = np.empty((cg, 1, band_rows(g, r1 - r0), g.padded_hw[1]))
            gather_band(image, 0, 1, r0, r1 - r0, g, band)  # the layer's own padding
            for c0, c1 in cols:
                first, stop = c0 * g.stride[1], (c1 - 1) * g.stride[1] + g.dilation[1] * (g.kernel_w - 1) + 1
                y = layer.forward(band[:, :, :, first:stop].transpose(1, 0, 2, 3))
                total += float(np.sum(y * self.dout[n:n + 1, filters, r0:r1, c0:c1]))
        return total

    def x_numeric(self, flat_index: int, eps: float) -> float:
        """Central difference for one entry of x; 0 when no output reads it."""
        n, c, h, w = np.unravel_index(flat_index, self.x.shape)
        rows, cols = self._reached(int(h), 0), self._reached(int(w), 1)
        if not rows or not cols:
            return 0.0  # no output reads this entry: L does not depend on it
        saved = self.x[n, c, h, w]
        self.x[n, c, h, w] = saved + eps
        plus = self.x_loss(int(n), int(c), rows, cols)
        self.x[n, c, h, w] = saved - eps
        minus = self.x_loss(int(n), int(c), rows, cols)
        self.x[n, c, h, w] = saved
        return (plus - minus) / (2 * eps)

    # -- W, b, kernels: whole filters, batched

    def filter_losses(self, variants: Sequence[_Variant]) -> list[float]:
        """Loss over the outputs of each variant's filters, the filters replaced by the variant's.

        Variants whose filters lie in the same groups (one filter per group) run as
        one forward, each group holding one filter per variant, in chunks of about
        :data:`CHECK_BYTES` of output.
        """
        g = self.geom
        by_groups: dict[tuple[int, ...], list[int]] = {}
        for i, v in enumerate(variants):
            by_groups.setdefault(tuple(f // g.filters_per_group for f in v.filters), []).append(i)
        losses = [0.0] * len(variants)
        cg = g.channels_per_group
        n, oh, ow = g.batch, g.out_h, g.out_w
        for groups, members in by_groups.items():
            x = np.concatenate([self.x[:, k * cg:(k + 1) * cg] for k in groups], axis=1)
            per_chunk = max(1, CHECK_BYTES // (8 * n * len(groups) * oh * ow))
            for start in range(0, len(members), per_chunk):
                chunk = [variants[i] for i in members[start:start + per_chunk]]
                nv = len(chunk)
                weights = np.stack([v.weights for v in chunk], axis=1)  # (groups, variants, Cg, FH, FW)
                bias = np.stack([v.bias for v in chunk], axis=1)
                layer = Convolution(
                    weights.reshape(-1, *weights.shape[2:]), bias.reshape(-1), g.stride, g.pads,
                    dilation=g.dilation, groups=len(groups), padding_mode=g.padding_mode,
                )
                y = layer.forward(x).reshape(n, len(groups), nv, oh, ow)
                for j, v in enumerate(chunk):
                    losses[members[start + j]] = float(np.sum(y[:, :, j] * self.dout[:, list(v.filters)]))
        return losses


def _weight_variants(probe: _Probe, flat_index: int, eps: float, which: str) -> list[_Variant]:
    """The +eps and -eps variants of one entry of W or b."""
    variants = []
    for step in (eps, -eps):
        if which == "W":
            f = int(np.unravel_index(flat_index, probe.W.shape)[0])
            weights = probe.W[f:f + 1].copy()
            weights.reshape(-1)[flat_index - f * weights.size] += step
            bias = probe.b[f:f + 1]
        else:
            f = flat_index
            weights = probe.W[f:f + 1]
            bias = probe.b[f:f + 1].copy()
            bias[0] += step
        variants.append(_Variant((f,), weights, bias))
    return variants


def _kernel_variants(
    probe: _Probe, grads: Gradients, flat_index: int, steps: Sequence[float]
) -> list[_Variant]:
    """Variants of one entry of the kernels as given, moved by each of ``steps``, rebuilt through filter_bank."""
    kernels = list(grads.kernels)
    options = grads.options
    channels = probe.geom.channels
    layers = kernels[0].is_layer
    sizes = [k.weights.size for k in kernels]
    which = int(np.searchsorted(np.cumsum(sizes), flat_index, side="right"))
    local = flat_index - sum(sizes[:which])
    if layers:
        first = sum(k.filters for k in kernels[:which])
        per_filter = kernels[which].weights[0].size
        filters: tuple[int, ...] = (first + local // per_filter,)
    else:
        m = len(kernels)
        filters = tuple(c * m + which for c in range(channels))
    variants = []
    for step in steps:
        raw = np.array(kernels[which].weights, dtype=np.float64)
        raw.reshape(-1)[local] += step
        changed = [*kernels[:which], Kernel(raw, kernels[which].bias, kernels[which].label), *kernels[which + 1:]]
        weights, _, _ = filter_bank(
            changed, channels, groups=options.groups, flip=options.flip, normalize=options.normalize
        )
        variants.append(_Variant(filters, weights[list(filters)], probe.b[list(filters)]))
    return variants


def _differentiable_kernel_entries(grads: Gradients) -> NDArray[np.intp]:
    """Flat indices of dK where L is differentiable in the kernel: all but zero-sum filters under --normalize.

    --normalize leaves a kernel (a layer filter) whose sum is 0 alone but divides any
    perturbed copy by its tiny sum, so L jumps there and has no derivative.
    """
    assert grads.dK is not None
    if not grads.options.normalize:
        return np.arange(grads.dK.size)
    if grads.kernels[0].is_layer:
        raw = np.concatenate([np.asarray(k.weights, dtype=np.float64) for k in grads.kernels])
        per_filter = raw[0].size
    else:
        raw = np.stack([np.asarray(k.weights, dtype=np.float64) for k in grads.kernels])
        per_filter = raw[0].size
    sums = raw.reshape(raw.shape[0], -1).sum(axis=1)
    keep = np.repeat(np.abs(sums) > ZERO_SUM_ATOL, per_filter)
    return np.flatnonzero(keep)


def _scale(name: str, probe: _Probe) -> float:
    """Size of one term of the sums that make each gradient (for the absolute floor of the relative error)."""
    dout = float(np.max(np.abs(probe.dout), initial=0.0))
    if name == "dx":
        return float(np.max(np.abs(probe.W), initial=0.0)) * dout
    if name == "db":
        return dout
    return float(np.max(np.abs(probe.x), initial=0.0)) * dout


def check_options(samples: int, eps: float, seed: int, tolerance: Optional[float]) -> None:
    """Raise :class:`ParameterError` for a bad sample count, step, seed or tolerance of :func:`gradient_check`."""
    if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 1:
        raise ParameterError(f"--check-samples must be an integer >= 1, got {samples!r}")
    if not (math.isfinite(eps) and eps > 0):
        raise ParameterError(f"--eps must be a finite number > 0, got {eps}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ParameterError(f"--seed must be an integer >= 0, got {seed!r}")
    if tolerance is not None and not (math.isfinite(tolerance) and tolerance > 0):
        raise ParameterError(f"--tol must be a finite number > 0, got {tolerance}")


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

    For each of x, W and b (and the kernels as given, when ``grads.dK`` exists),
    ``samples`` entries are drawn at random (all of them when the tensor is smaller);
    entry ``i`` gets ``(L(p_i + eps) - L(p_i - eps)) / (2 eps)`` from float64 forward
    passes with the entry perturbed.  Only the outputs the entry reaches are computed
    (the rest of L does not change, so the difference is the same): a window of the
    perturbed image's rows and columns for x, the filter's maps for W and b, the
    kernel's maps for dK (the kernel rebuilt through --flip and --normalize).  The
    relative error of an entry is ``|analytic - numeric| / max(|analytic|, |numeric|,
    floor)``, where the floor is 1e-6 times the larger of the tensor's largest
    sampled numeric value and one term of its sums (max|W|·max|dout| for dx,
    max|x|·max|dout| for dW and dK, max|dout| for db), so entries that should be 0
    are judged in absolute terms.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
        The input ``grads`` was computed for.
    grads : Gradients
        From :func:`backward`.
    dout : ndarray, shape (N, FN, OH, OW)
    samples : int
        Entries per tensor, >= 1.
    eps : float
        Step, > 0.  L is linear in each entry of x, W and b, so the difference has no
        truncation error there.  Under --normalize, L is rational in a kernel tap,
        ``(a + b t) / (s + t)`` with s the kernel's sum, and the central difference is off
        by the factor ``s² / (s² - eps²)``; the dK row then combines the differences at
        eps and eps/2 (Richardson extrapolation, ``(4 D(eps/2) - D(eps)) / 3``), which
        leaves an error of order ``(eps / s)⁴``.
    seed : int
        Seed of the entries drawn, >= 0.
    tolerance : float, optional
        Largest relative error that passes; default :func:`default_tolerance` of dx's dtype.

    Returns
    -------
    list of CheckRow
        Rows for dx, dW, db (and dK); ``passed`` is ``max_rel <= tolerance``.  A dK row
        with 0 samples (and a note) when every kernel is zero-sum under --normalize.

    Notes
    -----
    Cost: per sampled entry of x, two forwards of a window of about FH x FW output
    pixels; per entry of W, b or K, two forwards of one filter's maps (batched, so
    all W and b entries of one group take one forward of ``4 * samples`` filters).
    """
    check_options(samples, eps, seed, tolerance)
    tol = default_tolerance(grads.dx.dtype) if tolerance is None else tolerance
    probe = _Probe(grads.layer, x, dout)
    rng = np.random.default_rng(seed)

    def picks(size: int) -> NDArray[np.intp]:
        return np.sort(rng.choice(size, size=min(samples, size), replace=False))

    numeric: dict[str, NDArray[np.float64]] = {}
    chosen: dict[str, NDArray[np.intp]] = {}
    chosen["dx"] = picks(probe.x.size)
    numeric["dx"] = np.array([probe.x_numeric(int(i), eps) for i in chosen["dx"]])

    chosen["dW"], chosen["db"] = picks(probe.W.size), picks(probe.b.size)
    variants: list[_Variant] = []
    for which, name in (("W", "dW"), ("b", "db")):
        for i in chosen[name]:
            variants.extend(_weight_variants(probe, int(i), eps, which))
    kernel_note = ""
    # under --normalize L is rational, not linear, in a kernel tap: (a + b t) / (s + t), whose central
    # difference is off by exactly the factor s² / (s² - eps²); combining the differences at eps and eps/2
    # (Richardson: (4 D(eps/2) - D(eps)) / 3) cancels that eps² term
    richardson = grads.options.normalize
    kernel_steps = (eps, -eps, eps / 2, -eps / 2) if richardson else (eps, -eps)
    if grads.dK is not None:
        eligible = _differentiable_kernel_entries(grads)
        if eligible.size < grads.dK.size:
            kernel_note = "zero-sum kernels under --normalize left out: not differentiable there"
        if eligible.size:
            chosen["dK"] = eligible[picks(eligible.size)]
            for i in chosen["dK"]:
                variants.extend(_kernel_variants(probe, grads, int(i), kernel_steps))
    losses = iter(probe.filter_losses(variants))
    for name in ("dW", "db"):
        numeric[name] = np.array([(plus - minus) / (2 * eps) for plus, minus in _pairs(losses, len(chosen[name]))])
    if "dK" in chosen:
        values = []
        for plus, minus in _pairs(losses, len(chosen["dK"])):
            difference = (plus - minus) / (2 * eps)
            if richardson:
                half_plus, half_minus = next(losses), next(losses)
                difference = (4 * (half_plus - half_minus) / eps - difference) / 3
            values.append(difference)
        numeric["dK"] = np.array(values)

    rows = []
    analytic = {"dx": grads.dx, "dW": grads.dW, "db": grads.db, "dK": grads.dK}
    for name in ("dx", "dW", "db", "dK"):
        if name not in chosen:
            if name == "dK" and kernel_note:
                rows.append(CheckRow(name, 0, 0.0, 0.0, True, kernel_note))
            continue
        num = numeric[name]
        got = np.asarray(analytic[name], dtype=np.float64).reshape(-1)[chosen[name]]
        diff = np.abs(got - num)
        unit = _scale(name, probe)
        floor = max(1e-6 * max(float(np.max(np.abs(num))), unit), 1e-300)
        rel = diff / np.maximum(np.maximum(np.abs(got), np.abs(num)), floor)
        max_rel = float(np.max(rel))  # NaN when a gradient is NaN: then it fails
        note = kernel_note if name == "dK" else ""
        rows.append(CheckRow(name, len(num), float(np.max(diff)), max_rel, bool(max_rel <= tol), note))
    return rows


def _pairs(values: Iterator[float], count: int) -> Iterator[tuple[float, float]]:
    for _ in range(count):
        yield next(values), next(values)


# ---------------------------------------------------------------- output files


#: Names of the gradients, as in the .npz.
GRAD_NAMES = ("dx", "dW", "db")


@dataclass
class GradOutput:
    """One file (or stream) ``grad`` writes.

    Attributes
    ----------
    what : str
        "npz" (dx, dW, db and dK) or one of "dx", "dW", "db".
    path : str
        A path or ``-``.
    format : str
        npz, npy or png.
    """

    what: str
    path: str
    format: str


def _format_of(path: str, what: str) -> str:
    lower = path.lower()
    if what == "npz":
        if path == "-" or lower.endswith(".npz"):
            return "npz"
        raise OutputFileError(
            f"-o {path!r}: grad writes an .npz archive (dx, dW, db); name it .npz, or write single arrays "
            "with --dx/--dw/--db"
        )
    option = f"--{what.lower()}"
    if path == "-" or lower.endswith(".npy"):
        return "npy"
    if lower.endswith(".png") and what != "db":
        return "png"
    expected = "a .npy name" if what == "db" else "a .npy or .png name"
    raise OutputFileError(f"{option} {path!r}: expected {expected}, or '-' for standard output")


def _same_path(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b))


def plan_outputs(
    output: Optional[str],
    singles: Mapping[str, Optional[str]],
    default: str,
    protect: Sequence[str] = (),
) -> list[GradOutput]:
    """Name and check every output before anything is computed.

    Parameters
    ----------
    output : str or None
        ``-o``: an .npz path or ``-``.
    singles : dict
        ``{"dx": path, "dW": path, "db": path}`` (None where not asked for).
    default : str
        The .npz written when neither ``-o`` nor any single output is given.
    protect : sequence of str
        Files read (input, --dout, kernel and bias files): never overwritten.

    Raises
    ------
    OutputFileError
        A bad extension, two outputs to one path or to standard output, an output
        that is an input, a missing directory or a directory as output.
    """
    targets: list[GradOutput] = []
    for what, path in singles.items():
        if path is not None:
            targets.append(GradOutput(what, path, _format_of(path, what)))
    if output is not None or not targets:
        path = default if output is None else output
        targets.insert(0, GradOutput("npz", path, _format_of(path, "npz")))
    if sum(t.path == "-" for t in targets) > 1:
        raise OutputFileError("only one output can go to standard output '-'; write the others to files")
    for i, target in enumerate(targets):
        if target.path == "-":
            continue
        if not target.path:
            raise OutputFileError("output path is empty")
        for other in targets[:i]:
            if other.path != "-" and (other.path == target.path or _same_path(other.path, target.path)):
                raise OutputFileError(f"two outputs would be written to {target.path!r}; give each its own name")
        for source in protect:
            if source != "-" and os.path.lexists(target.path) and os.path.exists(source):
                if _same_path(target.path, source):
                    raise OutputFileError(
                        f"refusing to overwrite input {source!r} with output {target.path!r}; choose another name"
                    )
        directory = os.path.dirname(os.path.realpath(target.path) if os.path.islink(target.path) else target.path)
        if directory and not os.path.isdir(directory):
            raise OutputFileError(f"output directory {directory!r} does not exist (for {target.path!r})")
        if os.path.isdir(target.path):
            raise OutputFileError(f"output {target.path!r} is a directory; expected a file name")
    return targets


def _grid(cells: NDArray[np.floating], display: str) -> NDArray[np.float32]:
    """Display-mapped cells (R, K, C, h, w) laid out as an R x K grid with 1-pixel white gaps: (C, H, W)."""
    rows, cols, channels, h, w = cells.shape
    canvas = np.ones((channels, rows * (h + 1) - 1, cols * (w + 1) - 1), dtype=np.float32)
    for r in range(rows):
        for k in range(cols):
            canvas[:, r * (h + 1):r * (h + 1) + h, k * (w + 1):k * (w + 1) + w] = to_display(cells[r, k], display)
    return canvas


def grad_png(value: NDArray[np.floating], what: str, display: str) -> NDArray[np.float32]:
    """Pixels (C, H, W) in [0, 1] of a gradient, through apply's display mapping.

    dx (N, C, H, W): one row per image, in colour when C is 3 or 4 (as apply writes
    RGB), else one gray map per channel.  Weights: dW/dK (FN, C/groups, FH, FW) as an
    FN x C/groups grid of gray maps, (M, FH, FW) as a row of M, (FH, FW) alone.
    Each map (each colour image) is mapped on its own; maps are 1 pixel apart.
    """
    if display not in DISPLAY_MODES:
        raise ParameterError(f"--display must be one of {', '.join(DISPLAY_MODES)}, got {display!r}")
    array = np.asarray(value)
    if what == "dx" and array.shape[1] in (3, 4):
        cells = array[:, None]
    elif array.ndim == 2:
        cells = array[None, None, None]
    elif array.ndim == 3:
        cells = array[None, :, None]
    else:
        cells = array[:, :, None]
    return _grid(cells, display)


def output_bytes(target: GradOutput, grads: Gradients, display: str) -> tuple[bytes, tuple[int, ...]]:
    """The bytes of one output and the shape of what it holds."""
    if target.what == "npz":
        arrays = {"dx": grads.dx, "dW": grads.dW, "db": grads.db}
        if grads.dK is not None:
            arrays["dK"] = grads.dK
        return npz_bytes(arrays), ()
    value = {"dx": grads.dx, "dW": grads.dW if grads.dK is None else grads.dK, "db": grads.db}[target.what]
    if target.format == "png":
        return encode_png(grad_png(value, target.what, display)), tuple(value.shape)
    return npy_bytes(value), tuple(value.shape)


def write_outputs(
    targets: Sequence[GradOutput], grads: Gradients, display: str, protect: Sequence[str] = ()
) -> list[tuple[GradOutput, tuple[int, ...]]]:
    """Encode every output, then write them; when a write fails, remove the files this call created.

    Returns
    -------
    list of (GradOutput, shape)
        What was written.
    """
    encoded = [(t, *output_bytes(t, grads, display)) for t in targets]
    created: list[str] = []
    done = []
    try:
        for target, data, shape in encoded:
            existed = target.path == "-" or os.path.lexists(target.path)
            write_output(target.path, data, protect=protect)
            if not existed:
                created.append(target.path)
            done.append((target, shape))
    except BaseException:
        for path in created:
            try:
                os.unlink(path)
            except OSError:
                pass
        raise
    return done

"""The numerical check of ``convcli grad``: analytic gradients against float64 central differences.

:func:`gradient_check` compares the :class:`~convcli.commands.grad.Gradients` of
:func:`convcli.commands.grad.backward` with central differences of ``L = sum(y * dout)``, in
four steps, each a function: sample the entries (:func:`sample_entries`), differentiate x
numerically (:func:`numeric_x`), differentiate the weights, bias and kernels numerically
(:func:`numeric_filters`), and compare (:func:`compare`).  Each evaluation computes only the
outputs the perturbed entry reaches: a local window of rows and columns for x, whole
filters, batched, for W, b and the kernels.

The check is independent of the engine's internals: it pads the input itself with
``np.pad`` (zeros -> constant, reflect -> reflect, replicate -> edge, circular -> wrap) and
evaluates forwards with :class:`~convcli.engine.layer.Convolution` on the padded input with
``pad=0``, in float64.

Neighbours: the gradients it checks and the command's verdict are :mod:`convcli.commands.grad`;
the kernels' way into the layer, which the dK check rebuilds, is :mod:`convcli.kernels.bank`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

import numpy as np
from numpy.typing import NDArray

from ..engine.geometry import PaddingMode, parse_padding_mode
from ..engine.layer import Convolution
from ..errors import ParameterError
from ..kernels.bank import filter_bank, kernel_stack
from ..kernels.gradient import gradient_layout, smooth_entries
from ..kernels.kernel import Kernel, zero_sum_filters

if TYPE_CHECKING:
    from .grad import Gradients

__all__ = [
    "CHECK_BYTES", "CheckRow", "check_options", "compare", "default_tolerance", "gradient_check", "numeric_filters",
    "numeric_x", "sample_entries",
]

#: Bytes of float64 output one batched forward of :func:`gradient_check` may allocate.
CHECK_BYTES = 64 * 1024 * 1024

#: ``np.pad`` modes of the layer's padding modes.
_NP_PAD_MODES = {"reflect": "reflect", "replicate": "edge", "circular": "wrap", "symmetric": "symmetric"}


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


# ---------------------------------------------------------------- the layer's geometry, from its public attributes


def _pair(value: Any) -> tuple[int, int]:
    """An int or an (h, w) pair (as the layer was given it) as a pair."""
    return (int(value[0]), int(value[1])) if isinstance(value, (tuple, list)) else (int(value), int(value))


@dataclass(frozen=True)
class _Layout:
    """What the check needs to know of a layer and its input, all per axis (h, w) where paired."""

    channels: int
    groups: int
    filters_per_group: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]
    pads: tuple[int, int, int, int]
    mode: PaddingMode
    out: tuple[int, int]

    @property
    def channels_per_group(self) -> int:
        return self.channels // self.groups


def _layout(layer: Convolution, x_shape: tuple[int, ...]) -> _Layout:
    """The layout of ``layer`` for an input of ``x_shape`` (N, C, H, W).

    Explicit pads are taken as given; ``"same"`` is resolved by its contract (output
    ``ceil(size / stride)``, an odd total's extra pixel after); the output size is the
    layer's own (:meth:`~convcli.engine.layer.Convolution.output_shape`), and the pads must
    give it.
    """
    fn, _, kh, kw = np.asarray(layer.W).shape
    stride, dilation = _pair(layer.stride), _pair(layer.dilation)
    out = tuple(int(v) for v in layer.output_shape(tuple(x_shape))[2:])
    sizes, kernel = tuple(int(v) for v in x_shape[2:]), (int(kh), int(kw))
    pad = layer.pad
    if isinstance(pad, str) and pad.lower() == "valid":
        pads: tuple[int, ...] = (0, 0, 0, 0)
    elif isinstance(pad, str):  # "same"
        totals = [max((-(-n // s) - 1) * s + d * (k - 1) + 1 - n, 0)
                  for n, k, s, d in zip(sizes, kernel, stride, dilation)]
        pads = (totals[0] // 2, totals[0] - totals[0] // 2, totals[1] // 2, totals[1] - totals[1] // 2)
    elif isinstance(pad, (tuple, list)) and len(pad) == 4:
        pads = tuple(int(p) for p in pad)
    else:
        ph, pw = _pair(pad)
        pads = (ph, ph, pw, pw)
    for axis in (0, 1):
        before, after = pads[2 * axis], pads[2 * axis + 1]
        size = (sizes[axis] + before + after - dilation[axis] * (kernel[axis] - 1) - 1) // stride[axis] + 1
        if size != out[axis]:
            raise RuntimeError(f"gradient check: pads {pads} give output size {size}, the layer {out[axis]}")
    groups = int(layer.groups)
    return _Layout(int(x_shape[1]), groups, int(fn) // groups, kernel, stride, dilation,
                   (pads[0], pads[1], pads[2], pads[3]), parse_padding_mode(layer.padding_mode), (out[0], out[1]))


def _pad(array: NDArray[Any], before: tuple[int, int], after: tuple[int, int], mode: PaddingMode,
         fill: Optional[float] = None) -> NDArray[Any]:
    """``array`` (..., H, W) padded on its last two axes as the layer pads.

    ``fill``, when given, replaces the constant of zeros and constant padding (-1 marks
    "no source pixel" in an index map).
    """
    widths = [(0, 0)] * (array.ndim - 2) + [(before[0], after[0]), (before[1], after[1])]
    if mode.name in ("zeros", "constant"):
        return np.pad(array, widths, mode="constant", constant_values=mode.value if fill is None else fill)
    return np.pad(array, widths, mode=_NP_PAD_MODES[mode.name])  # type: ignore[call-overload]


# ---------------------------------------------------------------- float64 evaluations of L


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
    reached outputs.  The input is padded once (``np.pad``); perturbing an entry of x
    perturbs every padded position that copies it.
    """

    def __init__(self, layer: Convolution, x: NDArray[np.generic], dout: NDArray[np.generic]) -> None:
        self.x = np.array(x, dtype=np.float64)
        self.W = np.array(layer.W, dtype=np.float64)
        self.b = np.zeros(self.W.shape[0]) if layer.b is None else np.array(layer.b, dtype=np.float64)
        self.dout = np.asarray(dout, dtype=np.float64)
        self.layout = lay = _layout(layer, self.x.shape)
        before, after = (lay.pads[0], lay.pads[2]), (lay.pads[1], lay.pads[3])
        self.padded = _pad(self.x, before, after, lay.mode)
        # padded position -> the input row (column) it copies, -1 where the padding is zeros
        self.sources = tuple(
            _pad(np.arange(size)[None], (0, before[axis]), (0, after[axis]), lay.mode, fill=-1)[0]
            for axis, size in enumerate(self.x.shape[2:])
        )

    # -- x: windows of outputs

    def _reached(self, positions: NDArray[np.intp], axis: int) -> list[tuple[int, int]]:
        """Runs ``[o0, o1)`` of output rows (axis 0) or columns (axis 1) that read padded ``positions``."""
        lay = self.layout
        k, s, d, out = lay.kernel[axis], lay.stride[axis], lay.dilation[axis], lay.out[axis]
        reached = sorted({
            (int(p) - i * d) // s
            for p in positions
            for i in range(k)
            if int(p) - i * d >= 0 and (int(p) - i * d) % s == 0 and (int(p) - i * d) // s < out
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
        lay = self.layout
        cg, fg = lay.channels_per_group, lay.filters_per_group
        group = c // cg
        filters = slice(group * fg, (group + 1) * fg)
        layer = Convolution(self.W[filters], self.b[filters], lay.stride, 0, dilation=lay.dilation)
        image = self.padded[n:n + 1, group * cg:(group + 1) * cg]
        (sh, sw), (dh, dw), (kh, kw) = lay.stride, lay.dilation, lay.kernel
        total = 0.0
        for r0, r1 in rows:
            band = image[:, :, r0 * sh:(r1 - 1) * sh + dh * (kh - 1) + 1]
            for c0, c1 in cols:
                y = layer.forward(band[:, :, :, c0 * sw:(c1 - 1) * sw + dw * (kw - 1) + 1])
                total += float(np.sum(y * self.dout[n:n + 1, filters, r0:r1, c0:c1]))
        return total

    def x_numeric(self, flat_index: int, eps: float) -> float:
        """Central difference for one entry of x; 0 when no output reads it."""
        n, c, h, w = (int(i) for i in np.unravel_index(flat_index, self.x.shape))
        where_h, where_w = np.flatnonzero(self.sources[0] == h), np.flatnonzero(self.sources[1] == w)
        rows, cols = self._reached(where_h, 0), self._reached(where_w, 1)
        if not rows or not cols:
            return 0.0  # no output reads this entry: L does not depend on it
        copies = (n, c, where_h[:, None], where_w[None, :])
        saved = self.x[n, c, h, w]
        self.padded[copies] = saved + eps
        plus = self.x_loss(n, c, rows, cols)
        self.padded[copies] = saved - eps
        minus = self.x_loss(n, c, rows, cols)
        self.padded[copies] = saved
        return (plus - minus) / (2 * eps)

    # -- W, b, kernels: whole filters, batched

    def filter_losses(self, variants: Sequence[_Variant]) -> list[float]:
        """Loss over the outputs of each variant's filters, the filters replaced by the variant's.

        Variants whose filters lie in the same groups (one filter per group) run as
        one forward, each group holding one filter per variant, in chunks of about
        :data:`CHECK_BYTES` of output.
        """
        lay = self.layout
        by_groups: dict[tuple[int, ...], list[int]] = {}
        for i, v in enumerate(variants):
            by_groups.setdefault(tuple(f // lay.filters_per_group for f in v.filters), []).append(i)
        losses = [0.0] * len(variants)
        cg = lay.channels_per_group
        n, (oh, ow) = self.x.shape[0], lay.out
        for groups, members in by_groups.items():
            x = np.concatenate([self.padded[:, k * cg:(k + 1) * cg] for k in groups], axis=1)
            per_chunk = max(1, CHECK_BYTES // (8 * n * len(groups) * oh * ow))
            for start in range(0, len(members), per_chunk):
                chunk = [variants[i] for i in members[start:start + per_chunk]]
                nv = len(chunk)
                weights = np.stack([v.weights for v in chunk], axis=1)  # (groups, variants, Cg, FH, FW)
                bias = np.stack([v.bias for v in chunk], axis=1)
                layer = Convolution(weights.reshape(-1, *weights.shape[2:]), bias.reshape(-1), lay.stride, 0,
                                    dilation=lay.dilation, groups=len(groups))
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
    channels = probe.layout.channels
    if kernels[0].is_layer:
        sizes = [k.weights.size for k in kernels]
        which = int(np.searchsorted(np.cumsum(sizes), flat_index, side="right"))
        local = flat_index - sum(sizes[:which])
        first = sum(k.filters for k in kernels[:which])
        filters: tuple[int, ...] = (first + local // kernels[which].weights[0].size,)
    else:
        located = gradient_layout(kernels, options.flip).locate(kernels, flat_index)
        if located is None:
            raise RuntimeError(f"gradient check: dK entry {flat_index} is no kernel tap")
        which, local = located
        filters = tuple(c * len(kernels) + which for c in range(channels))
    variants = []
    for step in steps:
        kernel = kernels[which]
        raw = np.array(kernel.weights, dtype=np.float64)
        raw.reshape(-1)[local] += step
        moved = Kernel(raw, kernel.bias, kernel.label, origin=kernel.origin, taps=kernel.taps)
        weights, _, _ = filter_bank(
            [*kernels[:which], moved, *kernels[which + 1:]], channels, groups=options.groups, flip=options.flip,
            normalize=options.normalize, scale=options.scale,
        )
        variants.append(_Variant(filters, weights[list(filters)], probe.b[list(filters)]))
    return variants


def _differentiable_kernel_entries(grads: Gradients) -> NDArray[np.intp]:
    """Flat indices of dK that are kernel taps where L is differentiable in the kernel.

    Left out: ``normalize`` leaves a zero-sum kernel (a layer filter;
    :func:`convcli.kernels.kernel.is_zero_sum`) alone but divides any perturbed copy by its
    tiny sum, so L jumps there and has no derivative; ``--scale`` jumps likewise
    (:func:`convcli.kernels.gradient.smooth_entries`); holes and the frame around kernels of
    different sizes are no taps.
    """
    assert grads.dK is not None
    kernels = list(grads.kernels)
    if kernels[0].is_layer:
        if not grads.options.normalize:
            return np.arange(grads.dK.size)
        raw = kernel_stack(kernels)
        return np.flatnonzero(np.repeat(~zero_sum_filters(raw), raw[0].size))
    layout = gradient_layout(kernels, grads.options.flip)
    smooth = smooth_entries(kernels, grads.options)
    eligible = []
    for index in range(grads.dK.size):
        located = layout.locate(kernels, index)
        if located is not None and smooth[located[0]].reshape(-1)[located[1]]:
            eligible.append(index)
    return np.array(eligible, dtype=np.intp)


def _scale(name: str, probe: _Probe) -> float:
    """Size of one term of the sums that make each gradient (for the absolute floor of the relative error)."""
    dout = float(np.max(np.abs(probe.dout), initial=0.0))
    if name == "dx":
        return float(np.max(np.abs(probe.W), initial=0.0)) * dout
    if name == "db":
        return dout
    return float(np.max(np.abs(probe.x), initial=0.0)) * dout


# ---------------------------------------------------------------- the steps


def sample_entries(rng: np.random.Generator, size: int, samples: int) -> NDArray[np.intp]:
    """``samples`` distinct flat indices below ``size`` (all of them when fewer), sorted."""
    return np.sort(rng.choice(size, size=min(samples, size), replace=False))


def numeric_x(probe: _Probe, entries: NDArray[np.intp], eps: float) -> NDArray[np.float64]:
    """Central differences of L for the flat ``entries`` of x: ndarray, shape (len(entries),)."""
    return np.array([probe.x_numeric(int(i), eps) for i in entries])


def numeric_filters(
    probe: _Probe, grads: Gradients, entries: Mapping[str, NDArray[np.intp]], eps: float
) -> dict[str, NDArray[np.float64]]:
    """Central differences of L for the entries of dW, db and (when sampled) dK, in one batch of forwards.

    Under ``normalize`` (or ``--scale`` with ``!`` or ``^``) L is rational, not linear, in a
    kernel tap, ``(a + b t) / (s + t)``, whose central difference is off by exactly the
    factor ``s² / (s² - eps²)``; the dK differences at eps and eps/2 are combined
    (Richardson, ``(4 D(eps/2) - D(eps)) / 3``), which cancels that eps² term.

    Returns
    -------
    dict of str to ndarray
        "dW", "db" (and "dK" when ``entries`` has it), each of shape (len(entries[name]),).
    """
    variants: list[_Variant] = []
    for which, name in (("W", "dW"), ("b", "db")):
        for i in entries[name]:
            variants.extend(_weight_variants(probe, int(i), eps, which))
    scale = grads.options.scale
    richardson = grads.options.normalize or (scale is not None and scale.normalize is not None)
    kernel_steps = (eps, -eps, eps / 2, -eps / 2) if richardson else (eps, -eps)
    for i in entries.get("dK", ()):
        variants.extend(_kernel_variants(probe, grads, int(i), kernel_steps))
    losses = iter(probe.filter_losses(variants))
    numeric = {}
    for name in ("dW", "db"):
        numeric[name] = np.array([(plus - minus) / (2 * eps) for plus, minus in _pairs(losses, len(entries[name]))])
    if "dK" in entries:
        values = []
        for plus, minus in _pairs(losses, len(entries["dK"])):
            difference = (plus - minus) / (2 * eps)
            if richardson:
                half_plus, half_minus = next(losses), next(losses)
                difference = (4 * (half_plus - half_minus) / eps - difference) / 3
            values.append(difference)
        numeric["dK"] = np.array(values)
    return numeric


def compare(
    name: str, analytic: NDArray[np.generic], numeric: NDArray[np.float64], entries: NDArray[np.intp],
    unit: float, tolerance: float, note: str = "",
) -> CheckRow:
    """Judge the analytic values at ``entries`` against ``numeric``: the relative error of each, its maximum.

    Parameters
    ----------
    name : str
        The tensor ("dx", "dW", "db", "dK").
    analytic : ndarray, any shape
        The gradient as computed; read flat.
    numeric : ndarray, shape (S,), float64
        The central differences at ``entries``.
    entries : ndarray of intp, shape (S,)
        Flat indices into ``analytic``.
    unit : float
        One term of the gradient's sums (:func:`_scale`), for the absolute floor.
    tolerance : float
        Largest relative error that passes.
    note : str
        Carried into the row.

    Returns
    -------
    CheckRow
        ``max_rel`` is the largest ``|analytic - numeric| / max(|analytic|, |numeric|, floor)``
        with ``floor = 1e-6 * max(max |numeric|, unit)``, so entries that should be 0 are
        judged in absolute terms; NaN fails.
    """
    got = np.asarray(analytic, dtype=np.float64).reshape(-1)[entries]
    diff = np.abs(got - numeric)
    floor = max(1e-6 * max(float(np.max(np.abs(numeric))), unit), 1e-300)
    rel = diff / np.maximum(np.maximum(np.abs(got), np.abs(numeric)), floor)
    max_rel = float(np.max(rel))  # NaN when a gradient is NaN: then it fails
    return CheckRow(name, len(numeric), float(np.max(diff)), max_rel, bool(max_rel <= tolerance), note)


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
    kernel's maps for dK (the kernel rebuilt through ``scale``, ``normalize``, its frame and
    ``flip``).  The
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
        truncation error there.  Under ``normalize`` (or a normalising ``scale``), L is
        rational in a kernel tap,
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
        with 0 samples (and a note) when no kernel entry is differentiable (every kernel
        zero-sum under ``normalize``).

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

    chosen = {"dx": sample_entries(rng, probe.x.size, samples)}
    numeric = {"dx": numeric_x(probe, chosen["dx"], eps)}
    chosen["dW"], chosen["db"] = sample_entries(rng, probe.W.size, samples), sample_entries(rng, probe.b.size, samples)
    kernel_note = ""
    if grads.dK is not None:
        eligible = _differentiable_kernel_entries(grads)
        if eligible.size < grads.dK.size:
            kernel_note = (
                "left out: entries that are no kernel taps (holes, the frame of kernels of different sizes) or where "
                "L is not differentiable (a zero-sum kernel under --normalize or --scale !, a 0 tap under --scale ^)"
            )
        if eligible.size:
            chosen["dK"] = eligible[sample_entries(rng, eligible.size, samples)]
    numeric.update(numeric_filters(probe, grads, chosen, eps))

    rows = []
    analytic = {"dx": grads.dx, "dW": grads.dW, "db": grads.db, "dK": grads.dK}
    for name in ("dx", "dW", "db", "dK"):
        if name in chosen:
            value = analytic[name]
            assert value is not None  # dK is sampled only when there is one
            note = kernel_note if name == "dK" else ""
            rows.append(compare(name, value, numeric[name], chosen[name], _scale(name, probe), tol, note))
        elif name == "dK" and kernel_note:
            rows.append(CheckRow(name, 0, 0.0, 0.0, True, kernel_note))
    return rows


def _pairs(values: Iterator[float], count: int) -> Iterator[tuple[float, float]]:
    for _ in range(count):
        yield next(values), next(values)

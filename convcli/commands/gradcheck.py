"""The numerical check of ``convcli grad``: analytic gradients against float64 central differences.

:func:`gradient_check` compares the :class:`~convcli.gradients.Gradients` of
:func:`convcli.gradients.backward` with central differences of ``L = sum(y * dout)``
at sampled entries of x, W, b (and the kernels as given), computing only the outputs
each perturbed entry reaches: a local window of rows and columns for x, whole filters,
batched, for W, b and the kernels.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Optional

import numpy as np
from numpy.typing import NDArray

from ..engine.geometry import ConvGeometry
from ..engine.im2col import band_rows, gather_band, pad_source_index
from ..engine.layer import Convolution
from ..errors import ParameterError
from ..kernels.bank import filter_bank, kernel_stack, zero_sum_filters
from ..kernels.builtins import Kernel
from .grad import Gradients

#: Bytes of float64 output one batched forward of :func:`gradient_check` may allocate.
CHECK_BYTES = 64 * 1024 * 1024


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
    """Flat indices of dK where L is differentiable in the kernel: all but zero-sum filters under ``normalize``.

    ``normalize`` leaves a zero-sum kernel (a layer filter; :func:`convcli.bank.is_zero_sum`)
    alone but divides any perturbed copy by its tiny sum, so L jumps there and has no
    derivative.
    """
    assert grads.dK is not None
    if not grads.options.normalize:
        return np.arange(grads.dK.size)
    raw = kernel_stack(grads.kernels)
    return np.flatnonzero(np.repeat(~zero_sum_filters(raw), raw[0].size))


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
    kernel's maps for dK (the kernel rebuilt through ``flip`` and ``normalize``).  The
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
        truncation error there.  Under ``normalize``, L is rational in a kernel tap,
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
        with 0 samples (and a note) when every kernel is zero-sum under ``normalize``.

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

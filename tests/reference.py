"""A naive loop reference for 2-D convolution, and helpers that test the engine against it.

Everything here is written plainly and independently of ``convcli``'s geometry and
im2col code: explicit Python loops over ``n, f, oh, ow, c, i, j``, padding done with
``np.pad`` (zeros/reflect/replicate/circular are np.pad's constant/reflect/edge/wrap),
'same' padding re-derived from its definition.  It is slow, so tests keep shapes small.

* :func:`conv2d_forward` / :func:`conv2d_backward` - the reference, always in float64.
* :func:`im2col_reference` - the column matrix with im2col's documented layout.
* :func:`numerical_gradient` - float64 central differences, perturbing in place (the
  book's way).
* :func:`conv_cases` - a hypothesis strategy of valid convolution set-ups.
* :func:`check_layer` - tinygrad's ``helper_test_op`` in spirit: the same inputs through
  the reference and :class:`convcli.Convolution`, forward and dx/dW/db, with
  dtype-appropriate tolerances.
"""

from __future__ import annotations

from typing import Callable, Optional, Union

import numpy as np
from hypothesis import strategies as st
from numpy.typing import NDArray

from convcli import Convolution

Pair = tuple[int, int]
PadArg = Union[int, tuple[int, int], tuple[int, int, int, int], str]
F64 = NDArray[np.float64]

#: convcli's padding mode -> np.pad's mode ("constant:V" pads with V).
NP_PAD_MODES: dict[str, str] = {
    "zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap", "symmetric": "symmetric",
    "constant:0.5": "constant",
}
PADDING_MODES: tuple[str, ...] = tuple(NP_PAD_MODES)


def _np_pad_args(padding_mode: str) -> dict[str, object]:
    """np.pad's keyword arguments for a padding mode of convcli (its name or constant:VALUE)."""
    if padding_mode.startswith("constant"):
        return {"mode": "constant", "constant_values": float(padding_mode.partition(":")[2] or 0)}
    return {"mode": NP_PAD_MODES[padding_mode]}

#: Relative tolerance per result dtype (the error bound is this times the largest |value|).
RTOL: dict[np.dtype, float] = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}


def pair(value: Union[int, tuple[int, int]]) -> Pair:
    """``(v, v)`` for an int, the pair itself otherwise."""
    if isinstance(value, tuple):
        return int(value[0]), int(value[1])
    return int(value), int(value)


def same_pads(size: int, kernel: int, stride: int, dilation: int) -> Pair:
    """(before, after) padding for an output of ceil(size / stride); the odd pixel goes after."""
    out = (size + stride - 1) // stride
    span = dilation * (kernel - 1) + 1
    total = max((out - 1) * stride + span - size, 0)
    return total // 2, total - total // 2


def resolve_pads(
    pad: PadArg, hw: Pair, kernel: Pair, stride: Pair, dilation: Pair
) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) for any pad spelling."""
    if pad == "valid":
        return 0, 0, 0, 0
    if pad == "same":
        top, bottom = same_pads(hw[0], kernel[0], stride[0], dilation[0])
        left, right = same_pads(hw[1], kernel[1], stride[1], dilation[1])
        return top, bottom, left, right
    if isinstance(pad, tuple) and len(pad) == 4:
        return int(pad[0]), int(pad[1]), int(pad[2]), int(pad[3])
    ph, pw = pair(pad)  # type: ignore[arg-type]
    return ph, ph, pw, pw


def output_size(size: int, kernel: int, stride: int, dilation: int, before: int, after: int) -> int:
    """floor((size + before + after - dilation*(kernel-1) - 1) / stride) + 1, PyTorch's numbers."""
    return (size + before + after - dilation * (kernel - 1) - 1) // stride + 1


def pad_input(x: NDArray[np.generic], pads: tuple[int, int, int, int], padding_mode: str) -> F64:
    """x (N, C, H, W) padded with np.pad in float64."""
    top, bottom, left, right = pads
    widths = ((0, 0), (0, 0), (top, bottom), (left, right))
    return np.pad(np.asarray(x, dtype=np.float64), widths, **_np_pad_args(padding_mode))  # type: ignore[call-overload]


def pad_index_map(h: int, w: int, pads: tuple[int, int, int, int], padding_mode: str) -> NDArray[np.intp]:
    """For each padded pixel, the flat index ``row*w + col`` of the pixel it copies, or -1 (zeros).

    Built by padding an index image with the same np.pad mode, so the backward pass of the
    padding (the gradient flows back to the copied pixel) follows np.pad exactly.
    """
    top, bottom, left, right = pads
    index = np.arange(h * w).reshape(h, w)
    widths = ((top, bottom), (left, right))
    if padding_mode == "zeros" or padding_mode.startswith("constant"):
        return np.pad(index, widths, mode="constant", constant_values=-1)
    return np.pad(index, widths, mode=NP_PAD_MODES[padding_mode])


def _setup(
    x: NDArray[np.generic], W: NDArray[np.generic], stride: Union[int, Pair], pad: PadArg,
    dilation: Union[int, Pair], padding_mode: str,
) -> tuple[tuple[int, int, int, int], Pair, Pair, int, int]:
    n, c, h, w = x.shape
    fn, cg, fh, fw = W.shape
    s, d = pair(stride), pair(dilation)
    pads = resolve_pads(pad, (h, w), (fh, fw), s, d)
    oh = output_size(h, fh, s[0], d[0], pads[0], pads[1])
    ow = output_size(w, fw, s[1], d[1], pads[2], pads[3])
    return pads, s, d, oh, ow


def conv2d_forward(
    x: NDArray[np.generic],
    W: NDArray[np.generic],
    b: Optional[NDArray[np.generic]] = None,
    stride: Union[int, Pair] = 1,
    pad: PadArg = 0,
    dilation: Union[int, Pair] = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> F64:
    """Naive cross-correlation, float64: out (N, FN, OH, OW).

    ``out[n, f, oh, ow] = b[f] + sum_{c, i, j} W[f, c, i, j] *
    xp[n, g*Cg + c, oh*sh + i*dh, ow*sw + j*dw]`` with g = f // (FN // groups).
    """
    n_img, _, _, _ = x.shape
    fn, cg, fh, fw = W.shape
    pads, (sh, sw), (dh, dw), oh_n, ow_n = _setup(x, W, stride, pad, dilation, padding_mode)
    xp = pad_input(x, pads, padding_mode)
    w64 = np.asarray(W, dtype=np.float64)
    filters_per_group = fn // groups
    out = np.zeros((n_img, fn, oh_n, ow_n))
    for n in range(n_img):
        for f in range(fn):
            g = f // filters_per_group
            for oh in range(oh_n):
                for ow in range(ow_n):
                    acc = 0.0 if b is None else float(b[f])
                    for c in range(cg):
                        for i in range(fh):
                            for j in range(fw):
                                acc += w64[f, c, i, j] * xp[n, g * cg + c, oh * sh + i * dh, ow * sw + j * dw]
                    out[n, f, oh, ow] = acc
    return out


def conv2d_backward(
    x: NDArray[np.generic],
    W: NDArray[np.generic],
    dout: NDArray[np.generic],
    stride: Union[int, Pair] = 1,
    pad: PadArg = 0,
    dilation: Union[int, Pair] = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> tuple[F64, F64, F64]:
    """Naive gradients (dx, dW, db) of :func:`conv2d_forward`, float64, same loops run backwards."""
    n_img, c_all, h, w = x.shape
    fn, cg, fh, fw = W.shape
    pads, (sh, sw), (dh, dw), oh_n, ow_n = _setup(x, W, stride, pad, dilation, padding_mode)
    xp = pad_input(x, pads, padding_mode)
    w64 = np.asarray(W, dtype=np.float64)
    g_out = np.asarray(dout, dtype=np.float64)
    filters_per_group = fn // groups
    dxp = np.zeros_like(xp)
    dW = np.zeros((fn, cg, fh, fw))
    for n in range(n_img):
        for f in range(fn):
            g = f // filters_per_group
            for oh in range(oh_n):
                for ow in range(ow_n):
                    go = g_out[n, f, oh, ow]
                    for c in range(cg):
                        for i in range(fh):
                            for j in range(fw):
                                r, q = oh * sh + i * dh, ow * sw + j * dw
                                dW[f, c, i, j] += go * xp[n, g * cg + c, r, q]
                                dxp[n, g * cg + c, r, q] += go * w64[f, c, i, j]
    # backward of the padding: each padded pixel's gradient goes to the pixel it copied
    index = pad_index_map(h, w, pads, padding_mode)
    dx = np.zeros((n_img, c_all, h, w))
    for r in range(index.shape[0]):
        for q in range(index.shape[1]):
            src = int(index[r, q])
            if src >= 0:
                dx[:, :, src // w, src % w] += dxp[:, :, r, q]
    db = g_out.sum(axis=(0, 2, 3))
    return dx, dW, db


def im2col_reference(
    x: NDArray[np.generic], fh: int, fw: int, stride: Union[int, Pair] = 1, pad: PadArg = 0,
    dilation: Union[int, Pair] = 1, padding_mode: str = "zeros",
) -> F64:
    """Column matrix (N*OH*OW, C*FH*FW): row (n*OH + oh)*OW + ow, column (c*FH + i)*FW + j."""
    n_img, c_all, _, _ = x.shape
    pads, (sh, sw), (dh, dw), oh_n, ow_n = _setup(x, np.empty((1, c_all, fh, fw)), stride, pad, dilation, padding_mode)
    xp = pad_input(x, pads, padding_mode)
    col = np.zeros((n_img * oh_n * ow_n, c_all * fh * fw))
    for n in range(n_img):
        for oh in range(oh_n):
            for ow in range(ow_n):
                for c in range(c_all):
                    for i in range(fh):
                        for j in range(fw):
                            col[(n * oh_n + oh) * ow_n + ow, (c * fh + i) * fw + j] = xp[
                                n, c, oh * sh + i * dh, ow * sw + j * dw
                            ]
    return col


def numerical_gradient(f: Callable[[], float], a: NDArray[np.float64], eps: float = 1e-6) -> F64:
    """Central differences ``(f(a + eps e_k) - f(a - eps e_k)) / (2 eps)`` for every element k.

    ``a`` must be float64 and is perturbed in place (then restored), so ``f`` reads it
    from wherever it is held - e.g. a layer's W.  For the bilinear convolution the
    central difference is exact up to rounding (~1e-10 relative with eps=1e-6).
    """
    if a.dtype != np.float64:
        raise TypeError(f"numerical_gradient needs float64, got {a.dtype}")
    grad = np.zeros(a.shape)
    for idx in np.ndindex(*a.shape):
        saved = a[idx]
        a[idx] = saved + eps
        plus = f()
        a[idx] = saved - eps
        minus = f()
        a[idx] = saved
        grad[idx] = (plus - minus) / (2 * eps)
    return grad


def position_coded(shape: tuple[int, ...], dtype: type = np.float64) -> NDArray[np.floating]:
    """x[n, c, i, j] = 1000*n + 100*c + 10*i + j + 1: every pixel names its position (none is 0,
    so it differs from zero padding).  Meant for H, W <= 10 and C <= 10."""
    n, c, h, w = np.indices(shape)
    return (1000 * n + 100 * c + 10 * h + w + 1).astype(dtype)


def power_of_two_taps(shape: tuple[int, ...], dtype: type = np.float64) -> NDArray[np.floating]:
    """Kernel (FN, Cg, FH, FW) whose taps are all distinct: W[f].flat[k] = (2f + 1) * 2**k.

    Within a filter the taps are the powers of two 1, 2, 4, ...; the odd factor 2f + 1 tags
    the filter, so no two taps of W are equal and any flip, shift or filter swap changes the
    result.  Sums stay exact in float64 while Cg*FH*FW <= ~36 (float32: <= ~9 with inputs < 128).
    """
    fn = shape[0]
    per_filter = int(np.prod(shape[1:]))
    taps = (2 * np.arange(fn)[:, None] + 1) * 2.0 ** np.arange(per_filter)[None, :]
    return taps.reshape(shape).astype(dtype)


def float_dtype(a: Optional[NDArray[np.generic]]) -> Optional[np.dtype]:
    """The dtype convcli computes ``a`` in: floats are kept, integers count as float32."""
    if a is None:
        return None
    return a.dtype if np.issubdtype(a.dtype, np.floating) else np.dtype(np.float32)


def assert_close(got: NDArray[np.generic], want: NDArray[np.generic], name: str, exact: bool = False) -> None:
    """``got`` equals ``want`` to ``RTOL[got.dtype]`` times the largest |want| (or exactly)."""
    assert got.shape == want.shape, f"{name}: shape {got.shape}, expected {want.shape}"
    if exact:
        np.testing.assert_array_equal(got, want, err_msg=name)
        return
    rtol = RTOL[np.dtype(got.dtype)]
    scale = float(np.max(np.abs(want))) if want.size else 0.0
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * max(scale, 1e-30), err_msg=name)


def check_layer(
    x: NDArray[np.generic],
    W: NDArray[np.generic],
    b: Optional[NDArray[np.generic]] = None,
    *,
    dout: Optional[NDArray[np.generic]] = None,
    exact: bool = False,
    **kw: object,
) -> Convolution:
    """Run :class:`convcli.Convolution` and the reference on the same inputs; compare everything.

    Checks the forward output (shape, dtype = numpy's promotion of the float inputs with
    integers as float32, values), then dx (shape and compute dtype), dW (W's shape, W's
    dtype) and db (b's shape and dtype).  ``dout`` defaults to a seeded random array.
    ``exact`` asks for np.array_equal (use it with integer-valued data whose sums are
    exact).  ``kw`` are Convolution's keyword arguments (stride, pad, dilation, groups,
    padding_mode, tile_bytes).

    Returns
    -------
    Convolution
        The layer after forward and backward, for further checks.
    """
    geometry = {k: v for k, v in kw.items() if k != "tile_bytes"}
    layer = Convolution(W, b, **kw)  # type: ignore[arg-type]
    out = layer.forward(x)
    dtypes = [d for d in (float_dtype(x), float_dtype(W), float_dtype(b)) if d is not None]
    compute = np.result_type(*dtypes)
    assert out.dtype == compute, f"out dtype {out.dtype}, expected {compute}"
    ref_out = conv2d_forward(x, W, b, **geometry)  # type: ignore[arg-type]
    assert_close(out, ref_out, "forward", exact)

    if dout is None:
        rng = np.random.default_rng(1234)
        # integer-valued in exact mode, so every product and sum stays exact
        dout = (rng.integers(-3, 4, out.shape) if exact else rng.standard_normal(out.shape)).astype(compute)
    dx = layer.backward(dout)
    ref_dx, ref_dW, ref_db = conv2d_backward(x, W, dout, **geometry)  # type: ignore[arg-type]
    assert dx.dtype == compute, f"dx dtype {dx.dtype}, expected {compute}"
    assert_close(dx, ref_dx, "dx", exact)
    assert layer.dW is not None
    assert layer.dW.shape == W.shape
    w_dtype = W.dtype if np.issubdtype(W.dtype, np.floating) else compute
    assert layer.dW.dtype == w_dtype, f"dW dtype {layer.dW.dtype}, W dtype {W.dtype}"
    assert_close(layer.dW, ref_dW, "dW", exact)
    if b is None:
        assert layer.db is None
    else:
        assert layer.db is not None
        assert layer.db.shape == b.shape
        b_dtype = b.dtype if np.issubdtype(b.dtype, np.floating) else compute
        assert layer.db.dtype == b_dtype, f"db dtype {layer.db.dtype}, b dtype {b.dtype}"
        assert_close(layer.db, ref_db, "db", exact)
    return layer


@st.composite
def conv_cases(
    draw: st.DrawFn,
    max_batch: int = 2,
    max_groups: int = 3,
    max_per_group: int = 2,
    max_kernel: int = 3,
    max_extra: int = 3,
    modes: tuple[str, ...] = PADDING_MODES,
) -> tuple[tuple[int, int, int, int], tuple[int, int, int, int], dict[str, object]]:
    """A valid set-up ``(x_shape, w_shape, kwargs)``; kwargs are Convolution's stride, pad,
    dilation, groups and padding_mode.  Strides and dilations are ints or pairs; pad is an
    int, a pair, a 4-tuple, 'same' or 'valid'; the input is just big enough for the kernel,
    the padding and the padding mode, plus up to ``max_extra`` pixels."""
    groups = draw(st.integers(1, max_groups))
    cg, fg = draw(st.integers(1, max_per_group)), draw(st.integers(1, max_per_group))
    n = draw(st.integers(1, max_batch))
    fh, fw = draw(st.integers(1, max_kernel)), draw(st.integers(1, max_kernel))
    small = st.integers(1, 3)
    stride = draw(st.one_of(small, st.tuples(small, small)))
    dilation = draw(st.one_of(st.just(1), st.integers(1, 2), st.tuples(st.integers(1, 2), st.integers(1, 2))))
    mode = draw(st.sampled_from(modes))
    pad_kind = draw(st.sampled_from(["int", "pair", "quad", "same", "valid"]))
    p = st.integers(0, 2)
    pad: PadArg
    if pad_kind == "int":
        pad = draw(p)
    elif pad_kind == "pair":
        pad = (draw(p), draw(p))
    elif pad_kind == "quad":
        pad = (draw(p), draw(p), draw(p), draw(p))
    else:
        pad = pad_kind
    (dh, dw) = pair(dilation)
    spans = (dh * (fh - 1) + 1, dw * (fw - 1) + 1)
    sizes = []
    for axis in range(2):
        if isinstance(pad, str):
            low = spans[axis]  # 'same' then pads less than the span, so reflect fits too
        else:
            before, after = resolve_pads(pad, (1, 1), (1, 1), (1, 1), (1, 1))[2 * axis: 2 * axis + 2]
            low = max(1, spans[axis] - before - after)  # any mode takes any padding, however large
        sizes.append(draw(st.integers(low, low + max_extra)))
    x_shape = (n, groups * cg, sizes[0], sizes[1])
    w_shape = (groups * fg, cg, fh, fw)
    kw: dict[str, object] = {
        "stride": stride, "pad": pad, "dilation": dilation, "groups": groups, "padding_mode": mode,
    }
    return x_shape, w_shape, kw

"""Every padding mode and alias, forward and backward, library and CLI, against scipy.ndimage and ImageMagick.

Inputs encode their position (``x[i, j] = 10 i + j + 1``, every pixel distinct), and a bank of
one-hot kernels (one per tap of a (2P+1)×(2P+1) window, P larger than the image) makes every
padding pixel within P of the image a value of some map: a mode that copies the wrong pixel,
or mirrors about the wrong axis, shows.

* scipy.ndimage: ``correlate`` with the same one-hot kernels; its names differ from PyTorch's
  (convcli's reflect is scipy's 'mirror', convcli's symmetric scipy's 'reflect').
* ImageMagick 6: ``-virtual-pixel NAME -morphology Convolve`` with one-hot kernels whose origin
  shifts the image (windows of the padded image), read back exactly at 16 bits.  ImageMagick
  has no equivalent of PyTorch's reflect (``dcb|abcd``); its gray is 32767/65535, one level
  from convcli's 0.5.
* gradients: the adjoint identity ``<f(x) - f(0), g> = <x, dx(g)>`` (padding is linear in x;
  a constant adds f(0)), float64 central differences of ``L = sum(y * g)``, and the CLI's
  ``grad --check``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import pytest
from cli_helpers import ok
from imagemagick_helpers import filtered
from scipy import ndimage as ndi  # type: ignore[import-untyped]

from convcli import Convolution
from convcli.engine.geometry import PADDING_ALIASES, parse_padding_mode

#: convcli's name (or alias) -> scipy.ndimage's (mode, cval), and ImageMagick's -virtual-pixel name (None: none).
MODES: dict[str, tuple[str, float, Optional[str]]] = {
    "zeros": ("constant", 0.0, "black"),
    "black": ("constant", 0.0, "black"),
    "constant:0.25": ("constant", 0.25, None),
    "constant:-2": ("constant", -2.0, None),
    "gray": ("constant", 0.5, "gray"),
    "grey": ("constant", 0.5, "gray"),
    "white": ("constant", 1.0, "white"),
    "replicate": ("nearest", 0.0, "edge"),
    "edge": ("nearest", 0.0, "edge"),
    "nearest": ("nearest", 0.0, "edge"),
    "reflect": ("mirror", 0.0, None),
    "reflect101": ("mirror", 0.0, None),
    "reflect_101": ("mirror", 0.0, None),
    "symmetric": ("reflect", 0.0, "mirror"),
    "mirror": ("reflect", 0.0, "mirror"),
    "circular": ("wrap", 0.0, "tile"),
    "tile": ("wrap", 0.0, "tile"),
    "wrap": ("wrap", 0.0, "tile"),
    "grid-wrap": ("grid-wrap", 0.0, "tile"),
    "grid-mirror": ("grid-mirror", 0.0, "mirror"),
    "grid-constant": ("grid-constant", 0.0, "black"),
    "transparent": ("constant", 0.0, "black"),
}

H, W, P = 4, 5, 7  # P > H and P > W: the mirror and wrap modes repeat periodically
K = 2 * P + 1


def test_every_alias_of_the_library_is_checked_here() -> None:
    assert set(PADDING_ALIASES) <= set(MODES)
    assert {parse_padding_mode(m).name for m in MODES} == {"zeros", "constant", "replicate", "reflect", "symmetric",
                                                          "circular"}


def position_coded(h: int = H, w: int = W, scale: float = 1.0) -> np.ndarray:
    return (10 * np.arange(h)[:, None] + np.arange(w)[None, :] + 1).astype(np.float64) * scale


def one_hot_bank() -> np.ndarray:
    """(K*K, 1, K, K): filter a*K + b is 1 at (a, b); with pad='same' its map is the padded image moved (a-P, b-P)."""
    bank = np.zeros((K * K, 1, K, K))
    for a in range(K):
        for b in range(K):
            bank[a * K + b, 0, a, b] = 1.0
    return bank


def scipy_maps(x: np.ndarray, mode: str) -> np.ndarray:
    scipy_mode, cval, _ = MODES[mode]
    return np.stack([ndi.correlate(x, w[0], mode=scipy_mode, cval=cval) for w in one_hot_bank()])


@pytest.mark.parametrize("mode", list(MODES))
def test_forward_is_scipy(mode: str) -> None:
    x = position_coded()
    got = Convolution(one_hot_bank(), None, pad="same", padding_mode=mode).forward(x[None, None])[0]
    np.testing.assert_array_equal(got, scipy_maps(x, mode))


@pytest.mark.parametrize("mode", list(MODES))
def test_backward_adjoint_and_central_differences(mode: str) -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 2, H, W))
    w = rng.standard_normal((3, 2, 3, 3))
    layer = Convolution(w, None, pad=(P, P - 1, P - 2, P + 1), padding_mode=mode)  # uneven pads beyond the image
    y = layer.forward(x)
    g = rng.standard_normal(y.shape)
    dx = layer.backward(g)
    y0 = Convolution(w, None, pad=(P, P - 1, P - 2, P + 1), padding_mode=mode).forward(np.zeros_like(x))
    assert np.sum((y - y0) * g) == pytest.approx(np.sum(x * dx), rel=1e-12, abs=1e-9)
    numeric = np.zeros_like(x)
    eps = 1e-6
    for index in np.ndindex(x.shape):
        for sign in (1, -1):
            moved = x.copy()
            moved[index] += sign * eps
            numeric[index] += sign * np.sum(Convolution(w, None, pad=(P, P - 1, P - 2, P + 1),
                                                        padding_mode=mode).forward(moved) * g) / (2 * eps)
    np.testing.assert_allclose(dx, numeric, rtol=1e-6, atol=1e-7)
    # and the scipy forward's adjoint: dx of the one-hot bank is scipy's correlation read backwards
    bank = Convolution(one_hot_bank(), None, pad="same", padding_mode=mode)
    xs = position_coded()
    ys = scipy_maps(xs, mode)
    gs = rng.standard_normal(ys.shape)
    bank.forward(xs[None, None])
    dxs = bank.backward(gs[None])[0, 0]
    zero = scipy_maps(np.zeros_like(xs), mode)
    assert np.sum((ys - zero) * gs) == pytest.approx(np.sum(xs * dxs), rel=1e-12)


@pytest.mark.parametrize("mode", list(MODES))
def test_cli_forward_and_grad_check(tmp_path: Path, mode: str) -> None:
    x = position_coded()
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "k.npy", one_hot_bank()[::12])  # a layer of 19 one-hot filters, two corners among them
    ok("apply", tmp_path / "x.npy", "-k", tmp_path / "k.npy", "--padding-mode", mode, "-o", tmp_path / "y.npy", "-q")
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy")[0], scipy_maps(x, mode)[::12])
    rng = np.random.default_rng(1)
    np.save(tmp_path / "w.npy", rng.standard_normal((2, 1, 5, 5)))
    ok("grad", tmp_path / "x.npy", "-k", tmp_path / "w.npy", "--padding-mode", mode, "--pad", "4", "--dtype",
       "float64", "--dout", "randn:2", "--check", "--check-samples", "40", "-o", tmp_path / "g.npz", "-q")


def test_size_one_axes() -> None:
    """A one-pixel axis: mirror modes repeat that pixel, as scipy does."""
    x = np.array([[3.0, 5.0, 7.0]])
    for mode in ("reflect", "symmetric", "circular", "replicate"):
        got = Convolution(one_hot_bank(), None, pad="same", padding_mode=mode).forward(x[None, None])[0]
        scipy_mode = MODES[mode][0]
        expected = np.stack([ndi.correlate(x, w[0], mode=scipy_mode) for w in one_hot_bank()])
        np.testing.assert_array_equal(got, expected)


# ---------------------------------------------------------------- ImageMagick's virtual pixels


def imagemagick_padded(x16: np.ndarray, virtual_pixel: str) -> np.ndarray:
    """The padded image (H + 2P, W + 2P) ImageMagick's -morphology Convolve reads, window by window.

    A kernel with one tap at column 0 and its origin at column X reads ``in(x + X)``; windows of
    the image's size cover the padded plane.
    """
    h, w = x16.shape
    plane = np.zeros((h + 2 * P, w + 2 * P), dtype=np.int64)
    rows = sorted({min(r, h + P - h) for r in range(-P, h + P, h)})
    cols = sorted({min(c, w + P - w) for c in range(-P, w + P, w)})
    for dy in rows:
        for dx in cols:
            # out(y, x) = in(y + dy, x + dx): the tap at the top-left, the origin (dx, dy) from it
            size_w, size_h = abs(dx) + 1, abs(dy) + 1
            tap_x, tap_y = (0, 0)
            origin_x, origin_y = dx, dy
            if dx < 0:
                tap_x, origin_x = size_w - 1, 0
            if dy < 0:
                tap_y, origin_y = size_h - 1, 0
            taps = np.zeros((size_h, size_w))
            taps[tap_y, tap_x] = 1
            spec = f"{size_w}x{size_h}+{origin_x}+{origin_y}: " + ",".join(f"{v:g}" for v in taps.ravel())
            window = filtered(x16, "-virtual-pixel", virtual_pixel, "-morphology", "Convolve", spec)
            plane[dy + P:dy + P + h, dx + P:dx + P + w] = window
    return plane


@pytest.mark.parametrize("mode", [m for m, (_, _, im) in MODES.items() if im is not None])
def test_padding_is_imagemagick_virtual_pixel(mode: str) -> None:
    x16 = position_coded(scale=500.0)  # 500 .. 20500 of 65535: every pixel distinct, far from 0 and white
    virtual_pixel = MODES[mode][2]
    assert virtual_pixel is not None
    theirs = imagemagick_padded(x16.astype(np.int64), virtual_pixel)
    layer = Convolution(one_hot_bank(), None, pad="same", padding_mode=mode)
    maps = layer.forward((x16 / 65535.0)[None, None])[0]  # map a*K + b: the padded image shifted by (a-P, b-P)
    ours = np.zeros_like(theirs, dtype=np.float64)
    for a in range(K):
        for b in range(K):
            ours[a:a + H, b:b + W] = maps[a * K + b]
    ours16 = np.round(ours * 65535.0)
    np.testing.assert_array_less(np.abs(ours16 - theirs), 1.01)  # gray: 32767 there, 32767.5 here
    if mode not in ("gray", "grey"):
        np.testing.assert_array_equal(ours16, theirs)


# ---------------------------------------------------------------- names the engine does not take yet

#: More unambiguous names of the peers: scipy.ndimage's grid-* modes (for filters the same as wrap,
#: reflect, constant) and ImageMagick's transparent (every channel 0, like black, for images without alpha).
MORE_ALIASES = {
    "grid-wrap": "circular", "grid-mirror": "symmetric", "grid-constant": "zeros", "transparent": "zeros",
}


@pytest.mark.parametrize(("alias", "mode"), list(MORE_ALIASES.items()))
def test_more_peer_names(alias: str, mode: str) -> None:
    assert str(parse_padding_mode(alias)) == mode

"""Generate convcli's sample images, deterministically (numpy + Pillow, fixed seeds).

Run from anywhere::

    python sample_images/make_samples.py

It (re)writes, next to this script:

- photo.png   256×192 RGB, 8-bit: a simple landscape (sky, sun, hills, house, tree)
- gray.png    256×192 L, 8-bit: a test chart (Siemens star, checkers, lines, ramp)
- gray16.png  256×192 I;16, 16-bit: shallow smooth gradients that band at 8 bits
- alpha.png   256×192 RGBA, 8-bit: shapes on a transparent background

The same numpy and Pillow versions give byte-identical files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFilter

WIDTH, HEIGHT = 256, 192
SS = 4  # supersampling factor for anti-aliased shapes
HERE = Path(__file__).resolve().parent

Float = NDArray[np.float64]


def _grid(scale: int = 1) -> tuple[Float, Float]:
    """Pixel-centre coordinates (y, x) in output pixels, shape (HEIGHT*scale, WIDTH*scale)."""
    y = (np.arange(HEIGHT * scale) + 0.5) / scale
    x = (np.arange(WIDTH * scale) + 0.5) / scale
    return np.meshgrid(y, x, indexing="ij")


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], blur: float) -> Float:
    """Gaussian-blurred white noise scaled to unit standard deviation."""
    out = _blur(rng.standard_normal(shape), blur)
    return (out - out.mean()) / (out.std() + 1e-12)


def _blur(values: Float, sigma: float) -> Float:
    """Separable Gaussian blur of a 2-D array (edges replicated)."""
    radius = max(1, int(3 * sigma + 0.5))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    padded = np.pad(values, radius, mode="edge")
    rows = np.apply_along_axis(np.convolve, 1, padded, taps, mode="valid")
    return np.apply_along_axis(np.convolve, 0, rows, taps, mode="valid")


def _mask(draw_fn: object) -> Float:
    """Coverage in [0, 1] of shapes drawn (white on black) at SS× and box-downsampled."""
    canvas = Image.new("L", (WIDTH * SS, HEIGHT * SS), 0)
    draw_fn(ImageDraw.Draw(canvas))  # type: ignore[operator]
    small = canvas.resize((WIDTH, HEIGHT), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float64) / 255.0


def _paint(img: Float, mask: Float, colour: Float | tuple[float, float, float]) -> None:
    """Alpha-blend ``colour`` (RGB in [0, 1], constant or per pixel (H, W, 3)) over ``img`` where ``mask``."""
    c = np.asarray(colour, dtype=np.float64)
    img[...] = img * (1 - mask[..., None]) + c * mask[..., None]


def make_photo() -> Image.Image:
    """A small landscape: sky gradient, sun, clouds, mountains, hill, house, tree, path."""
    rng = np.random.default_rng(20240601)
    y, x = _grid()
    img = np.zeros((HEIGHT, WIDTH, 3))

    # Sky: deep blue at the top to a pale haze at the horizon.
    t = np.clip(y / 120.0, 0, 1)[..., None]
    img[...] = (1 - t) * np.array([0.16, 0.36, 0.72]) + t * np.array([0.78, 0.86, 0.93])

    # Sun with a soft glow.
    r = np.hypot(x - 196, y - 38)
    _paint(img, 0.35 * np.exp(-((r / 38.0) ** 2)), (1.0, 0.95, 0.75))
    _paint(img, np.clip(15.0 - r, 0, 1), (1.0, 0.97, 0.82))

    # Clouds: blurred ellipses.
    clouds = Image.new("L", (WIDTH, HEIGHT), 0)
    d = ImageDraw.Draw(clouds)
    for cx, cy, rx, ry in [(50, 30, 26, 8), (70, 24, 18, 9), (38, 26, 14, 6), (130, 50, 22, 5), (146, 46, 12, 6)]:
        d.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=235)
    cloud = np.asarray(clouds.filter(ImageFilter.GaussianBlur(3)), dtype=np.float64) / 255.0
    _paint(img, 0.9 * cloud, (0.97, 0.97, 0.98))

    # Distant mountains: a smoothed random-walk ridge.
    walk = np.cumsum(rng.standard_normal(WIDTH * SS)) * 0.9
    ridge_ss = 95 - 22 * np.sin(np.linspace(0.4, 3.6, WIDTH * SS)) + walk - walk.mean()
    mountains = _mask(
        lambda dr: dr.polygon(
            [(0, HEIGHT * SS)] + [(i, float(v) * SS) for i, v in enumerate(ridge_ss)] + [(WIDTH * SS, HEIGHT * SS)],
            fill=255,
        )
    )
    haze = np.clip((y - 60) / 60.0, 0, 1)[..., None]
    rock = (1 - haze) * np.array([0.42, 0.47, 0.58]) + haze * np.array([0.55, 0.62, 0.70])
    _paint(img, mountains, rock)

    # Rolling green hill with grass texture.
    ss_x = np.arange(WIDTH * SS) / SS
    hill_top = 128 + 10 * np.sin(ss_x / 40.0) + 5 * np.sin(ss_x / 13.0 + 1.0)
    hill = _mask(
        lambda dr: dr.polygon(
            [(0, HEIGHT * SS)] + [(i, float(v) * SS) for i, v in enumerate(hill_top)] + [(WIDTH * SS, HEIGHT * SS)],
            fill=255,
        )
    )
    grass_tex = _smooth_noise(rng, (HEIGHT, WIDTH), 0.8)[..., None]
    depth = np.clip((y - 120) / 72.0, 0, 1)[..., None]
    grass = (1 - depth) * np.array([0.36, 0.58, 0.25]) + depth * np.array([0.22, 0.45, 0.16])
    _paint(img, hill, np.clip(grass + 0.035 * grass_tex, 0, 1))

    # Sandy path winding to the house.
    path = _mask(
        lambda dr: dr.polygon(
            [(96 * SS, 150 * SS), (104 * SS, 150 * SS), (150 * SS, HEIGHT * SS), (112 * SS, HEIGHT * SS)], fill=255
        )
    )
    _paint(img, path, (0.80, 0.71, 0.52))

    # House: walls, roof, door, two windows.
    _paint(img, _mask(lambda dr: dr.rectangle((70 * SS, 112 * SS, 132 * SS, 152 * SS), fill=255)), (0.90, 0.82, 0.66))
    _paint(
        img,
        _mask(lambda dr: dr.polygon([(64 * SS, 114 * SS), (101 * SS, 84 * SS), (138 * SS, 114 * SS)], fill=255)),
        (0.62, 0.18, 0.14),
    )
    _paint(img, _mask(lambda dr: dr.rectangle((95 * SS, 130 * SS, 107 * SS, 152 * SS), fill=255)), (0.38, 0.24, 0.14))
    for wx in (76, 114):
        _paint(
            img,
            _mask(lambda dr, wx=wx: dr.rectangle((wx * SS, 122 * SS, (wx + 12) * SS, 134 * SS), fill=255)),
            (0.95, 0.95, 0.92),
        )
        _paint(
            img,
            _mask(lambda dr, wx=wx: dr.rectangle(((wx + 1) * SS, 123 * SS, (wx + 11) * SS, 133 * SS), fill=255)),
            (0.30, 0.45, 0.62),
        )
        _paint(
            img,
            _mask(lambda dr, wx=wx: dr.rectangle(((wx + 6) * SS - 2, 123 * SS, (wx + 6) * SS + 2, 133 * SS), fill=255)),
            (0.95, 0.95, 0.92),
        )

    # Tree: trunk and a textured canopy of overlapping discs.
    _paint(img, _mask(lambda dr: dr.rectangle((194 * SS, 118 * SS, 202 * SS, 160 * SS), fill=255)), (0.36, 0.24, 0.13))
    canopy = _mask(
        lambda dr: [
            dr.ellipse(((cx - r) * SS, (cy - r) * SS, (cx + r) * SS, (cy + r) * SS), fill=255)
            for cx, cy, r in [(198, 100, 20), (184, 112, 14), (212, 112, 14), (198, 84, 14)]
        ]
    )
    leaves = _smooth_noise(rng, (HEIGHT, WIDTH), 1.2)[..., None]
    shade = np.clip((x - 180) / 40.0, 0, 1)[..., None]
    green = (1 - shade) * np.array([0.26, 0.52, 0.20]) + shade * np.array([0.14, 0.36, 0.12])
    _paint(img, canopy, np.clip(green + 0.06 * leaves, 0, 1))

    # A little sensor noise everywhere.
    img += rng.normal(0.0, 0.008, img.shape)
    return Image.fromarray(np.rint(np.clip(img, 0, 1) * 255).astype(np.uint8))


def make_gray() -> Image.Image:
    """A test chart: Siemens star, checkerboards of three sizes, oriented lines, a ramp."""
    y, x = _grid(SS)
    img = np.full(y.shape, 0.5)

    # Siemens star (left): 24 black/white sectors in a disc.
    cy, cx = 80.0, 72.0
    r = np.hypot(x - cx, y - cy)
    theta = np.arctan2(y - cy, x - cx)
    star = (np.floor(theta / (2 * np.pi) * 24) % 2 == 0).astype(np.float64)
    inside = r <= 60
    img[inside] = 0.1 + 0.8 * star[inside]

    # Checkerboards (right, top): 4, 8 and 16 pixel squares.
    for x0, size in ((144, 4), (176, 8), (208, 16)):
        box = (x >= x0) & (x < x0 + 32) & (y >= 16) & (y < 80)
        check = ((np.floor(x / size) + np.floor(y / size)) % 2).astype(np.float64)
        img[box] = 0.15 + 0.7 * check[box]

    # Lines at 0°, 45°, 90° and 135° (right, middle).
    for i, angle in enumerate((0, 45, 90, 135)):
        ox, oy = 160 + 24 * i, 112.0
        a = np.deg2rad(angle)
        along = (x - ox) * np.cos(a) + (y - oy) * np.sin(a)
        across = -(x - ox) * np.sin(a) + (y - oy) * np.cos(a)
        bar = (np.abs(along) <= 10) & (np.abs(across) <= 1.0)
        img[bar] = 1.0

    # Filled circle and square (right, lower middle).
    img[np.hypot(x - 168, y - 148) <= 12] = 0.9
    img[(np.abs(x - 216) <= 12) & (np.abs(y - 148) <= 12)] = 0.05

    # Horizontal ramp along the bottom.
    ramp = (y >= 168) & (y < 188)
    img[ramp] = np.clip((x[ramp] - 8) / 240.0, 0, 1)

    small = Image.fromarray(img.astype(np.float32)).resize((WIDTH, HEIGHT), Image.Resampling.BOX)
    values = np.asarray(small, dtype=np.float64)
    return Image.fromarray(np.rint(np.clip(values, 0, 1) * 255).astype(np.uint8))


def make_gray16() -> Image.Image:
    """Smooth, shallow gradients (about 0.30–0.40) that 8 bits would show as bands."""
    y, x = _grid()
    base = 0.30 + 0.06 * (y / HEIGHT) + 0.02 * (x / WIDTH)
    bumps = 0.025 * np.exp(-(((x - 80) / 36.0) ** 2 + ((y - 90) / 30.0) ** 2))
    bumps -= 0.018 * np.exp(-(((x - 180) / 28.0) ** 2 + ((y - 70) / 40.0) ** 2))
    r = np.hypot(x - 190, y - 140)
    ring = 0.012 * np.exp(-(((r - 30) / 4.0) ** 2))
    values = base + bumps + ring
    return Image.fromarray(np.rint(np.clip(values, 0, 1) * 65535).astype(np.uint16))  # mode I;16


def make_alpha() -> Image.Image:
    """Coloured shapes on a transparent background: soft and hard edges, partial transparency."""
    y, x = _grid()
    rgb = np.zeros((HEIGHT, WIDTH, 3))
    alpha = np.zeros((HEIGHT, WIDTH))

    def over(colour: tuple[float, float, float], a: Float) -> None:
        a = np.clip(a, 0, 1)
        out_a = a + alpha * (1 - a)
        safe = np.where(out_a > 0, out_a, 1)
        rgb[...] = (np.array(colour) * a[..., None] + rgb * (alpha * (1 - a))[..., None]) / safe[..., None]
        alpha[...] = out_a

    # Opaque red disc with an anti-aliased edge.
    over((0.86, 0.16, 0.14), _mask(lambda dr: dr.ellipse((24 * SS, 28 * SS, 120 * SS, 124 * SS), fill=255)))
    # Half-transparent blue square overlapping it.
    over((0.15, 0.35, 0.85), 0.5 * _mask(lambda dr: dr.rectangle((84 * SS, 60 * SS, 164 * SS, 140 * SS), fill=255)))
    # Green ring with a feathered (soft) edge.
    r = np.hypot(x - 200, y - 70)
    over((0.20, 0.70, 0.30), np.exp(-(((r - 32) / 7.0) ** 2)))
    # A horizontal alpha ramp, opaque yellow at the right.
    band = ((y >= 158) & (y < 178)).astype(np.float64) * np.clip((x - 16) / 224.0, 0, 1)
    over((0.95, 0.80, 0.15), band)

    a8 = np.rint(alpha * 255).astype(np.uint8)
    c8 = np.rint(np.clip(rgb, 0, 1) * 255).astype(np.uint8)
    c8[a8 == 0] = 0  # fully transparent pixels carry no colour
    return Image.fromarray(np.dstack([c8, a8]))


def main() -> None:
    """Write the four sample images next to this script."""
    for name, make in (("photo", make_photo), ("gray", make_gray), ("gray16", make_gray16), ("alpha", make_alpha)):
        path = HERE / f"{name}.png"
        make().save(path, format="PNG", optimize=True)
        print(f"wrote {path.name} ({path.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()

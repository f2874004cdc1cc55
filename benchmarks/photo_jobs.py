"""Whole-process photo jobs: ``convcli apply`` against libvips and scipy, as a shell user runs them.

Each job is one command per contestant, run as a separate process (interpreter start,
imports, decode, convolve, encode and write included), the contestants interleaved
round by round; the table gives median times, the median of per-round ratios
(ours / theirs: < 1 means convcli is faster), each process's peak resident memory
(GNU time's ``%M``) and the output sizes.  libvips runs through its CLI
(``vips``, Debian's ``libvips-tools``) with ``--precision float``; the scipy contestant is a
short script (Pillow decode, ``scipy.ndimage.correlate`` in float32, ``np.save``).  A
contestant that is not installed is skipped.

``stages`` times the parts of one convcli job in process: decode, convolve (the engine
converts 8-bit samples a tile at a time, so there is no separate conversion), map to
pixels, encode.

Run from the repository root (see BENCHMARKS.md)::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench.py --jobs
    python benchmarks/bench.py --jobs --quick
"""

from __future__ import annotations

import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

SCIPY_SCRIPT = """\
import sys
import numpy as np
from PIL import Image
from scipy import ndimage
x = np.asarray(Image.open(sys.argv[1]), dtype=np.float32) / np.float32(255)
np.save(sys.argv[3], ndimage.correlate(x, np.load(sys.argv[2]).astype(np.float32), mode="nearest"))
"""


def photo(height: int, width: int, seed: int = 1) -> np.ndarray:
    """A photo-like RGB image (H, W, 3) uint8: gradients, discs with hard edges, blotches, mild noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    y /= height
    x /= width
    img = np.empty((height, width, 3), np.float32)
    img[..., 0] = 0.55 + 0.3 * y
    img[..., 1] = 0.65 - 0.2 * y + 0.1 * np.sin(7 * x)
    img[..., 2] = 0.85 - 0.5 * y
    for _ in range(40):
        cx, cy, r = rng.random(3)
        inside = (x - cx) ** 2 + (y - cy) ** 2 < (0.02 + 0.12 * r) ** 2
        img[inside] = img[inside] * 0.4 + 0.6 * rng.random(3)
    cell = max(1, max(height, width) // 64)
    grid = rng.random((-(-height // cell), -(-width // cell), 3), dtype=np.float32)
    blotches = np.repeat(np.repeat(grid, cell, 0), cell, 1)[:height, :width]
    img = img * 0.85 + 0.15 * blotches + rng.normal(0, 0.02, img.shape).astype(np.float32)
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8)


def gaussian_taps(sigma: float) -> np.ndarray:
    """convcli's gaussian:SIGMA as its 1-D factor (2*ceil(3*sigma)+1 taps, summing to 1)."""
    size = 2 * math.ceil(3 * sigma) + 1
    r = np.arange(size) - (size - 1) / 2
    g = np.exp(-(r**2) / (2 * sigma**2))
    return g / g.sum()


def vips_matrix(path: str, rows: np.ndarray, offset: float = 0.0) -> str:
    """A libvips matrix file: ``W H scale offset`` then the rows."""
    matrix = np.atleast_2d(rows)
    with open(path, "w") as f:
        f.write(f"{matrix.shape[1]} {matrix.shape[0]} 1 {offset:g}\n")
        for row in matrix:
            f.write(" ".join(f"{v:.10g}" for v in row) + "\n")
    return path


@dataclass
class Job:
    """One photo job: convcli's command and a peer's, with the targets of the issue that asked for it."""

    name: str
    ours: list[str]
    peer: str
    theirs: list[str]
    outputs: tuple[str, str]
    target_ratio: float
    target_rss_mib: float
    notes: list[str] = field(default_factory=list)


def prepare(workdir: str, quick: bool) -> list[Job]:
    """Write the images, kernels and peer scripts; compile convcli's bytecode; return the jobs."""
    import compileall

    from PIL import Image

    # convcli as pip installs it, bytecode compiled: a checkout run with PYTHONDONTWRITEBYTECODE
    # set would compile every module again in every process (about 90 ms here)
    import convcli

    compileall.compile_dir(os.path.dirname(convcli.__file__), quiet=1)

    def path(name: str) -> str:
        return os.path.join(workdir, name)

    s = 8 if quick else 1  # quick: sizes / 8
    Image.fromarray(photo(2048 // s, 2048 // s)).save(path("rgb2048.png"))
    Image.fromarray(photo(3000 // s, 4000 // s, 2)).save(path("photo12mp.jpg"), quality=90)
    Image.fromarray(photo(8192 // s, 8192 // s, 3)).save(path("rgb8192.png"))
    Image.fromarray(photo(2048 // s, 2048 // s, 4)).convert("L").save(path("gray2048.png"))
    vips_matrix(path("g8.mat"), gaussian_taps(8.0))
    vips_matrix(path("box15.mat"), np.full(15, 1 / 15))
    vips_matrix(path("sobelx.mat"), np.array([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]]), offset=128)
    np.save(path("rand31.npy"), np.random.default_rng(7).standard_normal((31, 31)).astype(np.float32) / 31)
    with open(path("scipy_job.py"), "w") as f:
        f.write(SCIPY_SCRIPT)
    convcli = [sys.executable, "-m", "convcli", "apply", "-q"]
    vips = ["vips"]
    return [
        Job("gaussian:8, 2048² RGB PNG → PNG",
            [*convcli, path("rgb2048.png"), "-k", "gaussian:8", "-o", path("o1.png")],
            "vips convsep", [*vips, "convsep", path("rgb2048.png"), path("v1.png"), path("g8.mat"), "--precision",
                             "float"], (path("o1.png"), path("v1.png")), 1.0, 400),
        Job("box:15, 12 MP JPEG → PNG", [*convcli, path("photo12mp.jpg"), "-k", "box:15", "-o", path("o2.png")],
            "vips convsep", [*vips, "convsep", path("photo12mp.jpg"), path("v2.png"), path("box15.mat"),
                             "--precision", "float"], (path("o2.png"), path("v2.png")), 1.0, 400),
        Job("sobel-x, 12 MP JPEG → PNG", [*convcli, path("photo12mp.jpg"), "-k", "sobel-x", "-o", path("o3.png")],
            "vips conv", [*vips, "conv", path("photo12mp.jpg"), path("v3.png"), path("sobelx.mat"), "--precision",
                          "float"], (path("o3.png"), path("v3.png")), 1.0, 400),
        Job("sobel-x, 8192² RGB PNG → PNG", [*convcli, path("rgb8192.png"), "-k", "sobel-x", "-o", path("o4.png")],
            "vips conv", [*vips, "conv", path("rgb8192.png"), path("v4.png"), path("sobelx.mat"), "--precision",
                          "float"], (path("o4.png"), path("v4.png")), 1.0, 1228),
        Job("random 31×31, 2048² gray PNG → .npy",
            [*convcli, path("gray2048.png"), "-k", path("rand31.npy"), "-o", path("o5.npy")],
            "scipy", [sys.executable, path("scipy_job.py"), path("gray2048.png"), path("rand31.npy"), path("s5.npy")],
            (path("o5.npy"), path("s5.npy")), 0.5, 400),
    ]


#: GNU time, which reports a command's own peak resident memory.  (A child's ``ru_maxrss`` from
#: ``wait4`` would count the memory of this Python process it was forked from: Linux keeps the
#: high-water mark across fork and exec.)
GNU_TIME = "/usr/bin/time"


def run_process(cmd: Sequence[str]) -> tuple[float, float]:
    """Wall seconds and peak resident memory (MiB; NaN without GNU time) of one process."""
    measure = os.path.exists(GNU_TIME)
    full = [GNU_TIME, "-f", "%M", *cmd] if measure else list(cmd)
    start = time.perf_counter()
    proc = subprocess.run(full, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seconds = time.perf_counter() - start
    err = proc.stderr.decode(errors="replace")
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {err[-400:]}")
    return seconds, int(err.strip().splitlines()[-1]) / 1024 if measure else math.nan


def available(job: Job) -> bool:
    return job.peer == "scipy" and _have("scipy") or job.peer.startswith("vips") and shutil.which("vips") is not None


def _have(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def run_jobs(jobs: Sequence[Job], reps: int) -> list[str]:
    """The table of the jobs, interleaved round by round."""
    lines = [
        "| job | convcli s | peer | peer s | ratio | convcli MiB | peer MiB | output MB (ours / peer) | targets |",
        "|---|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for job in jobs:
        if not available(job):
            lines.append(f"| {job.name} | - | {job.peer} (not installed) | - | - | - | - | - | - |")
            continue
        ours: list[float] = []
        theirs: list[float] = []
        rss = [0.0, 0.0]
        for rep in range(reps):
            order = [(job.ours, 0), (job.theirs, 1)]
            for cmd, side in order if rep % 2 == 0 else order[::-1]:
                seconds, peak = run_process(cmd)
                (ours if side == 0 else theirs).append(seconds)
                rss[side] = max(rss[side], peak)
        ratio = statistics.median(a / b for a, b in zip(ours, theirs))
        sizes = " / ".join(f"{os.path.getsize(p) / 1e6:.1f}" for p in job.outputs)
        met = ratio <= job.target_ratio and rss[0] <= job.target_rss_mib
        verdict = (f"≤ {job.target_ratio:g}×, ≤ {job.target_rss_mib:g} MiB: " + ("met" if met else "**MISSED**"))
        lines.append(
            f"| {job.name} | {statistics.median(ours):.2f} | {job.peer} | {statistics.median(theirs):.2f} | "
            f"{ratio:.2f} | {rss[0]:.0f} | {rss[1]:.0f} | {sizes} | {verdict} |"
        )
        print(lines[-1], flush=True)
    return lines


def stages(image: str, kernel: str, output: str, reps: int = 3) -> list[str]:
    """The parts of ``convcli apply IMAGE -k KERNEL -o OUTPUT`` timed in process (medians of ``reps``)."""
    from convcli.commands.render import FileSpec, render
    from convcli.io.images import load_image
    from convcli.io.inputs import load_input
    from convcli.kernels.bank import LayerOptions, layer_from_weights, layer_weights
    from convcli.kernels.spec import parse_kernel

    def timed(fn: Callable[[], object]) -> tuple[float, object]:
        times, result = [], None
        for _ in range(reps):
            start = time.perf_counter()
            result = fn()
            times.append(time.perf_counter() - start)
        return statistics.median(times), result

    with open(image, "rb") as f:
        data = f.read()
    t_decode, loaded = timed(lambda: load_image(data, image))
    item = load_input(image)
    options = LayerOptions(padding_mode="replicate")
    weights = layer_weights([parse_kernel(kernel)], item.shape[1], options)
    layer = layer_from_weights(weights, options, np.dtype(np.float32), item.divisor)
    t_forward, _ = timed(lambda: layer.forward(item.samples))
    fmt = os.path.splitext(output)[1].lstrip(".").replace("jpg", "jpeg")
    spec = FileSpec(0, 1, None, fmt)
    display = "offset" if abs(float(weights.W.sum())) < 1e-9 else "clip"
    displays = [display] * layer.output_shape(item.samples.shape)[1]
    t_render, files = timed(lambda: list(render(layer, item.samples, [spec], displays, png_level=1, quality=90)))
    encoded = files[0].data  # type: ignore[index]
    from convcli.io.display import to_pixels

    maps = layer.forward(item.samples)[0]
    t_map, pixels = timed(lambda: to_pixels(maps, display, 8))
    from convcli.io.images import encode_pixels

    t_encode, _ = timed(lambda: encode_pixels(pixels, fmt))  # type: ignore[arg-type]
    del loaded
    return [
        f"`{kernel}` on {os.path.basename(image)} ({item.shape}) → {os.path.basename(output)} "
        f"({len(encoded) / 1e6:.1f} MB), in process, medians of {reps}:",
        "| stage | ms |", "|---|---:|",
        f"| decode (Pillow; 8-bit samples kept as they are) | {t_decode * 1e3:.0f} |",
        f"| convolve, whole result as floats ({layer.choice.algorithm if layer.choice else '?'}; "
        f"samples converted per tile) | {t_forward * 1e3:.0f} |",
        f"| map to pixels ({display}) | {t_map * 1e3:.0f} |",
        f"| encode {fmt.upper()} | {t_encode * 1e3:.0f} |",
        f"| convolve + map + encode as `apply` runs them (bands of rows, no float result) | {t_render * 1e3:.0f} |",
    ]


def main(quick: bool = False, reps: Optional[int] = None, workdir: Optional[str] = None) -> int:
    tmp = workdir or tempfile.mkdtemp(prefix="convcli-jobs-")
    try:
        jobs = prepare(tmp, quick)
        print("\n".join(run_jobs(jobs, reps or (1 if quick else 3))))
        print()
        for image, kernel, out in [("rgb2048.png", "gaussian:8", "o1.png"), ("photo12mp.jpg", "box:15", "o2.png"),
                                   ("rgb8192.png", "sobel-x", "o4.png")][: 1 if quick else 3]:
            print("\n".join(stages(os.path.join(tmp, image), kernel, os.path.join(tmp, out), 1 if quick else 3)))
            print()
    finally:
        if workdir is None:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0

"""Benchmark convcli's engine against peers and against the book's textbook im2col.

Run (where the environment pins OpenBLAS's kernel, unset both variables so it picks this CPU's)::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench.py
    python benchmarks/bench.py --quick --only a,e

Needs only numpy (and convcli).  Peers are measured when installed (the ``bench``
extra): PyTorch CPU ``conv2d`` (float32, 2 threads), OpenCV ``filter2D`` and
``scipy.ndimage.correlate`` (single-channel and depthwise image workloads only).

Method: every contestant runs once untimed, then the contestants of a workload run
round-robin (the order rotates every round) for ``--reps`` rounds.  Times are medians
over rounds; each ratio ``ours / theirs`` is the median of the per-round ratios, so a
slow moment of a busy machine hits both sides of a ratio alike.  ratio < 1 means
convcli is faster.  A call shorter than 0.1 s is timed right after an untimed call of
the same contestant ("settle"; ``--no-settle`` turns it off): on 2 cores the previous
contestant's spinning thread pool (torch's OpenMP threads spin-wait after each call)
would otherwise take a core from the first call that follows it.  Other knobs, for
comparison: ``--omp-passive`` (OMP_WAIT_POLICY=PASSIVE before torch loads) and
``--gap-ms`` (a sleep before each timed call; on a VM it costs every multi-threaded
contestant the wake-up of an idle vCPU).

``--stream`` and ``--dask`` measure the streamed ``.npy`` path and the Dask engine
(benchmarks/scale_jobs.py).

``--jobs`` instead runs whole-process photo jobs against libvips and scipy, with peak memory
and a stage breakdown (benchmarks/photo_jobs.py).

The textbook baseline is the book's seed code, written again here: float64 column
matrix ``np.zeros((N, C, FH, FW, OH, OW))`` filled tap by tap from an ``np.pad``-ed
input, transposed and reshaped to (N*OH*OW, C*FH*FW), one ``np.dot``.  Where its column
matrix would pass ``--textbook-mib`` (default 1024 MiB) it is timed, together with
convcli, on a strip of the input's rows small enough to fit, and the table says so.

Memory of workload (f): peak of traced allocations (``tracemalloc``; numpy reports its
data buffers to it, from every thread) during one forward, minus the output array;
and, independently, the process's resident-set high-water mark (``ru_maxrss``) minus
the resident set just before the forward, minus the output.  The input exists before
both measurements start, so both numbers are "above input and output".
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import resource
import statistics
import sys
import time
import tracemalloc
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import convcli  # noqa: E402
from convcli import Convolution  # noqa: E402

MiB = 1024 * 1024


# ----------------------------------------------------------------------------- textbook


def textbook_im2col(x: np.ndarray, fh: int, fw: int, stride: int, pad: int) -> np.ndarray:
    n, c, h, w = x.shape
    oh, ow = (h + 2 * pad - fh) // stride + 1, (w + 2 * pad - fw) // stride + 1
    img = np.pad(x, [(0, 0), (0, 0), (pad, pad), (pad, pad)], "constant")
    col = np.zeros((n, c, fh, fw, oh, ow))  # float64, as the book
    for y in range(fh):
        for xx in range(fw):
            col[:, :, y, xx, :, :] = img[:, :, y:y + stride * oh:stride, xx:xx + stride * ow:stride]
    return col.transpose(0, 4, 5, 1, 2, 3).reshape(n * oh * ow, -1)


def textbook_col2im(col: np.ndarray, shape: tuple, fh: int, fw: int, stride: int, pad: int) -> np.ndarray:
    n, c, h, w = shape
    oh, ow = (h + 2 * pad - fh) // stride + 1, (w + 2 * pad - fw) // stride + 1
    col = col.reshape(n, oh, ow, c, fh, fw).transpose(0, 3, 4, 5, 1, 2)
    img = np.zeros((n, c, h + 2 * pad + stride - 1, w + 2 * pad + stride - 1))
    for y in range(fh):
        for xx in range(fw):
            img[:, :, y:y + stride * oh:stride, xx:xx + stride * ow:stride] += col[:, :, y, xx, :, :]
    return img[:, :, pad:h + pad, pad:w + pad]


class Textbook:
    """The book's Convolution (plus a loop over groups, which the book lacks)."""

    def __init__(self, W: np.ndarray, b: Optional[np.ndarray], stride: int, pad: int, groups: int) -> None:
        self.W, self.b, self.stride, self.pad, self.groups = W, b, stride, pad, groups

    def _split(self, col: np.ndarray) -> list[tuple[slice, slice]]:
        fn, k = self.W.shape[0], col.shape[1]
        fg, kg = fn // self.groups, k // self.groups
        return [(slice(g * fg, (g + 1) * fg), slice(g * kg, (g + 1) * kg)) for g in range(self.groups)]

    def forward(self, x: np.ndarray) -> np.ndarray:
        fn, _, fh, fw = self.W.shape
        n, _, h, w = x.shape
        oh, ow = (h + 2 * self.pad - fh) // self.stride + 1, (w + 2 * self.pad - fw) // self.stride + 1
        col = textbook_im2col(x, fh, fw, self.stride, self.pad)
        col_w = self.W.reshape(fn, -1).T
        if self.groups == 1:
            out = np.dot(col, col_w)
        else:
            out = np.empty((col.shape[0], fn))
            for fs, ks in self._split(col):
                out[:, fs] = np.dot(col[:, ks], col_w[:, fs])
        if self.b is not None:
            out += self.b
        self.x, self.col, self.col_w = x, col, col_w
        return out.reshape(n, oh, ow, -1).transpose(0, 3, 1, 2)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        fn, _, fh, fw = self.W.shape
        dout = dout.transpose(0, 2, 3, 1).reshape(-1, fn)
        self.db = np.sum(dout, axis=0)
        assert self.groups == 1
        self.dW = np.dot(self.col.T, dout).transpose(1, 0).reshape(self.W.shape)
        dcol = np.dot(dout, self.col_w.T)
        return textbook_col2im(dcol, self.x.shape, fh, fw, self.stride, self.pad)


# ----------------------------------------------------------------------------- workloads


@dataclass
class Workload:
    key: str
    title: str
    x_shape: tuple[int, int, int, int]
    w_shape: tuple[int, int, int, int]
    stride: int = 1
    pad: int = 0
    groups: int = 1
    bias: bool = True
    backward: bool = False
    image: bool = False  # single-channel / depthwise: OpenCV and scipy apply
    reps: int = 7
    targets: dict[str, float] = field(default_factory=dict)
    memory: bool = False


def workloads(quick: bool) -> list[Workload]:
    s = 4 if quick else 1  # spatial shrink for --quick
    r = 3 if quick else None

    def reps(n: int) -> int:
        return r if r is not None else n

    tb = {"textbook": 0.2}
    return [
        Workload("a", "ResNet 3x3 fwd", (8, 64, 56 // s, 56 // s), (64, 64, 3, 3), pad=1, reps=reps(15),
                 targets={"torch": 1.0, **tb}),
        Workload("b", "ResNet 3x3 fwd+bwd", (8, 64, 56 // s, 56 // s), (64, 64, 3, 3), pad=1, backward=True,
                 reps=reps(11), targets={"torch": 1.0, **tb}),
        Workload("c", "strided 3x3 s2", (16, 32, 64 // s, 64 // s), (64, 32, 3, 3), stride=2, pad=1,
                 reps=reps(15), targets={"torch": 1.5, **tb}),
        Workload("d", "edge bank 8x5x5", (1, 1, 4096 // s, 4096 // s), (8, 1, 5, 5), pad=2, bias=False,
                 image=True, reps=reps(9), targets={"torch": 0.5, **tb}),
        Workload("e", "photo dw 3x3", (1, 3, 2048 // s, 2048 // s), (3, 1, 3, 3), pad=1, groups=3, bias=False,
                 image=True, reps=reps(15), targets={"torch": 0.25, "opencv": 2.0, **tb}),
        Workload("f", "huge dw 5x5", (1, 3, 8192 // s, 8192 // s), (3, 1, 5, 5), pad=2, groups=3, bias=False,
                 image=True, reps=reps(5), targets={**tb}, memory=True),
    ]


# ----------------------------------------------------------------------------- contestants


def have(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


Runner = Callable[[], object]


def _layer_runner(layer: Any, wl: Workload, x: np.ndarray, dout) -> Runner:
    """Forward (and backward, for a backward workload) of a layer with the book's interface."""
    if wl.backward:
        def run() -> object:
            layer.forward(x)
            return layer.backward(dout)
        return run
    return lambda: layer.forward(x)


def make_convcli(wl: Workload, x: np.ndarray, W: np.ndarray, b: Optional[np.ndarray], dout) -> Runner:
    return _layer_runner(Convolution(W, b, wl.stride, wl.pad, groups=wl.groups), wl, x, dout)


def make_textbook(wl: Workload, x: np.ndarray, W: np.ndarray, b: Optional[np.ndarray], dout) -> Runner:
    return _layer_runner(Textbook(W, b, wl.stride, wl.pad, wl.groups), wl, x, dout)


def make_torch(wl: Workload, x: np.ndarray, W: np.ndarray, b: Optional[np.ndarray], dout) -> Runner:
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(2)
    tx, tw = torch.from_numpy(x), torch.from_numpy(W)
    tb = None if b is None else torch.from_numpy(b)
    if wl.backward:
        td = torch.from_numpy(dout)
        tx.requires_grad_(True)
        tw.requires_grad_(True)
        if tb is not None:
            tb.requires_grad_(True)

        def run() -> object:
            tx.grad = tw.grad = None
            if tb is not None:
                tb.grad = None
            out = F.conv2d(tx, tw, tb, wl.stride, wl.pad, 1, wl.groups)
            out.backward(td)
            return tx.grad

        return run

    def fwd() -> object:
        with torch.no_grad():
            return F.conv2d(tx, tw, tb, wl.stride, wl.pad, 1, wl.groups)

    return fwd


def make_opencv(wl: Workload, x: np.ndarray, W: np.ndarray, b: Optional[np.ndarray], dout) -> Runner:
    import cv2

    cv2.setNumThreads(2)
    n, c, _, _ = x.shape
    fn = W.shape[0]
    per = fn // wl.groups  # filters per group; image workloads have C/groups == 1
    assert n == 1 and W.shape[1] == 1 and wl.stride == 1 and W.shape[2] == W.shape[3] == 2 * wl.pad + 1

    def run() -> object:  # one call per map, as OpenCV users filter channels: the maps as OpenCV returns them
        return [
            cv2.filter2D(x[0, f // per if wl.groups > 1 else 0], -1, W[f, 0], borderType=cv2.BORDER_CONSTANT)
            for f in range(fn)
        ]

    return run


def make_scipy(wl: Workload, x: np.ndarray, W: np.ndarray, b: Optional[np.ndarray], dout) -> Runner:
    from scipy import ndimage

    fn = W.shape[0]
    per = fn // wl.groups

    def run() -> object:  # one call per map, as scipy users filter channels
        return [
            ndimage.correlate(x[0, f // per if wl.groups > 1 else 0], W[f, 0], mode="constant", cval=0.0)
            for f in range(fn)
        ]

    return run


PEERS: dict[str, tuple[str, Callable[..., Runner]]] = {
    "torch": ("torch", make_torch),
    "opencv": ("cv2", make_opencv),
    "scipy": ("scipy", make_scipy),
}


def contestants_for(wl: Workload) -> list[str]:
    names = ["torch"]
    if wl.image and not wl.backward:
        names += ["opencv", "scipy"]
    return [n for n in names if have(PEERS[n][0])]


# ----------------------------------------------------------------------------- timing


#: Pause before each timed call (seconds), set by ``--gap-ms`` (default 0).
GAP = 0.0
#: Calls shorter than this (seconds, at warm-up) are timed on a second call right after an
#: untimed one of the same contestant (``--no-settle`` turns this off).
SETTLE_BELOW = 0.1


def round_robin(runners: dict[str, Runner], reps: int) -> dict[str, list[float]]:
    """Time ``reps`` rounds; each round calls every contestant, the order rotating.

    On 2 cores contestants disturb each other through their thread pools: after a torch
    call its OpenMP threads spin-wait for a while, taking a core from whatever runs next.
    So a short call is timed right after an untimed call of the same contestant (which
    absorbs the previous contestant's spinning): each is measured in its steady state,
    threads warm, as in a loop of its own calls.
    """
    names = list(runners)
    settle = {}
    for name in names:  # warm-up: buffers, thread pools, BLAS init
        t0 = time.perf_counter()
        runners[name]()
        settle[name] = SETTLE_BELOW > 0 and time.perf_counter() - t0 < SETTLE_BELOW
    times: dict[str, list[float]] = {n: [] for n in names}
    for rep in range(reps):
        order = names[rep % len(names):] + names[:rep % len(names)]
        for name in order:
            gc.collect()
            if GAP:
                time.sleep(GAP)
            if settle[name]:
                runners[name]()
            t0 = time.perf_counter()
            runners[name]()
            times[name].append(time.perf_counter() - t0)
    return times


def median_ratio(ours: list[float], theirs: list[float]) -> float:
    return statistics.median(a / b for a, b in zip(ours, theirs))


def textbook_strip(wl: Workload, budget_mib: float) -> Optional[int]:
    """Rows of x to time the textbook on, or None for the whole input."""
    n, c, h, w = wl.x_shape
    fh, fw = wl.w_shape[2:]
    ow = (w + 2 * wl.pad - fw) // wl.stride + 1
    row_bytes = n * ow * c * fh * fw * 8 / wl.stride
    full = row_bytes * h
    if full <= budget_mib * MiB:
        return None
    rows = int(budget_mib * MiB // row_bytes)
    return max(rows - rows % 64, 64)


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def memory_extra(wl: Workload, x: np.ndarray, W: np.ndarray) -> dict[str, float]:
    layer = Convolution(W, None, wl.stride, wl.pad, groups=wl.groups)
    out_bytes = int(np.prod(layer.output_shape(x.shape))) * x.itemsize
    gc.collect()
    tracemalloc.start()
    out = layer.forward(x)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del out
    gc.collect()
    result = {"tracemalloc_extra_mib": (peak - out_bytes) / MiB}
    if sys.platform.startswith("linux"):
        before = rss_bytes()
        maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        out = layer.forward(x)
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        del out
        if maxrss > maxrss_before:  # a new high-water mark: this forward set it
            result["rss_extra_mib"] = (maxrss - before - out_bytes) / MiB
    return result


def environment() -> list[str]:
    lines = [
        f"python {platform.python_version()}, numpy {np.__version__}, convcli {convcli.__version__}",
        f"machine: {platform.machine()}, {os.cpu_count()} logical CPUs, {cpu_model()}",
    ]
    for mod, attr in [("torch", "__version__"), ("cv2", "__version__"), ("scipy", "__version__"),
                      ("threadpoolctl", "__version__")]:
        if have(mod):
            lines.append(f"{mod} {getattr(sys.modules[mod], attr)}")
        else:
            lines.append(f"{mod}: not installed (skipped)")
    if have("threadpoolctl"):
        from threadpoolctl import threadpool_info

        numpy_dir = os.path.dirname(os.path.dirname(np.__file__))
        for info in threadpool_info():
            path = info.get("filepath", "")
            owner = "numpy's (convcli's GEMMs run here)" if "numpy" in os.path.relpath(path, numpy_dir) else "a peer's"
            lines.append(
                f"threadpool: {info.get('user_api')} {info.get('internal_api')} {info.get('version')} "
                f"kernel={info.get('architecture')} threads={info.get('num_threads')} "
                f"({os.path.basename(path)}, {owner})"
            )
        lines.append(f"convcli worker threads: {convcli.get_num_threads()}")
    else:
        lines.append("threadpoolctl not installed: BLAS kernel unknown")
    env = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS", "OMP_WAIT_POLICY")
           if k in os.environ}
    lines.append(f"env: {env or 'no OPENBLAS_*/OMP_* overrides'}")
    return lines


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


# ----------------------------------------------------------------------------- end to end


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="smaller sizes, 3 rounds (with --e2e: a 256x256 image, one round) (smoke test)")
    ap.add_argument("--only", default="", help="comma-separated workload keys, e.g. a,e")
    ap.add_argument("--reps", type=int, default=0, help="rounds per workload (default: per workload)")
    ap.add_argument("--no-textbook", action="store_true", help="skip the textbook baseline")
    ap.add_argument("--textbook-mib", type=float, default=1024, help="largest textbook column matrix")
    ap.add_argument("--no-memory", action="store_true", help="skip the memory measurement of (f)")
    ap.add_argument("--gap-ms", type=float, default=0.0,
                    help="sleep before each timed call (default 0; on a VM an idle vCPU is slow to wake, "
                         "which costs multi-threaded contestants)")
    ap.add_argument("--no-settle", action="store_true",
                    help="time every call, not the second of two back-to-back calls of one contestant")
    ap.add_argument("--omp-passive", action="store_true",
                    help="set OMP_WAIT_POLICY=PASSIVE before torch is imported (its threads sleep "
                         "at once instead of spinning)")
    ap.add_argument("--jobs", action="store_true",
                    help="whole-process photo jobs against libvips and scipy (benchmarks/photo_jobs.py), with "
                         "peak memory and a stage breakdown, instead of the workloads")
    ap.add_argument("--stream", action="store_true",
                    help="streamed .npy against in-memory, whole processes: time and peak RSS "
                         "(benchmarks/scale_jobs.py)")
    ap.add_argument("--dask", action="store_true",
                    help="the Dask engine on a LocalCluster of 2 workers against dask-image, overhead per chunk, "
                         "weak scaling (benchmarks/scale_jobs.py)")
    args = ap.parse_args(argv)
    global GAP, SETTLE_BELOW
    GAP = args.gap_ms / 1000
    if args.no_settle:
        SETTLE_BELOW = 0.0
    if args.omp_passive:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"  # read by libgomp when torch loads it
    if args.stream or args.dask:
        import scale_jobs

        return scale_jobs.main("stream" if args.stream else "dask", quick=args.quick, reps=args.reps)
    if args.jobs:
        import photo_jobs

        return photo_jobs.main(quick=args.quick, reps=args.reps or None)

    for line in environment():
        print(line)
    only = {k.strip() for k in args.only.split(",") if k.strip()}
    rows = []
    notes = []
    for wl in workloads(args.quick):
        if only and wl.key not in only:
            continue
        rng = np.random.default_rng(0)
        x = rng.standard_normal(wl.x_shape, dtype=np.float32)
        W = rng.standard_normal(wl.w_shape, dtype=np.float32) * 0.1
        b = rng.standard_normal(wl.w_shape[0], dtype=np.float32) if wl.bias else None
        layer = Convolution(W, b, wl.stride, wl.pad, groups=wl.groups)
        dout = rng.standard_normal(layer.output_shape(x.shape), dtype=np.float32) if wl.backward else None
        reps = args.reps or wl.reps

        runners: dict[str, Runner] = {"convcli": make_convcli(wl, x, W, b, dout)}
        for name in contestants_for(wl):
            runners[name] = PEERS[name][1](wl, x, W, b, dout)
        # same answer? (guards against benchmarking different things)
        ours = np.asarray(runners["convcli"]())
        for name in list(runners)[1:]:
            theirs = runners[name]()
            theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)
            err = float(np.max(np.abs(ours - theirs)) / (np.max(np.abs(theirs)) + 1e-30))
            if err > 1e-3:
                notes.append(f"({wl.key}) WARNING: {name} differs from convcli, max rel err {err:.2e}")
        del ours

        times = round_robin(runners, reps)
        row = {"wl": wl, "ms": {k: statistics.median(v) * 1e3 for k, v in times.items()}, "ratio": {}}
        for name in runners:
            if name != "convcli":
                row["ratio"][name] = median_ratio(times["convcli"], times[name])
        del runners, times
        gc.collect()

        if not args.no_textbook:
            strip = textbook_strip(wl, args.textbook_mib)
            xs = x if strip is None else np.ascontiguousarray(x[:, :, :strip])
            ds = dout if (dout is None or strip is None) else dout[:, :, :strip]
            if strip is not None:
                notes.append(f"({wl.key}) textbook timed with convcli on a {strip}-row strip "
                             f"{(*wl.x_shape[:2], strip, wl.x_shape[3])}: the whole column matrix would not fit")
            tt = round_robin({"convcli": make_convcli(wl, xs, W, b, ds), "textbook": make_textbook(wl, xs, W, b, ds)},
                             max(3, min(reps, 5)))
            row["ms"]["textbook"] = statistics.median(tt["textbook"]) * 1e3
            row["ratio"]["textbook"] = median_ratio(tt["convcli"], tt["textbook"])
            del tt, xs
            gc.collect()

        if wl.memory and not args.no_memory:
            row["memory"] = memory_extra(wl, x, W)
        rows.append(row)
        print(f"  done ({wl.key}) {wl.title}: " + ", ".join(f"{k} {v:.1f} ms" for k, v in row["ms"].items()),
              flush=True)
        del x
        gc.collect()

    print()
    print("| workload | convcli ms | torch ms | opencv ms | scipy ms | textbook ms | "
          "ratio vs torch | vs opencv | vs scipy | vs textbook | targets |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for row in rows:
        wl = row["wl"]
        ms, ratio = row["ms"], row["ratio"]

        def cell(d: dict, k: str, fmt: str) -> str:
            return format(d[k], fmt) if k in d else "-"

        verdicts = []
        for peer, target in wl.targets.items():
            if peer in ratio:
                ok = ratio[peer] <= target
                verdicts.append(f"{peer} ≤ {target:g}: {'met' if ok else 'MISSED'}")
        if "memory" in row:
            mem = row["memory"]
            worst = max(mem.values())
            verdicts.append(f"extra mem {worst:.0f} MiB ≤ 256: {'met' if worst <= 256 else 'MISSED'}")
        print(f"| ({wl.key}) {wl.title} | {ms['convcli']:.1f} | {cell(ms, 'torch', '.1f')} | "
              f"{cell(ms, 'opencv', '.1f')} | {cell(ms, 'scipy', '.1f')} | {cell(ms, 'textbook', '.1f')} | "
              f"{cell(ratio, 'torch', '.3f')} | {cell(ratio, 'opencv', '.3f')} | {cell(ratio, 'scipy', '.3f')} | "
              f"{cell(ratio, 'textbook', '.3f')} | {'; '.join(verdicts)} |")
    for row in rows:
        if "memory" in row:
            mem = row["memory"]
            print(f"\n({row['wl'].key}) memory above input and output: "
                  + ", ".join(f"{k} = {v:.1f}" for k, v in mem.items()))
    for note in notes:
        print(note)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

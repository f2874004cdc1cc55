"""Beyond memory and beyond one machine: the streamed .npy path and the Dask engine, measured.

``--stream``: whole ``convcli apply big.npy -k gaussian:2 -o out.npy`` processes, streamed
(``--stream``) against in memory (``--in-memory``), time and peak resident memory (GNU
time's ``%M``), for the padding modes that read the far edge (circular, reflect) and for
zeros; the largest array is streamed only (in memory it needs twice its size).

``--dask``: on a LocalCluster of 2 worker processes (one thread each) on 127.0.0.1, the
same chunked float32 array and kernels through ``convcli.dask.apply`` and through
dask-image's ``ndfilters.correlate`` (scipy per chunk); each job computes the result's
sum on the cluster (nothing gathered); the two are timed in turn, and the ratio is the
median of each turn's ours / theirs (< 1: convcli faster), the times medians.
Then convcli's overhead per chunk (the cluster job against the local engine on the whole
array in this process, 2 threads) and weak scaling: 1 worker with one array against 2
workers with twice the rows (efficiency = t1 / t2, 1.0 is perfect).

Run from the repository root::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench.py --stream
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench.py --dask
    python benchmarks/bench.py --stream --quick
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)


def make_npy(path: str, h: int, w: int) -> None:
    """A (1, 1, h, w) float32 .npy written a band at a time (never whole in memory)."""
    a = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(1, 1, h, w))
    band = np.random.default_rng(0).standard_normal((256, w), dtype=np.float32)
    for r in range(0, h, 256):
        a[0, 0, r:r + 256] = band[: min(256, h - r)] + np.float32(r / h)
    a.flush()
    del a


def timed_process(argv: list[str], cwd: str) -> tuple[float, float]:
    """(seconds, peak RSS in MiB) of one process, by GNU time when present, else wall time and ru_maxrss."""
    env = {**os.environ, "PYTHONPATH": ROOT}
    gnu = shutil.which("time") or ("/usr/bin/time" if os.path.exists("/usr/bin/time") else None)
    if gnu:
        done = subprocess.run([gnu, "-f", "%e %M", *argv], cwd=cwd, capture_output=True, text=True, env=env)
        if done.returncode != 0:
            raise RuntimeError(done.stderr[-2000:])
        seconds, kib = done.stderr.strip().splitlines()[-1].split()
        return float(seconds), int(kib) / 1024
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, check=True, capture_output=True, env=env)
    import resource

    return time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def stream_main(quick: bool, reps: int) -> int:
    sizes = [(1024, True)] if quick else [(16384, True), (32768, False)]
    modes = ["zeros"] if quick else ["zeros", "reflect", "circular"]
    print("| array | padding | path | s (median) | peak RSS MiB | streamed / in-memory time |")
    print("|---|---|---|---|---|---|")
    folder = tempfile.mkdtemp(prefix="convcli-stream-", dir=os.environ.get("CONVCLI_BENCH_DIR"))
    try:
        for side, both in sizes:
            src = os.path.join(folder, "big.npy")
            make_npy(src, side, side)
            for mode in modes:
                results: dict[str, list[tuple[float, float]]] = {"stream": [], "in-memory": []}
                paths = ["stream", "in-memory"] if both else ["stream"]
                for _ in range(reps):
                    for path in paths:
                        argv = [sys.executable, "-m", "convcli", "apply", src, "-k", "gaussian:2", "--padding-mode",
                                mode, f"--{path}", "-q", "-o", os.path.join(folder, "out.npy")]
                        results[path].append(timed_process(argv, folder))
                med = {p: statistics.median(t for t, _ in r) for p, r in results.items() if r}
                for path in paths:
                    rss = max(m for _, m in results[path])
                    ratio = f"{med['stream'] / med['in-memory']:.2f}" if both and path == "stream" else ""
                    print(f"| 1×1×{side}×{side} float32 ({side * side * 4 / 2**30:.2g} GiB) | {mode} | {path} | "
                          f"{med[path]:.2f} | {rss:.0f} | {ratio} |")
            os.unlink(src)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


def _best(fn: Callable[[], Any], reps: int) -> float:
    """Median seconds of ``reps`` calls after one untimed call (the workers import convcli on their first task)."""
    fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _interleaved(ours: Callable[[], Any], theirs: Callable[[], Any], reps: int) -> tuple[float, float, float]:
    """Median seconds of each and the median ratio ours / theirs over ``reps`` turns (after one untimed each)."""
    ours()
    theirs()
    mine, peer = [], []
    for _ in range(reps):
        for fn, times in ((ours, mine), (theirs, peer)):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    ratio = statistics.median(a / b for a, b in zip(mine, peer))
    return statistics.median(mine), statistics.median(peer), ratio


def dask_main(quick: bool, reps: int) -> int:
    import dask.array as da
    from distributed import Client, LocalCluster

    from convcli import Convolution
    from convcli.dask import apply
    from convcli.kernels.spec import parse_kernel

    side, chunk = (1024, 256) if quick else (8192, 2048)
    try:
        from dask_image import ndfilters
    except ImportError:
        ndfilters = None
    kernels = {"gaussian:2 (13×13)": parse_kernel("gaussian:2").weights, "box:5": parse_kernel("box:5").weights}
    rng = np.random.default_rng(0)
    x = rng.standard_normal((side, side), dtype=np.float32)
    print(f"array {side}×{side} float32, chunks {chunk}×{chunk} ({(side // chunk) ** 2} chunks), padding replicate "
          "(scipy's nearest)")
    print()
    print("| kernel | convcli.dask s | dask-image s | ratio | local engine s (2 threads) | overhead per chunk ms |")
    print("|---|---|---|---|---|---|")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        xs = client.scatter(x, broadcast=True)
        arr2 = da.from_delayed(xs, shape=x.shape, dtype=x.dtype).rechunk(chunk).persist()
        arr4 = arr2[None, None]
        for name, k in kernels.items():
            w = np.asarray(k, np.float32)
            layer = Convolution(w[None, None], pad="same", padding_mode="replicate")
            run_ours = lambda layer=layer: apply(arr4, layer).sum().compute()  # noqa: E731
            if ndfilters:
                ours, theirs, ratio = _interleaved(
                    run_ours, lambda w=w: ndfilters.correlate(arr2, w, mode="nearest").sum().compute(), reps)
            else:
                ours, theirs, ratio = _best(run_ours, reps), float("nan"), float("nan")
            local = _best(lambda layer=layer: layer.forward(x[None, None]), reps)
            chunks = (side // chunk) ** 2
            print(f"| {name} | {ours:.2f} | {theirs:.2f} | {ratio:.2f} | {local:.2f} | "
                  f"{(ours - local) / chunks * 1000:.0f} |")
    print()
    print("| workers | array | convcli.dask s | efficiency t1/t2 |")
    print("|---|---|---|---|")
    layer = Convolution(np.asarray(kernels["gaussian:2 (13×13)"], np.float32)[None, None], pad="same",
                        padding_mode="replicate")
    t1 = 0.0
    for workers in (1, 2):
        rows = side // 2 * workers
        part = x[:rows] if rows <= side else np.concatenate([x] * (rows // side))
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                          dashboard_address=None) as cluster, Client(cluster) as client:
            arr = da.from_delayed(client.scatter(part, broadcast=True), shape=part.shape, dtype=part.dtype)
            arr = arr.rechunk(chunk).persist()[None, None]
            t = _best(lambda arr=arr: apply(arr, layer).sum().compute(), reps)
        t1 = t1 or t
        print(f"| {workers} | {rows}×{side} | {t:.2f} | {t1 / t:.2f} |")
    return 0


def main(kind: str, quick: bool, reps: int) -> int:
    """Run the ``--stream`` or ``--dask`` benchmarks (``kind``), printing Markdown tables."""
    reps = reps or (1 if quick else 3)
    return stream_main(quick, reps) if kind == "stream" else dask_main(quick, reps)

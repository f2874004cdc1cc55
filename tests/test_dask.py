"""convcli.dask and ``apply --engine dask``: the same results as the local engine, on a real cluster.

One LocalCluster of 2 worker processes on 127.0.0.1 serves the whole module (starting one
takes seconds); the command-line tests connect to it with ``--scheduler``.  Every padding
mode, strides, dilations and even kernels are compared with ``Convolution.forward`` on
the whole array; hypothesis draws more geometries on dask's synchronous scheduler (the
same graph, no cluster: cheap).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

from convcli import Convolution  # noqa: E402
from convcli.commands.apply_dask import write_blocks  # noqa: E402
from convcli.dask import MissingExtraError, apply, require  # noqa: E402

MODES = ["zeros", "constant:0.25", "replicate", "reflect", "symmetric", "circular"]
GEOMETRIES: list[dict[str, Any]] = [
    {"pad": "same"},
    {"pad": "same", "stride": (2, 3)},
    {"pad": "same", "dilation": (2, 3)},
    {"pad": (9, 0, 2, 30), "stride": 2, "dilation": 2},  # pads past a chunk (and the width, for the wrap modes)
    {"pad": "valid", "stride": (3, 1)},
]
KERNELS = [(3, 3), (2, 4), (4, 1)]  # even kernels: 'same' splits their padding unevenly


@pytest.fixture(scope="module")
def client() -> Any:
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as c:
        yield c


def layers(mode: str, channels: int, rng: np.random.Generator) -> list[Convolution]:
    out = []
    for geometry, k in zip(GEOMETRIES, [*KERNELS, *KERNELS]):  # each geometry once, with one of the kernels
        depthwise = rng.standard_normal((2 * channels, 1, *k)).astype(np.float32)
        out.append(Convolution(depthwise, rng.standard_normal(2 * channels).astype(np.float32), groups=channels,
                               padding_mode=mode, **geometry))
    out.append(Convolution(rng.standard_normal((4, channels, 3, 2)).astype(np.float32), None, padding_mode=mode,
                           pad="same", stride=2))  # a layer that mixes channels
    return out


@pytest.mark.parametrize("mode", MODES)
def test_cluster_equals_local_engine(client: Any, mode: str) -> None:
    rng = np.random.default_rng(MODES.index(mode))
    x = rng.standard_normal((3, 2, 45, 38)).astype(np.float32)
    chunked = da.from_array(x, chunks=(2, 1, 11, 13))  # chunks across N, C (rechunked whole), H and W
    todo = layers(mode, 2, rng)
    results = client.gather(client.compute([apply(chunked, layer) for layer in todo]))
    for layer, got in zip(todo, results):
        want = layer.forward(x)
        assert got.shape == want.shape, (layer.stride, layer.pad)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=f"{layer.stride} {layer.pad} "
                                   f"{layer.dilation} {np.shape(layer.W)}")


@settings(max_examples=25, deadline=None)
@given(
    h=st.integers(1, 30), w=st.integers(1, 30), fh=st.integers(1, 5), fw=st.integers(1, 5),
    sh=st.integers(1, 3), sw=st.integers(1, 3), dh=st.integers(1, 3), dw=st.integers(1, 3),
    pads=st.tuples(*[st.integers(0, 12)] * 4), same=st.booleans(), mode=st.sampled_from(MODES),
    ch=st.integers(1, 9), cw=st.integers(1, 9), data=st.data(),
)
def test_blocks_tile_the_output_exactly(h: int, w: int, fh: int, fw: int, sh: int, sw: int, dh: int, dw: int,
                                        pads: tuple[int, ...], same: bool, mode: str, ch: int, cw: int,
                                        data: st.DataObject) -> None:
    pad: Any = "same" if same else pads
    reach_h, reach_w = dh * (fh - 1) + 1, dw * (fw - 1) + 1
    if not same and (h + pads[0] + pads[1] < reach_h or w + pads[2] + pads[3] < reach_w):
        return  # no output at all: the local engine refuses it too
    x = (10.0 * np.arange(h)[:, None] + np.arange(w)[None, :])[None, None] + np.zeros((2, 1, 1, 1))
    W = 2.0 ** np.arange(fh * fw, dtype=np.float64).reshape(1, 1, fh, fw)  # taps that say where they are
    layer = Convolution(W, None, (sh, sw), pad, dilation=(dh, dw), padding_mode=mode)
    chunks = data.draw(st.sampled_from([None, (2, 3), 1]))
    got = apply(da.from_array(x, chunks=(1, 1, ch, cw)), layer, chunks=chunks).compute(scheduler="sync")
    np.testing.assert_allclose(got, layer.forward(x), rtol=1e-12)


def test_integer_samples_and_a_numpy_input(client: Any) -> None:
    x = np.random.default_rng(3).integers(0, 256, (1, 3, 40, 33), dtype=np.uint8)
    layer = Convolution(np.ones((3, 1, 5, 5), np.float32) / (25 * 255), groups=3, pad="same",
                        padding_mode="constant:127.5")  # a constant in sample units, as images have
    got = client.compute(apply(x, layer)).result()
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, layer.forward(x), rtol=1e-5, atol=1e-6)


def test_a_worker_killed_mid_run_is_survived(client: Any) -> None:
    x = np.random.default_rng(4).standard_normal((1, 1, 160, 160)).astype(np.float32)
    layer = Convolution(np.ones((1, 1, 3, 3), np.float32), pad="same", padding_mode="circular")
    y = apply(da.from_array(x, chunks=(1, 1, 20, 20)), layer)  # 64 blocks
    out = np.full(y.shape, np.nan, np.float32)
    stored: list[tuple[slice, ...]] = []
    victim = next(iter(client.run(os.getpid).values()))

    def store(where: tuple[slice, ...], block: np.ndarray) -> None:
        if len(stored) == 3:
            os.kill(victim, signal.SIGKILL)  # the nanny starts another; dask runs its tasks again
        stored.append(where)
        out[where] = block

    assert write_blocks(client, y, store) == 64
    places = {tuple((s.start, s.stop) for s in where) for where in stored}
    assert len(places) == len(stored) == 64  # every block once: none lost, none twice
    np.testing.assert_allclose(out, layer.forward(x), rtol=1e-5, atol=1e-5)
    client.wait_for_workers(2, timeout=60)


def convcli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "convcli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def test_cli_npy_through_a_scheduler(client: Any, tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.random.default_rng(5).random((2, 3, 70, 50), dtype=np.float32))
    address = client.scheduler.address
    for mode in ("circular",):
        done = convcli("apply", "x.npy", "-k", "gaussian:2", "-k", "1,2;3,4", "--padding-mode", mode, "--stride", "2",
                       "--engine", "dask", "--scheduler", address, "--chunk", "16", "-o", f"d-{mode}.npy", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert "engine dask" in done.stderr and "2×6×35×25" in done.stderr
        local = convcli("apply", "x.npy", "-k", "gaussian:2", "-k", "1,2;3,4", "--padding-mode", mode, "--stride", "2",
                        "-o", f"l-{mode}.npy", cwd=tmp_path)
        assert local.returncode == 0, local.stderr
        np.testing.assert_allclose(np.load(tmp_path / f"d-{mode}.npy"), np.load(tmp_path / f"l-{mode}.npy"),
                                   rtol=1e-5, atol=1e-6)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temporary file left


def test_cli_zarr_and_tiff(client: Any, tmp_path: Path) -> None:
    pytest.importorskip("zarr")
    tifffile = pytest.importorskip("tifffile")
    import zarr

    rgb = np.random.default_rng(6).integers(0, 256, (90, 70, 3), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "t.tif", rgb, tile=(32, 32))
    address = client.scheduler.address
    done = convcli("apply", "t.tif", "-k", "box:3", "--engine", "dask", "--scheduler", address, "--chunk", "32",
                   "-o", "t.zarr", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    local = convcli("apply", "t.tif", "-k", "box:3", "-o", "t.npy", cwd=tmp_path)  # the image path: replicate, /255
    assert local.returncode == 0, local.stderr
    np.testing.assert_allclose(zarr.open_array(str(tmp_path / "t.zarr"))[:], np.load(tmp_path / "t.npy"), atol=1e-6)
    # the Zarr result as an input (an array: zeros padding), and again over the same output folder
    for _ in range(2):
        again = convcli("apply", "t.zarr", "-k", "sobel-x", "--engine", "dask", "--scheduler", address, "-o", "u.zarr",
                        cwd=tmp_path)
        assert again.returncode == 0, again.stderr
    local = convcli("apply", "t.npy", "-k", "sobel-x", "-o", "u.npy", cwd=tmp_path)
    assert local.returncode == 0, local.stderr
    np.testing.assert_allclose(zarr.open_array(str(tmp_path / "u.zarr"))[:], np.load(tmp_path / "u.npy"), rtol=1e-5,
                               atol=1e-5)
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_cli_dask_refuses_what_it_cannot_write(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.ones((8, 8), np.float32))
    done = convcli("apply", "x.npy", "-k", "box:3", "--engine", "dask", "-o", "y.png", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and ".npy or .zarr" in done.stderr
    done = convcli("apply", "x.npy", "-k", "box:3", "--scheduler", "tcp://127.0.0.1:1", "-o", "y.npy", cwd=tmp_path)
    assert done.returncode == 2 and "--engine dask" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npy"]


def test_an_unreachable_scheduler_is_one_line(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.ones((8, 8), np.float32))
    done = subprocess.run([sys.executable, "-m", "convcli", "apply", "x.npy", "-k", "box:3", "--engine", "dask",
                           "--scheduler", "tcp://127.0.0.1:9", "-o", "y.npy"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"})
    assert done.returncode == 1, done.stderr
    assert "cannot reach the dask scheduler" in done.stderr and "Traceback" not in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npy"]


def test_a_missing_extra_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    real = importlib.import_module

    def without(name: str, *args: Any) -> Any:
        if name.split(".")[0] == "distributed":
            raise ImportError(name)
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", without)
    with pytest.raises(MissingExtraError, match=r'pip install "convcli\[dask\]"'):
        require("distributed", "dask")


def test_the_core_never_imports_the_extras() -> None:
    code = ("import sys, convcli, convcli.cli.app, convcli.commands.apply, convcli.io.inputs; "
            "bad = [m for m in ('dask', 'distributed', 'zarr', 'tifffile') if m in sys.modules]; "
            "assert not bad, bad")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


@pytest.mark.slow
def test_cli_starts_a_local_cluster(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.random.default_rng(7).random((1, 1, 64, 64), dtype=np.float32))
    done = convcli("apply", "x.npy", "-k", "box:5", "--engine", "dask", "--chunk", "20", "-o", "y.npy", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "local cluster" in done.stderr
    want = Convolution(np.ones((1, 1, 5, 5), np.float32) / 25, pad="same").forward(np.load(tmp_path / "x.npy"))
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), want, rtol=1e-5, atol=1e-6)


def test_cli_images_mapped_over_the_workers(client: Any, tmp_path: Path) -> None:
    """Several images, one task each: every good one written as the local engine writes it, a bad one told
    in one line without losing the others (exit 1); a folder is its images."""
    from PIL import Image

    rng = np.random.default_rng(7)
    photos = tmp_path / "photos"
    photos.mkdir()
    for name, size in (("a.png", (40, 30)), ("b.png", (25, 33))):
        Image.fromarray((rng.random((*size, 3)) * 255).astype(np.uint8)).save(photos / name)
    (photos / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not a picture")
    (photos / "notes.txt").write_text("not an image: a folder contributes its images only")
    address = client.scheduler.address
    (tmp_path / "out").mkdir()
    (tmp_path / "local").mkdir()
    done = convcli("apply", "photos", "-k", "sobel-x", "--engine", "dask", "--scheduler", address, "-o", "out/",
                   cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    lines = done.stderr.splitlines()
    assert lines[-1].startswith("convcli: error: 1 of 3 images failed (") and "broken.png" in lines[-1], lines
    assert "cannot read" in lines[-1] and lines[-1].endswith("the other 2 were written"), lines
    assert sum(line.startswith("convcli: wrote ") for line in lines) == 2, lines
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a-sobel-x.png", "b-sobel-x.png"]
    local = convcli("apply", "photos/a.png", "photos/b.png", "-k", "sobel-x", "-o", "local/", cwd=tmp_path)
    assert local.returncode == 0, local.stderr
    for name in ("a-sobel-x.png", "b-sobel-x.png"):
        assert (tmp_path / "out" / name).read_bytes() == (tmp_path / "local" / name).read_bytes(), name


def test_cli_images_need_a_folder_or_stem_in_the_name(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.zeros((1, 1, 8, 8), np.float32))
    np.save(tmp_path / "y.npy", np.zeros((1, 1, 8, 8), np.float32))
    done = convcli("apply", "x.npy", "y.npy", "-k", "box:3", "--engine", "dask", "-o", "one.png", cwd=tmp_path)
    assert done.returncode == 2 and "use -o FOLDER/ or a name with {stem}" in done.stderr, done.stderr
    assert len(done.stderr.splitlines()) == 1 and not (tmp_path / "one.png").exists()


@settings(max_examples=400, deadline=None)
@given(size=st.integers(1, 40), chunk=st.integers(1, 12), start=st.integers(-60, 40), length=st.integers(1, 90),
       mode=st.sampled_from(["zeros", "replicate", "reflect", "symmetric", "circular"]))
def test_a_window_axis_reads_each_index_from_its_chunk(size: int, chunk: int, start: int, length: int,
                                                     mode: str) -> None:
    from convcli.dask import axis_windows
    from convcli.engine.padding import source_index

    chunks = [min(chunk, size - c) for c in range(0, size, chunk)]
    bounds = np.concatenate([[0], np.cumsum(chunks)])
    before = -start  # the window of output block 0:1 starts at input index `start`
    (window,) = axis_windows(size, chunks, [(0, 1)], 1, length, before, mode)
    want = source_index(np.arange(start, start + length), size, mode)
    got = np.full(length, -1)
    for j, (lo, hi, runs) in window.pieces.items():
        piece = np.arange(bounds[j], bounds[j + 1])[lo:hi]  # the chunk's indices the window reads
        assert 0 <= lo < hi <= chunks[j]
        for run in runs:
            assert np.all(got[run.window()] == -1)  # each position placed once
            got[run.window()] = piece[run.piece(lo)]  # (broadcast for a replicated edge)
    np.testing.assert_array_equal(got, want)
    assert window.fill == bool(np.any(want < 0))


def test_8_bit_samples_stay_integers_and_a_box_sums_exactly(client: Any) -> None:
    """An 8-bit image's windows keep its samples, so a box runs as exact running sums on every
    block, as the local engine runs it: the two agree bit for bit."""
    x = np.random.default_rng(6).integers(0, 256, (1, 3, 70, 53), dtype=np.uint8)
    for mode in ("zeros", "reflect", "constant:9"):
        layer = Convolution(np.full((3, 1, 7, 7), 1 / (49 * 255), np.float32), None, groups=3, pad="same",
                            padding_mode=mode)
        got = client.compute(apply(da.from_array(x, chunks=(1, 3, 16, 16)), layer)).result()
        np.testing.assert_array_equal(got, layer.forward(x))
        assert layer.choice is not None and layer.choice.algorithm == "running-sum"

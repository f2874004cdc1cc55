"""convcli.commands.stream and convcli.io.mapped: .npy in and out a band of rows at a time, equal to the in-memory path.

The streamed path must give the in-memory result to float rounding (the same engine
computes the same rows; bands only regroup the BLAS products), for every padding mode,
stride, dilation and even kernel, with many bands; keep its traced memory a few bands
whatever the array's size; and keep apply's all-or-nothing rule (a failure in the middle
of a band leaves the old target and no temporary file).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import convcli.commands.stream as stream
from convcli.commands.apply import OutputOptions, apply_command
from convcli.commands.common import LayerJob
from convcli.engine.layer import Convolution
from convcli.errors import InputFileError, OutputFileError
from convcli.io.inputs import load_input
from convcli.io.mapped import create_npy, map_npy
from convcli.kernels.bank import LayerOptions

MODES = ["zeros", "constant:0.25", "replicate", "reflect", "symmetric", "circular"]


@pytest.fixture
def small_bands(monkeypatch: pytest.MonkeyPatch) -> None:
    """A few KiB a band, so a small array takes many bands (each band's edges are where bugs hide)."""
    monkeypatch.setattr(stream, "STREAM_BAND_BYTES", 4096)


def run(tmp_path: Path, x: np.ndarray, kernels: list[str], stream_it: bool, **layer: object) -> np.ndarray:
    source = tmp_path / "x.npy"
    if not source.exists():
        np.save(source, x)
    out = tmp_path / f"y-{stream_it}.npy"
    apply_command([str(source)], kernels, LayerJob(LayerOptions(**layer)),  # type: ignore[arg-type]
                  OutputOptions(output=str(out), stream=stream_it))
    return np.load(out)


@pytest.mark.parametrize("mode", MODES)
def test_streamed_equals_in_memory_for_every_padding_mode(tmp_path: Path, small_bands: None, mode: str) -> None:
    x = np.random.default_rng(0).standard_normal((2, 3, 37, 29)).astype(np.float32)
    streamed = run(tmp_path, x, ["gaussian:1.5", "sobel-x"], True, padding_mode=mode)
    in_memory = run(tmp_path, x, ["gaussian:1.5", "sobel-x"], False, padding_mode=mode)
    assert streamed.shape == in_memory.shape == (2, 6, 37, 29)
    np.testing.assert_allclose(streamed, in_memory, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("layer", "kernel"),
    [
        ({"stride": (2, 3), "pad": "same"}, "box:3"),
        ({"dilation": (2, 1), "pad": "same", "padding_mode": "reflect"}, "1,2;4,8"),  # even, asymmetric 'same'
        ({"pad": "valid", "padding_mode": "circular"}, "1,2,4,8;16,32,64,128"),
        ({"pad": (7, 0, 1, 9), "padding_mode": "circular", "stride": 2}, "laplacian"),  # padding past the image
    ],
)
def test_streamed_geometry(tmp_path: Path, small_bands: None, layer: dict, kernel: str) -> None:
    x = (10 * np.arange(23)[:, None] + np.arange(17)[None, :]).astype(np.float64)  # values that say where they are
    streamed = run(tmp_path, x, [kernel], True, **layer)
    in_memory = run(tmp_path, x, [kernel], False, **layer)
    assert streamed.dtype == in_memory.dtype == np.float64
    np.testing.assert_allclose(streamed, in_memory, rtol=1e-12, atol=1e-12)


def test_streamed_combine(tmp_path: Path, small_bands: None) -> None:
    x = np.random.default_rng(1).random((1, 2, 40, 33), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    outs = []
    for stream_it in (True, False):
        out = tmp_path / f"c-{stream_it}.npy"
        apply_command([str(tmp_path / "x.npy")], ["Sobel;Sobel:90"], LayerJob(), OutputOptions(output=str(out),
                      stream=stream_it), combine="maxabs")
        outs.append(np.load(out))
    assert outs[0].shape == (1, 2, 40, 33)
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-5, atol=1e-6)


def test_the_input_is_mapped_read_only(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.ones((4, 5), np.float32))
    item = load_input(str(tmp_path / "x.npy"), stream=True)
    assert item.mapped is not None and item.shape == (1, 1, 4, 5)
    assert not item.samples.flags.writeable
    assert load_input(str(tmp_path / "x.npy")).mapped is None  # small: read whole unless told


def test_mapped_input_counts_non_finite_values(tmp_path: Path) -> None:
    x = np.zeros((300, 300), np.float32)
    x[5, 7] = np.nan
    x[299, 0] = np.inf
    np.save(tmp_path / "x.npy", x)
    item = load_input(str(tmp_path / "x.npy"), stream=True)
    assert item.notes == ["2 non-finite values (NaN or inf); they spread through the convolution"]


def test_mapped_input_refuses_truncated_and_pickled_files(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.ones((64, 64), np.float32))
    data = (tmp_path / "x.npy").read_bytes()
    (tmp_path / "cut.npy").write_bytes(data[:-100])
    with pytest.raises(InputFileError, match="truncated"):
        map_npy(str(tmp_path / "cut.npy"))
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}] * 3, dtype=object), allow_pickle=True)
    with pytest.raises(InputFileError, match="pickle"):
        load_input(str(tmp_path / "obj.npy"), stream=True)


def test_create_npy_lays_out_a_file_numpy_reads(tmp_path: Path) -> None:
    path = tmp_path / "o.npy"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        out = create_npy(fd, (2, 3, 4, 5), np.dtype(np.float32), str(path))
        out.array[...] = np.arange(120, dtype=np.float32).reshape(2, 3, 4, 5)
        out.release()  # dropped pages keep what was written
        out.flush()
        out.close()
    finally:
        os.close(fd)
    np.testing.assert_array_equal(np.load(path), np.arange(120, dtype=np.float32).reshape(2, 3, 4, 5))


def test_streamed_memory_is_a_few_bands(tmp_path: Path) -> None:
    """A 16 MiB array in and a 16 MiB result out, traced allocations a small part of either."""
    h = w = 2048
    path = tmp_path / "x.npy"
    x = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(1, 1, h, w))
    x[...] = np.random.default_rng(0).random((h, w), dtype=np.float32)
    x.flush()
    del x
    item = load_input(str(path), stream=True)
    layer = Convolution(np.ones((1, 1, 5, 5), np.float32) / 25, pad="same", padding_mode="circular",
                        tile_bytes=1 << 18)  # the engine's buffers: a few of these per thread
    fd = os.open(tmp_path / "y.npy", os.O_RDWR | os.O_CREAT, 0o644)
    tracemalloc.start()
    try:
        stream.stream_npy(layer, item.samples, item.mapped, fd, "y.npy", (1, 1, h, w), np.dtype(np.float32),
                          band_bytes=1 << 20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        os.close(fd)
    assert peak < 8 * 2**20, f"traced peak {peak / 2**20:.1f} MiB"
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), layer.forward(np.load(path)), rtol=1e-5, atol=1e-6)


def test_a_failure_mid_stream_leaves_the_old_target(tmp_path: Path, small_bands: None,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    np.save(tmp_path / "x.npy", np.ones((1, 1, 200, 20), np.float32))  # 4 bands
    (tmp_path / "y.npy").write_bytes(b"the previous result")
    calls = []
    original = Convolution.forward_rows

    def failing(self: Convolution, x: np.ndarray, row0: int, row1: int) -> np.ndarray:
        calls.append(row0)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return original(self, x, row0, row1)

    monkeypatch.setattr(Convolution, "forward_rows", failing)
    with pytest.raises(OutputFileError, match="(?i)no space"):
        apply_command([str(tmp_path / "x.npy")], ["box:3"], LayerJob(),
                      OutputOptions(output=str(tmp_path / "y.npy"), stream=True))
    assert (tmp_path / "y.npy").read_bytes() == b"the previous result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npy", "y.npy"]


def test_cli_stream_and_in_memory_agree(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.random.default_rng(2).random((3, 40, 30), dtype=np.float32))
    for flag in ("--stream", "--in-memory"):
        done = subprocess.run([sys.executable, "-m", "convcli", "apply", "x.npy", "-k", "gaussian:2", "--padding-mode",
                               "reflect", flag, "-o", f"y{flag}.npy"], cwd=tmp_path, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr
        assert "wrote 'y" in done.stderr and "1×3×40×30" in done.stderr
    np.testing.assert_allclose(np.load(tmp_path / "y--stream.npy"), np.load(tmp_path / "y--in-memory.npy"),
                               rtol=1e-5, atol=1e-6)

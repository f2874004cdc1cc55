"""SIGINT, SIGTERM and SIGHUP at known points of a real run: nothing half-written survives, nothing is replaced.

Each test starts the installed ``convcli`` with ``CONVCLI_TEST_PAUSE=POINT``
(:mod:`convcli.hooks`): at that point the process writes a marker file and waits; the
test sends the signal, removes the marker, and checks the exit status (128 + the signal's
number), the one stderr line, and that the folder is exactly as it was: existing outputs
byte-identical, no new output, no temporary file.  The points cover a large single job
(reading, outputs reserved, computing, part-way through writing its 16 MiB output, the
output written beside its target, the commit) and a batch of 20 images (part-way through
the batch, the commit), and grad's several outputs.  Synchronisation is by the marker
file: no fixed sleeps.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from process_helpers import CONVCLI, SAMPLES, environment, error_line, snapshot

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="POSIX signals")

SIGNALS = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]


def interrupt(args: list[str], cwd: Path, point: str, signum: int) -> subprocess.CompletedProcess[bytes]:
    """Run convcli until it pauses at ``point``, send ``signum``, let it go on, and wait for it to end."""
    marker = cwd.parent / f"{cwd.name}.paused"
    env = environment(CONVCLI_TEST_PAUSE=point, CONVCLI_TEST_PAUSE_FILE=str(marker))
    process = subprocess.Popen([*CONVCLI, *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                out, err = process.communicate(timeout=10)
                pytest.fail(f"convcli never reached {point!r} (exit {process.returncode}): {err.decode()}")
            time.sleep(0.005)
        process.send_signal(signum)
        time.sleep(0.05)  # let the handler run while the process still waits (a raised exception ends the wait)
        marker.unlink(missing_ok=True)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
        marker.unlink(missing_ok=True)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def assert_interrupted(result: subprocess.CompletedProcess[bytes], signum: int) -> None:
    assert result.returncode == 128 + signum, (result.returncode, result.stderr)
    line = error_line(result.stderr)
    assert f"interrupted ({signal.Signals(signum).name}); no file was written or replaced" in line, line


@pytest.fixture
def single(tmp_path: Path) -> Path:
    """A 2048×2048 float32 input (16 MiB) and an existing output it would replace."""
    folder = tmp_path / "work"
    folder.mkdir()
    np.save(folder / "big.npy", np.random.default_rng(0).random((1, 1, 2048, 2048), dtype=np.float32))
    (folder / "out.npy").write_bytes(b"the previous result")
    return folder


@pytest.mark.parametrize("point", ["read", "reserved", "compute", "writing", "staged:1", "committing"])
@pytest.mark.parametrize("signum", SIGNALS, ids=[s.name for s in SIGNALS])
def test_a_large_single_job(single: Path, point: str, signum: int) -> None:
    before = snapshot(single)
    result = interrupt(["apply", "big.npy", "-k", "box:5", "-o", "out.npy"], single, point, signum)
    assert_interrupted(result, signum)
    assert snapshot(single) == before


@pytest.fixture
def batch(tmp_path: Path) -> Path:
    """20 small images into out/, half of whose outputs exist already."""
    folder = tmp_path / "work"
    (folder / "in").mkdir(parents=True)
    (folder / "out").mkdir()
    for i in range(20):
        shutil.copy(SAMPLES / "gray.png", folder / "in" / f"g{i:02}.png")
        if i % 2:
            (folder / "out" / f"g{i:02}-box-3.png").write_bytes(b"OLD %d" % i)
    return folder


@pytest.mark.parametrize("point", ["staged:7", "staged:20", "committing"])
@pytest.mark.parametrize("signum", SIGNALS, ids=[s.name for s in SIGNALS])
def test_a_batch(batch: Path, point: str, signum: int) -> None:
    before = snapshot(batch)
    inputs = sorted(str(p.relative_to(batch)) for p in (batch / "in").iterdir())
    result = interrupt(["apply", *inputs, "-k", "box:3", "-o", "out/"], batch, point, signum)
    assert_interrupted(result, signum)
    assert snapshot(batch) == before


@pytest.mark.parametrize("signum", SIGNALS, ids=[s.name for s in SIGNALS])
def test_grads_several_outputs(tmp_path: Path, signum: int) -> None:
    folder = tmp_path / "work"
    folder.mkdir()
    np.save(folder / "x.npy", np.random.default_rng(1).random((1, 2, 64, 64)))
    (folder / "dx.npy").write_bytes(b"old dx")
    before = snapshot(folder)
    args = ["grad", "x.npy", "-k", "sobel-x", "--dout", "ones", "-o", "g.npz", "--dx", "dx.npy", "--dw", "dk.npy"]
    result = interrupt(args, folder, "staged:2", signum)
    assert_interrupted(result, signum)
    assert snapshot(folder) == before


def test_the_same_runs_complete_without_a_signal(single: Path, batch: Path) -> None:
    """The points are real: unpaused, each run replaces and creates what it should."""
    env = environment()
    done = subprocess.run([*CONVCLI, "apply", "big.npy", "-k", "box:5", "-o", "out.npy", "-q"], cwd=single, env=env,
                          capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert np.load(single / "out.npy").shape == (1, 1, 2048, 2048)
    inputs = sorted(str(p.relative_to(batch)) for p in (batch / "in").iterdir())
    done = subprocess.run([*CONVCLI, "apply", *inputs, "-k", "box:3", "-o", "out/", "-q"], cwd=batch, env=env,
                          capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert len(list((batch / "out").iterdir())) == 20
    assert not [p for p in (batch / "out").iterdir() if p.read_bytes().startswith(b"OLD")]
    assert not [p for p in batch.rglob(".*")]  # no temporary or kept-aside file


def test_sigint_is_one_line_not_silence(single: Path) -> None:
    """Typer turns KeyboardInterrupt into a silent exit 130; convcli says what happened, in one line."""
    result = interrupt(["apply", "big.npy", "-k", "box:5", "-o", "new.npy"], single, "compute", signal.SIGINT)
    assert result.returncode == 130
    assert error_line(result.stderr) == "convcli: error: interrupted (SIGINT); no file was written or replaced"
    assert not (single / "new.npy").exists()

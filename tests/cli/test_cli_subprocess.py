"""The installed ``convcli`` command in real processes: shell pipelines, broken pipes, terminals, exit codes.

CliRunner swaps ``sys.stdout`` for a buffer; only a real process shows what a shell sees: binary
``-o -`` through a pipe, a reader that leaves early (``| head -c 10``), a terminal on stdout,
and the interpreter's own last words (a traceback, or "Exception ignored ... BrokenPipeError").
"""

from __future__ import annotations

import io
import os
import pty
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage as ndi  # type: ignore[import-untyped]

from convcli import Convolution
from convcli.io.display import to_display
from convcli.io.images import encode_png, load_image
from convcli.kernels.builtins import SOBEL_X, gaussian_kernel

SAMPLES = Path(__file__).resolve().parents[2] / "sample_images"
BASH = shutil.which("bash")


def convcli_command() -> list[str]:
    """The console script of this interpreter's environment, else the one on PATH, else ``python -m convcli``."""
    here = shutil.which("convcli", path=os.path.dirname(sys.executable)) or shutil.which("convcli")
    return [here] if here else [sys.executable, "-m", "convcli"]


CONVCLI = convcli_command()


def run(args: list[str], cwd: Path, **kwargs: object) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*CONVCLI, *args], cwd=cwd, capture_output=True, timeout=60, **kwargs)  # type: ignore


def bash(script: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    if BASH is None:
        pytest.skip("bash is not installed")
    environment = dict(os.environ if env is None else env)
    environment["CONVCLI"] = shlex.join(CONVCLI)
    return subprocess.run([BASH, "-c", "set -o pipefail\n" + script], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=60)


def depthwise(x: np.ndarray, kernel: np.ndarray, padding_mode: str = "zeros") -> np.ndarray:
    """The library's own layer: ``kernel`` on each channel of x (N, C, H, W), 'same' padding (zeros by default)."""
    channels = x.shape[1]
    weights = np.tile(kernel.astype(x.dtype), (channels, 1, 1, 1))
    return Convolution(weights, None, pad="same", groups=channels, padding_mode=padding_mode).forward(x)


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    shutil.copy(SAMPLES / "photo.png", tmp_path / "photo.png")
    return tmp_path / "photo.png"


def test_the_command_is_installed_and_runs(tmp_path: Path) -> None:
    result = run(["--version"], tmp_path)
    assert result.returncode == 0 and result.stdout.decode().startswith("convcli ")
    module = subprocess.run([sys.executable, "-m", "convcli", "--version"], capture_output=True, timeout=60)
    assert module.returncode == 0 and module.stdout == result.stdout


def test_shell_pipeline_equals_two_library_steps(tmp_path: Path, photo: Path) -> None:
    result = bash('$CONVCLI apply photo.png -k gaussian:2 -o - | $CONVCLI apply - -k sobel-x -o edges.png', tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""  # data went through the pipe; messages to stderr only
    assert result.stderr.count("convcli: wrote") == 2

    x = load_image(photo.read_bytes(), "photo.png").data  # (1, 3, H, W) float32 in [0, 1]
    # the photo is an image (replicate padding); the .npy coming through the pipe an array (zeros)
    edges = depthwise(depthwise(x, gaussian_kernel(2.0), "replicate"), SOBEL_X)
    expected = np.asarray(Image.open(io.BytesIO(encode_png(to_display(edges[0], "offset")))))
    with Image.open(tmp_path / "edges.png") as im:
        assert im.mode == "RGB" and im.size == (256, 192)
        got = np.asarray(im)
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1
    assert np.mean(got == expected) > 0.999

    # and the raw floats, against scipy (per channel: the image replicated, the array zero-padded)
    result = bash("$CONVCLI apply photo.png -k gaussian:2 -o - -q | $CONVCLI apply - -k sobel-x -o edges.npy -q",
                  tmp_path)
    assert result.returncode == 0 and result.stderr == ""
    raw = np.load(tmp_path / "edges.npy")
    assert raw.shape == (1, 3, 192, 256) and raw.dtype == np.float32
    reference = [ndi.correlate(ndi.correlate(c.astype(np.float64), gaussian_kernel(2.0), mode="nearest"), SOBEL_X,
                               mode="constant") for c in x[0]]
    np.testing.assert_allclose(raw[0], np.stack(reference), atol=1e-5)


def test_pipeline_failure_is_seen_by_pipefail(tmp_path: Path, photo: Path) -> None:
    result = bash('$CONVCLI apply photo.png -k gausian:2 -o - | $CONVCLI apply - -k sobel-x -o edges.png', tmp_path)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "did you mean 'gaussian'" in result.stderr
    assert not (tmp_path / "edges.png").exists()


@pytest.mark.parametrize("unbuffered", [False, True], ids=["buffered", "PYTHONUNBUFFERED"])
def test_reader_leaving_early_ends_as_sigpipe_quietly(tmp_path: Path, photo: Path, unbuffered: bool) -> None:
    # 590 kB of .npy into a 64 kB pipe whose reader takes 10 bytes and leaves
    env = dict(os.environ)
    env.pop("PYTHONUNBUFFERED", None)
    if unbuffered:  # stdout.buffer is then a raw FileIO, whose writes can be partial
        env["PYTHONUNBUFFERED"] = "1"
    result = bash('$CONVCLI apply photo.png -k gaussian:2 -o - 2>err.txt | head -c 10 >head.bin; '
                  'echo "${PIPESTATUS[0]}" >rc.txt', tmp_path, env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "head.bin").read_bytes() == b"\x93NUMPY\x01\x00v\x00"
    err = (tmp_path / "err.txt").read_text()
    assert err == "", err  # no message, no traceback, no "Exception ignored"
    # the output was cut short: convcli ends as a process that SIGPIPE ended (the shell's 128 + 13)
    assert int((tmp_path / "rc.txt").read_text()) == 141, err


def test_binary_output_refused_on_a_terminal(tmp_path: Path, photo: Path) -> None:
    leader, follower = pty.openpty()
    try:
        result = subprocess.run([*CONVCLI, "apply", "photo.png", "-k", "box:3", "-o", "-"], cwd=tmp_path,
                                stdout=follower, stderr=subprocess.PIPE, timeout=60)
    finally:
        os.close(follower)
        os.close(leader)
    assert result.returncode == 4
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and "not to a terminal" in lines[0], lines


def test_errors_in_a_real_process(tmp_path: Path, photo: Path) -> None:
    (tmp_path / "out.png").write_bytes(b"keep me")
    for args, code, fragment in [
        (["apply", "nope.png", "-k", "box:3", "-o", "out.png"], 3, "not found"),
        (["apply", "photo.png", "-k", "box:3", "--stride", "0", "-o", "out.png"], 2, "stride must be >= 1"),
        (["apply", "photo.png", "-k", "box:300", "--pad", "valid", "-o", "out.png"], 2, "larger than the padded"),
        (["apply", "photo.png", "-k", "box:3", "-o", "photo.png"], 4, "refusing to overwrite input"),
        (["apply", "photo.png", "-k", "box:3", "--bogus", "-o", "out.png"], 2, "--bogus"),
        (["kernels", "sobelx"], 2, "did you mean 'sobel-x'"),
        (["info", "nope.npy"], 3, "not found"),
    ]:
        result = run(args, tmp_path)
        err = result.stderr.decode()
        assert result.returncode == code, (args, err)
        assert len(err.splitlines()) == 1 and err.startswith("convcli: error: ") and fragment in err, (args, err)
        assert result.stdout == b""
    assert (tmp_path / "out.png").read_bytes() == b"keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png", "photo.png"]


def test_stdin_png_through_a_real_pipe(tmp_path: Path, photo: Path) -> None:
    result = bash('cat photo.png | $CONVCLI apply - -k box:3 -o piped.npy -q && '
                  '$CONVCLI apply photo.png -k box:3 -o direct.npy -q', tmp_path)
    assert result.returncode == 0, result.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "piped.npy"), np.load(tmp_path / "direct.npy"))


def test_stdout_is_data_only(tmp_path: Path, photo: Path) -> None:
    result = run(["apply", "photo.png", "-k", "box:3", "-o", "o.png"], tmp_path)
    assert result.returncode == 0 and result.stdout == b""
    assert result.stderr.decode().startswith("convcli: wrote 'o.png'")
    assert b"\x1b[" not in result.stderr  # no progress bar or colour: stderr is no terminal
    result = run(["apply", "photo.png", "-k", "box:3", "-o", "-", "--format", "png", "-q"], tmp_path)
    assert result.returncode == 0 and result.stderr == b""
    with Image.open(io.BytesIO(result.stdout)) as im:
        assert im.size == (256, 192)
    result = run(["kernels", "box:2"], tmp_path)
    assert result.stdout.decode().splitlines() == ["box-2: 2×2, sum 1", "0.25  0.25", "0.25  0.25"]


def _run_with_terminal_stderr(args: list[str], cwd: Path) -> tuple[int, bytes, bytes]:
    """Run convcli with stderr on a pseudo-terminal; return (exit code, stdout, what the terminal got)."""
    import threading

    leader, follower = pty.openpty()
    received = bytearray()

    def drain() -> None:
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the follower side closed
                return
            if not chunk:
                return
            received.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        process = subprocess.run([*CONVCLI, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=follower, timeout=60)
    finally:
        os.close(follower)
        reader.join(timeout=10)
        os.close(leader)
    return process.returncode, process.stdout, bytes(received)


def test_progress_bar_only_on_a_terminal_and_only_on_stderr(tmp_path: Path, photo: Path) -> None:
    shutil.copy(SAMPLES / "gray.png", tmp_path / "gray.png")
    args = ["apply", "photo.png", "gray.png", "-k", "box:3", "-o", "o.npy"]
    code, out, terminal = _run_with_terminal_stderr(args, tmp_path)
    assert code == 0 and out == b""
    assert b"filtering" in terminal and b"convcli: wrote 'o-photo.npy'" in terminal
    code, out, terminal = _run_with_terminal_stderr([*args, "-q"], tmp_path)
    assert code == 0 and out == b"" and terminal == b""


def test_progress_bar_for_one_large_input(tmp_path: Path) -> None:
    """One input of 4.2 M values is one batch, but large: its tiles drive the bar."""
    from convcli.commands.apply import PROGRESS_MIN_VALUES

    side = int(PROGRESS_MIN_VALUES**0.5) + 50
    np.save(tmp_path / "big.npy", np.zeros((side, side), np.float32))
    code, out, terminal = _run_with_terminal_stderr(["apply", "big.npy", "-k", "box:3", "-o", "o.npy"], tmp_path)
    assert code == 0 and out == b""
    assert b"filtering" in terminal and b"convcli: wrote 'o.npy'" in terminal
    np.save(tmp_path / "small.npy", np.zeros((64, 64), np.float32))
    code, out, terminal = _run_with_terminal_stderr(["apply", "small.npy", "-k", "box:3", "-o", "s.npy"], tmp_path)
    assert code == 0 and b"filtering" not in terminal


def test_grad_npz_piped_into_info_and_no_warnings_on_stderr(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((1, 1, 6, 7)).astype(np.float32))
    np.save(tmp_path / "w.npy", np.array([[np.inf, -np.inf], [1.0, 2.0]]))  # info's mean: inf - inf
    result = bash('$CONVCLI grad x.npy -k box:3 --dout ones -o - -q | $CONVCLI info - && $CONVCLI info w.npy',
                  tmp_path, env={**os.environ, "PYTHONWARNINGS": "always"})
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no RuntimeWarning lines, whatever PYTHONWARNINGS says
    assert "-:dx" in result.stdout and "-:dK" in result.stdout and "nan" in result.stdout

"""The README's examples, run as written: every bash and python block, in order, in one folder."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.M | re.S)


def _blocks(after_heading: str, before_heading: str = "") -> list[tuple[str, str]]:
    start = README.index(after_heading)
    stop = README.index(before_heading) if before_heading else len(README)
    return [(m.group(1), m.group(2)) for m in BLOCK.finditer(README, start, stop)]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    # the convcli of this interpreter's environment, first on PATH
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    return env


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("convcli", path=_env()["PATH"]) is None:
        pytest.fail("the convcli command is not installed in this environment (pip install -e .)")
    folder = tmp_path_factory.mktemp("readme")
    shutil.copytree(ROOT / "sample_images", folder / "sample_images")
    return folder


def _run(kind: str, code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    if kind == "bash":
        argv = ["bash", "-euo", "pipefail", "-c", code]
    elif kind == "python":
        argv = [sys.executable, "-c", code]
    else:
        raise AssertionError(f"README block of unknown kind {kind!r}")
    return subprocess.run(argv, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=120)


def test_quick_start_has_two_commands() -> None:
    kind, code = _blocks("## Quick start")[0]
    lines = [line for line in code.splitlines() if line.strip()]
    assert kind == "bash" and len(lines) == 2
    assert "convcli apply sample_images/" in lines[0] and lines[0].endswith(".png")
    assert "[test]" in lines[1] and "pytest" in lines[1]


def test_quick_start_run_command(workdir: Path) -> None:
    """The part of Quick start command (1) after the install, as written."""
    first = _blocks("## Quick start")[0][1].splitlines()[0]
    run = first.split("&&", 1)[1].strip()
    result = _run("bash", run, workdir)
    assert result.returncode == 0, result.stderr
    written = workdir / run.split("-o", 1)[1].split()[0]
    with Image.open(written) as image:
        assert image.size == (256, 192) and image.mode == "RGB"
        pixels = np.asarray(image, dtype=np.float64)
    assert pixels.std() > 1  # a picture, not a flat field


def test_examples(workdir: Path) -> None:
    examples = [(k, c) for k, c in _blocks("## Examples", "## Scaling out") if k in ("bash", "python")]
    assert len(examples) >= 8
    for kind, code in examples:
        result = _run(kind, code, workdir)
        assert result.returncode == 0, f"README block failed:\n{code}\nstderr:\n{result.stderr}"
        assert "Traceback" not in result.stderr
    expected = [
        "blurred.png", "sharper.png", "edges.png", "smooth.png", "sharp.png", "edge-strength.png",
        "gradients.npy", "gradient-0.png", "gradient-1.png", "half.png", "soft.png", "lap-dilated.png", "lap16.png",
        "boxed-alpha.png", "boxed-photo.png", "grads.npz", "dx.png", "dk.npy", "g.npz",
        "photo-sobel-x.png", "photo-box-5.png", "photo-sobel-r.png", "photo-sobel-g.png", "photo-sobel-b.png",
        "bank-montage.png", "kirsch.png", "log.png", "grad-montage.png", "photo-bank.png",
    ]
    missing = [name for name in expected if not (workdir / name).is_file()]
    assert not missing, missing
    assert np.load(workdir / "gradients.npy").shape == (1, 2, 192, 256)
    with Image.open(workdir / "half.png") as image:
        assert image.size == (128, 96)
    with Image.open(workdir / "lap16.png") as image:
        assert image.mode.startswith("I")  # 16-bit gray
    assert np.load(workdir / "dk.npy").shape == (3, 3)
    with Image.open(workdir / "photo-box-5.png") as image:
        assert image.mode == "RGB"  # one kernel's maps: the channels of one filtered picture
    with Image.open(workdir / "photo-sobel-g.png") as image:
        assert image.mode == "L"  # {channel}: one file per map
    for name in ("bank-montage.png", "kirsch.png", "log.png", "grad-montage.png"):
        with Image.open(workdir / name) as made, Image.open(ROOT / "docs" / "gallery" / name) as shown:
            assert made.size == shown.size, name  # the gallery's commands, as the README shows them
    with np.load(workdir / "g.npz") as grads:
        # dout = y: the gradient of ½‖y‖² with respect to the bias is y summed per map
        x, w = np.load(workdir / "x.npy"), np.load(workdir / "w.npy")
        from convcli import conv2d

        y = conv2d(x, w, pad="same")
        np.testing.assert_allclose(grads["db"], y.sum(axis=(0, 2, 3)), rtol=1e-10)
        assert grads["dx"].shape == x.shape and grads["dW"].shape == w.shape
    # the looking-inside section: shape's JSON is the layers' geometry, the other outputs exist
    import json

    lenet = json.loads((workdir / "lenet.json").read_text())
    assert [layer["output_shape"] for layer in lenet["layers"]] == [[1, 6, 24, 24], [1, 6, 12, 12]]
    assert lenet["total"]["receptive_field"] == [6, 6]
    for name in ("y.npy", "strided-grads.npz", "soft-gray.png"):
        assert (workdir / name).is_file(), name


def test_scaling_out(workdir: Path) -> None:
    """The Scaling out section: the streamed example always; the Dask ones where the dask extra is installed."""
    blocks = [(k, c) for k, c in _blocks("## Scaling out", "## Development") if k in ("bash", "python")]
    assert len(blocks) == 3
    have_dask = all(importlib.util.find_spec(m) is not None for m in ("dask", "distributed"))
    for number, (kind, code) in enumerate(blocks):
        if number > 0 and not have_dask:
            pytest.skip('the dask extra is not installed (pip install -e ".[dask]")')
        result = _run(kind, code, workdir)
        assert result.returncode == 0, f"README block failed:\n{code}\nstderr:\n{result.stderr}"
        assert "Traceback" not in result.stderr
    assert np.load(workdir / "field-soft.npy").shape == (1, 1, 600, 800)
    np.testing.assert_allclose(np.load(workdir / "field-dask.npy"),
                               _local(workdir, "field.npy", "reflect"), rtol=1e-5, atol=1e-6)


def _local(workdir: Path, name: str, mode: str) -> np.ndarray:
    from convcli import Convolution
    from convcli.kernels.spec import parse_kernel

    w = parse_kernel("gaussian:2").weights.astype(np.float32)
    return Convolution(w[None, None], pad="same", padding_mode=mode).forward(np.load(workdir / name))

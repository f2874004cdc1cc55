"""``convcli grad`` through Typer's CliRunner (and one real shell pipeline): results, every option, --check, errors.

The gradients are compared with :class:`convcli.Convolution` built here by hand from the same options
(``Convolution.backward`` is checked against a naive loop in test_layer.py), and the gradient for the
user's 2-D kernels, ``dK``, with this file's own float64 central differences of ``L = sum(y * dout)``.
"""

from __future__ import annotations

import io
import os
import shlex
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

import cli_helpers
import numpy as np
import pytest
import typer
from cli_helpers import assert_one_line_error, runner
from PIL import Image
from typer.testing import Result

from convcli import Convolution
from convcli.cli import app

SAMPLES = Path(__file__).resolve().parents[2] / "sample_images"
K1 = np.array([[1.0, 2, 4], [8, 16, 32], [64, 128, 256]]) / 100  # distinct taps: a flip shows
K2 = np.array([[0.5, -1.0, 3.0], [2.0, 0.25, -4.0], [1.5, 6.0, 0.75]])
K3 = np.array([[-2.0, 1.0, 0.3], [0.7, 5.0, -1.1], [2.2, -0.4, 1.9]])



# ---------------------------------------------------------------- helpers


def run(*args: Any, input: Optional[bytes] = None) -> Result:
    """``convcli grad ARGS...``."""
    return cli_helpers.run("grad", *args, input=input)


def ok(*args: Any, input: Optional[bytes] = None) -> Result:
    return cli_helpers.ok("grad", *args, input=input)


def randn(shape: tuple[int, ...], seed: int, dtype: Any = np.float64) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def load_npz(path: Any) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def image_floats(path: Path, mode: Optional[str] = None) -> np.ndarray:
    """An 8-bit PNG as convcli loads it: (1, C, H, W) float32 k/255."""
    with Image.open(path) as im:
        array = np.asarray(im if mode is None else im.convert(mode)).astype(np.float32) / np.float32(255)
    array = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
    return array[None]


def direct(x: np.ndarray, w: np.ndarray, dout: np.ndarray, b: Optional[np.ndarray] = None, **kw: Any) -> dict[str, Any]:
    """dx, dW, db of Convolution built by hand (zero bias when none)."""
    layer = Convolution(w, np.zeros(w.shape[0], w.dtype) if b is None else b, **kw)
    y = layer.forward(x)
    dx = layer.backward(dout)
    return {"dx": dx, "dW": layer.dW, "db": layer.db, "y": y}


def forward(x: np.ndarray, w: np.ndarray, b: Optional[np.ndarray] = None, **kw: Any) -> np.ndarray:
    return Convolution(w, b, **kw).forward(x)


def depthwise(kernels: Sequence[np.ndarray], channels: int, flip: bool = False, normalize: bool = False) -> np.ndarray:
    """The layer weights for 2-D kernels, by hand: filter c*M + m is kernel m (flipped, then divided by its sum)."""
    prepared = []
    for k in kernels:
        k = np.array(k, dtype=np.float64)
        k = k[::-1, ::-1] if flip else k
        prepared.append(k / k.sum() if normalize and abs(k.sum()) > 1e-12 else k)
    return np.tile(np.stack(prepared), (channels, 1, 1))[:, None]


def numeric_dK(x: np.ndarray, kernels: np.ndarray, dout: np.ndarray, flip: bool, normalize: bool,
               **kw: Any) -> np.ndarray:
    """Central differences (float64, eps 1e-5) of L = sum(y * dout) in each tap of each user kernel."""
    x64, dout64 = x.astype(np.float64), dout.astype(np.float64)
    c = x.shape[1]

    def loss(ks: np.ndarray) -> float:
        layer = Convolution(depthwise(ks, c, flip, normalize), None, groups=c, **kw)
        return float(np.sum(layer.forward(x64) * dout64))

    grad = np.zeros(kernels.shape)
    for idx in np.ndindex(*kernels.shape):
        plus, minus = kernels.copy(), kernels.copy()
        plus[idx] += 1e-5
        minus[idx] -= 1e-5
        grad[idx] = (loss(plus) - loss(minus)) / 2e-5
    return grad


def listing(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tmp_path as the working directory, with x.npy (1, 3, 8, 9) float32, w.npy (4, 3, 3, 3) and an RGB crop."""
    monkeypatch.chdir(tmp_path)
    np.save("x.npy", randn((1, 3, 8, 9), 0, np.float32))
    np.save("x64.npy", randn((2, 3, 7, 6), 1))
    np.save("w.npy", randn((4, 3, 3, 3), 2, np.float32))
    with Image.open(SAMPLES / "photo.png") as im:
        im.crop((72, 90, 90, 104)).save("rgb.png")  # 18×14, edges in every direction
    with Image.open(SAMPLES / "alpha.png") as im:
        im.crop((0, 0, 12, 10)).save("alpha.png")
    return tmp_path


# ---------------------------------------------------------------- results


def test_default_output_is_an_npz_beside_the_input(work: Path) -> None:
    result = ok("x.npy", "-k", "w.npy", "--dout", "randn:3")
    grads = load_npz(work / "x-grad.npz")
    assert sorted(grads) == ["dW", "db", "dx"]
    x, w = np.load("x.npy"), np.load("w.npy")
    want = direct(x, w, randn((1, 4, 8, 9), 3, np.float32), pad="same")
    for name in ("dx", "dW", "db"):
        assert grads[name].dtype == np.float32
        np.testing.assert_array_equal(grads[name], want[name])
    summary = result.stderr
    assert "x 1×3×8×9 -> y 1×4×8×9 (float32, padding zeros)" in summary  # an array: zero padding
    for name in ("dx", "dW", "db"):
        assert f"|{name}| {np.linalg.norm(want[name]):.6g}" in summary
    assert "ms" in summary and "wrote 'x-grad.npz'" in summary
    assert result.stdout == ""


@pytest.mark.parametrize(("spec", "make"), [
    ("ones", lambda shape: np.ones(shape)),
    ("randn", lambda shape: randn(shape, 0)),
    ("randn:0", lambda shape: randn(shape, 0)),
    ("randn:12", lambda shape: randn(shape, 12)),
])
def test_dout_generators(work: Path, spec: str, make: Any) -> None:
    ok("x64.npy", "-k", "w.npy", "--dout", spec, "--dtype", "float64", "-o", "g.npz")
    x, w = np.load("x64.npy"), np.load("w.npy").astype(np.float64)
    want = direct(x, w, make((2, 4, 7, 6)), pad="same")
    got = load_npz("g.npz")
    for name in ("dx", "dW", "db"):
        np.testing.assert_allclose(got[name], want[name], rtol=1e-12, atol=1e-12)


def test_dout_from_file_stdin_and_npz(work: Path) -> None:
    dout = randn((1, 4, 8, 9), 5, np.float32)
    np.save("d.npy", dout)
    np.savez("d.npz", y=dout)
    ok("x.npy", "-k", "w.npy", "--dout", "d.npy", "-o", "a.npz")
    ok("x.npy", "-k", "w.npy", "--dout", "-", "-o", "b.npz", input=(work / "d.npy").read_bytes())
    ok("x.npy", "-k", "w.npy", "--dout", "d.npz", "-o", "c.npz")
    want = direct(np.load("x.npy"), np.load("w.npy"), dout, pad="same")
    for out in ("a.npz", "b.npz", "c.npz"):
        got = load_npz(out)
        for name in ("dx", "dW", "db"):
            np.testing.assert_array_equal(got[name], want[name])


def test_input_from_stdin(work: Path) -> None:
    result = ok("-", "-k", "w.npy", "--dout", "ones", input=(work / "x.npy").read_bytes())
    assert "wrote 'stdin-grad.npz'" in result.stderr
    want = direct(np.load("x.npy"), np.load("w.npy"), np.ones((1, 4, 8, 9), np.float32), pad="same")
    np.testing.assert_array_equal(load_npz("stdin-grad.npz")["dx"], want["dx"])


def test_output_to_stdout_is_an_npz(work: Path) -> None:
    result = ok("x.npy", "-k", "w.npy", "--dout", "ones", "-o", "-")
    got = load_npz(io.BytesIO(result.stdout_bytes))
    assert sorted(got) == ["dW", "db", "dx"] and got["dx"].shape == (1, 3, 8, 9)
    assert "wrote standard output" in result.stderr
    assert not (work / "x-grad.npz").exists()


def test_separate_outputs(work: Path) -> None:
    result = ok("x.npy", "-k", "w.npy", "--dout", "randn:1", "--dx", "dx.npy", "--dw", "dw.npy", "--db", "db.npy")
    want = direct(np.load("x.npy"), np.load("w.npy"), randn((1, 4, 8, 9), 1, np.float32), pad="same")
    np.testing.assert_array_equal(np.load("dx.npy"), want["dx"])
    np.testing.assert_array_equal(np.load("dw.npy"), want["dW"])
    np.testing.assert_array_equal(np.load("db.npy"), want["db"])
    assert not (work / "x-grad.npz").exists()  # no npz unless -o is given too
    assert "wrote dW to 'dw.npy' (npy, 4×3×3×3, padding zeros)" in result.stderr
    ok("x.npy", "-k", "w.npy", "--dout", "randn:1", "--db", "-", "-o", "g.npz")
    assert (work / "g.npz").exists()
    streamed = ok("x.npy", "-k", "w.npy", "--dout", "randn:1", "--dx", "-").stdout_bytes
    np.testing.assert_array_equal(np.load(io.BytesIO(streamed)), want["dx"])


def test_png_outputs(work: Path) -> None:
    ok("rgb.png", "-k", "1,2,4;8,16,32;64,128,256", "-k", "sobel-x", "--dout", "randn", "--dx", "dx.png",
       "--dw", "dk.png")
    with Image.open("dx.png") as im:
        assert im.mode == "RGB" and im.size == (108, 84)  # 18×14, enlarged 6 times to reach 96 pixels
    with Image.open("dk.png") as im:  # dK of two 3×3 kernels (each tap 32×32 pixels), side by side, 1 pixel apart
        assert im.mode == "L" and im.size == (193, 96)
        pixels = np.asarray(im)
    assert pixels.min() == 0 and pixels.max() == 255  # minmax per map
    ok("x.npy", "-k", "w.npy", "--dout", "ones", "--dw", "dw.png", "--display", "offset")
    with Image.open("dw.png") as im:  # dW (4, 3, 3, 3): a 4×3 grid of 3×3 maps, each 96×96
        assert im.size == (290, 387)


# ---------------------------------------------------------------- dK: the gradient for the kernels as given


@pytest.mark.parametrize(("flags", "flip", "normalize"), [
    ([], False, False), (["--flip"], True, False), (["--normalize"], False, True),
    (["--flip", "--normalize"], True, True),
])
@pytest.mark.parametrize("kernels", [[K2], [K1, K2, K3]], ids=["one", "three"])
def test_dK_is_the_numerical_gradient_on_an_rgb_image(
    work: Path, flags: list[str], flip: bool, normalize: bool, kernels: list[np.ndarray]
) -> None:
    specs = []
    for i, k in enumerate(kernels):
        np.save(f"k{i}.npy", k)
        specs += ["-k", f"k{i}.npy"]
    ok("rgb.png", *specs, *flags, "--dtype", "float64", "--dout", "randn:4", "--padding-mode", "reflect",
       "-o", "g.npz", "--dw", "dk.npy")
    got = load_npz("g.npz")
    x = image_floats(work / "rgb.png")
    dout = randn((1, 3 * len(kernels), 14, 18), 4)
    want = numeric_dK(x, np.stack(kernels), dout, flip, normalize, pad="same", padding_mode="reflect")
    want = want[0] if len(kernels) == 1 else want
    assert got["dK"].shape == want.shape == np.load("dk.npy").shape
    np.testing.assert_allclose(got["dK"], want, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(np.load("dk.npy"), got["dK"])
    # the layer's dW is for the weights it runs: (C*M, 1, 3, 3)
    layer_w = depthwise(kernels, 3, flip, normalize)
    np.testing.assert_allclose(got["dW"], direct(x.astype(np.float64), layer_w, dout, pad="same", groups=3,
                                                 padding_mode="reflect")["dW"], rtol=1e-10, atol=1e-10)


def test_dK_of_builtin_and_inline_kernels_float32(work: Path) -> None:
    ok("rgb.png", "-k", "gaussian:1:3", "-k", "emboss", "-k", "3x3: 1,2,4,8,16,32,64,128,256", "--normalize",
       "--flip", "--dout", "randn:2", "-o", "g.npz")
    got = load_npz("g.npz")
    from convcli.kernels.builtins import EMBOSS, gaussian_kernel

    kernels = np.stack([gaussian_kernel(1.0, 3), EMBOSS, 2.0 ** np.arange(9).reshape(3, 3)])
    want = numeric_dK(image_floats(work / "rgb.png"), kernels, randn((1, 9, 14, 18), 2, np.float32), True, True,
                      pad="same", padding_mode="replicate")  # an image: replicate padding
    assert got["dK"].dtype == np.float32
    np.testing.assert_allclose(got["dK"], want, rtol=2e-4, atol=2e-4 * float(np.abs(want).max()))


# ---------------------------------------------------------------- every option describes the same layer as apply


W6 = randn((6, 1, 3, 3), 7)
OPTIONS = [
    pytest.param([], {"pad": "same"}, id="defaults"),
    pytest.param(["--stride", "2"], {"stride": 2, "pad": "same"}, id="stride"),
    pytest.param(["--stride", "2,1"], {"stride": (2, 1), "pad": "same"}, id="stride-pair"),
    pytest.param(["--pad", "valid"], {"pad": "valid"}, id="pad-valid"),
    pytest.param(["--pad", "1,2"], {"pad": (1, 2)}, id="pad-pair"),
    pytest.param(["--pad", "2,0,1,3"], {"pad": (2, 0, 1, 3)}, id="pad-four"),
    pytest.param(["--dilation", "2"], {"dilation": 2, "pad": "same"}, id="dilation"),
    pytest.param(["--dilation", "1,2", "--stride", "2"], {"dilation": (1, 2), "stride": 2, "pad": "same"},
                 id="dilation-stride"),
    pytest.param(["--padding-mode", "reflect"], {"padding_mode": "reflect", "pad": "same"}, id="reflect"),
    pytest.param(["--padding-mode", "replicate"], {"padding_mode": "replicate", "pad": "same"}, id="replicate"),
    pytest.param(["--padding-mode", "circular", "--pad", "2"], {"padding_mode": "circular", "pad": 2}, id="circular"),
    pytest.param(["--bias", "0.5,-1,2,3"], {"pad": "same", "b": np.array([0.5, -1, 2, 3])}, id="bias"),
    pytest.param(["--flip"], {"pad": "same", "flip": True}, id="flip"),
    pytest.param(["--normalize"], {"pad": "same", "normalize": True}, id="normalize"),
    pytest.param(["--groups", "3"], {"pad": "same", "groups": 3, "w": W6}, id="groups"),
]


@pytest.mark.parametrize(("flags", "kw"), OPTIONS)
def test_every_option_matches_the_layer_and_apply(work: Path, flags: list[str], kw: dict[str, Any]) -> None:
    """grad with --dout y (apply's output) is the gradient of ½‖y‖², for the layer built by hand."""
    kw = dict(kw)
    w = kw.pop("w", np.load("w.npy").astype(np.float64))
    np.save("wk.npy", w)
    b = kw.pop("b", None)
    if kw.pop("flip", False):
        w = w[..., ::-1, ::-1].copy()
    if kw.pop("normalize", False):
        w = w / w.sum(axis=(1, 2, 3), keepdims=True)
    x = np.load("x64.npy")
    y = runner.invoke(app, ["apply", "x64.npy", "-k", "wk.npy", *flags, "-o", "-"]).stdout_bytes
    (work / "y.npy").write_bytes(y)
    ok("x64.npy", "-k", "wk.npy", *flags, "--dout", "y.npy", "-o", "g.npz", "--check", "--check-samples", "10")
    want = direct(x, w, forward(x, w, b, **kw), b, **kw)  # dout = y
    np.testing.assert_allclose(np.load("y.npy"), want["y"], rtol=1e-12, atol=1e-12)
    got = load_npz("g.npz")
    for name in ("dx", "dW", "db"):
        np.testing.assert_allclose(got[name], want[name], rtol=1e-10, atol=1e-10)


def test_dtype_option(work: Path) -> None:
    ok("x64.npy", "-k", "w.npy", "--dout", "ones", "-o", "a.npz")  # float64 array: float64
    ok("x64.npy", "-k", "w.npy", "--dout", "ones", "--dtype", "float32", "-o", "b.npz")
    ok("rgb.png", "-k", "box:3", "--dout", "ones", "-o", "c.npz")  # image: float32
    ok("rgb.png", "-k", "box:3", "--dout", "ones", "--dtype", "float64", "-o", "d.npz")
    for name, dtype in (("a", np.float64), ("b", np.float32), ("c", np.float32), ("d", np.float64)):
        got = load_npz(f"{name}.npz")
        assert {v.dtype for v in got.values()} == {np.dtype(dtype)}, name


def test_gray_and_keep_alpha(work: Path) -> None:
    ok("rgb.png", "-k", "1,2,4;8,16,32;64,128,256", "--gray", "--dout", "ones", "-o", "g.npz")
    got = load_npz("g.npz")
    assert got["dx"].shape == (1, 1, 14, 18) and got["dW"].shape == (1, 1, 3, 3) and got["dK"].shape == (3, 3)
    np.testing.assert_allclose(got["dK"], got["dW"][0, 0])
    ok("alpha.png", "-k", "box:3", "--dout", "ones", "-o", "a.npz")
    ok("alpha.png", "-k", "box:3", "--keep-alpha", "--dout", "ones", "-o", "b.npz")
    assert load_npz("a.npz")["dx"].shape[1] + 1 == load_npz("b.npz")["dx"].shape[1]
    x = image_floats(work / "alpha.png", "RGBA")
    want = direct(x, depthwise([np.ones((3, 3)) / 9], 4).astype(np.float32), np.ones((1, 4, 10, 12), np.float32),
                  pad="same", groups=4, padding_mode="replicate")  # an image: replicate padding
    np.testing.assert_allclose(load_npz("b.npz")["dx"], want["dx"], rtol=1e-6)


# ---------------------------------------------------------------- --check


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_check_passes(work: Path, dtype: str) -> None:
    result = ok("rgb.png", "-k", "sobel-x", "-k", "1,2,4;8,16,32;64,128,256", "--flip", "--dtype", dtype,
                "--dout", "randn:3", "--check", "--check-samples", "25", "--eps", "1e-4", "--seed", "2", "-o", "g.npz")
    table = result.stderr
    assert "Gradient check" in table and f"tolerance {'0.001' if dtype == 'float32' else '1e-06'}" in table
    for name in ("dx", "dW", "db", "dK"):
        assert any(line.startswith(f"│ {name} ") and "ok" in line for line in table.splitlines()), (name, table)
    assert "FAIL" not in table and "eps 0.0001, seed 2" in table
    assert (work / "g.npz").exists()


def test_check_with_quiet_prints_nothing(work: Path) -> None:
    result = ok("x.npy", "-k", "w.npy", "--dout", "ones", "--check", "-q")
    assert result.stderr == "" and result.stdout == ""
    assert (work / "x-grad.npz").exists()


@pytest.mark.parametrize("quiet", [False, True])
def test_check_fails_on_a_wrong_backward(work: Path, monkeypatch: pytest.MonkeyPatch, quiet: bool) -> None:
    """A layer whose backward returns a wrong dW (flipped, as with a mixed-up correlation) fails the check."""
    from convcli.engine import layer as layer_module

    real = layer_module.Convolution.backward

    def wrong(self: Convolution, dout: np.ndarray) -> np.ndarray:
        dx = real(self, dout)
        assert self.dW is not None
        self.dW = self.dW[..., ::-1, ::-1].copy()
        return dx

    monkeypatch.setattr(layer_module.Convolution, "backward", wrong)
    before = listing(work)
    result = run("x.npy", "-k", "w.npy", "--dout", "randn", "--check", "-o", "g.npz", *(["-q"] if quiet else []))
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[-1].startswith("convcli: error: gradient check failed: dW max rel error")
    assert "> tolerance 0.001; nothing written" in lines[-1]
    assert "dx max" not in lines[-1] and "db max" not in lines[-1]
    assert "Traceback" not in result.stderr and result.stdout == ""
    if quiet:
        assert len(lines) == 1
    else:
        assert any(line.startswith("│ dW ") and "FAIL" in line for line in lines)
    assert listing(work) == before  # nothing written


def test_check_fails_with_a_tight_tolerance(work: Path) -> None:
    """float32 gradients are not float64-exact: --tol 1e-12 fails them (a check that can fail)."""
    result = run("x.npy", "-k", "w.npy", "--dout", "randn", "--check", "--tol", "1e-12", "-q")
    assert result.exit_code == 1 and "gradient check failed" in result.stderr


def test_check_on_a_big_image_takes_well_under_a_second_or_so(work: Path) -> None:
    np.save("big.npy", np.random.default_rng(0).random((1, 3, 256, 256), dtype=np.float32))
    result = ok("big.npy", "-k", "w.npy", "--dout", "randn", "--check", "-o", "g.npz")
    seconds = float(result.stderr.split("seed 0, ")[1].split(" s")[0])
    assert seconds < 5.0, result.stderr  # about 0.1 s; the whole-image version took ~8 s


# ---------------------------------------------------------------- the pipeline, through a real shell


def shell(command: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    convcli = f"{shlex.quote(sys.executable)} -m convcli"
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(["bash", "-c", "set -o pipefail; " + command.replace("convcli", convcli)],
                          cwd=cwd, capture_output=True, env=env, timeout=60)


def test_pipeline_computes_the_gradient_of_half_the_squared_norm(work: Path) -> None:
    done = shell("convcli apply x.npy -k w.npy -o - | convcli grad x.npy -k w.npy --dout - -o g.npz", work)
    assert done.returncode == 0, done.stderr
    x, w = np.load("x.npy"), np.load("w.npy")
    want = direct(x, w, forward(x, w, pad="same"), pad="same")
    got = load_npz("g.npz")
    for name in ("dx", "dW", "db"):
        np.testing.assert_allclose(got[name], want[name], rtol=1e-6, atol=1e-5)
    # ½‖y‖² in float64 by hand: its gradient in W is sum over outputs of y * patch
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    np.testing.assert_allclose(got["dW"], direct(x64, w64, forward(x64, w64, pad="same"), pad="same")["dW"],
                               rtol=1e-4)


def test_pipeline_with_options_and_stdout(work: Path) -> None:
    opts = "-k sobel-x -k box:3 --stride 2 --padding-mode reflect --flip"
    done = shell(f"convcli apply rgb.png {opts} -o - | convcli grad rgb.png {opts} --dout - --check -o - > g.npz",
                 work)
    assert done.returncode == 0, done.stderr
    assert sorted(load_npz("g.npz")) == ["dK", "dW", "db", "dx"]


def test_pipeline_failure_is_reported(work: Path) -> None:
    """A dout of another layer's shape: grad fails with one line naming the expected shape; pipefail sees it."""
    done = shell("convcli apply x.npy -k w.npy --stride 2 -o - | convcli grad x.npy -k w.npy --dout - -o g.npz", work)
    assert done.returncode == 2
    lines = done.stderr.decode().splitlines()
    assert lines[-1] == ("convcli: error: --dout 'standard input' has shape (1, 4, 4, 5); expected the forward "
                         "output's shape (1, 4, 8, 9) (N, FN, OH, OW) for this input, kernel and options")
    assert not (work / "g.npz").exists() and "Traceback" not in done.stderr.decode()


# ---------------------------------------------------------------- errors


ERRORS = [
    ("dout shape", ["x.npy", "-k", "w.npy", "--dout", "d_wrong.npy"], 2,
     ["has shape (1, 4, 8, 8)", "expected the forward output's shape (1, 4, 8, 9) (N, FN, OH, OW)"]),
    ("dout shape stride", ["x.npy", "-k", "w.npy", "--stride", "2", "--dout", "d_wrong.npy"], 2,
     ["expected the forward output's shape (1, 4, 4, 5)"]),
    ("missing dout", ["x.npy", "-k", "w.npy"], 2, ["Missing option '--dout'"]),
    ("missing kernel", ["x.npy", "--dout", "ones"], 2, ["Missing option '--kernel'"]),
    ("both stdin", ["-", "-k", "w.npy", "--dout", "-"], 2, ["INPUT '-' and --dout -", "standard input", "once only"]),
    ("stdin kernel and dout", ["x.npy", "-k", "-", "--dout", "-"], 2, ["--dout - and -k -", "once only"]),
    ("bad generator", ["x.npy", "-k", "w.npy", "--dout", "randn:x"], 2,
     ["--dout 'randn:x' is not a generator", "randn:SEED", "non-negative integer"]),
    ("bad generator ones", ["x.npy", "-k", "w.npy", "--dout", "ones:3"], 2, ["--dout 'ones:3' is not a generator"]),
    ("missing dout file", ["x.npy", "-k", "w.npy", "--dout", "nope.npy"], 3,
     ["--dout file 'nope.npy' not found", "(1, 4, 8, 9)", "ones, randn"]),
    ("dout not npy", ["x.npy", "-k", "w.npy", "--dout", "rgb.png"], 3, [".npy"]),
    ("dout strings", ["x.npy", "-k", "w.npy", "--dout", "d_str.npy"], 2, ["expected real numbers"]),
    ("dout nan", ["x.npy", "-k", "w.npy", "--dout", "d_nan.npy"], 2, ["non-finite"]),
    ("output npy", ["x.npy", "-k", "w.npy", "--dout", "ones", "-o", "g.npy"], 4, ["-o 'g.npy'", ".npz"]),
    ("db png", ["x.npy", "-k", "w.npy", "--dout", "ones", "--db", "db.png"], 4, ["--db 'db.png': expected a .npy"]),
    ("dx txt", ["x.npy", "-k", "w.npy", "--dout", "ones", "--dx", "dx.txt"], 4, ["--dx 'dx.txt'", ".npy or .png"]),
    ("two stdouts", ["x.npy", "-k", "w.npy", "--dout", "ones", "-o", "-", "--dx", "-"], 4, ["only one output"]),
    ("same output twice", ["x.npy", "-k", "w.npy", "--dout", "ones", "--dx", "a.npy", "--db", "a.npy"], 4,
     ["two outputs would be written to 'a.npy'"]),
    ("output is input", ["x.npy", "-k", "w.npy", "--dout", "ones", "--dx", "x.npy"], 4,
     ["refusing to overwrite input 'x.npy'"]),
    ("output is dout", ["x.npy", "-k", "w.npy", "--dout", "d_ok.npy", "--dx", "d_ok.npy"], 4,
     ["refusing to overwrite input 'd_ok.npy'"]),
    ("output is kernel", ["x.npy", "-k", "w.npy", "--dout", "ones", "--dw", "w.npy"], 4,
     ["refusing to overwrite input 'w.npy'"]),
    ("output dir", ["x.npy", "-k", "w.npy", "--dout", "ones", "-o", "nodir/g.npz"], 4, ["does not exist"]),
    ("eps", ["x.npy", "-k", "w.npy", "--dout", "ones", "--check", "--eps", "0"], 2, ["--eps must be a finite"]),
    ("tol", ["x.npy", "-k", "w.npy", "--dout", "ones", "--check", "--tol", "nan"], 2, ["--tol must be a finite"]),
    ("samples", ["x.npy", "-k", "w.npy", "--dout", "ones", "--check", "--check-samples", "0"], 2,
     ["--check-samples"]),
    ("seed", ["x.npy", "-k", "w.npy", "--dout", "ones", "--check", "--seed", "-1"], 2, ["--seed"]),
    ("channels", ["rgb.png", "-k", "w2.npy", "--dout", "ones"], 2, ["the input has 3"]),
    ("stride", ["x.npy", "-k", "w.npy", "--dout", "ones", "--stride", "0"], 2, ["stride must be >= 1"]),
    ("groups 2-D", ["x.npy", "-k", "box:3", "--dout", "ones", "--groups", "2"], 2, ["groups=2"]),
    ("display", ["x.npy", "-k", "w.npy", "--dout", "ones", "--display", "log"], 2, ["--display"]),
    ("missing input", ["nope.png", "-k", "w.npy", "--dout", "ones"], 3, ["nope.png"]),
    ("stdin bias and dout", ["x.npy", "-k", "w.npy", "--dout", "-", "--bias", "-"], 2,
     ["--dout - and --bias -", "once only"]),
    ("missing kernel file", ["x.npy", "-k", "nope.npy", "--dout", "ones"], 3, ["kernel file 'nope.npy' not found"]),
    ("output larger than memory", ["x.npy", "-k", "w.npy", "--dout", "ones", "--pad", "1000000"], 1,
     ["output of shape (1, 4, 2000006, 2000007) (float32) needs", "TiB", "use less padding"]),
]


@pytest.mark.parametrize(("args", "code", "fragments"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_errors_are_one_line_and_leave_no_output(
    work: Path, args: Sequence[str], code: int, fragments: Sequence[str]
) -> None:
    np.save("d_wrong.npy", np.zeros((1, 4, 8, 8), np.float32))
    np.save("d_ok.npy", np.zeros((1, 4, 8, 9), np.float32))
    np.save("d_str.npy", np.array(["a"] * 288).reshape(1, 4, 8, 9))
    np.save("d_nan.npy", np.full((1, 4, 8, 9), np.nan, np.float32))
    np.save("w2.npy", np.ones((2, 2, 3, 3)))
    before = listing(work)
    result = run(*args, input=b"")
    assert_one_line_error(result, code, *fragments)
    assert listing(work) == before


# ---------------------------------------------------------------- help


def test_help_documents_every_option_and_the_dK_mapping() -> None:
    result = runner.invoke(app, ["grad", "--help"], env={"COLUMNS": "200"}, terminal_width=200)
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    command = typer.main.get_command(app).commands["grad"]  # type: ignore[attr-defined]
    for param in command.params:
        for opt in param.opts:
            if opt.startswith("-"):
                assert opt in text, opt
        assert param.help, param.name  # every option says what it does
    for phrase in ("dK[m] = Σ_c dW[c·M + m, 0]", "filter c·M + m is kernel m on channel c", "rotated back 180°",
                   "--flip", "w = k / sum(k)", "(g − ⟨g, w⟩) / sum(k)", "(FH, FW) for one, (M, FH, FW) for M",
                   "--dw writes dK", "ones, randn, randn:SEED", "½‖y‖²", "writing nothing"):
        assert phrase in text, phrase


def test_bias_from_standard_input(work: Path) -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.array([0.5, -1.0, 2.0, 3.0], np.float32))
    result = ok("x.npy", "-k", "w.npy", "--dout", "ones", "--bias", "-", "-o", "g.npz", input=buffer.getvalue())
    assert "wrote 'g.npz'" in result.stderr
    with np.load("g.npz") as g:
        assert g["db"].shape == (4,)


@pytest.mark.parametrize("name", ["apply", "grad"])
def test_help_examples_are_one_per_line_like_apply(name: str) -> None:
    result = runner.invoke(app, [name, "--help"], env={"COLUMNS": "200"}, terminal_width=200)
    lines = result.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "Examples:")
    indent = len(lines[start]) - len(lines[start].lstrip())
    examples = [line for line in lines[start + 1 :] if line.strip().startswith("convcli ")]
    assert len(examples) >= 2
    for line in examples:  # each example a paragraph of its own, indented as the heading (not a code block)
        assert len(line) - len(line.lstrip()) == indent, repr(line)
    assert lines[start + 1].strip() == "" and lines[start + 2].strip().startswith("convcli "), lines[start : start + 3]

"""ImageMagick as a test oracle: find the real ``convert``, run it on arrays, read the kernels it builds.

Only ImageMagick 6 at 16 bits (Q16) is used: the semantics convcli follows (kernel sizes,
``-morphology Convolve``, virtual pixels) are that build's.  Every helper skips the calling
test (``pytest.skip``) where ``convert`` is missing, is a stand-in that is not ImageMagick
(one that only turns a PNG into a picture for display), or is another version.
``.ci/run`` installs ImageMagick 6.9 with apt when it runs as root.

* :func:`convert` - the path of a usable ``convert``, or a skip.
* :func:`filtered` - run ``convert`` on a 16-bit gray (H, W) or colour (3, H, W) array and
  read the 16-bit result back (exact: PGM/PPM in and out, no colour management).
* :func:`show_kernels` - the kernels ``-define morphology:showKernel=1`` prints for a kernel
  string (values at 17 digits, holes as NaN, size and origin).
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Optional

import numpy as np
import pytest


@functools.lru_cache(maxsize=1)
def _find() -> tuple[Optional[str], str]:
    """(path, why not) of ImageMagick 6 Q16's convert: /usr/bin/convert first, then the PATH."""
    candidates = [c for c in ("/usr/bin/convert", shutil.which("convert")) if c]
    why = "ImageMagick's convert is not installed"
    for candidate in dict.fromkeys(candidates):
        try:
            version = subprocess.run([candidate, "-version"], capture_output=True, text=True, timeout=30).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        match = re.search(r"^Version: ImageMagick (\d+)\.\S+ (Q\d+)", version, re.M)
        if match is None:
            why = f"{candidate} is not ImageMagick (a stand-in?)"
            continue
        if match.group(1) != "6" or match.group(2) != "Q16":
            why = f"{candidate} is ImageMagick {match.group(1)} {match.group(2)}; these tests follow 6 Q16"
            continue
        return candidate, ""
    return None, why


def convert() -> str:
    """The path of ImageMagick 6 Q16's convert; skips the test when there is none."""
    path, why = _find()
    if path is None:
        pytest.skip(why)
    return path


def _write_pnm(path: Path, array: np.ndarray) -> None:
    data = np.asarray(array)
    if data.ndim == 3:
        header, pixels = b"P6", np.moveaxis(data, 0, -1)
    else:
        header, pixels = b"P5", data
    h, w = pixels.shape[:2]
    path.write_bytes(header + b"\n%d %d\n65535\n" % (w, h) + pixels.astype(">u2").tobytes())


def _read_pnm(path: Path) -> np.ndarray:
    data = path.read_bytes()
    match = re.match(rb"(P5|P6)\s+(\d+)\s+(\d+)\s+(\d+)\s", data)
    assert match is not None, data[:20]
    w, h, maxval = int(match.group(2)), int(match.group(3)), int(match.group(4))
    assert maxval == 65535, maxval
    channels = 3 if match.group(1) == b"P6" else 1
    values = np.frombuffer(data[match.end():match.end() + w * h * channels * 2], dtype=">u2").astype(np.int64)
    return values.reshape(h, w) if channels == 1 else np.moveaxis(values.reshape(h, w, 3), -1, 0)


def run(*args: str) -> subprocess.CompletedProcess[str]:
    """``convert ARGS``, checked; its stderr kept (showKernel writes there)."""
    result = subprocess.run([convert(), *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result


def filtered(array: np.ndarray, *args: str) -> np.ndarray:
    """``convert IN ARGS OUT`` on a 16-bit array: gray (H, W) or colour (3, H, W), values 0..65535.

    Returns
    -------
    ndarray of int64, the input's shape
        ImageMagick's 16-bit result.
    """
    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder) / "in.pnm", Path(folder) / "out.pnm"
        _write_pnm(source, array)
        kind = "ppm" if np.ndim(array) == 3 else "pgm"  # named, or a two-level result would come back as PBM
        run(str(source), *args, "-depth", "16", f"{kind}:{target}")
        return _read_pnm(target)


def show_kernels(spec: str, scale: Optional[str] = None) -> list[tuple[np.ndarray, int, int]]:
    """The kernels ImageMagick builds for ``spec`` (after ``-define convolve:scale=SCALE`` when given).

    Returns
    -------
    list of (values, x, y)
        values (H, W) float64 at 17 significant digits, NaN for a hole; the origin x, y.
    """
    args = ["-precision", "17", "xc:", "-define", "morphology:showKernel=1"]
    if scale is not None:
        args += ["-define", f"convolve:scale={scale}"]
    printed = run(*args, "-morphology", "Convolve", spec, "null:").stderr
    kernels = []
    for block in re.split(r"(?m)^Kernel", printed)[1:]:
        size = re.search(r"of size (\d+)x(\d+)([+-]\d+)([+-]\d+)", block)
        assert size is not None, block
        w, h, x, y = (int(v) for v in size.groups())
        rows = re.findall(r"(?m)^\s*\d+:(.*)$", block)
        values = np.array([[float(v) for v in row.split()] for row in rows], dtype=np.float64)
        assert values.shape == (h, w), (values.shape, h, w)
        kernels.append((values, x, y))
    return kernels


def refused(spec: str) -> bool:
    """Whether ImageMagick refuses the kernel string ``spec`` (``-morphology Convolve`` fails)."""
    result = subprocess.run([convert(), "xc:", "-morphology", "Convolve", spec, "null:"], capture_output=True,
                            text=True, timeout=60)
    return result.returncode != 0

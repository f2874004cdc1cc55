"""The README's gallery: docs/gallery/make_gallery.sh regenerates the committed pictures.

The script runs into a temporary folder and each picture is compared with the committed
one loosely, not byte for byte: the PNG encoder's bytes and the default font's
rasterisation (Pillow and FreeType versions) may differ between machines while the
picture is the same.  Same size, a mean difference under 1 level, and under 1% of the
pixels off by more than 8 levels: a changed layout, colour map, range or map fails it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
GALLERY = ROOT / "docs" / "gallery"
PICTURES = ["bank-montage.png", "kirsch.png", "log.png", "grad-montage.png"]


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB")).astype(np.int64)


def test_the_gallery_script_makes_the_committed_pictures(tmp_path: Path) -> None:
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    result = subprocess.run(["bash", str(GALLERY / "make_gallery.sh"), str(tmp_path)], env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(PICTURES)
    for name in PICTURES:
        made, committed = _pixels(tmp_path / name), _pixels(GALLERY / name)
        assert made.shape == committed.shape, name
        diff = np.abs(made - committed)
        assert diff.mean() < 1.0 and (diff > 8).mean() < 0.01, name


@pytest.mark.parametrize("name", PICTURES)
def test_the_readme_shows_each_picture(name: str) -> None:
    assert f"docs/gallery/{name}" in (ROOT / "README.md").read_text(encoding="utf-8")

"""The terminal preview: half blocks, two pixels per character."""

from __future__ import annotations

import io
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from rich.console import Console

from convcli.visual.preview import HALF_BLOCK, half_blocks, thumbnail


def test_thumbnail_fits_and_keeps_small_pictures() -> None:
    big = np.zeros((300, 600, 3), np.uint8)
    assert thumbnail(big, 64).shape == (32, 64, 3)
    small = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    np.testing.assert_array_equal(thumbnail(small), small)
    gray16 = np.full((4, 4, 1), 65535, np.uint16)
    assert thumbnail(gray16).tolist() == np.full((4, 4, 3), 255).tolist()


def test_half_blocks_colour_the_upper_and_lower_pixel() -> None:
    picture = np.zeros((3, 2, 3), np.uint8)
    picture[0, 0] = (255, 0, 0)
    picture[1, 0] = (0, 0, 255)
    text = half_blocks(picture)
    assert text.plain == HALF_BLOCK * 2 + "\n" + HALF_BLOCK * 2  # ceil(3 / 2) lines
    style = text.get_style_at_offset(Console(), 0)
    assert style.color is not None and style.color.triplet is not None
    assert tuple(style.color.triplet) == (255, 0, 0)
    assert style.bgcolor is not None and style.bgcolor.triplet is not None
    assert tuple(style.bgcolor.triplet) == (0, 0, 255)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_show_preview_prints_half_blocks_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    from convcli.cli.options import Reporter, show_preview

    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setenv("COLORTERM", "truecolor")
    written = [SimpleNamespace(thumbnail=np.full((4, 6, 3), 200, np.uint8))]
    report = Reporter(quiet=False)
    show_preview(written, report)
    assert terminal.getvalue().count(HALF_BLOCK) == 12  # 6 columns, 2 lines
    assert report.lines == {}  # no note: the picture was shown
    show_preview([SimpleNamespace(thumbnail=None)], report)
    assert any("nothing to show" in line for line in report.lines)

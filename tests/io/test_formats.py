"""convcli.io.formats: output formats by name and extension."""

from __future__ import annotations

import pytest

from convcli.io.formats import extension_for, format_for_path


@pytest.mark.parametrize(
    ("path", "fmt"),
    [
        ("out.png", "png"),
        ("OUT.PNG", "png"),
        ("a/b.tif", "tiff"),
        ("x.tiff", "tiff"),
        ("x.npy", "npy"),
        ("x.npz", "npz"),
        ("x.jpg", "jpeg"),
        ("x.JPEG", "jpeg"),
        ("x.webp", "webp"),
        ("x.gif", None),
        ("png", None),
        ("x.png.txt", None),
        ("-", None),
    ],
)
def test_format_for_path(path: str, fmt: str | None) -> None:
    assert format_for_path(path) == fmt
    if fmt is not None:
        assert format_for_path("x" + extension_for(fmt)) == fmt

"""pytest configuration: the shared helpers on sys.path, and the custom markers.

The helpers (reference.py, cli_helpers.py, grad_helpers.py, kernel_helpers.py) live in this
folder; test files in its subfolders (kernels/, io/, commands/, cli/, mirroring the package)
import them by name.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "slow: a long test (over ~15 s); deselected by default, run them with -m slow"
    )
    config.addinivalue_line(
        "markers", "fuzz: the long fuzz runs (100,000 inputs per target); deselected by default, run them with -m fuzz"
    )

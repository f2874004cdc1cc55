"""pytest configuration: custom markers only."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "slow: a long test (over ~15 s); it still runs by default, deselect with -m 'not slow'"
    )

"""Doctests of the modules that need an optional extra are skipped, saying so, where it is not installed."""

from __future__ import annotations

import importlib.util

import pytest

#: module whose docstring examples need an extra -> (the package it imports, the install command)
NEEDS_EXTRA = {"convcli.dask": ("dask", 'pip install -e ".[dask]"')}


def pytest_runtest_setup(item: pytest.Item) -> None:
    if not isinstance(item, pytest.DoctestItem):
        return
    for module, (package, install) in NEEDS_EXTRA.items():
        if item.name.startswith(module + ".") and importlib.util.find_spec(package) is None:
            pytest.skip(f"the {package} extra is not installed ({install})")

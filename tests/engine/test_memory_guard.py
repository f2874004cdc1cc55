"""convcli.engine.memory: results too large for memory are refused, or reported, with their shape and size."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import convcli.engine.memory as resources
from convcli.engine.memory import allocation_guard, check_result_size
from convcli.errors import MemoryLimitError


def test_check_result_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resources, "physical_memory", lambda: 2**30)
    check_result_size((1, 1, 16384, 16384), np.dtype(np.float32))  # exactly 1 GiB: fits on paper
    with pytest.raises(MemoryLimitError, match=r"output of shape \(1, 1, 16384, 16385\) \(float32\) needs 1 GiB, "
                                               r"more than this machine's 1 GiB of memory; use less padding"):
        check_result_size((1, 1, 16384, 16385), np.dtype(np.float32))
    monkeypatch.setattr(resources, "physical_memory", lambda: None)  # unknown: nothing refused up front
    check_result_size((10**6, 10**6, 10**6, 10**6), np.dtype(np.float64))


def test_physical_memory_is_known_here() -> None:
    memory = resources.physical_memory()
    assert memory is None or memory > 2**20


@pytest.mark.parametrize(("dtype", "advice"), [(np.float32, False), (np.float64, True)])
def test_allocation_failure_names_the_result(dtype: Any, advice: bool) -> None:
    with pytest.raises(MemoryLimitError) as info:
        with allocation_guard((2, 3, 1024, 1024), np.dtype(dtype)):
            raise MemoryError
    message = str(info.value)
    size = "24 MiB" if dtype == np.float32 else "48 MiB"
    shape = f"(2, 3, 1024, 1024) ({np.dtype(dtype)}, {size})"
    assert message.startswith(f"out of memory computing the output of shape {shape}")
    assert message.endswith(", or float32") == advice  # never advise float32 when it already is

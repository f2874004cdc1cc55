"""benchmarks/bench.py still runs: its quick workload table and its quick end-to-end table, as real processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def bench(*args: str) -> str:
    """stdout of ``python benchmarks/bench.py ARGS...`` run from the repository root; it must exit 0."""
    result = subprocess.run([sys.executable, "benchmarks/bench.py", *args], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_quick_workload_prints_its_table() -> None:
    out = bench("--quick", "--only", "a")
    assert "| workload | convcli ms |" in out
    row = next(line for line in out.splitlines() if line.startswith("| (a) "))
    assert float(row.split("|")[2]) > 0  # convcli's time, in ms


def test_quick_end_to_end_prints_its_stages_and_the_command() -> None:
    out = bench("--e2e", "--quick")
    assert "| stage | ms | share |" in out
    for stage in ("read file", "decode", "convolve (gaussian:1:5, depthwise)", "encode PNG", "sum of stages"):
        assert f"| {stage}" in out, stage
    assert "| PNG compress_level | encode ms | MB |" in out
    assert "-o out.png` wall time: median" in out

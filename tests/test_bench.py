"""benchmarks/bench.py still runs: its quick workload table and its quick photo jobs, as real processes."""

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


def test_quick_photo_jobs_print_their_table_and_stages() -> None:
    out = bench("--jobs", "--quick")
    assert "| job | convcli s | peer | peer s | ratio |" in out
    row = next(line for line in out.splitlines() if line.startswith("| random 31×31"))
    assert "not installed" in row or float(row.split("|")[2]) > 0
    assert "| stage | ms |" in out
    for stage in ("decode", "convolve", "map to pixels", "encode PNG"):
        assert f"| {stage}" in out, stage


def test_quick_stream_jobs_print_their_table() -> None:
    out = bench("--stream", "--quick")
    assert "| array | padding | path | s (median) | peak RSS MiB |" in out
    rows = [line for line in out.splitlines() if line.startswith("| 1×1×1024×1024")]
    assert {row.split("|")[3].strip() for row in rows} == {"stream", "in-memory"}
    assert all(float(row.split("|")[5]) > 0 for row in rows)  # peak RSS in MiB

"""Fuzzing convcli's readers with hypothesis: only a result or a ConvcliError may come out (``fuzz_targets.py``).

The normal suite runs a few hundred examples per target.  ``pytest -m fuzz tests/fuzz``
runs the long version: :data:`LONG_EXAMPLES` (100,000, or ``CONVCLI_FUZZ_EXAMPLES``)
per target; ``tests/fuzz/run_atheris.py`` is the coverage-guided alternative (see the
README's Development section).  Inputs are mutations of valid seeds (bytes replaced,
inserted, deleted, runs duplicated, cut short) and grammar-aware texts for kernel specs.
"""

from __future__ import annotations

import os
from pathlib import Path

import fuzz_targets
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SHORT_EXAMPLES = 300
LONG_EXAMPLES = int(os.environ.get("CONVCLI_FUZZ_EXAMPLES", "100000"))

_SEEDS = {name: fuzz_targets.seeds(name) for name in fuzz_targets.TARGETS}


@st.composite
def mutated(draw: st.DrawFn, target: str) -> bytes:
    """A seed of ``target`` with a few random edits, or (sometimes) bytes from nothing."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=512))
    data = bytearray(draw(st.sampled_from(_SEEDS[target])))
    for _ in range(draw(st.integers(1, 6))):
        if not data:
            data.extend(draw(st.binary(min_size=1, max_size=8)))
            continue
        at = draw(st.integers(0, len(data) - 1))
        edit = draw(st.integers(0, 5))
        if edit == 0:
            data[at] = draw(st.integers(0, 255))
        elif edit == 1:
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif edit == 2:
            del data[at : at + draw(st.integers(1, 16))]
        elif edit == 3:
            data[at : at + 4] = draw(st.sampled_from([b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x7f\xff\xff\xff",
                                                      b"\x00\x00\x01\x00", b"9999", b"(2L,", b"nan,"]))
        elif edit == 4:
            size = draw(st.integers(1, 64))
            data[at:at] = data[at : at + size] * draw(st.integers(1, 4))
        else:
            del data[at:]
    return bytes(data)


_SPEC_PIECES = st.sampled_from([
    "sobel-x", "gaussian", "box", "log", "unsharp", "identity", "laplacian", "emboss", "sharpen", "scharr-y",
    ":", "::", ";", ",", " ", "x", "X", "×", "-", "+", ".", "e", "E", "1", "0", "3", "7", "-1", "1e308", "1e-320",
    "nan", "inf", "9" * 30, "9" * 5000, "\x00", "\x1b[31m", "[bold]", "'", '"', "\n", "\t", "/", ".npy", ".json",
])


@st.composite
def kernel_specs(draw: st.DrawFn) -> bytes:
    """Texts built from the kernel language's pieces, or seeds mutated, or any text."""
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return draw(st.text(max_size=64)).encode("utf-8", "surrogatepass")
    if kind == 1:
        return draw(mutated("kernel_spec"))
    return "".join(draw(st.lists(_SPEC_PIECES, min_size=1, max_size=12))).encode()


def _strategy(target: str) -> st.SearchStrategy[bytes]:
    return kernel_specs() if target == "kernel_spec" else mutated(target)


def _check(target: str, examples: int, derandomize: bool) -> None:
    run = fuzz_targets.TARGETS[target]

    @settings(max_examples=examples, deadline=None, derandomize=derandomize, database=None,
              suppress_health_check=list(HealthCheck))
    @given(_strategy(target))
    def fuzz(data: bytes) -> None:
        run(data)

    fuzz()


@pytest.fixture
def empty_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Kernel specs may name files: they are looked up in an empty folder."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("target", list(fuzz_targets.TARGETS))
def test_seeds_are_valid(target: str) -> None:
    """Every seed is read without an error (the fuzzers start from working inputs)."""
    from convcli.errors import ConvcliError

    for seed in _SEEDS[target]:
        try:
            fuzz_targets.TARGETS[target](seed)
        except ConvcliError as error:  # pragma: no cover - a seed that fails is a broken seed
            pytest.fail(f"{target} seed {seed[:40]!r}: {error}")


@pytest.mark.parametrize("target", list(fuzz_targets.TARGETS))
def test_fuzz_short(target: str, empty_folder: Path) -> None:
    _check(target, SHORT_EXAMPLES, derandomize=True)


@pytest.mark.fuzz
@pytest.mark.parametrize("target", list(fuzz_targets.TARGETS))
def test_fuzz_long(target: str, empty_folder: Path) -> None:
    _check(target, LONG_EXAMPLES, derandomize=False)

"""Coverage-guided fuzzing of convcli's readers with atheris (libFuzzer), when atheris installs.

    pip install atheris
    python tests/fuzz/run_atheris.py TARGET [-runs=100000] [libFuzzer options...]

TARGET is one of ``kernel_spec``, ``kernel_file``, ``arrays``, ``image`` (or ``all``: each
in turn, in its own process).  The seeds of :mod:`fuzz_targets` are written to a fresh
corpus folder first; libFuzzer mutates them, guided by coverage of convcli and of the
Python parts of numpy and Pillow.  Any exception other than a ConvcliError stops the run
and writes the input that raised it (``crash-...``) into the current folder.  Run it in an
empty scratch folder: kernel specs may name files, and crash files land there.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _corpus(target: str) -> str:
    import fuzz_targets

    folder = Path(tempfile.mkdtemp(prefix=f"convcli-fuzz-{target}-"))
    for i, seed in enumerate(fuzz_targets.seeds(target)):
        (folder / f"seed-{i:03}").write_bytes(seed)
    return str(folder)


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    target, options = argv[1], argv[2:]
    if target == "all":
        import fuzz_targets

        codes = [subprocess.call([sys.executable, __file__, name, *options]) for name in fuzz_targets.TARGETS]
        return max(codes)
    try:
        import atheris
    except ImportError:
        print("atheris is not installed (pip install atheris)", file=sys.stderr)
        return 2
    with atheris.instrument_imports(include=["convcli", "numpy.lib", "PIL"]):
        import fuzz_targets
    if target not in fuzz_targets.TARGETS:
        print(f"unknown target {target!r}; expected one of {', '.join(fuzz_targets.TARGETS)} or all", file=sys.stderr)
        return 2
    run = fuzz_targets.TARGETS[target]
    os.environ.setdefault("CONVCLI_FIFO_WAIT", "0")
    if not any(option.startswith("-runs=") for option in options):
        options.append("-runs=100000")
    atheris.Setup([argv[0], *options, _corpus(target)], run)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

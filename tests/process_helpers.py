"""Helpers of the tests that run the installed ``convcli`` as a real process: locate it, run it, see what it changed.

A folder's :func:`snapshot` records every entry (kind, mode, owner, bytes or link target or
device number), so a test can say "no new file, no replaced file, every file byte-identical"
as ``snapshot(folder) == before``.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Optional, Union

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_images"
BASH = shutil.which("bash")
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
NOBODY = 65534

#: Every process gets this much time; a hang fails the test instead of the suite.
TIMEOUT = 60


def convcli_command() -> list[str]:
    """The console script of this interpreter's environment, else the one on PATH, else ``python -m convcli``."""
    here = shutil.which("convcli", path=os.path.dirname(sys.executable)) or shutil.which("convcli")
    return [here] if here else [sys.executable, "-m", "convcli"]


CONVCLI = convcli_command()


def environment(**extra: str) -> dict[str, str]:
    """The environment of a run: this one, FIFOs waited for briefly, no test pause unless asked."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVCLI_TEST_")}
    env.pop("PYTHONWARNINGS", None)
    env["CONVCLI_FIFO_WAIT"] = "0.3"
    env.update(extra)
    return env


def run(args: list[str], cwd: Path, *, stdin: Any = subprocess.DEVNULL, env: Optional[dict[str, str]] = None,
        user: Optional[int] = None, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[bytes]:
    """``convcli ARGS`` in ``cwd`` (as ``user`` when given: root only), with its output captured."""
    extra: dict[str, Any] = {}
    if user is not None:
        extra.update(user=user, group=user, extra_groups=[])
    return subprocess.run([*CONVCLI, *args], cwd=cwd, capture_output=True, timeout=timeout, stdin=stdin,
                          env=environment() if env is None else env, **extra)


def bash(script: str, cwd: Path, env: Optional[dict[str, str]] = None,
         timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    """``script`` in bash, ``$CONVCLI`` naming the command; ``set -o pipefail``."""
    if BASH is None:
        pytest.skip("bash is not installed")
    environment_ = dict(environment() if env is None else env)
    environment_["CONVCLI"] = shlex.join(CONVCLI)
    return subprocess.run([BASH, "-c", "set -o pipefail\n" + script], cwd=cwd, env=environment_,
                          capture_output=True, text=True, timeout=timeout)


Entry = tuple[str, int, int, Union[str, int, None]]


def snapshot(folder: Path) -> dict[str, Entry]:
    """Every entry under ``folder``: (kind, permission bits, owner, content digest / link target / device)."""
    entries: dict[str, Entry] = {}
    for path in sorted(folder.rglob("*")):
        info = path.lstat()
        mode = info.st_mode
        rel = str(path.relative_to(folder))
        if stat.S_ISLNK(mode):
            entries[rel] = ("link", stat.S_IMODE(mode), info.st_uid, os.readlink(path))
        elif stat.S_ISREG(mode):
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            entries[rel] = ("file", stat.S_IMODE(mode), info.st_uid, digest)
        elif stat.S_ISDIR(mode):
            entries[rel] = ("dir", stat.S_IMODE(mode), info.st_uid, None)
        elif stat.S_ISFIFO(mode):
            entries[rel] = ("fifo", stat.S_IMODE(mode), info.st_uid, None)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            kind = "chr" if stat.S_ISCHR(mode) else "blk"
            entries[rel] = (kind, stat.S_IMODE(mode), info.st_uid, info.st_rdev)
        else:
            entries[rel] = ("other", stat.S_IMODE(mode), info.st_uid, None)
    return entries


def error_line(stderr: Union[bytes, str]) -> str:
    """The one line a failing run printed (the test fails when there are more, or it is no error line)."""
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr
    lines = text.splitlines()
    assert len(lines) == 1, text
    assert lines[0].startswith("convcli: error: "), lines[0]
    assert "Traceback" not in text and "internal error" not in text, text
    return lines[0]


@contextmanager
def shared_folder() -> Iterator[Path]:
    """A temporary folder another user can reach (pytest's own are private to their owner)."""
    folder = Path(tempfile.mkdtemp(prefix="convcli-test-"))
    try:
        folder.chmod(0o755)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def needs_root(reason: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(not IS_ROOT, reason=f"needs root: {reason}")

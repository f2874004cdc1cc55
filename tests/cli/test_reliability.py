"""Reliability through the installed command: nothing lost, nothing replaced that is not ours, no hang, one line.

One table, :data:`CASES`, holds the red-team cases of the reliability issue: each runs the
real ``convcli`` (a subprocess, under a time limit, so a hang fails) in a fresh folder, and
checks its exit code, its one stderr line (or none), and the folder afterwards: no new
file, no replaced file, every file byte-identical, unless the case says what changes.
The cases that need another user, a device node or a full disk make them in the test's
own temporary folder and skip cleanly where that is not possible.  Signals are in
``test_signals.py``.
"""

from __future__ import annotations

import io
import os
import pty
import shutil
import struct
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pytest
from PIL import Image
from process_helpers import (
    CONVCLI,
    IS_ROOT,
    NOBODY,
    SAMPLES,
    bash,
    environment,
    error_line,
    needs_root,
    run,
    shared_folder,
    snapshot,
)


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """A folder with a gray image, an RGB image and a small array."""
    shutil.copy(SAMPLES / "gray.png", tmp_path / "gray.png")
    shutil.copy(SAMPLES / "photo.png", tmp_path / "photo.png")
    np.save(tmp_path / "x.npy", np.arange(64, dtype=np.float32).reshape(1, 1, 8, 8))
    return tmp_path


# ---------------------------------------------------------------- files the cases make


def jpeg_bomb(path: Path, side: int = 10000) -> None:
    """A tiny JPEG whose header declares side×side pixels (631 bytes for 10000×10000)."""
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "JPEG", quality=10)
    data = bytearray(buffer.getvalue())
    sof = data.find(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, side, side)
    path.write_bytes(bytes(data))


def float_tiff(path: Path, pages: int, side: int) -> None:
    """A float TIFF of ``pages`` pages of side×side zeros, deflate-compressed (small on disk)."""
    page = Image.fromarray(np.zeros((side, side), np.float32))
    page.save(path, "TIFF", save_all=True, append_images=[page] * (pages - 1), compression="tiff_adobe_deflate")


def _tiff_seeds() -> list[bytes]:
    out = []
    for array in (np.arange(30, dtype=np.float32).reshape(6, 5), (np.arange(30) * 8).astype(np.uint8).reshape(6, 5)):
        buffer = io.BytesIO()
        image = Image.fromarray(array)
        image.save(buffer, "TIFF", save_all=True, append_images=[image])
        out.append(buffer.getvalue())
    return out


#: Two-page TIFFs with bytes changed (seed, [(offset, value)]): each made convcli 0.1.0 fail with
#: "internal error" (TypeError, SyntaxError, KeyError, ValueError from the page count).
MALFORMED_TIFFS = [
    (1, [(149, 63), (280, 170), (276, 104)]),
    (0, [(296, 184), (404, 66), (300, 58)]),
    (1, [(175, 1), (101, 151), (214, 229)]),
    (1, [(215, 138)]),
    (0, [(280, 7), (159, 133)]),
]


def malformed_tiff(path: Path, index: int) -> None:
    seed, changes = MALFORMED_TIFFS[index]
    data = bytearray(_tiff_seeds()[seed])
    for offset, value in changes:
        data[offset] = value
    path.write_bytes(bytes(data))


def python2_npy(path: Path) -> None:
    """A .npy whose header was written by Python 2 (numpy warns about it, twice, in four lines)."""
    header = b"{'descr': u'<f4', 'fortran_order': False, 'shape': (2L, 2L), }"
    header += b" " * (118 - len(header) - 1) + b"\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + np.ones(4, np.float32).tobytes())


def tiff_with_odd_tags(path: Path) -> None:
    """An 8-bit TIFF whose strip-offset tag points past the end: Pillow warns and reads it anyway."""
    buffer = io.BytesIO()
    Image.fromarray((np.arange(30) * 8).astype(np.uint8).reshape(6, 5)).save(buffer, "TIFF")
    data = bytearray(buffer.getvalue())
    for seed in range(2000):  # find a one-byte change that only warns (deterministic)
        trial = bytearray(data)
        trial[(seed * 7919) % len(trial)] = (seed * 31) % 256
        import warnings

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                with Image.open(io.BytesIO(bytes(trial))) as im:
                    im.load()
            except Exception:
                continue
        if caught:
            path.write_bytes(bytes(trial))
            return
    pytest.skip("no TIFF that only warns was found with this Pillow")


# ---------------------------------------------------------------- the table


@dataclass
class Case:
    """One red-team case.

    ``args`` are convcli's arguments, or ``shell`` a bash script using ``$CONVCLI`` (for
    redirections); ``setup(folder)`` makes what the case needs.  ``code`` is the exit status,
    ``words`` must all be in the one stderr line (``words=None``: stderr must be empty, or
    hold only ``notes``-many lines on success).  ``changes`` lists the entries allowed to
    differ afterwards (new or changed); everything else must be byte-identical.
    """

    id: str
    args: list[str] = field(default_factory=list)
    code: int = 0
    words: Optional[list[str]] = None
    setup: Optional[Callable[[Path], Any]] = None
    shell: Optional[str] = None
    changes: tuple[str, ...] = ()
    check: Optional[Callable[[Path, subprocess.CompletedProcess[Any]], None]] = None
    root: bool = False
    stdin: Optional[str] = None


def _mknod(kind: int, major: int, minor: int, name: str) -> Callable[[Path], None]:
    def make(folder: Path) -> None:
        (folder / "devs").mkdir()
        try:
            os.mknod(folder / "devs" / name, kind | 0o644, os.makedev(major, minor))
        except PermissionError:
            pytest.skip("cannot make device nodes here")

    return make


def _fifo(name: str) -> Callable[[Path], None]:
    return lambda folder: os.mkfifo(folder / name)


def _link(name: str, target: str) -> Callable[[Path], None]:
    return lambda folder: os.symlink(target, folder / name)


def _write(name: str, data: bytes) -> Callable[[Path], None]:
    return lambda folder: (folder / name).write_bytes(data)


def _socket(name: str) -> Callable[[Path], None]:
    def make(folder: Path) -> None:
        import socket

        server = socket.socket(socket.AF_UNIX)
        server.bind(str(folder / name))
        server.close()

    return make


def _one_note_then_wrote(folder: Path, result: Any) -> None:
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 3, lines
    assert "Python 2" in lines[0] and lines[0].startswith("convcli: 'py2.npy': ")
    assert lines[1].startswith("convcli: wrote")
    assert lines[2].startswith("convcli: apply: 1 input")  # the summary


def _literal_names(folder: Path, result: Any) -> None:
    out = result.stdout.decode()
    assert "x[/y]z.npy" in out and "[bold]B.npy" in out and "c\\x1b[31mred.npy" in out, out
    assert "\x1b" not in out


def _json_rows(folder: Path, result: Any) -> None:
    import json

    rows = json.loads(result.stdout)
    assert rows[0]["file"] == "x.npy" and rows[0]["shape"] == [1, 1, 8, 8] and rows[0]["max"] == 63.0


CASES = [
    # ---- data loss, and replacing what is not ours
    Case("device output written in place", ["apply", "gray.png", "-k", "box:3", "-o", "devs/mynull", "--format",
                                            "png"], setup=_mknod(0o020000, 1, 3, "mynull"), root=True),
    Case("block device output refused", ["apply", "gray.png", "-k", "box:3", "-o", "devs/disk", "--format", "png"],
         4, ["block device", "refusing"], setup=_mknod(0o060000, 7, 200, "disk"), root=True),
    Case("FIFO output without a reader", ["apply", "gray.png", "-k", "box:3", "-o", "out.png"], 4,
         ["FIFO", "no program reads"], setup=_fifo("out.png")),
    Case("FIFO output streamed to its reader", shell="cat out.png > got.bin & CONVCLI_FIFO_WAIT=10 $CONVCLI apply "
         "gray.png -k box:3 -o out.png -q; wait", setup=_fifo("out.png"), changes=("got.bin",),
         check=lambda f, r: (f / "got.bin").read_bytes().startswith(b"\x89PNG")),
    Case("socket output refused", ["apply", "gray.png", "-k", "box:3", "-o", "sock.png"], 4, ["socket"],
         setup=_socket("sock.png")),
    Case("standard input's file is an input", shell="$CONVCLI apply - -k box:3 -o gray.png < gray.png", code=4,
         words=["standard input reads", "gray.png"]),
    Case("output over an input", ["apply", "gray.png", "-k", "box:3", "-o", "./gray.png"], 4,
         ["refusing to overwrite"]),
    # ---- hangs and runaway memory
    Case("FIFO input without a writer", ["apply", "in.npy", "-k", "box:3", "-o", "o.npy"], 3,
         ["FIFO", "no program writes"], setup=_fifo("in.npy")),
    Case("FIFO kernel without a writer", ["apply", "x.npy", "-k", "k.npy", "-o", "o.npy"], 3,
         ["kernel file", "FIFO"], setup=_fifo("k.npy")),
    Case("FIFO dout without a writer", ["grad", "x.npy", "-k", "box:3", "--dout", "d.npy", "-o", "g.npz"], 3,
         ["--dout file", "FIFO"], setup=_fifo("d.npy")),
    Case("FIFO info without a writer", ["info", "in.npy"], 3, ["FIFO"], setup=_fifo("in.npy")),
    Case("FIFO input with a writer", shell="cat x.npy > in.npy & CONVCLI_FIFO_WAIT=10 $CONVCLI apply in.npy -k box:3 "
         "-o o.npy -q; wait",
         setup=_fifo("in.npy"), changes=("o.npy",)),
    Case("/dev/zero input", ["apply", "/dev/zero", "-k", "box:3", "-o", "o.npy"], 3, ["character device"]),
    Case("/dev/urandom kernel", ["apply", "x.npy", "-k", "/dev/urandom", "-o", "o.npy"], 3, ["character device"]),
    Case("/dev/zero dout", ["grad", "x.npy", "-k", "box:3", "--dout", "/dev/zero", "-o", "g.npz"], 3,
         ["character device"]),
    Case("/dev/zero bias", ["apply", "x.npy", "-k", "box:3", "--bias", "/dev/zero", "-o", "o.npy"], 3,
         ["character device"]),
    Case("/dev/zero through a symlink", ["apply", "z.npy", "-k", "z.npy", "-o", "o.npy"], 3, ["character device"],
         setup=_link("z.npy", "/dev/zero")),
    Case("/dev/urandom info", ["info", "/dev/urandom"], 3, ["character device"]),
    Case("/dev/zero on standard input", shell="$CONVCLI apply - -k box:3 -o o.npy < /dev/zero", code=3,
         words=["standard input is a device"]),
    Case("zeros piped in", shell="head -c 50000000 /dev/zero | $CONVCLI apply - -k box:3 -o o.npy", code=3,
         words=["cannot tell the format"]),
    Case("an endless PNG stream stops at the image budget",
         shell="(cat gray.png; cat /dev/zero) | $CONVCLI apply - -k box:3 --max-pixels 1000 -o o.npy", code=3,
         words=["holds more than 16", "--max-pixels 1,000", "stopped reading"]),
    Case("a .npy stream is read to its header's size", shell="(cat x.npy; head -c 100000 /dev/zero) | "
         "$CONVCLI apply - -k box:3 -o o.npy -q; exit ${PIPESTATUS[1]}", changes=("o.npy",)),
    Case("a .npy header larger than memory", ["apply", "huge.npy", "-k", "box:3", "-o", "o.npy"], 3,
         ["declares", "more than this machine's"],
         setup=lambda f: _npy_header(f / "huge.npy", (1, 1, 2**24, 2**24))),
    Case("JPEG bomb under Pillow's limit", ["apply", "bomb.jpg", "-k", "box:3", "-o", "o.png"], 3,
         ["10000×10000", "--max-pixels 89,478,485", "give --max-pixels 100000000"],
         setup=lambda f: jpeg_bomb(f / "bomb.jpg")),
    Case("float TIFF of many large pages", ["info", "pages.tif"], 3, ["30 pages of 2048×2048", "--max-pixels"],
         setup=lambda f: float_tiff(f / "pages.tif", 30, 2048)),
    Case("TIFF of more pages than the cap", ["apply", "many.tif", "-k", "box:3", "-o", "o.npy"], 3,
         ["more than 1024 pages"], setup=lambda f: float_tiff(f / "many.tif", 1100, 4)),
    *[Case(f"malformed TIFF {i}", ["info", "m.tif"], 3, ["cannot read 'm.tif' as an image"],
           setup=lambda f, i=i: malformed_tiff(f / "m.tif", i)) for i in range(len(MALFORMED_TIFFS))],
    Case("kernel size of 5000 digits", ["apply", "x.npy", "-k", "box:" + "9" * 5000, "-o", "o.npy"], 2,
         ["box: N", "too large", "(5000 characters)"]),
    Case("ImageMagick size of 5000 digits", ["apply", "x.npy", "-k", "3x" + "9" * 5000 + ": 1", "-o", "o.npy"], 2,
         ["too large (at most", "(5002 characters)"]),
    Case("randn seed of 5000 digits", ["grad", "x.npy", "-k", "box:3", "--dout", "randn:" + "9" * 5000, "-o", "g.npz"],
         2, ["seed of at most 1000 digits"]),
    Case("stride of 10^9", ["apply", "x.npy", "-k", "box:3", "--stride", "1000000000", "-o", "o.npy"], 1,
         ["work buffers", "stride 1000000000,1000000000", "more than this machine's"]),
    Case("kernel from a closed stdin", shell="$CONVCLI apply x.npy -k - -o o.npy <&-", code=3,
         words=["standard input is closed"]),
    Case("output to a closed stdout", shell="$CONVCLI apply x.npy -k box:3 -o - >&-", code=4,
         words=["standard output is closed"]),
    Case("info to a closed stdout", shell="$CONVCLI info x.npy >&-", code=4, words=["standard output is closed"]),
    Case("kernels to a closed stdout", shell="$CONVCLI kernels >&-", code=4, words=["standard output is closed"]),
    Case("closed stderr still exits with the code", shell="$CONVCLI apply x.npy -k nope -o o.npy 2>&-", code=2,
         check=lambda f, r: None),
    # ---- names, warnings, message sizes
    Case("names are not markup", ["info", "x[/y]z.npy", "[bold]B.npy", "c\x1b[31mred.npy"],
         setup=lambda f: [(f / "x[").mkdir()] + [shutil.copy(f / "x.npy", f / n)
                                                 for n in ("x[/y]z.npy", "[bold]B.npy", "c\x1b[31mred.npy")],
         check=_literal_names),
    Case("control characters in an error", ["apply", "no\x1b[2Jfile.png", "-k", "box:3", "-o", "o.png"], 3,
         ["no\\x1b[2Jfile.png"]),
    Case("a Python 2 .npy header is one note", ["apply", "py2.npy", "-k", "box:3", "-o", "o.npy"],
         setup=lambda f: python2_npy(f / "py2.npy"), changes=("o.npy",), check=_one_note_then_wrote),
    Case("a 10 MB bad token is quoted short", ["apply", "x.npy", "-k", "tok.txt", "-o", "o.npy"], 2,
         ["kernel file 'tok.txt'", "(10000000 characters) is not a number"],
         setup=_write("tok.txt", b"1 " + b"x" * 10_000_000),
         check=lambda f, r: len(r.stderr) < 400),
    Case("a secret file is not echoed", ["apply", "x.npy", "-k", "./shadow", "-o", "o.npy"], 2,
         ["not a text array"], setup=_write("shadow", b"root:$6$s3cr3t$hash:19000:0:99999:7:::\n"),
         check=lambda f, r: b"s3cr3t" not in r.stderr and b"root" not in r.stderr),
    Case("a long inline spec is quoted short", ["apply", "x.npy", "-k", "z" * 100_000, "-o", "o.npy"], 2,
         ["(100000 characters)"], check=lambda f, r: len(r.stderr) < 300),
    Case("float32 overflow of 1e308", ["apply", "x.npy", "-k", "1e308", "-o", "o.npy"], 2,
         ["too large for float32", "--dtype float64"]),
    Case("unsharp:1:1e308", ["apply", "gray.png", "-k", "unsharp:1:1e308", "-o", "o.png"], 2, ["float32"]),
    Case("1e308 in float64 is computed",
         ["apply", "gray.png", "-k", "1e308", "--dtype", "float64", "-o", "o.npy", "-q"], changes=("o.npy",),
         check=lambda f, r: bool(np.isfinite(np.load(f / "o.npy")).all())),
    Case("SIGPIPE ends quietly", shell="$CONVCLI apply photo.png -k sobel-x -o - | head -c 10 > /dev/null; "
         "exit ${PIPESTATUS[0]}", code=141),
    # ---- output names and targets
    Case("{stem}.png is a PNG", ["apply", "gray.png", "-k", "box:3", "-o", "o-{stem}.png", "-q"],
         changes=("o-gray.png",)),
    Case("{stem}.npy is an array", ["apply", "x.npy", "-k", "box:3", "-o", "{stem}-out.npy", "-q"],
         changes=("x-out.npy",)),
    Case("o/{map}.png", ["apply", "gray.png", "-k", "sobel-x", "-k", "sobel-y", "-o", "o/{map}.png", "-q"],
         setup=lambda f: (f / "o").mkdir(), changes=("o/0.png", "o/1.png")),
    Case("an unwritable target is found before any work", ["apply", "x.npy", "-k", "box:3", "-o", "/proc/x.npy"], 4,
         ["cannot write '/proc/x.npy'"]),
    Case("a mixed batch into one .npy says so", ["apply", "photo.png", "gray.png", "-k", "box:3", "-o", "b.npy"],
         changes=("b-photo.npy", "b-gray.npy"),
         check=lambda f, r: b"names one file, but the inputs have 2 different shapes" in r.stderr),
    # ---- help, usage, exit codes
    Case("-h is --help", ["apply", "-h"], check=lambda f, r: b"Usage: convcli apply [OPTIONS] INPUT..." in r.stdout),
    Case("no Value error prefix", ["apply", "x.npy", "-k", "box:3", "--format", "jpg"], 2, ["'jpg' is not one of"],
         check=lambda f, r: b"Value error" not in r.stderr),
    Case("info --json", ["info", "--json", "x.npy"], check=_json_rows),
    Case("exit 1: a failed check", ["grad", "x.npy", "-k", "box:3", "--dout", "ones", "--check", "--tol", "1e-30",
                                    "-q", "-o", "g.npz"], 1, ["gradient check failed"]),
]


def _npy_header(path: Path, shape: tuple[int, ...]) -> None:
    """A .npy that declares ``shape`` of float64 and holds no data."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "<f8", "fortran_order": False, "shape": shape})
    path.write_bytes(buffer.getvalue())


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case(case: Case, work: Path) -> None:
    if case.root and not IS_ROOT:
        pytest.skip("needs root (device nodes)")
    if case.setup is not None:
        case.setup(work)
    before = snapshot(work)
    if case.shell is not None:
        result: Any = bash(case.shell, work)
        stderr = result.stderr.encode()
        result = subprocess.CompletedProcess(result.args, result.returncode, result.stdout.encode(), stderr)
    else:
        result = run(case.args, work)
    assert result.returncode == case.code, (result.returncode, result.stderr)
    if case.code not in (0, 141) and case.words is not None:
        line = error_line(result.stderr)
        for word in case.words:
            assert word in line, (word, line)
    elif case.code == 141:
        assert result.stderr == b""
    else:
        assert b"Traceback" not in result.stderr and b"error" not in result.stderr, result.stderr
    after = snapshot(work)
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    assert changed <= set(case.changes), sorted(changed - set(case.changes))
    for name in case.changes:
        assert name in after, name
    assert not [k for k in after if k.endswith((".tmp", ".old")) and k.split("/")[-1].startswith(".")]
    if case.check is not None:
        outcome = case.check(work, result)
        assert outcome is None or outcome, case.id


# ---------------------------------------------------------------- cases that need more than a table row


def test_failed_run_replaces_nothing_on_a_full_disk(work: Path) -> None:
    """The second of two outputs does not fit: the first, an existing file, is left as it was."""
    import resource

    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((40, 40)) * 255).astype(np.uint8)).save(work / "a.png")
    Image.fromarray((rng.random((300, 300)) * 255).astype(np.uint8)).save(work / "b.png")
    (work / "out").mkdir()
    (work / "out" / "b-a.png").write_bytes(b"OLD")
    before = snapshot(work)

    def small_files() -> None:  # a full disk for files over 20 kB (the second output is ~90 kB)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    result = subprocess.run([*CONVCLI, "apply", "a.png", "b.png", "-k", "identity", "-o", "out/b-{stem}.png"],
                            cwd=work, capture_output=True, timeout=60, preexec_fn=small_files, env=environment())
    assert result.returncode == 4, result.stderr
    assert "cannot write 'out/b-b.png'" in error_line(result.stderr)
    assert snapshot(work) == before


@needs_root("mounts a small tmpfs")
def test_failed_run_replaces_nothing_on_a_real_full_disk(work: Path) -> None:
    small = work / "small"
    small.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(small)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        rng = np.random.default_rng(0)
        Image.fromarray((rng.random((40, 40)) * 255).astype(np.uint8)).save(work / "a.png")
        Image.fromarray((rng.random((300, 300)) * 255).astype(np.uint8)).save(work / "b.png")
        (small / "b-a.png").write_bytes(b"OLD")
        before = snapshot(small)
        result = run(["apply", "a.png", "b.png", "-k", "identity", "-o", "small/b-{stem}.png"], work)
        assert result.returncode == 4
        assert "no space left on device" in error_line(result.stderr)
        assert snapshot(small) == before
    finally:
        subprocess.run(["umount", str(small)], capture_output=True)


def _nobody_command() -> list[str]:
    """The command that runs convcli as ``nobody`` (setpriv), or a skip when it cannot run so here."""
    if not IS_ROOT or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run convcli as another user")
    command = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *CONVCLI]
    probe = subprocess.run([*command, "--version"], capture_output=True, timeout=60)
    if probe.returncode != 0:
        pytest.skip("convcli's interpreter cannot be run by another user here")
    return command


def test_a_file_the_user_may_not_write_is_not_replaced() -> None:
    command = _nobody_command()
    with shared_folder() as folder:
        folder.chmod(0o777)  # world-writable, not sticky: the rename alone would succeed
        shutil.copy(SAMPLES / "gray.png", folder / "in.png")
        (folder / "in.png").chmod(0o644)
        (folder / "ro.png").write_bytes(b"ROOT'S DATA")
        (folder / "ro.png").chmod(0o444)
        before = snapshot(folder)
        result = subprocess.run([*command, "apply", "in.png", "-k", "box:3", "-o", "ro.png"], cwd=folder,
                                capture_output=True, timeout=60, env=environment())
        assert result.returncode == 4, result.stderr
        assert "cannot replace 'ro.png': you may not write it" in error_line(result.stderr)
        assert snapshot(folder) == before


@needs_root("plants another user's symlink")
def test_another_users_symlink_in_a_sticky_folder_is_not_followed(tmp_path: Path) -> None:
    shutil.copy(SAMPLES / "gray.png", tmp_path / "gray.png")
    precious = tmp_path / "precious.txt"
    precious.write_bytes(b"root's precious file")
    sticky = tmp_path / "tmp"
    sticky.mkdir()
    sticky.chmod(0o1777)
    link = sticky / "out.png"
    link.symlink_to(precious)
    os.lchown(link, NOBODY, NOBODY)  # planted by another user
    before = snapshot(tmp_path)
    result = run(["apply", "gray.png", "-k", "box:3", "-o", "tmp/out.png"], tmp_path)
    assert result.returncode == 4
    assert "refusing to follow the symbolic link 'tmp/out.png'" in error_line(result.stderr)
    assert snapshot(tmp_path) == before
    os.lchown(link, 0, 0)  # the user's own link: followed, the link kept
    result = run(["apply", "gray.png", "-k", "box:3", "-o", "tmp/out.png", "-q"], tmp_path)
    assert result.returncode == 0 and link.is_symlink() and precious.read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("args", [["apply", "-", "-k", "box:3", "-o", "o.npy"], ["info", "-"],
                                  ["apply", "x.npy", "-k", "-", "-o", "o.npy"], ["kernels", "-"]],
                         ids=["input", "info", "kernel", "kernels"])
def test_standard_input_on_a_terminal_is_a_usage_error(work: Path, args: list[str]) -> None:
    leader, follower = pty.openpty()
    try:
        result = run(args, work, stdin=follower, timeout=30)
    finally:
        os.close(follower)
        os.close(leader)
    assert result.returncode == 2
    assert "reads standard input, which is a terminal" in error_line(result.stderr)


def test_info_fits_columns(work: Path) -> None:
    (work / "a-rather-long-file-name-for-a-narrow-terminal.npy").write_bytes((work / "x.npy").read_bytes())
    result = run(["info", "a-rather-long-file-name-for-a-narrow-terminal.npy"], work,
                 env=environment(COLUMNS="60"))
    assert result.returncode == 0
    assert max(len(line) for line in result.stdout.decode().splitlines()) <= 60
    wide = run(["info", "a-rather-long-file-name-for-a-narrow-terminal.npy"], work)
    assert max(len(line) for line in wide.stdout.decode().splitlines()) > 60  # a pipe: its natural width


def test_tiff_warnings_are_one_line_each(work: Path) -> None:
    tiff_with_odd_tags(work / "odd.tif")
    result = run(["apply", "odd.tif", "-k", "box:3", "-o", "o.npy"], work)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.decode().splitlines()
    notes = [line for line in lines if not line.startswith(("convcli: wrote", "convcli: apply: "))]
    assert notes and all(line.startswith("convcli: 'odd.tif': ") for line in notes), lines
    assert len(notes) == len(set(notes)) and not any("TiffImagePlugin" in line or ".py:" in line for line in lines)


def test_help_says_what_to_type() -> None:
    for command in ("apply", "grad", "info", "kernels"):
        result = run([command, "--help"], Path.cwd(), env=environment(COLUMNS="200"))
        text = result.stdout.decode()
        assert result.returncode == 0
        for bad in ("<list[str]>", "<bool>", "<int range>", "[x>=1]", "<str>", "<int>", "<float>"):
            assert bad not in text, (command, bad)
        assert "Exit status: 0 ok, 1 failure, 2 usage, 3 unreadable input, 4 output, 130 interrupted" in " ".join(
            text.split()), command
    text = run(["apply", "--help"], Path.cwd(), env=environment(COLUMNS="200")).stdout.decode()
    for label in ("INPUT...", "KERNEL", "N|H,W", "8|16", "FILE|DIR/|-", "png|jpeg|webp|tiff|npy|npz", "1-100", "0-9"):
        assert label in text, label
    for command in ("kernels", "info"):
        assert "Examples:" in run([command, "-h"], Path.cwd()).stdout.decode(), command


def test_a_signal_ignored_by_the_parent_stays_ignored(work: Path) -> None:
    """nohup's SIGHUP: convcli installs no handler over an ignored signal."""
    result = bash("trap '' HUP; $CONVCLI apply x.npy -k box:3 -o o.npy -q & pid=$!; kill -HUP $pid; wait $pid", work)
    assert result.returncode == 0, result.stderr


def test_every_exit_code_through_the_installed_command(work: Path) -> None:
    """0, 1, 2, 3, 4 and 141 here (130, 129 and 143 in test_signals.py)."""
    codes = {
        0: run(["apply", "x.npy", "-k", "box:3", "-o", "o.npy", "-q"], work).returncode,
        1: run(["grad", "x.npy", "-k", "box:3", "--dout", "ones", "--check", "--tol", "1e-30", "-q", "-o", "g.npz"],
               work).returncode,
        2: run(["apply", "x.npy", "-k", "nope", "-o", "o.npy"], work).returncode,
        3: run(["apply", "missing.npy", "-k", "box:3", "-o", "o.npy"], work).returncode,
        4: run(["apply", "x.npy", "-k", "box:3", "-o", "x.npy"], work).returncode,
        141: bash("$CONVCLI apply photo.png -k box:3 -o - | head -c 1 >/dev/null; exit ${PIPESTATUS[0]}",
                  work).returncode,
    }
    assert codes == {code: code for code in codes}

"""convcli.io.outputs: whole-or-nothing writes, ``-`` for stdout, inputs never overwritten."""

from __future__ import annotations

import io
import os
import stat
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from convcli.errors import OutputFileError
from convcli.io.outputs import all_or_nothing, check_target, check_targets, first_repeated, write_output

NOT_ROOT = pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root ignores file permissions")


def no_temp_files(directory: Path) -> bool:
    return not [p for p in directory.iterdir() if p.name.endswith(".tmp")]



def test_write_output_writes_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    write_output(str(target), b"first")
    assert target.read_bytes() == b"first"
    write_output(str(target), b"second, longer")
    assert target.read_bytes() == b"second, longer"
    assert no_temp_files(tmp_path)


def test_write_output_to_stdout(monkeypatch: pytest.MonkeyPatch) -> None:
    sink = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", SimpleNamespace(buffer=sink))
    write_output("-", b"\x93NUMPY bytes", protect=["-"])
    assert sink.getvalue() == b"\x93NUMPY bytes"


def test_write_output_broken_pipe(monkeypatch: pytest.MonkeyPatch) -> None:
    class Closed(io.BytesIO):
        def write(self, data: object) -> int:
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", SimpleNamespace(buffer=Closed()))
    with pytest.raises(OutputFileError, match="standard output was closed"):
        write_output("-", b"data")


def test_write_output_is_atomic_when_replace_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "out.png"
    target.write_bytes(b"original")

    def fail(src: str, dst: str) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OutputFileError, match="cannot write '.*out.png': Input/output error"):
        write_output(str(target), b"new content")
    assert target.read_bytes() == b"original"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


def test_write_output_is_atomic_when_writing_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "out.npy"
    target.write_bytes(b"original")

    def full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OutputFileError, match="no space left on device"):
        write_output(str(target), b"x" * 100_000)
    assert target.read_bytes() == b"original"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.npy"]


def test_write_output_cleans_up_on_interrupt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(src: str, dst: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_output(str(tmp_path / "new.png"), b"data")
    assert list(tmp_path.iterdir()) == []


def test_write_output_new_file_never_partial(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(src: str, dst: str) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OutputFileError):
        write_output(str(tmp_path / "new.png"), b"data")
    assert list(tmp_path.iterdir()) == []


def test_write_output_refuses_to_overwrite_an_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "sub").mkdir()
    source = tmp_path / "in.png"
    source.write_bytes(b"input")
    monkeypatch.chdir(tmp_path)
    for path in ("in.png", str(source), "sub/../in.png", "./in.png"):
        with pytest.raises(OutputFileError, match="refusing to overwrite input 'in.png'") as excinfo:
            write_output(path, b"output", protect=["in.png"])
        assert excinfo.value.exit_code == 4
    assert source.read_bytes() == b"input"
    assert no_temp_files(tmp_path)


def test_write_output_refuses_a_symlink_to_an_input(tmp_path: Path) -> None:
    source = tmp_path / "in.png"
    source.write_bytes(b"input")
    link = tmp_path / "link.png"
    link.symlink_to(source)
    with pytest.raises(OutputFileError, match="refusing to overwrite input"):
        write_output(str(link), b"output", protect=[str(source)])
    with pytest.raises(OutputFileError, match="refusing to overwrite input"):  # protected through the link too
        write_output(str(source), b"output", protect=[str(link)])
    assert source.read_bytes() == b"input"


def test_write_output_refuses_a_hard_link_to_an_input(tmp_path: Path) -> None:
    source = tmp_path / "in.png"
    source.write_bytes(b"input")
    os.link(source, tmp_path / "hard.png")
    with pytest.raises(OutputFileError, match="refusing to overwrite input"):
        write_output(str(tmp_path / "hard.png"), b"output", protect=[str(source)])


def test_write_output_other_files_are_fine(tmp_path: Path) -> None:
    source = tmp_path / "in.png"
    source.write_bytes(b"input")
    write_output(str(tmp_path / "out.png"), b"output", protect=[str(source), "-", str(tmp_path / "missing.png")])
    assert (tmp_path / "out.png").read_bytes() == b"output"


def test_write_output_through_a_symlink_keeps_the_link(tmp_path: Path) -> None:
    real = tmp_path / "real.png"
    real.write_bytes(b"old")
    link = tmp_path / "link.png"
    link.symlink_to(real)
    write_output(str(link), b"new")
    assert link.is_symlink() and real.read_bytes() == b"new"


def test_write_output_missing_directory(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(OutputFileError) as excinfo:
        write_output(str(missing / "out.png"), b"data")
    assert str(excinfo.value) == f"output directory {str(missing)!r} does not exist (for {str(missing / 'out.png')!r})"


def test_write_output_to_a_directory(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    with pytest.raises(OutputFileError, match="is a directory"):
        write_output(str(tmp_path / "d"), b"data")
    assert no_temp_files(tmp_path)


def test_write_output_relative_name_in_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_output("plain.npy", b"abc")
    assert (tmp_path / "plain.npy").read_bytes() == b"abc"


def test_write_output_permissions(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        write_output(str(tmp_path / "new.png"), b"data")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new.png").stat().st_mode) == 0o644
    existing = tmp_path / "script.sh"
    existing.write_bytes(b"old")
    existing.chmod(0o750)
    write_output(str(existing), b"new")
    assert stat.S_IMODE(existing.stat().st_mode) == 0o750


def test_write_output_unwritable_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = os.open

    def denied(path: str, flags: int, mode: int = 0o777) -> int:
        if str(path).startswith(str(tmp_path)):
            raise PermissionError(13, "Permission denied")
        return real_open(path, flags, mode)

    monkeypatch.setattr(os, "open", denied)
    with pytest.raises(OutputFileError, match="cannot write '.*out.png': permission denied"):
        write_output(str(tmp_path / "out.png"), b"data")


@NOT_ROOT
def test_write_output_unwritable_directory_for_real(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(OutputFileError, match="permission denied"):
            write_output(str(locked / "out.png"), b"data")
    finally:
        locked.chmod(0o700)


def test_check_target_refuses_before_anything_is_written(tmp_path: Path) -> None:
    source = tmp_path / "in.png"
    source.write_bytes(b"input")
    link = tmp_path / "link.png"
    link.symlink_to(source)
    assert check_target("-", ["-"]) == "-"
    assert check_target(str(tmp_path / "new.png"), [str(source)]) == str(tmp_path / "new.png")
    assert check_target(str(link)) == os.path.realpath(link)
    for bad, message in [(str(link), "refusing to overwrite input"), (str(tmp_path), "is a directory"),
                         (str(tmp_path / "no" / "x.png"), "does not exist"), ("", "empty")]:
        with pytest.raises(OutputFileError, match=message):
            check_target(bad, [str(source)])
    assert source.read_bytes() == b"input" and no_temp_files(tmp_path)


def test_check_target_refuses_an_unwritable_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # os.access, not a chmod: root ignores permission bits
    monkeypatch.setattr(os, "access", lambda path, mode: os.fspath(path) != str(tmp_path))
    with pytest.raises(OutputFileError) as excinfo:
        check_target(str(tmp_path / "out.png"))
    assert str(excinfo.value) == (
        f"cannot write {str(tmp_path / 'out.png')!r}: permission denied (directory {str(tmp_path)!r})"
    )
    assert check_target("-") == "-"


def test_first_repeated_sees_spellings_of_one_file(tmp_path: Path) -> None:
    a = tmp_path / "a.png"
    a.write_bytes(b"x")
    link = tmp_path / "link.png"
    link.symlink_to(a)
    assert first_repeated([str(a), str(tmp_path / "b.png"), "-", "-"]) is None
    assert first_repeated([str(a), str(tmp_path / "." / "a.png")]) == str(tmp_path / "." / "a.png")
    assert first_repeated([str(link), str(a)]) == str(a)
    assert first_repeated([str(tmp_path / "new.png"), str(tmp_path / "sub" / ".." / "new.png")]) is not None


def test_all_or_nothing_changes_nothing_on_failure(tmp_path: Path) -> None:
    old = tmp_path / "old.npy"
    old.write_bytes(b"before")
    new = tmp_path / "new.npy"
    with pytest.raises(RuntimeError, match="late failure"):
        with all_or_nothing() as write:
            write(str(new), b"fresh")
            write(str(old), b"after")
            assert not new.exists() and old.read_bytes() == b"before"  # written beside their targets only
            raise RuntimeError("late failure")
    assert not new.exists()  # never put in place
    assert old.read_bytes() == b"before"  # never replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.npy"]
    with all_or_nothing() as write:
        write(str(new), b"kept")
        write(str(old), b"after")
    assert new.read_bytes() == b"kept" and old.read_bytes() == b"after"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.npy", "old.npy"]


def test_check_targets(tmp_path: Path) -> None:
    a = tmp_path / "a.png"
    check_targets([str(a), str(tmp_path / "b.png"), "-"], [])
    expected = r"^several outputs would be written to '.*a.png'; give each its own name$"
    with pytest.raises(OutputFileError, match=expected):
        check_targets([str(a), str(tmp_path / "." / "a.png")])
    with pytest.raises(OutputFileError, match=r"^two outputs would be written to '.*a.png'; use -o$"):
        check_targets([str(a), str(a)], subject="two outputs", hint="use -o")
    (tmp_path / "in.png").write_bytes(b"x")
    with pytest.raises(OutputFileError, match="refusing to overwrite input"):
        check_targets([str(a), str(tmp_path / "in.png")], [str(tmp_path / "in.png")])


# ---------------------------------------------------------------- OutputSet: reserve, write beside, commit


def test_reserve_makes_room_before_any_work_and_discard_removes_it(tmp_path: Path) -> None:
    from convcli.io.outputs import OutputSet

    (tmp_path / "old.npy").write_bytes(b"old")
    outputs = OutputSet()
    outputs.reserve([str(tmp_path / "new.npy"), str(tmp_path / "old.npy")])
    temps = sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp"))
    assert len(temps) == 2 and all(name.startswith((".new.npy.", ".old.npy.")) for name in temps)
    outputs.write(str(tmp_path / "new.npy"), b"fresh")
    assert not (tmp_path / "new.npy").exists()
    outputs.discard()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.npy"]


def test_a_target_that_cannot_be_created_is_found_at_reserve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from convcli.io.outputs import OutputSet

    real_open = os.open

    def read_only(path: str, flags: int, mode: int = 0o777) -> int:
        if "b.npy" in str(path) and flags & os.O_CREAT:
            raise OSError(30, "Read-only file system")
        return real_open(path, flags, mode)

    monkeypatch.setattr(os, "open", read_only)
    with pytest.raises(OutputFileError, match="cannot write '.*b.npy': read-only file system"):
        OutputSet().reserve([str(tmp_path / "a.npy"), str(tmp_path / "b.npy")])
    assert list(tmp_path.iterdir()) == []  # a.npy's temporary file is gone too


def test_a_failed_commit_puts_every_replaced_file_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from convcli.io.outputs import OutputSet

    for name in ("a.npy", "c.npy"):
        (tmp_path / name).write_bytes(b"old " + name.encode())
    real_replace = os.replace
    calls = []

    def third_fails(src: str, dst: str) -> None:
        calls.append(dst)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", third_fails)
    with pytest.raises(OutputFileError, match="no space left on device"):
        with OutputSet() as outputs:
            for name in ("a.npy", "b.npy", "c.npy"):
                outputs.write(str(tmp_path / name), b"new " + name.encode())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npy", "c.npy"]
    assert (tmp_path / "a.npy").read_bytes() == b"old a.npy" and (tmp_path / "c.npy").read_bytes() == b"old c.npy"


def test_a_signal_during_the_commit_undoes_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import signal

    from convcli.io import outputs as module

    (tmp_path / "a.npy").write_bytes(b"old")
    monkeypatch.setattr(module, "pause", lambda point: signal.raise_signal(signal.SIGINT) if point == "committing"
                        else None)
    with pytest.raises(KeyboardInterrupt):
        with module.OutputSet() as outputs:
            outputs.write(str(tmp_path / "a.npy"), b"new")
            outputs.write(str(tmp_path / "b.npy"), b"new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npy"] and (tmp_path / "a.npy").read_bytes() == b"old"


def test_a_fifo_is_written_in_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    monkeypatch.setenv("CONVCLI_FIFO_WAIT", "5")
    fifo = tmp_path / "out.png"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    write_output(str(fifo), b"streamed bytes")
    reader.join(timeout=10)
    assert got == [b"streamed bytes"] and stat.S_ISFIFO(fifo.lstat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


def test_a_fifo_without_a_reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVCLI_FIFO_WAIT", "0.1")
    os.mkfifo(tmp_path / "out.png")
    with pytest.raises(OutputFileError, match=r"is a FIFO that no program reads \(waited 0.1 s\)"):
        write_output(str(tmp_path / "out.png"), b"data")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="device nodes need root")
def test_a_device_is_written_in_place_and_a_block_device_refused(tmp_path: Path) -> None:
    os.mknod(tmp_path / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    write_output(str(tmp_path / "null"), b"discarded")
    assert stat.S_ISCHR((tmp_path / "null").lstat().st_mode)
    os.mknod(tmp_path / "disk", stat.S_IFBLK | 0o600, os.makedev(7, 200))
    with pytest.raises(OutputFileError, match="is a block device; refusing to write to it or replace it"):
        write_output(str(tmp_path / "disk"), b"never")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["disk", "null"]


def test_a_file_the_user_may_not_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from convcli.io import targets as module

    target = tmp_path / "ro.png"
    target.write_bytes(b"theirs")
    target.chmod(0o444)
    monkeypatch.setattr(module, "_may_write", lambda path: False)  # as another user would see it
    with pytest.raises(OutputFileError, match=r"cannot replace '.*ro.png': you may not write it \(mode 0444"):
        write_output(str(target), b"ours")
    assert target.read_bytes() == b"theirs"


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="planting another user's link needs root")
def test_the_protected_symlinks_rule(tmp_path: Path) -> None:
    sticky = tmp_path / "tmp"
    sticky.mkdir()
    sticky.chmod(0o1777)
    precious = tmp_path / "precious"
    precious.write_bytes(b"keep")
    link = sticky / "out.png"
    link.symlink_to(precious)
    os.lchown(link, 65534, 65534)
    with pytest.raises(OutputFileError, match="refusing to follow the symbolic link .* another user .uid 65534."):
        write_output(str(link), b"x")
    sticky.chmod(0o777)  # not sticky: followed, as Linux would
    write_output(str(link), b"x")
    assert precious.read_bytes() == b"x" and link.is_symlink()


def test_standard_inputs_file_is_protected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from convcli.io.outputs import protected_files

    source = tmp_path / "in.png"
    source.write_bytes(b"input")
    with open(source, "rb") as handle:
        monkeypatch.setattr(sys, "stdin", SimpleNamespace(buffer=handle))
        assert protected_files("-", "box:3") == ["-"]
        with pytest.raises(OutputFileError, match="it is the file standard input reads"):
            write_output(str(source), b"output", protect=["-"])
        write_output(str(tmp_path / "other.png"), b"output", protect=["-"])
    monkeypatch.setattr(sys, "stdin", SimpleNamespace(buffer=io.BytesIO(b"a pipe")))
    assert protected_files("-") == []
    assert source.read_bytes() == b"input"


def test_root_keeps_the_owner_of_a_replaced_file(tmp_path: Path) -> None:
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("needs root")
    target = tmp_path / "theirs.npy"
    target.write_bytes(b"old")
    os.chown(target, 65534, 65534)
    target.chmod(0o640)
    write_output(str(target), b"new")
    info = target.stat()
    assert target.read_bytes() == b"new" and (info.st_uid, info.st_gid) == (65534, 65534)
    assert stat.S_IMODE(info.st_mode) == 0o640

"""convcli.io.streams and the budgets of convcli.io.limits: devices refused, FIFOs never hang, reads bounded."""

from __future__ import annotations

import io
import os
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from convcli.errors import InputFileError
from convcli.io import limits
from convcli.io.limits import ReadLimits, byte_budget
from convcli.io.outputs import npy_bytes
from convcli.io.streams import read_source, stdin_state


@pytest.fixture(autouse=True)
def quick_fifos(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVCLI_FIFO_WAIT", "0.2")


def test_a_device_is_refused_unopened_even_through_a_link(tmp_path: Path) -> None:
    (tmp_path / "z.npy").symlink_to("/dev/zero")
    for source, role in (("/dev/zero", "input"), (str(tmp_path / "z.npy"), "kernel"), ("/dev/urandom", "array")):
        with pytest.raises(InputFileError, match="is a character device, not a file; refusing to read it"):
            read_source(source, role=role)


def test_a_fifo_without_a_writer_is_an_error_not_a_hang(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "p")
    start = time.monotonic()
    with pytest.raises(InputFileError, match=r"is a FIFO that no program writes to \(waited 0.2 s\)"):
        read_source(str(tmp_path / "p"))
    assert time.monotonic() - start < 5


def test_a_fifo_is_read_like_standard_input(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "p")
    payload = npy_bytes(np.arange(10_000.0))

    def writer() -> None:
        time.sleep(0.05)  # the reader is waiting for its writer already
        with open(tmp_path / "p", "wb") as handle:
            for i in range(0, len(payload), 1000):
                handle.write(payload[i : i + 1000])
                handle.flush()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert read_source(str(tmp_path / "p")) == payload
    finally:
        thread.join()


def test_a_fifo_whose_writer_writes_nothing(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "p")
    thread = threading.Thread(target=lambda: open(tmp_path / "p", "wb").close())
    thread.start()
    try:
        with pytest.raises(InputFileError, match="closed it without writing anything|no program writes"):
            read_source(str(tmp_path / "p"))
    finally:
        thread.join()


def test_a_npy_is_read_to_its_declared_size(tmp_path: Path) -> None:
    data = npy_bytes(np.ones((3, 4), np.float32))
    (tmp_path / "x.npy").write_bytes(data + b"\0" * 100_000)  # trailing bytes: never needed, never read
    assert read_source(str(tmp_path / "x.npy")) == data


def test_a_npy_header_declaring_more_than_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "machine_memory", lambda: 2**20)
    (tmp_path / "x.npy").write_bytes(npy_bytes(np.ones((1024, 1024), np.float32))[:200])
    with pytest.raises(InputFileError, match=r"declares a \.npy array of shape \(1024, 1024\) \(float32, 4 MiB\), "
                                             r"more than this machine's 1 MiB of memory; nothing more was read"):
        read_source(str(tmp_path / "x.npy"))


def test_a_text_array_stops_at_its_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "MAX_TEXT_BYTES", 10_000)
    (tmp_path / "t.txt").write_bytes(b"1 2\n" * 5_000)
    with pytest.raises(InputFileError, match=r"holds 19.5 KiB, more than 9.77 KiB \(the most a text array may hold"):
        read_source(str(tmp_path / "t.txt"))
    monkeypatch.setattr(sys, "stdin", SimpleNamespace(buffer=io.BytesIO(b"1 2\n" * 5_000)))
    with pytest.raises(InputFileError, match="standard input holds more than 9.77 KiB.*stopped reading there"):
        read_source("-")


def test_data_of_no_format_is_read_no_further_than_its_head(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.BytesIO(b"\0" * 10_000_000)
    monkeypatch.setattr(sys, "stdin", SimpleNamespace(buffer=stream))
    assert len(read_source("-")) == limits.HEAD_BYTES
    assert stream.tell() == limits.HEAD_BYTES


def test_an_image_stream_stops_at_the_pixel_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    endless = io.BytesIO(b"\x89PNG\r\n\x1a\n" + b"\0" * (20 * 2**20))
    monkeypatch.setattr(sys, "stdin", SimpleNamespace(buffer=endless))
    with pytest.raises(InputFileError, match=r"more than 16 MiB \(the most an image within --max-pixels 1,000 can"):
        read_source("-", limits=ReadLimits(max_pixels=1000))


def test_closed_standard_input(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", None)
    assert stdin_state() == "closed"
    with pytest.raises(InputFileError, match=r"^standard input is closed \(kernel from standard input\)"):
        read_source("-", role="kernel")


def test_a_name_with_a_nul(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="cannot hold a NUL character"):
        read_source("x\0.npy", role="kernel")


@pytest.mark.parametrize(("head", "role", "text", "expected"), [
    (b"\x89PNG\r\n\x1a\n", "input", False, ReadLimits().image_bytes),
    (b"PK\x03\x04", "array", False, None),  # the machine's memory
    (b"1 2 3\n", "input", "sniff", limits.MAX_TEXT_BYTES),
    (b"\0\0\0\0", "input", "sniff", 4),  # no format: its head is all
    (b"1 2 3\n", "kernel", False, limits.MAX_KERNEL_BYTES),
])
def test_byte_budgets(head: bytes, role: str, text: object, expected: object) -> None:
    budget = byte_budget(head, role, "x", text=text)  # type: ignore[arg-type]
    assert budget is not None
    if expected is not None:
        assert budget.nbytes == expected

"""Test-only pause points: inert unless ``CONVCLI_TEST_PAUSE`` names one.

The signal tests (``tests/cli/test_signals.py``) stop a real ``convcli`` process at a
known point of its work and send it a signal there, instead of guessing with sleeps.
With ``CONVCLI_TEST_PAUSE=POINT`` and ``CONVCLI_TEST_PAUSE_FILE=PATH``, :func:`pause` at
that point writes PATH and waits (at most a minute) until the test removes it or a
signal's exception ends the wait; the test sends its signal, then removes PATH.

The points: ``read`` (inputs read, nothing reserved), ``reserved`` (every output checked
and its temporary file created), ``compute`` (before a batch is computed), ``writing``
(part-way through writing a large output), ``staged:N`` (N outputs written beside their
targets), ``committing`` (the first output renamed into place; signals are held there, so
the commit finishes or is rolled back as a whole).
"""

from __future__ import annotations

import os
import time

__all__ = ["pause"]


def pause(point: str) -> None:
    """Wait here for a signal when ``CONVCLI_TEST_PAUSE`` is ``point``; otherwise return at once."""
    if os.environ.get("CONVCLI_TEST_PAUSE") != point:
        return
    marker = os.environ.get("CONVCLI_TEST_PAUSE_FILE")
    if not marker:
        return
    with open(marker, "w", encoding="utf-8") as handle:
        handle.write(point)
    deadline = time.monotonic() + 60
    while os.path.exists(marker) and time.monotonic() < deadline:
        time.sleep(0.01)

"""Worker threads for the tile loop, and numpy's BLAS thread count while they run.

numpy's copies and its BLAS calls release the GIL, so plain Python threads keep both
(or all) cores busy on independent tiles.  Two things make that work well:

* **One BLAS thread per worker.**  OpenBLAS, numpy's usual BLAS, runs each call on its
  own thread pool; two workers calling it at once with two BLAS threads each stall one
  another (measured: 40x slower).  While workers run, the BLAS thread count is set to 1
  and restored afterwards (through OpenBLAS's ``openblas_set_num_threads``, found with
  ``ctypes`` among the libraries already loaded; nothing new is loaded).  Where the BLAS
  cannot be controlled this way (another BLAS, or a platform we don't know), the tiles
  run on the calling thread alone and the BLAS keeps its own threading.
* **Order where order matters.**  Tiles are claimed in order from a shared counter.
  Work whose floating-point result depends on the order of additions (accumulating dW,
  adding a band's gradient into dx) runs in a :class:`Turnstile`, tile after tile in
  index order, so results are bit-identical whatever the number of threads.

The number of workers is :func:`get_num_threads`: ``CONVCLI_NUM_THREADS`` if set, else
the CPUs this process may run on; :func:`set_num_threads` changes it, and
:func:`capped_threads` lowers it for the calling thread's context alone (a Dask task: Dask
already runs one task per core, and the engine's own threads on top would share them).
"""

from __future__ import annotations

import contextvars
import glob
import itertools
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Callable, Optional, TypeVar

from .trace import active_trace

if TYPE_CHECKING:  # imported when first needed: keeps `import convcli` fast
    from concurrent.futures import ThreadPoolExecutor

State = TypeVar("State")

_lock = threading.Lock()
_num_threads: Optional[int] = None
_thread_cap: contextvars.ContextVar[Optional[int]] = contextvars.ContextVar("convcli_thread_cap", default=None)
_pool: Optional[ThreadPoolExecutor] = None
_pool_size = 0
_blas: Optional[list[tuple[Callable[[], int], Callable[[int], None]]]] = None


def _default_threads() -> int:
    env = os.environ.get("CONVCLI_NUM_THREADS", "").strip()
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            pass
    try:
        return max(1, len(os.sched_getaffinity(0)))  # type: ignore[attr-defined,unused-ignore]
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def get_num_threads() -> int:
    """Number of worker threads the engine uses for its tile loop."""
    global _num_threads
    if _num_threads is None:
        _num_threads = _default_threads()
    cap = _thread_cap.get()
    return _num_threads if cap is None else min(cap, _num_threads)


def set_num_threads(n: Optional[int]) -> int:
    """Set the number of worker threads (``None``: back to the default); return the old one.

    Results do not depend on it (see the module notes).
    """
    global _num_threads
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"number of threads must be an int >= 1 or None, got {n!r}")
    previous = _num_threads if _num_threads is not None else _default_threads()
    _num_threads = n if n is not None else _default_threads()
    return previous


@contextmanager
def capped_threads(n: int) -> Iterator[None]:
    """At most ``n`` worker threads for work started in this context (this thread's, not others').

    Results do not depend on it (see the module notes).
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"number of threads must be an int >= 1, got {n!r}")
    token = _thread_cap.set(n)
    try:
        yield
    finally:
        _thread_cap.reset(token)


# ----------------------------------------------------------------------------- BLAS


def _loaded_openblas_paths() -> list[str]:
    paths: list[str] = []
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                parts = line.split(maxsplit=5)
                if len(parts) == 6 and "openblas" in os.path.basename(parts[5]).lower():
                    path = parts[5].strip()
                    if path not in paths:
                        paths.append(path)
    except OSError:
        import numpy

        root = os.path.dirname(numpy.__file__)
        for pattern in ("../numpy.libs/*openblas*", ".dylibs/*openblas*"):
            paths += sorted(glob.glob(os.path.join(root, pattern)))
    return paths


def _find_blas() -> list[tuple[Callable[[], int], Callable[[int], None]]]:
    """(get, set) thread-count functions of every OpenBLAS already loaded."""
    import ctypes

    found = []
    mode = getattr(os, "RTLD_NOLOAD", 0) | ctypes.RTLD_LOCAL
    for path in _loaded_openblas_paths():
        try:
            lib = ctypes.CDLL(path, mode=mode)
        except OSError:
            continue
        for prefix, suffix in itertools.product(("scipy_", ""), ("64_", "")):
            get = getattr(lib, f"{prefix}openblas_get_num_threads{suffix}", None)
            put = getattr(lib, f"{prefix}openblas_set_num_threads{suffix}", None)
            if get is not None and put is not None:
                get.restype, get.argtypes = ctypes.c_int, []
                put.restype, put.argtypes = None, [ctypes.c_int]
                found.append((get, put))
                break
    return found


def _blas_controls() -> Optional[list[tuple[Callable[[], int], Callable[[int], None]]]]:
    """Controls of numpy's BLAS, or None when it cannot be controlled."""
    global _blas
    if _blas is None:
        import numpy  # noqa: F401  (numpy's BLAS must be loaded before we look for it)

        _blas = _find_blas() if sys.platform != "emscripten" else []
    return _blas or None


_blas_users = 0
_blas_saved: list[int] = []


@contextmanager
def single_threaded_blas() -> Iterator[bool]:
    """Hold numpy's BLAS at one thread; yields False (and changes nothing) if it can't."""
    global _blas_users, _blas_saved
    controls = _blas_controls()
    if controls is None:
        yield False
        return
    with _lock:
        if _blas_users == 0:
            _blas_saved = [get() for get, _ in controls]
            for _, put in controls:
                put(1)
        _blas_users += 1
    try:
        yield True
    finally:
        with _lock:
            _blas_users -= 1
            if _blas_users == 0:
                for (_, put), n in zip(controls, _blas_saved):
                    put(n)


# ----------------------------------------------------------------------------- workers


class Aborted(Exception):
    """Raised in a worker waiting on a :class:`Turnstile` after another worker failed."""


class Turnstile:
    """Lets tile ``t``'s ordered section run only after tiles ``0 .. t-1``'s."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._turn = 0
        self._aborted = False

    @contextmanager
    def turn(self, t: int) -> Iterator[None]:
        with self._cond:
            while self._turn != t and not self._aborted:
                self._cond.wait()
            if self._aborted:
                raise Aborted
        try:
            yield
        finally:
            with self._cond:
                self._turn = t + 1
                self._cond.notify_all()

    def abort(self) -> None:
        with self._cond:
            self._aborted = True
            self._cond.notify_all()


class TileCounter:
    """Counts finished tiles across worker threads and reports ``(done, total)``."""

    def __init__(self, total: int, report: Optional[Callable[[int, int], None]]) -> None:
        self.total, self.report, self.done = total, report, 0
        self.lock = threading.Lock()

    def tick(self) -> None:
        if self.report is None:
            return
        with self.lock:
            self.done += 1
            self.report(self.done, self.total)


def _executor(workers: int) -> ThreadPoolExecutor:
    from concurrent.futures import ThreadPoolExecutor

    global _pool, _pool_size
    with _lock:
        if _pool is None or _pool_size < workers:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="convcli")
            _pool_size = workers
        return _pool


def _recorded(make_state: Callable[[], State], record: Callable[[object], None]) -> Callable[[], State]:
    """``make_state`` that also hands each state it makes to ``record``."""

    def make() -> State:
        state = make_state()
        record(state)
        return state

    return make


def run_tiles(
    n_tiles: int,
    make_state: Callable[[], State],
    work: Callable[[int, State], None],
    turnstile: Optional[Turnstile] = None,
    threads: Optional[int] = None,
    *,
    parallel: bool = True,
) -> None:
    """Run ``work(t, state)`` for every tile ``t``, on up to ``threads`` workers.

    Each worker calls ``make_state()`` once (its own buffers) and then claims tiles in
    increasing order.  One tile runs on the calling thread, BLAS threading untouched;
    several run with BLAS held at one thread (on the calling thread alone when
    ``threads`` is 1, ``parallel`` is False - tiles too small to be worth a thread - or
    the BLAS cannot be controlled).  The first exception is re-raised after every
    worker has stopped.
    """
    threads = (get_num_threads() if threads is None else threads) if parallel else 1
    workers = min(threads, n_tiles)
    trace = active_trace()
    if trace is not None:  # each worker's buffers are recorded as it makes them (--explain's memory)
        make_state = _recorded(make_state, trace.buffers)

    def serial() -> None:
        state = make_state()
        for t in range(n_tiles):
            work(t, state)

    if n_tiles <= 1:
        serial()
        return

    counter = itertools.count()
    failed = threading.Event()

    def loop() -> None:
        try:
            state = make_state()
            while not failed.is_set():
                t = next(counter)
                if t >= n_tiles:
                    return
                work(t, state)
        except BaseException:
            failed.set()
            if turnstile is not None:
                turnstile.abort()
            raise

    # Several tiles: BLAS on one thread whatever `threads` is, so that each tile's GEMM
    # runs the same kernel (and rounds the same) with 1 worker or many.
    with single_threaded_blas() as controlled:
        if not controlled or workers <= 1:  # (uncontrolled BLAS would fight our threads)
            serial()
            return
        pool = _executor(workers - 1)
        # each worker runs in its own copy of the caller's context (the active trace goes with it)
        futures = [pool.submit(contextvars.copy_context().run, loop) for _ in range(workers - 1)]
        errors: list[BaseException] = []
        try:
            loop()
        except BaseException as exc:  # re-raised below, once the other workers have stopped
            errors.append(exc)
        for future in futures:
            error = future.exception()
            if error is not None:
                errors.append(error)
    real = [e for e in errors if not isinstance(e, Aborted)]
    if real or errors:
        raise (real or errors)[0]

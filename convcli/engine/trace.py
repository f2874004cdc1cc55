"""A record of what a pass really did: its steps, each GEMM's shape and count, buffers and times.

``--explain`` prints the path the data took; the numbers must be the engine's own, not
a re-derivation.  A layer given a :class:`Trace` (``layer.trace = Trace()``) makes it the
*active* trace while it runs; the engine's loops ask :func:`active_trace` once, on the
calling thread, and record each product they run with the operands' real shapes
(:meth:`Trace.gemm`), each copy (:meth:`Trace.copy`), and each worker's buffers
(:meth:`Trace.buffers`, from :func:`~convcli.engine.parallel.run_tiles`).  Records of the
same shape are counted, not listed, so a trace stays a few lines long whatever the
image; with no active trace the engine pays one ``is None`` test per item.

The active trace is a :class:`contextvars.ContextVar`: worker threads get it from
``run_tiles``, which runs each worker in a copy of the caller's context.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

__all__ = ["Operation", "Step", "Trace", "active_trace", "owned_bytes", "tracing"]

_ACTIVE: ContextVar[Optional[Trace]] = ContextVar("convcli_trace", default=None)


def active_trace() -> Optional[Trace]:
    """The trace the running pass records into, or None."""
    return _ACTIVE.get()


@contextmanager
def tracing(trace: Optional[Trace]) -> Iterator[Optional[Trace]]:
    """Make ``trace`` the active trace inside the block (None: nothing is recorded)."""
    token = _ACTIVE.set(trace)
    try:
        yield trace
    finally:
        _ACTIVE.reset(token)


def owned_bytes(state: object) -> int:
    """Bytes of the distinct arrays behind ``state``'s attributes (views counted once, by their owner).

    ``state`` is a worker's buffers (:class:`~convcli.engine.tiles.Workspace` and the
    like): arrays, dicts and lists of them, or objects holding them, a few levels deep
    (the engine's plain classes; its dataclasses - plans, geometry - hold no buffers).
    """
    owners: dict[int, int] = {}
    seen: set[int] = set()

    def visit(obj: object, depth: int) -> None:
        if id(obj) in seen or depth > 4:
            return
        seen.add(id(obj))
        if isinstance(obj, np.ndarray):
            root: Any = obj
            while getattr(root, "base", None) is not None:  # as_strided's base is not an array: follow it too
                root = root.base
            if isinstance(root, np.ndarray):
                owners[id(root)] = root.nbytes
            return
        if isinstance(obj, dict):
            items: Any = obj.values()
        elif isinstance(obj, (list, tuple)):
            items = obj
        elif (hasattr(obj, "__dict__") and type(obj).__module__.startswith("convcli.engine")
              and not dataclasses.is_dataclass(obj)):  # plans and geometry are dataclasses: no buffers inside
            items = vars(obj).values()
        else:
            return
        for item in items:
            visit(item, depth + 1)

    visit(state, 0)
    return sum(owners.values())


@dataclass
class Operation:
    """Products (or copies) of one shape that a step ran, counted.

    Attributes
    ----------
    kind : {"gemm", "copy"}
    label : str
        What it computes, e.g. ``"out = W · col"``.
    a, b : tuple of int
        A GEMM's operands as ``(batch, M, K)`` and ``(batch, K, N)`` (batch: the groups,
        one product each); a copy's shape in ``a`` and its bytes in ``b``.
    count : int
        How many times it ran.
    seconds : float
        Their time added up, over all worker threads.
    """

    kind: str
    label: str
    a: tuple[int, ...]
    b: tuple[int, ...]
    count: int = 0
    seconds: float = 0.0

    @property
    def flops(self) -> int:
        """Floating-point operations of all its runs: ``2·batch·M·K·N·count`` (0 for a copy)."""
        if self.kind != "gemm":
            return 0
        batch, m, k = self.a
        return 2 * batch * m * k * self.b[2] * self.count

    @property
    def nbytes(self) -> int:
        """Bytes written by all its runs (a copy's); 0 for a GEMM."""
        return self.b[0] * self.count if self.kind == "copy" else 0


@dataclass
class Step:
    """One timed stage of a pass (choose the algorithm, the forward loop, ...).

    Attributes
    ----------
    name : str
    detail : str
        One line on what it does.
    seconds : float
        Wall time of all its calls (a picture computed band by band calls a step once a band).
    calls : int
    workers : int
        The most worker threads one call used (0: no tile loop).
    buffer_bytes : int
        The most bytes the workers' buffers held at once in one call (peak extra memory).
    result_bytes : int
        Bytes of the arrays the step returns (the output, dx, dW), added over calls.
    operations : list of Operation
    """

    name: str
    detail: str = ""
    seconds: float = 0.0
    calls: int = 0
    workers: int = 0
    buffer_bytes: int = 0
    result_bytes: int = 0
    operations: list[Operation] = field(default_factory=list)
    _call_workers: int = 0
    _call_bytes: int = 0

    @property
    def flops(self) -> int:
        return sum(op.flops for op in self.operations)


class Trace:
    """What a layer's passes did, step by step: filled by the engine while it is active (:func:`tracing`).

    Attributes
    ----------
    geometry : ConvGeometry or None
        The forward's checked geometry.
    dtype : numpy.dtype or None
        The compute dtype.
    choice : Choice or None
        The forward algorithm and why (:class:`convcli.engine.layer.Choice`).
    plan : TilePlan or None
        The forward's tile plan (im2col path).
    backward : str or None
        How the backward ran: "col2im", "correlation" or "banded".
    steps : list of Step
        In the order they first ran; a step run again (band after band) is added to.
    """

    def __init__(self) -> None:
        self.geometry: Any = None
        self.dtype: Optional[np.dtype] = None
        self.choice: Any = None
        self.plan: Any = None
        self.backward: Optional[str] = None
        self.steps: list[Step] = []
        self._open: Optional[Step] = None
        self._lock = threading.Lock()

    def find(self, name: str) -> Optional[Step]:
        """The step called ``name``, or None."""
        return next((s for s in self.steps if s.name == name), None)

    @contextmanager
    def step(self, name: str, detail: str = "") -> Iterator[Step]:
        """Time a step; the operations and buffers recorded inside it are its own."""
        step = self.find(name)
        if step is None:
            step = Step(name, detail)
            self.steps.append(step)
        outer, self._open = self._open, step
        step._call_workers = step._call_bytes = 0
        start = time.perf_counter()
        try:
            yield step
        finally:
            step.seconds += time.perf_counter() - start
            step.calls += 1
            step.workers = max(step.workers, step._call_workers)
            step.buffer_bytes = max(step.buffer_bytes, step._call_bytes)
            self._open = outer

    def _add(self, kind: str, label: str, a: tuple[int, ...], b: tuple[int, ...], seconds: float) -> None:
        step = self._open
        if step is None:
            return
        with self._lock:
            for op in step.operations:
                if op.kind == kind and op.label == label and op.a == a and op.b == b:
                    break
            else:
                op = Operation(kind, label, a, b)
                step.operations.append(op)
            op.count += 1
            op.seconds += seconds

    def gemm(self, label: str, a: tuple[int, ...], b: tuple[int, ...], seconds: float = 0.0) -> None:
        """Record a product of ``a`` (M, K) or (batch, M, K) by ``b`` (K, N) or (batch, K, N)."""
        a3 = tuple(int(v) for v in a) if len(a) == 3 else (1, int(a[0]), int(a[1]))
        b3 = tuple(int(v) for v in b) if len(b) == 3 else (1, int(b[0]), int(b[1]))
        self._add("gemm", label, a3, b3, seconds)

    def copy(self, label: str, shape: tuple[int, ...], nbytes: int, seconds: float = 0.0) -> None:
        """Record a copy into a buffer of ``shape`` (``nbytes`` written)."""
        self._add("copy", label, tuple(int(v) for v in shape), (int(nbytes),), seconds)

    def buffers(self, state: object) -> None:
        """Record one worker's buffers (called by ``run_tiles`` as each worker makes them)."""
        step = self._open
        if step is None:
            return
        nbytes = owned_bytes(state)
        with self._lock:
            step._call_workers += 1
            step._call_bytes += nbytes

    def result(self, *arrays: Optional[np.ndarray]) -> None:
        """Record the arrays the open step returns."""
        if self._open is not None:
            self._open.result_bytes += sum(a.nbytes for a in arrays if a is not None)

    @property
    def flops(self) -> int:
        """Floating-point operations of every GEMM recorded."""
        return sum(s.flops for s in self.steps)

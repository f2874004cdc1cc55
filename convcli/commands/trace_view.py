"""The ``--explain`` view: a :class:`~convcli.engine.trace.Trace` as lines a learner can follow.

Every number printed comes from the trace, which the engine filled while it ran
(:mod:`convcli.engine.trace`): the geometry it checked, the algorithm it chose and why,
its tile plan, each GEMM's operand shapes and count, its workers' buffers, its times.
Nothing is re-derived here but sums (FLOPs, bytes) and the useful multiply-adds that
the junk columns are compared with.

Neighbours: ``apply --explain`` and ``grad --explain`` (:mod:`convcli.cli.apply`,
:mod:`convcli.cli.grad`) print it; the per-pixel arithmetic is :mod:`convcli.commands.explain`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..engine.trace import Operation, Trace

__all__ = ["ExplainedRun", "explain_lines", "format_bytes", "format_count", "operation_shape"]

IM2COL_IDEA = (
    "im2col: each output pixel reads a patch of C/groups × FH × FW input values (its receptive field); "
    "written as one column each, the patches make a matrix col of K = C/groups·FH·FW rows and one column per "
    "output pixel, and the whole convolution is one matrix product per group: out (FN/groups × pixels) = "
    "W (FN/groups × K) · col (K × pixels) - each output value is a filter's row dotted with a patch's column."
)


@dataclass
class ExplainedRun:
    """One traced run: what it was run on, and its trace.

    Attributes
    ----------
    subject : str
        The inputs, as the user named them.
    trace : Trace
    """

    subject: str
    trace: Trace


def format_bytes(n: int) -> str:
    """``1536 -> '1.5 KiB'``: bytes in binary units, 3 significant digits.

    >>> format_bytes(512), format_bytes(1536), format_bytes(4 * 1024 ** 2)
    ('512 B', '1.5 KiB', '4 MiB')
    """
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.3g} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover


def format_count(n: float) -> str:
    """``2.5e6 -> '2.5 M'``: a count in SI units, 3 significant digits.

    >>> format_count(950), format_count(2_500_000), format_count(1.2e10)
    ('950', '2.5 M', '12 G')
    """
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.3g}"


def operation_shape(op: Operation) -> str:
    """A GEMM as ``'[groups ×] M×K · K×N'``; a copy as its buffer's shape and bytes."""
    if op.kind == "copy":
        return "×".join(str(v) for v in op.a) + f" ({format_bytes(op.b[0])})"
    batch, m, k = op.a
    n = op.b[2]
    return (f"{batch} × " if batch > 1 else "") + f"{m}×{k} · {k}×{n}"


def _shape(values: Any) -> str:
    return "(" + ", ".join(str(v) for v in values) + ")"


def _pair(values: Any) -> str:
    return f"{values[0]}×{values[1]}"


def _useful_macs(g: Any) -> int:
    """Multiply-adds of the convolution itself: N·FN·OH·OW·(C/groups)·FH·FW."""
    return g.batch * g.filters * g.out_h * g.out_w * g.channels_per_group * g.kernel_h * g.kernel_w


def _tiles_line(trace: Trace) -> str:
    plan = trace.plan
    tiles, chunks = plan.tiles, plan.chunks
    rows = sorted({t.rows for t in tiles})
    images = sorted({t.images for t in tiles})
    row_text = f"{rows[0]}" if len(rows) == 1 else f"{rows[0]}-{rows[-1]}"
    image_text = f"{images[0]}" if len(images) == 1 else f"{images[0]}-{images[-1]}"
    g = plan.geom
    wq = max(lay.wq for lay in plan.layouts.values())
    text = (f"{len(tiles)} tile(s) of {row_text} output row(s) × {image_text} image(s)"
            f"{'' if len(chunks) == 1 else f', the reduction split in {len(chunks)} chunks (their GEMMs add up)'}; "
            f"each output row is computed {wq} wide: OW = {g.out_w} real columns")
    if wq > g.out_w:
        text += (f" + {wq - g.out_w} junk column(s) that reach past the row and are dropped "
                 "(the price of one copy per tap)")
    if plan.direct:
        text += "; depthwise: each tap's run is multiplied in place, no column matrix is built"
    return text


def explain_lines(run: ExplainedRun) -> list[str]:
    """The explanation of one run, as plain lines (rich markup-free), in the order the data flowed.

    Returns
    -------
    list of str
        input -> padding -> kernel -> algorithm -> tiles -> each step's operations (shapes,
        runs, FLOPs, time, workers and their buffers) -> output, then totals.
    """
    trace = run.trace
    g = trace.geometry
    lines = [f"explain: {run.subject}"]
    if g is None:
        return [*lines, "  (nothing ran)"]
    t, b, left, r = g.pads
    hp, wp = g.padded_hw
    mode = f"constant:{g.pad_value:g}" if g.padding_mode == "constant" else g.padding_mode
    lines.append(f"  input      x (N, C, H, W) = {_shape(g.input_shape)}, computed in {trace.dtype}")
    lines.append(f"  padding    {mode}: top {t}, bottom {b}, left {left}, right {r} -> padded {hp}×{wp} "
                 "(never stored whole: each tile reads its window, the padding filled as it is read)")
    lines.append(f"  kernel     W (FN, C/groups, FH, FW) = ({g.filters}, {g.channels_per_group}, {g.kernel_h}, "
                 f"{g.kernel_w}), groups {g.groups}, stride {_pair(g.stride)}, dilation {_pair(g.dilation)}")
    forward = next((s for s in trace.steps if s.name.startswith("forward")), None)
    if trace.choice is not None:
        lines.append(f"  algorithm  {trace.choice.algorithm}: {trace.choice.reason}")
        if trace.choice.algorithm == "im2col":
            lines.append(f"             {IM2COL_IDEA}")
            if trace.plan is not None:
                lines.append(f"  tiles      {_tiles_line(trace)}")
    for step in trace.steps:
        if not step.operations and not step.seconds:
            continue
        head = f"  step       {step.name}: {step.seconds * 1000:.3g} ms"
        if step.calls > 1:
            head += f" over {step.calls} calls (bands of output rows)"
        if step.workers:
            head += (f", {step.workers} worker(s), peak extra memory {format_bytes(step.buffer_bytes)} "
                     "(the workers' tile buffers)")
        if step.result_bytes:
            head += f", result {format_bytes(step.result_bytes)}"
        lines.append(head)
        if step.detail and step is not forward:
            lines.append(f"             why: {step.detail}")
        for op in step.operations:
            if op.kind == "gemm":
                lines.append(f"    GEMM     {op.label}: {operation_shape(op)}, ×{op.count}, "
                             f"{format_count(op.flops)}FLOP, {op.seconds * 1000:.3g} ms")
            else:
                lines.append(f"    copy     {op.label}: {operation_shape(op)} per run, ×{op.count}, "
                             f"{format_bytes(op.nbytes)} written, {op.seconds * 1000:.3g} ms")
    lines.append(f"  output     out (N, FN, OH, OW) = {_shape(g.output_shape)}")
    if forward is not None:
        done = (f"{format_count(forward.flops)}FLOP in GEMMs (junk columns and banded zeros included)"
                if forward.flops else "no GEMMs (running sums: additions only)")
        lines.append(f"  forward    {done}; the 2-D sum itself, 2·N·FN·OH·OW·C/groups·FH·FW, is "
                     f"{format_count(2 * _useful_macs(g))}FLOP")
    if trace.backward is not None:
        back = next(s for s in trace.steps if s.name.startswith("backward"))
        lines.append(f"  backward   {trace.backward}: {back.detail}; dx {_shape(g.input_shape)}, "
                     f"dW ({g.filters}, {g.channels_per_group}, {g.kernel_h}, {g.kernel_w}); "
                     f"{format_count(back.flops)}FLOP in GEMMs")
    return lines

"""``convcli apply``: kernels + inputs -> layer -> feature maps -> files.

:func:`apply_command` is the whole command: it checks the output options, reads the
kernels and inputs, and calls :func:`apply_filters`, which groups inputs into batches,
builds each layer once (its padding mode by the input's kind when none is given:
:func:`~convcli.commands.common.padding_for`), optionally combines the maps of several
kernels (``--combine``, :mod:`convcli.kernels.combine`), names every output file and
checks them all (:mod:`convcli.commands.apply_outputs`), then computes and writes them all
or nothing.  Everything here raises :class:`~convcli.errors.ConvcliError` for bad input and
writes nothing until every input has been read and checked.  :func:`display_for` picks the
default PNG display.

Neighbours: kernels + options -> the layer is :mod:`convcli.kernels.bank`; reading inputs
:mod:`convcli.io.inputs`; output names :mod:`convcli.commands.apply_outputs`; one batch's
forward pass and the bytes of its files :mod:`convcli.commands.render`; atomic writes
:mod:`convcli.io.outputs`; the Typer command :mod:`convcli.cli.apply`.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Optional

import numpy as np

from ..engine.geometry import plan_geometry, valid_region
from ..engine.layer import Convolution
from ..engine.memory import allocation_guard, check_result_size
from ..engine.trace import Trace
from ..errors import ParameterError
from ..hooks import pause
from ..io.display import default_display
from ..io.formats import PICTURE_FORMATS
from ..io.images import encode_pixels
from ..io.inputs import LoadedInput, load_input
from ..io.outputs import OutputSet, check_folder, protected_files, refuse_terminal
from ..kernels.bank import LayerOptions, LayerWeights, layer_from_weights, layer_weights, working_dtype
from ..kernels.combine import check_combine, combine_maps
from ..kernels.kernel import Kernel, filter_sums, is_zero_sum
from ..kernels.spec import parse_kernels
from .apply_outputs import (
    Batch,
    Output,
    OutputOptions,
    check_output_options,
    is_directory_target,
    map_names,
    plan_outputs,
    resolve_format,
    split_note,
)
from .common import (
    QUIET,
    Reporter,
    SharedOptions,
    check_work_size,
    format_shape,
    padding_for,
    read_limits,
    said_warnings,
    target_name,
)
from .render import FileSpec, render
from .stream import stream_npy

if TYPE_CHECKING:  # the views asked for by an option are imported when asked for (a plain run starts faster)
    from .equivalent import EquivalentSet
    from .montages import ApplyMontage
    from .trace_view import ExplainedRun

__all__ = [
    "PROGRESS_MIN_VALUES", "OutputOptions", "Written", "apply_command", "apply_filters", "check_output_options",
    "display_for", "resolve_format",
]

#: Inputs holding at least this many values get a progress bar even when they are one batch.
PROGRESS_MIN_VALUES = 4_000_000


def display_for(weights: LayerWeights, combine: Optional[str] = None, kernels: int = 1) -> str:
    """The default PNG display of a layer: :func:`convcli.io.display.default_display` of its float64 filters.

    Decided from the float64 weights after scale, normalize and flip (as the layer runs
    them), never from a float32 copy, whose rounding would make a zero-sum kernel look
    positive.  Maps combined from ``kernels`` 2-D kernels are shown as users of the
    combining tools see them: ``sum`` as the summed kernel would be; ``max`` and
    ``maxabs`` clipped (an edge-strength map, bright edges on black, as ImageMagick's
    Lighten and libvips's compass show it), unless every kernel sums below 0 (``max``
    then offsets); ``min`` clipped when every kernel sums above 0 (a blur-like set),
    else offset (the minimum of zero-sum kernels is mostly negative, which clip would
    show black).
    """
    if combine is None:
        return default_display(*filter_sums(weights.W))
    if combine == "sum":
        w = weights.W
        return default_display(*filter_sums(w.reshape(-1, kernels, *w.shape[1:]).sum(axis=1)))
    if combine == "maxabs":
        return "clip"
    sums, magnitudes = filter_sums(weights.W)
    signed = np.where(np.asarray(is_zero_sum(sums, magnitudes), dtype=bool), 0.0, np.sign(sums))
    if combine == "max":
        return "offset" if np.all(signed < 0) else "clip"
    return "clip" if np.all(signed > 0) else "offset"


def _displays(chosen: Optional[str], weights: LayerWeights, combine: Optional[str], kernels: int,
              maps: int) -> list[str]:
    """Each map's picture display: ``chosen`` for all, else each filter's own default (:func:`display_for` of
    that filter alone: blur maps clipped beside sobel maps offset), one for maps ``--combine`` made."""
    if chosen is not None:
        return [chosen] * maps
    if combine is not None:
        return [display_for(weights, combine, kernels)] * maps
    sums, magnitudes = filter_sums(weights.W)
    return [default_display([s], [m]) for s, m in zip(np.ravel(sums), np.ravel(magnitudes))]


@dataclass
class Written:
    """One file (or stream) ``apply`` wrote, and the padding mode its layer ran."""

    path: str
    shape: tuple[int, ...]
    format: str
    display: Optional[str] = None
    bits: Optional[int] = None
    padding: Optional[str] = None
    ranges: list[Optional[tuple[float, float]]] = field(default_factory=list)
    thumbnail: Optional[np.ndarray] = None


def _equivalents(item: LoadedInput, weights: LayerWeights, options: LayerOptions,
                 combine: Optional[str]) -> EquivalentSet:
    """The other tools' calls for ``item``'s job, from the float64 weights as the layer runs them."""
    from .equivalent import EquivalentSet, InputSource, equivalents

    geom = plan_geometry(item.shape, weights.W.shape, options.stride, options.pad, options.dilation, weights.groups,
                         str(options.padding_mode))
    source = InputSource(item.name, item.kind, item.shape[1], item.divisor)
    items = equivalents(source, geom, np.asarray(weights.W, np.float64),
                        None if weights.b is None else np.asarray(weights.b, np.float64))
    if combine is not None:
        for one in items:
            one.notes.append(f"--combine {combine} is not part of this call: reduce the maps of each channel after it")
    return EquivalentSet(target_name(item.name), items)


def _batch_progress(report: Callable[[float, int], None], index: int, batches: int, fraction: float) -> None:
    """``fraction`` of batch ``index`` done, as progress over all batches."""
    report(index + fraction, batches)


def apply_filters(
    inputs: Sequence[LoadedInput],
    kernels: Sequence[Kernel],
    layer_options: LayerOptions,
    output_options: OutputOptions,
    *,
    protect: Sequence[str] = (),
    on_progress: Optional[Callable[[float, int], None]] = None,
    combine: Optional[str] = None,
    label: Optional[str] = None,
    on_note: Optional[Callable[[str], None]] = None,
    explain: Optional[list[ExplainedRun]] = None,
    equivalent: Optional[list[EquivalentSet]] = None,
    montage: Optional[str] = None,
    preview: bool = False,
) -> list[Written]:
    """Filter every input and write the feature maps (and a montage of them).

    Inputs whose (C, H, W), dtype and padding mode agree form one batch and go through
    one forward pass; the others are processed batch by batch, each channel count,
    compute dtype and padding mode building its layer once.  Every input, the layer's
    geometry, the size of every result and every output name are checked before
    anything is computed or written.

    Parameters
    ----------
    inputs : sequence of LoadedInput
        Each with data of shape (N_i, C, H, W).
    kernels : sequence of Kernel
        Stacked into one filter bank (see :func:`convcli.kernels.bank.filter_bank`).
    layer_options, output_options
        See :class:`LayerOptions` and :class:`OutputOptions`.  A padding mode of None is
        each input's default (:func:`~convcli.commands.common.padding_for`: replicate for
        images, zeros for arrays).
    protect : sequence of str
        Paths never to overwrite (the input files).
    on_progress : callable(done, total), optional
        Progress for display: ``done`` batches out of ``total``, fractional while a
        batch's tiles are being computed (called from the engine's worker threads).
    combine : {None, "sum", "max", "min", "maxabs"}
        Reduce the maps of the 2-D kernels to one per channel
        (:func:`convcli.kernels.combine.combine_maps`): (N, C, OH, OW) instead of
        (N, C*M, OH, OW).
    label : str, optional
        The kernels' part of default output names; default their labels joined by ``+``.
    on_note : callable(str), optional
        Told, in one line, when the output named by ``-o`` becomes several files (inputs
        of several shapes for one ``.npy``, several images or maps for one PNG).
    explain : list, optional
        Given, each batch's layer records what it ran (:class:`~convcli.engine.trace.Trace`)
        and an :class:`~convcli.commands.trace_view.ExplainedRun` per batch is appended.
    equivalent : list, optional
        Given, each input's job as other tools' calls is appended
        (:func:`convcli.commands.equivalent.equivalents`).
    montage : str, optional
        A PNG (or ``-``) to draw every map of every image in, labelled, with its range
        (:mod:`convcli.commands.montages`).  The maps are then computed whole, a batch at a
        time.  Without ``output_options.output`` only the montage is written.
    preview : bool
        Keep a thumbnail (:func:`convcli.visual.preview.thumbnail`) of the first picture
        written (a map file, else the montage) in its :attr:`Written.thumbnail`.

    Returns
    -------
    list of Written
        What was written, in order.

    Raises
    ------
    MemoryLimitError
        A result larger than the machine's memory (:func:`check_result_size`), work
        buffers that could never fit (:func:`~convcli.commands.common.check_work_size`), or
        a result numpy could not allocate.
    ParameterError
        ``combine`` unknown, or given for layer (4-D) kernels.
    OutputFileError
        An output that cannot be written, found before any work (every output is
        reserved first: :class:`~convcli.io.outputs.OutputSet`).
    """
    fmt = check_output_options(output_options)
    if montage is not None:
        from .montages import check_montage

        check_montage(montage)
    if not kernels:
        raise ParameterError("no kernel given; expected at least one -k KERNEL")
    if combine is not None:
        combine = check_combine(combine)
        if kernels[0].is_layer:
            raise ParameterError(
                f"--combine reduces the maps of 2-D kernels, one per channel; '{kernels[0].label}' is a layer kernel "
                f"{kernels[0].weights.shape} whose filters already mix channels"
            )

    name = label if label is not None else "+".join(k.label for k in kernels)
    combined_label = name + (f"-{combine}" if combine else "")
    weights: dict[int, LayerWeights] = {}  # float64, per channel count
    # per channel count, compute dtype, padding and the samples' divisor (8/16-bit images stay integers)
    layers: dict[tuple[int, str, str, Optional[float]], Convolution] = {}
    batches: list[Batch] = []
    by_shape: dict[tuple[object, ...], Batch] = {}
    for item in inputs:
        shape_in = item.shape
        channels = shape_in[1]
        options = padding_for(layer_options, item.kind)
        padding = str(options.padding_mode)
        key = (*shape_in[1:], str(item.samples.dtype), padding, item.divisor)
        if key not in by_shape:
            dtype = working_dtype(item.samples, options.dtype)
            if channels not in weights:
                weights[channels] = layer_weights(kernels, channels, options)
            layer_key = (channels, dtype.str, padding, item.divisor)
            if layer_key not in layers:
                layers[layer_key] = layer_from_weights(weights[channels], options, dtype, item.divisor)
            layer = layers[layer_key]
            shape = layer.output_shape(shape_in)  # checks the geometry before any work
            maps = channels if combine is not None else shape[1]
            names = map_names([k.label for k in kernels], [k.filters for k in kernels], channels, item.kind,
                              layer=kernels[0].is_layer, combined=None if combine is None else combined_label)
            m = 0 if kernels[0].is_layer else (1 if combine is not None else len(kernels))
            by_shape[key] = Batch([], layer, dtype, (0, *shape[1:]), maps, padding, names, m,
                                  _displays(output_options.display, weights[channels], combine, len(kernels), maps))
            batches.append(by_shape[key])
        batch = by_shape[key]
        batch.inputs.append(item)
        if equivalent is not None:
            equivalent.append(_equivalents(item, weights[channels], options, combine))
        batch.output_shape = (batch.output_shape[0] + shape_in[0], *batch.output_shape[1:])
    streamable = montage is None and explain is None  # a montage and a trace need the whole result
    for batch in batches:
        # a stride past the input first: its message says so, the general one would not
        check_work_size(batch.layer, (batch.output_shape[0], *batch.inputs[0].shape[1:]), batch.dtype)
        work = batch.layer.work_bytes(batch.inputs[0].shape, batch.dtype)
        if not (streamable and _streams(batch, fmt, output_options)):  # a streamed result lies on disk
            check_result_size(batch.output_shape, batch.dtype, work=work)

    sixteen = output_options.bit_depth is None and bool(inputs) and all(
        i.kind == "image" and i.bits == 16 for i in inputs
    )
    only_montage = montage is not None and output_options.output is None
    outputs = [] if only_montage else plan_outputs(batches, fmt, output_options, combined_label)
    note = split_note(output_options, outputs, len(batches))
    if note is not None and on_note is not None:
        on_note(note)

    reduce = None if combine is None else functools.partial(combine_maps, kernels=len(kernels), mode=combine)
    written: list[Written] = []
    # every output checked and its place made before any work; all written, or none
    with OutputSet(protect) as files:
        files.reserve([o.path for o in outputs] + ([] if montage is None else [montage]),
                      hint="use {stem}, {kernel} or {map} in -o")
        grid = None
        if montage is not None:
            from .montages import ApplyMontage

            grid = ApplyMontage()
        for index, batch in enumerate(batches):
            mine = [out for out in outputs if out.batch is batch]
            specs = []
            for out in mine:
                one_map = (out.maps is not None and len(out.maps) == 1) or batch.maps == 1
                bits = output_options.bit_depth or (16 if sixteen and one_map and out.format == "png" else 8)
                specs.append(FileSpec(out.first, out.stop, out.maps, out.format, bits))
            report = None if on_progress is None else functools.partial(
                _batch_progress, on_progress, index, len(batches)
            )
            pause("compute")
            work = batch.layer.work_bytes(batch.inputs[0].shape, batch.dtype)
            if streamable and _streams(batch, fmt, output_options):
                if all(files.targets[out.path].kind == "file" for out in mine):
                    for out in mine:
                        _stream_output(files, out, batch, report, reduce)
                        streamed: tuple[int, ...] = (out.stop - out.first, batch.maps, *batch.output_shape[2:])
                        written.append(Written(out.path, streamed, out.format, padding=batch.padding))
                    continue
                check_result_size(batch.output_shape, batch.dtype, work=work)  # a FIFO or device: bytes in memory
            with allocation_guard(batch.output_shape, batch.dtype, work=work):
                samples = [i.samples for i in batch.inputs]
                data = np.concatenate(samples) if len(samples) > 1 else samples[0]
                if data.dtype.kind == "f":  # float arrays compute in the batch's dtype; integers convert per tile
                    data = data.astype(batch.dtype, copy=False)
                keep = None if grid is None else functools.partial(
                    _keep, grid, batch, valid_region(batch.layer.geometry(tuple(data.shape))))
                rendered = render(batch.layer, data, specs, batch.displays, png_level=output_options.png_level,
                                  quality=output_options.quality, progress=report, transform=reduce, keep=keep)
                trace = None if explain is None else Trace()
                batch.layer.trace = trace  # render computes as it yields: traced until the last file
                try:
                    for index_out, done in enumerate(rendered):
                        out = mine[index_out]
                        files.write(out.path, done.data)
                        picture = done.spec.format in PICTURE_FORMATS
                        shown = sorted({batch.displays[j] for j in (out.maps or range(batch.maps))})
                        written.append(Written(out.path, done.shape, out.format, "+".join(shown) if picture else None,
                                               done.spec.bits if picture else None, batch.padding, done.ranges))
                        if preview and done.pixels is not None and not any(w.thumbnail is not None for w in written):
                            from ..visual.preview import thumbnail

                            written[-1].thumbnail = thumbnail(done.pixels)
                finally:
                    batch.layer.trace = None
                if explain is not None and trace is not None:
                    from .trace_view import ExplainedRun

                    explain.append(ExplainedRun(", ".join(target_name(i.name) for i in batch.inputs), trace))
        if grid is not None and montage is not None:
            from ..visual.preview import thumbnail
            from .montages import montage_picture

            pause("compute")
            title = f"convcli apply -k {combined_label}: {len(grid.tiles)} maps"
            grid_picture = montage_picture(grid.tiles, title)
            files.write(montage, encode_pixels(grid_picture, "png", level=9))  # small: the smallest file
            written.append(Written(montage, (len(grid.tiles),), "montage"))
            if preview and not any(w.thumbnail is not None for w in written):
                written[-1].thumbnail = thumbnail(grid_picture)
    return written


def _image_labels(batch: Batch) -> list[str]:
    """A label per image of a batch: its input's stem, with ``[i]`` for the images of a batch file."""
    return [item.stem if item.shape[0] == 1 else f"{item.stem}[{i}]"
            for item in batch.inputs for i in range(item.shape[0])]


def _keep(grid: ApplyMontage, batch: Batch, region: tuple[slice, slice], result: np.ndarray) -> None:
    """A batch's result into the montage."""
    grid.add(result, batch.names, _image_labels(batch), batch.kernels == 0, region)


def _streams(batch: Batch, fmt: Optional[str], options: OutputOptions) -> bool:
    """True when ``batch`` is one memory-mapped ``.npy`` whose result goes to ``.npy`` files, band by band."""
    return (
        options.stream is not False and len(batch.inputs) == 1 and batch.inputs[0].mapped is not None
        and (fmt or "npy") == "npy" and options.output != "-"
    )


def _stream_output(files: OutputSet, out: Output, batch: Batch, report: Optional[Callable[[float], None]],
                   reduce: Optional[Callable[[np.ndarray], np.ndarray]]) -> None:
    """Write one ``.npy`` output of a streamed batch into its temporary file (:func:`.stream.stream_npy`)."""
    item = batch.inputs[0]
    data = item.samples[out.first:out.stop]
    shape = (out.stop - out.first, batch.maps, *batch.output_shape[2:])
    files.stage_with(out.path, lambda fd: stream_npy(batch.layer, data, item.mapped, fd, out.path, shape,
                                                     batch.dtype, transform=reduce, progress=report))


def apply_command(
    inputs: Sequence[str],
    kernels: Sequence[str],
    shared: SharedOptions,
    output_options: OutputOptions,
    report: Reporter = QUIET,
    combine: Optional[str] = None,
    explain: Optional[list[ExplainedRun]] = None,
    equivalent: Optional[list[EquivalentSet]] = None,
    montage: Optional[str] = None,
    preview: bool = False,
) -> list[Written]:
    """``convcli apply``: read the kernels and inputs, filter, write; every output checked before any input is read.

    Parameters
    ----------
    inputs : sequence of str
        Paths or ``-`` (:func:`convcli.io.inputs.load_input`).
    kernels : sequence of str
        Kernel specs (:func:`convcli.kernels.spec.parse_kernels`; one spec may give several).
    shared : SharedOptions
        The layer options and how inputs are read.
    output_options : OutputOptions
    report : Reporter
        Told each input's notes, progress (for several inputs or large ones) and each file
        written, with the padding mode its layer ran.
    combine : {None, "sum", "max", "min", "maxabs"}
        As :func:`apply_filters`.
    explain : list, optional
        As :func:`apply_filters`: filled with each batch's trace.
    equivalent : list, optional
        As :func:`apply_filters`: filled with each input's job in other tools.
    montage : str, optional
        As :func:`apply_filters`.
    preview : bool
        As :func:`apply_filters`.

    Returns
    -------
    list of Written
        As :func:`apply_filters`; the report ends with a summary line (inputs, files, time).
    """
    started = time.perf_counter()
    check_output_options(output_options)  # a bad name or option is reported before any input is read
    if montage is not None:
        from .montages import check_montage

        check_montage(montage)
    if combine is not None:
        combine = check_combine(combine)
    if output_options.output == "-":
        refuse_terminal("-o -")
    elif output_options.output is not None:  # /proc/x.png: found before a long read, not after
        check_folder(output_options.output, into=is_directory_target(output_options.output))
    if montage == "-":
        refuse_terminal("--montage -")
    elif montage is not None:
        check_folder(montage)
    options = shared.layer_options()
    limits = read_limits(shared)
    with said_warnings(report):  # library warnings: one line each, and only when the command succeeds
        specs = [parse_kernels(spec) for spec in kernels]
        parsed = [kernel for spec in specs for kernel in spec.kernels]
        loaded = [
            load_input(source, gray=shared.gray, keep_alpha=shared.keep_alpha, limits=limits,
                       stream=output_options.stream)
            for source in inputs
        ]
        pause("read")
        for item in loaded:
            for note in item.notes:
                report.say(f"{target_name(item.name)}: {note}")
        protect = protected_files(*inputs, *kernels, shared.bias)
        large = sum(item.samples.size for item in loaded) >= PROGRESS_MIN_VALUES
        with report.progress("filtering", len(loaded), show=len(loaded) > 1 or large) as on_progress:
            written = apply_filters(loaded, parsed, options, output_options, protect=protect, on_progress=on_progress,
                                    combine=combine, label="+".join(spec.label for spec in specs), on_note=report.say,
                                    explain=explain, equivalent=equivalent, montage=montage, preview=preview)
    if shared.gray and equivalent:
        for found in equivalent:
            for one in found.items:
                if one.code is not None and one.language == "python":
                    one.notes.append("--gray: PIL's convert('L') rounds the luma to 8 bits, convcli's keeps it in "
                                     "float (the results differ by up to sum|k| / 510)")
    for done in written:
        if done.format == "montage":
            report.say(f"wrote {target_name(done.path)} (montage of {done.shape[0]} maps)")
            continue
        how = f", display {done.display}" if done.display else ""
        how += f", {done.bits}-bit" if done.bits == 16 else ""
        how += f", padding {done.padding}" if done.padding else ""
        report.say(f"wrote {target_name(done.path)} ({done.format}, {format_shape(done.shape)}{how})")
    report.say(summary(loaded, written, time.perf_counter() - started))
    return written


def _span(ranges: Sequence[Optional[tuple[float, float]]]) -> str:
    """The values of some maps, ``lo..hi`` (``no finite value`` when none is)."""
    found = [r for r in ranges if r is not None]
    if not found:
        return "none finite"
    return f"{min(r[0] for r in found):.4g}..{max(r[1] for r in found):.4g}"


def summary(loaded: Sequence[LoadedInput], written: Sequence[Written], seconds: float) -> str:
    """One line on a whole run: its inputs and their shapes, the files written, the values, the time.

    >>> summary([], [], 0.0123)
    'apply: 0 inputs -> 0 files, 12.3 ms'
    """
    shapes = sorted({format_shape(item.shape) for item in loaded})
    inputs = f"{len(loaded)} input{'s' if len(loaded) != 1 else ''}" + (f" ({', '.join(shapes[:3])}"
                                                                      f"{', ...' if len(shapes) > 3 else ''})"
                                                                      if shapes else "")
    maps = [w for w in written if w.format != "montage"]
    files = f"{len(written)} file{'s' if len(written) != 1 else ''}"
    values = f", values {_span([r for w in maps for r in w.ranges])}" if any(w.ranges for w in maps) else ""
    return f"apply: {inputs} -> {files}{values}, {seconds * 1000:.1f} ms"

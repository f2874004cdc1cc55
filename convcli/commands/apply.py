"""``convcli apply``: kernels + inputs -> layer -> feature maps -> files.

:func:`apply_command` is the whole command: it checks the output options, reads the
kernels and inputs, and calls :func:`apply_filters`, which groups inputs into batches,
builds each layer once, names every output file (:func:`resolve_format`, the default
names ``STEM-KERNEL.png``, ``{stem}``/``{map}`` templates, one file per map or per image
where a format needs it) and checks them all, then computes and writes them all or
nothing.  Everything here raises :class:`~convcli.errors.ConvcliError` for bad input and
writes nothing until every input has been read and checked.

Neighbours: kernels + options -> the layer is :mod:`convcli.kernels.bank`; reading inputs
:mod:`convcli.io.inputs`; floats -> pixels :mod:`convcli.io.display`; PNG encoding
:mod:`convcli.io.images`; atomic writes :mod:`convcli.io.outputs`; the Typer command
:mod:`convcli.cli.apply`.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
from numpy.typing import NDArray

from ..engine.layer import Convolution
from ..engine.memory import allocation_guard, check_result_size
from ..errors import OutputFileError, ParameterError
from ..hooks import pause
from ..io.display import default_display, to_display
from ..io.formats import OUTPUT_FORMATS, check_display, extension_for, format_for_path
from ..io.images import encode_png, encode_tiff_float
from ..io.inputs import STDIN_NAME, LoadedInput, load_input
from ..io.outputs import OutputSet, check_folder, npy_bytes, npz_bytes, protected_files, refuse_terminal
from ..kernels.bank import LayerOptions, LayerWeights, layer_from_weights, layer_weights, working_dtype
from ..kernels.kernel import Kernel, filter_sums
from ..kernels.spec import parse_kernel
from .common import (
    QUIET,
    Reporter,
    SharedOptions,
    check_work_size,
    format_shape,
    read_limits,
    said_warnings,
    target_name,
)

__all__ = [
    "PROGRESS_MIN_VALUES", "OutputOptions", "Written", "apply_command", "apply_filters", "check_output_options",
    "display_for", "resolve_format",
]

#: Inputs holding at least this many values get a progress bar even when they are one batch.
PROGRESS_MIN_VALUES = 4_000_000


def display_for(weights: LayerWeights) -> str:
    """The default PNG display of a layer: :func:`convcli.io.display.default_display` of its float64 filters.

    Decided from the float64 weights after flip and normalize (as the layer runs them),
    never from a float32 copy, whose rounding would make a zero-sum kernel look positive.
    """
    sums, magnitudes = filter_sums(weights.W)
    return default_display(sums, magnitudes)


@dataclass
class OutputOptions:
    """Where and how ``apply`` writes.

    Attributes
    ----------
    output : str or None
        A path, a template with ``{stem}`` and ``{map}``, ``-`` for standard output,
        a directory (existing, or ending in a separator) to put the default names in,
        or None: beside each input, named ``{stem}-{label}.{ext}``.
    format : str or None
        png, tiff, npy or npz; None: from ``output``'s extension, else png for each
        image input and npy for each array input (npy for ``-``).  A format that
        contradicts ``output``'s extension is refused.
    display : str or None
        PNG mapping (clip, abs, minmax, offset); None: clip when every filter's sum is
        positive, offset when any is zero-sum (sobel, log), negative or NaN
        (:func:`display_for`).
    bit_depth : int or None
        8 or 16 for PNG.  A 16-bit PNG holds one map, so several maps give one file each.
        None: from the inputs, 16 for each one-map PNG when every input is a 16-bit
        image (16-bit gray PNG or TIFF, float TIFF), else 8.
    """

    output: Optional[str] = None
    format: Optional[str] = None
    display: Optional[str] = None
    bit_depth: Optional[int] = None


@dataclass
class Written:
    """One file (or stream) ``apply`` wrote."""

    path: str
    shape: tuple[int, ...]
    format: str
    display: Optional[str] = None
    bits: Optional[int] = None


@dataclass
class _Batch:
    """Inputs of one (C, H, W) and dtype, run through one forward pass of ``layer``."""

    inputs: list[LoadedInput]
    layer: Convolution
    dtype: np.dtype
    output_shape: tuple[int, int, int, int]


@dataclass
class _Output:
    """One file to write: images ``first:stop`` of a batch's result, one map or all."""

    path: str
    batch: _Batch
    first: int
    stop: int
    map_index: Optional[int]
    format: str


def _is_directory_target(output: Optional[str]) -> bool:
    """True when -o names a folder to write into: an existing directory, or a name ending in a separator."""
    if output is None or output == "-":
        return False
    return os.path.isdir(output) or output.endswith(("/", os.sep))


def resolve_format(options: OutputOptions) -> Optional[str]:
    """The output format, from ``options.format``, the output's extension, or None: per input, by its kind.

    Without a format, output ``-`` gives npy and a file name its extension's format; with no
    output (or one naming a directory) each input gets png when it is an image, npy when an array.

    Raises
    ------
    ParameterError
        An unknown format, or one that contradicts the output name's extension
        (format "png" for output "t.npy").
    OutputFileError
        An output name with no known extension and no format.
    """
    named = options.output is not None and options.output != "-" and not _is_directory_target(options.output)
    # the fields filled with a stand-in, so that '{stem}.png' still ends in .png
    from_name = format_for_path(str(options.output).replace("{stem}", "x").replace("{map}", "0")) if named else None
    if options.format is not None:
        fmt = options.format.lower()
        fmt = "tiff" if fmt == "tif" else fmt
        if fmt not in OUTPUT_FORMATS:
            raise ParameterError(f"--format must be one of {', '.join(OUTPUT_FORMATS)}, got {options.format!r}")
        if from_name is not None and from_name != fmt:
            raise ParameterError(
                f"--format {fmt} contradicts the output name {options.output!r} ({from_name}); "
                f"name it {extension_for(fmt)} or leave --format out"
            )
        return fmt
    if options.output == "-":
        return "npy"
    if named:
        if from_name is None:
            raise OutputFileError(
                f"cannot tell the output format of {options.output!r}; "
                "expected a .png, .tif, .npy or .npz name, or --format"
            )
        return from_name
    return None


def check_output_options(options: OutputOptions) -> Optional[str]:
    """Check the output options that need no input (format, display, bit depth); return :func:`resolve_format`.

    Callers run it before reading any input, so a bad name or option is reported first.

    Raises
    ------
    ParameterError, OutputFileError
        As :func:`resolve_format`; a display mode that is not one of clip, abs, minmax,
        offset; a bit depth other than 8 or 16.
    """
    fmt = resolve_format(options)
    if options.display is not None:
        check_display(options.display)
    if options.bit_depth is not None and options.bit_depth not in (8, 16):
        raise ParameterError(f"--bit-depth must be 8 or 16, got {options.bit_depth}")
    return fmt


def _templated(path: str, need_stem: bool, need_map: bool) -> str:
    """``path`` with ``-{stem}`` / ``-{map}`` inserted before the extension where needed."""
    root, ext = os.path.splitext(path)
    if need_stem and "{stem}" not in path:
        root += "-{stem}"
    if need_map and "{map}" not in path:
        root += "-{map}"
    return root + ext


def _fill(template: str, stem: str, map_index: Optional[int]) -> str:
    """``template`` with its fields filled; ``{map}`` is 0 when one file holds every map."""
    return template.replace("{stem}", stem).replace("{map}", str(map_index or 0))


def _pages(fmt: str, n_maps: int, bit_depth: int = 8) -> list[Optional[int]]:
    """Map indices written as separate files, or [None] for one file with every map.

    An 8-bit PNG holds 1, 3 or 4 maps as one image (gray, RGB, RGBA); a 16-bit PNG only
    one (Pillow writes no 16-bit colour PNG); otherwise each map gets its own PNG.
    """
    if fmt == "png" and (n_maps not in (1, 3, 4) or (bit_depth == 16 and n_maps > 1)):
        return list(range(n_maps))
    return [None]


@dataclass
class _Unit:
    """Images ``first:stop`` of a batch that get their own file(s): one, or one per map (``pages``)."""

    batch: _Batch
    first: int
    stop: int
    stem: str
    directory: str
    format: str
    pages: list[Optional[int]]


def _plan_outputs(batches: list[_Batch], fixed: Optional[str], options: OutputOptions, label: str) -> list[_Output]:
    """Name every output file before anything is computed or written.

    ``fixed`` is the format of every output, or None: png for images, npy for arrays.
    Each batch has its own number of maps (2-D kernels give C*M), so its own pages.
    """

    def unit(batch: _Batch, first: int, stop: int, stem: str, directory: str, fmt: str) -> _Unit:
        return _Unit(batch, first, stop, stem, directory, fmt, _pages(fmt, batch.output_shape[1], bit_depth))

    bit_depth = options.bit_depth or 8  # None (from the inputs) never splits maps: only one-map pages get 16 bits

    into_folder = _is_directory_target(options.output)
    named = options.output is not None and not into_folder
    units: list[_Unit] = []
    whole_batch = named and fixed in ("npy", "npz") and len(batches) == 1
    for batch in batches:
        if whole_batch:
            total = sum(i.data.shape[0] for i in batch.inputs)
            units.append(unit(batch, 0, total, batch.inputs[0].stem, "", str(fixed)))
            continue
        start = 0
        for item in batch.inputs:
            n = item.data.shape[0]
            fmt = fixed or ("png" if item.kind == "image" else "npy")
            if into_folder:
                directory = str(options.output)
            else:
                directory = os.path.dirname(item.name) if item.name != STDIN_NAME else ""
            if fmt in ("png", "tiff") and n > 1:  # image formats hold one image: one file per image
                units.extend(
                    unit(batch, start + k, start + k + 1, f"{item.stem}-{k}", directory, fmt) for k in range(n)
                )
            else:
                units.append(unit(batch, start, start + n, item.stem, directory, fmt))
            start += n

    if options.output == "-":
        count = sum(len(u.pages) for u in units)
        if count > 1:
            raise OutputFileError(
                f"-o - takes one output, but these inputs give {count} files; "
                "write them to files with {stem} and {map} in -o"
            )
        u = units[0]
        return [_Output("-", u.batch, u.first, u.stop, u.pages[0], u.format)]
    outputs: list[_Output] = []
    for u in units:
        if named:
            folder, template = "", _templated(str(options.output), len(units) > 1, len(u.pages) > 1)
        else:
            folder = u.directory
            template = "{stem}-" + label + ("-{map}" if len(u.pages) > 1 else "") + extension_for(u.format)
        outputs.extend(
            _Output(os.path.join(folder, _fill(template, u.stem, m)), u.batch, u.first, u.stop, m, u.format)
            for m in u.pages
        )
    return outputs


def _split_note(options: OutputOptions, outputs: Sequence[_Output], batches: int) -> Optional[str]:
    """One line saying why the one file ``-o`` names becomes several, or None when ``-o`` said so itself.

    That is when convcli inserts ``-{stem}`` or ``-{map}`` into a name without them
    (:func:`_templated`): inputs of several shapes for one ``.npy``, several images for one
    image file, more maps than one PNG holds.
    """
    named = options.output is not None and options.output != "-" and not _is_directory_target(options.output)
    if not named or len(outputs) < 2:
        return None
    template = str(options.output)
    stems = "{stem}" not in template and len({(id(o.batch), o.first) for o in outputs}) > 1
    maps = "{map}" not in template and any(o.map_index is not None for o in outputs)
    if not (stems or maps):
        return None
    reasons = []
    if stems:
        if outputs[0].format in ("npy", "npz"):
            reasons.append(f"the inputs have {batches} different shapes (channels or sizes), and one array holds one")
        else:
            reasons.append("one image file holds one image")
    if maps:
        reasons.append("one PNG holds 1, 3 or 4 maps (one at 16 bits)")
    names = ", ".join(target_name(o.path) for o in outputs[:3]) + (", ..." if len(outputs) > 3 else "")
    return (f"-o {target_name(template)} names one file, but {' and '.join(reasons)}: writing {len(outputs)} "
            f"files ({names})")


def _encode(maps: NDArray[np.floating], fmt: str, display: str, bit_depth: int) -> bytes:
    """Bytes of one output file; ``maps`` has shape (N, FN, OH, OW) (N = 1 for images)."""
    if fmt == "npy":
        return npy_bytes(maps)
    if fmt == "npz":
        return npz_bytes({"y": maps})
    if fmt == "tiff":
        return encode_tiff_float(maps[0])
    return encode_png(to_display(maps[0], display), bits=bit_depth)


def _batch_progress(report: Callable[[float, int], None], index: int, batches: int, done: int, tiles: int) -> None:
    """Tile ``done`` of ``tiles`` in batch ``index`` as progress over all batches."""
    report(index + done / tiles, batches)


def apply_filters(
    inputs: Sequence[LoadedInput],
    kernels: Sequence[Kernel],
    layer_options: LayerOptions,
    output_options: OutputOptions,
    *,
    protect: Sequence[str] = (),
    on_progress: Optional[Callable[[float, int], None]] = None,
    on_note: Optional[Callable[[str], None]] = None,
) -> list[Written]:
    """Filter every input and write the feature maps.

    Inputs whose (C, H, W) and dtype agree form one batch and go through one forward
    pass; the others are processed batch by batch, each channel count and compute dtype
    building its layer once.  Every input, the layer's geometry, the size of every
    result and every output name are checked before anything is computed or written.

    Parameters
    ----------
    inputs : sequence of LoadedInput
        Each with data of shape (N_i, C, H, W).
    kernels : sequence of Kernel
        Stacked into one filter bank (see :func:`convcli.kernels.bank.filter_bank`).
    layer_options, output_options
        See :class:`LayerOptions` and :class:`OutputOptions`.
    protect : sequence of str
        Paths never to overwrite (the input files).
    on_progress : callable(done, total), optional
        Progress for display: ``done`` batches out of ``total``, fractional while a
        batch's tiles are being computed (called from the engine's worker threads).
    on_note : callable(str), optional
        Told, in one line, when the output named by ``-o`` becomes several files (inputs
        of several shapes for one ``.npy``, several images or maps for one PNG).

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
    OutputFileError
        An output that cannot be written, found before any work (every output is
        reserved first: :class:`~convcli.io.outputs.OutputSet`).
    """
    fmt = check_output_options(output_options)
    if not kernels:
        raise ParameterError("no kernel given; expected at least one -k KERNEL")

    weights: dict[int, LayerWeights] = {}  # float64, per channel count
    layers: dict[tuple[int, str], Convolution] = {}  # per channel count and compute dtype
    batches: list[_Batch] = []
    by_shape: dict[tuple[object, ...], _Batch] = {}
    for item in inputs:
        channels = item.data.shape[1]
        key = (*item.data.shape[1:], str(item.data.dtype))
        if key not in by_shape:
            dtype = working_dtype(item.data, layer_options.dtype)
            if channels not in weights:
                weights[channels] = layer_weights(kernels, channels, layer_options)
            if (channels, dtype.str) not in layers:
                layers[channels, dtype.str] = layer_from_weights(weights[channels], layer_options, dtype)
            layer = layers[channels, dtype.str]
            shape = layer.output_shape(item.data.shape)  # checks the geometry before any work
            by_shape[key] = _Batch([], layer, dtype, (0, *shape[1:]))
            batches.append(by_shape[key])
        batch = by_shape[key]
        batch.inputs.append(item)
        batch.output_shape = (batch.output_shape[0] + item.data.shape[0], *batch.output_shape[1:])
    for batch in batches:
        check_result_size(batch.output_shape, batch.dtype)
        first = batch.inputs[0].data.shape
        check_work_size(batch.layer, (sum(i.data.shape[0] for i in batch.inputs), *first[1:]), batch.dtype)

    # one display for the whole run, from the float64 filters as the layer runs them
    display = output_options.display or (display_for(next(iter(weights.values()))) if weights else "clip")
    sixteen = output_options.bit_depth is None and bool(inputs) and all(
        i.kind == "image" and i.bits == 16 for i in inputs
    )
    outputs = _plan_outputs(batches, fmt, output_options, "+".join(k.label for k in kernels))
    note = _split_note(output_options, outputs, len(batches))
    if note is not None and on_note is not None:
        on_note(note)

    written: list[Written] = []
    # every output checked and its place made before any work; all written, or none
    with OutputSet(protect) as files:
        files.reserve([o.path for o in outputs], hint="use {stem} and {map} in -o")
        for index, batch in enumerate(batches):
            if on_progress is not None:
                batch.layer.progress = functools.partial(_batch_progress, on_progress, index, len(batches))
            pause("compute")
            with allocation_guard(batch.output_shape, batch.dtype):
                data = np.concatenate([i.data for i in batch.inputs]) if len(batch.inputs) > 1 else batch.inputs[0].data
                result = batch.layer.forward(data.astype(batch.dtype, copy=False))
            for out in outputs:
                if out.batch is not batch:
                    continue
                maps = result[out.first : out.stop]
                if out.map_index is not None:
                    maps = maps[:, out.map_index : out.map_index + 1]
                bits = output_options.bit_depth or (16 if sixteen and maps.shape[1] == 1 else 8)
                files.write(out.path, _encode(maps, out.format, display, bits))
                png = out.format == "png"
                written.append(
                    Written(out.path, maps.shape, out.format, display if png else None, bits if png else None)
                )
    return written


def apply_command(
    inputs: Sequence[str],
    kernels: Sequence[str],
    shared: SharedOptions,
    output_options: OutputOptions,
    report: Reporter = QUIET,
) -> list[Written]:
    """``convcli apply``: read the kernels and inputs, filter, write; every output checked before any input is read.

    Parameters
    ----------
    inputs : sequence of str
        Paths or ``-`` (:func:`convcli.io.inputs.load_input`).
    kernels : sequence of str
        Kernel specs (:func:`convcli.kernels.spec.parse_kernel`).
    shared : SharedOptions
        The layer options and how inputs are read.
    output_options : OutputOptions
    report : Reporter
        Told each input's notes, progress (for several inputs or large ones) and each file written.

    Returns
    -------
    list of Written
        As :func:`apply_filters`.
    """
    check_output_options(output_options)  # a bad name or option is reported before any input is read
    if output_options.output == "-":
        refuse_terminal("-o -")
    elif output_options.output is not None:  # /proc/x.png: found before a long read, not after
        check_folder(output_options.output, into=_is_directory_target(output_options.output))
    options = shared.layer_options()
    limits = read_limits(shared)
    with said_warnings(report):  # library warnings: one line each, and only when the command succeeds
        parsed = [parse_kernel(spec) for spec in kernels]
        loaded = [
            load_input(source, gray=shared.gray, keep_alpha=shared.keep_alpha, limits=limits) for source in inputs
        ]
        pause("read")
        for item in loaded:
            for note in item.notes:
                report.say(f"{target_name(item.name)}: {note}")
        protect = protected_files(*inputs, *kernels, shared.bias)
        large = sum(item.data.size for item in loaded) >= PROGRESS_MIN_VALUES
        with report.progress("filtering", len(loaded), show=len(loaded) > 1 or large) as on_progress:
            written = apply_filters(loaded, parsed, options, output_options, protect=protect, on_progress=on_progress,
                                    on_note=report.say)
    for done in written:
        how = f", display {done.display}" if done.display else ""
        how += f", {done.bits}-bit" if done.bits == 16 else ""
        report.say(f"wrote {target_name(done.path)} ({done.format}, {format_shape(done.shape)}{how})")
    return written

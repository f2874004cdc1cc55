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

from ..engine.layer import Convolution
from ..engine.memory import allocation_guard, check_result_size
from ..errors import OutputFileError, ParameterError
from ..io.display import default_display
from ..io.formats import (
    DEFAULT_QUALITY,
    OUTPUT_FORMATS,
    PICTURE_FORMATS,
    PNG_LEVEL,
    check_display,
    extension_for,
    format_for_path,
)
from ..io.inputs import STDIN_NAME, LoadedInput, load_input
from ..io.outputs import all_or_nothing, check_targets, protected_files, refuse_terminal
from ..kernels.bank import LayerOptions, LayerWeights, layer_from_weights, layer_weights, working_dtype
from ..kernels.kernel import Kernel, filter_sums
from ..kernels.spec import parse_kernel
from .common import QUIET, Reporter, SharedOptions, format_shape, target_name
from .render import FileSpec, render

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
        png, jpeg, webp, tiff, npy or npz; None: from ``output``'s extension, else png for each
        image input and npy for each array input (npy for ``-``).  A format that
        contradicts ``output``'s extension is refused.
    display : str or None
        PNG mapping (clip, abs, minmax, offset); None: clip when every filter's sum is
        positive, offset when any is zero-sum (sobel, log), negative or NaN
        (:func:`display_for`).
    bit_depth : int or None
        8 or 16 for PNG (JPEG and WebP are 8-bit).  A 16-bit PNG holds one map, so
        several maps give one file each.  None: from the inputs, 16 for each one-map PNG
        when every input is a 16-bit image (16-bit gray PNG or TIFF, float TIFF), else 8.
    quality : int
        JPEG and WebP quality, 1..100 (default :data:`convcli.io.formats.DEFAULT_QUALITY`).
    png_level : int
        PNG's zlib level, 0..9 (default :data:`convcli.io.formats.PNG_LEVEL`).
    """

    output: Optional[str] = None
    format: Optional[str] = None
    display: Optional[str] = None
    bit_depth: Optional[int] = None
    quality: int = DEFAULT_QUALITY
    png_level: int = PNG_LEVEL


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
    from_name = format_for_path(str(options.output).replace("{stem}", "").replace("{map}", "")) if named else None
    if options.format is not None:
        fmt = options.format.lower()
        fmt = {"tif": "tiff", "jpg": "jpeg"}.get(fmt, fmt)
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
                "expected a .png, .jpg, .webp, .tif, .npy or .npz name, or --format"
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
        offset; a bit depth other than 8 or 16, or 16 for JPEG or WebP; a quality outside
        1..100 or a PNG level outside 0..9.
    """
    fmt = resolve_format(options)
    if options.display is not None:
        check_display(options.display)
    if options.bit_depth is not None and options.bit_depth not in (8, 16):
        raise ParameterError(f"--bit-depth must be 8 or 16, got {options.bit_depth}")
    if options.bit_depth == 16 and fmt in ("jpeg", "webp"):
        raise ParameterError(f"--bit-depth 16 needs PNG: {fmt.upper()} holds 8-bit samples")
    if isinstance(options.quality, bool) or not isinstance(options.quality, int) or not 1 <= options.quality <= 100:
        raise ParameterError(f"--quality must be an integer 1..100, got {options.quality!r}")
    if isinstance(options.png_level, bool) or not isinstance(options.png_level, int) or not 0 <= options.png_level <= 9:
        raise ParameterError(f"--png-level must be an integer 0..9, got {options.png_level!r}")
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

    An 8-bit PNG or a WebP holds 1, 3 or 4 maps as one image (gray, RGB, RGBA), a JPEG 1
    or 3, a 16-bit PNG one; otherwise each map gets its own file.
    """
    holds = {"png": (1, 3, 4) if bit_depth == 8 else (1,), "webp": (1, 3, 4), "jpeg": (1, 3)}.get(fmt)
    if holds is not None and n_maps not in holds:
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
            total = sum(i.shape[0] for i in batch.inputs)
            units.append(unit(batch, 0, total, batch.inputs[0].stem, "", str(fixed)))
            continue
        start = 0
        for item in batch.inputs:
            n = item.shape[0]
            fmt = fixed or ("png" if item.kind == "image" else "npy")
            if into_folder:
                directory = str(options.output)
            else:
                directory = os.path.dirname(item.name) if item.name != STDIN_NAME else ""
            if fmt in (*PICTURE_FORMATS, "tiff") and n > 1:  # image formats hold one image: one file per image
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

    Returns
    -------
    list of Written
        What was written, in order.

    Raises
    ------
    MemoryLimitError
        A result larger than the machine's memory (:func:`check_result_size`), or one
        numpy could not allocate.
    """
    fmt = check_output_options(output_options)
    if not kernels:
        raise ParameterError("no kernel given; expected at least one -k KERNEL")

    weights: dict[int, LayerWeights] = {}  # float64, per channel count
    layers: dict[tuple[int, str, Optional[float]], Convolution] = {}  # per channels, compute dtype, sample divisor
    batches: list[_Batch] = []
    by_shape: dict[tuple[object, ...], _Batch] = {}
    for item in inputs:
        shape_in = item.shape
        channels = shape_in[1]
        key = (*shape_in[1:], str(item.samples.dtype), item.divisor)
        if key not in by_shape:
            dtype = working_dtype(item.samples, layer_options.dtype)
            if channels not in weights:
                weights[channels] = layer_weights(kernels, channels, layer_options)
            if (channels, dtype.str, item.divisor) not in layers:
                layers[channels, dtype.str, item.divisor] = layer_from_weights(
                    weights[channels], layer_options, dtype, item.divisor
                )
            layer = layers[channels, dtype.str, item.divisor]
            out_shape = layer.output_shape(shape_in)  # checks the geometry before any work
            by_shape[key] = _Batch([], layer, dtype, (0, *out_shape[1:]))
            batches.append(by_shape[key])
        batch = by_shape[key]
        batch.inputs.append(item)
        batch.output_shape = (batch.output_shape[0] + shape_in[0], *batch.output_shape[1:])
    for batch in batches:
        check_result_size(batch.output_shape, batch.dtype)

    # one display for the whole run, from the float64 filters as the layer runs them
    display = output_options.display or (display_for(next(iter(weights.values()))) if weights else "clip")
    sixteen = output_options.bit_depth is None and bool(inputs) and all(
        i.kind == "image" and i.bits == 16 for i in inputs
    )
    outputs = _plan_outputs(batches, fmt, output_options, "+".join(k.label for k in kernels))
    check_targets([o.path for o in outputs], protect, hint="use {stem} and {map} in -o")

    written: list[Written] = []
    with all_or_nothing(protect) as write:  # a failure part-way leaves none of this run's new files
        for index, batch in enumerate(batches):
            mine = [out for out in outputs if out.batch is batch]
            specs = []
            for out in mine:
                one_map = out.map_index is not None or batch.output_shape[1] == 1
                bits = output_options.bit_depth or (16 if sixteen and one_map and out.format == "png" else 8)
                specs.append(FileSpec(out.first, out.stop, out.map_index, out.format, bits))
            report = None if on_progress is None else functools.partial(_batch_progress, on_progress, index,
                                                                        len(batches))
            with allocation_guard(batch.output_shape, batch.dtype):
                samples = [i.samples for i in batch.inputs]
                data = np.concatenate(samples) if len(samples) > 1 else samples[0]
                if data.dtype.kind == "f":  # float arrays compute in the batch's dtype; integers convert per tile
                    data = data.astype(batch.dtype, copy=False)
                files = render(batch.layer, data, specs, display, png_level=output_options.png_level,
                               quality=output_options.quality, progress=report)
                for out, (spec, encoded, shape) in zip(mine, files):
                    write(out.path, encoded)
                    picture = spec.format in PICTURE_FORMATS
                    written.append(Written(out.path, shape, out.format, display if picture else None,
                                           spec.bits if picture else None))
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
    options = shared.layer_options()
    parsed = [parse_kernel(spec) for spec in kernels]
    loaded = [load_input(source, gray=shared.gray, keep_alpha=shared.keep_alpha) for source in inputs]
    for item in loaded:
        for note in item.notes:
            report.say(f"{item.name!r}: {note}")
    protect = protected_files(*inputs, *kernels, shared.bias)
    large = sum(item.samples.size for item in loaded) >= PROGRESS_MIN_VALUES
    with report.progress("filtering", len(loaded), show=len(loaded) > 1 or large) as on_progress:
        written = apply_filters(loaded, parsed, options, output_options, protect=protect, on_progress=on_progress)
    for done in written:
        how = f", display {done.display}" if done.display else ""
        how += f", {done.bits}-bit" if done.bits == 16 else ""
        report.say(f"wrote {target_name(done.path)} ({done.format}, {format_shape(done.shape)}{how})")
    return written

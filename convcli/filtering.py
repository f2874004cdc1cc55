"""What ``convcli apply`` does, as a library: kernels + inputs -> layer -> feature maps -> files.

The CLI turns options into a :class:`LayerOptions` and an :class:`OutputOptions` and
calls :func:`apply_filters`; everything here raises :class:`~convcli.errors.ConvcliError`
for bad input and writes nothing until every input has been read and checked.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
from numpy.typing import NDArray

from .arrays import LoadedInput
from .bank import filter_bank, filter_sums
from .display import check_display, default_display, to_display
from .errors import OutputFileError, ParameterError, ShapeError
from .geometry import PadSpec
from .images import encode_png, encode_tiff_float
from .kernels import FloatArray, Kernel
from .layer import Convolution
from .outputs import OUTPUT_FORMATS, all_or_nothing, check_targets, extension_for, format_for_path, npy_bytes, npz_bytes
from .resources import allocation_guard, check_result_size


@dataclass
class LayerOptions:
    """The layer ``apply`` and ``grad`` build from kernels: the same options give the same layer.

    Attributes
    ----------
    stride, dilation : int or (h, w)
    pad : int, (h, w), "same" or "valid"
    groups : int or None
        None: depthwise for 2-D kernels, 1 for layers.
    padding_mode : str
    flip : bool
        Rotate kernels 180° (true convolution instead of cross-correlation).
    normalize : bool
        Divide each kernel by its sum (left alone when the sum is 0).
    dtype : str or None
        "float32" or "float64"; None keeps a float input's dtype (others become float32).
    bias : ndarray, shape (), (M,) or (FN,), or None
        Replaces any bias a kernel file carries.  A scalar applies to every map; M
        values (one per 2-D kernel) repeat over the input channels; one value per
        4-D layer kernel applies to each of its filters; FN values, one per map.
    """

    stride: object = 1
    pad: PadSpec = "same"
    dilation: object = 1
    groups: Optional[int] = None
    padding_mode: str = "zeros"
    flip: bool = False
    normalize: bool = False
    dtype: Optional[str] = None
    bias: Optional[NDArray[np.floating]] = None


def working_dtype(data: NDArray[np.generic], requested: Optional[str]) -> np.dtype:
    """The dtype to compute in: ``requested``, else the input's float dtype, else float32."""
    if requested is not None:
        return np.dtype(requested)
    return data.dtype if data.dtype in (np.float32, np.float64) else np.dtype(np.float32)


@dataclass
class LayerWeights:
    """A layer's parameters in float64, before they are cast to the compute dtype.

    Attributes
    ----------
    W : ndarray, shape (FN, C/groups, FH, FW), float64
        After flip and normalize, as the layer runs them.
    b : ndarray, shape (FN,), float64, or None
    groups : int
    """

    W: FloatArray
    b: Optional[NDArray[np.floating]]
    groups: int


def layer_weights(kernels: Sequence[Kernel], channels: int, options: LayerOptions) -> LayerWeights:
    """The float64 weights, bias and groups the kernels and options give a ``channels``-channel input.

    See :func:`convcli.bank.filter_bank`; ``options.bias``, when given, replaces the
    kernels' file biases (:func:`expand_bias`).
    """
    weights, file_bias, groups = filter_bank(
        kernels, channels, groups=options.groups, flip=options.flip, normalize=options.normalize
    )
    bias: Optional[NDArray[np.floating]] = file_bias
    if options.bias is not None:
        per_kernel = [k.filters for k in kernels] if kernels[0].is_layer else None
        bias = expand_bias(options.bias, weights.shape[0], len(kernels), channels, per_kernel=per_kernel)
    return LayerWeights(weights, bias, groups)


def layer_from_weights(weights: LayerWeights, options: LayerOptions, dtype: np.dtype) -> Convolution:
    """The Convolution of ``weights`` cast to ``dtype``, with the options' geometry."""
    return Convolution(
        weights.W.astype(dtype),
        None if weights.b is None else np.asarray(weights.b, dtype=dtype),
        options.stride,
        options.pad,
        dilation=options.dilation,
        groups=weights.groups,
        padding_mode=options.padding_mode,
    )


def build_layer(kernels: Sequence[Kernel], channels: int, options: LayerOptions, dtype: np.dtype) -> Convolution:
    """Build the Convolution the kernels and options describe for a ``channels``-channel input.

    Returns
    -------
    Convolution
        With W of shape (FN, C/groups, FH, FW) in ``dtype``: (C*M, 1, FH, FW) and
        groups=C for M 2-D kernels (output channel c*M + m).
    """
    return layer_from_weights(layer_weights(kernels, channels, options), options, dtype)


def display_for(weights: LayerWeights) -> str:
    """The default PNG display of a layer: :func:`convcli.display.default_display` of its float64 filters.

    Decided from the float64 weights after flip and normalize (as the layer runs them),
    never from a float32 copy, whose rounding would make a zero-sum kernel look positive.
    """
    sums, magnitudes = filter_sums(weights.W)
    return default_display(sums, magnitudes)


def expand_bias(
    bias: NDArray[np.floating],
    n_filters: int,
    n_kernels: int,
    channels: int,
    *,
    per_kernel: Optional[Sequence[int]] = None,
) -> NDArray[np.floating]:
    """Bias of shape (FN,) from a scalar, one value per kernel, or FN values.

    Parameters
    ----------
    bias : ndarray, any shape
        The values, flattened.
    n_filters : int
        FN, the layer's output maps.
    n_kernels : int
        How many kernels (``-k``) make the bank.
    channels : int
        Input channels C.
    per_kernel : sequence of int, optional
        For 4-D layer kernels, the filters each one contributes (they sum to FN): one
        value per kernel is repeated over that kernel's filters.  None for M 2-D
        kernels, where FN = C*M and value m goes to every output map c*M + m.

    Returns
    -------
    ndarray, shape (FN,), float64
    """
    values = np.asarray(bias, dtype=np.float64).ravel()
    if values.size == 1:
        return np.full(n_filters, values[0])
    if values.size == n_filters:
        return values
    if values.size == n_kernels:
        if per_kernel is not None:
            return np.repeat(values, list(per_kernel))  # kernel k's filters all get value k
        if n_filters == n_kernels * channels:
            return np.tile(values, channels)  # output channel c*M + m gets value m
    raise ShapeError(
        f"--bias has {values.size} values; expected 1, one per kernel ({n_kernels}) or one per output map ({n_filters})"
    )


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
    from_name = format_for_path(str(options.output).replace("{stem}", "").replace("{map}", "")) if named else None
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
                directory = os.path.dirname(item.name) if item.name != "<stdin>" else ""
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
        Stacked into one filter bank (see :func:`convcli.bank.filter_bank`).
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
            if on_progress is not None:
                batch.layer.progress = functools.partial(_batch_progress, on_progress, index, len(batches))
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
                write(out.path, _encode(maps, out.format, display, bits))
                png = out.format == "png"
                written.append(
                    Written(out.path, maps.shape, out.format, display if png else None, bits if png else None)
                )
    return written

"""What ``convcli apply`` does, as a library: kernels + inputs -> layer -> feature maps -> files.

The CLI turns options into a :class:`LayerOptions` and an :class:`OutputOptions` and
calls :func:`apply_filters`; everything here raises :class:`~convcli.errors.ConvcliError`
for bad input and writes nothing until every input has been read and checked.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
from numpy.typing import NDArray

from .arrays import LoadedInput, npy_bytes, npz_bytes, write_output
from .display import DISPLAY_MODES, default_display, to_display
from .errors import OutputFileError, ParameterError, ShapeError
from .geometry import PadSpec
from .images import encode_png, encode_tiff_float, image_format_for
from .kernels import Kernel, filter_bank
from .layer import Convolution

#: Output formats ``apply`` writes.
OUTPUT_FORMATS = ("png", "tiff", "npy", "npz")


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
        values (one per 2-D kernel) repeat over the input channels.
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


def build_layer(kernels: Sequence[Kernel], channels: int, options: LayerOptions, dtype: np.dtype) -> Convolution:
    """Build the Convolution the kernels and options describe for a ``channels``-channel input.

    Returns
    -------
    Convolution
        With W of shape (FN, C/groups, FH, FW) in ``dtype``: (C*M, 1, FH, FW) and
        groups=C for M 2-D kernels (output channel c*M + m).
    """
    weights, file_bias, groups = filter_bank(
        kernels, channels, groups=options.groups, flip=options.flip, normalize=options.normalize
    )
    n_filters = weights.shape[0]
    bias = file_bias if options.bias is None else expand_bias(options.bias, n_filters, len(kernels), channels)
    return Convolution(
        weights.astype(dtype),
        None if bias is None else np.asarray(bias, dtype=dtype),
        options.stride,
        options.pad,
        dilation=options.dilation,
        groups=groups,
        padding_mode=options.padding_mode,
    )


def expand_bias(bias: NDArray[np.floating], n_filters: int, n_kernels: int, channels: int) -> NDArray[np.floating]:
    """Bias of shape (FN,) from a scalar, one value per 2-D kernel (M), or FN values."""
    values = np.asarray(bias, dtype=np.float64).ravel()
    if values.size == 1:
        return np.full(n_filters, values[0])
    if values.size == n_filters:
        return values
    if n_filters == n_kernels * channels and values.size == n_kernels:
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
        or None: beside each input, named ``{stem}-{label}.{ext}``.
    format : str or None
        png, tiff, npy or npz; None: from ``output``'s extension, else png for images
        and npy for arrays (npy for ``-``).
    display : str or None
        PNG mapping (clip, abs, minmax, offset); None: clip for positive-sum kernels,
        offset otherwise.
    bit_depth : int
        8 or 16 for PNG.
    """

    output: Optional[str] = None
    format: Optional[str] = None
    display: Optional[str] = None
    bit_depth: int = 8


@dataclass
class Written:
    """One file (or stream) ``apply`` wrote."""

    path: str
    shape: tuple[int, ...]
    format: str
    display: Optional[str] = None


@dataclass
class _Batch:
    """Inputs of one (C, H, W), run through one forward pass."""

    inputs: list[LoadedInput]
    layer: Convolution
    dtype: np.dtype


@dataclass
class _Output:
    """One file to write: images ``first:stop`` of a batch's result, one map or all."""

    path: str
    batch: _Batch
    first: int
    stop: int
    map_index: Optional[int]


def resolve_format(options: OutputOptions, inputs: Sequence[LoadedInput]) -> str:
    """The output format, from --format, the output's extension, or the inputs' kind."""
    if options.format is not None:
        fmt = options.format.lower()
        fmt = "tiff" if fmt == "tif" else fmt
        if fmt not in OUTPUT_FORMATS:
            raise ParameterError(f"--format must be one of {', '.join(OUTPUT_FORMATS)}, got {options.format!r}")
        return fmt
    if options.output == "-":
        return "npy"
    if options.output is not None:
        fmt_from_name = image_format_for(options.output.replace("{stem}", "").replace("{map}", ""))
        if fmt_from_name is None:
            raise OutputFileError(
                f"cannot tell the output format of {options.output!r}; "
                "expected a .png, .tif, .npy or .npz name, or --format"
            )
        return fmt_from_name
    return "png" if all(i.kind == "image" for i in inputs) else "npy"


_EXTENSIONS = {"png": ".png", "tiff": ".tif", "npy": ".npy", "npz": ".npz"}


def _templated(path: str, need_stem: bool, need_map: bool) -> str:
    """``path`` with ``-{stem}`` / ``-{map}`` inserted before the extension where needed."""
    root, ext = os.path.splitext(path)
    if need_stem and "{stem}" not in path:
        root += "-{stem}"
    if need_map and "{map}" not in path:
        root += "-{map}"
    return root + ext


def _fill(template: str, stem: str, map_index: Optional[int]) -> str:
    return template.replace("{stem}", stem).replace("{map}", "" if map_index is None else str(map_index))


def _pages(fmt: str, n_maps: int) -> list[Optional[int]]:
    """Map indices written as separate files: PNG holds 1, 3 or 4 maps as one image, else one map each."""
    if fmt == "png" and n_maps not in (1, 3, 4):
        return list(range(n_maps))
    return [None]


def _plan_outputs(batches: list[_Batch], fmt: str, options: OutputOptions, label: str) -> list[_Output]:
    """Name every output file before anything is computed or written."""
    # (batch, first image, stop, stem, directory of the input) for each unit that gets its own file(s)
    units: list[tuple[_Batch, int, int, str, str]] = []
    per_image = fmt in ("png", "tiff")
    whole_batch = not per_image and options.output is not None and len(batches) == 1
    for batch in batches:
        start = 0
        if whole_batch:
            total = sum(i.data.shape[0] for i in batch.inputs)
            units.append((batch, 0, total, batch.inputs[0].stem, ""))
            continue
        for item in batch.inputs:
            n = item.data.shape[0]
            directory = os.path.dirname(item.name) if item.name != "<stdin>" else ""
            if per_image and n > 1:
                units.extend((batch, start + k, start + k + 1, f"{item.stem}-{k}", directory) for k in range(n))
            else:
                units.append((batch, start, start + n, item.stem, directory))
            start += n
    n_maps = batches[0].layer.W.shape[0]
    pages = _pages(fmt, n_maps)
    if options.output is None:
        template = "{stem}-" + label + ("-{map}" if pages != [None] else "") + _EXTENSIONS[fmt]
        return [
            _Output(os.path.join(directory, _fill(template, stem, m)), batch, first, stop, m)
            for batch, first, stop, stem, directory in units
            for m in pages
        ]
    if options.output == "-":
        if len(units) * len(pages) > 1:
            raise OutputFileError(
                f"-o - takes one output, but these inputs give {len(units) * len(pages)} files; "
                "write them to files with {stem} and {map} in -o"
            )
        batch, first, stop, _, _ = units[0]
        return [_Output("-", batch, first, stop, pages[0])]
    template = _templated(options.output, len(units) > 1, len(pages) > 1)
    return [
        _Output(_fill(template, stem, m), batch, first, stop, m)
        for batch, first, stop, stem, _ in units
        for m in pages
    ]


def _encode(maps: NDArray[np.floating], fmt: str, display: str, bit_depth: int) -> bytes:
    """Bytes of one output file; ``maps`` has shape (N, FN, OH, OW) (N = 1 for images)."""
    if fmt == "npy":
        return npy_bytes(maps)
    if fmt == "npz":
        return npz_bytes({"y": maps})
    if fmt == "tiff":
        return encode_tiff_float(maps[0])
    return encode_png(to_display(maps[0], display), bits=bit_depth)


def apply_filters(
    inputs: Sequence[LoadedInput],
    kernels: Sequence[Kernel],
    layer_options: LayerOptions,
    output_options: OutputOptions,
    *,
    protect: Sequence[str] = (),
    on_batch: Optional[Callable[[int, int], None]] = None,
) -> list[Written]:
    """Filter every input and write the feature maps.

    Inputs whose (C, H, W) agree form one batch and go through one forward pass;
    the others are processed batch by batch.  Every input, the layer's geometry and
    every output name are checked before anything is computed or written.

    Parameters
    ----------
    inputs : sequence of LoadedInput
        Each with data of shape (N_i, C, H, W).
    kernels : sequence of Kernel
        Stacked into one filter bank (see :func:`convcli.kernels.filter_bank`).
    layer_options, output_options
        See :class:`LayerOptions` and :class:`OutputOptions`.
    protect : sequence of str
        Paths never to overwrite (the input files).
    on_batch : callable(done, total), optional
        Called after each batch, for progress display.

    Returns
    -------
    list of Written
        What was written, in order.
    """
    fmt = resolve_format(output_options, inputs)
    if output_options.display is not None and output_options.display not in DISPLAY_MODES:
        raise ParameterError(f"--display must be one of {', '.join(DISPLAY_MODES)}, got {output_options.display!r}")
    if output_options.bit_depth not in (8, 16):
        raise ParameterError(f"--bit-depth must be 8 or 16, got {output_options.bit_depth}")
    if not kernels:
        raise ParameterError("no kernel given; expected at least one -k KERNEL")

    batches: list[_Batch] = []
    by_shape: dict[tuple[int, ...], _Batch] = {}
    for item in inputs:
        key = (*item.data.shape[1:], str(item.data.dtype))
        if key not in by_shape:
            dtype = working_dtype(item.data, layer_options.dtype)
            layer = build_layer(kernels, item.data.shape[1], layer_options, dtype)
            layer.output_shape(item.data.shape)  # checks the geometry before any work
            by_shape[key] = _Batch([], layer, dtype)
            batches.append(by_shape[key])
        by_shape[key].inputs.append(item)

    outputs = _plan_outputs(batches, fmt, output_options, "+".join(k.label for k in kernels))
    paths = [o.path for o in outputs]
    for path in paths:
        if paths.count(path) > 1:
            raise OutputFileError(f"several outputs would be written to {path!r}; use {{stem}} and {{map}} in -o")

    written: list[Written] = []
    for done, batch in enumerate(batches, start=1):
        data = np.concatenate([i.data for i in batch.inputs]) if len(batch.inputs) > 1 else batch.inputs[0].data
        result = batch.layer.forward(data.astype(batch.dtype, copy=False))
        sums = np.asarray(batch.layer.W).reshape(result.shape[1], -1).sum(axis=1)
        display = output_options.display or default_display(sums.tolist())
        for out in outputs:
            if out.batch is not batch:
                continue
            maps = result[out.first : out.stop]
            if out.map_index is not None:
                maps = maps[:, out.map_index : out.map_index + 1]
            write_output(out.path, _encode(maps, fmt, display, output_options.bit_depth), protect=protect)
            written.append(Written(out.path, maps.shape, fmt, display if fmt == "png" else None))
        if on_batch is not None:
            on_batch(done, len(batches))
    return written

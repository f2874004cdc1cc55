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

from .arrays import LoadedInput
from .bank import filter_bank
from .display import check_display, default_display, to_display
from .errors import OutputFileError, ParameterError, ShapeError
from .geometry import PadSpec
from .images import encode_png, encode_tiff_float, image_format_for
from .kernels import Kernel
from .layer import Convolution
from .outputs import all_or_nothing, check_target, first_repeated, npy_bytes, npz_bytes

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
    bias: Optional[NDArray[np.floating]] = file_bias
    if options.bias is not None:
        per_kernel = [k.filters for k in kernels] if kernels[0].is_layer else None
        bias = expand_bias(options.bias, n_filters, len(kernels), channels, per_kernel=per_kernel)
    return Convolution(
        weights.astype(dtype),
        None if bias is None else np.asarray(bias, dtype=dtype),
        options.stride,
        options.pad,
        dilation=options.dilation,
        groups=groups,
        padding_mode=options.padding_mode,
    )


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
        image input and npy for each array input (npy for ``-``).
    display : str or None
        PNG mapping (clip, abs, minmax, offset); None: clip for positive-sum kernels,
        offset otherwise.
    bit_depth : int
        8 or 16 for PNG.  A 16-bit PNG holds one map, so several maps give one file each.
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
    format: str


def _is_directory_target(output: Optional[str]) -> bool:
    """True when -o names a folder to write into: an existing directory, or a name ending in a separator."""
    if output is None or output == "-":
        return False
    return os.path.isdir(output) or output.endswith(("/", os.sep))


def resolve_format(options: OutputOptions, inputs: Sequence[LoadedInput]) -> Optional[str]:
    """The output format, from --format, the output's extension, or None: per input, by its kind.

    Without --format, ``-o -`` gives npy and a file name its extension's format; with no -o
    (or -o naming a directory) each input gets png when it is an image, npy when an array.
    """
    if options.format is not None:
        fmt = options.format.lower()
        fmt = "tiff" if fmt == "tif" else fmt
        if fmt not in OUTPUT_FORMATS:
            raise ParameterError(f"--format must be one of {', '.join(OUTPUT_FORMATS)}, got {options.format!r}")
        return fmt
    if options.output == "-":
        return "npy"
    if options.output is not None and not _is_directory_target(options.output):
        fmt_from_name = image_format_for(options.output.replace("{stem}", "").replace("{map}", ""))
        if fmt_from_name is None:
            raise OutputFileError(
                f"cannot tell the output format of {options.output!r}; "
                "expected a .png, .tif, .npy or .npz name, or --format"
            )
        return fmt_from_name
    return None


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
        return _Unit(batch, first, stop, stem, directory, fmt, _pages(fmt, batch.layer.W.shape[0], options.bit_depth))

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
            template = "{stem}-" + label + ("-{map}" if len(u.pages) > 1 else "") + _EXTENSIONS[u.format]
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
    if output_options.display is not None:
        check_display(output_options.display)
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
    repeated = first_repeated(paths)
    if repeated is not None:
        raise OutputFileError(f"several outputs would be written to {repeated!r}; use {{stem}} and {{map}} in -o")
    for path in paths:
        check_target(path, protect)

    written: list[Written] = []
    with all_or_nothing(protect) as write:  # a failure part-way leaves none of this run's new files
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
                write(out.path, _encode(maps, out.format, display, output_options.bit_depth))
                written.append(Written(out.path, maps.shape, out.format, display if out.format == "png" else None))
            if on_batch is not None:
                on_batch(done, len(batches))
    return written

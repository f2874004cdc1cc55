"""``convcli apply``'s outputs: the options, the format, the name of every file, the bytes of each.

:class:`OutputOptions` is where and how ``apply`` writes; :func:`resolve_format` and
:func:`check_output_options` check them before any input is read; :func:`plan_outputs` names
every file of a run (the default names ``STEM-KERNEL.png``, ``{stem}``/``{map}`` templates, one
file per map or per image where a format needs it) before anything is computed.

Neighbours: the command that computes the maps and writes these files is
:mod:`convcli.commands.apply`; the bytes of each file :mod:`convcli.commands.render`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..engine.layer import Convolution
from ..errors import OutputFileError, ParameterError
from ..io.formats import (
    DEFAULT_QUALITY,
    OUTPUT_FORMATS,
    PICTURE_FORMATS,
    PNG_LEVEL,
    check_display,
    extension_for,
    format_for_path,
)
from ..io.inputs import STDIN_NAME, LoadedInput
from .common import target_name

__all__ = [
    "Batch", "Output", "OutputOptions", "check_output_options", "is_directory_target", "plan_outputs", "resolve_format",
    "split_note",
]


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
        positive, offset when any is zero-sum (sobel, log), negative or NaN; combined
        maps as :func:`display_for` says.
    bit_depth : int or None
        8 or 16 for PNG (JPEG and WebP are 8-bit).  A 16-bit PNG holds one map, so
        several maps give one file each.  None: from the inputs, 16 for each one-map PNG
        when every input is a 16-bit image (16-bit gray PNG or TIFF, float TIFF), else 8.
    quality : int
        JPEG and WebP quality, 1..100 (default :data:`convcli.io.formats.DEFAULT_QUALITY`).
    png_level : int
        PNG's zlib level, 0..9 (default :data:`convcli.io.formats.PNG_LEVEL`).
    stream : bool or None
        Memory-map ``.npy`` inputs and write a ``.npy`` result a band of rows at a time
        (:mod:`convcli.commands.stream`), so neither is held whole: True for every ``.npy``
        file, False never, None for inputs of at least
        :data:`~convcli.io.mapped.STREAM_MIN_BYTES`.
    """

    output: Optional[str] = None
    format: Optional[str] = None
    display: Optional[str] = None
    bit_depth: Optional[int] = None
    quality: int = DEFAULT_QUALITY
    png_level: int = PNG_LEVEL
    stream: Optional[bool] = None


@dataclass
class Batch:
    """Inputs of one (C, H, W), dtype and padding mode, run through one forward pass of ``layer``.

    ``output_shape`` is the layer's (N, FN, OH, OW); ``maps`` how many maps are written
    per image (FN, or C when the maps of several kernels are combined).
    """

    inputs: list[LoadedInput]
    layer: Convolution
    dtype: np.dtype
    output_shape: tuple[int, int, int, int]
    maps: int
    padding: str


@dataclass
class Output:
    """One file to write: images ``first:stop`` of a batch's result, one map or all."""

    path: str
    batch: Batch
    first: int
    stop: int
    map_index: Optional[int]
    format: str


def is_directory_target(output: Optional[str]) -> bool:
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
    named = options.output is not None and options.output != "-" and not is_directory_target(options.output)
    from_name = format_for_path(str(options.output).replace("{stem}", "stem").replace("{map}", "0")) if named else None
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
    if not 1 <= options.quality <= 100:
        raise ParameterError(f"--quality must be 1 (smallest) to 100 (best), got {options.quality}")
    if not 0 <= options.png_level <= 9:
        raise ParameterError(f"--png-level must be 0 (no compression) to 9 (smallest), got {options.png_level}")
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

    batch: Batch
    first: int
    stop: int
    stem: str
    directory: str
    format: str
    pages: list[Optional[int]]


def plan_outputs(batches: list[Batch], fixed: Optional[str], options: OutputOptions, label: str) -> list[Output]:
    """Name every output file before anything is computed or written.

    ``fixed`` is the format of every output, or None: png for images, npy for arrays.
    Each batch has its own number of maps (2-D kernels give C*M), so its own pages.
    """

    def unit(batch: Batch, first: int, stop: int, stem: str, directory: str, fmt: str) -> _Unit:
        return _Unit(batch, first, stop, stem, directory, fmt, _pages(fmt, batch.maps, bit_depth))

    bit_depth = options.bit_depth or 8  # None (from the inputs) never splits maps: only one-map pages get 16 bits

    into_folder = is_directory_target(options.output)
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
        return [Output("-", u.batch, u.first, u.stop, u.pages[0], u.format)]
    outputs: list[Output] = []
    for u in units:
        if named:
            folder, template = "", _templated(str(options.output), len(units) > 1, len(u.pages) > 1)
        else:
            folder = u.directory
            template = "{stem}-" + label + ("-{map}" if len(u.pages) > 1 else "") + extension_for(u.format)
        outputs.extend(
            Output(os.path.join(folder, _fill(template, u.stem, m)), u.batch, u.first, u.stop, m, u.format)
            for m in u.pages
        )
    return outputs


def split_note(options: OutputOptions, outputs: Sequence[Output], batches: int) -> Optional[str]:
    """One line saying why the one file ``-o`` names becomes several, or None when ``-o`` said so itself.

    That is when convcli inserts ``-{stem}`` or ``-{map}`` into a name without them
    (:func:`_templated`): inputs of several shapes for one ``.npy``, several images for one
    image file, more maps than one picture holds.
    """
    named = options.output is not None and options.output != "-" and not is_directory_target(options.output)
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
        reasons.append("one picture holds 1, 3 or 4 maps (a JPEG 1 or 3, a 16-bit PNG one)")
    names = ", ".join(target_name(o.path) for o in outputs[:3]) + (", ..." if len(outputs) > 3 else "")
    return (f"-o {target_name(template)} names one file, but {' and '.join(reasons)}: writing {len(outputs)} "
            f"files ({names})")

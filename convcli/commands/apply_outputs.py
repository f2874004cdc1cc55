"""``convcli apply``'s outputs: the options, the format, the name of every file, the bytes of each.

:class:`OutputOptions` is where and how ``apply`` writes; :func:`resolve_format` and
:func:`check_output_options` check them before any input is read; :func:`plan_outputs` names
every file of a run before anything is computed: the default names ``STEM-KERNEL.png``, templates
with ``{stem}``, ``{kernel}``, ``{channel}`` and ``{map}`` (:data:`NAME_FIELDS`), one file per image
where a format needs it, and which maps each file holds (:func:`pages_of`): one colour picture per
2-D kernel (the channels of one filtered picture), one file per map otherwise, and one file per map
whenever the name has ``{map}`` or ``{channel}``.

Neighbours: the command that computes the maps and writes these files is
:mod:`convcli.commands.apply`; the bytes of each file :mod:`convcli.commands.render`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..engine.layer import Convolution
from ..errors import OutputFileError, ParameterError, quote
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
    "NAME_FIELDS", "Batch", "MapName", "Output", "OutputOptions", "check_name_fields", "check_output_options",
    "is_directory_target", "map_names", "pages_of", "plan_outputs", "resolve_format", "split_note",
]

#: The fields an output name may hold, each filled per file.
NAME_FIELDS: dict[str, str] = {
    "stem": "the input's name without its extension",
    "kernel": "the kernel's label (sobel-x, box-3; the filter's for a layer kernel)",
    "channel": "the input channel (r, g, b, a, gray, alpha for images; 0, 1, ... for arrays; a layer's output "
    "channel)",
    "map": "the map's index in the result (N, FN, OH, OW): one file per map",
}

_FIELD = re.compile(r"\{([^{}]*)\}")


@dataclass(frozen=True)
class MapName:
    """What one feature map is: the kernel (its file-name label) and the channel it filtered."""

    kernel: str
    channel: str


@dataclass
class OutputOptions:
    """Where and how ``apply`` writes.

    Attributes
    ----------
    output : str or None
        A path, a template with the fields of :data:`NAME_FIELDS`, ``-`` for standard output,
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
    per image (FN, or C when the maps of several kernels are combined).  ``names`` says what
    each map is (:func:`map_names`); ``kernels`` is M, the number of 2-D kernels whose maps
    interleave (map ``c*M + m`` is kernel m on channel c), 0 for a layer kernel, whose maps
    are never the channels of one picture; ``displays`` is each map's picture display.
    """

    inputs: list[LoadedInput]
    layer: Convolution
    dtype: np.dtype
    output_shape: tuple[int, int, int, int]
    maps: int
    padding: str
    names: list[MapName] = field(default_factory=list)
    kernels: int = 1
    displays: list[str] = field(default_factory=list)


@dataclass
class Output:
    """One file to write: images ``first:stop`` of a batch's result, the maps ``maps`` (None: all, in order)."""

    path: str
    batch: Batch
    first: int
    stop: int
    maps: Optional[tuple[int, ...]]
    format: str


def channel_names(channels: int, kind: str) -> list[str]:
    """The names ``{channel}`` gives an input's channels: r, g, b(, a) or gray(, alpha) for images, else 0, 1, ..."""
    if kind == "image" and channels <= 4:
        return [["gray"], ["gray", "alpha"], ["r", "g", "b"], ["r", "g", "b", "a"]][channels - 1]
    return [str(c) for c in range(channels)]


def _unique(labels: Sequence[str]) -> list[str]:
    """``labels``, each followed by ``-INDEX`` when some label repeats (two ``box:3``), so each names one kernel."""
    if len(set(labels)) == len(labels):
        return list(labels)
    return [f"{label}-{i}" for i, label in enumerate(labels)]


def map_names(kernel_labels: Sequence[str], filters: Sequence[int], channels: int, kind: str, *,
              layer: bool, combined: Optional[str] = None) -> list[MapName]:
    """What each map of a run is, in the result's order.

    Parameters
    ----------
    kernel_labels : sequence of str
        The kernels' labels (file-name safe).
    filters : sequence of int
        Each kernel's filter count (1 for a 2-D kernel; FN for a layer kernel).
    channels : int
        C, the input's channel count.
    kind : {"image", "array"}
        Names the channels (:func:`channel_names`).
    layer : bool
        4-D layer kernels: map f is filter f, its channel the output channel f.
    combined : str, optional
        The label of maps combined by ``--combine``: one map per input channel.

    Returns
    -------
    list of MapName
        C·M names for M 2-D kernels (map ``c*M + m``), FN for a layer, C when combined.
    """
    names = channel_names(channels, kind)
    if combined is not None:
        return [MapName(combined, c) for c in names]
    if layer:
        labels = _unique([label if n == 1 else f"{label}-{f}" for label, n in zip(kernel_labels, filters)
                          for f in range(n)])
        return [MapName(label, str(f)) for f, label in enumerate(labels)]
    labels = _unique(kernel_labels)
    return [MapName(label, c) for c in names for label in labels]


def check_name_fields(template: str) -> None:
    """Refuse an output name with a ``{field}`` convcli does not fill: it would be a literal file name.

    Raises
    ------
    ParameterError
        Naming the field and the fields there are (:data:`NAME_FIELDS`).
    """
    for name in _FIELD.findall(template):
        if name not in NAME_FIELDS:
            fields = ", ".join("{" + f + "}" for f in NAME_FIELDS)
            raise ParameterError(f"-o {quote(template)}: unknown field {quote('{' + name + '}')}; "
                                 f"expected {fields}")


def _sample_name(template: str) -> str:
    """``template`` with every field filled by a placeholder (to read its extension)."""
    return _FIELD.sub("x", template)


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
    if options.output is not None:
        check_name_fields(options.output)
    named = options.output is not None and options.output != "-" and not is_directory_target(options.output)
    from_name = format_for_path(_sample_name(str(options.output))) if named else None
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
        As :func:`resolve_format` (an unknown ``{field}`` in the name too); a display mode
        that is not one of clip, abs, minmax, offset; a bit depth other than 8 or 16, or 16
        for JPEG or WebP; a quality outside 1..100 or a PNG level outside 0..9.
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


def _fill(template: str, stem: str, names: Sequence[MapName], maps: Optional[tuple[int, ...]]) -> str:
    """``template`` with its fields filled for a file holding ``maps`` (None: every map).

    ``{map}`` is the map's index (0 when one file holds every map); ``{kernel}`` and ``{channel}``
    the first map's (a colour picture of one kernel has one kernel and several channels).
    """
    first = 0 if maps is None else maps[0]
    name = names[first] if first < len(names) else MapName("kernel", "0")
    values = {"stem": stem, "map": str(first), "kernel": name.kernel, "channel": name.channel}
    return _FIELD.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def holds(fmt: str, bit_depth: int = 8) -> tuple[int, ...]:
    """The channel counts one picture of ``fmt`` holds: PNG 1-4 (gray, gray+alpha, RGB, RGBA; 16-bit: 1),
    WebP 1, 3, 4, JPEG 1, 3; () for the array formats, which hold every map."""
    return {"png": (1, 2, 3, 4) if bit_depth == 8 else (1,), "webp": (1, 3, 4), "jpeg": (1, 3)}.get(fmt, ())


def pages_of(fmt: str, batch: Batch, bit_depth: int = 8, per_map: bool = False) -> list[Optional[tuple[int, ...]]]:
    """The maps each file of one image holds, in order; [None] for one file holding every map.

    Arrays (npy, npz) and float TIFF hold every map.  A picture holds the maps of one 2-D
    kernel as the channels of one filtered picture (kernel m's maps ``m, M+m, 2M+m, ...``),
    when the format holds that many channels (:func:`holds`); a layer kernel's maps, and
    maps of a kernel that no picture holds, get one file each, as they do when ``per_map``
    (the name has ``{map}`` or ``{channel}``).
    """
    n = batch.maps
    allowed = holds(fmt, bit_depth)
    if not allowed and fmt in PICTURE_FORMATS:
        allowed = (1,)
    if not allowed:
        return [None]
    if per_map or batch.kernels == 0:
        return [None] if n == 1 else [(j,) for j in range(n)]
    kernels = batch.kernels
    channels = n // kernels
    if channels in allowed:
        if kernels == 1:
            return [None]
        return [tuple(range(m, n, kernels)) for m in range(kernels)]
    return [(j,) for j in range(n)]


@dataclass
class _Unit:
    """Images ``first:stop`` of a batch that get their own file(s): one, or one per map (``pages``)."""

    batch: Batch
    first: int
    stop: int
    stem: str
    directory: str
    format: str
    pages: list[Optional[tuple[int, ...]]]


def plan_outputs(batches: list[Batch], fixed: Optional[str], options: OutputOptions, label: str) -> list[Output]:
    """Name every output file before anything is computed or written.

    ``fixed`` is the format of every output, or None: png for images, npy for arrays.
    Each batch has its own number of maps (2-D kernels give C*M), so its own pages.
    """

    def unit(batch: Batch, first: int, stop: int, stem: str, directory: str, fmt: str) -> _Unit:
        return _Unit(batch, first, stop, stem, directory, fmt, pages_of(fmt, batch, bit_depth, per_map))

    bit_depth = options.bit_depth or 8  # None (from the inputs) never splits maps: only one-map pages get 16 bits
    per_map = options.output is not None and bool({"map", "channel"} & set(_FIELD.findall(options.output)))

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
                "write them to files with {stem} and {kernel} or {map} in -o"
            )
        u = units[0]
        return [Output("-", u.batch, u.first, u.stop, u.pages[0], u.format)]
    outputs: list[Output] = []
    for u in units:
        if named:
            folder, template = "", _named_template(str(options.output), u, len(units) > 1)
        else:
            folder, template = u.directory, _default_template(u, label)
        outputs.extend(
            Output(os.path.join(folder, _fill(template, u.stem, u.batch.names, m)), u.batch, u.first, u.stop, m,
                   u.format)
            for m in u.pages
        )
    return outputs


def _distinct(template: str, u: _Unit) -> bool:
    """Whether ``template`` gives each page of ``u`` its own name."""
    return len({_fill(template, u.stem, u.batch.names, m) for m in u.pages}) == len(u.pages)


def _named_template(path: str, u: _Unit, several: bool) -> str:
    """``-o``'s name with ``-{stem}`` and ``-{kernel}`` or ``-{map}`` inserted before the extension where needed.

    ``-{stem}`` when several images share the name; then, when the fields do not tell the
    files apart, ``-{kernel}`` where each file holds one 2-D kernel's maps, else ``-{map}``.
    """
    root, ext = os.path.splitext(path)
    if several and "{stem}" not in path:
        root += "-{stem}"
    if not _distinct(root + ext, u):
        by_kernel = u.batch.kernels > 0 and _distinct(root + "-{kernel}" + ext, u)
        root += "-{kernel}" if by_kernel else "-{map}"
    return root + ext


def _default_template(u: _Unit, label: str) -> str:
    """The default name: ``STEM-LABEL.EXT`` for one file; ``STEM-KERNEL.EXT`` for one file per 2-D kernel
    (``STEM-KERNEL-CHANNEL.EXT`` per map of a colour input); ``STEM-LABEL-MAP.EXT`` per map of a layer."""
    ext = extension_for(u.format)
    if len(u.pages) == 1:
        return "{stem}-" + label + ext
    if u.batch.kernels == 0:
        return "{stem}-" + label + "-{map}" + ext
    if all(m is None or len(m) > 1 for m in u.pages) or u.batch.maps == u.batch.kernels:
        return "{stem}-{kernel}" + ext
    return "{stem}-{kernel}-{channel}" + ext


def split_note(options: OutputOptions, outputs: Sequence[Output], batches: int) -> Optional[str]:
    """One line saying why the one file ``-o`` names becomes several, or None when ``-o`` said so itself.

    That is when convcli inserts ``-{stem}``, ``-{kernel}`` or ``-{map}`` into a name without them
    (:func:`_named_template`): inputs of several shapes for one ``.npy``, several images for one
    image file, several kernels or more maps than one picture holds.
    """
    named = options.output is not None and options.output != "-" and not is_directory_target(options.output)
    if not named or len(outputs) < 2:
        return None
    template = str(options.output)
    stems = "{stem}" not in template and len({(id(o.batch), o.first) for o in outputs}) > 1
    maps = not (set(_FIELD.findall(template)) - {"stem"}) and any(o.maps is not None for o in outputs)
    if not (stems or maps):
        return None
    reasons = []
    if stems:
        if outputs[0].format in ("npy", "npz"):
            reasons.append(f"the inputs have {batches} different shapes (channels or sizes), and one array holds one")
        else:
            reasons.append("one image file holds one image")
    if maps:
        reasons.append("a picture holds one kernel's maps (the channels of one filtered picture) or one map")
    names = ", ".join(target_name(o.path) for o in outputs[:3]) + (", ..." if len(outputs) > 3 else "")
    return (f"-o {target_name(template)} names one file, but {' and '.join(reasons)}: writing {len(outputs)} "
            f"files ({names})")

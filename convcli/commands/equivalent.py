"""``apply --show-equivalent``: the same job written for PyTorch, scipy.ndimage, OpenCV, ImageMagick and libvips.

Each tool names the same padding differently, and some cannot express a part of the
job at all; this module writes the call that computes what ``apply`` computes, with
the kernel as convcli runs it (after ``--flip``, ``--normalize``, ``--scale``), or says
what the tool lacks.  Padding names, convcli -> tool::

    convcli     PyTorch F.pad      scipy.ndimage   OpenCV               ImageMagick       libvips conv
    zeros       constant 0         constant        BORDER_CONSTANT      black             -
    constant:v  constant v         constant, cval  BORDER_CONSTANT, v   background gray   -
    replicate   replicate          nearest         BORDER_REPLICATE     edge              (its only edge)
    reflect     reflect            mirror          BORDER_REFLECT_101   -                 -
    symmetric   - (np.pad)         reflect         BORDER_REFLECT       mirror            -
    circular    circular           wrap            BORDER_WRAP          tile              -

What each call leaves to the tool, and what it does around it:

* PyTorch: ``F.pad`` then ``F.conv2d`` (stride, dilation, groups, bias: all of it);
  symmetric padding comes from ``np.pad``, PyTorch having none.
* scipy.ndimage: ``correlate`` per input channel, summed per filter; no stride (every
  pixel computed, every s-th kept), no dilation (the kernel with zeros between its taps),
  the output placed by ``origin`` and a slice.
* OpenCV: ``copyMakeBorder`` with the padding, then ``filter2D`` (which correlates) with
  its anchor at the kernel's corner, the valid part kept (strided by slicing).
* ImageMagick: ``-morphology Correlate`` with the kernel's origin at the padding's top
  left, ``-define convolve:scale=1`` so it does not normalise the kernel, and
  ``-virtual-pixel`` as the padding; pictures only, one kernel, stride 1, values clipped
  to [0, 1] (its usual non-HDRI build).
* libvips: ``vips conv`` (a correlation) with a matrix file whose scale turns samples
  into [0, 1] values; replicate padding centred on the kernel only, one kernel, stride 1.

Neighbours: ``apply`` collects these (:func:`convcli.commands.apply.apply_filters`);
the tests run every call where its tool is installed and compare the numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
from numpy.typing import NDArray

from ..engine.geometry import ConvGeometry

__all__ = ["Equivalent", "EquivalentSet", "InputSource", "equivalents"]

_SCIPY = {"zeros": "constant", "constant": "constant", "replicate": "nearest", "reflect": "mirror",
          "symmetric": "reflect", "circular": "wrap"}
_OPENCV = {"zeros": "BORDER_CONSTANT", "constant": "BORDER_CONSTANT", "replicate": "BORDER_REPLICATE",
           "reflect": "BORDER_REFLECT_101", "symmetric": "BORDER_REFLECT", "circular": "BORDER_WRAP"}
_TORCH = {"zeros": "constant", "constant": "constant", "replicate": "replicate", "reflect": "reflect",
          "circular": "circular"}
_MAGICK = {"zeros": "black", "constant": "background", "replicate": "edge", "symmetric": "mirror",
           "circular": "tile"}


@dataclass(frozen=True)
class InputSource:
    """The input as the user named it, and how convcli read it.

    Attributes
    ----------
    path : str
    kind : {"image", "array"}
    channels : int
    divisor : float or None
        255 or 65535 for 8- and 16-bit images (their samples / divisor are the values).
    """

    path: str
    kind: str
    channels: int
    divisor: Optional[float] = None


@dataclass
class Equivalent:
    """One tool's version of the job.

    Attributes
    ----------
    tool : str
    language : {"python", "bash"}
    code : str or None
        The call (a whole program for python, ending with ``y``, (N, FN, OH, OW), saved);
        None when the tool cannot express the job.
    notes : list of str
        What differs, what the call does around the tool, or why it cannot.
    output : str or None
        The file the code writes.
    """

    tool: str
    language: str
    code: Optional[str]
    notes: list[str] = field(default_factory=list)
    output: Optional[str] = None


@dataclass
class EquivalentSet:
    """The equivalents of one input's job."""

    subject: str
    items: list[Equivalent]


def _array(a: NDArray[np.float64]) -> str:
    """``np.array([...])`` with every value exact (repr of float64)."""
    return f"np.array({np.asarray(a, dtype=np.float64).tolist()!r})"


def _load_lines(src: InputSource) -> list[str]:
    """Python lines that read the input as convcli does, into x of shape (N, C, H, W), float64."""
    path = repr(src.path)
    if src.kind == "image":
        mode = {1: "L", 3: "RGB"}.get(src.channels, "RGBA")
        divisor = src.divisor or 1.0
        convert = "" if src.divisor == 65535 else f'.convert("{mode}")'
        lines = ["from PIL import Image",
                 f"x = np.asarray(Image.open({path}){convert}, dtype=np.float64) / {divisor!r}",
                 "x = (x[None, None] if x.ndim == 2 else x.transpose(2, 0, 1)[None])  # (1, C, H, W)"]
        return lines
    if src.path.endswith(".npy"):
        return [f"x = np.load({path}).astype(np.float64)", "x = x.reshape((1,) * (4 - x.ndim) + x.shape)  # NCHW"]
    return ["from convcli.io.inputs import load_input  # a text or .npz array, read as convcli reads it",
            f"x = load_input({path}).data.astype(np.float64)"]


def _stem(src: InputSource) -> str:
    return Path(src.path).stem or "out"


def _dilated(w: NDArray[np.float64], dilation: tuple[int, int]) -> NDArray[np.float64]:
    """The kernel with dh-1 and dw-1 zeros between its taps (dilation for tools without it)."""
    dh, dw = dilation
    fn, cg, kh, kw = w.shape
    out = np.zeros((fn, cg, dh * (kh - 1) + 1, dw * (kw - 1) + 1))
    out[:, :, ::dh, ::dw] = w
    return out


def _torch(src: InputSource, g: ConvGeometry, w: NDArray[np.float64], b: Optional[NDArray[np.float64]]
           ) -> Equivalent:
    top, bottom, left, right = g.pads
    lines = ["import numpy as np", "import torch", "import torch.nn.functional as F", *_load_lines(src),
             f"W = {_array(w)}", f"b = {'None' if b is None else _array(b)}"]
    notes = []
    conv_pad = "0"
    if g.padding_mode == "zeros" and top == bottom and left == right:
        lines.append("xt = torch.from_numpy(x)")
        conv_pad = f"({top}, {left})"
    elif g.padding_mode == "symmetric" or (
        g.padding_mode in ("reflect", "circular") and (max(top, bottom) >= g.height or max(left, right) >= g.width)
    ):
        numpy_mode = {"symmetric": "symmetric", "reflect": "reflect", "circular": "wrap"}[g.padding_mode]
        lines.append(f'xt = torch.from_numpy(np.pad(x, ((0, 0), (0, 0), ({top}, {bottom}), ({left}, {right})), '
                     f'mode="{numpy_mode}"))')
        notes.append("PyTorch has no symmetric padding (cba|abc, scipy's reflect)" if g.padding_mode == "symmetric"
                     else "F.pad refuses padding as large as the input in this mode")
        notes.append("the padding comes from np.pad")
    else:
        value = f", value={g.pad_value!r}" if g.padding_mode == "constant" else ""
        lines.append(f'xt = F.pad(torch.from_numpy(x), ({left}, {right}, {top}, {bottom}), '
                     f'mode="{_TORCH[g.padding_mode]}"{value})  # (left, right, top, bottom)')
        if g.padding_mode == "reflect":
            notes.append("PyTorch's reflect (dcb|abcd) is convcli's reflect, scipy's mirror, OpenCV's REFLECT_101")
    lines.append(f"y = F.conv2d(xt, torch.from_numpy(W), None if b is None else torch.from_numpy(b), "
                 f"stride={g.stride}, padding={conv_pad}, dilation={g.dilation}, groups={g.groups}).numpy()")
    out = f"{_stem(src)}-torch.npy"
    lines.append(f"np.save({out!r}, y)  # (N, FN, OH, OW)")
    return Equivalent("PyTorch (torch.nn.functional.conv2d)", "python", "\n".join(lines), notes, out)


def _per_channel_loop(g: ConvGeometry, call: str, slices: str, wname: str) -> list[str]:
    """Lines: y[n, f] = b[f] + sum over the group's channels k of CALL, sliced."""
    return [
        f"N, FN, FG, CG = x.shape[0], {g.filters}, {g.filters_per_group}, {g.channels_per_group}",
        f"y = np.empty((N, FN, {g.out_h}, {g.out_w}))",
        "for n in range(N):",
        "    for f in range(FN):",
        "        c0 = (f // FG) * CG  # the filter's group reads channels c0 .. c0+CG-1",
        f"        acc = sum({call} for k in range(CG))",
        f"        y[n, f] = acc[{slices}] + (0.0 if b is None else b[f])",
        f"        # {wname}[f, k] is filter f's kernel for the group's channel k",
    ]


def _scipy(src: InputSource, g: ConvGeometry, w: NDArray[np.float64], b: Optional[NDArray[np.float64]]
           ) -> Equivalent:
    notes = ["correlate is a correlation, as convcli's default; scipy.ndimage.convolve is --flip"]
    wd = _dilated(w, g.dilation)
    if g.dilation != (1, 1):
        notes.append("scipy has no dilation: the kernel is written with zeros between its taps")
    if g.stride != (1, 1):
        notes.append("scipy has no stride: it computes every pixel, and every s-th is kept")
    top, _, left, _ = g.pads
    origins, offsets = [], []
    for k, pad, size, length, s in ((wd.shape[2], top, g.height, g.out_h, g.stride[0]),
                                    (wd.shape[3], left, g.width, g.out_w, g.stride[1])):
        # scipy: out[p] = sum_i w[i] x[p + i - k//2 - origin]; convcli's out[oy] is scipy's at p = oy*s + offset
        origin = min(max(pad - k // 2, -(k // 2)), (k - 1) // 2)
        offset = k // 2 - pad + origin
        if offset < 0 or (length - 1) * s + offset >= size:
            return Equivalent("scipy.ndimage (correlate)", "python", None, [
                f"cannot express this padding: scipy's output has the input's size and its origin reaches "
                f"{k // 2} pixels at most, but convcli pads {pad} before a {k}-tap kernel"])
        origins.append(origin)
        offsets.append(offset)
    mode = _SCIPY[g.padding_mode]
    cval = f", cval={g.pad_value!r}" if g.padding_mode == "constant" else ""
    if g.padding_mode in ("reflect", "symmetric"):
        notes.append(f"convcli's {g.padding_mode} is scipy's {mode!r}")
    call = (f"ndimage.correlate(x[n, c0 + k], Wd[f, k], mode={mode!r}{cval}, "
            f"origin=({origins[0]}, {origins[1]}))")
    (sh, sw) = g.stride
    slices = (f"{offsets[0]}:{offsets[0] + (g.out_h - 1) * sh + 1}:{sh}, "
              f"{offsets[1]}:{offsets[1] + (g.out_w - 1) * sw + 1}:{sw}")
    lines = ["import numpy as np", "from scipy import ndimage", *_load_lines(src), f"Wd = {_array(wd)}",
             f"b = {'None' if b is None else _array(b)}", *_per_channel_loop(g, call, slices, "Wd")]
    out = f"{_stem(src)}-scipy.npy"
    lines.append(f"np.save({out!r}, y)  # (N, FN, OH, OW)")
    return Equivalent("scipy.ndimage (correlate)", "python", "\n".join(lines), notes, out)


def _opencv(src: InputSource, g: ConvGeometry, w: NDArray[np.float64], b: Optional[NDArray[np.float64]]
            ) -> Equivalent:
    top, bottom, left, right = g.pads
    wd = _dilated(w, g.dilation)
    border = _OPENCV[g.padding_mode]
    value = f", value={g.pad_value!r}" if g.padding_mode == "constant" else ""
    notes = ["filter2D correlates (it does not flip the kernel); the padding is made by copyMakeBorder, and "
             "filter2D's anchor (0, 0) puts each output at its window's top-left, so its own border is never read "
             "in the part kept"]
    if g.padding_mode in ("reflect", "symmetric"):
        notes.append(f"convcli's {g.padding_mode} is OpenCV's {border}")
    if g.dilation != (1, 1):
        notes.append("OpenCV has no dilation: the kernel is written with zeros between its taps")
    if g.stride != (1, 1):
        notes.append("OpenCV has no stride: every s-th output is kept")
    call = (f"cv2.filter2D(cv2.copyMakeBorder(x[n, c0 + k], {top}, {bottom}, {left}, {right}, cv2.{border}{value}), "
            f"-1, Wd[f, k], anchor=(0, 0), borderType=cv2.BORDER_CONSTANT)")
    (sh, sw) = g.stride
    slices = f"0:{(g.out_h - 1) * sh + 1}:{sh}, 0:{(g.out_w - 1) * sw + 1}:{sw}"
    lines = ["import cv2", "import numpy as np", *_load_lines(src), f"Wd = {_array(wd)}",
             f"b = {'None' if b is None else _array(b)}", *_per_channel_loop(g, call, slices, "Wd")]
    out = f"{_stem(src)}-opencv.npy"
    lines.append(f"np.save({out!r}, y)  # (N, FN, OH, OW)")
    return Equivalent("OpenCV (cv2.filter2D)", "python", "\n".join(lines), notes, out)


def _one_kernel(src: InputSource, g: ConvGeometry, w: NDArray[np.float64], b: Optional[NDArray[np.float64]],
                tool: str) -> Optional[str]:
    """Why an image tool that filters every channel alike cannot run this job, or None."""
    if src.kind != "image":
        return f"{tool} reads pictures; this input is an array"
    if g.channels_per_group != 1 or g.filters_per_group != 1:
        return (f"{tool} filters each channel with one kernel; this layer has {g.filters} filters of "
                f"{g.channels_per_group} channel(s) each")
    if any(not np.array_equal(w[f], w[0]) for f in range(g.filters)):
        return f"{tool} filters every channel with the same kernel; these channels have different ones"
    if b is not None and np.any(b != b[0]):
        return f"{tool} adds one offset to every channel; these biases differ"
    if g.stride != (1, 1):
        return f"{tool} has no stride"
    return None


def _magick(src: InputSource, g: ConvGeometry, w: NDArray[np.float64], b: Optional[NDArray[np.float64]]
            ) -> Equivalent:
    tool = "ImageMagick (-morphology Correlate)"
    why = _one_kernel(src, g, w, b, "ImageMagick")
    if why is None and g.padding_mode not in _MAGICK:
        why = "ImageMagick has no virtual-pixel setting for reflect (cb|abc, OpenCV's REFLECT_101)"
    wd = _dilated(w, g.dilation)[0, 0]
    kh, kw = wd.shape
    top, bottom, left, right = g.pads
    if why is None and (top > kh - 1 or left > kw - 1 or top + bottom > kh - 1 or left + right > kw - 1):
        why = "ImageMagick's output has the input's size: the padding must fit inside the kernel's reach"
    if why is None and b is not None and b[0] < 0:
        why = "a negative bias would be clipped by ImageMagick's -evaluate"
    if why is not None:
        return Equivalent(tool, "bash", None, [why])
    notes = ["-define convolve:scale=1 keeps the kernel as written (ImageMagick normalises it when told '!'); "
             "the kernel is convcli's after --flip/--normalize/--scale",
             "Correlate does not flip the kernel (-morphology Convolve does); the origin +X+Y is the padding's "
             "left and top",
             "values outside [0, 1] are clipped (a non-HDRI build), and the file is 16-bit"]
    pixel = _MAGICK[g.padding_mode]
    background = ""
    if g.padding_mode == "constant":
        background = f" -background 'gray({100 * g.pad_value:g}%)'"
    values = ",".join(f"{v!r}" for v in wd.ravel().tolist())
    crop = "" if (g.out_h, g.out_w) == (g.height, g.width) else f" -crop {g.out_w}x{g.out_h}+0+0 +repage"
    bias = "" if b is None or b[0] == 0 else f" -evaluate Add {100 * b[0]!r}%"
    if g.dilation != (1, 1):
        notes.append("no dilation: the kernel is written with zeros between its taps")
    out = f"{_stem(src)}-imagemagick.png"
    code = (f"convert {_shell(src.path)} -virtual-pixel {pixel}{background} -define convolve:scale=1 "
            f"-morphology Correlate '{kw}x{kh}+{left}+{top}: {values}'{crop}{bias} -depth 16 {_shell(out)}")
    return Equivalent(tool, "bash", code, notes, out)


def _vips(src: InputSource, g: ConvGeometry, w: NDArray[np.float64], b: Optional[NDArray[np.float64]]
          ) -> Equivalent:
    tool = "libvips (vips conv)"
    why = _one_kernel(src, g, w, b, "libvips")
    wd = _dilated(w, g.dilation)[0, 0]
    kh, kw = wd.shape
    if why is None and g.padding_mode != "replicate":
        why = f"vips conv always extends the edge pixels (replicate); this job pads with {g.padding_mode}"
    if why is None and g.pads != (kh // 2, kh - 1 - kh // 2, kw // 2, kw - 1 - kw // 2):
        why = ("vips conv centres the kernel and keeps the input's size: only 'same' padding of an odd kernel "
               "(or the same split) is expressible")
    if why is not None:
        return Equivalent(tool, "bash", None, [why])
    scale = src.divisor or 1.0
    offset = 0.0 if b is None else float(b[0])
    rows = "\\n".join(" ".join(repr(v) for v in row) for row in wd.tolist())
    out = f"{_stem(src)}-vips.tif"
    mask = f"{_stem(src)}-mask.mat"
    code = (f"printf '{kw} {kh} {scale!r} {offset!r}\\n{rows}\\n' > {_shell(mask)} && "
            f"vips conv {_shell(src.path)} {_shell(out)} {_shell(mask)} --precision float")
    notes = [f"the matrix's scale {scale:g} turns samples into convcli's [0, 1] values (result = sum / scale + offset)",
             "vips conv correlates (no flip) and writes float values, unclipped, to a float TIFF"]
    if g.dilation != (1, 1):
        notes.append("no dilation: the kernel is written with zeros between its taps")
    return Equivalent(tool, "bash", code, notes, out)


def _shell(text: str) -> str:
    import shlex

    return shlex.quote(text)


def equivalents(src: InputSource, geom: ConvGeometry, w: NDArray[np.float64],
                b: Optional[NDArray[np.float64]]) -> list[Equivalent]:
    """The job ``apply`` runs on ``src``, for each tool.

    Parameters
    ----------
    src : InputSource
    geom : ConvGeometry
        The layer's geometry on this input.
    w : ndarray, shape (FN, C/groups, FH, FW), float64
        The kernels as the layer runs them.
    b : ndarray, shape (FN,), or None

    Returns
    -------
    list of Equivalent
        PyTorch, scipy.ndimage, OpenCV, ImageMagick, libvips, in that order.
    """
    items = [_torch(src, geom, w, b), _scipy(src, geom, w, b), _opencv(src, geom, w, b), _magick(src, geom, w, b),
             _vips(src, geom, w, b)]
    return items

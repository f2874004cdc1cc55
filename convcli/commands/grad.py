"""``convcli grad``: the backward pass of the layer ``apply`` runs, its check, and its files.

:func:`grad_command` is the whole command: it names and checks every output first
(:func:`plan_outputs`; the default is ``STEM-grad.npz`` beside the input), reads the kernels
and the input, runs :func:`run_grad` (compute dtype, layer, upstream gradient, forward and
backward), optionally checks the gradients numerically (:func:`check_gradients`, whose
verdict stops the command before anything is written), then writes every output or none
(:func:`write_outputs`).

:func:`backward` runs the layer that :func:`convcli.kernels.bank.build_layer` describes
forward and then backward for an upstream gradient ``dout``, giving ``dx``, ``dW`` and
``db`` (the seed's names), and ``dK``, the gradient with respect to the kernels as the
user gave them (:func:`convcli.kernels.gradient.kernel_gradient`).  :func:`load_dout`
reads or generates ``dout``.  The loss behind ``dout`` is ``L = sum(y * dout)``, whose
gradient with respect to the output ``y`` is ``dout`` itself; ``dout = y`` is the gradient
of ``½‖y‖²``.

Neighbours: the numerical check itself is :mod:`convcli.commands.gradcheck`; dK is
:mod:`convcli.kernels.gradient`; floats -> pixels :mod:`convcli.io.display`; atomic writes
:mod:`convcli.io.outputs`; the Typer command :mod:`convcli.cli.grad`.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np
from numpy.typing import NDArray

from ..engine.dtypes import compute_dtype
from ..engine.layer import Convolution
from ..engine.memory import allocation_guard, check_result_size
from ..engine.trace import Trace
from ..errors import GradientCheckError, InputFileError, OutputFileError, ParameterError, ShapeError, quote
from ..hooks import pause
from ..io.arrays import choose_member, load_npy, load_npz
from ..io.display import montage
from ..io.formats import check_display, format_for_path
from ..io.images import encode_png
from ..io.inputs import input_stem, load_input, sniff
from ..io.outputs import OutputSet, check_targets, npy_bytes, npz_bytes, protected_files, refuse_terminal
from ..io.streams import read_source as read_bounded
from ..kernels.bank import LayerOptions, build_layer, working_dtype
from ..kernels.gradient import kernel_gradient
from ..kernels.kernel import Kernel
from ..kernels.spec import parse_kernels
from ..visual.montage import MIN_SIDE
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
from .gradcheck import CheckRow, check_options, default_tolerance, gradient_check
from .montages import check_montage, grad_tiles, montage_png
from .trace_view import ExplainedRun

__all__ = [
    "CheckOptions", "CheckReport", "GradOutput", "GradOutputOptions", "GradRun", "Gradients", "backward",
    "build_grad_layer", "check_dout_shape", "check_gradients", "default_output", "grad_command", "grad_png",
    "load_dout", "make_dout", "output_bytes", "plan_outputs", "run_grad", "write_outputs",
]

_RANDN = re.compile(r"^randn(?::(\d+))?$")
_GENERATOR_LIKE = re.compile(r"^(ones|randn)\b", re.IGNORECASE)


@dataclass
class Gradients:
    """Result of :func:`backward`.

    Attributes
    ----------
    dx : ndarray, shape (N, C, H, W)
    dW : ndarray, shape (FN, C/groups, FH, FW)
        With respect to the layer's weights as it runs them (after ``scale`` or
        ``normalize``, the kernels' frame and ``flip`` of :class:`~convcli.kernels.bank.LayerOptions`).
    db : ndarray, shape (FN,)
        With respect to the bias (a zero bias when none was given).
    dK : ndarray or None
        With respect to the kernels as the user gave them (:func:`~convcli.kernels.gradient.kernel_gradient`):
        shape (FH, FW) for one 2-D kernel, (M, FH, FW) for M (of different sizes: their
        common frame), (FN, C/groups, FH, FW) for layer kernels with ``flip`` or
        ``normalize``; None for layer kernels otherwise (dW is then already that gradient).
    layer : Convolution
        The layer (its W, b and geometry).
    seconds : float
        Time of forward + backward.
    kernels, options
        What the layer was built from (:func:`convcli.commands.gradcheck.gradient_check` rebuilds it to check dK).
    """

    dx: NDArray[np.floating]
    dW: NDArray[np.floating]
    db: NDArray[np.floating]
    dK: Optional[NDArray[np.floating]]
    layer: Convolution
    seconds: float
    kernels: Sequence[Kernel] = ()
    options: LayerOptions = field(default_factory=LayerOptions)

    def norms(self) -> list[tuple[str, float, tuple[int, ...]]]:
        """(name, Euclidean norm, shape) of dx, dW, db and, when there is one, dK: a summary."""
        named = [("dx", self.dx), ("dW", self.dW), ("db", self.db)]
        named += [("dK", self.dK)] if self.dK is not None else []
        return [(name, float(np.linalg.norm(value)), tuple(value.shape)) for name, value in named]


# ---------------------------------------------------------------- dout


def make_dout(spec: str, shape: tuple[int, ...], dtype: np.dtype) -> Optional[NDArray[np.floating]]:
    """A generated upstream gradient: ``ones`` or ``randn[:SEED]``; None for anything else.

    Returns
    -------
    ndarray, shape ``shape``, or None
        None when ``spec`` names no generator (it is then a file or '-').  ``randn``
        draws standard normal values with numpy's ``default_rng(SEED)`` (SEED 0 when
        not given), in float64, then casts to ``dtype``.

    Raises
    ------
    ParameterError
        ``spec`` looks like a generator but is malformed (``randn:x``, ``ones:2``) and
        names no existing file.
    """
    if spec == "ones":
        return np.ones(shape, dtype=dtype)
    match = _RANDN.match(spec)
    if match:
        digits = match.group(1) or "0"
        if len(digits) > 1000:  # int() refuses over 4300 digits; a seed needs no more than a few dozen
            raise ParameterError(f"--dout randn:SEED takes a seed of at most 1000 digits, got {len(digits)}")
        return np.random.default_rng(int(digits)).standard_normal(shape).astype(dtype)
    if _GENERATOR_LIKE.match(spec) and not os.path.exists(spec):
        raise ParameterError(
            f"--dout {quote(spec)} is not a generator: expected ones, randn or randn:SEED with SEED a non-negative "
            "integer (e.g. randn:7), or a .npy file"
        )
    return None


def load_dout(spec: str, shape: tuple[int, ...], dtype: np.dtype) -> NDArray[np.floating]:
    """The upstream gradient ``spec`` names (``--dout``), checked against the forward output.

    Parameters
    ----------
    spec : str
        A generator (:func:`make_dout`), ``-`` for standard input, or a file: ``.npy``,
        or ``.npz`` holding ``dout``, ``y`` (what ``apply -f npz`` writes) or one array.
    shape : tuple, (N, FN, OH, OW)
        The forward output's shape.
    dtype : numpy dtype
        The compute dtype; the result is cast to it.

    Returns
    -------
    ndarray, shape ``shape``, dtype ``dtype``

    Raises
    ------
    ShapeError
        The array's shape is not ``shape`` (the message states the expected shape).
    ParameterError
        Non-numeric values, or NaN/inf.
    InputFileError
        Unreadable or not .npy/.npz.
    """
    generated = make_dout(spec, shape, dtype)
    if generated is not None:
        return generated
    name = "standard input" if spec == "-" else spec
    if spec != "-" and not os.path.lexists(spec):
        raise InputFileError(
            f"--dout file {quote(spec, 200)} not found; expected a .npy of the forward output's shape {tuple(shape)}, "
            "'-' for standard input, or a generator: ones, randn, randn:SEED"
        )
    data = read_bounded(spec, role="array", what="--dout file")  # bounded; devices refused, FIFOs never hang
    if sniff(data) == "npz":
        arrays = load_npz(data, name)
        array = arrays[choose_member(arrays, ("dout", "y"), f"--dout {name!r}")]
    else:
        array = load_npy(data, name)
    if array.dtype.kind not in "biuf":
        raise ParameterError(f"--dout {name!r} holds {array.dtype} values; expected real numbers")
    check_dout_shape(tuple(array.shape), shape, name)
    result = array.astype(dtype, copy=False)
    bad = int(np.count_nonzero(~np.isfinite(result)))
    if bad:
        raise ParameterError(f"--dout {name!r} holds {bad} non-finite value(s) (NaN or inf); gradients would be too")
    return result


def check_dout_shape(got: tuple[int, ...], expected: tuple[int, ...], name: str = "--dout") -> None:
    """Raise :class:`ShapeError` naming the expected shape unless ``got == expected``."""
    if tuple(got) != tuple(expected):
        where = name if name.startswith("--dout") else f"--dout {name!r}"
        raise ShapeError(
            f"{where} has shape {tuple(got)}; expected the forward output's shape {tuple(expected)} "
            "(N, FN, OH, OW) for this input, kernel and options"
        )


# ---------------------------------------------------------------- forward and backward


def build_grad_layer(
    kernels: Sequence[Kernel], channels: int, options: LayerOptions, dtype: np.dtype
) -> Convolution:
    """The layer of :func:`convcli.kernels.bank.build_layer`, with a zero bias when it has none (so db exists)."""
    layer = build_layer(kernels, channels, options, dtype)
    if layer.b is None:
        layer.b = np.zeros(np.asarray(layer.W).shape[0], dtype=dtype)
    return layer


def backward(
    layer: Convolution,
    x: NDArray[np.floating],
    dout: NDArray[np.generic],
    kernels: Sequence[Kernel],
    options: LayerOptions,
) -> Gradients:
    """Forward then backward through ``layer`` (from :func:`build_grad_layer`).

    Parameters
    ----------
    layer : Convolution
        Built from ``kernels`` and ``options``.
    x : ndarray, shape (N, C, H, W)
    dout : ndarray, shape (N, FN, OH, OW)
        Upstream gradient; must match the forward output's shape.  Cast to the
        compute dtype.
    kernels, options
        What the layer was built from (to map dW back to the kernels as given).

    Returns
    -------
    Gradients

    Raises
    ------
    ShapeError
        ``dout`` of another shape, or a layer without a bias.
    """
    check_dout_shape(tuple(dout.shape), layer.output_shape(x.shape))
    dtype = compute_dtype(x, np.asarray(layer.W))
    return _backward(layer, x, dout.astype(dtype, copy=False), kernels, options)


def _backward(
    layer: Convolution,
    x: NDArray[np.floating],
    dout: NDArray[np.floating],
    kernels: Sequence[Kernel],
    options: LayerOptions,
) -> Gradients:
    """:func:`backward` for a ``dout`` already checked and in the compute dtype (from :func:`load_dout`)."""
    if layer.b is None:
        raise ShapeError("the layer has no bias: build it with build_grad_layer")
    start = time.perf_counter()
    layer.forward(x)
    dx = layer.backward(dout)
    seconds = time.perf_counter() - start
    assert layer.dW is not None and layer.db is not None  # set by backward when b is given
    return Gradients(
        dx=dx,
        dW=layer.dW,
        db=layer.db,
        dK=kernel_gradient(layer.dW, kernels, x.shape[1], options),
        layer=layer,
        seconds=seconds,
        kernels=list(kernels),
        options=options,
    )


@dataclass
class GradRun:
    """What :func:`run_grad` computed: the input and ``dout`` as used, and the gradients.

    Attributes
    ----------
    x : ndarray, shape (N, C, H, W)
        The input in the compute dtype.
    dout : ndarray, shape (N, FN, OH, OW)
        The upstream gradient in the compute dtype.
    grads : Gradients
    """

    x: NDArray[np.floating]
    dout: NDArray[np.floating]
    grads: Gradients

    @property
    def dtype(self) -> np.dtype:
        """The compute dtype."""
        return self.x.dtype

    @property
    def output_shape(self) -> tuple[int, ...]:
        """The forward output's shape (N, FN, OH, OW)."""
        return tuple(self.dout.shape)


def run_grad(
    x: NDArray[np.generic], kernels: Sequence[Kernel], options: LayerOptions, dout: str, trace: Optional[Trace] = None
) -> GradRun:
    """The backward pass ``convcli grad`` runs: dtype, layer, upstream gradient, forward and backward.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
        The input; computed in :func:`convcli.kernels.bank.working_dtype` (``options.dtype``,
        else a float input's own dtype, else float32).
    kernels : sequence of Kernel
    options : LayerOptions
        The same options describe the same layer as ``apply``'s.
    dout : str
        ``--dout``: a generator, ``-`` or a file (:func:`load_dout`).
    trace : Trace, optional
        Given, the forward and backward record into it what they ran (``--explain``).

    Returns
    -------
    GradRun

    Raises
    ------
    ConvcliError
        Bad kernels or geometry, a ``dout`` of the wrong shape or unreadable, or a
        result too large for memory (:class:`~convcli.errors.MemoryLimitError`, checked
        before ``dout`` is read or generated).

    Notes
    -----
    Cost: one forward and one backward pass; memory for x, dout, the output y and dx.
    """
    dtype = working_dtype(x, options.dtype)
    xs = x.astype(dtype, copy=False)
    layer = build_grad_layer(kernels, xs.shape[1], options, dtype)
    expected = layer.output_shape(xs.shape)
    check_result_size(expected, dtype)
    check_work_size(layer, xs.shape, dtype, backward=True)
    with allocation_guard(expected, dtype):
        upstream = load_dout(dout, expected, dtype)
        layer.trace = trace
        try:
            grads = _backward(layer, xs, upstream, kernels, options)
        finally:
            layer.trace = None
    return GradRun(xs, upstream, grads)


# ---------------------------------------------------------------- outputs: named first, written all or nothing


@dataclass
class GradOutput:
    """One file (or stream) ``grad`` writes.

    Attributes
    ----------
    what : str
        "npz" (dx, dW, db and dK) or one of "dx", "dW", "db".
    path : str
        A path or ``-``.
    format : str
        npz, npy or png.
    """

    what: str
    path: str
    format: str


def _format_of(path: str, what: str) -> str:
    """The format of output ``what`` (npz, dx, dW or db) at ``path``: from its extension, ``-`` the default."""
    fmt = format_for_path(path)
    if what == "npz":
        if path == "-" or fmt == "npz":
            return "npz"
        raise OutputFileError(
            f"-o {path!r}: grad writes an .npz archive (dx, dW, db); name it .npz, or write single arrays "
            "with --dx/--dw/--db"
        )
    allowed = ("npy",) if what == "db" else ("npy", "png")
    if path == "-":
        return "npy"
    if fmt is not None and fmt in allowed:
        return fmt
    expected = " or ".join(f".{f}" for f in allowed)
    raise OutputFileError(f"--{what.lower()} {path!r}: expected a {expected} name, or '-' for standard output")


def plan_outputs(
    output: Optional[str],
    singles: Mapping[str, Optional[str]],
    default: Optional[str],
    protect: Sequence[str] = (),
) -> list[GradOutput]:
    """Name and check every output before anything is computed.

    Parameters
    ----------
    output : str or None
        ``-o``: an .npz path or ``-``.
    singles : dict
        ``{"dx": path, "dW": path, "db": path}`` (None where not asked for).
    default : str or None
        The .npz written when neither ``-o`` nor any single output is given (None: none,
        as when only a montage is asked for).
    protect : sequence of str
        Files read (input, dout, kernel and bias files): never overwritten.

    Raises
    ------
    OutputFileError
        A bad extension, two outputs to one path or to standard output, or a path
        :func:`convcli.io.outputs.check_target` refuses (an input, a missing or
        unwritable directory, a directory as output).
    """
    targets: list[GradOutput] = []
    for what, path in singles.items():
        if path is not None:
            targets.append(GradOutput(what, path, _format_of(path, what)))
    if output is not None or (not targets and default is not None):
        path = str(default if output is None else output)
        targets.insert(0, GradOutput("npz", path, _format_of(path, "npz")))
    if sum(t.path == "-" for t in targets) > 1:
        raise OutputFileError("only one output can go to standard output '-'; write the others to files")
    check_targets([t.path for t in targets], protect, subject="two outputs", hint="give each its own name")
    return targets


def grad_png(value: NDArray[np.floating], what: str, display: str) -> NDArray[np.float32]:
    """Pixels (C, H, W) in [0, 1] of a gradient, through apply's display mapping.

    dx (N, C, H, W): one row per image, in colour when C is 3 or 4 (as apply writes
    RGB), else one gray map per channel.  Weights: dW/dK (FN, C/groups, FH, FW) as an
    FN x C/groups grid of gray maps, (M, FH, FW) as a row of M, (FH, FW) alone.
    Each map (each colour image) is mapped on its own; maps are 1 pixel apart.  Maps whose
    longest side is under :data:`convcli.visual.montage.MIN_SIDE` pixels are enlarged by a
    whole factor first (each value a square of pixels), so a 3×3 kernel is a visible 3×3 grid.
    """
    check_display(display)
    array = np.asarray(value)
    if what == "dx" and array.shape[1] in (3, 4):
        cells = array[:, None]
    elif array.ndim == 2:
        cells = array[None, None, None]
    elif array.ndim == 3:
        cells = array[None, :, None]
    else:
        cells = array[:, :, None]
    side = max(cells.shape[3:])
    if side < MIN_SIDE:
        factor = math.ceil(MIN_SIDE / side)
        cells = np.repeat(np.repeat(cells, factor, axis=3), factor, axis=4)
    return montage(cells, display)


def output_bytes(target: GradOutput, grads: Gradients, display: str) -> tuple[bytes, tuple[int, ...]]:
    """The bytes of one output and the shape of what it holds."""
    if target.what == "npz":
        arrays = {"dx": grads.dx, "dW": grads.dW, "db": grads.db}
        if grads.dK is not None:
            arrays["dK"] = grads.dK
        return npz_bytes(arrays), ()
    value = {"dx": grads.dx, "dW": grads.dW if grads.dK is None else grads.dK, "db": grads.db}[target.what]
    if target.format == "png":
        return encode_png(grad_png(value, target.what, display)), tuple(value.shape)
    return npy_bytes(value), tuple(value.shape)


def write_outputs(
    targets: Sequence[GradOutput], grads: Gradients, display: str, protect: Sequence[str] = (),
    outputs: Optional[OutputSet] = None,
) -> list[tuple[GradOutput, tuple[int, ...]]]:
    """Encode every output and write them all, or none (:class:`~convcli.io.outputs.OutputSet`).

    Parameters
    ----------
    outputs : OutputSet, optional
        The run's outputs, already reserved (:func:`grad_command` reserves them before any
        work); the caller commits it.  None: a new one, committed here.

    Returns
    -------
    list of (GradOutput, shape)
        What was written.
    """
    done = []
    files = OutputSet(protect) if outputs is None else outputs
    try:
        for target in targets:
            data, shape = output_bytes(target, grads, display)
            files.write(target.path, data)
            done.append((target, shape))
    except BaseException:
        if outputs is None:
            files.discard()
        raise
    if outputs is None:
        files.commit()
    return done


# ---------------------------------------------------------------- the check and its verdict


@dataclass
class CheckOptions:
    """How :func:`check_gradients` samples and judges.

    Checked when made (:func:`~convcli.commands.gradcheck.check_options`), so a bad value is
    reported before anything is read.

    Attributes
    ----------
    samples : int
        Entries per tensor, >= 1.
    eps : float
        Central-difference step, > 0.
    seed : int
        Seed of the entries drawn, >= 0.
    tolerance : float or None
        Largest relative error that passes; None: :func:`~convcli.commands.gradcheck.default_tolerance`
        of the compute dtype.
    """

    samples: int = 20
    eps: float = 1e-3
    seed: int = 0
    tolerance: Optional[float] = None

    def __post_init__(self) -> None:
        check_options(self.samples, self.eps, self.seed, self.tolerance)


@dataclass
class CheckReport:
    """The outcome of :func:`check_gradients`: one row per tensor, the tolerance used and a caption."""

    rows: list[CheckRow]
    tolerance: float
    caption: str

    @property
    def failed(self) -> list[CheckRow]:
        """The rows over the tolerance."""
        return [row for row in self.rows if not row.passed]

    def verdict(self) -> None:
        """Raise :class:`~convcli.errors.GradientCheckError` (exit 1) naming every failed tensor, if any."""
        if self.failed:
            worst = "; ".join(f"{row.name} max rel error {row.max_rel:.3g}" for row in self.failed)
            raise GradientCheckError(f"gradient check failed: {worst} > tolerance {self.tolerance:g}; nothing written")


def check_gradients(run: GradRun, options: CheckOptions) -> CheckReport:
    """:func:`~convcli.commands.gradcheck.gradient_check` of a :func:`run_grad` result, timed and captioned.

    Returns
    -------
    CheckReport
        The rows, the tolerance used (``options.tolerance``, else the compute dtype's
        default) and a caption (eps, seed, seconds; what dK is, when there is one).
        Its :meth:`~CheckReport.verdict` raises when a row failed.
    """
    tolerance = default_tolerance(run.dtype) if options.tolerance is None else options.tolerance
    start = time.perf_counter()
    rows = gradient_check(run.x, run.grads, run.dout, samples=options.samples, eps=options.eps, seed=options.seed,
                          tolerance=tolerance)
    caption = f"eps {options.eps:g}, seed {options.seed}, {time.perf_counter() - start:.2f} s"
    if run.grads.dK is not None:
        caption = f"dK: for the kernels as given; {caption}"
    return CheckReport(rows, tolerance, caption)


# ---------------------------------------------------------------- the command


@dataclass
class GradOutputOptions:
    """Where and how ``grad`` writes.

    Attributes
    ----------
    output : str or None
        An .npz of dx, dW, db (and dK), or ``-``; None: :func:`default_output` unless a
        single output is asked for.
    dx, dw, db : str or None
        Single arrays: ``.npy``, ``.png`` (not db) or ``-``.  ``dw`` is dK when there is one.
    display : str
        How PNGs map gradients to pixels (:data:`convcli.io.formats.DISPLAY_MODES`).
    montage : str or None
        A PNG (or ``-``) of dx, dW and dK as one labelled grid (:func:`convcli.commands.montages.grad_tiles`);
        alone, no .npz is written by default.
    """

    output: Optional[str] = None
    dx: Optional[str] = None
    dw: Optional[str] = None
    db: Optional[str] = None
    display: str = "minmax"
    montage: Optional[str] = None


def default_output(source: str) -> str:
    """The .npz ``grad`` writes when no output is named: ``STEM-grad.npz`` beside the input (here for ``-``)."""
    return os.path.join("" if source == "-" else os.path.dirname(source), f"{input_stem(source)}-grad.npz")


def grad_command(
    source: str,
    kernels: Sequence[str],
    dout: str,
    shared: SharedOptions,
    output_options: GradOutputOptions,
    check: Optional[CheckOptions] = None,
    report: Reporter = QUIET,
    show_check: Optional[Callable[[CheckReport], None]] = None,
    explain: Optional[list[ExplainedRun]] = None,
) -> list[tuple[GradOutput, tuple[int, ...]]]:
    """``convcli grad``: name the outputs, read, run forward and backward, check, write.

    Parameters
    ----------
    source : str
        The input: a path or ``-``.
    kernels : sequence of str
        Kernel specs (:func:`convcli.kernels.spec.parse_kernels`; one spec may give several).
    dout : str
        The upstream gradient (:func:`load_dout`).
    shared : SharedOptions
        The layer options and how the input is read: the same as ``apply``'s give the same
        layer (a padding mode of None: the input's kind's, :func:`~convcli.commands.common.padding_for`).
    output_options : GradOutputOptions
    check : CheckOptions, optional
        Check the gradients numerically; a failure raises before anything is written.
    report : Reporter
        Told the input's notes, a summary (shapes, padding mode, norms, time) and each file
        written (with the padding mode).
    show_check : callable(CheckReport), optional
        Shown the check's report before its verdict.
    explain : list, optional
        Given, an :class:`~convcli.commands.trace_view.ExplainedRun` of the forward and
        backward is appended (what ``--explain`` prints).

    Returns
    -------
    list of (GradOutput, shape)
        What was written (:func:`write_outputs`).

    Raises
    ------
    GradientCheckError
        The check failed (nothing written).
    """
    protect = protected_files(source, dout, *kernels, shared.bias)
    singles = {"dx": output_options.dx, "dW": output_options.dw, "db": output_options.db}
    montage = output_options.montage
    check_montage(montage)
    targets = plan_outputs(output_options.output, singles, default_output(source) if montage is None else None,
                           protect)
    if any(t.path == "-" for t in targets) or montage == "-":
        refuse_terminal("'-'")
    options = shared.layer_options()
    with said_warnings(report), OutputSet(protect) as files:
        # every output checked and its place made before any work; all written at the end, or none
        files.reserve([t.path for t in targets] + ([] if montage is None else [montage]), subject="two outputs")
        written, has_dk, padding = _grad_run(source, kernels, dout, shared, options, output_options, check, report,
                                             show_check, targets, files, explain)
    _say_written(written, has_dk, padding, report)
    return written


def _grad_run(
    source: str, kernels: Sequence[str], dout: str, shared: SharedOptions, options: LayerOptions,
    output_options: GradOutputOptions, check: Optional[CheckOptions], report: Reporter,
    show_check: Optional[Callable[[CheckReport], None]], targets: Sequence[GradOutput], files: OutputSet,
    explain: Optional[list[ExplainedRun]] = None,
) -> tuple[list[tuple[GradOutput, tuple[int, ...]]], bool, Optional[str]]:
    """The work of :func:`grad_command` once its outputs are reserved: read, run, check, write beside the targets.

    Returns the outputs written with their shapes, whether dK is among them, and the padding mode used.
    """
    parsed = [kernel for spec in kernels for kernel in parse_kernels(spec).kernels]
    item = load_input(source, gray=shared.gray, keep_alpha=shared.keep_alpha, limits=read_limits(shared))
    pause("read")
    for note in item.notes:
        report.say(f"{target_name(item.name)}: {note}")
    options = padding_for(options, item.kind)
    pause("compute")
    trace = None if explain is None else Trace()
    run = run_grad(item.data, parsed, options, dout, trace)
    if explain is not None and trace is not None:
        explain.append(ExplainedRun(target_name(item.name), trace))
    grads = run.grads
    values = {"dx": grads.dx, "dW": grads.dW, "db": grads.db, "dK": grads.dK}
    norms = ", ".join(f"|{name}| {norm:.6g} ({format_shape(shape)}{_values(values.get(name))})"
                      for name, norm, shape in grads.norms())
    report.say(f"x {format_shape(run.x.shape)} -> y {format_shape(run.output_shape)} ({run.dtype}, padding "
               f"{options.padding_mode}); {norms}; forward+backward {grads.seconds * 1000:.1f} ms")
    if check is not None:
        outcome = check_gradients(run, check)
        if show_check is not None:
            show_check(outcome)
        outcome.verdict()
    written = write_outputs(targets, grads, output_options.display, outputs=files)
    if output_options.montage is not None:
        tiles = grad_tiles(grads.dx, grads.dW, grads.dK, item.stem, [k.label for k in parsed])
        title = "convcli grad: dx, dW" + (", dK" if grads.dK is not None else "")
        files.write(output_options.montage, montage_png(tiles, title))
        written.append((GradOutput("montage", output_options.montage, "png"), (len(tiles),)))
    return written, grads.dK is not None, options.padding_mode


def _values(array: Optional[NDArray[np.floating]]) -> str:
    """``", values LO..HI"`` of an array's finite values, for the summary ("" when it has none)."""
    if array is None:
        return ""
    v = np.asarray(array)
    finite = v[np.isfinite(v)]
    return f", values {float(finite.min()):.4g}..{float(finite.max()):.4g}" if finite.size else ""


def _say_written(
    written: Sequence[tuple[GradOutput, tuple[int, ...]]], has_dk: bool, padding: Optional[str], report: Reporter
) -> None:
    for target, shape in written:
        if target.what == "montage":
            report.say(f"wrote {target_name(target.path)} (montage of {shape[0]} maps)")
        elif target.what == "npz":
            members = "dx, dW, db" + (", dK" if has_dk else "")
            report.say(f"wrote {target_name(target.path)} (npz: {members}; padding {padding})")
        else:
            name = "dK" if target.what == "dW" and has_dk else target.what
            report.say(f"wrote {name} to {target_name(target.path)} ({target.format}, {format_shape(shape)}, "
                       f"padding {padding})")

"""``convcli apply --engine dask``: one large input through :func:`convcli.dask.apply` on a dask.distributed cluster.

The input becomes a dask array without being read here: a ``.npy`` is read chunk by
chunk by the workers (:class:`NpyChunks`, each opening the file memory-mapped), a Zarr
array or a tiled TIFF through zarr (:mod:`convcli.io.chunked`, the ``big`` extra); an
image is decoded here and scattered.  The layer is built exactly as ``apply`` builds it
(:mod:`convcli.kernels.bank`), so both engines compute the same result.

The result is never gathered in one process: its blocks are computed on the workers a
window at a time (:func:`write_blocks`) and each is written into its place in the output
as it arrives - a ``.npy`` through :meth:`~convcli.io.outputs.OutputSet.stage_with`
(all or nothing, as every output of ``apply``), a Zarr array into a staged folder renamed
into place at the end.  A worker that dies is replaced and its tasks run again (dask's
retries): each block is written once, when its first result arrives.

Without ``--scheduler`` a local cluster starts (worker processes on 127.0.0.1, one thread
each); with it, convcli connects to that scheduler (the workers must see the input and,
for Zarr, the output paths: a shared filesystem).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np
from numpy.typing import NDArray

from ..dask import DEFAULT_CHUNK, apply, require
from ..errors import ConvcliError, ParameterError
from ..io.inputs import load_input
from ..io.mapped import create_npy, map_npy, worth_mapping
from ..io.outputs import OutputSet, check_folder, protected_files
from ..kernels.bank import layer_from_weights, layer_weights, working_dtype
from ..kernels.combine import check_combine, combine_maps
from ..kernels.spec import parse_kernels
from .apply import Written
from .apply_outputs import OutputOptions, resolve_format
from .common import QUIET, Reporter, SharedOptions, format_shape, padding_for, read_limits, target_name

__all__ = ["ClusterError", "NpyChunks", "apply_dask_command", "cluster", "write_blocks"]

#: How many blocks per worker are computed ahead of the writer.
AHEAD_PER_WORKER = 2


class ClusterError(ConvcliError):
    """The dask scheduler cannot be reached, or the cluster failed the job."""

    exit_code = 1


@dataclass(frozen=True)
class NpyChunks:
    """A ``.npy`` file as an array-like dask can slice: each slice opens the file memory-mapped where it runs.

    Only the path and the header's facts travel to the workers (never the data).
    """

    path: str
    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __getitem__(self, index: Any) -> NDArray[Any]:
        mapped = map_npy(self.path)
        try:
            return np.array(mapped.array[index])
        finally:
            mapped.close()


@contextmanager
def cluster(scheduler: Optional[str], workers: int = 2) -> Iterator[Any]:
    """A dask.distributed client: of the scheduler at ``scheduler``, or of a local cluster of ``workers`` processes.

    Raises
    ------
    ClusterError
        The scheduler does not answer within dask's connect timeout (``distributed.comm.timeouts.connect``,
        30 s unless configured, e.g. ``DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT=5s``).
    """
    distributed = require("distributed", "dask")
    if scheduler is None:
        with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                                      dashboard_address=None) as local, distributed.Client(local) as client:
            yield client
        return
    try:
        client = distributed.Client(scheduler)
    except (OSError, TimeoutError) as exc:
        raise ClusterError(f"cannot reach the dask scheduler at {scheduler!r}: {exc}") from None
    with client:
        yield client


def write_blocks(client: Any, y: Any, store: Callable[[tuple[slice, ...], NDArray[Any]], None],
                 progress: Optional[Callable[[float, int], None]] = None) -> int:
    """Compute every block of the dask array ``y`` on ``client`` and ``store(where, block)`` each as it arrives.

    At most :data:`AHEAD_PER_WORKER` blocks per worker are in flight, so neither the
    workers nor this process hold more than a few blocks, whatever ``y``'s size.

    Returns
    -------
    int
        How many blocks were stored (each exactly once).
    """
    distributed = require("distributed", "dask")
    delayed = y.to_delayed()
    offsets = [np.cumsum((0, *c)) for c in y.chunks]
    todo = list(np.ndindex(*delayed.shape))
    total = len(todo)
    ahead = max(1, AHEAD_PER_WORKER * max(1, len(client.scheduler_info().get("workers", {})) or 1))
    where: dict[Any, tuple[int, ...]] = {}
    pending = distributed.as_completed()
    for _ in range(min(ahead, total)):
        index = todo.pop(0)
        future = client.compute(delayed[index])
        where[future.key] = index
        pending.add(future)
    done = 0
    for future in pending:
        index = where.pop(future.key)
        block = future.result()
        store(tuple(slice(int(o[i]), int(o[i + 1])) for o, i in zip(offsets, index)), block)
        future.release()
        done += 1
        if progress is not None:
            progress(done, total)
        if todo:
            nxt = todo.pop(0)
            nf = client.compute(delayed[nxt])
            where[nf.key] = nxt
            pending.add(nf)
    return done


def _dask_input(source: str, chunk: int, shared: SharedOptions) -> tuple[Any, str, Optional[float]]:
    """The input as a dask array (N, C, H, W), chunked (1, C, chunk, chunk); its kind ("array" or "image") and divisor.

    Only a picture (PNG, JPEG...) is read here; a ``.npy``, Zarr array or TIFF is read by
    the workers, a chunk each.
    """
    import dask.array as da

    from ..io.chunked import _nchw, is_chunked, open_chunked

    if worth_mapping(source, 1):
        mapped = map_npy(source)  # the header checked (no pickles, not truncated), nothing of the data read
        spec = NpyChunks(os.path.abspath(source), tuple(mapped.array.shape), mapped.array.dtype)
        mapped.close()
        if spec.dtype.kind not in "biuf" or spec.ndim not in (2, 3, 4) or 0 in spec.shape:
            load_input(source, stream=True)  # says what is wrong, as apply does
        x = da.from_array(spec, chunks=chunk, asarray=False, meta=np.empty((0,) * spec.ndim, spec.dtype))
        return _nchw(x, chunk), "array", None
    if os.path.exists(source) and is_chunked(source):
        x, divisor = open_chunked(source, chunk)
        return x, "image" if divisor is not None or not os.path.isdir(source) else "array", divisor
    item = load_input(source, gray=shared.gray, keep_alpha=shared.keep_alpha, limits=read_limits(shared))
    return da.from_array(item.samples, chunks=(1, -1, chunk, chunk)), item.kind, item.divisor


def apply_dask_command(
    inputs: Sequence[str],
    kernels: Sequence[str],
    shared: SharedOptions,
    output_options: OutputOptions,
    report: Reporter = QUIET,
    combine: Optional[str] = None,
    *,
    scheduler: Optional[str] = None,
    chunk: int = DEFAULT_CHUNK,
    workers: int = 2,
) -> list[Written]:
    """``convcli apply --engine dask``: one input, its result to a ``.npy`` or Zarr array, block by block.

    Parameters
    ----------
    inputs : sequence of str
        One path: a ``.npy``, a Zarr array, a TIFF, or an image.
    kernels, shared, output_options, report, combine
        As :func:`convcli.commands.apply.apply_command`.
    scheduler : str, optional
        A dask.distributed scheduler's address; None starts a local cluster.
    chunk : int
        Input rows and columns per chunk (output blocks follow them, divided by the stride).
    workers : int
        Worker processes of the local cluster.

    Raises
    ------
    ParameterError
        Not one input, no ``-o``, an output that is not ``.npy`` or ``.zarr``, a chunk < 1.
    ClusterError
        The scheduler cannot be reached.
    """
    if len(inputs) != 1 or inputs[0] == "-":
        raise ParameterError("--engine dask takes one input file (a .npy, Zarr array, TIFF or image), not '-'")
    if output_options.output is None or output_options.output == "-":
        raise ParameterError("--engine dask needs -o FILE.npy or -o FOLDER.zarr (the result is written block by block)")
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ParameterError(f"--chunk must be a positive number of rows and columns, got {chunk!r}")
    target = output_options.output
    zarr_out = target.rstrip("/").endswith(".zarr")
    fmt = "zarr" if zarr_out else resolve_format(output_options)
    if fmt != "npy" and not zarr_out:
        raise ParameterError(f"--engine dask writes .npy or .zarr, not {fmt}; name the output FILE.npy or DIR.zarr")
    if combine is not None:
        combine = check_combine(combine)
    check_folder(target.rstrip("/"))
    options = shared.layer_options()
    parsed = [kernel for spec in kernels for kernel in parse_kernels(spec).kernels]
    if not parsed:
        raise ParameterError("no kernel given; expected at least one -k KERNEL")
    import dask.array as da

    x, kind, divisor = _dask_input(inputs[0], chunk, shared)
    options = padding_for(options, kind)
    channels = int(x.shape[1])
    dtype = working_dtype(np.empty(0, x.dtype), options.dtype)
    layer = layer_from_weights(layer_weights(parsed, channels, options), options, dtype, divisor)
    y = apply(x, layer)
    if combine is not None:
        reduce = functools.partial(combine_maps, kernels=len(parsed), mode=combine)
        y = da.map_blocks(reduce, y, dtype=y.dtype, chunks=(y.chunks[0], (channels,), y.chunks[2], y.chunks[3]))
    shape = tuple(int(n) for n in y.shape)
    protect = protected_files(*inputs, *kernels, shared.bias)
    with report.progress("filtering", 1, show=True) as on_progress, cluster(scheduler, workers) as client:
        if zarr_out:
            from ..io.chunked import write_zarr

            write_zarr(client, y, target, protect, lambda done, total: on_progress(done / total, 1))
        else:
            with OutputSet(protect) as files:
                files.reserve([target])

                def fill(fd: int) -> None:
                    out = create_npy(fd, shape, y.dtype, target)
                    try:
                        def store(where: tuple[slice, ...], block: NDArray[Any]) -> None:
                            out.array[where] = block
                            out.release()

                        write_blocks(client, y, store, lambda done, total: on_progress(done / total, 1))
                        out.flush()
                    finally:
                        out.close()

                files.stage_with(target, fill)
    written = [Written(target, shape, fmt or "npy", padding=str(options.padding_mode))]
    report.say(f"wrote {target_name(target)} ({written[0].format}, {format_shape(shape)}, padding "
               f"{options.padding_mode}, engine dask, {name_or_local(scheduler)})")
    return written


def name_or_local(scheduler: Optional[str]) -> str:
    """How the ``wrote`` line names the cluster."""
    return f"scheduler {scheduler}" if scheduler else "local cluster"

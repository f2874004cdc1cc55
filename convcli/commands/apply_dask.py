"""``convcli apply --engine dask``: one large input through :func:`convcli.dask.apply` on a dask.distributed cluster.

The input becomes a dask array without being read here: a ``.npy`` is read chunk by
chunk by the workers (:class:`~convcli.io.chunked.NpyChunks`, each opening the file memory-mapped), a Zarr
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

import dataclasses
import functools
import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Callable, Optional

import numpy as np
from numpy.typing import NDArray

from ..dask import DEFAULT_CHUNK, apply, require
from ..errors import ConvcliError, ParameterError, one_line
from ..io.chunked import NpyChunks, _nchw, is_chunked, open_chunked, write_zarr
from ..io.inputs import load_input
from ..io.mapped import create_npy, map_npy, worth_mapping
from ..io.outputs import OutputSet, check_folder, protected_files
from ..kernels.bank import layer_from_weights, layer_weights, working_dtype
from ..kernels.combine import check_combine, combine_maps
from ..kernels.spec import parse_kernels
from .apply import Written
from .apply_outputs import OutputOptions, resolve_format
from .common import QUIET, Reporter, SharedOptions, format_shape, padding_for, read_limits, target_name

__all__ = [
    "IMAGE_SUFFIXES", "ClusterError", "ImagesFailed", "apply_dask_command", "cluster", "map_images",
    "write_blocks",
]

#: How many blocks per worker are computed ahead of the writer.
AHEAD_PER_WORKER = 2


class ClusterError(ConvcliError):
    """The dask scheduler cannot be reached, or the cluster failed the job."""

    exit_code = 1


class ImagesFailed(ConvcliError):
    """Some images of a mapped run failed (each told on its own line); the others were written."""

    exit_code = 1


#: What a folder given to ``--engine dask`` contributes: its files with these suffixes (any case).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".gif")


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
        # silence_logs: a task that fails is told by convcli in one line, not by the workers' log with a traceback
        with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                                      dashboard_address=None, silence_logs=logging.ERROR) as local, \
                distributed.Client(local) as client:
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
        One path: a ``.npy``, a Zarr array, a TIFF, or an image; several paths, or a
        folder of images, are mapped over the workers one image a task (:func:`map_images`).
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
        ``-`` as a source, no ``-o``, an output that is not ``.npy`` or ``.zarr``, a chunk < 1.
    ClusterError
        The scheduler cannot be reached.
    """
    if "-" in (*inputs, *kernels, shared.bias):
        raise ParameterError("--engine dask reads files, not standard input ('-')")
    if len(inputs) > 1 or (os.path.isdir(inputs[0]) and not inputs[0].rstrip("/").endswith(".zarr")):
        return map_images(inputs, kernels, shared, output_options, report, combine, scheduler=scheduler,
                          workers=workers)
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


def _images(inputs: Sequence[str]) -> list[str]:
    """The inputs as absolute paths, a folder replaced by its images (sorted by name)."""
    found: list[str] = []
    for source in inputs:
        if os.path.isdir(source):
            names = sorted(n for n in os.listdir(source) if n.lower().endswith(IMAGE_SUFFIXES))
            if not names:
                raise ParameterError(f"folder {target_name(source)} holds no image ({', '.join(IMAGE_SUFFIXES)})")
            found.extend(os.path.abspath(os.path.join(source, n)) for n in names)
        else:
            found.append(os.path.abspath(source))
    return found


def _apply_one(source: str, kernels: Sequence[str], shared: SharedOptions, output_options: OutputOptions,
               combine: Optional[str]) -> tuple[list[Written], Optional[str]]:
    """One task of :func:`map_images`, run on a worker: ``apply`` of one image, all or nothing for its files.

    Returns the files written, or none and the one-line reason the image failed (a bad
    input is a result, not a task failure: the worker logs no traceback for it).
    """
    from ..engine.parallel import capped_threads
    from .apply import apply_command

    try:
        with capped_threads(1):  # one engine thread a task: the worker runs a task on each of its threads
            return apply_command([source], kernels, shared, output_options, QUIET, combine=combine), None
    except ConvcliError as exc:
        return [], one_line(exc, 160)


def map_images(
    inputs: Sequence[str],
    kernels: Sequence[str],
    shared: SharedOptions,
    output_options: OutputOptions,
    report: Reporter = QUIET,
    combine: Optional[str] = None,
    *,
    scheduler: Optional[str] = None,
    workers: int = 2,
) -> list[Written]:
    """Several images (or a folder of them) over the workers, one task an image, each written as it finishes.

    Each task is the local ``apply`` of one image on a worker (its outputs all or nothing,
    beside the input or in ``-o``'s folder, which the workers must see: a shared
    filesystem).  A failed image does not stop the others; the run then ends with exit
    status 1, its one error line naming the failed images and why (the first three).
    ``-o`` must be a folder (``out/``) or a name with
    ``{stem}``, and no two images may share a stem, so that no two tasks write one file.

    Raises
    ------
    ParameterError
        ``-o`` naming one file, two inputs with one stem, a folder with no image.
    ImagesFailed
        After every task has ended, when at least one image failed.
    """
    from ..io.inputs import input_stem
    from .apply_outputs import check_output_options, is_directory_target

    check_output_options(output_options)
    target = output_options.output
    if target is not None and not is_directory_target(target) and "{stem}" not in target:
        raise ParameterError(
            f"-o {target_name(target)} names one file, but several images each write their own; "
            "use -o FOLDER/ or a name with {stem}"
        )
    sources = _images(inputs)
    stems: dict[str, str] = {}
    for source in sources:
        other = stems.setdefault(input_stem(source), source)
        if other != source:
            raise ParameterError(f"{target_name(other)} and {target_name(source)} share the stem "
                                 f"{input_stem(source)!r}: their outputs would be one file")
    if target is not None:
        check_folder(target, into=is_directory_target(target))
        output_options = dataclasses.replace(output_options, output=os.path.join(os.path.abspath(target), "")
                                             if is_directory_target(target) else os.path.abspath(target))
    for spec in kernels:
        parse_kernels(spec)  # a bad kernel is told once, before any task
    distributed = require("distributed", "dask")
    written: list[Written] = []
    failed: list[str] = []
    with report.progress("filtering", len(sources), show=True) as on_progress, cluster(scheduler, workers) as client:
        futures = {client.submit(_apply_one, source, list(kernels), shared, output_options, combine, pure=False):
                   source for source in sources}
        for done, future in enumerate(distributed.as_completed(futures), 1):
            source = futures[future]
            try:
                files, reason = future.result()
            except Exception as exc:  # a worker lost for good, or a library error in the task: still one line
                files, reason = [], f"{type(exc).__name__}: {one_line(exc, 160)}"
            if reason is not None:
                failed.append(f"{target_name(source)}: {reason}")
            else:
                written.extend(files)
                for one in files:
                    report.say(f"wrote {target_name(one.path)} ({one.format}, {format_shape(one.shape)}, "
                               f"engine dask)")
            on_progress(done, len(sources))
    if failed:
        flush = getattr(report, "flush", None)
        if flush is not None:  # what was written is told even though the run fails
            flush()
        shown = "; ".join(failed[:3]) + ("; ..." if len(failed) > 3 else "")
        raise ImagesFailed(f"{len(failed)} of {len(sources)} images failed ({shown}); the other "
                           f"{len(sources) - len(failed)} were written")
    return written

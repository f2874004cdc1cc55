"""What each command does, as a library: the CLI calls one function per command.

==============  ===================================================================================
module          its job
==============  ===================================================================================
apply           ``convcli apply``: inputs + kernels -> feature maps (padding by input kind, maps
                combined), written all or nothing
apply_outputs   ``apply``'s output options, formats, file names and bytes
grad            ``convcli grad``: the backward pass, ``dout``, output naming and writing, the
                ``--check`` verdict
gradcheck       the numerical gradient check (float64 central differences) ``grad --check`` runs
info            ``convcli info``: one row per input (shape, dtype, statistics)
kernels         ``convcli kernels``: the listings of convcli's and ImageMagick's kernels, a spec's
                kernels as matrices
explain         ``convcli explain``: one output pixel (or dx pixel) by hand, and the labelled column matrix
shape           ``convcli shape``: a chain of layers' geometry and costs, with no data
trace_view      ``--explain``: the engine's trace of a run as lines to read
equivalent      ``--show-equivalent``: the same job for PyTorch, scipy.ndimage, OpenCV, ImageMagick, libvips
common          what the commands share: their shared options, the default padding of each
                input kind, the reporter, message formats
==============  ===================================================================================

Each raises :class:`~convcli.errors.ConvcliError` for bad input and writes nothing until
every output has been named and checked.  Nothing is imported here.
"""

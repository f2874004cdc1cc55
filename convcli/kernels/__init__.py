"""Kernels: from what a user writes after ``-k`` to the weights of a layer, and back.

=====================  ==========================================================================
module                 its job
=====================  ==========================================================================
kernel                 the :class:`~convcli.kernels.kernel.Kernel` type (weights, bias, origin,
                       taps), its checks, and the one zero-sum test
builtins               convcli's named kernels: constants (``SOBEL_X``...), factories
                       (``gaussian_kernel``...), the ``BUILTINS`` registry
spec                   the kernel-spec parser: which reader a spec goes to, kernel lists, inline
                       matrices; convcli's names against ImageMagick's
files                  kernel files (.npy, .npz, text, JSON, standard input)
imagemagick_geometry   ImageMagick's geometry strings (``WxH+X+Y``, flags) as ``ParseGeometry``
imagemagick            ImageMagick's kernel as it holds it, user arrays ``WxH+X+Y:``, rotations
imagemagick_builtins   ImageMagick's built-in kernels, built as ImageMagick 6 builds them
imagemagick_named      ImageMagick's kernel names and their parser (``Sobel:45``, ``Kirsch:@``)
scale                  ``--scale``: ImageMagick's ``convolve:scale``, forward and chain rule
frame                  where 2-D kernels sit in one layer: origins, the common frame
bank                   kernels + options -> a layer: the filter bank, ``LayerOptions``,
                       ``build_layer``
bias                   a bias read from text or a file, spread over a layer's filters
combine                ``--combine``: the maps of several kernels reduced to one per channel
gradient               the inverse of the bank: dK, the gradient for the kernels as given
=====================  ==========================================================================

Nothing is imported here: ``import convcli.kernels.builtins`` and the like load what they need.
"""

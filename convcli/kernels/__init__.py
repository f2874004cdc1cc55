"""Kernels: from what a user writes after ``-k`` to the weights of a layer, and back.

============  ===================================================================================
module        its job
============  ===================================================================================
kernel        the :class:`~convcli.kernels.kernel.Kernel` type, its checks, and the one zero-sum test
builtins      the named kernels: constants (``SOBEL_X``...), factories (``gaussian_kernel``...),
              the ``BUILTINS`` registry
spec          the kernel-spec parser: names, inline matrices, ImageMagick's ``WxH:``, kernel files
bank          kernels + options -> a layer: the filter bank, ``LayerOptions``, ``build_layer``, bias
gradient      the inverse of the bank: dK, the gradient for the kernels as given, from the layer's dW
============  ===================================================================================

Nothing is imported here: ``import convcli.kernels.builtins`` and the like load what they need.
"""

"""convcli: im2col 2-D convolution, forward and backward, for images and arrays.

>>> import numpy as np
>>> from convcli import Convolution
>>> layer = Convolution(np.ones((1, 1, 3, 3), np.float32), pad=1)
>>> layer.forward(np.ones((1, 1, 4, 4), np.float32))[0, 0]
array([[4., 6., 6., 4.],
       [6., 9., 9., 6.],
       [6., 9., 9., 6.],
       [4., 6., 6., 4.]], dtype=float32)
"""

from .engine.im2col import col2im, im2col
from .engine.layer import Convolution, conv2d
from .errors import ConvcliError

__version__ = "0.1.0"

__all__ = ["Convolution", "ConvcliError", "col2im", "conv2d", "im2col", "__version__"]

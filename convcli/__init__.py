"""convcli: im2col 2-D convolution, forward and backward, for images and arrays.

The public API: :class:`Convolution` and :func:`conv2d` (the layer), :func:`im2col` and
:func:`col2im` (the transform and its adjoint), :func:`set_num_threads` and
:func:`get_num_threads` (the engine's worker threads), :class:`ConvcliError` (every error
convcli raises for bad input) and ``__version__``.  They are loaded on first use, so
``import convcli`` (and ``convcli --help``) does not import numpy.

The package, one room per job, in the order data flows:

- :mod:`convcli.engine`: the convolution itself (geometry, im2col, the layer, threads, memory);
- :mod:`convcli.kernels`: kernels (built-ins, the spec parser, kernels + options -> a layer, dK);
- :mod:`convcli.io`: reading inputs, decoding arrays and images, floats -> pixels, writing outputs;
- :mod:`convcli.commands`: what each command does, as a library (apply, grad, info, kernels);
- :mod:`convcli.cli`: the Typer command-line tool (options in, one call, errors out).

:mod:`convcli.errors` holds the error hierarchy every stage raises; :mod:`convcli.hooks` the
test-only pause points the signal tests stop a real process at.

>>> import numpy as np
>>> from convcli import Convolution
>>> layer = Convolution(np.ones((1, 1, 3, 3), np.float32), pad=1)
>>> layer.forward(np.ones((1, 1, 4, 4), np.float32))[0, 0]
array([[4., 6., 6., 4.],
       [6., 9., 9., 6.],
       [6., 9., 9., 6.],
       [4., 6., 6., 4.]], dtype=float32)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import ConvcliError

if TYPE_CHECKING:
    from .engine.im2col import col2im, im2col
    from .engine.layer import Convolution, conv2d
    from .engine.parallel import get_num_threads, set_num_threads

__version__ = "0.1.0"

__all__ = [
    "Convolution", "ConvcliError", "col2im", "conv2d", "get_num_threads", "im2col", "set_num_threads", "__version__",
]

# name -> the module that defines it, imported on first use (PEP 562)
_LAZY = {
    "Convolution": ".engine.layer",
    "conv2d": ".engine.layer",
    "im2col": ".engine.im2col",
    "col2im": ".engine.im2col",
    "get_num_threads": ".engine.parallel",
    "set_num_threads": ".engine.parallel",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})

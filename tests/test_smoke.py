import numpy as np

import convcli


def test_public_api() -> None:
    layer = convcli.Convolution(np.ones((1, 1, 3, 3), np.float32), pad=1)
    out = layer.forward(np.ones((1, 1, 4, 4), np.float32))
    assert out.dtype == np.float32
    assert out[0, 0, 1, 1] == 9 and out[0, 0, 0, 0] == 4

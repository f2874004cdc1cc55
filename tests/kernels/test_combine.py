"""``--combine``: the maps of M 2-D kernels reduced to one per channel, in the bank's c*M + m order."""

from __future__ import annotations

import numpy as np
import pytest

from convcli.commands.apply import display_for
from convcli.errors import ParameterError
from convcli.kernels.bank import LayerOptions, layer_weights
from convcli.kernels.combine import COMBINE_MODES, check_combine, combine_maps
from convcli.kernels.spec import parse_kernels


def test_each_channel_reduces_its_own_kernels() -> None:
    rng = np.random.default_rng(0)
    y = rng.standard_normal((2, 3 * 4, 5, 6)).astype(np.float32)  # C = 3 channels, M = 4 kernels
    grouped = np.stack([y[:, c * 4:(c + 1) * 4] for c in range(3)], axis=1)  # (N, C, M, H, W)
    expected = {"sum": grouped.sum(2), "max": grouped.max(2), "min": grouped.min(2), "maxabs": np.abs(grouped).max(2)}
    for mode in COMBINE_MODES:
        got = combine_maps(y, 4, mode)
        assert got.shape == (2, 3, 5, 6) and got.dtype == np.float32
        np.testing.assert_allclose(got, expected[mode], rtol=1e-6)
    assert check_combine(" MAX ") == "max"
    with pytest.raises(ParameterError, match="--combine must be one of sum, max, min, maxabs"):
        check_combine("mean")
    with pytest.raises(ParameterError, match="not C groups of 5"):
        combine_maps(y, 5, "sum")


@pytest.mark.parametrize(("spec", "mode", "display"), [
    ("Kirsch:@", "max", "clip"), ("Kirsch:@", "maxabs", "clip"), ("Kirsch:@", "min", "offset"),
    ("Kirsch:@", "sum", "offset"),  # the eight Kirsch kernels sum to zero
    ("gaussian:1;box:3", "min", "clip"), ("gaussian:1;box:3", "sum", "clip"), ("gaussian:1;box:3", "max", "clip"),
    ("3x3: -1,-1,-1,-1,-1,-1,-1,-1,-1;3: -2,0,0,0,0,0,0,0,0", "max", "offset"),
])
def test_default_display_of_combined_maps(spec: str, mode: str, display: str) -> None:
    kernels = list(parse_kernels(spec).kernels)
    weights = layer_weights(kernels, 3, LayerOptions())
    assert display_for(weights, mode, len(kernels)) == display

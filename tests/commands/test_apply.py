"""convcli.commands.apply: apply's library layer — output options, layers built once, display, bit depth.

The numbers ``apply`` computes are tested end to end in test_cli_apply.py; here are the decisions
around them: which format and bit depth, which display, and how often a layer is built.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import convcli.kernels.bank as bank
from convcli.commands.apply import OutputOptions, apply_filters, check_output_options, display_for, resolve_format
from convcli.errors import OutputFileError, ParameterError
from convcli.io.inputs import LoadedInput
from convcli.kernels.bank import LayerOptions, layer_weights
from convcli.kernels.spec import parse_kernel


def loaded(data: np.ndarray, name: str, kind: str = "array", bits: Any = None) -> LoadedInput:
    return LoadedInput(data, name, Path(name).stem, kind, [], bits)


# ---------------------------------------------------------------- output options


@pytest.mark.parametrize(
    ("output", "fmt", "expected"),
    [
        ("t.npy", None, "npy"),
        ("t.TIFF", None, "tiff"),
        ("t.tif", "tiff", "tiff"),
        ("t.tiff", "tif", "tiff"),
        ("t.dat", "npy", "npy"),  # no known extension: --format decides
        ("-", "png", "png"),
        ("-", None, "npy"),
        (None, None, None),
        ("folder/", "png", "png"),
        ("{stem}-{map}.png", None, "png"),
    ],
)
def test_resolve_format(output: Any, fmt: Any, expected: Any) -> None:
    assert resolve_format(OutputOptions(output=output, format=fmt)) == expected


@pytest.mark.parametrize(("output", "fmt"), [("t.npy", "png"), ("t.png", "npy"), ("a-{map}.tif", "npz")])
def test_format_contradicting_the_output_name_is_refused(output: str, fmt: str) -> None:
    with pytest.raises(ParameterError, match=rf"--format {fmt} contradicts the output name '{output}'"):
        resolve_format(OutputOptions(output=output, format=fmt))


def test_check_output_options() -> None:
    assert check_output_options(OutputOptions(output="o.png", display="minmax", bit_depth=16)) == "png"
    with pytest.raises(ParameterError, match="--display"):
        check_output_options(OutputOptions(display="log"))
    with pytest.raises(ParameterError, match="--bit-depth must be 8 or 16, got 12"):
        check_output_options(OutputOptions(bit_depth=12))
    with pytest.raises(OutputFileError, match="cannot tell the output format of 'o.gif'"):
        check_output_options(OutputOptions(output="o.gif"))


# ---------------------------------------------------------------- layers and display


def test_a_layer_is_built_once_per_channel_count_and_dtype(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = bank.filter_bank

    def counting(kernels: Any, channels: int, **kw: Any) -> Any:
        calls.append(channels)
        return real(kernels, channels, **kw)

    monkeypatch.setattr(bank, "filter_bank", counting)
    inputs = [
        loaded(np.zeros((1, 1, 6, 7), np.float32), str(tmp_path / "a.npy")),
        loaded(np.zeros((1, 1, 9, 5), np.float32), str(tmp_path / "b.npy")),  # another size, same C and dtype
        loaded(np.zeros((1, 1, 4, 4), np.float64), str(tmp_path / "c.npy")),  # another dtype: same float64 bank
        loaded(np.zeros((1, 3, 4, 4), np.float32), str(tmp_path / "d.npy")),  # another C: a new bank
    ]
    written = apply_filters(inputs, [parse_kernel("box:3")], LayerOptions(), OutputOptions(output=f"{tmp_path}/"))
    assert len(written) == 4 and sorted(calls) == [1, 3]


@pytest.mark.parametrize(("spec", "normalize", "mode"), [
    ("log:1.4", False, "offset"),  # sums to ~1e-18 in float64; a float32 copy sums to ~+1e-9
    ("log:0.01", True, "offset"),  # zero-sum: normalize leaves it alone, so it stays zero-sum
    ("gaussian:1", False, "clip"),
    ("-1,-2", False, "offset"),
    ("-1,-2", True, "clip"),  # divided by its negative sum: sums to 1
])
def test_display_is_chosen_from_the_float64_filters(spec: str, normalize: bool, mode: str) -> None:
    weights = layer_weights([parse_kernel(spec)], 3, LayerOptions(normalize=normalize))
    assert display_for(weights) == mode


def test_log_display_is_offset_though_its_float32_weights_sum_above_zero(tmp_path: Path) -> None:
    weights = layer_weights([parse_kernel("log:1.4")], 1, LayerOptions())
    assert weights.W.astype(np.float32).reshape(1, -1).sum(axis=1)[0] > 1e-12  # what the old test looked at
    x = loaded(np.random.default_rng(0).random((1, 1, 12, 12)).astype(np.float32), str(tmp_path / "x.npy"))
    out = OutputOptions(output=str(tmp_path / "o.png"))
    (done,) = apply_filters([x], [parse_kernel("log:1.4")], LayerOptions(), out)
    assert done.display == "offset"


def test_16_bit_inputs_give_16_bit_one_map_pngs(tmp_path: Path) -> None:
    data = np.random.default_rng(0).random((1, 1, 8, 8)).astype(np.float32)
    g16 = loaded(data, str(tmp_path / "g16.png"), "image", 16)
    g8 = loaded(data, str(tmp_path / "g8.png"), "image", 8)
    rgb16 = loaded(np.repeat(data, 3, axis=1), str(tmp_path / "rgb16.tif"), "image", 16)
    box, sobel = parse_kernel("box:3"), parse_kernel("sobel-x")

    def bits(inputs: list[LoadedInput], kernels: Any = (box,), name: str = "{stem}-{map}.png", **kw: Any) -> list[Any]:
        out = OutputOptions(output=str(tmp_path / name), **kw)
        return [w.bits for w in apply_filters(inputs, list(kernels), LayerOptions(), out)]

    assert bits([g16]) == [16]
    assert bits([g16], (box, sobel)) == [16, 16]  # two maps: one PNG each, each 16-bit
    assert bits([g16, g8]) == [8, 8]  # not every input is 16-bit
    assert bits([rgb16], name="{stem}.png") == [8]  # three maps in one RGB PNG: 16-bit PNGs hold one map
    assert bits([rgb16]) == [16, 16, 16]  # {map}: one file per map, each 16-bit
    assert bits([g16], bit_depth=8) == [8]
    assert bits([g8], bit_depth=16) == [16]


# ---------------------------------------------------------------- apply_command: the command as a library call


def test_apply_command_reads_filters_and_writes_with_library_options(tmp_path: Path) -> None:
    from convcli.commands.apply import apply_command
    from convcli.commands.common import LayerJob

    np.save(tmp_path / "x.npy", np.ones((1, 2, 5, 5)))
    said: list[str] = []

    class Collect:
        def say(self, message: str) -> None:
            said.append(message)

        def progress(self, description: str, total: int, *, show: bool = True) -> Any:
            import contextlib

            return contextlib.nullcontext(lambda done, total: None)

    shared = LayerJob(LayerOptions(pad="valid"), bias="0.5")
    out = OutputOptions(output=str(tmp_path / "y.npy"))
    written = apply_command([str(tmp_path / "x.npy")], ["box:3"], shared, out, Collect())
    assert [w.path for w in written] == [str(tmp_path / "y.npy")]
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), np.full((1, 2, 3, 3), 1.5))
    assert said[:-1] == [f"wrote {str(tmp_path / 'y.npy')!r} (npy, 1×2×3×3, padding zeros)"]  # an array: zeros
    assert said[-1].startswith("apply: 1 input (1×2×5×5) -> 1 file, values 1.5..1.5, ")

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import convcli


def test_public_api() -> None:
    layer = convcli.Convolution(np.ones((1, 1, 3, 3), np.float32), pad=1)
    out = layer.forward(np.ones((1, 1, 4, 4), np.float32))
    assert out.dtype == np.float32
    assert out[0, 0, 1, 1] == 9 and out[0, 0, 0, 0] == 4


def test_public_api_names_are_exported_and_typed() -> None:
    from convcli.engine.im2col import col2im, im2col
    from convcli.engine.layer import Convolution, conv2d
    from convcli.engine.parallel import get_num_threads, set_num_threads
    from convcli.errors import ConvcliError

    expected = {"Convolution": Convolution, "conv2d": conv2d, "im2col": im2col, "col2im": col2im,
                "ConvcliError": ConvcliError, "set_num_threads": set_num_threads, "get_num_threads": get_num_threads}
    assert sorted(convcli.__all__) == sorted([*expected, "__version__"])
    for name, obj in expected.items():
        assert getattr(convcli, name) is obj, name
    assert convcli.__version__ == "0.1.0"
    import importlib.metadata

    assert importlib.metadata.version("convcli") == convcli.__version__  # pyproject reads it from here
    with pytest.raises(AttributeError, match="no attribute 'layer'"):
        convcli.layer  # noqa: B018
    assert (Path(convcli.__file__).parent / "py.typed").exists()


def test_help_imports_no_numpy() -> None:
    """``import convcli`` and ``convcli --help`` load the engine (and numpy) only when it is used."""
    code = "import sys, convcli.cli; convcli.cli.app(['--help'], standalone_mode=False); print('numpy' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False"


def test_docstring_cross_references_resolve() -> None:
    """Every :func:/:class:/:mod:/:data:/:meth:/:attr: reference to ``convcli.…`` names something that exists.

    In every module but the engine's (convcli/engine/, rewritten on its own).
    """
    import importlib
    import re
    from pathlib import Path

    package = Path(convcli.__file__).parent
    pattern = re.compile(r":(?:func|class|mod|data|meth|attr):`~?(convcli(?:\.\w+)+)`")
    missing = []
    for source in sorted(p for p in package.rglob("*.py") if "engine" not in p.relative_to(package).parts):
        for target in pattern.findall(source.read_text(encoding="utf-8")):
            parts = target.split(".")
            for cut in range(len(parts), 0, -1):  # the longest importable module, then attributes
                try:
                    obj: object = importlib.import_module(".".join(parts[:cut]))
                except ImportError:
                    continue
                for name in parts[cut:]:
                    fields = getattr(obj, "__dataclass_fields__", {})
                    if not hasattr(obj, name) and name not in fields:
                        missing.append(f"{source.relative_to(package)}: {target}")
                        break
                    obj = getattr(obj, name, None)
                break
    assert missing == []


def test_library_docstrings_name_parameters_not_cli_flags() -> None:
    """The library documents its own parameters (flip=, normalize=), not the CLI's --flip/--normalize."""
    import inspect

    from convcli.commands import apply as filtering
    from convcli.commands import grad as gradients
    from convcli.commands import gradcheck
    from convcli.kernels import bank

    for module in (bank, filtering, gradcheck, gradients):
        for name, obj in vars(module).items():
            if getattr(obj, "__module__", None) != module.__name__:
                continue
            docs = [inspect.getdoc(obj) or ""]
            docs += [inspect.getdoc(member) or "" for member in vars(obj).values()] if inspect.isclass(obj) else []
            for doc in docs:
                assert "--flip" not in doc and "--normalize" not in doc, f"{module.__name__}.{name}"

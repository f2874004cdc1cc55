import numpy as np

import convcli


def test_public_api() -> None:
    layer = convcli.Convolution(np.ones((1, 1, 3, 3), np.float32), pad=1)
    out = layer.forward(np.ones((1, 1, 4, 4), np.float32))
    assert out.dtype == np.float32
    assert out[0, 0, 1, 1] == 9 and out[0, 0, 0, 0] == 4


def test_docstring_cross_references_resolve() -> None:
    """Every :func:/:class:/:mod:/:data:/:meth:/:attr: reference to ``convcli.…`` names something that exists."""
    import importlib
    import re
    from pathlib import Path

    package = Path(convcli.__file__).parent
    pattern = re.compile(r":(?:func|class|mod|data|meth|attr):`~?(convcli(?:\.\w+)+)`")
    missing = []
    for source in sorted(package.glob("*.py")):
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
                        missing.append(f"{source.name}: {target}")
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

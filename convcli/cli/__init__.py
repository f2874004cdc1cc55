"""The command-line tool: Typer only (options in, one library call, errors out).

:mod:`convcli.cli.app` is the Typer app and its one-line errors; :mod:`convcli.cli.options`
the options declared once; one module per command registers it on the app:
:mod:`convcli.cli.apply`, :mod:`convcli.cli.grad`, :mod:`convcli.cli.kernels`,
:mod:`convcli.cli.info`, :mod:`convcli.cli.shape`, :mod:`convcli.cli.explain` (imported here, in the
order ``convcli --help`` lists them).
"""

# isort: off
from .app import app, main
from . import apply, grad, kernels, info, shape, explain  # noqa: F401  (each registers its command; --help lists them so)
# isort: on

__all__ = ["app", "main"]

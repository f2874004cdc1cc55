"""The Typer app: the root command, ``--version``, and errors as one line on stderr with an exit code.

Every command translates options into one library call, and :class:`_OneLineErrors` turns
whatever goes wrong into one ``convcli: error: ...`` line and an exit code; no maths happens
in the CLI.  The commands register themselves on :data:`app` from their own modules
(:mod:`convcli.cli.apply`, :mod:`convcli.cli.grad`, :mod:`convcli.cli.kernels`,
:mod:`convcli.cli.info`), which :mod:`convcli.cli` imports; the shared options are
:mod:`convcli.cli.options`.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Sequence
from typing import Annotated, Any, NoReturn, Optional

import typer
from typer.core import TyperGroup

from .. import __version__
from ..errors import ConvcliError, one_line

# Exit codes: 1 failure, 2 usage (bad option or argument), 3 unreadable input, 4 unwritable output.


class _OneLineErrors(TyperGroup):
    """Typer group whose errors end as one line on stderr: no panel, no traceback."""

    def main(  # type: ignore[override]
        self,
        args: Optional[Sequence[str]] = None,
        prog_name: Optional[str] = None,
        complete_var: Optional[str] = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            with warnings.catch_warnings():
                # numpy's floating-point RuntimeWarnings (overflow, invalid value...) would add lines to
                # stderr; non-finite results are written as they are, and real errors still raise
                warnings.simplefilter("ignore", RuntimeWarning)
                rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except ConvcliError as error:
            _fail(error.message, error.exit_code)
        except (typer.Abort, KeyboardInterrupt):
            _fail("interrupted", 130)
        except BrokenPipeError:
            # the reader of our stdout went away (`| head`): stop quietly
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(1)
        except MemoryError:
            _fail("out of memory; try fewer or smaller inputs", 1)
        except OSError as error:
            where = f" {error.filename!r}" if error.filename else ""
            _fail(f"{error.strerror or error}{':' if where else ''}{where}", 1)
        except Exception as error:
            if not (hasattr(error, "format_message") and hasattr(error, "exit_code")):
                # a bug: still one line and no traceback in a pipeline
                _fail(f"internal error: {type(error).__name__}: {one_line(error, 300)} (please report it)", 1)
            # a usage error from Typer's parser (missing option, bad choice...)
            if type(error).__name__ == "NoArgsIsHelpError":
                typer.echo(error.format_message(), err=True)
                sys.exit(error.exit_code)
            ctx = getattr(error, "ctx", None)
            hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
            _fail(f"{error.format_message()}{hint}", error.exit_code)
        if standalone_mode:
            sys.exit(rv if isinstance(rv, int) else 0)
        return rv


def _fail(message: str, code: int) -> NoReturn:
    typer.echo(f"convcli: error: {message}", err=True)
    sys.exit(code)


app = typer.Typer(
    name="convcli",
    cls=_OneLineErrors,
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
    pretty_exceptions_enable=False,
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"convcli {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version_callback, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """im2col 2-D convolution for images and arrays: filter, back-propagate, inspect.

    Images load as float NCHW in [0, 1]; arrays (.npy, .npz, .txt/.csv; HW, CHW or NCHW) as
    they are. '-' reads standard input or writes standard output.
    """


def main() -> None:
    """Entry point of the ``convcli`` console script and ``python -m convcli``."""
    app()

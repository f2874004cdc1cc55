"""The Typer app: the root command, ``--version``, signals, and errors as one line on stderr with an exit code.

Every command translates options into one library call, and :class:`_OneLineErrors` turns
whatever goes wrong into one ``convcli: error: ...`` line and an exit code
(:data:`EXIT_CODES`); no maths happens in the CLI.  :func:`main`, the console script, also
makes the process safe to run in pipelines and batch jobs: SIGTERM and SIGHUP unwind
through the same clean-up as SIGINT (temporary files removed, replaced outputs put back,
one line, exit 128 + the signal's number), a reader that leaves early ends convcli as
SIGPIPE ends a process (quietly), and closed standard streams are refused where they are
needed instead of swallowing output.  The commands register themselves on :data:`app`
from their own modules (:mod:`convcli.cli.apply`, :mod:`convcli.cli.grad`,
:mod:`convcli.cli.kernels`, :mod:`convcli.cli.info`), which :mod:`convcli.cli` imports;
the shared options are :mod:`convcli.cli.options`.
"""

from __future__ import annotations

import os
import signal
import sys
import warnings
from collections.abc import Sequence
from typing import Annotated, Any, NoReturn, Optional

import typer
from typer.core import TyperCommand, TyperGroup

from .. import __version__
from ..errors import BrokenOutputPipe, ConvcliError, Interrupted, one_line, visible

#: The exit codes: (code, short label for --help, what it means).
EXIT_CODES: tuple[tuple[str, str, str], ...] = (
    ("0", "ok", "success"),
    ("1", "failure", "a failure, such as a failed --check or a result too large for memory"),
    ("2", "usage", "a bad option, argument or kernel, or '-' while standard input is a terminal"),
    ("3", "unreadable input", "an input that cannot be read (missing, a device, too large, of no known format)"),
    ("4", "output", "an output that cannot be written (or may not be replaced); nothing was written"),
    ("130", "interrupted", "interrupted by SIGINT (129 for SIGHUP, 143 for SIGTERM: 128 + the signal's number); "
     "no file was written or replaced"),
    ("141", "reader left", "the reader of standard output left early (| head): convcli ends as SIGPIPE ends a "
     "process, quietly"),
)

#: The epilog of every command's --help.
EXIT_EPILOG = "Exit status: " + ", ".join(f"{code} {label}" for code, label, _ in EXIT_CODES) + (
    " (129 SIGHUP, 143 SIGTERM; 141 is SIGPIPE's)."
)

_USAGE_REWORDING = (
    ("Value error, ", ""),
    ("Input should be a valid integer, unable to parse string as an integer", "expected a whole number"),
    ("Input should be a valid number, unable to parse string as a number", "expected a number"),
    ("Input should be a valid boolean", "expected true or false"),
)

_state = {"process": False}  # main() runs the real process: signals and SIGPIPE act on it


class _Stopped(Exception):
    """A signal (carried as :class:`~convcli.errors.Interrupted`) that reached the command, hidden from Typer."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class _PipeGone(Exception):
    """Standard output's reader left while convcli printed (hidden from Typer, which would exit 1)."""


class HelpfulCommand(TyperCommand):
    """A command whose ``--help`` says what to type: arguments by their metavar alone, no type for the flags.

    Typer would show ``{INPUT...}...`` in the usage line and ``<list[str]>`` beside an
    argument; here the usage line and the row show the metavar (``INPUT...``, ``[KERNEL]``).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            if param.param_type_name == "argument" and param.metavar:
                label = str(param.metavar)
                param.display_type_rich = lambda ctx: None  # type: ignore[attr-defined]
                param._usage_display_name = lambda label=label: label  # type: ignore[attr-defined]

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)
        if option is not None:
            option.metavar = ""
        return option


class _OneLineErrors(TyperGroup):
    """Typer group whose errors end as one line on stderr: no panel, no traceback."""

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)
        if option is not None:
            option.metavar = ""
        return option

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as stop:  # Typer would turn it into a silent exit 130
            raise _Stopped(getattr(stop, "signum", signal.SIGINT)) from None
        except BrokenPipeError:
            raise _PipeGone from None

    def main(  # type: ignore[override]
        self,
        args: Optional[Sequence[str]] = None,
        prog_name: Optional[str] = None,
        complete_var: Optional[str] = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        with warnings.catch_warnings(record=True) as caught:
            # numpy's floating-point RuntimeWarnings (overflow, invalid value...) would add lines to
            # stderr; non-finite results are written as they are, and real errors still raise
            warnings.simplefilter("always")
            warnings.simplefilter("ignore", RuntimeWarning)
            rv = self._run(args, prog_name, complete_var, **extra)
        _say_warnings(caught)  # reached only on success: a failure says one thing
        if standalone_mode:
            sys.exit(rv if isinstance(rv, int) else 0)
        return rv

    def _run(self, args: Optional[Sequence[str]], prog_name: Optional[str], complete_var: Optional[str],
             **extra: Any) -> Any:
        try:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except BrokenOutputPipe:
            _die_of_sigpipe()
        except ConvcliError as error:
            _fail(error.message, error.exit_code)
        except _Stopped as stop:
            _interrupted(stop.signum)
        except KeyboardInterrupt as stop:
            _interrupted(getattr(stop, "signum", signal.SIGINT))
        except typer.Abort:
            _interrupted(signal.SIGINT)
        except (_PipeGone, BrokenPipeError):
            _die_of_sigpipe()
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
            message = error.format_message()
            for old, new in _USAGE_REWORDING:
                message = message.replace(old, new)
            _fail(f"{message}{hint}", error.exit_code)


def _say_warnings(caught: Sequence[warnings.WarningMessage]) -> None:
    """Warnings no command reported: one line each, once."""
    seen: set[str] = set()
    for record in caught:
        text = one_line(record.message, 300)
        if text not in seen:
            seen.add(text)
            typer.echo(f"convcli: {visible(text)}", err=True)


def _fail(message: str, code: int) -> NoReturn:
    """``convcli: error: MESSAGE`` on stderr, one line whatever the message holds, and exit ``code``."""
    typer.echo(f"convcli: error: {visible(one_line(message, 1000))}", err=True)
    sys.exit(code)


def _interrupted(signum: int) -> NoReturn:
    from ..io.outputs import commits

    name = Interrupted(signum).name
    done = "after its outputs were written" if commits() else "no file was written or replaced"
    _fail(f"interrupted ({name}); {done}", 128 + signum)


def _die_of_sigpipe() -> NoReturn:
    """End as a process killed by SIGPIPE ends (the shell's 141), quietly: the reader of our output left."""
    try:  # what stdout still buffers can never be delivered: drop it, so exiting cannot fail on it
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno() if sys.stdout is not None else 1)
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass
    if _state["process"] and hasattr(signal, "SIGPIPE"):
        sys.stderr.flush() if sys.stderr is not None else None
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGPIPE)
    sys.exit(128 + getattr(signal, "SIGPIPE", 13))


def _on_signal(signum: int, frame: object) -> None:
    raise Interrupted(signum)


def _install_signal_handlers() -> None:
    """SIGINT, SIGTERM and SIGHUP raise :class:`~convcli.errors.Interrupted`: one clean-up path for all three.

    A signal the parent told us to ignore (``nohup``'s SIGHUP, a background job's SIGINT) stays ignored.
    """
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        number = getattr(signal, name, None)
        if number is None:
            continue
        if signal.getsignal(number) == signal.SIG_IGN:
            continue
        signal.signal(number, _on_signal)


def _guard_standard_streams() -> None:
    """Give closed standard file descriptors (``<&-``, ``>&-``) /dev/null, so no file convcli opens takes their place.

    Python has already made ``sys.stdin``/``sys.stdout`` None for them; the commands
    refuse to read or write such a stream, and nothing else can end up in the output
    files by writing to descriptor 1 or 2.
    """
    for fd, flags in ((0, os.O_RDONLY), (1, os.O_WRONLY), (2, os.O_WRONLY)):
        try:
            os.fstat(fd)
        except OSError:
            try:
                null = os.open(os.devnull, flags)
            except OSError:
                continue
            if null != fd:
                os.dup2(null, fd)
                os.close(null)


app = typer.Typer(
    name="convcli",
    cls=_OneLineErrors,
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=EXIT_EPILOG,
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"convcli {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version_callback, is_eager=True, metavar="", help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """im2col 2-D convolution for images and arrays: filter, back-propagate, inspect.

    Images load as float NCHW in [0, 1]; arrays (.npy, .npz, .txt/.csv; HW, CHW or NCHW) as
    they are. '-' reads standard input or writes standard output.
    """


def main() -> None:
    """Entry point of the ``convcli`` console script and ``python -m convcli``."""
    _state["process"] = True
    _guard_standard_streams()
    _install_signal_handlers()
    app()

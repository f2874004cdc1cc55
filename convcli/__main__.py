"""``python -m convcli``: the command-line tool (:mod:`convcli.cli`)."""

from .cli import main

main()

"""``python -m convcli``: the command-line tool."""

from .cli import main

main()

"""The command-line tool."""

from .app import app, main

__all__ = ["app", "main"]

"""The ``alphalab`` command line (Typer + Rich)."""

from alphalab.cli._app import app, main

__all__ = ["app", "main"]

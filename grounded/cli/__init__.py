"""The ``grounded`` command line: one entry point, subcommands that mirror the jobs."""

from grounded.cli.main import main

__all__ = ["main"]

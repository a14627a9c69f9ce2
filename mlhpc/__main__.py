"""Run the CLI as `python -m mlhpc`."""

from mlhpc.cli.main import run

run()

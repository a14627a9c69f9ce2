"""Run the CLI as `python -m mlhpc_app`."""

from mlhpc_app.cli.main import run

run()

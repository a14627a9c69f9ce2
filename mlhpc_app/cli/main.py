"""The `mlhpc` command: validate configs, synthesize and check stacks, run and submit workloads."""

from __future__ import annotations

import sys

import typer

from mlhpc_app.cli import cost, demo, emulate, image, job_commands, submit, validate
from mlhpc_app.cli import run as run_command
from mlhpc_app.cli.output import err_console
from mlhpc_app.cli.workload_args import PROGRAM_CONTEXT

EXIT_USER_ERROR = 1
EXIT_BUG = 70  # EX_SOFTWARE: an mlhpc bug, not the user's mistake

app = typer.Typer(
    name="mlhpc",
    help=(
        "ML and HPC clusters on AWS, and the jobs they run.\n\n"
        "Examples:\n\n"
        "  mlhpc validate config/default.yaml\n\n"
        "  mlhpc demo --config config/examples/cpu-dev.yaml\n\n"
        "  mlhpc run hello --workers 2 --set n=1000000\n\n"
        "  mlhpc emulate batch pinn --nodes 2 --demo --ranks-per-node 1\n\n"
        "  mlhpc image build pinn && mlhpc image push pinn\n\n"
        "  mlhpc submit pinn --nodes 2 --detach\n\n"
        "  mlhpc list && mlhpc logs JOB --follow && mlhpc results JOB"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)
app.command("validate")(validate.validate)
app.command("cost")(cost.cost)
app.command("demo")(demo.demo)
app.command("run", context_settings=PROGRAM_CONTEXT)(run_command.run)
app.add_typer(emulate.app, name="emulate")
app.command("submit", context_settings=PROGRAM_CONTEXT)(submit.submit)
app.command("status")(job_commands.status)
app.command("logs")(job_commands.logs)
app.command("cancel")(job_commands.cancel)
app.command("list")(job_commands.list_)
app.command("results")(job_commands.results)
app.command("outputs")(job_commands.outputs)
app.add_typer(image.app, name="image")


def run() -> None:
    """Console-script entry: run the app; a bug exits 70 with a short note instead of a bare traceback."""
    try:
        app()
    except SystemExit:
        raise
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
    except Exception as err:  # a bug: keep the traceback for the report, say what to do
        import traceback

        traceback.print_exc()
        err_console.print(f"[bold red]mlhpc hit a bug:[/] {type(err).__name__}: {err}. Please report it.")
        sys.exit(EXIT_BUG)


if __name__ == "__main__":
    run()

"""Console output shared by every command: rich for people, JSON for machines."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from typing import Any

import typer
from rich.console import Console

# Tables stay readable in CI logs and pipes, where rich would otherwise assume 80 columns.
_WIDTH = None if sys.stdout.isatty() else 140
console = Console(highlight=False, soft_wrap=True, width=_WIDTH)
err_console = Console(stderr=True, highlight=False, soft_wrap=True, width=_WIDTH)


class OutputFormat(StrEnum):
    """How a command prints data."""

    TABLE = "table"
    JSON = "json"


OUTPUT_OPTION = typer.Option(
    OutputFormat.TABLE, "--output", "-o", help="table for people, json for machines."
)


def print_json(data: Any) -> None:
    """Print data as indented JSON on stdout (no colour, no wrapping)."""
    typer.echo(json.dumps(data, indent=2, sort_keys=True, default=str))

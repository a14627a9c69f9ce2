"""Run every guardrail over a cloud assembly: `python -m mlhpc_app.guardrails cdk.out`."""

from __future__ import annotations

import sys
from pathlib import Path

from mlhpc_app.cli.demo import summary_table
from mlhpc_app.cli.output import console, err_console
from mlhpc_app.guardrails import run_guardrails


def main(argv: list[str]) -> int:
    """Print the per-stack table and every failure; return 1 when anything failed."""
    cdk_out = Path(argv[0] if argv else "cdk.out")
    if not (cdk_out / "manifest.json").is_file():
        err_console.print(f"{cdk_out} is not a cloud assembly; run `make synth` first")
        return 1
    report = run_guardrails(cdk_out)
    console.print(summary_table(report, f"guardrails: {cdk_out}/"))
    for line in report.failures():
        err_console.print(f"FAIL {line}", markup=False)
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

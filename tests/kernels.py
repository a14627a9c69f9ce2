"""Run the numeric tests under every CPU kernel choice and thread count; print each value beside its bound.

``make test-kernels`` (``python -m tests.kernels``): for each ``ATEN_CPU_CAPABILITY`` this CPU can
run (``default``, ``avx2``, and ``avx512`` where present) and each thread count (1 and 2), run the
tests marked ``numeric`` with ``MLHPC_NUMERIC_LOG`` set, then print one row per recorded quantity:
its bound, the value observed under each choice, and the margin of the bound over the worst value.
Exit 1 if any run failed or any bound keeps less than its stated margin (normally 3x) over the worst
value, so a bound at the edge of its value is caught on one machine instead of on the next CPU.
The table is also written to ``.reports/kernels/table.md`` and the raw records to ``records.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from tests.numeric import LOG_ENV

REPO = Path(__file__).resolve().parents[1]
CAPABILITIES = ("default", "avx2", "avx512")
THREADS = ("1", "2")
PYTEST = [sys.executable, "-m", "pytest", "-m", "numeric", "-q", "-n", "2", "-p", "no:cacheprovider"]


def supported_capabilities() -> list[str]:
    """Return the capabilities of CAPABILITIES this CPU runs (torch reports its best one)."""
    best = subprocess.run(
        [sys.executable, "-c", "import torch; print(torch.backends.cpu.get_cpu_capability())"],
        capture_output=True,
        text=True,
        check=True,
        env={k: v for k, v in os.environ.items() if k != "ATEN_CPU_CAPABILITY"},
    ).stdout.strip()
    order = {"DEFAULT": 0, "NO AVX": 0, "AVX2": 1, "ZVECTOR": 0, "AVX512": 2}
    rank = order.get(best.upper(), 0)
    return [cap for i, cap in enumerate(CAPABILITIES) if i <= rank]


def margin_of(op: str, value: float, bound: float) -> float:
    """Return how many times over the bound the value keeps: bound/value for '<', value/bound for '>'."""
    if op == "<":
        return float("inf") if value <= 0 else bound / value
    return float("inf") if bound <= 0 and value > 0 else (value / bound if bound > 0 else 0.0)


def table(records: list[dict[str, Any]], runs: list[str]) -> tuple[str, list[str]]:
    """Return a markdown table of every quantity under every run, and the rows whose margin is short."""
    grouped: dict[tuple[str, str], dict[str, Any]] = defaultdict(dict)
    meta: dict[tuple[str, str], dict[str, Any]] = {}
    for r in records:
        key = (r["test"], r["quantity"])
        run = f"{r['capability']}/{r['threads']}t"
        value = r["value"] if isinstance(r["value"], float | int) else float("nan")
        # a quantity recorded more than once in a run (parametrized ranks) keeps its worst value
        prev = grouped[key].get(run)
        worse = prev is None or (value > prev if r["op"] == "<" else value < prev)
        if worse:
            grouped[key][run] = value
        meta[key] = r
    header = ["test", "quantity", "bound", *runs, "margin", "needed", "bound from"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    short = []
    for key in sorted(grouped):
        r = meta[key]
        values = grouped[key]
        worst_margin = min(margin_of(r["op"], v, r["bound"]) for v in values.values())
        cells = [f"{values[run]:.4g}" if run in values else "-" for run in runs]
        flag = "" if worst_margin >= r["margin"] else " SHORT"
        if flag:
            short.append(f"{key[0]} {key[1]}: margin {worst_margin:.2f} < {r['margin']}")
        test = key[0].split("::", 1)[-1]
        lines.append(
            "| "
            + " | ".join(
                [
                    test,
                    key[1],
                    f"{r['op']} {r['bound']:.4g}",
                    *cells,
                    f"{worst_margin:.3g}{flag}",
                    f"{r['margin']:g}",
                    r["source"],
                ]
            )
            + " |"
        )
    return "\n".join(lines), short


def main(argv: list[str] | None = None) -> int:
    """Run the numeric tests under each kernel choice and thread count; print and write the table."""
    parser = argparse.ArgumentParser(prog="python -m tests.kernels", description=__doc__.split("\n")[0])
    parser.add_argument("--capabilities", nargs="*", help="default: every one this CPU runs")
    parser.add_argument("--threads", nargs="*", default=list(THREADS))
    parser.add_argument("--out", type=Path, default=REPO / ".reports" / "kernels")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    opts = parser.parse_args(argv)
    caps = opts.capabilities or supported_capabilities()
    opts.out.mkdir(parents=True, exist_ok=True)
    log = opts.out / "records.jsonl"
    log.unlink(missing_ok=True)
    runs, failed = [], []
    for cap in caps:
        for threads in opts.threads:
            run = f"{cap}/{threads}t"
            runs.append(run)
            env = {
                **os.environ,
                "ATEN_CPU_CAPABILITY": cap,
                "OMP_NUM_THREADS": threads,
                LOG_ENV: str(log),
            }
            print(f"== numeric tests with ATEN_CPU_CAPABILITY={cap} OMP_NUM_THREADS={threads}", flush=True)
            code = subprocess.call(
                [*PYTEST, *opts.pytest_args],
                cwd=REPO,
                env=env,
            )
            if code != 0:
                failed.append(f"{run}: pytest exited {code}")
    records = (
        [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()] if log.exists() else []
    )
    text, short = table(records, runs)
    (opts.out / "table.md").write_text(text + "\n", encoding="utf-8")
    print()
    print(text)
    print(f"\n{len({(r['test'], r['quantity']) for r in records})} quantities, runs: {', '.join(runs)}")
    for problem in failed + short:
        print(f"FAIL {problem}")
    return 1 if failed or short else 0


if __name__ == "__main__":
    sys.exit(main())

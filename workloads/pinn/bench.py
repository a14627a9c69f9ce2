"""Benchmark: our Burgers PINN against DeepXDE's, same network and points, same machine.

``python -m workloads.pinn.bench [--quick]`` trains both (each in its own process, one CPU
thread each, one after the other), scores both on the same 256 x 101 grid against our
Cole–Hopf reference, and writes ``bench.md``, ``bench.json`` and ``bench.png`` to
``results/bench/pinn/``. Times are training time only: the error evaluations are not counted,
for either. DeepXDE must be installed (``pip install deepxde==1.15.0``); it runs with
``DDE_BACKEND=pytorch`` and downloads nothing.

Both get the network and the collocation points of DeepXDE's published Burgers example
(3 x 20 tanh, 2540 domain points; DeepXDE adds its 80 boundary and 160 initial points), and each
trains with its own recipe: DeepXDE as its example does (Adam, lr 1e-3, 15000 steps, then
float32 L-BFGS), ours with a short Adam phase, then float64 L-BFGS, hard constraints. The table
compares the time to reach the same errors, and the cost of a step.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from mlhpc import invocation

THRESHOLDS = (1e-2, 5e-3)
KEPT = (
    "relative_l2",
    "train_s",
    "error_history",
    "adam_s",
    "lbfgs_s",
    "adam_steps_done",
    "lbfgs_steps_done",
    "lbfgs_evaluations",
)
# Shared sizes, then each side's recipe. DeepXDE's L-BFGS is cut at 5000 iterations (its example allows
# 15000) to keep the whole benchmark near ten minutes here. Ours: a short Adam phase, then float64 L-BFGS;
# no refinement at this small size (restarting L-BFGS after each one cost more than it gained in the
# runs the README reports).
FULL = {
    "shared": {"points": 2540, "width": 20, "depth": 3, "eval_every": 100},
    "ours": {"adam_steps": 500, "lbfgs_steps": 6000, "rar_every": 0},
    "deepxde": {"adam_steps": 15000, "lbfgs_steps": 5000},
}
QUICK = {
    "shared": {"points": 1000, "width": 20, "depth": 3, "eval_every": 50},
    "ours": {"adam_steps": 300, "lbfgs_steps": 700, "rar_every": 0},
    "deepxde": {"adam_steps": 1000, "lbfgs_steps": 500},
}


def time_to(history: list[list[float]], threshold: float) -> float | None:
    """Return the training seconds at the first evaluation with error <= threshold (None: never)."""
    for _step, seconds, error in history:
        if error <= threshold:
            return float(seconds)
    return None


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", DDE_BACKEND="pytorch")
    return env


def run_ours(size: dict[str, int], out: Path) -> dict[str, Any]:
    """Train our Burgers PINN in a subprocess and return its metrics."""
    argv = [
        sys.executable,
        "-m",
        "workloads.pinn",
        "--problem",
        "burgers",
        *invocation.run_options(invocation.RunOptions(out=str(out), resume=False)),
        "--progress",
        "false",
        "--threads",
        "1",
        "--checkpoint-every",
        "1000000",
    ]
    argv += [f"--{k.replace('_', '-')}={v}" for k, v in size.items()]
    subprocess.run(argv, check=True, env=_env())
    return dict(json.loads((out / "metrics.json").read_text(encoding="utf-8")))


def run_deepxde(size: dict[str, int], out: Path) -> dict[str, Any]:
    """Train DeepXDE's Burgers PINN in a subprocess and return its error history."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "deepxde.json"
    argv = [sys.executable, "-m", "workloads.pinn.bench_deepxde", "--json", str(path)]
    argv += [f"--{k.replace('_', '-')}={v}" for k, v in size.items()]
    subprocess.run(argv, check=True, env=_env())
    return dict(json.loads(path.read_text(encoding="utf-8")))


def table(rows: dict[str, dict[str, Any]]) -> str:
    """Return the markdown comparison table."""
    ours, theirs = rows["ours"], rows["deepxde"]

    def fmt(v: float | None) -> str:
        return "not reached" if v is None else f"{v:.1f} s"

    def ratio(a: float | None, b: float | None) -> str:
        if a is None and b is None:
            return "-"
        if a is None:
            assert b is not None
            return f"< {b / ours['train_s']:.2f}x (ours never reached it in {ours['train_s']:.0f} s)"
        if b is None:
            return f"> {theirs['train_s'] / a:.1f}x (DeepXDE never reached it in {theirs['train_s']:.0f} s)"
        return f"{b / a:.1f}x"

    # The larger of the two best errors: an error both reached, so the ratio there is a measured one.
    common = max(min(h[2] for h in r["error_history"]) for r in (ours, theirs))
    lines = ["| | ours | DeepXDE | speed-up |", "| --- | --- | --- | --- |"]
    for thr, label in [(t, f"{t:g}") for t in THRESHOLDS] + [(common, f"{common:.2e} (both reach it)")]:
        a, b = time_to(ours["error_history"], thr), time_to(theirs["error_history"], thr)
        lines.append(f"| time to {label} | {fmt(a)} | {fmt(b)} | {ratio(a, b)} |")
    lines.append(f"| final relative L2 | {ours['relative_l2']:.2e} | {theirs['relative_l2']:.2e} | |")
    lines.append(f"| training time | {ours['train_s']:.1f} s | {theirs['train_s']:.1f} s | |")
    lines.append(
        f"| steps (Adam + L-BFGS) | {ours['adam_steps_done']} + {ours['lbfgs_steps_done']} "
        f"| {theirs['adam_steps_done']} + {theirs['lbfgs_steps_done']} | |"
    )
    for label, key, steps_key, unit in (
        ("Adam step", "adam_s", "adam_steps_done", "float32"),
        ("L-BFGS iteration", "lbfgs_s", "lbfgs_steps_done", ""),
        ("L-BFGS evaluation", "lbfgs_s", "lbfgs_evaluations", ""),
    ):
        a, b = per_ms(ours, key, steps_key), per_ms(theirs, key, steps_key)
        kind = unit or "float64 vs float32"
        ratio_text = f"{b / a:.2f}x" if a and b else "-"
        lines.append(f"| ms per {label} ({kind}) | {fmt_ms(a)} | {fmt_ms(b)} | {ratio_text} |")
    evals = [
        r["lbfgs_evaluations"] / r["lbfgs_steps_done"] if r["lbfgs_steps_done"] else None
        for r in (ours, theirs)
    ]
    lines.append(
        "| evaluations per L-BFGS iteration | "
        + " | ".join("-" if e is None else f"{e:.2f}" for e in evals)
        + " | |"
    )
    return "\n".join(lines)


def per_ms(row: dict[str, Any], seconds_key: str, count_key: str) -> float | None:
    """Return milliseconds per unit (step, iteration or evaluation) of a phase, None when it did none."""
    count = row.get(count_key) or 0
    return 1e3 * row[seconds_key] / count if count else None


def fmt_ms(v: float | None) -> str:
    """Format milliseconds."""
    return "-" if v is None else f"{v:.1f}"


def plot(path: Path, rows: dict[str, dict[str, Any]], title: str) -> None:
    """Plot error against training time for both."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, label in (
        ("ours", "ours (hard constraints, RAR, float64 L-BFGS)"),
        ("deepxde", "DeepXDE 1.15"),
    ):
        hist = rows[name]["error_history"]
        ax.semilogy([h[1] for h in hist], [h[2] for h in hist], "o-", ms=2, label=label)
    for thr in THRESHOLDS:
        ax.axhline(thr, color="grey", ls=":", lw=1)
    ax.set_xlabel("training time (s)")
    ax.set_ylabel("relative L2 error vs Cole–Hopf")
    ax.set_title(title, fontsize=8)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (about two minutes in all)")
    parser.add_argument(
        invocation.OUT_OPTION,
        dest="out",
        default="results/bench/pinn",
        help="where the table, JSON and plot go",
    )
    opts = parser.parse_args(argv)
    try:
        import deepxde  # noqa: F401 - optional: only the benchmark needs it
    except ImportError:
        print("error: DeepXDE is not installed; run: pip install deepxde==1.15.0", file=sys.stderr)
        return 2
    sizes = QUICK if opts.quick else FULL
    shared = sizes["shared"]
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = {
        "ours": run_ours({**shared, **sizes["ours"]}, out / "ours"),
        "deepxde": run_deepxde({**shared, **sizes["deepxde"]}, out / "deepxde"),
    }
    title = (
        f"Burgers, {shared['depth']}x{shared['width']} tanh, {shared['points']} points, 1 CPU thread; "
        f"steps: ours {sizes['ours']['adam_steps']} Adam + {sizes['ours']['lbfgs_steps']} L-BFGS, "
        f"DeepXDE {sizes['deepxde']['adam_steps']} + {sizes['deepxde']['lbfgs_steps']}"
    )
    md = f"# PINN benchmark: {title}\n\n{table(rows)}\n"
    (out / "bench.md").write_text(md, encoding="utf-8")
    (out / "bench.json").write_text(
        json.dumps(
            {
                "size": sizes,
                "quick": opts.quick,
                "thresholds": THRESHOLDS,
                "ours": {k: rows["ours"][k] for k in KEPT},
                "deepxde": rows["deepxde"],
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    plot(out / "bench.png", rows, title)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

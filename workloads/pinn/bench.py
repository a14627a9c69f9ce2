"""Benchmark: our Burgers PINN against DeepXDE's, same network, points and steps, same machine.

``python -m workloads.pinn.bench [--quick]`` trains both (each in its own process, one CPU
thread each, one after the other), scores both on the same 256 x 101 grid against our
Cole–Hopf reference, and writes ``bench.md``, ``bench.json`` and ``bench.png`` to
``results/bench/pinn/``. Times are training time only: the error evaluations are not counted,
for either. DeepXDE must be installed (``pip install deepxde==1.15.0``); it runs with
``DDE_BACKEND=pytorch`` and downloads nothing.
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

THRESHOLDS = (1e-2, 5e-3)
FULL = {"points": 4000, "width": 32, "depth": 4, "adam_steps": 2000, "lbfgs_steps": 4000, "eval_every": 100}
QUICK = {"points": 1000, "width": 20, "depth": 3, "adam_steps": 500, "lbfgs_steps": 500, "eval_every": 50}


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
        "--out",
        str(out),
        "--no-resume",
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

    def ratio(a: float | None, b: float | None, b_total: float) -> str:
        if a is None:
            return "-"
        if b is None:
            return f"> {b_total / a:.1f}x (DeepXDE never reached it in {b_total:.0f} s)"
        return f"{b / a:.1f}x"

    lines = ["| | ours | DeepXDE | speed-up |", "| --- | --- | --- | --- |"]
    for thr in THRESHOLDS:
        a, b = time_to(ours["error_history"], thr), time_to(theirs["error_history"], thr)
        lines.append(f"| time to {thr:g} | {fmt(a)} | {fmt(b)} | {ratio(a, b, theirs['train_s'])} |")
    lines.append(f"| final relative L2 | {ours['relative_l2']:.2e} | {theirs['relative_l2']:.2e} | |")
    lines.append(f"| training time | {ours['train_s']:.1f} s | {theirs['train_s']:.1f} s | |")
    return "\n".join(lines)


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
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (about two minutes in all)")
    parser.add_argument("--out", default="results/bench/pinn", help="where the table, JSON and plot go")
    opts = parser.parse_args(argv)
    try:
        import deepxde  # noqa: F401 - optional: only the benchmark needs it
    except ImportError:
        print("error: DeepXDE is not installed; run: pip install deepxde==1.15.0", file=sys.stderr)
        return 2
    size = QUICK if opts.quick else FULL
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = {"ours": run_ours(size, out / "ours"), "deepxde": run_deepxde(size, out / "deepxde")}
    title = (
        f"Burgers, {size['depth']}x{size['width']} tanh, {size['points']} points, "
        f"{size['adam_steps']} Adam + {size['lbfgs_steps']} L-BFGS, 1 CPU thread"
    )
    md = f"# PINN benchmark: {title}\n\n{table(rows)}\n"
    (out / "bench.md").write_text(md, encoding="utf-8")
    (out / "bench.json").write_text(
        json.dumps(
            {
                "size": size,
                "quick": opts.quick,
                "thresholds": THRESHOLDS,
                "ours": {k: rows["ours"][k] for k in ("relative_l2", "train_s", "error_history")},
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

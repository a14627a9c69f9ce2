"""Benchmark: the original algorithm (dense Euler, NumPy) against the new solvers, then N-scaling.

Run ``python -m workloads.superradiance.bench [--quick]``; writes bench.md, bench.json and
bench.png to results/bench/superradiance/ and prints the table. The exact reference is the
block solver at rtol 1e-10 on the Euler grid (t = 0.3 k, k = 0..500).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from workloads.superradiance.euler import solve_euler
from workloads.superradiance.general import solve_general
from workloads.superradiance.model import auto_t_max, make_model
from workloads.superradiance.symmetric import solve_symmetric, solve_symmetric_expm
from workloads.superradiance.trajectories import solve_trajectories

OUT = Path("results/bench/superradiance")
EXPM_MAX_N = 2000  # expm_multiply costs ~N^2 log N: 9 s at N = 2000


def _timed(fn):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def head_to_head(sizes: list[int]) -> list[dict]:
    """Time and error of dense Euler vs the exact solvers on the original's grid."""
    rows = []
    times = 0.3 * np.arange(501)
    for n in sizes:
        for kind in ("uniform", "random"):
            model = make_model(n, couplings=kind, seed=1)
            exact = solve_general(model, times=times, rtol=1e-10, atol=1e-12).polarization
            eul, t_eul = _timed(lambda m=model: solve_euler(m))
            gen, t_gen = _timed(lambda m=model: solve_general(m, times=times))
            row = {
                "N": n,
                "couplings": kind,
                "euler_s": t_eul,
                "euler_err": float(np.max(np.abs(eul.polarization - exact))),
                "general_s": t_gen,
                "general_err": float(np.max(np.abs(gen.polarization - exact))),
            }
            if kind == "uniform":
                sym, t_sym = _timed(lambda m=model: solve_symmetric(m, times=times))
                row.update(symmetric_s=t_sym, symmetric_err=float(np.max(np.abs(sym.polarization - exact))))
            rows.append(row)
    return rows


def scaling(
    general_sizes: list[int], symmetric_sizes: list[int], traj: tuple[int, int], workers: int
) -> dict:
    """Wall time of each method against N (general: random couplings; symmetric: uniform)."""
    out: dict[str, list[dict]] = {"general": [], "symmetric": [], "trajectories": []}
    for n in general_sizes:
        model = make_model(n, couplings="random", seed=0)
        sol, sec = _timed(lambda m=model: solve_general(m, times=np.linspace(0, auto_t_max(m), 501)))
        out["general"].append({"N": n, "seconds": sec, "steps": sol.steps})
    for n in symmetric_sizes:
        model = make_model(n)
        # t_max is part of the timed work: the generic auto end time, as a run computes it
        sol, sec = _timed(lambda m=model: solve_symmetric(m, times=np.linspace(0, auto_t_max(m), 501)))
        row = {
            "N": n,
            "seconds": sec,
            "t_max": float(sol.t[-1]),
            "peak_index": int(np.argmax(sol.intensity)),
            "final_gap_over_N": float((sol.polarization[-1] + n / 2) / n),
        }
        if n <= EXPM_MAX_N:  # the old expm_multiply solver, as reference and as the speed baseline
            ref, ref_sec = _timed(lambda m=model, t=sol.t: solve_symmetric_expm(m, times=t))
            row.update(
                expm_seconds=ref_sec,
                max_rel_err=float(np.max(np.abs(sol.polarization - ref.polarization)) / n),
            )
        out["symmetric"].append(row)
    n, count = traj
    model = make_model(n, couplings="random", seed=0)
    sol, sec = _timed(
        lambda: solve_trajectories(
            model, times=np.linspace(0, auto_t_max(model), 201), trajectories=count, workers=workers
        )
    )
    out["trajectories"].append(
        {
            "N": n,
            "trajectories": count,
            "workers": workers,
            "seconds": sec,
            "max_se": float(sol.polarization_se.max()),
        }
    )
    return out


def render(h2h: list[dict], scale: dict) -> str:
    """Return the markdown report."""
    lines = [
        "## Original (dense Euler, dt=0.3, 500 steps) vs exact solvers, t in [0, 150]",
        "",
        "| N | couplings | euler s | euler max err | general s | general max err | symmetric s "
        "| symmetric max err | speed-up (euler/best) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in h2h:
        best = min(r["general_s"], r.get("symmetric_s", np.inf))
        sym = f"{r['symmetric_s']:.3f} | {r['symmetric_err']:.1e}" if "symmetric_s" in r else "- | -"
        lines.append(
            f"| {r['N']} | {r['couplings']} | {r['euler_s']:.3f} | {r['euler_err']:.2e} "
            f"| {r['general_s']:.3f} | "
            f"{r['general_err']:.1e} | {sym} | {r['euler_s'] / best:.1f}x |"
        )
    lines += [
        "",
        "## N-scaling (whole burst, 501 output times)",
        "",
        "| method | N | seconds | note |",
        "|---|---|---|---|",
    ]
    for r in scale["general"]:
        lines.append(f"| general (random g) | {r['N']} | {r['seconds']:.2f} | {r['steps']} adaptive steps |")
    for r in scale["symmetric"]:
        ref = (
            f"; expm_multiply {r['expm_seconds']:.2f} s, max abs(dIz)/N = {r['max_rel_err']:.1e}"
            if "expm_seconds" in r
            else ""
        )
        lines.append(
            f"| symmetric (uniform g) | {r['N']} | {r['seconds']:.2f} "
            f"| t_max {r['t_max']:.3g}, peak at sample {r['peak_index']}/500, "
            f"(<Iz>+N/2)/N at end = {r['final_gap_over_N']:.1e}{ref} |"
        )
    for r in scale["trajectories"]:
        lines.append(
            f"| trajectories (random g) | {r['N']} | {r['seconds']:.1f} | {r['trajectories']} trajectories, "
            f"{r['workers']} Ray workers, max SE {r['max_se']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def plot(h2h: list[dict], scale: dict, path: Path) -> None:
    """Draw the error/time comparison and the scaling curves."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    uni = [r for r in h2h if r["couplings"] == "uniform"]
    ns = [r["N"] for r in uni]
    ax1.semilogy(ns, [r["euler_s"] for r in uni], "o-", label="original: dense Euler")
    ax1.semilogy(ns, [r["general_s"] for r in uni], "s-", label="general (exact, blocks)")
    ax1.semilogy(ns, [r["symmetric_s"] for r in uni], "^-", label="symmetric (exact, collective)")
    ax1.set_xlabel("N")
    ax1.set_ylabel("seconds (uniform couplings, t <= 150)")
    ax1.set_title("Time at equal N")
    ax1.legend()
    for key, marker in (("general", "s-"), ("symmetric", "^-")):
        rows = scale[key]
        ax2.loglog([r["N"] for r in rows], [r["seconds"] for r in rows], marker, label=key)
    ref = [r for r in scale["symmetric"] if "expm_seconds" in r]
    ax2.loglog(
        [r["N"] for r in ref], [r["expm_seconds"] for r in ref], "v--", label="symmetric, expm_multiply"
    )
    ax2.set_xlabel("N")
    ax2.set_ylabel("seconds (whole burst)")
    ax2.set_title("Scaling with N")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write its table, JSON and plot."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes only (a minute)")
    parser.add_argument("--workers", type=int, default=2, help="Ray workers for the trajectory run")
    opts = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    if opts.quick:
        h2h = head_to_head([4, 6])
        scale = scaling([4, 6, 8], [10, 100, 1000, 10_000], (6, 20), opts.workers)
    else:
        h2h = head_to_head([4, 6, 8])
        scale = scaling(
            [4, 6, 8, 10], [10, 100, 1000, 2000, 10_000, 100_000, 1_000_000], (16, 200), opts.workers
        )
    text = render(h2h, scale)
    (OUT / "bench.md").write_text(text, encoding="utf-8")
    (OUT / "bench.json").write_text(
        json.dumps({"head_to_head": h2h, "scaling": scale}, indent=2), encoding="utf-8"
    )
    plot(h2h, scale, OUT / "bench.png")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

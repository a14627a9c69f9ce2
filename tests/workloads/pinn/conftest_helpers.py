"""Helpers shared by the PINN tests: run the job in-process at small sizes and read what it wrote."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from workloads.common.entry import run
from workloads.pinn.main import train
from workloads.pinn.spec import SPEC

SMALL = ["--threads", "1", "--progress", "false"]


def run_job(
    out: Path, *argv: str, on_step: Callable[[Any, int], None] | None = None, resume: bool = False
) -> int:
    """Run the PINN job in this process; on_step(ctx, step) is called after every step."""

    def job(args: Any, ctx: Any) -> Any:
        hook = (lambda step: on_step(ctx, step)) if on_step is not None else None
        return train(args, ctx, on_step=hook)

    flags = [] if resume else ["--no-resume"]
    return run(SPEC, job, [*argv, *SMALL, "--out", str(out), *flags])


def metrics(out: Path) -> dict[str, Any]:
    """Return the metrics.json a run wrote."""
    return dict(json.loads((out / "metrics.json").read_text(encoding="utf-8")))


def prediction(out: Path) -> np.ndarray:
    """Return the predicted values a run wrote."""
    with np.load(out / "prediction.npz") as data:
        return np.array(data["prediction"])

"""A sweep that finds wrong values writes its outputs and then fails the job (exit 1), as nccl-tests does.

A cluster validation whose collectives return wrong numbers must not show as SUCCEEDED in Batch: its
bandwidths are no result. Slow is a verdict (``--expect``: SLOW, exit 0); wrong is a failure.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from workloads.allreduce.collective import Collective
from workloads.allreduce.main import main
from workloads.allreduce.spec import SWEEP_CSV

ARGV = ["--min-bytes", "1024", "--max-bytes", "4096", "--step-factor", "4", "--iters", "1",
        "--warmup-iters", "0", "--threads", "1", "--op", "max"]  # fmt: skip


def _doubling(real: Any) -> Any:
    """A reduction that returns twice the right answer: max(x) * 2 differs from max(x) wherever x != 0."""

    def launch(self: Collective, send: torch.Tensor, recv: torch.Tensor, *, async_op: bool) -> Any:
        work = real(self, send, recv, async_op=async_op)
        if work is not None:
            work.wait()
        recv.mul_(2)
        return work

    return launch


def test_a_correct_one_rank_sweep_exits_0(tmp_path: Path) -> None:
    assert main([*ARGV, "--out", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "metrics.json").read_text())["wrong"] == 0


def test_wrong_values_write_every_output_and_then_exit_1_naming_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(Collective, "launch", _doubling(Collective.launch))
    assert main([*ARGV, "--out", str(tmp_path)]) == 1
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["wrong"] > 0
    assert (tmp_path / SWEEP_CSV).is_file()
    err = capsys.readouterr().err
    assert f"error: allreduce: {metrics['wrong']} wrong element(s) in the all_reduce results" in err
    assert "at 2 size(s) (1024..4096 B)" in err

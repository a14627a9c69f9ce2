"""Checkpoint files: the previous good one survives a failed save; a bad one names its way out."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import torch

from workloads.common import checkpoint
from workloads.common.checkpoint import Checkpointer, CheckpointMismatch, CheckpointUnusable

FINGERPRINT = {"workload": "toy", "width": 8}


def test_save_then_load_round_trips(tmp_path: Path) -> None:
    ckpt = Checkpointer(tmp_path, fingerprint=FINGERPRINT)
    ckpt.save({"w": torch.arange(3.0), "epoch": 2}, step=7)
    step, state = ckpt.load() or (None, None)
    assert step == 7 and state is not None and state["epoch"] == 2
    assert torch.equal(state["w"], torch.arange(3.0))
    assert sorted(os.listdir(tmp_path)) == ["latest.pt"], "no temp file is left behind"


def test_a_save_that_fails_midway_keeps_the_previous_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ckpt = Checkpointer(tmp_path, fingerprint=FINGERPRINT)
    ckpt.save({"total": 1}, step=1)
    good = ckpt.path.read_bytes()
    real_save = torch.save

    def dies_halfway(obj: Any, handle: Any, *args: Any, **kwargs: Any) -> None:
        real_save(obj, handle, *args, **kwargs)
        handle.truncate(10)  # half a file on disk, then the disk fills up
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", dies_halfway)
    with pytest.raises(OSError, match="No space left"):
        ckpt.save({"total": 2}, step=2)
    assert ckpt.path.read_bytes() == good, "the previous checkpoint is untouched"
    assert sorted(os.listdir(tmp_path)) == ["latest.pt"], "the partial temp file is removed"
    assert ckpt.load() == (1, {"total": 1})


def test_the_new_checkpoint_is_on_disk_before_it_replaces_the_old(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ckpt = Checkpointer(tmp_path, fingerprint=FINGERPRINT)
    ckpt.save({"total": 1}, step=1)
    calls: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        calls.append("fsync")
        real_fsync(fd)

    def replace(src: Any, dst: Any) -> None:
        assert Path(dst).read_bytes(), "the old checkpoint is still whole when the rename happens"
        calls.append("replace")
        real_replace(src, dst)

    monkeypatch.setattr(checkpoint.os, "fsync", fsync)
    monkeypatch.setattr(checkpoint.os, "replace", replace)
    ckpt.save({"total": 2}, step=2)
    assert calls[:2] == ["fsync", "replace"], calls
    assert ckpt.load() == (2, {"total": 2})


def test_a_bad_checkpoint_names_its_file_and_both_ways_out(tmp_path: Path) -> None:
    ckpt = Checkpointer(tmp_path, fingerprint=FINGERPRINT)
    ckpt.path.write_bytes(b"")
    with pytest.raises(CheckpointUnusable) as caught:
        ckpt.load()
    assert str(ckpt.path) in caught.value.message and "empty" in caught.value.message
    assert "--no-resume" in caught.value.fix and f"rm {ckpt.path}" in caught.value.fix


def test_an_s3_checkpoint_is_named_by_its_uri() -> None:
    err = CheckpointUnusable("s3://bucket/run/checkpoints/latest.pt", "the file is empty")
    assert "aws s3 rm s3://bucket/run/checkpoints/latest.pt" in err.fix


def test_another_runs_checkpoint_is_a_mismatch_with_a_third_way_out(tmp_path: Path) -> None:
    Checkpointer(tmp_path, fingerprint={**FINGERPRINT, "width": 16}).save({}, step=1)
    with pytest.raises(CheckpointMismatch, match=r"width: checkpoint 16 vs run 8") as caught:
        Checkpointer(tmp_path, fingerprint=FINGERPRINT).load()
    assert caught.value.fix.startswith(
        "use another --checkpoint-dir for this run, or run again with --no-resume"
    )


def test_python_objects_stay_refused(tmp_path: Path) -> None:
    # weights_only=True is what keeps a planted checkpoint from running code; it must stay on.
    torch.save({"fingerprint": FINGERPRINT, "step": 1, "state": {"f": Path("x")}}, tmp_path / "latest.pt")
    with pytest.raises(CheckpointUnusable, match="holds Python objects"):
        Checkpointer(tmp_path, fingerprint=FINGERPRINT).load()

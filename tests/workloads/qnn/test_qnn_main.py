"""The workload end to end: the accuracy target on the digits, outputs, user errors, resuming."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mlhpc.spec import Backend
from tests.numeric import below
from workloads.common.checkpoint import RESUMABLE_EXIT_CODE, GracefulStop, Preempted
from workloads.common.dist import Rendezvous
from workloads.common.entry import RunContext
from workloads.qnn.main import job, main
from workloads.qnn.spec import SPEC, Args

ROOT = Path(__file__).resolve().parents[3]
SMALL = ["--dataset", "digits", "--train-per-class", "30", "--test-per-class", "20", "--batch-size", "8"]


@pytest.fixture(autouse=True)
def one_thread():
    # Tiny convolutions run faster on one thread, and the machine's cores are shared.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def test_spec_contract():
    assert SPEC.resources.nodes == 1 and SPEC.resources.gpus_per_node == 1 and not SPEC.multi_node
    assert SPEC.backends == {Backend.LOCAL, Backend.BATCH}
    demo = Args.model_validate(SPEC.demo_args)
    assert demo.dataset == "digits" and demo.epochs <= 10
    assert SPEC.command(demo)[:3] == ["python", "-m", "workloads.qnn"]


def test_demo_reaches_99_percent_on_zero_vs_one(tmp_path, capsys):
    # The target: >= 99% test accuracy on 0 vs 1 (here 140 held-out digits: at most one error).
    argv = [f"--{k.replace('_', '-')}={v}" for k, v in SPEC.demo_args.items()]
    assert main([*argv, "--out", str(tmp_path)]) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    # The target, >= 99 % (at most one error in 140): 139/140 under every kernel choice and thread
    # count (make test-kernels). The one error is a near-tie (|p - 0.5| = 0.017) and the next least
    # confident digit is 0.155 from the boundary, far beyond what kernels change (~1e-7), so a second
    # error needs a broken model. The held-out log-loss carries the 3x margin: 0.0228 under every
    # kernel against 0.1 (an untrained classifier gives ln 2 = 0.69).
    below(
        "qnn digits test error rate",
        1 - metrics["test_accuracy"],
        0.01,
        source="the issue's target; 1/140 everywhere, next digit 0.155 from the boundary",
        margin=1.0,
    )
    below("qnn digits test log-loss", metrics["test_loss"], 0.1, source="4.4x over 0.0228; ln 2 untrained")
    assert metrics["n_test"] == 140 and sum(map(sum, metrics["confusion"])) == 140
    assert len(metrics["history"]) == metrics["epochs"] == SPEC.demo_args["epochs"]
    assert (tmp_path / "training.png").stat().st_size > 10_000
    history = np.load(tmp_path / "history.npz")
    below(
        "qnn final / first train loss",
        history["train_loss"][-1] / history["train_loss"][0],
        1.0,
        source="training lowers the loss",
    )
    assert history["test_p_class1"].shape == (140,)
    assert "epoch   5/5" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "text"),
    [
        (
            ["--digits", "0,12"],
            r"qnn: digits=\['0', '12'\] is not valid: unknown digit\(s\) \[12\]: digits are 0..9, "
            r"e.g. --digits 0,1",
        ),
        (["--digits", "3,3"], r"give exactly two different digits, got \[3, 3\]"),
        (["--dataset", "mnist"], r"dataset=mnist needs --data-uri"),
        (["--backend", "qutrunk"], r"the qutrunk backend needs the 'qutrunk' package"),
        (["--train-per-class", "300"], r"the digits data set has 178 images of digit 0"),
        (["--data-uri", "/no/such/dir", "--dataset", "mnist"], r"input '/no/such/dir' does not exist"),
        (
            ["--n-qubits", "13"],
            r"n_qubits=.?13.? is not valid.*\n  fix: give n_qubits a value >= 1 and <= 12",
        ),
        (["--conv-padding", "valid"], r"8x8 images are too small for two valid 5x5 convolutions"),
    ],
)
def test_bad_input_gets_a_clear_error(tmp_path, capsys, argv, text):
    if "qutrunk" in argv and importlib.util.find_spec("qutrunk") is not None:
        pytest.skip("qutrunk is installed")
    base = ["--dataset", "digits", "--epochs", "1", "--train-per-class", "20", "--test-per-class", "10"]
    code = main([*base, *argv, "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert re.search(text, err), err
    assert "Traceback" not in err


class StopAfter(GracefulStop):
    """A stop request that arrives after the training loop has asked `checks` times."""

    def __init__(self, checks: int) -> None:
        super().__init__(signals=())
        self.left = checks

    @property
    def requested(self) -> bool:
        self.left -= 1
        return self.left < 0


def ctx_for(tmp_path: Path, stop: GracefulStop, name: str) -> RunContext:
    out = tmp_path / name
    out.mkdir()
    return RunContext(
        spec=SPEC, out=out, checkpoint_location=str(tmp_path / "ckpt"), rendezvous=Rendezvous(), stop=stop
    )


@pytest.mark.parametrize("shots", [0, 100])
def test_stop_mid_epoch_and_resume_matches_an_uninterrupted_run(tmp_path, shots):
    args = Args.model_validate(
        {"dataset": "digits", "train_per_class": 30, "test_per_class": 20, "batch_size": 8, "epochs": 2,
         "shots": shots, "seed": 3}
    )  # fmt: skip
    (tmp_path / "a").mkdir()
    straight = job(args, ctx_for(tmp_path / "a", GracefulStop(signals=()), "out"))
    # 8 batches per epoch: 7 checks in epoch 1 (after each batch but the last) and 1 at its
    # end; the 10th, after batch 2 of epoch 2, stops
    with pytest.raises(Preempted):
        job(args, ctx_for(tmp_path, StopAfter(9), "first"))
    resumed = job(args, ctx_for(tmp_path, GracefulStop(signals=()), "second"))
    assert resumed["resumed_from"] == "epoch 2, batch 2"
    # The same steps in the same order with the same dropout masks and shot counts:
    # identical to float rounding (the two runs execute identical kernels).
    for key in ("train_loss", "test_loss", "test_accuracy"):
        gap = abs(resumed[key] - straight[key]) / max(abs(straight[key]), 1e-3)
        below(f"qnn resumed vs straight {key}", gap, 1e-6, source="identical kernels in both runs")


def test_checkpoint_of_another_run_is_refused(tmp_path, capsys):
    assert main([*SMALL, "--epochs", "1", "--out", str(tmp_path)]) == 0
    code = main([*SMALL, "--epochs", "1", "--seed", "5", "--out", str(tmp_path)])
    assert code == 2
    assert "belongs to another run (seed: checkpoint 0 vs run 5)" in capsys.readouterr().err


def test_more_epochs_continue_from_the_checkpoint(tmp_path, capsys):
    assert main([*SMALL, "--epochs", "1", "--out", str(tmp_path)]) == 0
    assert main([*SMALL, "--epochs", "2", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "resumed from the checkpoint at epoch 2, batch 0" in out
    assert json.loads((tmp_path / "metrics.json").read_text())["epochs"] == 2


def test_sigterm_saves_and_exits_143_then_resumes(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "workloads.qnn", *SMALL, "--epochs", "1000", "--out", str(tmp_path)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("epoch   2/1000"):
            proc.send_signal(signal.SIGTERM)
            break
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == RESUMABLE_EXIT_CODE, err
    assert "stopped by SIGTERM after saving a checkpoint" in err
    assert (tmp_path / "checkpoints" / "latest.pt").is_file()
    again = [*cmd[:-4], "--epochs", "3", "--out", str(tmp_path)]
    done = subprocess.run(again, env=env, capture_output=True, text=True, timeout=60, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr
    assert "resumed from the checkpoint at epoch" in done.stdout

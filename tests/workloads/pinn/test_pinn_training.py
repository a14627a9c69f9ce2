"""Training end to end at small sizes: accuracy, outputs, resume, SIGTERM, NaN, foreign checkpoints."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest_helpers import metrics, prediction, run_job

from tests.numeric import above, below
from workloads.common.checkpoint import RESUMABLE_EXIT_CODE
from workloads.pinn import problems
from workloads.pinn.problems.oscillator import Oscillator

POISSON = ["--problem", "poisson2d", "--points", "400", "--width", "16", "--depth", "2"]


def test_poisson_reaches_its_target_and_writes_outputs(tmp_path):
    code = run_job(tmp_path, *POISSON, "--adam-steps", "200", "--lbfgs-steps", "200")
    assert code == 0
    m = metrics(tmp_path)
    # Reference: the analytic solution. A 2x16 net with 400 points gets 3.4e-4 (default kernels) to
    # 4.2e-4 (avx2, avx512) (make test-kernels); 2e-3 keeps 4.7x over the worst, and an untrained or
    # broken PINN is off by O(1).
    below("poisson2d relative L2", m["relative_l2"], 2e-3, source="analytic solution; 4.7x over 4.2e-4")
    assert m["steps"] == 400 and m["steps_per_s"] > 0 and m["points_per_s"] > 0
    # the loss falls by > 1e-3 (to 5.1e-6 .. 5.3e-6 of its start under every kernel choice)
    below(
        "poisson2d final/initial loss",
        m["loss_history"][-1][1] / m["loss_history"][0][1],
        1e-3,
        source="training must cut the loss 1000x; observed 5.3e-6",
    )
    with np.load(tmp_path / "prediction.npz") as data:
        assert data["prediction"].shape == (101, 101) == data["reference"].shape
        assert set(data) >= {"axis_x", "axis_y", "error", "collocation"}
    assert (tmp_path / "prediction.png").stat().st_size > 10_000


def _stop_at(step_to_stop: int):
    def hook(ctx, step):
        if step >= step_to_stop:
            ctx.stop.request("test")

    return hook


# With --rar-every 20, L-BFGS hands control back on multiples of 20 (60, 80, 100) and refines at the
# start of the chunks from 60 and 80: stopping at 80 saves the state just before a refinement, which the
# resumed run must redo exactly (same points, fresh L-BFGS history).
@pytest.mark.parametrize("stop_step", [30, 80], ids=["during-adam", "during-lbfgs-before-refinement"])
def test_resumed_run_ends_bitwise_equal_to_an_uninterrupted_one(tmp_path, stop_step):
    argv = [
        *POISSON,
        "--adam-steps",
        "50",
        "--lbfgs-steps",
        "50",
        "--checkpoint-every",
        "20",
        "--rar-every",
        "20",
    ]
    assert run_job(tmp_path / "straight", *argv) == 0
    interrupted = tmp_path / "interrupted"
    assert run_job(interrupted, *argv, on_step=_stop_at(stop_step)) == RESUMABLE_EXIT_CODE
    saved = torch.load(interrupted / "checkpoints" / "latest.pt", weights_only=True)
    assert saved["step"] == stop_step
    assert run_job(interrupted, *argv, resume=True) == 0
    assert metrics(interrupted)["resumed_from_step"] == stop_step
    # Same state, same operations, same order: bitwise identical, not merely close.
    np.testing.assert_array_equal(prediction(interrupted), prediction(tmp_path / "straight"))
    assert metrics(interrupted)["relative_l2"] == metrics(tmp_path / "straight")["relative_l2"]


@pytest.mark.parametrize(("rar_lbfgs", "refinements"), [("true", 4), ("false", 2)])
def test_refinement_goes_on_during_lbfgs_unless_turned_off(tmp_path, rar_lbfgs, refinements):
    argv = [*POISSON, "--adam-steps", "50", "--lbfgs-steps", "50", "--rar-every", "20"]
    assert run_job(tmp_path, *argv, "--rar-points", "30", "--rar-lbfgs", rar_lbfgs) == 0
    m = metrics(tmp_path)
    # Adam refines at steps 20 and 40; L-BFGS, when on, at 60 and 80 (100 is the end of the run).
    assert m["refinements"] == refinements
    assert m["collocation_points"] == 400 + 30 * refinements
    assert m["steps"] == 100


def test_sigterm_saves_a_checkpoint_exits_143_and_the_retry_finishes_the_same(tmp_path):
    argv = [
        "--problem",
        "oscillator",
        "--points",
        "64",
        "--width",
        "8",
        "--depth",
        "2",
        "--adam-steps",
        "800",
        "--lbfgs-steps",
        "0",
        "--checkpoint-every",
        "20",
        "--threads",
        "1",
        "--progress",
        "false",
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "workloads.pinn", *argv, "--out", str(out)],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    ckpt = out / "checkpoints" / "latest.pt"
    deadline = time.monotonic() + 60
    while not ckpt.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == RESUMABLE_EXIT_CODE, err
    assert "stopped by SIGTERM after saving a checkpoint" in err
    stopped_at = torch.load(ckpt, weights_only=True)["step"]
    assert 0 < stopped_at < 800
    resumed = subprocess.run(
        [sys.executable, "-m", "workloads.pinn", *argv, "--out", str(out)],
        env=env,
        capture_output=True,
        check=False,
        text=True,
        timeout=120,
    )
    assert resumed.returncode == 0, resumed.stderr
    straight = tmp_path / "straight"
    done = subprocess.run(
        [sys.executable, "-m", "workloads.pinn", *argv, "--out", str(straight)],
        env=env,
        capture_output=True,
        check=False,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert metrics(out)["resumed_from_step"] == stopped_at
    np.testing.assert_array_equal(prediction(out), prediction(straight))


def test_checkpoint_of_another_architecture_is_refused(tmp_path, capsys):
    base = [
        "--problem",
        "oscillator",
        "--points",
        "32",
        "--adam-steps",
        "20",
        "--lbfgs-steps",
        "0",
        "--checkpoint-every",
        "10",
    ]
    assert run_job(tmp_path, *base, "--width", "8", "--depth", "2") == 0
    code = run_job(tmp_path, *base, "--width", "16", "--depth", "2", resume=True)
    assert code == 2
    err = capsys.readouterr().err
    assert "belongs to another run (width: checkpoint 8 vs run 16)" in err
    assert "use another --checkpoint-dir for this run, or run again with --no-resume to start over" in err


class _Poison:
    """Make the next residual NaN once armed (what a diverging run looks like)."""

    armed = False


@problems.register
class NanOscillator(Oscillator):
    """The oscillator, except that its residual turns NaN when the test arms it."""

    name = "test_nan_oscillator"

    def residual(self, x, u, coeffs):
        r = super().residual(x, u, coeffs)
        return r * float("nan") if _Poison.armed else r


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, capsys):
    def arm(_ctx, step):
        _Poison.armed = step >= 15

    _Poison.armed = False
    try:
        code = run_job(
            tmp_path,
            "--problem",
            "test_nan_oscillator",
            "--points",
            "32",
            "--width",
            "8",
            "--adam-steps",
            "40",
            "--lbfgs-steps",
            "0",
            "--checkpoint-every",
            "10",
            on_step=arm,
        )
    finally:
        _Poison.armed = False
    assert code == 2
    err = capsys.readouterr().err
    assert (
        "the loss became nan at step 16; training stopped and the last good checkpoint (step 10) is kept"
        in err
    )
    assert "Lower --lr, or use --precision float64" in err
    saved = torch.load(tmp_path / "checkpoints" / "latest.pt", weights_only=True)
    assert saved["step"] == 10
    assert all(np.isfinite(v.numpy()).all() for v in saved["state"]["model"].values())
    assert not (tmp_path / "metrics.json").exists()


def test_extrapolation_beats_a_plain_network_on_the_same_data(tmp_path):
    code = run_job(
        tmp_path,
        "--problem",
        "oscillator_extrapolation",
        "--points",
        "128",
        "--width",
        "16",
        "--adam-steps",
        "300",
        "--lbfgs-steps",
        "1000",
    )
    assert code == 0
    m = metrics(tmp_path)
    # The plain network has no information beyond t = 0.4 and is off by O(1) there (2.07 under every
    # kernel choice); the PINN follows the physics: 6.1e-3 (avx2, avx512) to 7.7e-3 (default) at this
    # size, 4.9e-3 at full size (README). Each bound keeps >= 3x over the worst value observed, and the
    # PINN must beat the plain network by 10x (it does by 268x to 340x): a PINN that ignores the
    # physics fails. (The earlier 200 Adam + 400 L-BFGS gave 0.17 to 0.23 against a bound of 0.2.)
    above("plain network relative L2", m["plain_network_relative_l2"], 0.5, source="O(1) off; observed 2.07")
    below(
        "extrapolating PINN relative L2", m["relative_l2"], 0.03, source="3.9x over 7.7e-3 (default kernels)"
    )
    above(
        "plain network error / PINN error",
        m["plain_network_relative_l2"] / m["relative_l2"],
        10.0,
        source="the PINN must win by a wide factor; observed > 250",
        margin=3.0,
    )
    with np.load(tmp_path / "prediction.npz") as data:
        assert data["plain_network"].shape == data["prediction"].shape
        assert data["obs_x"].max() == pytest.approx(0.4)


def test_metrics_json_is_valid_json_with_histories(tmp_path):
    assert run_job(tmp_path, *POISSON, "--adam-steps", "20", "--lbfgs-steps", "10", "--eval-every", "5") == 0
    m = json.loads(Path(tmp_path / "metrics.json").read_text())
    assert [r[0] for r in m["error_history"]][:4] == [5, 10, 15, 20]
    assert m["world_size"] == 1 and m["workload"] == "pinn"
    # time to each error level: the first evaluation at or below it, read off the same history
    first = m["time_to_error"]
    assert set(first) == {"0.01", "0.005", "0.001"}
    for level, hit in first.items():
        reached = [r for r in m["error_history"] if r[2] <= float(level)]
        if hit is None:
            assert not reached
        else:
            assert hit["error"] <= float(level) and hit["step"] <= reached[0][0]


def test_time_to_error_picks_the_first_evaluation_below_each_level():
    from workloads.pinn.main import time_to_error

    history = [[100, 1.0, 0.5], [200, 2.0, 0.008], [300, 3.0, 0.009], [400, 4.0, 0.004]]
    assert time_to_error(history, (1e-2, 5e-3, 1e-3)) == {
        "0.01": {"step": 200, "train_s": 2.0, "error": 0.008},
        "0.005": {"step": 400, "train_s": 4.0, "error": 0.004},
        "0.001": None,
    }

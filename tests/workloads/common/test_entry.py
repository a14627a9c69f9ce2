"""The shared entrypoint: options from the spec, metrics, exit codes, checkpoints and resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlhpc import invocation
from mlhpc.spec import SpecError
from tests.workloads.common import toy
from workloads.common.checkpoint import RESUMABLE_EXIT_CODE
from workloads.common.entry import EXIT_FAILED, EXIT_USAGE, build_parser, parse_args
from workloads.common.launch import spawn_local


def metrics(out: Path) -> dict:  # type: ignore[type-arg]
    return json.loads((out / "metrics.json").read_text(encoding="utf-8"))


def test_options_come_from_the_spec() -> None:
    help_text = " ".join(build_parser(toy.SPEC).format_help().split())
    assert "--steps STEPS" in help_text
    assert "How far to count. (default: 5; a value >= 1 and <= 1000)" in help_text
    assert "--weights A,B,..." in help_text
    args, options = parse_args(toy.SPEC, ["--steps", "7", "--weights", "1.5,2", "--out", "x"])
    assert (args.steps, args.weights, options.out) == (7, [1.5, 2.0], "x")


def test_out_of_range_option_names_the_range() -> None:
    with pytest.raises(SpecError) as caught:
        parse_args(toy.SPEC, ["--steps", "0"])
    assert "toy: steps='0' is not valid: Input should be greater than or equal to 1" in str(caught.value)
    assert caught.value.fix == "give steps a value >= 1 and <= 1000"


def test_set_pairs_with_unknown_key_suggest_the_right_one() -> None:
    with pytest.raises(SpecError) as caught:
        invocation.from_pairs(toy.SPEC, ["step=3"])
    assert str(caught.value).startswith("toy has no argument 'step' (did you mean 'steps'?)")
    with pytest.raises(SpecError, match="is not key=value"):
        invocation.from_pairs(toy.SPEC, ["steps"])
    assert invocation.from_pairs(toy.SPEC, ["steps=9", "mode=sum"]).steps == 9


def test_command_lists_only_non_defaults() -> None:
    args = invocation.from_pairs(toy.SPEC, ["steps=9"])
    assert invocation.command(toy.SPEC, args) == [
        "python",
        "-m",
        "tests.workloads.common.toy",
        "--steps",
        "9",
    ]


def test_run_writes_metrics(tmp_path: Path) -> None:
    assert toy.main(["--steps", "4", "--out", str(tmp_path)]) == 0
    data = metrics(tmp_path)
    assert data["total"] == 4.0
    assert data["workload"] == "toy"
    assert data["world_size"] == 1


def test_user_error_exits_2_without_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert toy.main(["--mode", "usage", "--out", str(tmp_path)]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "error: mode=usage always refuses; got steps=5" in err
    assert "Traceback" not in err
    assert toy.main(["--steps", "-1"]) == EXIT_USAGE


def test_bug_exits_1_with_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert toy.main(["--mode", "fail", "--out", str(tmp_path)]) == EXIT_FAILED
    assert "RuntimeError: boom" in capsys.readouterr().err


def test_stop_saves_and_the_rerun_resumes_to_the_same_answer(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert toy.main(["--steps", "9", "--stop-at", "5", "--out", str(out)]) == RESUMABLE_EXIT_CODE
    assert not (out / "metrics.json").exists()
    assert toy.main(["--steps", "9", "--out", str(out)]) == 0
    resumed = metrics(out)
    assert resumed["resumed_from"] == 5
    fresh = tmp_path / "fresh"
    assert toy.main(["--steps", "9", "--out", str(fresh)]) == 0
    assert resumed["total"] == metrics(fresh)["total"] == 9.0


def test_checkpoint_from_another_run_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = tmp_path / "ckpt"
    assert toy.main(["--steps", "4", "--out", str(tmp_path / "a"), "--checkpoint-dir", str(ckpt)]) == 0
    code = toy.main(["--weights", "2", "--out", str(tmp_path / "b"), "--checkpoint-dir", str(ckpt)])
    assert code == EXIT_USAGE
    err = capsys.readouterr().err
    assert "belongs to another run (weights: checkpoint [1.0] vs run [2.0])" in err
    assert "use another --checkpoint-dir for this run, or run again with --no-resume to start over" in err
    assert f"or delete the file (rm {ckpt / 'latest.pt'})" in err


def test_no_resume_ignores_the_checkpoint(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert toy.main(["--steps", "4", "--out", str(out)]) == 0
    assert toy.main(["--steps", "6", "--no-resume", "--out", str(out)]) == 0
    assert metrics(out)["resumed_from"] == 0


def test_two_local_ranks_each_get_their_rank(tmp_path: Path) -> None:
    codes = spawn_local(toy.SPEC.module, ["--steps", "2", "--out", str(tmp_path)], workers=2, timeout_s=120)
    assert codes == [0, 0]
    assert metrics(tmp_path)["world_size"] == 2  # written by rank 0 only
    assert metrics(tmp_path)["rank"] == 0

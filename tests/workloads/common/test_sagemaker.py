"""The SageMaker bring-your-own-container contract, with /opt/ml moved into a temp dir."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlhpc import invocation
from tests.workloads.common import toy
from workloads.common.sagemaker import FAILURE_EXIT_CODE


@pytest.fixture
def opt_ml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MLHPC_SAGEMAKER_ROOT", str(tmp_path))
    monkeypatch.delenv("SM_MODEL_DIR", raising=False)
    (tmp_path / "input" / "config").mkdir(parents=True)
    return tmp_path


def write_hyperparameters(root: Path, values: dict[str, str]) -> None:
    (root / "input" / "config" / "hyperparameters.json").write_text(json.dumps(values), encoding="utf-8")


def test_hyperparameters_are_strings_and_sdk_keys_are_dropped() -> None:
    # As the SageMaker SDK's framework estimators send them (JSON) and as typed in the console (plain).
    args = invocation.from_hyperparameters(
        toy.SPEC,
        {"steps": "7", "mode": '"sum"', "weights": "[1, 2]", "sagemaker_program": "x", "stop_at": "0"},
    )
    assert (args.steps, args.mode, args.weights, args.stop_at) == (7, "sum", [1.0, 2.0], 0)
    assert invocation.from_hyperparameters(toy.SPEC, {"weights": "1,2.5"}).weights == [1.0, 2.5]


def test_train_writes_model_dir(opt_ml: Path) -> None:
    write_hyperparameters(opt_ml, {"steps": "3"})
    assert toy.main(["train"]) == 0
    data = json.loads((opt_ml / "model" / "metrics.json").read_text(encoding="utf-8"))
    assert data["total"] == 3.0
    assert (opt_ml / "checkpoints" / "latest.pt").is_file()
    assert not (opt_ml / "output" / "failure").exists()


def test_bad_hyperparameter_writes_failure_and_exits_255(opt_ml: Path) -> None:
    write_hyperparameters(opt_ml, {"steps": "0"})
    assert toy.main(["train"]) == FAILURE_EXIT_CODE
    reason = (opt_ml / "output" / "failure").read_text(encoding="utf-8")
    assert "steps='0' is not valid" in reason


def test_unknown_hyperparameter_is_a_failure_reason(opt_ml: Path) -> None:
    write_hyperparameters(opt_ml, {"stepz": "3"})
    assert toy.main(["train"]) == FAILURE_EXIT_CODE
    reason = (opt_ml / "output" / "failure").read_text(encoding="utf-8")
    assert "toy has no argument 'stepz' (did you mean 'steps'?)" in reason


def test_malformed_config_is_a_failure_reason(opt_ml: Path) -> None:
    (opt_ml / "input" / "config" / "hyperparameters.json").write_text("[1, 2]", encoding="utf-8")
    assert toy.main(["train"]) == FAILURE_EXIT_CODE
    assert "must hold a JSON object" in (opt_ml / "output" / "failure").read_text(encoding="utf-8")

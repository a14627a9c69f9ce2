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


def test_a_hyperparameter_is_data_never_expanded(opt_ml: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a `${NAME}` in a value would pull that variable into the job and into its FailureReason
    monkeypatch.setenv("MLHPC_TEST_SECRET", "s3cr3t-value")
    write_hyperparameters(opt_ml, {"mode": "${MLHPC_TEST_SECRET}"})
    assert toy.main(["train"]) == FAILURE_EXIT_CODE
    reason = (opt_ml / "output" / "failure").read_text(encoding="utf-8")
    assert "${MLHPC_TEST_SECRET}" in reason and "s3cr3t-value" not in reason


def write_resources(root: Path, config: object) -> None:
    (root / "input" / "config" / "resourceconfig.json").write_text(json.dumps(config), encoding="utf-8")


def test_the_cluster_comes_from_resourceconfig_as_the_toolkit_names_it(
    opt_ml: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("SM_HOSTS", "SM_CURRENT_HOST"):
        monkeypatch.delenv(name, raising=False)
    # one host: a single rank, as before
    write_resources(opt_ml, {"current_host": "algo-1", "hosts": ["algo-1"]})
    write_hyperparameters(opt_ml, {"steps": "2"})
    assert toy.main(["train"]) == 0
    metrics = json.loads((opt_ml / "model" / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["rank"] == 0
    from workloads.common import dist, sagemaker

    env = sagemaker.cluster_environment(opt_ml / "input" / "config" / "resourceconfig.json")
    assert env == {"SM_HOSTS": '["algo-1"]', "SM_CURRENT_HOST": "algo-1"}
    two = {"current_host": "algo-2", "hosts": ["algo-1", "algo-2"]}
    write_resources(opt_ml, two)
    rdzv = dist.from_env(sagemaker.cluster_environment(opt_ml / "input" / "config" / "resourceconfig.json"))
    assert (rdzv.rank, rdzv.world_size, rdzv.master_addr, rdzv.source) == (1, 2, "algo-1", "sagemaker")


@pytest.mark.parametrize(
    "config", [[1], {"hosts": ["algo-1"]}, {"current_host": "algo-3", "hosts": ["algo-1", "algo-2"]}]
)
def test_a_resourceconfig_without_this_host_is_a_failure_reason(opt_ml: Path, config: object) -> None:
    write_resources(opt_ml, config)
    write_hyperparameters(opt_ml, {"steps": "2"})
    assert toy.main(["train"]) == FAILURE_EXIT_CODE
    reason = (opt_ml / "output" / "failure").read_text(encoding="utf-8")
    assert "resourceconfig.json must name its current_host among its hosts" in reason

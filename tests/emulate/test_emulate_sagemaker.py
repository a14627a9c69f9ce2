"""`mlhpc emulate sagemaker`: each SageMaker workload's training request run as SageMaker would (one instance)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlhpc.spec import Backend
from mlhpc_app.emulate.sagemaker import emulate_sagemaker
from tests.cli.conftest import Cli
from tests.emulate.conftest import REPO
from workloads import registry

SAGEMAKER = [name for name in registry.names() if Backend.SAGEMAKER in registry.get(name).backends]


def emulate(workdir: Path, *argv: str) -> Any:
    return Cli()(
        "emulate", "sagemaker", *argv, "--workdir", str(workdir),
        "--config", str(REPO / "config" / "default.yaml"), "--output", "json",
    )  # fmt: skip


@pytest.mark.synth
@pytest.mark.parametrize("workload", SAGEMAKER)
def test_training_job_completes_with_the_outputs_in_model_tar_gz(
    workload: str, emulate_workdir: Path
) -> None:
    result = emulate(emulate_workdir, workload, "--demo", "--nodes", "1")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["status"] == "Completed" and summary["missing_outputs"] == []
    local = Path(summary["local_model"])
    assert all((local / name).is_file() for name in registry.get(workload).outputs)
    # /opt/ml as SageMaker lays it out: the hyperparameters are the request's strings
    opt_ml = Path(summary["log"]).parent / "opt" / "ml" / "input" / "config"
    sent = summary["request"]["HyperParameters"]
    assert json.loads((opt_ml / "hyperparameters.json").read_text(encoding="utf-8")) == sent
    assert all(isinstance(v, str) for v in sent.values())
    resources = json.loads((opt_ml / "resourceconfig.json").read_text(encoding="utf-8"))
    assert resources["current_host"] == "algo-1" and resources["hosts"] == ["algo-1"]


@pytest.mark.synth
def test_a_failing_job_is_failed_with_output_failure_as_its_reason(emulate_workdir: Path) -> None:
    def bad_value(request: dict[str, Any]) -> dict[str, Any]:
        request["HyperParameters"]["n"] = "many"  # what a console user could type
        return request

    em = emulate_sagemaker("hello", demo=True, workdir=emulate_workdir, edit_request=bad_value)
    assert em.status == "Failed" and em.attempt.exit_code == 255
    assert "n" in em.failure_reason and "many" in em.failure_reason
    model = em.local_model
    assert not (model / "metrics.json").exists()


def test_unknown_option_and_multi_instance_are_refused_as_submit_would(emulate_workdir: Path) -> None:
    result = emulate(emulate_workdir, "hello", "--set", "nope=1")
    assert result.exit_code == 1 and "error: hello has no argument 'nope'" in result.stderr
    qnn = emulate(emulate_workdir, "qnn")
    assert qnn.exit_code == 1 and "qnn does not support the sagemaker backend" in qnn.stderr

"""`mlhpc emulate sagemaker`: each SageMaker workload's training request run as SageMaker would.

Every SageMaker workload on one instance, the distributed ones on two; on config/default.yaml, and on
every other config with ``MLHPC_EMULATE_ALL=1``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from mlhpc.spec import Backend
from mlhpc_app.emulate.sagemaker import emulate_sagemaker
from tests.cli.conftest import Cli
from tests.emulate.conftest import REPO
from workloads import registry

ALL = os.environ.get("MLHPC_EMULATE_ALL") == "1"
OTHER_CONFIGS = sorted((REPO / "config" / "examples").glob("*.yaml"))
SAGEMAKER = [name for name in registry.names() if Backend.SAGEMAKER in registry.get(name).backends]


def emulate(workdir: Path, *argv: str, config: Path = REPO / "config" / "default.yaml") -> Any:
    return Cli()(
        "emulate", "sagemaker", *argv, "--workdir", str(workdir), "--config", str(config), "--output", "json",
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


def test_unknown_option_and_unsupported_backend_are_refused_as_submit_would(emulate_workdir: Path) -> None:
    result = emulate(emulate_workdir, "hello", "--set", "nope=1")
    assert result.exit_code == 1 and "error: hello has no argument 'nope'" in result.stderr
    qnn = emulate(emulate_workdir, "qnn")
    assert qnn.exit_code == 1 and "qnn does not support the sagemaker backend" in qnn.stderr


DISTRIBUTED = [name for name in SAGEMAKER if registry.get(name).distributed]


@pytest.mark.synth
@pytest.mark.parametrize("workload", DISTRIBUTED)
def test_two_instances_train_as_one_job_each_host_with_its_own_opt_ml(
    workload: str, emulate_workdir: Path
) -> None:
    result = emulate(emulate_workdir, workload, "--demo", "--nodes", "2")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["hosts"] == ["algo-1", "algo-2"] and summary["clashes"] == []
    assert summary["request"]["ResourceConfig"]["InstanceCount"] == 2
    for host in summary["hosts"]:
        config = Path(summary["logs"][host]).parent / "opt" / "ml" / "input" / "config"
        resources = json.loads((config / "resourceconfig.json").read_text(encoding="utf-8"))
        assert resources["current_host"] == host and resources["hosts"] == ["algo-1", "algo-2"]
    metrics = json.loads((Path(summary["local_model"]) / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["world_size"] == 2  # the hosts met by name (algo-1) and trained together
    if workload == "hello":
        n = int(summary["request"]["HyperParameters"]["n"])
        assert metrics["total"] == n * (n + 1) // 2  # Gauss: the two ranks' partial sums add up


@pytest.mark.synth
def test_a_role_without_put_on_the_output_path_fails_the_upload_as_sagemaker_does(
    emulate_workdir: Path,
) -> None:
    from tests.emulate.test_emulate_iam import _without

    em = emulate_sagemaker(
        "hello", demo=True, workdir=emulate_workdir, edit_role=_without("s3:PutObject", "resultsbucket")
    )
    assert em.attempt.exit_code == 0  # the container trained; SageMaker, as the role, could not upload
    assert em.status == "Failed" and not em.succeeded
    assert em.failure_reason.startswith("ClientError: Unable to upload the artifacts to s3://")
    assert "AccessDenied" in em.failure_reason and "PutObject" in em.failure_reason
    assert any("with IAM enforced" in note for note in em.notes)


@pytest.mark.synth
def test_a_role_without_read_on_the_channel_fails_before_the_container_starts(
    emulate_workdir: Path, tmp_path: Path
) -> None:
    from tests.emulate.test_emulate_iam import _without

    def with_channel(request: dict[str, Any]) -> dict[str, Any]:
        bucket = request["OutputDataConfig"]["S3OutputPath"].split("/")[2].replace("results", "datasets")
        request["InputDataConfig"] = [
            {"ChannelName": "training", "DataSource": {"S3DataSource": {
                "S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/inputs/",
                "S3DataDistributionType": "FullyReplicated"}}}
        ]  # fmt: skip
        return request

    em = emulate_sagemaker(
        "hello", demo=True, workdir=emulate_workdir, edit_request=with_channel,
        edit_role=_without("s3:ListBucket", "datasetsbucket"),
    )  # fmt: skip
    assert em.status == "Failed" and em.attempt.exit_code is None  # never started
    assert em.failure_reason.startswith("ClientError: Data download failed: AccessDenied")


@pytest.mark.synth
@pytest.mark.skipif(not ALL, reason="set MLHPC_EMULATE_ALL=1 (synthesizes every other config)")
@pytest.mark.parametrize("config", OTHER_CONFIGS, ids=[p.stem for p in OTHER_CONFIGS])
@pytest.mark.parametrize("workload", SAGEMAKER)
def test_every_training_job_of_every_other_config_completes(
    config: Path, workload: str, emulate_workdir: Path
) -> None:
    nodes = "2" if registry.get(workload).distributed else "1"
    result = emulate(emulate_workdir, workload, "--demo", "--nodes", nodes, config=config)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["status"] == "Completed" and summary["missing_outputs"] == [] and summary["clashes"] == []

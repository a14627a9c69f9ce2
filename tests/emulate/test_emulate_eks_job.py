"""`mlhpc emulate eks WORKLOAD` for a Job: the objects `mlhpc submit --backend eks` applies, run as Kubernetes would.

On config/examples/inferentia-bert.yaml, the config that deploys the EKS cluster: the pods get the
job role from the stack's Pod Identity association (IAM enforced by moto), find rank 0 by its DNS
name, and are replaced as the Job controller replaces them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from mlhpc.config import load_config
from mlhpc.errors import BackendUnsupported
from mlhpc.spec import Backend
from mlhpc_app.emulate import image
from mlhpc_app.emulate.eks_job import check_non_root, emulate_eks_job
from tests.cli.conftest import Cli
from tests.emulate.conftest import REPO
from workloads import registry

EXAMPLE = REPO / "config" / "examples" / "inferentia-bert.yaml"


def emulate(workdir: Path, *argv: str) -> Any:
    return Cli()(
        "emulate", "eks", *argv, "--workdir", str(workdir), "--config", str(EXAMPLE), "--output", "json"
    )  # fmt: skip


@pytest.mark.synth
def test_an_indexed_job_of_two_pods_completes_with_its_outputs(emulate_workdir: Path) -> None:
    result = emulate(emulate_workdir, "hello", "--demo", "--nodes", "2")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["status"] == "Complete" and summary["missing_outputs"] == []
    assert [r["nodes"] for r in summary["rounds"]] == [{"0": 0, "1": 0}]
    service, job = summary["objects"]
    assert service["spec"]["clusterIP"] == "None" and job["spec"]["completionMode"] == "Indexed"
    assert any("Pod Identity for default/mlhpc-jobs" in note for note in summary["notes"])
    metrics = json.loads((Path(summary["local_outputs"]) / "metrics.json").read_text(encoding="utf-8"))
    n = metrics["n"]
    assert metrics["world_size"] == 2  # RANK from the completion index, MASTER_ADDR by its DNS name
    assert metrics["total"] == n * (n + 1) // 2


@pytest.mark.synth
def test_a_pod_without_the_service_account_has_no_credentials_and_the_job_fails(
    emulate_workdir: Path,
) -> None:
    def default_account(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for o in objects:
            if o["kind"] == "Job":
                del o["spec"]["template"]["spec"]["serviceAccountName"]  # what every Job was before
                o["spec"]["backoffLimit"] = 1
        return objects

    em = emulate_eks_job(
        "hello", demo=True, config=EXAMPLE, workdir=emulate_workdir, edit_objects=default_account
    )
    assert em.status == "Failed" and em.reason == "BackoffLimitExceeded" and len(em.rounds) == 2
    assert any("no Pod Identity association for default/default" in note for note in em.notes)
    log = em.rounds[-1].logs[0].read_text(encoding="utf-8")
    assert "credentials" in log.lower()
    assert em.missing == list(em.spec.outputs)


@pytest.mark.synth
def test_exit_143_is_replaced_without_counting_and_the_pod_resumes(emulate_workdir: Path) -> None:
    def no_failures_allowed(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for o in objects:
            if o["kind"] == "Job":
                o["spec"]["backoffLimit"] = 0  # one counted failure fails the Job
        return objects

    # the pod stops after 8 of 20 chunks as on SIGTERM (checkpoint, exit 143): the pod failure
    # policy ignores it, so the replacement is not a failure and resumes from chunk 8
    n, chunk = 10_000, 500
    em = emulate_eks_job(
        "hello", sets=[f"n={n}", f"chunk={chunk}", "stop_after_chunks=8"], config=EXAMPLE,
        workdir=emulate_workdir, edit_objects=no_failures_allowed,
    )  # fmt: skip
    assert em.status == "Complete", em.to_dict()["rounds"]
    assert [r.nodes[0] for r in em.rounds] == [143, 0]
    metrics = json.loads((em.local_outputs / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["total"] == n * (n + 1) // 2 and metrics["resumed_from_chunk"] == 8


def test_run_as_non_root_is_verified_as_the_kubelet_does() -> None:
    container = {"securityContext": {"runAsNonRoot": True}}
    check_non_root(container, image.Image(user="1000:1000"))
    with pytest.raises(BackendUnsupported, match="image will run as root"):
        check_non_root(container, image.Image(user=None))
    with pytest.raises(BackendUnsupported, match=r"non-numeric user \(app\), cannot verify"):
        check_non_root(container, image.Image(user="app"))
    check_non_root({"securityContext": {"runAsNonRoot": True, "runAsUser": 1000}}, image.Image(user="app"))
    # every image a Job can run passes the Job's own security context
    for name in registry.names():
        if Backend.EKS in registry.get(name).backends:
            check_non_root(
                {"securityContext": {"runAsNonRoot": True}}, image.read(image.dockerfile(REPO, name))
            )


ALL = os.environ.get("MLHPC_EMULATE_ALL") == "1"
CLUSTER_CONFIGS = [
    p for p in sorted((REPO / "config" / "examples").glob("*.yaml")) if load_config(p).inference.enabled
]
EKS_WORKLOADS = [n for n in registry.names() if Backend.EKS in registry.get(n).backends]


@pytest.mark.synth
@pytest.mark.skipif(
    not ALL, reason="set MLHPC_EMULATE_ALL=1 (every EKS workload's Job on every cluster config)"
)
@pytest.mark.parametrize("config", CLUSTER_CONFIGS, ids=[p.stem for p in CLUSTER_CONFIGS])
@pytest.mark.parametrize("workload", EKS_WORKLOADS)
def test_every_eks_job_of_every_cluster_config_completes(
    config: Path, workload: str, emulate_workdir: Path
) -> None:
    result = Cli()(
        "emulate", "eks", workload, "--job", "--demo", "--workdir", str(emulate_workdir),
        "--config", str(config), "--output", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["status"] == "Complete" and summary["missing_outputs"] == []

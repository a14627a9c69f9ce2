"""The eks backend: the Kubernetes manifest rendered from the spec (no cluster needed)."""

from __future__ import annotations

import yaml

from tests.cli.conftest import Cli


def test_single_pod_job(cli: Cli) -> None:
    result = cli("submit", "hello", "--backend", "eks", "--dry-run", "--set", "n=77", "--client-token", "k")
    assert result.exit_code == 0, result.output
    [job] = list(yaml.safe_load_all(result.stdout))
    assert job["kind"] == "Job" and job["apiVersion"] == "batch/v1"
    assert job["metadata"]["name"] == "mlhpc-hello-" + __import__("hashlib").sha256(b"k").hexdigest()[:12]
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "mlhpc/hello:0.1.0"  # <project>/<image>:hpc.image_tag, no AWS needed
    assert container["command"] == ["python", "-m", "workloads.hello"]
    assert container["args"] == ["--n", "77"]
    assert container["resources"]["limits"] == {"cpu": "1", "memory": "512Mi"}
    rule = job["spec"]["podFailurePolicy"]["rules"][0]
    assert rule["action"] == "Ignore" and rule["onExitCodes"]["values"] == [143]
    assert "&id" not in result.stdout  # no YAML anchors


def test_multi_pod_indexed_job_with_rendezvous_service(cli: Cli) -> None:
    data = cli.json(
        "submit", "hello", "--backend", "eks", "--dry-run", "--nodes", "3", "--namespace", "default"
    )
    service, job = data["objects"]
    name = job["metadata"]["name"]
    assert service["kind"] == "Service" and service["spec"]["clusterIP"] == "None"
    assert job["spec"]["completionMode"] == "Indexed"
    assert job["spec"]["completions"] == job["spec"]["parallelism"] == 3
    assert job["spec"]["template"]["spec"]["subdomain"] == name
    env = {e["name"]: e for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["WORLD_SIZE"]["value"] == "3"
    assert env["MASTER_ADDR"]["value"] == f"{name}-0.{name}.default.svc.cluster.local"
    assert "job-completion-index" in env["RANK"]["valueFrom"]["fieldRef"]["fieldPath"]


def test_the_pod_runs_as_the_service_account_the_stack_gives_aws_credentials(cli: Cli) -> None:
    from mlhpc import contract

    data = cli.json("submit", "hello", "--backend", "eks", "--dry-run")
    (job,) = data["objects"]
    assert job["metadata"]["namespace"] == contract.EKS_JOB_NAMESPACE
    assert job["spec"]["template"]["spec"]["serviceAccountName"] == contract.EKS_JOB_SERVICE_ACCOUNT
    # another namespace has no Pod Identity association: refused before anything is applied
    other = cli("submit", "hello", "--backend", "eks", "--dry-run", "--namespace", "ml")
    assert (
        other.exit_code == 1 and "namespace 'ml' has no service account with AWS credentials" in other.stderr
    )
    assert "Traceback" not in other.output

"""The backend interface: chosen once from the job id or --backend, and the EKS backend end to end.

The EKS backend is driven through the CLI against a kubectl stand-in (tests/cli/fake_kubectl.py)
that answers apply, get, logs and patch as the Kubernetes API does.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from mlhpc.spec import Backend
from mlhpc_app import backends
from tests.cli.conftest import Cli
from workloads import registry

FAKE = Path(__file__).with_name("fake_kubectl.py")


@pytest.mark.parametrize(
    ("job", "kind"),
    [
        ("5d0c2b9e-7a7e-4e0a-9d36-1f0d6b1c8a11", Backend.BATCH),
        ("5d0c2b9e-7a7e-4e0a-9d36-1f0d6b1c8a11#1", Backend.BATCH),
        ("mlhpc-pinn-3f2a9c1b7d4e", Backend.SAGEMAKER),
        ("eks/default/mlhpc-pinn-3f2a9c1b7d4e", Backend.EKS),
    ],
)
def test_the_job_id_says_its_backend(job: str, kind: Backend) -> None:
    assert backends.kind_of(job) is kind


def test_every_remote_backend_of_a_spec_has_an_implementation() -> None:
    for spec in registry.all_specs().values():
        for backend in spec.backends - {Backend.LOCAL}:
            assert backend in backends.BACKENDS, (spec.name, backend)
        assert backends.default_backend(spec) in backends.BACKENDS


def test_local_is_not_a_submit_backend(cli: Cli) -> None:
    result = cli("submit", "hello", "--backend", "local", "--dry-run")
    assert result.exit_code == 2
    assert "'local' is not one of" in result.output and "batch" in result.output


@pytest.fixture
def kubectl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Put the kubectl stand-in first on PATH; return its state file."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "kubectl"
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} {FAKE} "$@"\n')
    shim.chmod(shim.stat().st_mode | stat.S_IEXEC)
    state = tmp_path / "kubectl-state.json"
    monkeypatch.setenv("FAKE_KUBECTL_STATE", str(state))
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return state


def _submit(cli: Cli, *extra: str) -> dict:
    return cli.json(
        "submit", "hello", "--backend", "eks", "--image", "example.com/me/hello:1", "--namespace", "default",
        "--client-token", "tok", "--poll-s", "0", *extra,
    )  # fmt: skip


def test_eks_submit_follows_the_job_to_its_end(cli: Cli, stacks: dict, kubectl: Path) -> None:
    data = _submit(cli, "--set", "n=77")
    name = data["name"]
    assert data["job_id"] == f"eks/default/{name}" and data["backend"] == "eks"
    assert data["status"] == "SUCCEEDED" and data["created"] is True
    assert (
        data["workload"] == "hello"
        and data["run_id"]
        and data["outputs"].endswith(f"/hello/{data['run_id']}/")
    )
    job = json.loads(kubectl.read_text())[f"Job/default/{name}"]
    assert job["spec"]["template"]["spec"]["containers"][0]["args"][:2] == ["--n", "77"]
    status = cli.json("status", data["job_id"])
    assert status["status"] == "SUCCEEDED" and status["started"] == "2026-12-02T10:00:05+00:00"
    logs = cli("logs", data["job_id"])
    assert logs.exit_code == 0 and f"{name} line 1" in logs.stdout


def test_eks_submit_with_the_same_token_makes_one_job(cli: Cli, stacks: dict, kubectl: Path) -> None:
    first = _submit(cli, "--detach")
    again = _submit(cli, "--detach")
    assert first["job_id"] == again["job_id"]
    assert (first["created"], again["created"]) == (True, False)
    assert len([k for k in json.loads(kubectl.read_text()) if k.startswith("Job/")]) == 1


def test_eks_cancel_stops_the_pods_and_keeps_the_record(cli: Cli, stacks: dict, kubectl: Path) -> None:
    job_id = _submit(cli, "--detach")["job_id"]
    done = cli.json("cancel", job_id, "--reason", "wrong learning rate")
    assert done["was"] == "RUNNING" and done["status"] == "FAILED"
    job = json.loads(kubectl.read_text())[f"Job/default/{job_id.rsplit('/', 1)[1]}"]
    assert job["spec"]["suspend"] is True
    status = cli.json("status", job_id)
    assert status["reason"] == "cancelled: wrong learning rate"
    again = cli("cancel", job_id)
    assert again.exit_code != 0 and "already ended FAILED" in again.stderr


def test_an_unknown_eks_job_is_reported_not_traced(cli: Cli, stacks: dict, kubectl: Path) -> None:
    result = cli("status", "eks/default/nope")
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert 'jobs.batch "nope" not found' in result.stderr


def test_eks_without_kubectl_says_how_to_get_it(
    cli: Cli, stacks: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    result = cli("status", "eks/default/x")
    assert result.exit_code != 0 and "kubectl is not installed" in result.stderr

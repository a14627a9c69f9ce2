"""The emulated job acts as its job role: the template's policies, enforced by moto's IAM.

The role and its documents come from the synthesized assembly (HpcStack's job role, whose data
access reaches it as StorageStack's customer managed policy across stacks); the service side is
moto with ``INITIAL_NO_AUTH_ACTION_COUNT`` at 0, which authorises every call as AWS does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from mlhpc_app.emulate import iam, s3
from mlhpc_app.emulate.assembly import load_assembly
from mlhpc_app.emulate.batch import emulate_batch
from mlhpc_app.emulate.template import TemplateDescriber, deployment
from tests.emulate.conftest import REPO

DEFAULT = REPO / "config" / "default.yaml"


def _job_role(workdir: Path) -> tuple[iam.RolePolicies, Any]:
    assembly = load_assembly(DEFAULT, workdir=workdir)
    dep = deployment(assembly)
    definition = TemplateDescriber(assembly).job_definition(
        dep.job_definition(__import__("workloads.registry").registry.get("hello"))
    )
    return iam.role_policies(assembly, definition["containerProperties"]["jobRoleArn"]), dep


def _allowed(role: iam.RolePolicies, action: str) -> set[str]:
    found: set[str] = set()
    for document in role.documents.values():
        for statement in document["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if statement["Effect"] == "Allow" and action in actions:
                resources = statement["Resource"]
                found |= set(resources if isinstance(resources, list) else [resources])
    return found


@pytest.mark.synth
def test_the_job_role_is_the_templates_with_the_stand_in_buckets(emulate_workdir: Path) -> None:
    role, dep = _job_role(emulate_workdir)
    assert role.name.startswith("mlhpc-RolesJob")
    # StorageStack's data-access policy, imported into HpcStack's role by its ARN
    assert _allowed(role, "s3:PutObject") == {
        f"arn:aws:s3:::{dep.results_bucket}/*",
        f"arn:aws:s3:::{dep.checkpoints_bucket}/*",
    }
    assert f"arn:aws:s3:::{dep.datasets_bucket}/*" in _allowed(role, "s3:GetObject")
    assert role.trust["Statement"][0]["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}


def _listed(value: Any) -> list[str]:
    return value if isinstance(value, list) else [value]


def _without(action: str, bucket_part: str) -> Any:
    """Return an edit that takes one action away from the role on one bucket (kept on the others)."""

    def edit(documents: dict[str, iam.Document]) -> dict[str, iam.Document]:
        for document in documents.values():
            statements = []
            for st in document["Statement"]:
                hit = [r for r in _listed(st["Resource"]) if bucket_part in r]
                if action not in _listed(st["Action"]) or not hit:
                    statements.append(st)
                    continue
                others = [r for r in _listed(st["Resource"]) if bucket_part not in r]
                rest = [a for a in _listed(st["Action"]) if a != action]
                statements += [{**st, "Resource": others}] if others else []
                statements += (
                    [{**st, "Sid": f"{st.get('Sid', '')}Less", "Action": rest, "Resource": hit}]
                    if rest
                    else []
                )
            document["Statement"] = statements
        return documents

    return edit


@pytest.mark.synth
def test_a_role_without_put_on_the_results_fails_the_job_with_access_denied(emulate_workdir: Path) -> None:
    em = emulate_batch(
        "hello",
        demo=True,
        config=DEFAULT,
        workdir=emulate_workdir,
        edit_role=_without("s3:PutObject", "resultsbucket"),
    )
    assert not em.succeeded and em.job.status == "FAILED"
    log = em.job.attempts[-1].logs[0].read_text(encoding="utf-8")
    assert "AccessDenied" in log and "PutObject" in log
    assert em.missing == list(em.spec.outputs)


@pytest.mark.synth
def test_the_templates_role_lets_the_job_write_and_enforcement_ends_with_the_run(
    emulate_workdir: Path,
) -> None:
    role, dep = _job_role(emulate_workdir)
    with s3.server(dep.region, [dep.results_bucket]) as url:
        with iam.as_role(url, dep.region, role, s3.FAKE_CREDENTIALS) as ids:
            job = {
                "aws_access_key_id": ids.job["AWS_ACCESS_KEY_ID"],
                "aws_secret_access_key": ids.job["AWS_SECRET_ACCESS_KEY"],
                "aws_session_token": ids.job["AWS_SESSION_TOKEN"],
            }
            client = boto3.client("s3", endpoint_url=url, region_name=dep.region, **job)
            client.put_object(Bucket=dep.results_bucket, Key="hello/run/metrics.json", Body=b"{}")
            with pytest.raises(ClientError, match="AccessDenied"):
                client.create_bucket(Bucket="not-the-jobs")  # no statement allows it
            with pytest.raises(ClientError):  # moto's fake keys are no identity while enforcement is on
                s3.client(url, dep.region).list_buckets()
        assert s3.client(url, dep.region).list_objects_v2(Bucket=dep.results_bucket)["KeyCount"] == 1

"""The emulated job talks to AWS as its own role: the role and policies of the template, enforced by moto.

On AWS a Batch container gets the credentials of the job definition's ``jobRoleArn`` (a SageMaker
training container those of the request's ``RoleArn``), and every S3 call is authorised against
that role's policies. The emulation does the same on the moto server:

1. the role is found in the assembly by its ARN, with every policy that reaches it: the role's
   inline ``Policies``, the ``AWS::IAM::Policy`` and ``AWS::IAM::ManagedPolicy`` resources that
   name it in ``Roles``, and its ``ManagedPolicyArns`` (a customer managed policy of the assembly —
   StorageStack's data-access policy, imported across stacks — with its document; an AWS managed
   one by its ARN, as moto ships them);
2. they are created in moto's IAM with the intrinsic functions evaluated (so the resources are the
   stand-in buckets' ARNs the job writes to), the role is assumed through STS, and the job gets
   those temporary credentials;
3. moto's IAM enforcement is switched on (its ``INITIAL_NO_AUTH_ACTION_COUNT``, set through
   ``/moto-api/reset-auth``) for the run, and off again after it; the emulator itself reads the
   outputs as an administrator user it made before.

A call the role does not allow fails as on AWS (``AccessDenied``), so a job definition whose role
lacks ``s3:PutObject`` on the results prefix fails here, not after a deployment.

What moto does not evaluate: statement ``Condition`` blocks whose keys the request does not carry
(moto then denies), resource policies (bucket policies) and KMS. Statements with conditions are
kept out of the emulated role and listed in :attr:`RolePolicies.unenforced`, so the report says
what was not checked.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from mlhpc.errors import MlhpcError
from mlhpc_app.emulate import s3
from mlhpc_app.emulate.template import Assembly

ADMIN_USER = "mlhpc-emulator"
SESSION_NAME = "mlhpc-emulated-job"
Document = dict[str, Any]


class RoleNotInAssembly(MlhpcError):
    """The job's role ARN names no AWS::IAM::Role of the assembly."""


@dataclass
class RolePolicies:
    """A role of the assembly and every policy document that reaches it, evaluated."""

    name: str
    arn: str
    trust: Document
    documents: dict[str, Document] = field(default_factory=dict)  # by policy name, conditions removed
    aws_managed: list[str] = field(default_factory=list)  # AWS managed policy ARNs
    unenforced: list[str] = field(default_factory=list)  # "policy/Sid" of statements moto cannot evaluate

    def edit(self, change: Callable[[dict[str, Document]], dict[str, Document]]) -> RolePolicies:
        """Return the role with its documents changed (what a role edited by hand would be; tests use it)."""
        return RolePolicies(
            self.name, self.arn, self.trust, change(json.loads(json.dumps(self.documents))),
            list(self.aws_managed), list(self.unenforced),
        )  # fmt: skip


def _statements(document: Document) -> list[Document]:
    found = document.get("Statement") or []
    return [found] if isinstance(found, dict) else list(found)


def _enforceable(name: str, document: Document, unenforced: list[str]) -> Document:
    kept = []
    for index, statement in enumerate(_statements(document)):
        if statement.get("Condition"):
            unenforced.append(f"{name}/{statement.get('Sid', index)}")
            continue
        kept.append(statement)
    return {"Version": document.get("Version", "2012-10-17"), "Statement": kept}


def _names_role(assembly: Assembly, stack: str, roles: Any, role_name: str) -> bool:
    return role_name in [str(r) for r in assembly.resolve(stack, roles or [])]


def role_policies(assembly: Assembly, role_arn: str) -> RolePolicies:
    """Return the role behind an ARN with every policy that reaches it, from the templates."""
    for stack, template in assembly.templates.items():
        for logical, resource in (template.get("Resources") or {}).items():
            if resource["Type"] != "AWS::IAM::Role" or assembly.attribute(stack, logical, "Arn") != role_arn:
                continue
            name = assembly.physical_id(stack, logical)
            props = assembly.resolve(stack, resource.get("Properties") or {})
            found = RolePolicies(name=name, arn=role_arn, trust=props.get("AssumeRolePolicyDocument") or {})
            for policy in props.get("Policies") or []:
                found.documents[policy["PolicyName"]] = policy["PolicyDocument"]
            for other_stack, other in assembly.templates.items():
                for other_id, res in (other.get("Resources") or {}).items():
                    kind, other_props = res["Type"], res.get("Properties") or {}
                    if kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy") and _names_role(
                        assembly, other_stack, other_props.get("Roles"), name
                    ):
                        found.documents[other_id] = assembly.resolve(
                            other_stack, other_props["PolicyDocument"]
                        )
            for arn in props.get("ManagedPolicyArns") or []:
                document = _managed_document(assembly, str(arn))
                if document is None:
                    found.aws_managed.append(str(arn))
                else:
                    found.documents[str(arn).rpartition("/")[2]] = document
            found.documents = {
                key: _enforceable(key, doc, found.unenforced) for key, doc in found.documents.items()
            }
            return found
    raise RoleNotInAssembly(
        f"the job's role {role_arn} is not a role of the synthesized assembly",
        fix="give the job definition a role the stacks define (HpcStack's job role)",
    )


def _managed_document(assembly: Assembly, arn: str) -> Document | None:
    for stack, template in assembly.templates.items():
        for logical, resource in (template.get("Resources") or {}).items():
            if resource["Type"] == "AWS::IAM::ManagedPolicy" and assembly.physical_id(stack, logical) == arn:
                document: Document = assembly.resolve(stack, resource["Properties"]["PolicyDocument"])
                return document
    return None


def _client(url: str, region: str, service: str, credentials: dict[str, str]) -> Any:
    import boto3

    return boto3.client(service, endpoint_url=url, region_name=region, **credentials)


def _set_auth(url: str, count: str) -> None:
    # the count is the raw body (a form content type would hide it from moto's handler)
    request = urllib.request.Request(
        f"{url}/moto-api/reset-auth",
        data=count.encode(),
        method="POST",
        headers={"Content-Type": "text/plain"},
    )
    with urllib.request.urlopen(request, timeout=30):
        pass


@dataclass(frozen=True)
class Identities:
    """The credentials of an emulation: the job's (its role's) and the emulator's own (an administrator)."""

    job: dict[str, str]  # AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN
    admin: dict[str, str]  # boto3 client keyword arguments

    def admin_client(self, url: str, region: str, service: str) -> Any:
        """Return a client that acts as the emulator's administrator while enforcement is on."""
        return _client(url, region, service, self.admin)


@contextmanager
def as_role(url: str, region: str, role: RolePolicies, bootstrap: dict[str, str]) -> Iterator[Identities]:
    """Create the role in moto, assume it, and enforce IAM until the block ends; yield the credentials."""
    iam = _client(url, region, "iam", bootstrap)
    iam.create_user(UserName=ADMIN_USER)
    iam.put_user_policy(
        UserName=ADMIN_USER,
        PolicyName="EmulatorAdministrator",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        ),
    )
    key = iam.create_access_key(UserName=ADMIN_USER)["AccessKey"]
    admin = {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}
    iam.create_role(RoleName=role.name, AssumeRolePolicyDocument=json.dumps(role.trust))
    for name, document in role.documents.items():
        iam.put_role_policy(RoleName=role.name, PolicyName=name[:128], PolicyDocument=json.dumps(document))
    for arn in role.aws_managed:
        iam.attach_role_policy(RoleName=role.name, PolicyArn=arn)
    assumed = _client(url, region, "sts", admin).assume_role(
        RoleArn=iam.get_role(RoleName=role.name)["Role"]["Arn"], RoleSessionName=SESSION_NAME
    )["Credentials"]
    job = {
        "AWS_ACCESS_KEY_ID": assumed["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": assumed["SecretAccessKey"],
        "AWS_SESSION_TOKEN": assumed["SessionToken"],
    }
    _set_auth(url, "0")  # every request from now on is authenticated and authorised
    try:
        yield Identities(job=job, admin=admin)
    finally:
        _set_auth(url, "inf")


@contextmanager
def identity(url: str, region: str, role: RolePolicies | None) -> Iterator[dict[str, str] | None]:
    """Yield a job role's credentials with IAM enforced for the block (None: no role, no enforcement)."""
    if role is None:
        yield None
        return
    with as_role(url, region, role, s3.FAKE_CREDENTIALS) as ids:
        yield ids.job

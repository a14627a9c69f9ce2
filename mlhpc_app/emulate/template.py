"""The synthesized assembly read as a deployment: stack outputs, job definitions and environments.

`mlhpc emulate` stands in for CloudFormation: each resource gets a physical id made from its
logical id (a bucket ``mlhpc-resultsbucket46167c27``, a job definition
``arn:aws:batch:REGION:000000000000:job-definition/JobPinnDefinition…:1``), and the intrinsic
functions the templates use (``Ref``, ``Fn::GetAtt``, ``Fn::Join``, ``Fn::Select``,
``Fn::Split``, ``Fn::ImportValue``, ``Fn::Sub`` without a map) are evaluated with them. From that:

* the :class:`~mlhpc_app.aws.stacks.Deployment` `mlhpc submit` would read from CloudFormation
  (:func:`deployment`);
* each job definition and queue as DescribeJobDefinitions / DescribeComputeEnvironments would
  return them (:class:`TemplateDescriber`, the :class:`mlhpc_app.aws.batch.Describer` of an
  emulation): CloudFormation's PascalCase keys turned to the API's camelCase.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlhpc.contract import StackId, stack_name
from mlhpc_app.aws import cluster
from mlhpc_app.aws.stacks import Deployment

ACCOUNT = "000000000000"  # moto's default account


@dataclass
class Assembly:
    """The templates of a cloud assembly, and the values CloudFormation would give their resources."""

    outdir: Path
    project: str
    region: str
    templates: dict[str, dict[str, Any]] = field(default_factory=dict)  # by stack id

    @classmethod
    def load(cls, outdir: Path, *, project: str, region: str) -> Assembly:
        """Read every ``<Stack>.template.json`` of an assembly directory."""
        found = {p.name.removesuffix(".template.json"): p for p in sorted(outdir.glob("*.template.json"))}
        templates = {name: json.loads(p.read_text(encoding="utf-8")) for name, p in found.items()}
        return cls(outdir=outdir, project=project, region=region, templates=templates)

    # --- physical ids -----------------------------------------------------------------

    def physical_id(self, stack: str, logical: str) -> str:
        """Return the stand-in physical id of a resource (what Ref gives)."""
        kind = self.templates[stack]["Resources"][logical]["Type"]
        if kind == "AWS::S3::Bucket":
            return f"{self.project}-{logical}".lower()[:63]
        if kind == "AWS::Batch::JobDefinition":
            return self._arn("batch", f"job-definition/{logical}:1")
        if kind == "AWS::Batch::JobQueue":
            return self._arn("batch", f"job-queue/{logical}")
        if kind == "AWS::Batch::ComputeEnvironment":
            return self._arn("batch", f"compute-environment/{logical}")
        if kind == "AWS::IAM::Role":
            return f"{self.project}-{logical}"
        if kind == "AWS::IAM::ManagedPolicy":  # Ref gives the ARN
            return f"arn:aws:iam::{ACCOUNT}:policy/{self.project}-{logical}"
        return logical

    def _arn(self, service: str, rest: str) -> str:
        return f"arn:aws:{service}:{self.region}:{ACCOUNT}:{rest}"

    def attribute(self, stack: str, logical: str, attr: str) -> str:
        """Return the stand-in of ``Fn::GetAtt [logical, attr]``."""
        kind = self.templates[stack]["Resources"][logical]["Type"]
        if attr.endswith("Arn"):
            if kind.startswith("AWS::Batch::"):
                return self.physical_id(stack, logical)
            if kind == "AWS::IAM::Role":
                return self._arn("iam", f"role/{self.physical_id(stack, logical)}").replace(
                    f":{self.region}:", "::"
                )
            if kind == "AWS::S3::Bucket":
                return f"arn:aws:s3:::{self.physical_id(stack, logical)}"
            if kind == "AWS::ECR::Repository":
                return self._arn("ecr", f"repository/{self.physical_id(stack, logical)}")
            return self._arn(kind.split("::")[1].lower(), f"{logical}")
        return f"{logical}.{attr}"

    def _export(self, name: str) -> Any:
        for stack, template in self.templates.items():
            for output in (template.get("Outputs") or {}).values():
                export = output.get("Export", {}).get("Name")
                if export is not None and self.resolve(stack, export) == name:
                    return self.resolve(stack, output["Value"])
        raise KeyError(f"no stack of the assembly exports {name}")

    # --- intrinsic functions ----------------------------------------------------------

    def resolve(self, stack: str, value: Any) -> Any:
        """Return a template value with its intrinsic functions evaluated."""
        if isinstance(value, list):
            return [self.resolve(stack, v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                pseudo = {
                    "AWS::Region": self.region,
                    "AWS::AccountId": ACCOUNT,
                    "AWS::URLSuffix": "amazonaws.com",
                    "AWS::Partition": "aws",
                    "AWS::StackName": stack,
                    "AWS::NoValue": None,
                }
                if arg in pseudo:
                    return pseudo[arg]
                if arg in (self.templates[stack].get("Parameters") or {}):
                    return f"{{{arg}}}"
                return self.physical_id(stack, arg)
            if key == "Fn::GetAtt":
                logical, attr = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.attribute(stack, logical, attr)
            if key == "Fn::Join":
                sep, parts = arg
                return str(sep).join(str(p) for p in self.resolve(stack, parts))
            if key == "Fn::Select":
                index, items = self.resolve(stack, arg)
                return items[int(index)]
            if key == "Fn::Split":
                sep, text = self.resolve(stack, arg)
                return str(text).split(sep)
            if key == "Fn::ImportValue":
                return self._export(self.resolve(stack, arg))
            if key == "Fn::Sub" and isinstance(arg, str):
                return re.sub(
                    r"\$\{([^}]+)\}",
                    lambda m: str(
                        self.resolve(
                            stack, {"Fn::GetAtt": m.group(1)} if "." in m.group(1) else {"Ref": m.group(1)}
                        )
                    ),
                    arg,
                )
        return {k: self.resolve(stack, v) for k, v in value.items()}

    # --- what the CLI reads -----------------------------------------------------------

    def outputs(self, stack: StackId) -> dict[str, str]:
        """Return a stack's outputs as DescribeStacks would (values as strings)."""
        template = self.templates.get(stack.value) or {}
        return {
            key: str(self.resolve(stack.value, output["Value"]))
            for key, output in (template.get("Outputs") or {}).items()
        }

    def resources(self, stack: StackId, kind: str) -> dict[str, dict[str, Any]]:
        """Return the stack's resources of a type, by logical id."""
        template = self.templates.get(stack.value) or {}
        return {k: r for k, r in (template.get("Resources") or {}).items() if r["Type"] == kind}

    def by_physical_id(self, stack: StackId, physical: str) -> tuple[str, dict[str, Any]]:
        """Return (logical id, resource) of the resource whose stand-in id this is."""
        for logical, resource in (self.templates.get(stack.value) or {}).get("Resources", {}).items():
            if self.physical_id(stack.value, logical) == physical:
                return logical, resource
        raise KeyError(f"{stack_name(self.project, stack)} has no resource {physical}")


def camel(value: Any, *, keep_keys: bool = False) -> Any:
    """Return CloudFormation properties with the API's keys (``ContainerProperties`` -> ``containerProperties``).

    The keys of ``Parameters``, ``Tags`` and log ``Options`` are the user's and stay as written.
    """
    if isinstance(value, list):
        return [camel(v) for v in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, item in value.items():
        name = key if keep_keys else key[:1].lower() + key[1:]
        out[name] = camel(item, keep_keys=key in ("Parameters", "Tags", "Options"))
    return out


def deployment(assembly: Assembly) -> Deployment:
    """Return the Deployment `mlhpc submit` would read from CloudFormation, from the templates."""
    return Deployment(
        project=assembly.project,
        region=assembly.region,
        storage=assembly.outputs(StackId.STORAGE),
        hpc=assembly.outputs(StackId.HPC),
    )


@dataclass
class TemplateDescriber:
    """Job definitions and queues read from HpcStack's template, shaped as the Batch API returns them."""

    assembly: Assembly
    # changes a described job definition (what a definition edited by hand would be); tests use it
    edit: Callable[[dict[str, Any]], dict[str, Any]] | None = None

    def job_definition(self, arn: str) -> dict[str, Any]:
        """Return a job definition as DescribeJobDefinitions would."""
        logical, resource = self.assembly.by_physical_id(StackId.HPC, arn)
        props = camel(self.assembly.resolve(StackId.HPC.value, resource["Properties"]))
        name, _, revision = arn.rpartition("/")[2].partition(":")
        del logical
        described = {
            "jobDefinitionName": props.pop("jobDefinitionName", name),
            "jobDefinitionArn": arn,
            "revision": int(revision or 1),
            "status": "ACTIVE",
            **props,
        }
        return self.edit(described) if self.edit else described

    def environments(self, queue_arn: str) -> list[cluster.DeployedEnvironment]:
        """Return the environments behind a queue from the template, as the placement rules read them."""
        _, queue = self.assembly.by_physical_id(StackId.HPC, queue_arn)
        order = sorted(
            queue["Properties"].get("ComputeEnvironmentOrder") or [], key=lambda o: o.get("Order", 0)
        )
        envs = []
        for entry in order:
            arn = self.assembly.resolve(StackId.HPC.value, entry["ComputeEnvironment"])
            logical, ce = self.assembly.by_physical_id(StackId.HPC, arn)
            props = ce["Properties"]
            res = props.get("ComputeResources") or {}
            state = props.get("State", "ENABLED")
            envs.append(
                cluster.DeployedEnvironment(
                    name=logical,
                    instance_types=tuple(res.get("InstanceTypes") or ()),
                    max_vcpus=int(res.get("MaxvCpus") or 0),
                    spot=res.get("Type") in ("SPOT", "FARGATE_SPOT"),
                    usable=state == "ENABLED",
                    state=f"{state}/VALID",
                )
            )
        return envs

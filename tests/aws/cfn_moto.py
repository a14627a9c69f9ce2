"""Create synthesized CDK templates in moto's CloudFormation, the way `cdk deploy` would.

What moto cannot model is not silently ignored: each such resource is *stubbed* — removed
from the template, with every Ref/GetAtt to it replaced by a visible ``stub-<id>`` (or stub ARN)
placeholder — and reported, so a test can assert the exact list. GetAtt attributes moto cannot
answer on types it does model are stubbed and reported the same way. Custom resources are stubbed
too (moto would have to run their Lambda). Two moto quirks are adapted and reported:
the CDK bootstrap-version rule (needs the bootstrap SSM parameter) is dropped, and KMS key
tags are passed in the TagKey/TagValue shape moto 5.2 expects.
"""

from __future__ import annotations

import io
import json
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from moto.cloudformation.parsing import get_model_map

REGION = "us-east-1"
DONE = {"CREATE_COMPLETE"}


@dataclass
class Deployed:
    """One stack created in moto: its status, outputs and what had to be stubbed."""

    name: str
    status: str
    reason: str | None
    outputs: dict[str, str]
    stubbed: dict[str, str] = field(default_factory=dict)  # logical id -> type
    stubbed_attributes: set[str] = field(default_factory=set)  # "Type.Attribute" moto cannot answer


def modeled(resource_type: str) -> bool:
    """True when moto's CloudFormation creates this resource type for real."""
    return not resource_type.startswith("Custom::") and resource_type in get_model_map()


def attribute_modeled(resource_type: str, attribute: str) -> bool:
    """True when moto can answer Fn::GetAtt for this attribute of a modeled type."""
    model = get_model_map().get(resource_type)
    if model is None or "get_cfn_attribute" not in dir(model):
        return False
    try:
        return bool(model.has_cfn_attr(attribute))
    except (AttributeError, NotImplementedError):  # moto models that raise instead of answering "no"
        return False


def _substitute_refs(node: Any, values: dict[str, str]) -> Any:
    if isinstance(node, dict):
        if set(node) == {"Ref"} and node["Ref"] in values:
            return values[node["Ref"]]
        return {key: _substitute_refs(value, values) for key, value in node.items()}
    if isinstance(node, list):
        return [_substitute_refs(value, values) for value in node]
    return node


def _stub_value(lid: str, attr: str | None) -> str:
    """A visible placeholder; ARN-shaped for *Arn attributes so moto's IAM validation accepts it."""
    if attr and attr.endswith("Arn"):
        return f"arn:aws:stub:{REGION}:123456789012:{lid.lower()}"
    return f"stub-{lid}" + (f"-{attr}" if attr else "")


# Attributes whose value moto's Ref already returns (the resource ARN), but not via GetAtt.
REF_EQUIVALENT = {
    ("AWS::Batch::ComputeEnvironment", "ComputeEnvironmentArn"),
    ("AWS::Batch::JobQueue", "JobQueueArn"),
    ("AWS::Batch::JobDefinition", "JobDefinitionArn"),
}


def _replace(node: Any, stubbed: set[str], types: dict[str, str], attrs: set[str]) -> Any:
    if isinstance(node, dict):
        if set(node) == {"Ref"} and node["Ref"] in stubbed:
            return _stub_value(node["Ref"], None)
        if set(node) == {"Fn::GetAtt"}:
            lid, attr = node["Fn::GetAtt"][0], node["Fn::GetAtt"][1]
            if (types.get(lid), attr) in REF_EQUIVALENT:
                return {"Ref": lid}
            if lid in stubbed or (lid in types and not attribute_modeled(types[lid], attr)):
                if lid not in stubbed:
                    attrs.add(f"{types[lid]}.{attr}")
                return _stub_value(lid, attr)
        return {key: _replace(value, stubbed, types, attrs) for key, value in node.items()}
    if isinstance(node, list):
        return [_replace(value, stubbed, types, attrs) for value in node]
    return node


BATCH_SERVICE_LINKED_ROLE = (
    "arn:aws:iam::123456789012:role/aws-service-role/batch.amazonaws.com/AWSServiceRoleForBatch"
)


def adapt_batch(resources: dict[str, Any]) -> list[str]:
    """Adapt compute environments to moto's stricter model; return a note per change.

    Real Batch uses its service-linked role when ServiceRole is absent, and *requires*
    security groups to be absent when the launch template has network interfaces (EFA);
    moto requires both. For moto only, the environment gets the service-linked role and
    the groups of its launch template's first interface.
    """
    notes = []
    for lid, resource in resources.items():
        if resource["Type"] != "AWS::Batch::ComputeEnvironment":
            continue
        props = resource.setdefault("Properties", {})
        if props.get("Type") in ("managed", "unmanaged"):
            props["Type"] = props["Type"].upper()  # CloudFormation takes either case; moto only upper
        if "ServiceRole" not in props:
            props["ServiceRole"] = BATCH_SERVICE_LINKED_ROLE
            notes.append(f"{lid}: ServiceRole set to the Batch service-linked role")
        compute = props.get("ComputeResources", {})
        if "SecurityGroupIds" not in compute:
            template_ref = compute.get("LaunchTemplate", {}).get("LaunchTemplateId", {})
            launch = resources.get(template_ref.get("Ref", "") if isinstance(template_ref, dict) else "", {})
            interfaces = (
                launch.get("Properties", {}).get("LaunchTemplateData", {}).get("NetworkInterfaces", [])
            )
            if interfaces:
                compute["SecurityGroupIds"] = interfaces[0]["Groups"]
                notes.append(f"{lid}: SecurityGroupIds copied from the launch template's EFA interfaces")
    return notes


def _camel(value: Any, *, keep: frozenset[str] = frozenset({"Options", "Parameters", "Tags"})) -> Any:
    """CloudFormation's PascalCase keys -> the Batch API's camelCase (map-valued keys left alone)."""
    if isinstance(value, dict):
        return {k[:1].lower() + k[1:]: (v if k in keep else _camel(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_camel(v) for v in value]
    return value


def _flatten_intrinsics(node: Any, where: str = "") -> Any:
    """Replace intrinsic functions (unresolvable before the stack exists) by visible placeholders."""
    if isinstance(node, dict):
        if len(node) == 1 and (next(iter(node)) == "Ref" or next(iter(node)).startswith("Fn::")):
            return f"stub-{where or 'value'}"
        return {key: _flatten_intrinsics(value, key) for key, value in node.items()}
    if isinstance(node, list):
        return [_flatten_intrinsics(value, where) for value in node]
    return node


def register_multi_node(logical_id: str, props: dict[str, Any]) -> str:
    """Register a multi-node job definition through the Batch API (moto's CloudFormation only makes containers).

    Its structure (nodes, devices, environment, retry strategy) is kept; values that are
    intrinsic functions (image URI, role ARNs, log group) become ``stub-<key>`` placeholders.
    """
    batch = boto3.client("batch", region_name=REGION)
    api = _camel(_flatten_intrinsics(props))
    return str(
        batch.register_job_definition(
            jobDefinitionName=logical_id,
            type="multinode",
            nodeProperties=api["nodeProperties"],
            parameters=api.get("parameters", {}),
            retryStrategy=api.get("retryStrategy", {}),
            timeout=api.get("timeout", {}),
        )["jobDefinitionArn"]
    )


def prepare(template: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str], set[str]]:
    """Return a template moto can create, {logical id: type} of stubbed resources, and stubbed attributes."""
    template = json.loads(json.dumps(template))
    template.pop("Rules", None)
    template.get("Parameters", {}).pop("BootstrapVersion", None)
    resources: dict[str, Any] = template["Resources"]
    stubbed = {lid: r["Type"] for lid, r in resources.items() if not modeled(r["Type"])}
    for lid in stubbed:
        del resources[lid]
    registered = {}
    for lid, resource in list(resources.items()):
        if (
            resource["Type"] == "AWS::Batch::JobDefinition"
            and resource["Properties"].get("Type") == "multinode"
        ):
            registered[lid] = register_multi_node(lid, resource["Properties"])
            del resources[lid]
            stubbed[lid] = "AWS::Batch::JobDefinition (multinode, registered through the API)"
    for resource in resources.values():
        depends = resource.get("DependsOn")
        if isinstance(depends, list):
            resource["DependsOn"] = [d for d in depends if d not in stubbed]
        elif isinstance(depends, str) and depends in stubbed:
            del resource["DependsOn"]
        if resource["Type"] == "AWS::KMS::Key" and "Tags" in resource.get("Properties", {}):
            resource["Properties"]["Tags"] = [
                {"TagKey": t["Key"], "TagValue": t["Value"]} for t in resource["Properties"]["Tags"]
            ]
    adapt_batch(resources)
    types = {lid: r["Type"] for lid, r in resources.items()}
    attrs: set[str] = set()
    template = _replace(template, set(stubbed) - set(registered), types, attrs)
    template = _substitute_refs(template, registered)
    return template, stubbed, attrs


def publish_assets(cdk_out: Path, stack: str) -> int:
    """Upload a stack's file assets to the bootstrap bucket (what `cdk deploy` publishes first)."""
    manifest = cdk_out / f"{stack}.assets.json"
    if not manifest.is_file():
        return 0
    s3 = boto3.client("s3", region_name=REGION)
    account = boto3.client("sts", region_name=REGION).get_caller_identity()["Account"]
    count = 0
    for asset in json.loads(manifest.read_text(encoding="utf-8")).get("files", {}).values():
        source = cdk_out / asset["source"]["path"]
        if source.is_dir():
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w") as archive:
                for file in sorted(source.rglob("*")):
                    if file.is_file():
                        archive.write(file, file.relative_to(source))
            body = buffer.getvalue()
        else:
            body = source.read_bytes()
        for destination in asset["destinations"].values():
            bucket = (
                destination["bucketName"]
                .replace("${AWS::AccountId}", account)
                .replace("${AWS::Region}", REGION)
            )
            if bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
                s3.create_bucket(Bucket=bucket)
            s3.put_object(Bucket=bucket, Key=destination["objectKey"], Body=body)
            count += 1
    return count


def ensure_batch_service_linked_role() -> None:
    """Create AWSServiceRoleForBatch, as AWS does the first time an account uses Batch."""
    iam = boto3.client("iam", region_name=REGION)
    names = {r["RoleName"] for r in iam.list_roles(PathPrefix="/aws-service-role/")["Roles"]}
    if "AWSServiceRoleForBatch" not in names:
        iam.create_role(
            RoleName="AWSServiceRoleForBatch",
            Path="/aws-service-role/batch.amazonaws.com/",
            AssumeRolePolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": "sts:AssumeRole",
                            "Principal": {"Service": "batch.amazonaws.com"},
                        }
                    ],
                }
            ),
        )


def deploy_assembly(cdk_out: Path, stacks: dict[str, str]) -> dict[str, Deployed]:
    """Create each stack ({construct id: stack name}, in dependency order); return what happened."""
    cfn = boto3.client("cloudformation", region_name=REGION)
    ensure_batch_service_linked_role()
    deployed = {}
    for construct_id, name in stacks.items():
        publish_assets(cdk_out, construct_id)
        raw = json.loads((cdk_out / f"{construct_id}.template.json").read_text(encoding="utf-8"))
        template, stubbed, attrs = prepare(raw)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # moto warns per unmodeled type; we report them instead
            cfn.create_stack(
                StackName=name,
                TemplateBody=json.dumps(template),
                Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
            )
        stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
        deployed[construct_id] = Deployed(
            name=name,
            status=stack["StackStatus"],
            reason=stack.get("StackStatusReason"),
            outputs={o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])},
            stubbed=stubbed,
            stubbed_attributes=attrs,
        )
    return deployed

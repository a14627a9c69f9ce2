"""Stand the stacks up in moto's CloudFormation: hand-written minimal templates, or synthesized ones.

The CLI reads only the stacks' *outputs* plus real Batch resources (queues, job
definitions). :func:`storage_template` and :func:`hpc_template` are the smallest templates
that honour the contract HpcStack/StorageStack emit (same stack names, same output keys),
with real moto Batch resources behind them. :func:`deploy` takes any template dicts, so
the same tests run against the synthesized templates once stacks/assembly builds them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from mlhpc import contract, invocation
from mlhpc.contract import pascal
from workloads import registry

MOTO_CONFIG = {"batch": {"use_docker": False}}
PROJECT = "mlhpc"
REGION = "us-east-1"
LOG_GROUP = "/mlhpc/batch/jobs"


def storage_template() -> dict[str, Any]:
    """Return a StorageStack stand-in: three buckets and the file-system ids as outputs."""
    buckets = {"Datasets": "datasets", "Results": "results", "Checkpoints": "checkpoints"}
    resources = {
        f"{key}Bucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": f"{PROJECT}-{name}-123"}}
        for key, name in buckets.items()
    }
    outputs = {f"{key}BucketName": {"Value": {"Ref": f"{key}Bucket"}} for key in buckets}
    outputs["EfsFileSystemId"] = {"Value": "fs-0123456789abcdef0"}
    outputs["FsxFileSystemId"] = {"Value": "fs-0fedcba9876543210"}
    return {"AWSTemplateFormatVersion": "2010-09-09", "Resources": resources, "Outputs": outputs}


def _container(workload: str) -> dict[str, Any]:
    return {
        "Image": f"123456789012.dkr.ecr.{REGION}.amazonaws.com/{PROJECT}/{workload}:0.1.0",
        "Vcpus": 1,
        "Memory": 512,
        # Options only, as HpcStack writes them: the image's ENTRYPOINT runs the workload.
        "Command": invocation.options(
            registry.get(workload),
            run=invocation.RunOptions(out="Ref::out", checkpoint_dir="Ref::checkpoint"),
        ),
        "LogConfiguration": {"LogDriver": "awslogs", "Options": {"awslogs-group": LOG_GROUP}},
    }


def _job_definition(workload: str) -> dict[str, Any]:
    props = {
        "Type": "container",
        "RetryStrategy": {"Attempts": 3},
        "ContainerProperties": _container(workload),
    }
    return {"Type": "AWS::Batch::JobDefinition", "Properties": props}


def register_multi_node(workload: str, *, nodes: int = 2) -> str:
    """Register a multi-node job definition through the Batch API; return its ARN."""
    import boto3

    def lower(value: Any) -> Any:
        if isinstance(value, dict):
            return {k[:1].lower() + k[1:]: (v if k == "Options" else lower(v)) for k, v in value.items()}
        return [lower(v) for v in value] if isinstance(value, list) else value

    container = lower(_container(workload))
    container.pop("image")
    container["image"] = f"123456789012.dkr.ecr.{REGION}.amazonaws.com/{PROJECT}/{workload}:0.1.0"
    batch = boto3.client("batch", region_name=REGION)
    return str(
        batch.register_job_definition(
            jobDefinitionName=f"{PROJECT}-{workload}-multinode",
            type="multinode",
            nodeProperties={
                "numNodes": nodes,
                "mainNode": 0,
                "nodeRangeProperties": [{"targetNodes": "0:", "container": container}],
            },
            retryStrategy={"attempts": 3},
        )["jobDefinitionArn"]
    )


def hpc_template(workloads: Mapping[str, bool | str], *, efa: bool = False) -> dict[str, Any]:
    """Return an HpcStack stand-in: a compute environment, three queues, a job definition per workload.

    ``workloads`` maps a name to False (a single-node job definition made by the template) or
    to the ARN of a job definition registered beforehand: moto's CloudFormation cannot make
    multi-node job definitions, so :func:`register_multi_node` makes them through the API.
    """
    resources: dict[str, Any] = {
        "BatchServiceRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "batch.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            },
        },
        "SageMakerRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "sagemaker.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            },
        },
        "Vpc": {"Type": "AWS::EC2::VPC", "Properties": {"CidrBlock": "10.0.0.0/16"}},
        "Subnet": {
            "Type": "AWS::EC2::Subnet",
            "Properties": {"VpcId": {"Ref": "Vpc"}, "CidrBlock": "10.0.0.0/20"},
        },
        "JobSecurityGroup": {
            "Type": "AWS::EC2::SecurityGroup",
            "Properties": {"GroupDescription": "batch jobs", "VpcId": {"Ref": "Vpc"}},
        },
        # Fargate resources keep moto from needing instance profiles; the CLI never looks inside.
        "ComputeEnvironment": {
            "Type": "AWS::Batch::ComputeEnvironment",
            "Properties": {
                "Type": "MANAGED",
                "ComputeResources": {
                    "Type": "FARGATE",
                    "MaxvCpus": 16,
                    "Subnets": [{"Ref": "Subnet"}],
                    "SecurityGroupIds": [{"Fn::GetAtt": ["JobSecurityGroup", "GroupId"]}],
                },
                "ServiceRole": {"Fn::GetAtt": ["BatchServiceRole", "Arn"]},
            },
        },
        "JobLogGroup": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": LOG_GROUP}},
    }
    outputs: dict[str, Any] = {
        "GpuQueueEfa": {"Value": "true" if efa else "false"},
        "JobLogGroupName": {"Value": {"Ref": "JobLogGroup"}},
        "SageMakerRoleArn": {"Value": {"Fn::GetAtt": ["SageMakerRole", "Arn"]}},
    }
    for key, name in (("GpuOnDemand", "gpu"), ("GpuSpot", "gpu-spot"), ("Cpu", "cpu")):
        resources[f"Queue{key}"] = {
            "Type": "AWS::Batch::JobQueue",
            "Properties": {
                "Priority": 1,
                "ComputeEnvironmentOrder": [
                    {"Order": 1, "ComputeEnvironment": {"Ref": "ComputeEnvironment"}}
                ],
                "JobQueueName": f"{PROJECT}-{name}",
            },
        }
        outputs[f"JobQueue{key}"] = {"Value": {"Ref": f"Queue{key}"}}
    for workload, arn in workloads.items():
        if isinstance(arn, str):
            outputs[f"JobDefinition{pascal(workload)}"] = {"Value": arn}
        else:
            resources[f"JobDefinition{pascal(workload)}"] = _job_definition(workload)
            outputs[f"JobDefinition{pascal(workload)}"] = {
                "Value": {"Ref": f"JobDefinition{pascal(workload)}"}
            }
        resources[f"Repository{pascal(workload)}"] = {
            "Type": "AWS::ECR::Repository",
            "Properties": {"RepositoryName": f"{PROJECT}/{workload}", "ImageTagMutability": "IMMUTABLE"},
        }
        outputs[f"Repository{pascal(workload)}Uri"] = {
            "Value": f"123456789012.dkr.ecr.{REGION}.amazonaws.com/{PROJECT}/{workload}"
        }
    return {"AWSTemplateFormatVersion": "2010-09-09", "Resources": resources, "Outputs": outputs}


def deploy(
    templates: Mapping[str, dict[str, Any] | Path], *, images: bool = True
) -> dict[str, dict[str, str]]:
    """Create each template (a dict or a JSON file) as a stack; return the outputs by stack name.

    Unless ``images`` is False, every workload repository the outputs name then holds an image
    at the default config's tag, as after `mlhpc image push` (submit checks it is there).
    """
    import boto3

    cfn = boto3.client("cloudformation", region_name=REGION)
    found = {}
    for name, template in templates.items():
        body = template.read_text(encoding="utf-8") if isinstance(template, Path) else json.dumps(template)
        cfn.create_stack(
            StackName=name, TemplateBody=body, Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"]
        )
        stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
        found[name] = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    if images:
        for outputs in found.values():
            for key, uri in outputs.items():
                if key.startswith("Repository") and key.endswith("Uri"):
                    put_image(uri)
    return found


def default_image_tag() -> str:
    """Return the image tag of config/default.yaml (the config the CLI tests name)."""
    from mlhpc.config import load_config

    return contract.image_tag(
        load_config(Path(__file__).resolve().parents[2] / "config" / "default.yaml").hpc
    )


def put_image(repository_uri: str, tag: str | None = None) -> str:
    """Put an image at a tag into a repository (created when absent), as a push would; return its digest."""
    import boto3

    ecr = boto3.client("ecr", region_name=REGION)
    name = contract.split_repository_uri(repository_uri)[1]
    with suppress(ecr.exceptions.RepositoryAlreadyExistsException):
        ecr.create_repository(repositoryName=name, imageTagMutability="IMMUTABLE")
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": 2,
            "digest": "sha256:" + "0" * 64,
        },
        "layers": [],
    }
    answer = ecr.put_image(
        repositoryName=name, imageManifest=json.dumps(manifest), imageTag=tag or default_image_tag()
    )
    return str(answer["image"]["imageId"]["imageDigest"])


def default_stacks(
    *, efa: bool = False, workloads: Mapping[str, bool | str] | None = None
) -> dict[str, dict[str, Any]]:
    """Return the hand-written storage and hpc templates by CloudFormation stack name."""
    return {
        f"{PROJECT}-storage": storage_template(),
        f"{PROJECT}-hpc": hpc_template(workloads or {"hello": False}, efa=efa),
    }


@contextmanager
def moto_stacks(
    templates: Mapping[str, dict[str, Any] | Path] | None = None,
) -> Iterator[dict[str, dict[str, str]]]:
    """Start moto (Batch without Docker) and create the stacks inside it."""
    from moto import mock_aws

    with mock_aws(config=MOTO_CONFIG):  # type: ignore[arg-type]
        yield deploy(default_stacks() if templates is None else templates)


def put_logs(stream: str, lines: list[str], *, group: str = LOG_GROUP) -> None:
    """Write log lines into a stream (what the awslogs driver does for a running container)."""
    import boto3

    logs = boto3.client("logs", region_name=REGION)
    now_ms = int(time.time() * 1000)
    with suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
    logs.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        # CloudWatch refuses events older than 14 days: stamp them now.
        logEvents=[{"timestamp": now_ms + i, "message": line} for i, line in enumerate(lines)],
    )

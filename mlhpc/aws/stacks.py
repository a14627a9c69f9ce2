"""Read what the deployed stacks made: CloudFormation outputs of `<project>-storage` and `<project>-hpc`.

These names are the contract between HpcStack/StorageStack and the CLI; the CLI never
guesses a queue or bucket name, it reads them from the outputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlhpc.aws.session import Aws, with_backoff
from mlhpc.errors import EfaUnavailable, OutputMissing, StackNotDeployed
from mlhpc.registry import pascal
from mlhpc.spec import Efa, WorkloadSpec

# construct id (what `cdk deploy` takes) -> CloudFormation stack name suffix
STACKS = {"NetworkStack": "network", "StorageStack": "storage", "HpcStack": "hpc"}
READY = frozenset({"CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_COMPLETE"})
QUEUE_OUTPUTS = {"gpu": "JobQueueGpuOnDemand", "gpu-spot": "JobQueueGpuSpot", "cpu": "JobQueueCpu"}


def stack_name(project: str, construct_id: str) -> str:
    """Return the CloudFormation name of a stack: `<project>-<part>`."""
    return f"{project}-{STACKS[construct_id]}"


def read_outputs(aws: Aws, project: str, construct_id: str) -> dict[str, str]:
    """Return a deployed stack's outputs; raise StackNotDeployed when it is absent or not finished."""
    from botocore.exceptions import ClientError

    name = stack_name(project, construct_id)
    cfn = aws.client("cloudformation")
    try:
        stacks = with_backoff(
            lambda: cfn.describe_stacks(StackName=name)["Stacks"], what="cloudformation:DescribeStacks"
        )
    except ClientError as err:
        if "does not exist" in str(err):
            raise StackNotDeployed(
                f"{construct_id} is not deployed in {aws.region}: run `cdk deploy {construct_id}`",
                fix=f"deploy it (stack name {name}), or pass --region/--config for where it is deployed",
                next_command=f"cdk deploy {construct_id}",
            ) from None
        raise
    stack = stacks[0]
    status = stack.get("StackStatus", "")
    if status not in READY:
        raise StackNotDeployed(
            f"{construct_id} ({name}) is {status} in {aws.region}, not ready for jobs",
            fix=f"wait for the deployment to finish, or fix it and run `cdk deploy {construct_id}` again",
            next_command=f"cdk deploy {construct_id}",
        )
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


@dataclass(frozen=True)
class Deployment:
    """The outputs of StorageStack and HpcStack for one project in one region."""

    project: str
    region: str
    storage: dict[str, str]
    hpc: dict[str, str]

    @classmethod
    def load(cls, aws: Aws, project: str) -> Deployment:
        """Read both stacks' outputs (HpcStack first: it is the one a user deploys by name)."""
        hpc = read_outputs(aws, project, "HpcStack")
        storage = read_outputs(aws, project, "StorageStack")
        return cls(project=project, region=aws.region, storage=storage, hpc=hpc)

    def _get(self, where: str, key: str, why: str) -> str:
        outputs = self.hpc if where == "HpcStack" else self.storage
        if key not in outputs:
            raise OutputMissing(
                f"{where} ({stack_name(self.project, where)}) has no output {key} ({why})",
                fix=f"the deployed stack is older than this CLI or lacks this workload; run `cdk deploy {where}`",
                next_command=f"cdk deploy {where}",
            )
        return outputs[key]

    def job_definition(self, spec: WorkloadSpec) -> str:
        """Return the workload's job definition ARN."""
        return self._get(
            "HpcStack", f"JobDefinition{pascal(spec.name)}", f"the job definition of {spec.name}"
        )

    def repository_uri(self, spec: WorkloadSpec) -> str:
        """Return the workload's ECR repository URI."""
        return self._get(
            "HpcStack", f"Repository{pascal(spec.name)}Uri", f"the image repository of {spec.name}"
        )

    def queue(self, kind: str) -> str:
        """Return the job queue ARN of a kind: gpu, gpu-spot or cpu."""
        return self._get("HpcStack", QUEUE_OUTPUTS[kind], f"the {kind} job queue")

    def queues(self) -> dict[str, str]:
        """Return every job queue the stack exports, by kind."""
        return {kind: self.hpc[key] for kind, key in QUEUE_OUTPUTS.items() if key in self.hpc}

    @property
    def log_group(self) -> str:
        """Return the CloudWatch log group the jobs write to."""
        return self._get("HpcStack", "JobLogGroupName", "where job logs go")

    @property
    def results_bucket(self) -> str:
        """Return the results bucket name."""
        return self._get("StorageStack", "ResultsBucketName", "where job outputs go")

    @property
    def checkpoints_bucket(self) -> str:
        """Return the checkpoints bucket name."""
        return self._get("StorageStack", "CheckpointsBucketName", "where checkpoints go")

    @property
    def datasets_bucket(self) -> str:
        """Return the datasets bucket name."""
        return self._get("StorageStack", "DatasetsBucketName", "where inputs live")

    @property
    def sagemaker_role(self) -> str:
        """Return the SageMaker execution role ARN."""
        return self._get("HpcStack", "SageMakerRoleArn", "the role SageMaker training jobs run as")

    def check_efa(self, spec: WorkloadSpec, queue_kind: str) -> None:
        """Raise EfaUnavailable when the workload requires EFA and the queue's instances have none."""
        if spec.resources.efa is not Efa.REQUIRED:
            return
        has_efa = queue_kind.startswith("gpu") and self.hpc.get("GpuQueueEfa", "false").lower() == "true"
        if not has_efa:
            raise EfaUnavailable(
                f"{spec.name} needs EFA (resources.efa=required) but the {queue_kind} queue in "
                f"{stack_name(self.project, 'HpcStack')} has no EFA-capable instances",
                fix="deploy HpcStack with an EFA instance type in the GPU compute environment "
                "(e.g. p4d.24xlarge or p5.48xlarge; config/examples/p5-efa-training.yaml) and run "
                "`cdk deploy HpcStack`",
                next_command="cdk deploy HpcStack",
            )

    def all_outputs(self) -> dict[str, dict[str, Any]]:
        """Return both stacks' outputs by CloudFormation stack name."""
        return {
            stack_name(self.project, "StorageStack"): dict(self.storage),
            stack_name(self.project, "HpcStack"): dict(self.hpc),
        }


def split_s3(uri: str) -> tuple[str, str]:
    """Return (bucket, key prefix) of an s3:// URI."""
    rest = uri.removeprefix("s3://")
    bucket, _, prefix = rest.partition("/")
    return bucket, prefix

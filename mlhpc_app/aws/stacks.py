"""Read what the deployed stacks made: CloudFormation outputs of `<project>-storage` and `<project>-hpc`.

The CLI never guesses a queue or bucket name: it reads them from the outputs, by the keys
:mod:`mlhpc.contract` declares and the stacks write.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlhpc import contract
from mlhpc.contract import Output, QueueKind, StackId, stack_name
from mlhpc.errors import EfaUnavailable, OutputMissing, StackNotDeployed
from mlhpc.spec import Efa, WorkloadSpec
from mlhpc_app.aws.session import Aws, with_backoff

READY = frozenset({"CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_COMPLETE"})


def read_outputs(aws: Aws, project: str, stack: StackId) -> dict[str, str]:
    """Return a deployed stack's outputs; raise StackNotDeployed when it is absent or not finished."""
    from botocore.exceptions import ClientError

    name = stack_name(project, stack)
    cfn = aws.client("cloudformation")
    try:
        stacks = with_backoff(
            lambda: cfn.describe_stacks(StackName=name)["Stacks"], what="cloudformation:DescribeStacks"
        )
    except ClientError as err:
        if "does not exist" in str(err):
            raise StackNotDeployed(
                f"{stack} is not deployed in {aws.region}: run `cdk deploy {stack}`",
                fix=f"deploy it (stack name {name}), or pass --region/--config for where it is deployed",
                next_command=f"cdk deploy {stack}",
            ) from None
        raise
    found = stacks[0]
    status = found.get("StackStatus", "")
    if status not in READY:
        raise StackNotDeployed(
            f"{stack} ({name}) is {status} in {aws.region}, not ready for jobs",
            fix=f"wait for the deployment to finish, or fix it and run `cdk deploy {stack}` again",
            next_command=f"cdk deploy {stack}",
        )
    return {o["OutputKey"]: o["OutputValue"] for o in found.get("Outputs", [])}


@dataclass(frozen=True)
class Deployment:
    """The outputs of StorageStack and HpcStack for one project in one region (keys: mlhpc.contract)."""

    project: str
    region: str
    storage: dict[str, str]
    hpc: dict[str, str]

    @classmethod
    def load(cls, aws: Aws, project: str) -> Deployment:
        """Read both stacks' outputs (HpcStack first: it is the one a user deploys by name)."""
        hpc = read_outputs(aws, project, StackId.HPC)
        storage = read_outputs(aws, project, StackId.STORAGE)
        return cls(project=project, region=aws.region, storage=storage, hpc=hpc)

    def _outputs(self, stack: StackId) -> dict[str, str]:
        return self.hpc if stack is StackId.HPC else self.storage

    def get(self, output: Output[Any]) -> Any:
        """Return an output's value, decoded to its type; raise OutputMissing naming the stack to deploy."""
        outputs = self._outputs(output.stack)
        if output.key not in outputs:
            raise OutputMissing(
                f"{output.stack} ({stack_name(self.project, output.stack)}) has no output {output.key} "
                f"({output.what})",
                fix=f"the deployed stack is older than this CLI or lacks this workload; run `cdk deploy {output.stack}`",
                next_command=f"cdk deploy {output.stack}",
            )
        return output.decode(outputs[output.key])

    def job_definition(self, spec: WorkloadSpec) -> str:
        """Return the workload's job definition ARN."""
        return str(self.get(contract.job_definition_output(spec.name)))

    def repository_uri(self, spec: WorkloadSpec) -> str:
        """Return the workload's ECR repository URI."""
        return str(self.get(contract.repository_output(spec.name)))

    def queue(self, kind: str) -> str:
        """Return the job queue ARN of a kind: gpu, gpu-spot or cpu."""
        return str(self.get(QueueKind(kind).output))

    def queues(self) -> dict[str, str]:
        """Return every job queue the stack exports, by kind."""
        return {k.value: self.hpc[k.output.key] for k in QueueKind if k.output.key in self.hpc}

    @property
    def log_group(self) -> str:
        """Return the CloudWatch log group the jobs write to."""
        return str(self.get(contract.JOB_LOG_GROUP))

    @property
    def results_bucket(self) -> str:
        """Return the results bucket name."""
        return str(self.get(contract.RESULTS_BUCKET))

    @property
    def checkpoints_bucket(self) -> str:
        """Return the checkpoints bucket name."""
        return str(self.get(contract.CHECKPOINTS_BUCKET))

    @property
    def datasets_bucket(self) -> str:
        """Return the datasets bucket name."""
        return str(self.get(contract.DATASETS_BUCKET))

    @property
    def sagemaker_role(self) -> str:
        """Return the SageMaker execution role ARN."""
        return str(self.get(contract.SAGEMAKER_ROLE))

    def check_efa(self, spec: WorkloadSpec, queue_kind: str) -> None:
        """Raise EfaUnavailable when the workload requires EFA and the queue's instances have none."""
        if spec.resources.efa is not Efa.REQUIRED:
            return
        has_efa = queue_kind.startswith("gpu") and contract.GPU_QUEUE_EFA.key in self.hpc
        has_efa = has_efa and bool(self.get(contract.GPU_QUEUE_EFA))
        if not has_efa:
            raise EfaUnavailable(
                f"{spec.name} needs EFA (resources.efa=required) but the {queue_kind} queue in "
                f"{stack_name(self.project, StackId.HPC)} has no EFA-capable instances",
                fix="deploy HpcStack with an EFA instance type in the GPU compute environment "
                "(e.g. p4d.24xlarge or p5.48xlarge; config/examples/p5-efa-training.yaml) and run "
                "`cdk deploy HpcStack`",
                next_command="cdk deploy HpcStack",
            )

    def all_outputs(self) -> dict[str, dict[str, Any]]:
        """Return both stacks' outputs by CloudFormation stack name."""
        return {
            stack_name(self.project, StackId.STORAGE): dict(self.storage),
            stack_name(self.project, StackId.HPC): dict(self.hpc),
        }


def split_s3(uri: str) -> tuple[str, str]:
    """Return (bucket, key prefix) of an s3:// URI."""
    rest = uri.removeprefix("s3://")
    bucket, _, prefix = rest.partition("/")
    return bucket, prefix

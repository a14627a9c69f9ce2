"""SageMaker training jobs with the workload's own container (the bring-your-own-algorithm contract).

The image is the workload's ECR repository (HpcStack output ``Repository<Name>Uri``);
SageMaker runs it as ``<image> train``, which :mod:`workloads.common.sagemaker` turns back
into the workload's options: every hyperparameter is a string (both sides use
:mod:`mlhpc.invocation`), the ``training`` channel
is mounted from S3 when the job has an input (``mlhpc submit --input``), ``/opt/ml/model`` is uploaded to the output path and
``/opt/ml/output/failure`` becomes the job's FailureReason.
"""

from __future__ import annotations

from typing import Any

from mlhpc import contract, invocation
from mlhpc.errors import ClientTokenReused, JobNotFound
from mlhpc.spec import Efa, WorkloadArgs, WorkloadSpec
from mlhpc_app.aws import jobs
from mlhpc_app.aws.jobs import JobInfo, Submission
from mlhpc_app.aws.session import Aws, with_backoff
from mlhpc_app.aws.stacks import Deployment

STATUS = {
    "InProgress": "RUNNING",
    "Completed": "SUCCEEDED",
    "Failed": "FAILED",
    "Stopping": "RUNNING",
    "Stopped": "FAILED",
}


def default_instance_type(spec: WorkloadSpec) -> str:
    """Return a training instance type that fits the spec's per-node resources.

    "All GPUs of the node" has no cluster to follow on SageMaker: such a job gets an 8-GPU
    type with EFA (ml.p4d.24xlarge) when it uses EFA, else a 4-GPU ml.g5.12xlarge.
    """
    res = spec.resources
    if res.whole_node:
        return "ml.p4d.24xlarge" if res.efa is not Efa.NONE else "ml.g5.12xlarge"
    gpus = int(res.gpus_per_node)
    if gpus >= 8:
        return "ml.p4d.24xlarge"
    if gpus >= 4:
        return "ml.g5.12xlarge"
    if gpus >= 1:
        return "ml.g5.2xlarge"
    return "ml.m5.xlarge" if res.vcpus_for(0) <= 4 else "ml.m5.4xlarge"


def prepare(
    deployment: Deployment,
    spec: WorkloadSpec,
    args: WorkloadArgs,
    *,
    nodes: int | None,
    token: str,
    run_id: str,
    instance_type: str | None = None,
    image_tag: str,  # contract.image_tag(config.hpc): the tag every backend runs
    input_uri: str | None = None,
) -> Submission:
    """Build the create_training_job request (reads only stack outputs; creates nothing)."""
    out_uri = f"s3://{deployment.results_bucket}/{spec.name}/{run_id}/"
    ckpt_uri = f"s3://{deployment.checkpoints_bucket}/{spec.name}/{run_id}/"
    name = jobs.job_name(deployment.project, spec.name, token)
    count = nodes or spec.resources.nodes
    identity = {"workload": spec.name, "args": args.model_dump(mode="json"), "nodes": count}
    request: dict[str, Any] = {
        "TrainingJobName": name,
        "AlgorithmSpecification": {
            "TrainingImage": contract.image_reference(deployment.repository_uri(spec), image_tag),
            "TrainingInputMode": "File",
        },
        "RoleArn": deployment.sagemaker_role,
        "HyperParameters": invocation.to_hyperparameters(spec, args),
        "OutputDataConfig": {"S3OutputPath": out_uri},
        "CheckpointConfig": {"S3Uri": ckpt_uri, "LocalPath": "/opt/ml/checkpoints"},
        "ResourceConfig": {
            "InstanceType": instance_type or default_instance_type(spec),
            "InstanceCount": count,
            "VolumeSizeInGB": 50,
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": spec.resources.timeout_s},
        "Environment": invocation.run_environment(invocation.RunOptions(), run_id=run_id),
        "Tags": [
            {"Key": jobs.TAG_WORKLOAD, "Value": spec.name},
            {"Key": jobs.TAG_RUN_ID, "Value": run_id},
            {"Key": jobs.TAG_REQUEST, "Value": jobs.request_digest(identity)},
            {"Key": jobs.TAG_PROJECT, "Value": deployment.project},
        ],
    }
    if input_uri:
        # A channel only when there is an input: SageMaker refuses an empty prefix, and the workload
        # reads /opt/ml/input/data/training only when its input argument is unset.
        request["InputDataConfig"] = [
            {
                "ChannelName": invocation.TRAINING_CHANNEL,
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": input_uri,
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
            }
        ]
    return Submission(
        request=request, job_name=name, run_id=run_id, token=token, out_uri=out_uri, checkpoint_uri=ckpt_uri
    )


def submit(aws: Aws, sub: Submission) -> tuple[str, bool]:
    """Create the training job once per client token; return (job name, created).

    Training job names are unique per account and region, and the name comes from the
    token: an existing job with this name is the same submission made before.
    """
    from botocore.exceptions import ClientError

    existing = _existing(aws, sub)
    if existing is not None:
        return existing, False
    sm = aws.client("sagemaker")
    try:
        with_backoff(lambda: sm.create_training_job(**sub.request), what="sagemaker:CreateTrainingJob")
    except ClientError as err:
        # A create whose first answer was lost: SageMaker says the name is in use.
        if err.response.get("Error", {}).get("Code") != "ResourceInUse":
            raise
        found = _existing(aws, sub)
        if found is None:
            raise
        return found, False
    return sub.job_name, True


def _existing(aws: Aws, sub: Submission) -> str | None:
    try:
        info = describe(aws, sub.job_name)
    except JobNotFound:
        return None
    mine = {t["Key"]: t["Value"] for t in sub.request["Tags"]}
    if info.tags.get(jobs.TAG_REQUEST) not in (None, mine[jobs.TAG_REQUEST]):
        raise ClientTokenReused(
            f"client token '{sub.token}' was already used for a different request (job {sub.job_name})",
            fix="use a new --client-token (or none: each submit then gets a fresh one)",
        )
    return sub.job_name


def describe(aws: Aws, name: str) -> JobInfo:
    """Return a training job as a JobInfo, or raise JobNotFound."""
    from botocore.exceptions import ClientError

    sm = aws.client("sagemaker")
    try:
        raw = with_backoff(
            lambda: sm.describe_training_job(TrainingJobName=name), what="sagemaker:DescribeTrainingJob"
        )
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") in ("ValidationException", "ResourceNotFound"):
            raise JobNotFound(
                f"no Batch job or SageMaker training job '{name}' in {aws.region}",
                fix="check the id (`mlhpc list` shows recent jobs) and the region",
                next_command="mlhpc list",
            ) from None
        raise
    tags: dict[str, str] = {}
    try:
        listed = sm.list_tags(ResourceArn=raw["TrainingJobArn"]).get("Tags", [])
        tags = {t["Key"]: t["Value"] for t in listed}
    except ClientError:
        pass
    status = raw.get("TrainingJobStatus", "InProgress")
    return JobInfo(
        job_id=name,
        name=name,
        backend="sagemaker",
        status=STATUS.get(status, status),
        workload=tags.get(jobs.TAG_WORKLOAD, ""),
        run_id=tags.get(jobs.TAG_RUN_ID, ""),
        reason=raw.get("FailureReason", "") or raw.get("SecondaryStatus", ""),
        created=raw.get("CreationTime"),
        started=raw.get("TrainingStartTime"),
        stopped=raw.get("TrainingEndTime"),
        nodes=int(raw.get("ResourceConfig", {}).get("InstanceCount", 1)),
        # SageMaker names its streams <job>/algo-<n>-<epoch>; logs.py finds them by prefix.
        log_stream=f"{name}/algo-1",
        output_uri=raw.get("OutputDataConfig", {}).get("S3OutputPath", ""),
        tags=tags,
        instance_type=str(raw.get("ResourceConfig", {}).get("InstanceType", "")),
    )


def stop(aws: Aws, name: str) -> JobInfo:
    """Stop a training job; return it as it was before."""
    info = describe(aws, name)
    sm = aws.client("sagemaker")
    with_backoff(lambda: sm.stop_training_job(TrainingJobName=name), what="sagemaker:StopTrainingJob")
    return info


LOG_GROUP = "/aws/sagemaker/TrainingJobs"

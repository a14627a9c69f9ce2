"""AWS Batch: build the submit request from a spec and the stack outputs, submit idempotently, describe.

The request overrides only what varies per run: the command (options only, built by
:func:`mlhpc.invocation.options`: the launcher option of a multi-node definition, the spec's
non-default arguments and the run options under the stacks' buckets; the image's
ENTRYPOINT runs the workload), a few environment variables and, for a multi-node job
definition, the number of nodes.
Everything else (image, vCPUs, memory, EFA devices, retry strategy) comes from the job
definition HpcStack generated from the same spec.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from mlhpc import invocation, placement
from mlhpc.errors import BackendUnsupported, ClientTokenReused, JobNotFound, OutputMissing, Throttled
from mlhpc.spec import WorkloadArgs, WorkloadSpec
from mlhpc_app.aws import cluster, jobs
from mlhpc_app.aws.jobs import JobInfo, Submission, from_millis
from mlhpc_app.aws.session import Aws, is_throttling, with_backoff
from mlhpc_app.aws.stacks import Deployment

SUBMIT_ATTEMPTS = 6


def default_queue_kind(spec: WorkloadSpec, deployment: Deployment) -> str:
    """Return the queue a workload goes to unless told: the one HpcStack sized its job definition for.

    :func:`mlhpc.placement.route` decides it for the stack and the CLI alike (GPU workloads to
    the On-Demand GPU queue, single-node ones to Spot when that is the only GPU queue, CPU
    workloads to the CPU queue); it raises NoRoute when the deployment has no queue for it.
    """
    return placement.route(spec, deployment.queues()).value


def describe_job_definition(aws: Aws, arn: str) -> dict[str, Any]:
    """Return the job definition behind an ARN or name:revision."""
    batch = aws.client("batch")
    found = with_backoff(
        lambda: batch.describe_job_definitions(jobDefinitions=[arn])["jobDefinitions"],
        what="batch:DescribeJobDefinitions",
    )
    if not found:
        raise OutputMissing(
            f"the job definition {arn} named in the HpcStack outputs does not exist",
            fix="the stack and the account disagree (deleted by hand?); run `cdk deploy HpcStack`",
            next_command="cdk deploy HpcStack",
        )
    return dict(found[0])


class Describer(Protocol):
    """Where :func:`prepare` reads the job definition and the queue's environments from."""

    def job_definition(self, arn: str) -> dict[str, Any]:
        """Return the job definition behind an ARN, as DescribeJobDefinitions returns it."""
        ...

    def environments(self, queue_arn: str) -> list[cluster.DeployedEnvironment]:
        """Return the compute environments behind a queue, in the queue's order."""
        ...


@dataclass(frozen=True)
class ApiDescriber:
    """The Batch API of the account (what `mlhpc submit` reads)."""

    aws: Aws

    def job_definition(self, arn: str) -> dict[str, Any]:
        """Return the deployed job definition (DescribeJobDefinitions)."""
        return describe_job_definition(self.aws, arn)

    def environments(self, queue_arn: str) -> list[cluster.DeployedEnvironment]:
        """Return the deployed environments (DescribeJobQueues, DescribeComputeEnvironments)."""
        return cluster.deployed_environments(self.aws, queue_arn)


def _container_properties(job_definition: dict[str, Any]) -> dict[str, Any]:
    props = job_definition.get("containerProperties") or {}
    if not props and job_definition.get("nodeProperties"):
        ranges = job_definition["nodeProperties"].get("nodeRangeProperties", [])
        props = (ranges[0].get("container") or {}) if ranges else {}
    return dict(props)


def gpus_per_node(job_definition: dict[str, Any]) -> int:
    """Return the GPUs each container of a job definition asks for (0 when none)."""
    for requirement in _container_properties(job_definition).get("resourceRequirements") or []:
        if requirement.get("type") == "GPU":
            return int(requirement.get("value", 0))
    return 0


def prepare(
    aws: Aws | Describer,
    deployment: Deployment,
    spec: WorkloadSpec,
    args: WorkloadArgs,
    *,
    nodes: int | None,
    queue_kind: str | None,
    token: str,
    run_id: str,
) -> Submission:
    """Build the submit_job request for a workload run (reads the job definition; submits nothing).

    ``aws`` is the account (the Batch API is read) or any :class:`Describer`: `mlhpc emulate`
    passes one that reads the synthesized template, so both build the request the same way.
    """
    describer: Describer = ApiDescriber(aws) if isinstance(aws, Aws) else aws
    queue_kind = queue_kind or default_queue_kind(spec, deployment)
    deployment.check_efa(spec, queue_kind)
    jobdef_arn = deployment.job_definition(spec)
    queue = deployment.queue(queue_kind)
    jobdef = describer.job_definition(jobdef_arn)
    multi = jobdef.get("type") == "multinode" or bool(jobdef.get("nodeProperties"))
    nodes = nodes or (spec.resources.nodes if multi else 1)
    placement.check_queue(spec, queue_kind, nodes)
    if nodes > 1 and not multi:
        raise BackendUnsupported(
            f"--nodes {nodes} needs a multi-node job definition, but {jobdef.get('jobDefinitionName', jobdef_arn)} "
            "is single-node",
            fix=f"{spec.name} runs on one node on Batch; drop --nodes"
            + ("" if spec.distributed else f" ({spec.name} is not a distributed workload)"),
        )
    # Batch accepts any request; check it against the environments really behind the queue.
    cluster.check_can_start(
        cluster.ask_of(jobdef, nodes),
        describer.environments(queue),
        queue=queue_kind,
        workload=spec.name,
    )
    out_uri = f"s3://{deployment.results_bucket}/{spec.name}/{run_id}/"
    ckpt_uri = f"s3://{deployment.checkpoints_bucket}/{spec.name}/{run_id}/"
    run = invocation.RunOptions(out=out_uri, checkpoint_dir=ckpt_uri)
    # The job definition's command is replaced, not appended to: the override carries the
    # launcher option again, for the GPUs the definition gives each node.
    command = invocation.options(
        spec, args, run, nproc_per_node=invocation.nproc_per_node(spec, gpus_per_node(jobdef))
    )
    environment = [
        {"name": key, "value": value} for key, value in invocation.run_environment(run, run_id=run_id).items()
    ]
    overrides = {"command": command, "environment": environment}
    name = jobs.job_name(deployment.project, spec.name, token)
    identity = {
        "workload": spec.name,
        "args": args.model_dump(mode="json"),
        "jobDefinition": jobdef_arn,
        "jobQueue": queue,
        "nodes": nodes,
    }
    request: dict[str, Any] = {
        "jobName": name,
        "jobQueue": queue,
        "jobDefinition": jobdef_arn,
        "propagateTags": True,
        "tags": {
            jobs.TAG_WORKLOAD: spec.name,
            jobs.TAG_RUN_ID: run_id,
            jobs.TAG_TOKEN: token,
            jobs.TAG_REQUEST: jobs.request_digest(identity),
            jobs.TAG_PROJECT: deployment.project,
        },
    }
    if multi:
        request["nodeOverrides"] = {
            "numNodes": nodes,
            "nodePropertyOverrides": [{"targetNodes": "0:", "containerOverrides": overrides}],
        }
    else:
        request["containerOverrides"] = overrides
    return Submission(
        request=request,
        job_name=name,
        run_id=run_id,
        token=token,
        out_uri=out_uri,
        checkpoint_uri=ckpt_uri,
        multi_node=multi,
    )


def find_by_name(aws: Aws, queue: str, name: str) -> dict[str, Any] | None:
    """Return the full description of the job with this name in the queue, or None."""
    batch = aws.client("batch")
    summaries = with_backoff(
        lambda: batch.list_jobs(jobQueue=queue, filters=[{"name": "JOB_NAME", "values": [name]}])[
            "jobSummaryList"
        ],
        what="batch:ListJobs",
    )
    if not summaries:
        return None
    newest = max(summaries, key=lambda s: s.get("createdAt", 0))
    return describe_raw(aws, newest["jobId"])


_TRANSIENT = ("EndpointConnectionError", "ReadTimeoutError", "ConnectionClosedError", "ConnectTimeoutError")


def _is_transient(err: BaseException) -> bool:
    from botocore.exceptions import ClientError

    if is_throttling(err):
        return True
    if isinstance(err, ClientError):
        return int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)) >= 500
    return type(err).__name__ in _TRANSIENT


def submit(aws: Aws, sub: Submission, *, sleep: Callable[[float], None] = time.sleep) -> tuple[str, bool]:
    """Submit once per client token; return (job id, created). Lost answers are looked up, not resent."""
    existing = find_by_name(aws, sub.request["jobQueue"], sub.job_name)
    if existing is not None:
        return _reuse(existing, sub), False
    # This client never retries by itself: a retried submit whose first answer was lost would
    # make a second job. Each retry below first looks for the job the lost answer described.
    batch = aws.client("batch", retries=False)
    for attempt in range(SUBMIT_ATTEMPTS):
        try:
            return str(batch.submit_job(**sub.request)["jobId"]), True
        except Exception as err:
            if not _is_transient(err):
                raise
            if attempt == SUBMIT_ATTEMPTS - 1:
                raise Throttled(
                    f"AWS kept refusing batch:SubmitJob ({type(err).__name__}) after {SUBMIT_ATTEMPTS} tries; "
                    "no job was created",
                    fix="wait a minute and submit again with the same --client-token "
                    f"{sub.token} (it will not make a second job)",
                ) from err
            sleep(random.uniform(0, min(20.0, 0.5 * 2**attempt)))
            existing = find_by_name(aws, sub.request["jobQueue"], sub.job_name)
            if existing is not None:
                return _reuse(existing, sub), False
    raise AssertionError("unreachable")


def _reuse(existing: dict[str, Any], sub: Submission) -> str:
    tags = existing.get("tags") or {}
    if tags.get(jobs.TAG_REQUEST) not in (None, sub.request["tags"][jobs.TAG_REQUEST]):
        raise ClientTokenReused(
            f"client token '{sub.token}' was already used for a different request (job {existing['jobId']})",
            fix="use a new --client-token (or none: each submit then gets a fresh one)",
        )
    return str(existing["jobId"])


def describe_raw(aws: Aws, job_id: str) -> dict[str, Any] | None:
    """Return Batch's description of one job, or None when there is none."""
    batch = aws.client("batch")
    found = with_backoff(lambda: batch.describe_jobs(jobs=[job_id])["jobs"], what="batch:DescribeJobs")
    return dict(found[0]) if found else None


def to_info(raw: dict[str, Any]) -> JobInfo:
    """Return a JobInfo from a Batch job description."""
    tags = raw.get("tags") or {}
    attempts = raw.get("attempts") or []
    container = raw.get("container") or {}
    stream = container.get("logStreamName") or ""
    if attempts and (attempts[-1].get("container") or {}).get("logStreamName"):
        stream = attempts[-1]["container"]["logStreamName"]
    reason = raw.get("statusReason", "") or ""
    if container.get("reason"):
        reason = f"{reason}: {container['reason']}" if reason else container["reason"]
    node_props = raw.get("nodeProperties") or {}
    return JobInfo(
        job_id=raw["jobId"],
        name=raw.get("jobName", ""),
        backend="batch",
        status=raw.get("status", "UNKNOWN"),
        workload=tags.get(jobs.TAG_WORKLOAD, ""),
        run_id=tags.get(jobs.TAG_RUN_ID, ""),
        reason=reason,
        queue=raw.get("jobQueue", ""),
        created=from_millis(raw.get("createdAt")),
        started=from_millis(raw.get("startedAt")),
        stopped=from_millis(raw.get("stoppedAt")),
        exit_code=container.get("exitCode"),
        nodes=int(node_props.get("numNodes", 1) or 1),
        log_stream=stream,
        attempts=len(attempts),
        tags=dict(tags),
    )


def describe(aws: Aws, job_id: str) -> JobInfo:
    """Return the job, or raise JobNotFound."""
    raw = describe_raw(aws, job_id)
    if raw is None:
        raise JobNotFound(
            f"no Batch job '{job_id}' in {aws.region}",
            fix="check the id (`mlhpc list` shows recent jobs) and the region",
            next_command="mlhpc list",
        )
    info = to_info(raw)
    if not info.log_stream and raw.get("nodeProperties"):
        # A multi-node parent has no container; the main node's logs are the job's story.
        main = raw["nodeProperties"].get("mainNode", 0)
        child = describe_raw(aws, f"{job_id}#{main}")
        if child is not None:
            info.log_stream = to_info(child).log_stream
    return info


def list_jobs(aws: Aws, deployment: Deployment) -> Iterator[JobInfo]:
    """Yield every job of this project in the stack's queues, newest first within each queue."""
    batch = aws.client("batch")
    pattern = f"{deployment.project}-*"
    for queue in dict.fromkeys(deployment.queues().values()):
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {
                "jobQueue": queue,
                "filters": [{"name": "JOB_NAME", "values": [pattern]}],
            }
            if token:
                kwargs["nextToken"] = token
            page = with_backoff(lambda kw=kwargs: batch.list_jobs(**kw), what="batch:ListJobs")  # type: ignore[misc]
            for summary in sorted(page.get("jobSummaryList", []), key=lambda s: -s.get("createdAt", 0)):
                info = to_info({**summary, "jobQueue": queue})
                yield info
            token = page.get("nextToken")
            if not token:
                break


def cancel(aws: Aws, job_id: str, reason: str) -> JobInfo:
    """Terminate a job (queued or running); return it as it was before."""
    info = describe(aws, job_id)
    batch = aws.client("batch")
    with_backoff(lambda: batch.terminate_job(jobId=job_id, reason=reason), what="batch:TerminateJob")
    return info

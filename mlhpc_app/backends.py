"""One interface for every place `mlhpc submit` sends a job: prepare, submit, describe, cancel, logs.

AWS Batch, SageMaker training and Kubernetes (EKS) each implement :class:`JobBackend`; the CLI
chooses one once — :func:`for_submit` from ``--backend`` and the spec, :func:`for_job` from a job
id — and every command after that (`submit`, `status`, `logs`, `cancel`, `results`) talks to the
interface only. The adapters underneath (:mod:`mlhpc_app.aws.batch`, ``.sagemaker``, ``.eks``)
speak each service's API; nothing above this module branches on a backend's name.

Job ids say their backend: Batch job ids are UUIDs (a multi-node child adds ``#N``), EKS ids read
``eks/NAMESPACE/NAME``, anything else is a SageMaker training job name.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from mlhpc import contract
from mlhpc.contract import QueueKind
from mlhpc.errors import BackendUnsupported
from mlhpc.spec import Backend, WorkloadArgs, WorkloadSpec
from mlhpc_app.aws import batch, eks, images, sagemaker
from mlhpc_app.aws import jobs as awsjobs
from mlhpc_app.aws.jobs import JobInfo
from mlhpc_app.aws.logs import LogReader, find_stream
from mlhpc_app.aws.target import Target

# Batch job ids are UUIDs (a multi-node child adds #N).
BATCH_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(#\d+)?$")


class Lines(Protocol):
    """A job's log, read in pieces: each poll returns the lines written since the last."""

    @property
    def stream(self) -> str:
        """Which log it reads (a new attempt's stream replaces the reader)."""
        ...

    @property
    def tail(self) -> deque[str]:
        """The last lines read (shown when the job fails)."""
        ...

    def poll(self) -> list[str]:
        """Return the new lines."""
        ...


@dataclass(frozen=True)
class SubmitOptions:
    """What a submit asks for beyond the workload's arguments (each backend reads its own)."""

    token: str
    run_id: str
    nodes: int | None = None
    queue: QueueKind | None = None  # batch
    instance_type: str | None = None  # sagemaker
    channel: str | None = None  # sagemaker: the training channel's S3 prefix (--input)
    image: str | None = None  # eks: an image of the user's own (default: the deployment's)
    namespace: str = "default"  # eks
    dry_run: bool = False


@dataclass(frozen=True)
class Prepared:
    """A request ready to send, and what a dry run shows of it."""

    backend: Backend
    spec: WorkloadSpec
    call: str  # the API call (or command) submit makes, e.g. "batch.submit_job"
    job_name: str
    run_id: str
    out_uri: str  # where the outputs will be ("" where the backend does not know before it runs)
    request: Any  # JSON-ready: the API request, or the Kubernetes objects
    native: Any  # the adapter's own prepared object, handed back to submit
    text: str | None = None  # how a table-format dry run prints it (default: the request as JSON)
    own_image: bool = False  # the user named an image of their own: theirs to push, not checked in ECR


class JobBackend(Protocol):
    """A remote backend, bound to one target (project, region, deployment)."""

    kind: ClassVar[Backend]

    def prepare(self, spec: WorkloadSpec, args: WorkloadArgs, opts: SubmitOptions) -> Prepared:
        """Build the request (reads what it must; changes nothing)."""
        ...

    def submit(self, prepared: Prepared) -> tuple[str, bool]:
        """Send it once per client token; return (job id, created)."""
        ...

    def describe(self, job: str) -> JobInfo:
        """Return the job (raise JobNotFound)."""
        ...

    def cancel(self, job: str, reason: str) -> JobInfo:
        """Stop the job; return it as it was."""
        ...

    def logs(self, info: JobInfo) -> Lines | None:
        """Return a reader of the job's log, or None while it has none."""
        ...

    def results_uri(self, info: JobInfo) -> str:
        """Return the S3 prefix the job's outputs are under."""
        ...


def _require_image(tgt: Target, spec: WorkloadSpec) -> None:
    """Refuse a job whose image tag is not in ECR: it could never start (ImageMissing says how to push)."""
    ref = images.ImageRef(spec.name, tgt.deployment.repository_uri(spec), tgt.image_tag)
    images.require(tgt.aws, ref, config_path=tgt.config_path)


def _run_prefix(tgt: Target, spec_name: str, run_id: str) -> str:
    return f"s3://{tgt.deployment.results_bucket}/{spec_name}/{run_id}/"


@dataclass
class BatchBackend:
    """AWS Batch: the job definition HpcStack made from the spec, on the queue placement routes it to."""

    target: Target
    kind: ClassVar[Backend] = Backend.BATCH

    def prepare(self, spec: WorkloadSpec, args: WorkloadArgs, opts: SubmitOptions) -> Prepared:
        """Build the submit_job request from the deployed job definition (reads Batch; submits nothing)."""
        tgt = self.target
        sub = batch.prepare(
            tgt.aws,
            tgt.deployment,
            spec,
            args,
            nodes=opts.nodes,
            queue_kind=opts.queue.value if opts.queue else None,
            token=opts.token,
            run_id=opts.run_id,
        )
        return Prepared(
            self.kind, spec, "batch.submit_job", sub.job_name, sub.run_id, sub.out_uri, sub.request, sub
        )

    def submit(self, prepared: Prepared) -> tuple[str, bool]:
        """Submit once per client token (the image must be in ECR)."""
        _require_image(self.target, prepared.spec)
        return batch.submit(self.target.aws, prepared.native)

    def describe(self, job: str) -> JobInfo:
        """DescribeJobs (a multi-node parent's log stream is its main node's)."""
        return batch.describe(self.target.aws, job)

    def cancel(self, job: str, reason: str) -> JobInfo:
        """TerminateJob, queued or running."""
        return batch.cancel(self.target.aws, job, reason)

    def logs(self, info: JobInfo) -> Lines | None:
        """The stream of the latest attempt in the stack's log group."""
        if not info.log_stream:
            return None
        return LogReader(self.target.aws, self.target.deployment.log_group, info.log_stream)

    def results_uri(self, info: JobInfo) -> str:
        """s3://RESULTS/WORKLOAD/RUN-ID/ (what the job's --out named)."""
        return _run_prefix(self.target, info.workload, info.run_id)


@dataclass
class SageMakerBackend:
    """SageMaker training: the workload's own image under the bring-your-own-container contract."""

    target: Target
    kind: ClassVar[Backend] = Backend.SAGEMAKER

    def prepare(self, spec: WorkloadSpec, args: WorkloadArgs, opts: SubmitOptions) -> Prepared:
        """Build the create_training_job request (reads only stack outputs)."""
        tgt = self.target
        sub = sagemaker.prepare(
            tgt.deployment,
            spec,
            args,
            nodes=opts.nodes,
            token=opts.token,
            run_id=opts.run_id,
            instance_type=opts.instance_type,
            input_uri=opts.channel,
            image_tag=tgt.image_tag,
        )
        return Prepared(
            self.kind,
            spec,
            "sagemaker.create_training_job",
            sub.job_name,
            sub.run_id,
            sub.out_uri,
            sub.request,
            sub,
        )

    def submit(self, prepared: Prepared) -> tuple[str, bool]:
        """Create the training job once per client token (the image must be in ECR)."""
        _require_image(self.target, prepared.spec)
        return sagemaker.submit(self.target.aws, prepared.native)

    def describe(self, job: str) -> JobInfo:
        """DescribeTrainingJob and its tags."""
        return sagemaker.describe(self.target.aws, job)

    def cancel(self, job: str, reason: str) -> JobInfo:
        """StopTrainingJob (SageMaker records no reason)."""
        return sagemaker.stop(self.target.aws, job)

    def logs(self, info: JobInfo) -> Lines | None:
        """The first host's stream in /aws/sagemaker/TrainingJobs (found by prefix once it exists)."""
        stream = find_stream(self.target.aws, sagemaker.LOG_GROUP, info.log_stream)
        return LogReader(self.target.aws, sagemaker.LOG_GROUP, stream) if stream else None

    def results_uri(self, info: JobInfo) -> str:
        """SageMaker writes under S3OutputPath/JOB-NAME/output/."""
        return f"{info.output_uri.rstrip('/')}/{info.job_id}/output/"


@dataclass
class EksBackend:
    """Kubernetes: a batch/v1 Job (Indexed, with a headless Service, when it spans pods), via kubectl."""

    target: Target
    kind: ClassVar[Backend] = Backend.EKS

    def prepare(self, spec: WorkloadSpec, args: WorkloadArgs, opts: SubmitOptions) -> Prepared:
        """Render the Job; a dry run without --image needs no AWS (it shows the repository name)."""
        tgt = self.target
        name = awsjobs.job_name(tgt.project, spec.name, opts.token)
        image, out_uri, ckpt_uri = opts.image, "", ""
        if image is None and opts.dry_run:
            image = contract.image_reference(contract.repository_name(tgt.project, spec.image), tgt.image_tag)
        if image is None or not opts.dry_run:
            image = image or contract.image_reference(tgt.deployment.repository_uri(spec), tgt.image_tag)
            out_uri = _run_prefix(tgt, spec.name, opts.run_id)
            ckpt_uri = f"s3://{tgt.deployment.checkpoints_bucket}/{spec.name}/{opts.run_id}/"
        objects = eks.render(
            spec,
            args,
            name=name,
            run_id=opts.run_id,
            image=image,
            nodes=opts.nodes,
            namespace=opts.namespace,
            out_uri=out_uri,
            checkpoint_uri=ckpt_uri,
        )
        return Prepared(
            self.kind,
            spec,
            "kubectl apply",
            name,
            opts.run_id,
            out_uri,
            objects,
            opts.namespace,
            text=eks.to_yaml(objects),
            own_image=opts.image is not None,
        )

    def submit(self, prepared: Prepared) -> tuple[str, bool]:
        """kubectl apply: the same client token names the same Job, which apply leaves as it is."""
        if not prepared.own_image:
            _require_image(self.target, prepared.spec)
        applied = eks.apply(eks.to_yaml(prepared.request))
        return eks.job_id(
            prepared.native, prepared.job_name
        ), f"job.batch/{prepared.job_name} created" in applied

    def describe(self, job: str) -> JobInfo:
        """kubectl get job -o json."""
        return eks.describe(job)

    def cancel(self, job: str, reason: str) -> JobInfo:
        """Suspend the Job with the reason as an annotation."""
        return eks.cancel(job, reason)

    def logs(self, info: JobInfo) -> Lines | None:
        """kubectl logs job/NAME, new lines each poll."""
        return eks.PodLogs(info.job_id)

    def results_uri(self, info: JobInfo) -> str:
        """s3://RESULTS/WORKLOAD/RUN-ID/, as on Batch."""
        return _run_prefix(self.target, info.workload, info.run_id)


BACKENDS: dict[Backend, type[BatchBackend] | type[SageMakerBackend] | type[EksBackend]] = {
    Backend.BATCH: BatchBackend,
    Backend.SAGEMAKER: SageMakerBackend,
    Backend.EKS: EksBackend,
}


def default_backend(spec: WorkloadSpec) -> Backend:
    """Return where `mlhpc submit` sends a workload unless told: its spec's default (Batch for a local-first one)."""
    return spec.default_backend if spec.default_backend in BACKENDS else Backend.BATCH


def check_supported(spec: WorkloadSpec, backend: Backend) -> None:
    """Refuse a backend the workload's spec does not list."""
    if backend not in spec.backends or backend not in BACKENDS:
        remote = sorted(b.value for b in spec.backends if b in BACKENDS)
        raise BackendUnsupported(
            f"{spec.name} does not support the {backend.value} backend (it supports: {', '.join(remote) or 'local only'})",
            fix=f"use --backend {remote[0]}" if remote else f"run it locally: mlhpc run {spec.name}",
        )


def for_submit(target: Target, spec: WorkloadSpec, backend: Backend | None) -> JobBackend:
    """Return the backend a submit goes to (``--backend``, else the spec's), refusing one the spec lacks."""
    chosen = backend or default_backend(spec)
    check_supported(spec, chosen)
    return BACKENDS[chosen](target)


def kind_of(job: str) -> Backend:
    """Return which backend a job id belongs to."""
    if job.startswith(eks.JOB_ID_PREFIX):
        return Backend.EKS
    return Backend.BATCH if BATCH_ID.match(job) else Backend.SAGEMAKER


def for_job(target: Target, job: str) -> JobBackend:
    """Return the backend that owns a job id."""
    return BACKENDS[kind_of(job)](target)

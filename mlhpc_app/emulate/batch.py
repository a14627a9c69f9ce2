"""`mlhpc emulate batch`: the request `mlhpc submit` would send, run here as AWS Batch would run it.

1. The config's assembly is synthesized (cached in the workdir) and read as a deployment: the
   stack outputs and HpcStack's job definitions and environments (:mod:`mlhpc_app.emulate.template`).
2. :func:`mlhpc_app.aws.batch.prepare`, the code `mlhpc submit` runs, builds the submit_job request
   from them, with the same errors (an unknown option, a job the queue cannot place).
3. A moto S3 server on loopback gets the stacks' buckets (under stand-in names), the job runs
   (:mod:`mlhpc_app.emulate.runtime`) with the credentials of its job role and moto's IAM enforcement
   on (:mod:`mlhpc_app.emulate.iam`), and the spec's outputs are looked for at the results URI and
   copied under the workdir.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlhpc import invocation
from mlhpc.errors import BackendUnsupported
from mlhpc.spec import Backend, WorkloadSpec
from mlhpc_app import backends
from mlhpc_app.aws import batch as batch_api
from mlhpc_app.aws import cluster
from mlhpc_app.aws import jobs as awsjobs
from mlhpc_app.emulate import iam, image, runtime, s3
from mlhpc_app.emulate.assembly import REPO, load_assembly
from mlhpc_app.emulate.template import TemplateDescriber, deployment
from workloads import registry
from workloads.common.storage import local_target

DEFAULT_WORKDIR = Path("results") / "emulate"


@dataclass
class Emulation:
    """An emulated Batch job: the request, what ran, and where its outputs are."""

    spec: WorkloadSpec
    request: dict[str, Any]
    definition: dict[str, Any]
    job: runtime.JobRun
    out_uri: str
    checkpoint_uri: str
    local_outputs: Path
    missing: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        """True when the job succeeded and every output the spec lists is at the results URI."""
        return self.job.succeeded and not self.missing

    def metrics(self) -> dict[str, Any]:
        """Return the run's metrics.json (from the local copy of the outputs)."""
        data: dict[str, Any] = json.loads((self.local_outputs / "metrics.json").read_text(encoding="utf-8"))
        return data

    def to_dict(self) -> dict[str, Any]:
        """Return the summary for `--output json`."""
        return {
            "workload": self.spec.name,
            "job_id": self.job.job_id,
            "status": self.job.status if not (self.job.succeeded and self.missing) else "FAILED",
            "attempts": [a.to_dict() for a in self.job.attempts],
            "outputs": self.out_uri,
            "checkpoints": self.checkpoint_uri,
            "local_outputs": str(self.local_outputs),
            "missing_outputs": self.missing,
            "notes": [*self.notes, *self.job.notes],
            "request": self.request,
        }


def check_backend(spec: WorkloadSpec) -> None:
    """Raise BackendUnsupported unless the workload runs on Batch (the refusal `mlhpc submit` gives)."""
    backends.check_supported(spec, Backend.BATCH)


def _environment_name(describer: TemplateDescriber, queue: str, ask: cluster.Ask) -> str:
    envs = describer.environments(queue)
    placed = next((e for e in envs if not cluster.problems(ask, e)), envs[0] if envs else None)
    return placed.name if placed else ""


def emulate_batch(
    workload: str,
    *,
    sets: Sequence[str] = (),
    demo: bool = False,
    nodes: int | None = None,
    queue_kind: str | None = None,
    config: Path | None = None,
    workdir: Path = DEFAULT_WORKDIR,
    assembly_dir: Path | None = None,
    reclaim_after_s: float | None = None,
    ranks_per_node: int | None = None,
    edit_definition: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    edit_request: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    edit_role: Callable[[dict[str, iam.Document]], dict[str, iam.Document]] | None = None,
    on_synth: Callable[[], None] | None = None,
) -> Emulation:
    """Build the request `mlhpc submit` would send for the config's assembly and run it as Batch would."""
    spec = registry.get(workload)
    check_backend(spec)
    args = invocation.from_pairs(spec, list(sets), base=dict(spec.demo_args) if demo else None)
    if nodes and nodes > 1 and not spec.distributed:
        raise BackendUnsupported(
            f"{spec.name} is not a distributed workload; --nodes {nodes} would run {nodes} copies of one job",
            fix="drop --nodes",
        )
    assembly = load_assembly(config, workdir=workdir, assembly_dir=assembly_dir, on_synth=on_synth)
    workdir = workdir.resolve()
    dep = deployment(assembly)
    describer = TemplateDescriber(assembly, edit=edit_definition)
    token = awsjobs.new_client_token()
    sub = batch_api.prepare(
        describer, dep, spec, args, nodes=nodes, queue_kind=queue_kind, token=token,
        run_id=awsjobs.new_run_id(token),
    )  # fmt: skip
    request = edit_request(copy.deepcopy(sub.request)) if edit_request else sub.request
    definition = describer.job_definition(str(request["jobDefinition"]))
    n = runtime.num_nodes(definition, request)
    notes = []
    if ranks_per_node is not None:
        notes.append(
            f"--ranks-per-node {ranks_per_node}: each node starts {ranks_per_node} rank(s), where the job "
            f"definition's command starts {batch_api.gpus_per_node(definition) or 1} (one per GPU); "
            "an emulation-only change"
        )
    img = image.read(image.dockerfile(REPO, spec.name))
    if img.user:
        notes.append(f"the image runs as USER {img.user}; the emulation runs as this user")
    queue = str(request["jobQueue"])
    role_arn = runtime.container(definition, request, runtime.main_node(definition)).get("jobRoleArn")
    role = iam.role_policies(assembly, str(role_arn)) if role_arn else None
    if role is not None and edit_role is not None:
        role = role.edit(edit_role)
    if role is None:
        notes.append("the job definition names no job role: the job ran without IAM enforcement")
    else:
        notes.append(f"the job ran as its role {role.name}, with IAM enforced (moto)")
        if role.unenforced:
            notes.append(f"not enforced (conditions moto cannot evaluate): {', '.join(role.unenforced)}")
    with s3.server(dep.region, [dep.results_bucket, dep.checkpoints_bucket, dep.datasets_bucket]) as url:
        layout = runtime.Layout(
            workdir=workdir,
            repo=REPO,
            endpoint=url,
            region=dep.region,
            queue_name=queue.rpartition("/")[2],
            environment_name=_environment_name(describer, queue, cluster.ask_of(definition, n)),
        )
        with iam.identity(url, dep.region, role) as credentials:
            job = runtime.run_job(
                definition, request, img, dataclasses.replace(layout, credentials=credentials),
                ranks_per_node=ranks_per_node, reclaim_after_s=reclaim_after_s,
            )  # fmt: skip
        local = workdir / job.job_id / "outputs"
        missing = (
            s3.missing(url, dep.region, sub.out_uri, spec.outputs) if job.succeeded else list(spec.outputs)
        )
        download_outputs(url, dep.region, sub.out_uri, local)
    return Emulation(
        spec=spec,
        request=request,
        definition=definition,
        job=job,
        out_uri=sub.out_uri,
        checkpoint_uri=sub.checkpoint_uri,
        local_outputs=local,
        missing=missing,
        notes=notes,
    )


def download_outputs(url: str, region: str, prefix_uri: str, local: Path) -> None:
    """Download the outputs under an s3:// prefix of the moto server, each key resolved under ``local``."""
    from mlhpc_app.aws.stacks import split_s3

    bucket, prefix = split_s3(prefix_uri)
    client = s3.client(url, region)
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            if not obj["Key"][len(prefix) :]:
                continue
            target = local_target(local, obj["Key"][len(prefix) :], key=obj["Key"])  # the job chose the key
            target.parent.mkdir(parents=True, exist_ok=True)
            client.download_file(bucket, obj["Key"], str(target))

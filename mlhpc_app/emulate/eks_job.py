"""`mlhpc emulate eks WORKLOAD`: the Job `mlhpc submit --backend eks` applies, run here as Kubernetes would.

1. **The objects** are the ones :class:`mlhpc_app.backends.EksBackend` renders for the submit (the
   same code, with the stack outputs read from the synthesized assembly): a ``batch/v1`` Job, and
   for several pods an *Indexed* Job with its headless Service.
2. **The pods**, one per completion index, are started as the kubelet would start them
   (:func:`mlhpc_app.emulate.kubelet.pod_start`: image ENTRYPOINT/CMD replaced by the container's
   command/args, env with the downward API — the completion index annotation is what ``RANK``
   reads — ``JOB_COMPLETION_INDEX`` set as the Job controller sets it). Each pod's process gets an
   /etc/hosts naming every pod's DNS name (``<job>-<i>.<job>.<namespace>.svc.cluster.local``) on
   loopback, as the headless Service makes cluster DNS answer, and the rendezvous port the
   manifest names is one free local port shared by the pods.
3. **Credentials** are what EKS Pod Identity gives the pod's service account: the role of the
   ``AWS::EKS::PodIdentityAssociation`` for that namespace and account in the synthesized
   templates, under moto's IAM enforcement. Without an association the pod has no credentials
   (the nodes' IMDS hop limit is 1), and the emulation runs it so.
4. **The Job controller**: pods are ``restartPolicy: Never``; a pod that fails is replaced until
   ``backoffLimit`` failures, except exit codes the ``podFailurePolicy`` ignores (143, a drain or
   Spot reclaim: SIGTERM after a checkpoint), which are replaced without counting;
   ``activeDeadlineSeconds`` fails the Job (DeadlineExceeded). The controller's back-off delay
   between replacements (10 s, doubling) is not waited. ``--reclaim-after S`` sends SIGTERM to
   every pod once, S seconds in, to rehearse a node drain.
5. **The checks**: the Job completes (every index succeeded) and the spec's outputs are at the
   results URI on moto S3.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlhpc import contract, invocation
from mlhpc.config import load_config, resolve_config_path
from mlhpc.errors import BackendUnsupported
from mlhpc.spec import Backend, WorkloadSpec
from mlhpc_app import backends
from mlhpc_app.aws import jobs as awsjobs
from mlhpc_app.aws.target import Target
from mlhpc_app.emulate import iam, image, kubelet, runtime, s3
from mlhpc_app.emulate.assembly import REPO, load_assembly
from mlhpc_app.emulate.batch import DEFAULT_WORKDIR, download_outputs
from mlhpc_app.emulate.template import Assembly, deployment
from workloads import registry

COMPLETION_INDEX = (
    "batch.kubernetes.io/job-completion-index"  # the annotation (and label) of an Indexed Job's pod
)
DEFAULT_BACKOFF_LIMIT = 6  # the Job API's default


@dataclass
class JobEmulation:
    """An emulated Kubernetes Job: its objects, each round of pods, and what landed in S3."""

    spec: WorkloadSpec
    objects: list[dict[str, Any]]
    job_name: str
    namespace: str
    rounds: list[runtime.Attempt]
    status: str  # Complete or Failed
    reason: str  # the Job's failure condition: BackoffLimitExceeded, DeadlineExceeded
    out_uri: str
    local_outputs: Path
    missing: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        """True when every index completed and the results URI holds every output the spec lists."""
        return self.status == "Complete" and not self.missing

    def to_dict(self) -> dict[str, Any]:
        """Return the summary for `--output json`."""
        return {
            "workload": self.spec.name,
            "job": f"{self.namespace}/{self.job_name}",
            "status": self.status if not self.missing else "Failed",
            "reason": self.reason,
            "rounds": [r.to_dict() for r in self.rounds],
            "outputs": self.out_uri,
            "local_outputs": str(self.local_outputs),
            "missing_outputs": self.missing,
            "notes": self.notes,
            "objects": self.objects,
        }


def pod_identity_role(assembly: Assembly, namespace: str, service_account: str) -> str | None:
    """Return the role ARN EKS Pod Identity gives a namespace's service account, from the templates."""
    for stack, template in assembly.templates.items():
        for resource in (template.get("Resources") or {}).values():
            if resource["Type"] != "AWS::EKS::PodIdentityAssociation":
                continue
            props = assembly.resolve(stack, resource.get("Properties") or {})
            if props.get("Namespace") == namespace and props.get("ServiceAccount") == service_account:
                return str(props["RoleArn"])
    return None


def check_non_root(container: dict[str, Any], img: image.Image) -> None:
    """Refuse a container as the kubelet does when runAsNonRoot cannot be verified (CreateContainerConfigError)."""
    context = container.get("securityContext") or {}
    if not context.get("runAsNonRoot") or context.get("runAsUser") is not None:
        return
    user = (img.user or "").partition(":")[0]
    if user in ("", "0", "root"):
        raise BackendUnsupported(
            "CreateContainerConfigError: container has runAsNonRoot and image will run as root",
            fix="set USER to a numeric non-root id in the Dockerfile (e.g. USER 1000:1000)",
        )
    if not user.isdigit():
        raise BackendUnsupported(
            f"CreateContainerConfigError: container has runAsNonRoot and image has non-numeric user ({user}), "
            "cannot verify user is non-root",
            fix="use a numeric USER in the Dockerfile, or set securityContext.runAsUser",
        )


def _dns_names(job: str, namespace: str, count: int) -> list[str]:
    """Return what cluster DNS answers for an Indexed Job's pods behind its headless Service."""
    names = []
    for index in range(count):
        host = f"{job}-{index}"
        names += [
            host,
            f"{host}.{job}",
            f"{host}.{job}.{namespace}.svc",
            f"{host}.{job}.{namespace}.svc.cluster.local",
        ]
    return names


def emulate_eks_job(
    workload: str,
    *,
    sets: Sequence[str] = (),
    demo: bool = False,
    nodes: int | None = None,
    config: Path | None = None,
    workdir: Path = DEFAULT_WORKDIR,
    assembly_dir: Path | None = None,
    reclaim_after_s: float | None = None,
    edit_role: Callable[[dict[str, iam.Document]], dict[str, iam.Document]] | None = None,
    edit_objects: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None = None,
    on_synth: Callable[[], None] | None = None,
) -> JobEmulation:
    """Render the Job `mlhpc submit --backend eks` would apply for the config, and run it as Kubernetes would."""
    spec = registry.get(workload)
    backends.check_supported(spec, Backend.EKS)  # the refusal `mlhpc submit` gives
    path = resolve_config_path(config)
    cfg = load_config(path)
    if not cfg.inference.enabled:
        raise BackendUnsupported(
            f"{path.name} deploys no EKS cluster (inference.enabled: false): a Job submitted with --backend eks "
            "would have nowhere to run",
            fix=f"enable inference in the config (see config/examples/inferentia-bert.yaml), or emulate the "
            f"Batch job: mlhpc emulate batch {spec.name}",
        )
    args = invocation.from_pairs(spec, list(sets), base=dict(spec.demo_args) if demo else None)
    assembly = load_assembly(config, workdir=workdir, assembly_dir=assembly_dir, on_synth=on_synth)
    workdir = workdir.resolve()
    dep = deployment(assembly)
    target = Target(
        config_path=path, project=cfg.project.name, config_region=cfg.project.region, region=dep.region,
        profile=None, image_tag=contract.image_tag(cfg.hpc), _deployment=dep,
    )  # fmt: skip
    token = awsjobs.new_client_token()
    prepared = backends.EksBackend(target).prepare(
        spec, args, backends.SubmitOptions(token=token, run_id=awsjobs.new_run_id(token), nodes=nodes)
    )
    objects: list[dict[str, Any]] = prepared.request
    if edit_objects is not None:
        objects = edit_objects(objects)
    (job,) = [o for o in objects if o["kind"] == "Job"]
    name, namespace = job["metadata"]["name"], job["metadata"].get("namespace", "default")
    job_spec = job["spec"]
    pod = job_spec["template"]["spec"]
    (container,) = pod["containers"]
    img = image.read(image.dockerfile(REPO, spec.name))
    check_non_root(container, img)
    count = int(job_spec.get("completions") or 1)
    job_dir = workdir / f"{namespace}-{name}"
    notes = [
        "the Job controller's back-off delay between pod replacements (10 s, doubling) is not waited",
    ]
    account = str(pod.get("serviceAccountName", "default"))
    role_arn = pod_identity_role(assembly, namespace, account)
    role = iam.role_policies(assembly, role_arn) if role_arn else None
    if role is not None and edit_role is not None:
        role = role.edit(edit_role)
    if role is None:
        notes.append(
            f"no Pod Identity association for {namespace}/{account}: the pods ran with no AWS credentials, "
            "as on the cluster (the nodes' IMDS hop limit is 1)"
        )
    else:
        notes.append(
            f"the pods ran as {role.name} (Pod Identity for {namespace}/{account}), with IAM enforced (moto)"
        )
        if role.unenforced:
            notes.append(f"not enforced (conditions moto cannot evaluate): {', '.join(role.unenforced)}")
    network = runtime.named_hosts(job_dir, _dns_names(name, namespace, count)) if count > 1 else []
    from workloads.common.dist import free_port

    port = free_port()
    deadline = job_spec.get("activeDeadlineSeconds")
    backoff = int(job_spec.get("backoffLimit", DEFAULT_BACKOFF_LIMIT))
    ignored = _ignored_exit_codes(job_spec, str(container.get("name", "")))
    rounds: list[runtime.Attempt] = []
    status, reason, failures = "Failed", "", 0
    with s3.server(dep.region, [dep.results_bucket, dep.checkpoints_bucket, dep.datasets_bucket]) as url:
        with iam.identity(url, dep.region, role) as credentials:
            aws = runtime.aws_environment(url, dep.region, credentials)
            if role is None:  # what an SDK finds in a pod with no identity: nothing
                for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
                    aws.pop(key, None)
                aws["AWS_EC2_METADATA_DISABLED"] = "true"
            pending, elapsed = list(range(count)), 0.0
            while pending:
                starts = [
                    _pod(
                        job,
                        index,
                        img=img,
                        root=job_dir / f"round-{len(rounds) + 1}",
                        objects=objects,
                        aws=aws,
                        network=network,
                        port=port,
                    )
                    for index in pending
                ]
                layout = runtime.Layout(
                    workdir=workdir, repo=REPO, endpoint=url, region=dep.region, queue_name="", environment_name=""
                )  # fmt: skip
                attempt = runtime.run_attempt(
                    starts, main=pending[0], number=len(rounds) + 1, layout=layout,
                    limit_s=float(deadline) - elapsed if deadline else None,
                    reclaim_after_s=reclaim_after_s if not rounds else None, until=runtime.UNTIL_EVERY,
                )  # fmt: skip
                rounds.append(attempt)
                elapsed += attempt.duration_s
                if attempt.timed_out:
                    reason = "DeadlineExceeded"
                    break
                failures += sum(1 for c in attempt.nodes.values() if c not in (0, *ignored))
                if failures > backoff:
                    reason = "BackoffLimitExceeded"
                    break
                pending = [i for i in pending if attempt.nodes.get(i) != 0]
            else:
                status = "Complete"
        local = job_dir / "outputs"
        missing = (
            s3.missing(url, dep.region, prepared.out_uri, spec.outputs)
            if status == "Complete"
            else list(spec.outputs)
        )
        download_outputs(url, dep.region, prepared.out_uri, local)
    return JobEmulation(
        spec=spec, objects=objects, job_name=name, namespace=namespace, rounds=rounds, status=status,
        reason=reason, out_uri=prepared.out_uri, local_outputs=local, missing=missing, notes=notes,
    )  # fmt: skip


def _ignored_exit_codes(job_spec: dict[str, Any], container: str) -> tuple[int, ...]:
    """Return the exit codes the pod failure policy ignores (replaced without counting toward backoffLimit)."""
    codes: list[int] = []
    for rule in (job_spec.get("podFailurePolicy") or {}).get("rules") or []:
        on = rule.get("onExitCodes") or {}
        if (
            rule.get("action") == "Ignore"
            and on.get("operator") == "In"
            and on.get("containerName") in (None, container)
        ):
            codes += [int(c) for c in on.get("values") or []]
    return tuple(codes)


def _pod(
    job: dict[str, Any],
    index: int,
    *,
    img: image.Image,
    root: Path,
    objects: list[dict[str, Any]],
    aws: dict[str, str],
    network: list[str],
    port: int,
) -> runtime.NodeStart:
    """Return how the pod of one completion index starts (its hostname is ``<job>-<index>``)."""
    name = job["metadata"]["name"]
    template = job["spec"]["template"]
    indexed = job["spec"].get("completionMode") == "Indexed"
    annotations = {**((template.get("metadata") or {}).get("annotations") or {})}
    labels = {**((template.get("metadata") or {}).get("labels") or {}), "job-name": name}
    if indexed:
        annotations[COMPLETION_INDEX] = labels[COMPLETION_INDEX] = str(index)
    carrier = {
        "metadata": job["metadata"],
        "spec": {
            "template": {"metadata": {"labels": labels, "annotations": annotations}, "spec": template["spec"]}
        },
    }
    suffix = hashlib.sha256(f"{name}-{index}".encode()).hexdigest()[:5]
    start = kubelet.pod_start(
        carrier, img, root=root, repo=REPO, objects=objects,
        extra_env={**aws, **({"JOB_COMPLETION_INDEX": str(index)} if indexed else {})},
        free_port=lambda: port, name=f"{name}-{index}" if indexed else f"{name}-{suffix}",
    )  # fmt: skip
    return runtime.NodeStart(
        index=index, argv=[*network, *start.argv], env=start.env, cwd=start.cwd, log=start.log
    )

"""Kubernetes: render a workload run as a batch/v1 Job (plus a headless Service when it spans pods).

One pod per node. A multi-node run is an *Indexed* Job: the completion index is the rank,
and every pod meets rank 0 at ``<job>-0.<job>`` through the headless Service, the
torchrun variables :mod:`workloads.common.dist` reads. Exit 143 (stopped by SIGTERM after
a checkpoint) is ignored by the pod failure policy so the retried pod resumes, as Batch's
retry strategy does.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import yaml

from mlhpc import contract, invocation
from mlhpc.errors import BackendUnsupported, JobNotFound
from mlhpc.invocation import RENDEZVOUS_PORT, RESUMABLE_EXIT_CODE
from mlhpc.spec import Efa, WorkloadArgs, WorkloadSpec
from mlhpc_app.aws.jobs import JobInfo

WORKLOAD_LABEL = "app.kubernetes.io/name"
RUN_ID_LABEL = "mlhpc/run-id"


def render(
    spec: WorkloadSpec,
    args: WorkloadArgs,
    *,
    name: str,
    run_id: str,
    image: str,
    nodes: int | None = None,
    namespace: str = "default",
    out_uri: str = "",
    checkpoint_uri: str = "",
) -> list[dict[str, Any]]:
    """Return the Kubernetes objects (Service if multi-node, then Job) for one run."""
    count = nodes or spec.resources.nodes
    if namespace != contract.EKS_JOB_NAMESPACE:
        raise BackendUnsupported(
            f"namespace {namespace!r} has no service account with AWS credentials: Jobs run as "
            f"{contract.EKS_JOB_SERVICE_ACCOUNT} in {contract.EKS_JOB_NAMESPACE!r}, which InferenceStack gives "
            "the job role through EKS Pod Identity (without it a pod cannot read or write S3)",
            fix=f"drop --namespace (or pass --namespace {contract.EKS_JOB_NAMESPACE})",
        )
    if count > 1 and not spec.distributed:
        raise BackendUnsupported(
            f"{spec.name} is not distributed; it cannot run on {count} pods", fix="drop --nodes"
        )
    res = spec.resources
    labels = {
        WORKLOAD_LABEL: spec.name,
        "app.kubernetes.io/managed-by": "mlhpc",
        RUN_ID_LABEL: run_id,
    }
    if res.whole_node:
        raise BackendUnsupported(
            f"{spec.name} asks for all GPUs of its node, and a Kubernetes pod must name a number",
            fix=f"submit it to Batch (`mlhpc submit {spec.name} --backend batch`), where the node size is known",
        )
    gpus = int(res.gpus_per_node)
    limits: dict[str, str] = {"cpu": str(res.vcpus_for(gpus)), "memory": f"{res.memory_mib_for(gpus)}Mi"}
    if gpus:
        limits["nvidia.com/gpu"] = str(gpus)
    if res.efa is not Efa.NONE:
        limits["vpc.amazonaws.com/efa"] = "1"
    run = invocation.RunOptions(out=out_uri or None, checkpoint_dir=checkpoint_uri or None)
    env: list[dict[str, Any]] = [{"name": "MLHPC_RUN_ID", "value": run_id}]
    if count > 1:
        env += [
            {
                "name": "RANK",
                "valueFrom": {
                    "fieldRef": {
                        "fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"
                    }
                },
            },
            {"name": "WORLD_SIZE", "value": str(count)},
            {"name": "MASTER_ADDR", "value": f"{name}-0.{name}.{namespace}.svc.cluster.local"},
            {"name": "MASTER_PORT", "value": str(RENDEZVOUS_PORT)},
        ]
    container: dict[str, Any] = {
        "name": spec.name.replace("_", "-"),
        "image": image,
        # command replaces the image's ENTRYPOINT (set to the same), args its CMD.
        "command": invocation.entrypoint(spec),
        "args": invocation.options(spec, args, run),
        "env": env,
        "resources": {"requests": dict(limits), "limits": dict(limits)},
        "volumeMounts": [{"name": "dshm", "mountPath": "/dev/shm"}],
        "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True},
    }
    if count > 1:
        container["ports"] = [{"containerPort": RENDEZVOUS_PORT, "name": "rendezvous"}]
    pod: dict[str, Any] = {
        # the account InferenceStack gives the job role by Pod Identity: the pod's only AWS credentials
        "serviceAccountName": contract.EKS_JOB_SERVICE_ACCOUNT,
        "restartPolicy": "Never",
        "containers": [container],
        "volumes": [{"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": f"{res.shm_size_mib}Mi"}}],
    }
    job_spec: dict[str, Any] = {
        "backoffLimit": 3,
        "activeDeadlineSeconds": res.timeout_s,
        "ttlSecondsAfterFinished": 86400,
        "podFailurePolicy": {
            "rules": [
                {
                    "action": "Ignore",
                    "onExitCodes": {
                        "containerName": container["name"],
                        "operator": "In",
                        "values": [RESUMABLE_EXIT_CODE],
                    },
                }
            ]
        },
        "template": {"metadata": {"labels": labels}, "spec": pod},
    }
    if count > 1:
        job_spec.update({"completionMode": "Indexed", "completions": count, "parallelism": count})
        pod["subdomain"] = name
    objects: list[dict[str, Any]] = []
    if count > 1:
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": name, "namespace": namespace, "labels": labels},
                "spec": {
                    "clusterIP": "None",
                    "selector": {"job-name": name},
                    "ports": [{"name": "rendezvous", "port": RENDEZVOUS_PORT}],
                },
            }
        )
    objects.append(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": job_spec,
        }
    )
    return objects


class _NoAliases(yaml.SafeDumper):
    """A dumper that writes repeated values out (kubectl users read manifests; anchors confuse them)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def to_yaml(objects: list[dict[str, Any]]) -> str:
    """Return the objects as one multi-document YAML manifest."""
    return yaml.dump_all(objects, Dumper=_NoAliases, sort_keys=False)


JOB_ID_PREFIX = "eks/"
CANCEL_ANNOTATION = "mlhpc/cancel-reason"
KUBECTL_TIMEOUT_S = 120
_HOW_TO_CONNECT = (
    "check `kubectl config current-context` points at the InferenceStack cluster "
    "(`aws eks update-kubeconfig --name CLUSTER`)"
)


def job_id(namespace: str, name: str) -> str:
    """Return the id `mlhpc status|logs|cancel` take for a Kubernetes Job: ``eks/NAMESPACE/NAME``.

    Neither a Batch job id (a UUID) nor a SageMaker training job name can hold a slash, so the id
    alone says which backend owns it.
    """
    return f"{JOB_ID_PREFIX}{namespace}/{name}"


def split_job_id(job: str) -> tuple[str, str]:
    """Return (namespace, name) of an ``eks/NAMESPACE/NAME`` id."""
    namespace, _, name = job.removeprefix(JOB_ID_PREFIX).partition("/")
    if not job.startswith(JOB_ID_PREFIX) or not namespace or not name or "/" in name:
        raise JobNotFound(
            f"'{job}' is not an EKS job id",
            fix="EKS job ids read eks/NAMESPACE/NAME (mlhpc submit prints them)",
        )
    return namespace, name


def kubectl(args: list[str], *, stdin: str | None = None, context: str | None = None, what: str) -> str:
    """Run kubectl; return its stdout (raise BackendUnsupported without kubectl or when it fails)."""
    binary = shutil.which("kubectl")
    if binary is None:
        raise BackendUnsupported(
            f"kubectl is not installed, so the eks backend cannot {what}",
            fix="install kubectl and run `aws eks update-kubeconfig --name CLUSTER`, or use --dry-run to print the manifest",
        )
    cmd = [binary, *args, *(["--context", context] if context else [])]
    done = subprocess.run(
        cmd, input=stdin, capture_output=True, text=True, check=False, timeout=KUBECTL_TIMEOUT_S
    )
    if done.returncode != 0:
        message = done.stderr.strip() or done.stdout.strip()
        if "NotFound" in message or "not found" in message:
            raise JobNotFound(
                f"kubectl {args[0]}: {message}", fix=f"check the id and namespace; {_HOW_TO_CONNECT}"
            )
        raise BackendUnsupported(f"kubectl {args[0]} failed: {message}", fix=_HOW_TO_CONNECT)
    return done.stdout


def apply(manifest: str, *, context: str | None = None) -> str:
    """Apply a manifest with kubectl; return its output (raise BackendUnsupported without kubectl)."""
    return kubectl(["apply", "-f", "-"], stdin=manifest, context=context, what="apply the Job").strip()


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def to_info(job: str, raw: dict[str, Any]) -> JobInfo:
    """Return a batch/v1 Job (``kubectl get job -o json``) as a JobInfo in Batch's status words."""
    meta, spec, status = raw.get("metadata", {}), raw.get("spec", {}), raw.get("status", {})
    labels, annotations = meta.get("labels") or {}, meta.get("annotations") or {}
    conditions = {c["type"]: c for c in status.get("conditions") or [] if c.get("status") == "True"}
    state, reason, stopped = ("RUNNING" if status.get("active") else "STARTING"), "", None
    if "Complete" in conditions:
        state, stopped = "SUCCEEDED", conditions["Complete"].get("lastTransitionTime")
    elif "Failed" in conditions:
        cond = conditions["Failed"]
        state, stopped = "FAILED", cond.get("lastTransitionTime")
        reason = ": ".join(x for x in (cond.get("reason"), cond.get("message")) if x)
    elif "Suspended" in conditions and CANCEL_ANNOTATION in annotations:
        # mlhpc cancel suspends the Job (its pods are stopped, its record and labels stay)
        state, stopped = "FAILED", conditions["Suspended"].get("lastTransitionTime")
        reason = f"cancelled: {annotations[CANCEL_ANNOTATION]}"
    return JobInfo(
        job_id=job,
        name=meta.get("name", ""),
        backend="eks",
        status=state,
        workload=labels.get(WORKLOAD_LABEL, ""),
        run_id=labels.get(RUN_ID_LABEL, ""),
        reason=reason,
        queue=meta.get("namespace", ""),
        created=_time(meta.get("creationTimestamp")),
        started=_time(status.get("startTime")),
        stopped=_time(status.get("completionTime") or stopped),
        nodes=int(spec.get("completions") or spec.get("parallelism") or 1),
        log_stream=f"job/{meta.get('name', '')}",  # PodLogs.stream
        attempts=int(status.get("failed") or 0) + int(bool(status.get("active") or status.get("succeeded"))),
    )


def describe(job: str) -> JobInfo:
    """Return the Job behind an ``eks/NAMESPACE/NAME`` id (``kubectl get job``)."""
    namespace, name = split_job_id(job)
    out = kubectl(["get", "job", name, "-n", namespace, "-o", "json"], what="read the Job")
    return to_info(job, json.loads(out))


def cancel(job: str, reason: str) -> JobInfo:
    """Suspend the Job (its pods stop; the Job and its labels stay for status and results); return it as it was."""
    before = describe(job)
    namespace, name = split_job_id(job)
    patch = {"metadata": {"annotations": {CANCEL_ANNOTATION: reason}}, "spec": {"suspend": True}}
    kubectl(
        ["patch", "job", name, "-n", namespace, "--type", "merge", "-p", json.dumps(patch)],
        what="stop the Job",
    )
    return before


@dataclass
class PodLogs:
    """New lines of the Job's (first) pod each :meth:`poll`, from ``kubectl logs job/NAME``."""

    job: str
    seen: int = 0
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=20))

    @property
    def stream(self) -> str:
        """The log this reader follows (the Job's, whatever pod runs it)."""
        return f"job/{split_job_id(self.job)[1]}"

    def poll(self) -> list[str]:
        """Return the lines written since the last poll (none while no pod has started)."""
        namespace, name = split_job_id(self.job)
        try:
            out = kubectl(["logs", f"job/{name}", "-n", namespace], what="read the Job's logs")
        except (JobNotFound, BackendUnsupported):
            return []  # no pod yet (kubectl: "waiting to start" or no pods found)
        lines = out.splitlines()
        new, self.seen = lines[self.seen :], len(lines)
        self.tail.extend(new)
        return new

"""Kubernetes: render a workload run as a batch/v1 Job (plus a headless Service when it spans pods).

One pod per node. A multi-node run is an *Indexed* Job: the completion index is the rank,
and every pod meets rank 0 at ``<job>-0.<job>`` through the headless Service, the
torchrun variables :mod:`workloads.common.dist` reads. Exit 143 (stopped by SIGTERM after
a checkpoint) is ignored by the pod failure policy so the retried pod resumes, as Batch's
retry strategy does.
"""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import yaml

from mlhpc import invocation
from mlhpc.errors import BackendUnsupported
from mlhpc.invocation import RENDEZVOUS_PORT, RESUMABLE_EXIT_CODE
from mlhpc.spec import Efa, WorkloadArgs, WorkloadSpec


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
    if count > 1 and not spec.distributed:
        raise BackendUnsupported(
            f"{spec.name} is not distributed; it cannot run on {count} pods", fix="drop --nodes"
        )
    res = spec.resources
    labels = {
        "app.kubernetes.io/name": spec.name,
        "app.kubernetes.io/managed-by": "mlhpc",
        "mlhpc/run-id": run_id,
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


def apply(manifest: str, *, context: str | None = None) -> str:
    """Apply a manifest with kubectl; return its output (raise BackendUnsupported without kubectl)."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise BackendUnsupported(
            "kubectl is not installed, so the eks backend cannot apply the Job",
            fix="install kubectl and run `aws eks update-kubeconfig --name CLUSTER`, or use --dry-run to print the manifest",
        )
    cmd = [kubectl, "apply", "-f", "-"] + (["--context", context] if context else [])
    done = subprocess.run(cmd, input=manifest, capture_output=True, text=True, check=False, timeout=120)
    if done.returncode != 0:
        raise BackendUnsupported(
            f"kubectl apply failed: {done.stderr.strip() or done.stdout.strip()}",
            fix="check `kubectl config current-context` points at the InferenceStack cluster "
            "(`aws eks update-kubeconfig --name CLUSTER`), or use --dry-run to print the manifest",
        )
    return done.stdout.strip()

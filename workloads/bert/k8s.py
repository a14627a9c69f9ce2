"""The BERT service's Kubernetes objects, rendered from typed settings (no cluster, no torch needed).

InferenceStack applies them through the cluster's manifest support, and ``python -m
mlhpc_app.cli.bert_deploy`` (``make submit-bert``) renders the same objects for ``kubectl apply``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

# The label and taint the Inferentia node group carries: only pods that tolerate the taint
# (the Neuron device plugin and Neuron workloads) are scheduled there.
NEURON_TAINT_KEY = "aws.amazon.com/neuron"
ACCELERATOR_LABEL = "mlhpc.io/accelerator"
NEURON_CORE_RESOURCE = "aws.amazon.com/neuroncore"
PORT = 8080
# The construct id InferenceStack applies service_objects() under (`cluster.add_manifest(MANIFEST_ID, ...)`);
# `mlhpc emulate eks` finds the manifest in the synthesized template by it.
MANIFEST_ID = "BertService"


@dataclass(frozen=True)
class ServiceSettings:
    """What the BERT Deployment runs and how it scales."""

    image: str
    model_uri: str
    accelerator: Literal["neuron", "cpu"] = "neuron"
    namespace: str = "bert"
    name: str = "bert"
    service_account: str = "bert"
    neuron_cores: int = 1
    replicas_min: int = 1
    replicas_max: int = 4
    target_cpu_percent: int = 70
    cpu: str = "2"
    memory_mib: int = 8192
    max_batch_size: int = 8
    max_wait_ms: float = 5.0
    max_length_tokens: int = 128
    irsa_role_arn: str | None = None  # None: EKS Pod Identity associates the role with the account
    labels: dict[str, str] = field(default_factory=dict)


class ServiceSection(Protocol):
    """What :func:`settings_for` reads of the config's ``inference.service`` section.

    ``mlhpc.config.inference.InferenceServiceConfig`` has these fields; it is named by shape, not
    imported, because the image copies no ``mlhpc/config`` (and needs none to serve).
    """

    @property
    def namespace(self) -> str: ...
    @property
    def model_prefix(self) -> str: ...
    @property
    def neuron_cores_per_pod(self) -> int: ...
    @property
    def replicas_min(self) -> int: ...
    @property
    def replicas_max(self) -> int: ...
    @property
    def max_batch_size(self) -> int: ...
    @property
    def target_cpu_percent(self) -> int: ...


def settings_for(service: ServiceSection, *, image: str, model_bucket: str) -> ServiceSettings:
    """Return the settings of the config's service: the one builder InferenceStack and `mlhpc emulate eks` use.

    ``image`` is the full reference (repository URI and the deployment's tag), ``model_bucket`` the
    datasets bucket's name; the model is the section's prefix in it.
    """
    return ServiceSettings(
        image=image,
        model_uri=f"s3://{model_bucket}/{service.model_prefix}",
        namespace=service.namespace,
        neuron_cores=service.neuron_cores_per_pod,
        replicas_min=service.replicas_min,
        replicas_max=service.replicas_max,
        max_batch_size=service.max_batch_size,
        target_cpu_percent=service.target_cpu_percent,
    )


def _labels(s: ServiceSettings) -> dict[str, str]:
    return {"app.kubernetes.io/name": s.name, "app.kubernetes.io/part-of": "mlhpc", **s.labels}


def namespace(s: ServiceSettings) -> dict[str, Any]:
    """Return the namespace object (restricted pod security: non-root, no privilege escalation)."""
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": s.namespace,
            "labels": {"pod-security.kubernetes.io/enforce": "restricted", **_labels(s)},
        },
    }


def service_account(s: ServiceSettings) -> dict[str, Any]:
    """Return the service account the pods run as (annotated for IRSA when a role ARN is given)."""
    meta: dict[str, Any] = {"name": s.service_account, "namespace": s.namespace, "labels": _labels(s)}
    if s.irsa_role_arn:
        meta["annotations"] = {"eks.amazonaws.com/role-arn": s.irsa_role_arn}
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta}


def deployment(s: ServiceSettings) -> dict[str, Any]:
    """Return the Deployment: probes, resource requests, and on Neuron the toleration and node selector."""
    labels = _labels(s)
    resources: dict[str, Any] = {
        "requests": {"cpu": s.cpu, "memory": f"{s.memory_mib}Mi"},
        "limits": {"memory": f"{s.memory_mib}Mi"},
    }
    pod: dict[str, Any] = {"serviceAccountName": s.service_account}
    if s.accelerator == "neuron":
        # Extended resources must be equal in requests and limits; the device plugin advertises them.
        resources["requests"][NEURON_CORE_RESOURCE] = str(s.neuron_cores)
        resources["limits"][NEURON_CORE_RESOURCE] = str(s.neuron_cores)
        pod["nodeSelector"] = {ACCELERATOR_LABEL: "neuron"}
        pod["tolerations"] = [{"key": NEURON_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}]
    probe_http = {"path": "/healthz", "port": "http"}
    container = {
        "name": "server",
        "image": s.image,
        "command": ["python", "-m", "workloads.bert.server"],
        "args": [
            "--model-uri",
            s.model_uri,
            "--port",
            str(PORT),
            "--device",
            "neuron" if s.accelerator == "neuron" else "cpu",
            "--max-batch-size",
            str(s.max_batch_size),
            "--max-wait-ms",
            str(s.max_wait_ms),
            "--max-length-tokens",
            str(s.max_length_tokens),
        ],
        "ports": [{"name": "http", "containerPort": PORT}],
        "env": [{"name": "MLHPC_MODEL_CACHE", "value": "/tmp/models"}],
        "resources": resources,
        # Loading the model (and compiling it for Neuron) takes a while: the startup probe allows
        # up to 10 minutes before liveness starts counting.
        "startupProbe": {"httpGet": probe_http, "periodSeconds": 10, "failureThreshold": 60},
        "readinessProbe": {"httpGet": probe_http, "periodSeconds": 5, "failureThreshold": 2},
        "livenessProbe": {
            "httpGet": probe_http,
            "periodSeconds": 15,
            "timeoutSeconds": 5,
            "failureThreshold": 4,
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "runAsNonRoot": True,
            "runAsUser": 1000,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    pod.update(
        {
            "containers": [container],
            "terminationGracePeriodSeconds": 30,
            "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "20Gi"}}],
        }
    )
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": s.name, "namespace": s.namespace, "labels": labels},
        "spec": {
            "replicas": s.replicas_min,
            "selector": {"matchLabels": {"app.kubernetes.io/name": s.name}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {"metadata": {"labels": labels}, "spec": pod},
        },
    }


def service(s: ServiceSettings) -> dict[str, Any]:
    """Return the ClusterIP Service in front of the pods (port 80 -> 8080)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": s.name, "namespace": s.namespace, "labels": _labels(s)},
        "spec": {
            "type": "ClusterIP",
            "selector": {"app.kubernetes.io/name": s.name},
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
        },
    }


def autoscaler(s: ServiceSettings) -> dict[str, Any]:
    """Return the HorizontalPodAutoscaler (CPU utilisation: the server's host threads track its load)."""
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": s.name, "namespace": s.namespace, "labels": _labels(s)},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": s.name},
            "minReplicas": s.replicas_min,
            "maxReplicas": s.replicas_max,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": s.target_cpu_percent},
                    },
                }
            ],
        },
    }


def disruption_budget(s: ServiceSettings) -> dict[str, Any]:
    """Return the PodDisruptionBudget: node drains never take the last ready replica."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": s.name, "namespace": s.namespace, "labels": _labels(s)},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app.kubernetes.io/name": s.name}}},
    }


def service_objects(s: ServiceSettings, *, with_namespace: bool = True) -> list[dict[str, Any]]:
    """Return every object of the service, namespace first (apply order)."""
    objects = [service_account(s), deployment(s), service(s), autoscaler(s), disruption_budget(s)]
    return ([namespace(s)] if with_namespace else []) + objects

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
GRACE_S = 30  # terminationGracePeriodSeconds: SIGKILL follows SIGTERM after it
DRAIN_DELAY_S = 5  # readiness 503 before the listener closes: endpoints update within a few seconds
DRAIN_TIMEOUT_S = 20  # the longest the server waits for accepted requests after the listener closes
METRICS_PATH = "/metrics"  # the server's Prometheus endpoint (workloads/bert/server.py)
# The server's own metrics the pods scale on (names as workloads/bert/server.py registers them).
QUEUE_METRIC = "bert_queued_pairs"
LATENCY_METRIC = "bert_request_latency_seconds"
# The labels the metrics collector gives every series it scrapes from a pod, from the pod's metadata
# (stacks/constructs/serving_metrics.py writes the relabelling; the queries below select by them).
SERIES_LABELS = {
    "namespace": "__meta_kubernetes_namespace",
    "app": "__meta_kubernetes_pod_label_app_kubernetes_io_name",
    "pod": "__meta_kubernetes_pod_name",
    "node": "__meta_kubernetes_pod_node_name",
}
# KEDA's API group: the ScaledObject and its TriggerAuthentication (custom resources of the KEDA chart).
KEDA_API = "keda.sh/v1alpha1"
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
    # Scaling on the server's own signals, read from Amazon Managed Service for Prometheus by KEDA:
    # the workspace's query endpoint and region. None (no workspace, e.g. a cluster without
    # InferenceStack's metrics): the CPU HorizontalPodAutoscaler instead.
    metrics_query_url: str | None = None
    metrics_region: str | None = None
    target_queue_pairs: int = 16  # queued pairs per replica the autoscaler aims at
    target_p99_ms: int = 250  # p99 request latency above which it adds replicas
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
    @property
    def target_queue_pairs_per_replica(self) -> int: ...
    @property
    def target_p99_latency_ms(self) -> int: ...


def settings_for(
    service: ServiceSection,
    *,
    image: str,
    model_bucket: str,
    metrics_query_url: str | None = None,
    metrics_region: str | None = None,
) -> ServiceSettings:
    """Return the settings of the config's service: the one builder InferenceStack and `mlhpc emulate eks` use.

    ``image`` is the full reference (repository URI, the deployment's tag and the node family's
    variant), ``model_bucket`` the datasets bucket's name; the model is the section's prefix in it.
    ``metrics_query_url``/``metrics_region``: the Prometheus workspace KEDA scales from (None: CPU HPA).
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
        metrics_query_url=metrics_query_url,
        metrics_region=metrics_region,
        target_queue_pairs=service.target_queue_pairs_per_replica,
        target_p99_ms=service.target_p99_latency_ms,
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
            # on SIGTERM: readiness fails at once, the listener closes DRAIN_DELAY_S later (the Service
            # stops sending), then every accepted request is answered, all within the grace period
            "--drain-delay-s",
            str(DRAIN_DELAY_S),
            "--drain-timeout-s",
            str(DRAIN_TIMEOUT_S),
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
            "terminationGracePeriodSeconds": GRACE_S,
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
            "template": {"metadata": {"labels": labels, "annotations": scrape_annotations()}, "spec": pod},
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


def scrape_annotations(port: int = PORT, path: str = METRICS_PATH) -> dict[str, str]:
    """Return the pod annotations the metrics collector keeps pods by (see stacks/constructs/serving_metrics.py)."""
    return {"prometheus.io/scrape": "true", "prometheus.io/port": str(port), "prometheus.io/path": path}


def autoscaler(s: ServiceSettings) -> dict[str, Any]:
    """Return the CPU HorizontalPodAutoscaler: the fallback where no Prometheus workspace is configured."""
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


def queue_query(s: ServiceSettings) -> str:
    """Return the PromQL of the pairs waiting for a batch, summed over the service's pods."""
    return f'sum({QUEUE_METRIC}{{namespace="{s.namespace}",app="{s.name}"}})'


def p99_query(s: ServiceSettings) -> str:
    """Return the PromQL of the service's p99 request latency (seconds) over the last two minutes."""
    return (
        f"histogram_quantile(0.99, sum by (le) "
        f'(rate({LATENCY_METRIC}_bucket{{namespace="{s.namespace}",app="{s.name}"}}[2m])))'
    )


def trigger_authentication(s: ServiceSettings) -> dict[str, Any]:
    """Return KEDA's TriggerAuthentication: SigV4 to the workspace with the KEDA operator's own role.

    ``podIdentity.provider: aws`` signs the queries with the credentials EKS Pod Identity gives the
    operator's service account (InferenceStack grants that role aps:QueryMetrics on the one workspace).
    """
    return {
        "apiVersion": KEDA_API,
        "kind": "TriggerAuthentication",
        "metadata": {"name": f"{s.name}-prometheus", "namespace": s.namespace, "labels": _labels(s)},
        "spec": {"podIdentity": {"provider": "aws"}},
    }


def scaled_object(s: ServiceSettings) -> dict[str, Any]:
    """Return KEDA's ScaledObject: replicas from queue depth per replica and p99 latency, not CPU.

    Queue depth is the direct signal (pairs waiting means the replicas are not keeping up);
    p99 catches the case a deep queue does not (long inputs, a slow NeuronCore). The HPA KEDA
    makes takes the larger of the two answers. Scale-down waits five minutes, so a lull between
    bursts does not cost a Neuron model load (minutes) on the next burst.
    """
    assert s.metrics_query_url and s.metrics_region, "scaled_object needs a Prometheus workspace"
    auth = {"name": f"{s.name}-prometheus"}

    def trigger(name: str, query: str, threshold: str, metric_type: str) -> dict[str, Any]:
        return {
            "type": "prometheus",
            "name": name,
            "metricType": metric_type,
            "metadata": {
                "serverAddress": s.metrics_query_url,
                "query": query,
                "threshold": threshold,
                "awsRegion": s.metrics_region,
                # an empty result (no pod has served yet) reads as 0, not as an error
                "ignoreNullValues": "true",
            },
            "authenticationRef": auth,
        }

    return {
        "apiVersion": KEDA_API,
        "kind": "ScaledObject",
        "metadata": {"name": s.name, "namespace": s.namespace, "labels": _labels(s)},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": s.name},
            "minReplicaCount": s.replicas_min,
            "maxReplicaCount": s.replicas_max,
            "pollingInterval": 15,
            "cooldownPeriod": 300,
            "advanced": {
                "horizontalPodAutoscalerConfig": {
                    "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300}},
                },
            },
            "triggers": [
                # AverageValue: desired replicas = total queued pairs / target per replica
                trigger("queue-depth", queue_query(s), str(s.target_queue_pairs), "AverageValue"),
                # Value: desired = current replicas x p99 / target
                trigger("p99-latency", p99_query(s), f"{s.target_p99_ms / 1000:g}", "Value"),
            ],
        },
    }


def disruption_budget(s: ServiceSettings) -> dict[str, Any]:
    """Return the PodDisruptionBudget: voluntary disruptions (drains, scale-down) take one replica at a time.

    ``maxUnavailable: 1`` rather than ``minAvailable: 1``: with a single replica the latter would
    forbid every eviction, so the Cluster Autoscaler could never empty a Neuron node and a node
    group upgrade would stall until EKS forced it. One at a time, each evicted pod finishing its
    batch in flight (SIGTERM, then the grace period), keeps the others serving.
    """
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": s.name, "namespace": s.namespace, "labels": _labels(s)},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app.kubernetes.io/name": s.name}}},
    }


def service_objects(s: ServiceSettings, *, with_namespace: bool = True) -> list[dict[str, Any]]:
    """Return every object of the service, namespace first (apply order).

    With a Prometheus workspace the pods scale with KEDA (TriggerAuthentication + ScaledObject, the
    KEDA chart's custom resources); without one, with the CPU HorizontalPodAutoscaler.
    """
    scaling = [trigger_authentication(s), scaled_object(s)] if s.metrics_query_url else [autoscaler(s)]
    objects = [service_account(s), deployment(s), service(s), *scaling, disruption_budget(s)]
    return ([namespace(s)] if with_namespace else []) + objects

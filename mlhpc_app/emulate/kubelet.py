"""One pod of a Deployment, run on this machine the way the kubelet runs it: env, probes, requests, SIGTERM.

What the kubelet (and the container runtime under it) does with a pod's container, and what is
done here instead:

* **argv**: ``command`` replaces the image's ENTRYPOINT and ``args`` its CMD
  (:meth:`~mlhpc_app.emulate.image.Image.kubernetes_argv`); ``$(VAR)`` references in them are
  expanded from the container's ``env`` and the Services' variables (not the image's ENV, which
  the kubelet never sees), ``$$(VAR)`` staying ``$(VAR)`` and an unknown one as written;
  ``python`` is this interpreter and ``PYTHONPATH`` the repository (the emulation runs in the
  project's environment, not in the image).
* **environment**: the image's ENV, then the variables of every Service of the pod's namespace
  (``enableServiceLinks``: ``BERT_SERVICE_HOST``, ``BERT_PORT=tcp://…``, and ``KUBERNETES_*``;
  the ClusterIPs are stand-ins no packet reaches here), then the container's ``env`` in order, its
  ``valueFrom.fieldRef`` filled as the kubelet fills them (``metadata.name`` is the pod's name,
  ``status.podIP`` 127.0.0.1), ``resourceFieldRef`` from the container's limits (else this
  machine's), ``configMapKeyRef`` from a ConfigMap of the same manifest. ``HOSTNAME`` is the pod's
  name. Secrets are not emulated: an ``env`` taking one is refused.
* **volumes**: every ``volumeMounts`` path (an ``emptyDir`` in the BERT pod: ``/tmp``), the
  private ``/tmp`` and WORKDIR are directories under the pod's directory; argv and env values under
  them are rewritten, ``TMPDIR`` points at the pod's ``/tmp``.
* **network**: the pod's IP is loopback. Each ``containerPort`` is mapped to a free local port, and
  the argv option (``--port 8080``, ``--port=8080``) or variable (``*PORT*=8080``) naming it is
  rewritten to it, as are the probes' ports (by name or number); requests go to the port the
  pod's Service targets. Where the service has an option choosing its listening address, it is
  set to 127.0.0.1, so nothing listens beyond this machine.
* **probes**: the startupProbe first, then the readinessProbe, each probed at
  ``initialDelaySeconds`` and then every ``periodSeconds`` (a ticker, not a sleep after each
  probe), each probe with ``timeoutSeconds``; ``successThreshold`` consecutive successes pass it,
  ``failureThreshold`` consecutive failures fail it. httpGet succeeds on a status from 200 to 399
  (the kubelet's rule), tcpSocket on a connection, exec on exit 0. A failed startup probe is where
  the kubelet kills and restarts the container; a failed readiness probe leaves the pod NotReady
  (no Service sends it traffic, and the kubelet keeps probing): either ends the emulation as
  failed. ``probe_scale`` multiplies delays and periods (not timeouts), an emulation-only change
  for tests; the thresholds keep their meaning.
* **stopping**: the preStop hook (if any), then SIGTERM to the container's main process (the one
  the runtime signals), then SIGKILL to the whole process group once
  ``terminationGracePeriodSeconds`` (counted from the preStop hook's start) have passed: a
  container killed so is reported as failing to stop in time.

Not emulated: the resource limits (reported, not enforced), ``securityContext`` (the process runs
as this user), init and sidecar containers, restarts.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import math
import os
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlhpc.errors import BackendUnsupported
from mlhpc_app.emulate import runtime
from mlhpc_app.emulate.image import Image

POD_IP = runtime.LOOPBACK
NODE_NAME = "emulated-node"
PROBE_AGENT = "kube-probe/1.35"  # the User-Agent the kubelet's HTTP probes send
REQUEST_TIMEOUT_S = 60.0
STOP_POLL_S = 0.05
# Probe fields the API server defaults when the manifest leaves them out.
PROBE_DEFAULTS = {
    "initialDelaySeconds": 0,
    "periodSeconds": 10,
    "timeoutSeconds": 1,
    "successThreshold": 1,
    "failureThreshold": 3,
}
DEFAULT_GRACE_S = 30.0  # terminationGracePeriodSeconds when the pod gives none
PROBE_ORDER = ("startup", "readiness", "liveness")


# --- the manifest ------------------------------------------------------------------------------


def deployments(objects: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Return the Deployments among a manifest's objects."""
    return [dict(o) for o in objects if o.get("kind") == "Deployment"]


def pod_template(deployment: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return (pod metadata, pod spec) of a Deployment's template."""
    template = (deployment.get("spec") or {}).get("template") or {}
    return dict(template.get("metadata") or {}), dict(template.get("spec") or {})


def pod_name(deployment: Mapping[str, Any]) -> str:
    """Return a name shaped as the ReplicaSet controller names a pod: ``<deployment>-<template hash>-<random>``."""
    template = json.dumps((deployment.get("spec") or {}).get("template") or {}, sort_keys=True)
    digest = hashlib.sha256(template.encode()).hexdigest()
    suffix = "".join(
        secrets.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5)
    )  # the API server's alphabet
    return f"{deployment['metadata']['name']}-{digest[:10]}-{suffix}"


def _matches(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def services_of(objects: Sequence[Mapping[str, Any]], namespace: str) -> list[dict[str, Any]]:
    """Return the Services of a namespace among a manifest's objects (in order)."""
    return [
        dict(o)
        for o in objects
        if o.get("kind") == "Service" and (o.get("metadata") or {}).get("namespace", "default") == namespace
    ]


def _env_name(name: str) -> str:
    return re.sub(r"[^A-Z0-9_]", "_", name.upper())


def service_links(services: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Return the variables the kubelet gives a pod for its namespace's Services (and the API server's)."""
    env: dict[str, str] = {}
    entries: list[tuple[str, str, list[dict[str, Any]]]] = [
        ("kubernetes", "10.100.0.1", [{"name": "https", "port": 443, "protocol": "TCP"}])
    ]
    for i, svc in enumerate(services):
        entries.append(
            (svc["metadata"]["name"], f"10.100.0.{10 + i}", (svc.get("spec") or {}).get("ports") or [])
        )
    for name, ip, ports in entries:
        if not ports:
            continue
        prefix = _env_name(name)
        first = ports[0]
        env[f"{prefix}_SERVICE_HOST"] = ip
        env[f"{prefix}_SERVICE_PORT"] = str(first["port"])
        for port in ports:
            proto = str(port.get("protocol", "TCP"))
            if port.get("name"):
                env[f"{prefix}_SERVICE_PORT_{_env_name(port['name'])}"] = str(port["port"])
            base = f"{prefix}_PORT_{port['port']}_{proto}"
            env[base] = f"{proto.lower()}://{ip}:{port['port']}"
            env[f"{base}_PROTO"] = proto.lower()
            env[f"{base}_PORT"] = str(port["port"])
            env[f"{base}_ADDR"] = ip
        env[f"{prefix}_PORT"] = f"{str(first.get('protocol', 'TCP')).lower()}://{ip}:{first['port']}"
    return env


def expand(text: str, env: Mapping[str, str]) -> str:
    """Expand ``$(VAR)`` as the kubelet does: ``$$`` is ``$``, an unknown name stays as written."""
    out: list[str] = []
    i = 0
    while i < len(text):
        if text.startswith("$$", i):
            out.append("$")
            i += 2
            continue
        if text.startswith("$(", i):
            end = text.find(")", i + 2)
            name = text[i + 2 : end] if end > 0 else ""
            if name and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", name):
                out.append(env.get(name, f"$({name})"))
                i = end + 1
                continue
        out.append(text[i])
        i += 1
    return "".join(out)


def _quantity(text: str) -> float:
    """Return a Kubernetes quantity (``2``, ``500m``, ``8192Mi``, ``1G``) as a number."""
    units = {
        "m": 1e-3,
        "k": 1e3,
        "M": 1e6,
        "G": 1e9,
        "T": 1e12,
        "Ki": 2**10,
        "Mi": 2**20,
        "Gi": 2**30,
        "Ti": 2**40,
    }
    match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(text).strip())
    if not match or (match.group(2) and match.group(2) not in units):
        raise ValueError(f"'{text}' is not a Kubernetes quantity")
    return float(match.group(1)) * units.get(match.group(2), 1.0)


def _machine_resources() -> dict[str, float]:
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 0
    cpus = float(os.cpu_count() or 1)
    return {"cpu": cpus, "memory": float(pages), "ephemeral-storage": 0.0}


def _resource_field(ref: Mapping[str, Any], container: Mapping[str, Any]) -> str:
    kind, _, resource = str(ref["resource"]).partition(".")
    given = ((container.get("resources") or {}).get(kind) or {}).get(resource)
    if given is None and kind == "requests":
        given = ((container.get("resources") or {}).get("limits") or {}).get(resource)
    value = _quantity(given) if given is not None else _machine_resources().get(resource, 0.0)
    divisor = _quantity(ref.get("divisor", "1"))
    return str(math.ceil(value / divisor))  # the kubelet rounds up (a CPU limit of 500m is "1")


@dataclass(frozen=True)
class PodIdentity:
    """What the downward API tells a pod about itself."""

    name: str
    namespace: str
    uid: str
    labels: dict[str, str]
    annotations: dict[str, str]
    service_account: str

    def field(self, path: str) -> str:
        """Return a ``fieldRef.fieldPath`` value as the kubelet fills it."""
        simple = {
            "metadata.name": self.name,
            "metadata.namespace": self.namespace,
            "metadata.uid": self.uid,
            "spec.nodeName": NODE_NAME,
            "spec.serviceAccountName": self.service_account,
            "status.podIP": POD_IP,
            "status.podIPs": POD_IP,
            "status.hostIP": POD_IP,
            "status.hostIPs": POD_IP,
        }
        if path in simple:
            return simple[path]
        match = re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", path)
        if match:
            return (self.labels if match.group(1) == "labels" else self.annotations).get(match.group(2), "")
        raise BackendUnsupported(
            f"the container's env reads fieldRef {path}, which the kubelet does not offer",
            fix="use metadata.name, metadata.namespace, metadata.uid, metadata.labels['KEY'], spec.nodeName, "
            "spec.serviceAccountName, status.podIP or status.hostIP",
        )


def container_env(
    container: Mapping[str, Any],
    identity: PodIdentity,
    *,
    objects: Sequence[Mapping[str, Any]],
    inherited: Mapping[str, str],
) -> dict[str, str]:
    """Return the container's ``envFrom`` and ``env`` as the kubelet resolves them over ``inherited``."""
    config_maps = {
        (o["metadata"]["name"]): {str(k): str(v) for k, v in (o.get("data") or {}).items()}
        for o in objects
        if o.get("kind") == "ConfigMap"
        and (o.get("metadata") or {}).get("namespace", "default") == identity.namespace
    }

    def config_map(name: str, *, optional: bool) -> dict[str, str]:
        if name not in config_maps and not optional:
            raise BackendUnsupported(
                f"the container reads ConfigMap {name}, which the manifest does not define",
                fix="add the ConfigMap to the manifest, or mark the reference optional",
            )
        return config_maps.get(name, {})

    env = dict(inherited)
    for source in container.get("envFrom") or []:
        if "configMapRef" in source:
            ref = source["configMapRef"]
            prefix = source.get("prefix", "")
            env.update(
                {
                    prefix + k: v
                    for k, v in config_map(ref["name"], optional=ref.get("optional", False)).items()
                }
            )
        else:
            raise BackendUnsupported(
                f"the container's envFrom takes {', '.join(source)}; the emulator reads ConfigMaps of the manifest only",
                fix="Secrets are not emulated: give the value in env for the emulation",
            )
    for entry in container.get("env") or []:
        name = entry["name"]
        if "valueFrom" not in entry:
            env[name] = expand(str(entry.get("value", "")), env)
            continue
        source = entry["valueFrom"]
        if "fieldRef" in source:
            env[name] = identity.field(source["fieldRef"]["fieldPath"])
        elif "resourceFieldRef" in source:
            env[name] = _resource_field(source["resourceFieldRef"], container)
        elif "configMapKeyRef" in source:
            ref = source["configMapKeyRef"]
            data = config_map(ref["name"], optional=ref.get("optional", False))
            if ref["key"] in data:
                env[name] = data[ref["key"]]
            elif not ref.get("optional", False):
                raise BackendUnsupported(
                    f"env {name} reads key {ref['key']} of ConfigMap {ref['name']}, which has no such key",
                    fix=f"add {ref['key']} to the ConfigMap's data",
                )
        else:
            raise BackendUnsupported(
                f"env {name} takes its value from {', '.join(source)}; Secrets are not emulated",
                fix=f"give {name} a value for the emulation (or read it from a ConfigMap of the manifest)",
            )
    return env


# --- probes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Handler:
    """A probe's or hook's action: an HTTP GET, a TCP connection or a command in the container."""

    kind: str  # httpGet, tcpSocket, exec
    port: int = 0  # the local port (mapped from the container's)
    path: str = "/"
    scheme: str = "HTTP"
    headers: tuple[tuple[str, str], ...] = ()
    command: tuple[str, ...] = ()

    def describe(self) -> str:
        """Return the handler as a person reads it."""
        if self.kind == "httpGet":
            return f"GET {self.scheme.lower()}://{POD_IP}:{self.port}{self.path}"
        if self.kind == "tcpSocket":
            return f"TCP {POD_IP}:{self.port}"
        return "exec " + " ".join(self.command)

    def check(self, timeout_s: float, *, env: Mapping[str, str], cwd: Path) -> tuple[bool, str]:
        """Run it once; return (succeeded, what the kubelet would say)."""
        if self.kind == "httpGet":
            return self._http(timeout_s)
        if self.kind == "tcpSocket":
            try:
                with socket.create_connection((POD_IP, self.port), timeout=timeout_s):
                    return True, "connected"
            except OSError as err:
                return False, f"dial tcp {POD_IP}:{self.port}: {_os_reason(err)}"
        try:
            done = subprocess.run(
                list(self.command),
                env=dict(env),
                cwd=cwd,
                capture_output=True,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return False, f"command timed out after {timeout_s:g} s"
        except OSError as err:
            return False, f"exec failed: {err}"
        output = (done.stdout + done.stderr).decode(errors="replace").strip()[-200:]
        return done.returncode == 0, f"exit code {done.returncode}" + (f": {output}" if output else "")

    def _http(self, timeout_s: float) -> tuple[bool, str]:
        url = f"{self.scheme.lower()}://{POD_IP}:{self.port}{self.path}"
        conn_class = (
            http.client.HTTPSConnection if self.scheme.upper() == "HTTPS" else http.client.HTTPConnection
        )
        kwargs: dict[str, Any] = {"timeout": timeout_s}
        if conn_class is http.client.HTTPSConnection:
            import ssl

            kwargs["context"] = ssl._create_unverified_context()  # the kubelet skips verification too
        conn = conn_class(POD_IP, self.port, **kwargs)
        try:
            headers = {
                "User-Agent": PROBE_AGENT,
                "Accept": "*/*",
                "Connection": "close",
                **dict(self.headers),
            }
            conn.request("GET", self.path, headers=headers)
            response = conn.getresponse()
            response.read(10 * 1024)  # the kubelet reads at most 10 KiB of the body
        except TimeoutError:
            return (
                False,
                f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)',
            )
        except (OSError, http.client.HTTPException) as err:
            return False, f'Get "{url}": dial tcp {POD_IP}:{self.port}: {_os_reason(err)}'
        finally:
            conn.close()
        if 200 <= response.status < 400:
            return True, f"HTTP {response.status}"
        return False, f"HTTP probe failed with statuscode: {response.status}"


def _os_reason(err: BaseException) -> str:
    if isinstance(err, ConnectionRefusedError):
        return "connect: connection refused"
    if isinstance(err, TimeoutError | socket.timeout):
        return "i/o timeout"
    return str(err) or type(err).__name__


@dataclass(frozen=True)
class Probe:
    """A probe of the container, with the API server's defaults filled and the emulation's scale applied."""

    kind: str  # startup, readiness, liveness
    handler: Handler
    initial_delay_s: float
    period_s: float
    timeout_s: float
    success_threshold: int
    failure_threshold: int
    written: dict[str, Any] = field(default_factory=dict)  # the manifest's fields, unscaled

    def describe(self) -> str:
        """Return the probe as a person reads it (the manifest's numbers)."""
        w = {**PROBE_DEFAULTS, **self.written}
        return (
            f"{self.kind} probe {self.handler.describe()} every {w['periodSeconds']} s, "
            f"failureThreshold {w['failureThreshold']}"
        )


def _handler(spec: Mapping[str, Any], ports: Mapping[str | int, int], where: str) -> Handler:
    def port_of(value: Any) -> int:
        if value in ports:
            return ports[value]
        if isinstance(value, int) or str(value).isdigit():
            return int(value)  # a port no containerPort declares: probed where it says
        raise BackendUnsupported(
            f"the {where} names port '{value}', which no containerPort of the container is named",
            fix=f"name a containerPort '{value}', or give the probe a port number",
        )

    if "httpGet" in spec:
        get = spec["httpGet"]
        return Handler(
            kind="httpGet", port=port_of(get["port"]), path=str(get.get("path", "/")),
            scheme=str(get.get("scheme", "HTTP")),
            headers=tuple((h["name"], h["value"]) for h in get.get("httpHeaders") or []),
        )  # fmt: skip
    if "tcpSocket" in spec:
        return Handler(kind="tcpSocket", port=port_of(spec["tcpSocket"]["port"]))
    if "exec" in spec:
        return Handler(kind="exec", command=tuple(str(c) for c in spec["exec"].get("command") or []))
    raise BackendUnsupported(
        f"the {where} is neither httpGet, tcpSocket nor exec ({', '.join(spec) or 'empty'})",
        fix="grpc probes are not emulated yet; use httpGet, tcpSocket or exec",
    )


def probe(kind: str, spec: Mapping[str, Any], ports: Mapping[str | int, int], *, scale: float = 1.0) -> Probe:
    """Return a probe of the manifest with the API server's defaults (and delays and periods times ``scale``)."""
    w = {**PROBE_DEFAULTS, **{k: v for k, v in spec.items() if k in PROBE_DEFAULTS}}
    return Probe(
        kind=kind,
        handler=_handler(spec, ports, f"{kind} probe"),
        initial_delay_s=float(w["initialDelaySeconds"]) * scale,
        period_s=float(w["periodSeconds"]) * scale,
        timeout_s=float(w["timeoutSeconds"]),
        success_threshold=int(w["successThreshold"]),
        failure_threshold=int(w["failureThreshold"]),
        written={k: v for k, v in spec.items() if k in PROBE_DEFAULTS},
    )


# --- the container's start --------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """One request sent to the service once it is ready."""

    method: str
    path: str
    body: dict[str, Any] | None = None


@dataclass(frozen=True)
class Rewrites:
    """Emulation-only changes to the container's argv a service may need on this machine."""

    bind_option: str | None = None  # the option choosing the listening address: set to 127.0.0.1
    accelerator_resource: str | None = None  # an extended resource this machine may lack ...
    accelerator_device: str | None = None  # ... the device file that would show it (e.g. /dev/neuron0)
    device_option: str | None = None  # ... and then this option's value becomes cpu


@dataclass
class PodStart:
    """How the pod's container starts here, and what the kubelet would check of it."""

    name: str
    namespace: str
    container: str
    argv: list[str]
    image_argv: list[str]  # what the container runs, before the emulation's rewrites
    env: dict[str, str]
    cwd: Path
    log: Path
    ports: dict[int, int]  # containerPort -> local port
    request_port: int
    probes: dict[str, Probe]
    grace_s: float
    pre_stop: Handler | None = None
    notes: list[str] = field(default_factory=list)


def _option_value(argv: list[str], option: str) -> int | None:
    """Return the index of an option's value in argv (``--opt VALUE`` or ``--opt=VALUE``), else None."""
    for i, part in enumerate(argv):
        if part == option and i + 1 < len(argv):
            return i + 1
        if part.startswith(option + "="):
            return i
    return None


def option_value(argv: Sequence[str], option: str) -> str | None:
    """Return an option's value in argv (``--opt VALUE`` or ``--opt=VALUE``), else None."""
    i = _option_value(list(argv), option)
    if i is None:
        return None
    return argv[i].partition("=")[2] if argv[i].startswith(option + "=") else argv[i]


def _set_option(argv: list[str], option: str, value: str, *, append: bool) -> list[str]:
    out = list(argv)
    i = _option_value(out, option)
    if i is None:
        return [*out, option, value] if append else out
    out[i] = f"{option}={value}" if out[i].startswith(option + "=") else value
    return out


def map_port(
    argv: list[str], env: dict[str, str], container_port: int, local: int
) -> tuple[list[str], dict[str, str], bool]:
    """Rewrite where argv and env name a listening port: ``--*port* N``, ``--*port*=N``, ``*PORT*=N``."""
    out, found, text = list(argv), False, str(container_port)
    for i, part in enumerate(out):
        if i > 0 and part == text and out[i - 1].startswith("-") and "port" in out[i - 1].lower():
            out[i], found = str(local), True
        elif part.startswith("-") and "port" in part.partition("=")[0].lower() and part.endswith("=" + text):
            out[i], found = f"{part.partition('=')[0]}={local}", True
    new_env = dict(env)
    for key, value in env.items():
        if "PORT" in key.upper() and value == text:
            new_env[key], found = str(local), True
    return out, new_env, found


def pod_start(
    deployment: Mapping[str, Any],
    image: Image,
    *,
    root: Path,
    repo: Path,
    objects: Sequence[Mapping[str, Any]] = (),
    extra_env: Mapping[str, str] | None = None,
    probe_scale: float = 1.0,
    rewrites: Rewrites = Rewrites(),
    free_port: Callable[[], int] | None = None,
    name: str | None = None,
) -> PodStart:
    """Return how the Deployment's pod starts here: argv, env, directories, ports, probes and grace.

    ``extra_env`` is added last (the emulation's S3 endpoint and fake credentials, where the pod
    would get credentials from EKS Pod Identity).
    """
    from workloads.common.dist import free_port as pick_port

    meta, spec = pod_template(deployment)
    containers = spec.get("containers") or []
    if len(containers) != 1 or spec.get("initContainers"):
        raise BackendUnsupported(
            f"Deployment {deployment['metadata']['name']} has {len(containers)} containers"
            + (" and init containers" if spec.get("initContainers") else "")
            + "; `mlhpc emulate eks` runs a pod of one container",
            fix="emulate a Deployment of one container (sidecars and init containers are not emulated yet)",
        )
    (container,) = containers
    namespace = str(deployment["metadata"].get("namespace", "default"))
    name = name or pod_name(deployment)
    pod_dir = root / f"{namespace}-{name}"
    identity = PodIdentity(
        name=name, namespace=namespace, uid=hashlib.sha256(name.encode()).hexdigest()[:32],
        labels=dict(meta.get("labels") or {}), annotations=dict(meta.get("annotations") or {}),
        service_account=str(spec.get("serviceAccountName", "default")),
    )  # fmt: skip
    notes: list[str] = []
    mapping = {"/tmp": pod_dir / "tmp"}
    if image.workdir != "/":
        mapping[image.workdir] = pod_dir / "workdir"
    volumes = {v["name"]: v for v in spec.get("volumes") or []}
    for mount in container.get("volumeMounts") or []:
        mapping[mount["mountPath"]] = pod_dir / "volumes" / mount["name"]
        kind = next((k for k in volumes.get(mount["name"], {}) if k != "name"), "volume")
        if kind != "emptyDir":
            notes.append(
                f"volume {mount['name']} ({kind}) at {mount['mountPath']} is an empty directory here"
            )

    # what the kubelet gives the runtime: the Services' variables and the container's env, in which
    # $(VAR) is expanded (the image's ENV is the runtime's, beneath them and not seen by the expansion)
    declared = container_env(
        container, identity, objects=objects, inherited=service_links(services_of(objects, namespace))
    )
    env = {**runtime.base_environment(pod_dir / "home"), "HOSTNAME": name, **image.env, **declared}
    image_argv = image.kubernetes_argv(
        [expand(str(c), declared) for c in container.get("command") or []],
        [expand(str(a), declared) for a in container.get("args") or []],
    )
    argv = [runtime.rewrite(part, mapping) for part in image_argv]
    if argv[:1] == ["python"]:
        argv[0] = sys.executable
    env = {k: runtime.rewrite(v, mapping) for k, v in env.items()}
    env["PYTHONPATH"] = str(repo)  # the image's copy of the code is the repository here
    env["TMPDIR"] = str(runtime.rewrite("/tmp", mapping))
    env.update(extra_env or {})

    ports: dict[str | int, int] = {}
    local_ports: dict[int, int] = {}
    for port in container.get("ports") or []:
        cport = int(port["containerPort"])
        local = (free_port or pick_port)()
        argv, env, found = map_port(argv, env, cport, local)
        if not found:
            local = cport
            notes.append(
                f"nothing in the container's args or env names port {cport}: probed and sent to {cport} as is"
            )
        else:
            notes.append(
                f"containerPort {cport} is local port {local} (the option or variable naming it rewritten)"
            )
        local_ports[cport] = local
        ports[cport] = local
        if port.get("name"):
            ports[str(port["name"])] = local
    if rewrites.bind_option:
        argv = _set_option(argv, rewrites.bind_option, POD_IP, append=True)
        notes.append(f"{rewrites.bind_option} {POD_IP}: the pod's address is loopback here")
    requested = {
        **((container.get("resources") or {}).get("requests") or {}),
        **((container.get("resources") or {}).get("limits") or {}),
    }
    if (
        rewrites.accelerator_resource in requested
        and rewrites.device_option
        and not (rewrites.accelerator_device and Path(rewrites.accelerator_device).exists())
    ):
        argv = _set_option(argv, rewrites.device_option, "cpu", append=False)
        notes.append(
            f"the pod asks for {rewrites.accelerator_resource}: {requested[rewrites.accelerator_resource]} and this "
            f"machine has none ({rewrites.accelerator_device} is absent): {rewrites.device_option} cpu, an "
            "emulation-only change"
        )
    if requested:
        shown = ", ".join(f"{k}: {v}" for k, v in requested.items())
        notes.append(f"resources ({shown}) are reported, not enforced")
    user = (container.get("securityContext") or {}).get("runAsUser") or image.user
    if user is not None:
        notes.append(f"the container runs as user {user}; the emulation runs as this user")

    probes = {
        kind: probe(kind, container[f"{kind}Probe"], ports, scale=probe_scale)
        for kind in PROBE_ORDER
        if container.get(f"{kind}Probe")
    }
    if probe_scale != 1.0 and probes:
        notes.append(
            f"--probe-scale {probe_scale:g}: probe delays and periods x {probe_scale:g} (thresholds kept)"
        )
    pre_stop = ((container.get("lifecycle") or {}).get("preStop")) or None
    cwd = Path(runtime.rewrite(str(container.get("workingDir") or image.workdir), mapping))
    if cwd == Path("/"):
        cwd = pod_dir / "workdir"
    for path in (*mapping.values(), pod_dir / "home", cwd):
        path.mkdir(parents=True, exist_ok=True)
    grace = spec.get("terminationGracePeriodSeconds")
    return PodStart(
        name=name,
        namespace=namespace,
        container=str(container.get("name", "")),
        argv=argv,
        image_argv=image_argv,
        env=env,
        cwd=cwd,
        log=pod_dir / "log.txt",
        ports=local_ports,
        request_port=_request_port(objects, namespace, identity.labels, ports, local_ports),
        probes=probes,
        grace_s=float(DEFAULT_GRACE_S if grace is None else grace),
        pre_stop=_handler(pre_stop, ports, "preStop hook") if pre_stop else None,
        notes=notes,
    )


def _request_port(
    objects: Sequence[Mapping[str, Any]],
    namespace: str,
    labels: Mapping[str, str],
    ports: Mapping[str | int, int],
    local_ports: Mapping[int, int],
) -> int:
    """Return the local port the pod's Service sends traffic to (else the first containerPort)."""
    for svc in services_of(objects, namespace):
        spec = svc.get("spec") or {}
        if _matches(spec.get("selector") or {}, labels) and spec.get("ports"):
            target = spec["ports"][0].get("targetPort", spec["ports"][0]["port"])
            if target in ports:
                return ports[target]
    return next(iter(local_ports.values()), 0)


# --- running it --------------------------------------------------------------------------------


@dataclass
class ProbeOutcome:
    """How one probe ended."""

    kind: str
    ok: bool
    probes: int
    after_s: float  # since the container started
    message: str

    def to_dict(self) -> dict[str, Any]:
        """Return the outcome for JSON output."""
        return {
            "probe": self.kind,
            "ok": self.ok,
            "probes": self.probes,
            "after_s": round(self.after_s, 2),
            "message": self.message,
        }


@dataclass
class PodRun:
    """What happened to the pod: probes, requests, liveness and its stop."""

    probes: list[ProbeOutcome] = field(default_factory=list)
    ready_after_s: float | None = None
    requests_ok: int = 0
    requests_failed: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    request_errors: list[str] = field(default_factory=list)
    liveness_ok: bool | None = None
    stopped_after_s: float | None = None
    exit_code: int | None = None
    killed: bool = False
    failure: str = ""  # empty: every check passed

    @property
    def passed(self) -> bool:
        """True when the pod became ready, answered every request, stayed live and stopped in its grace."""
        return not self.failure

    @property
    def p50_ms(self) -> float | None:
        """Return the median latency of the answered requests (None without any)."""
        return statistics.median(self.latencies_ms) if self.latencies_ms else None

    def to_dict(self) -> dict[str, Any]:
        """Return the run for JSON output."""
        return {
            "passed": self.passed,
            "failure": self.failure,
            "probes": [p.to_dict() for p in self.probes],
            "ready_after_s": None if self.ready_after_s is None else round(self.ready_after_s, 2),
            "requests_ok": self.requests_ok,
            "requests_failed": self.requests_failed,
            "request_errors": self.request_errors,
            "p50_ms": None if self.p50_ms is None else round(self.p50_ms, 2),
            "liveness_ok": self.liveness_ok,
            "stopped_after_s": None if self.stopped_after_s is None else round(self.stopped_after_s, 2),
            "exit_code": self.exit_code,
            "killed_after_grace": self.killed,
        }


def _exit_code(code: int | None) -> int | None:
    # The runtime reports a process killed by signal N as 128 + N.
    return 128 - code if code is not None and code < 0 else code


def _signal_group(proc: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signum)


def _wait(proc: subprocess.Popen[bytes], until: float) -> bool:
    """Sleep until a monotonic time; return False early if the process exits."""
    while time.monotonic() < until:
        if proc.poll() is not None:
            return False
        time.sleep(min(STOP_POLL_S, max(0.0, until - time.monotonic())))
    return proc.poll() is None


def run_probe(probe: Probe, proc: subprocess.Popen[bytes], start: PodStart, begun: float) -> ProbeOutcome:
    """Probe until ``successThreshold`` consecutive successes or ``failureThreshold`` consecutive failures."""
    first = time.monotonic() + probe.initial_delay_s
    successes = failures = count = 0
    message = ""
    tick = 0
    while True:
        if not _wait(proc, first + tick * probe.period_s):
            return ProbeOutcome(
                probe.kind, False, count, time.monotonic() - begun,
                f"the container exited (code {_exit_code(proc.returncode)}) before its {probe.kind} probe "
                "succeeded; the kubelet would restart it (CrashLoopBackOff)",
            )  # fmt: skip
        ok, message = probe.handler.check(probe.timeout_s, env=start.env, cwd=start.cwd)
        count += 1
        tick += 1
        # a probe that took longer than a period: the ticker's missed ticks are dropped
        while first + tick * probe.period_s < time.monotonic():
            tick += 1
        if ok:
            successes, failures = successes + 1, 0
            if successes >= probe.success_threshold:
                return ProbeOutcome(probe.kind, True, count, time.monotonic() - begun, message)
        else:
            successes, failures = 0, failures + 1
            if failures >= probe.failure_threshold:
                return ProbeOutcome(
                    probe.kind, False, count, time.monotonic() - begun,
                    f"{probe.kind.capitalize()} probe failed {failures} times in a row ({probe.describe()}): "
                    f"{message}; " + _consequence(probe.kind),
                )  # fmt: skip


def _consequence(kind: str) -> str:
    if kind == "readiness":
        return "the pod stays NotReady and its Service sends it no traffic"
    return "the kubelet would kill the container and restart it"


def send(port: int, request: Request, timeout_s: float = REQUEST_TIMEOUT_S) -> tuple[float, str]:
    """Send one request to the pod; return (seconds, error text: empty for a 2xx answer)."""
    body = json.dumps(request.body).encode() if request.body is not None else None
    headers = {"Content-Type": "application/json"} if body is not None else {}
    conn = http.client.HTTPConnection(POD_IP, port, timeout=timeout_s)
    started = time.perf_counter()
    try:
        conn.request(request.method, request.path, body=body, headers=headers)
        response = conn.getresponse()
        text = response.read().decode(errors="replace")
    except (OSError, http.client.HTTPException) as err:
        return time.perf_counter() - started, f"{request.method} {request.path}: {_os_reason(err)}"
    finally:
        conn.close()
    elapsed = time.perf_counter() - started
    if 200 <= response.status < 300:
        return elapsed, ""
    return elapsed, f"{request.method} {request.path} -> {response.status} {text[:300]}"


def stop(proc: subprocess.Popen[bytes], start: PodStart, run: PodRun) -> None:
    """Stop the container as the kubelet does: preStop, SIGTERM to the main process, SIGKILL after the grace."""
    begun = time.monotonic()
    deadline = begun + start.grace_s
    if proc.poll() is None:
        if start.pre_stop is not None:
            start.pre_stop.check(max(0.0, start.grace_s), env=start.env, cwd=start.cwd)
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            run.killed = True
            _signal_group(proc, signal.SIGKILL)
            proc.wait()
    _signal_group(proc, signal.SIGKILL)  # what the container left behind in its group goes with it
    run.stopped_after_s = time.monotonic() - begun
    run.exit_code = _exit_code(proc.returncode)


def run_pod(start: PodStart, requests: Sequence[Request] = ()) -> PodRun:
    """Start the container, wait for startup then readiness, send the requests, probe liveness, stop it."""
    run = PodRun()
    start.log.parent.mkdir(parents=True, exist_ok=True)
    with start.log.open("wb") as log:
        proc = subprocess.Popen(
            start.argv, cwd=start.cwd, env=start.env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    begun = time.monotonic()
    try:
        for kind in ("startup", "readiness"):
            if kind not in start.probes:
                continue
            outcome = run_probe(start.probes[kind], proc, start, begun)
            run.probes.append(outcome)
            if not outcome.ok:
                run.failure = outcome.message
                return run
        if proc.poll() is not None:
            run.failure = f"the container exited (code {_exit_code(proc.returncode)}) as it started"
            return run
        run.ready_after_s = time.monotonic() - begun
        for request in requests:
            seconds, error = send(start.request_port, request)
            if error:
                run.requests_failed += 1
                run.request_errors.append(error)
            else:
                run.requests_ok += 1
                run.latencies_ms.append(seconds * 1000)
        if run.requests_failed:
            run.failure = f"{run.requests_failed} of {len(requests)} requests failed; the first: {run.request_errors[0]}"
        if "liveness" in start.probes:
            outcome = run_probe(start.probes["liveness"], proc, start, begun)
            run.probes.append(outcome)
            run.liveness_ok = outcome.ok
            if not outcome.ok and not run.failure:
                run.failure = outcome.message
        elif proc.poll() is not None and not run.failure:
            run.failure = f"the container exited (code {_exit_code(proc.returncode)}) while serving"
        return run
    finally:
        stop(proc, start, run)
        if run.killed:
            killed = (
                f"the container did not exit within terminationGracePeriodSeconds ({start.grace_s:g} s) of "
                "SIGTERM and was killed (SIGKILL): it would lose in-flight requests on every rollout and drain"
            )
            run.failure = f"{run.failure}; then {killed}" if run.failure else killed

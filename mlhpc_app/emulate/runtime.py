"""Run a submit_job request against its job definition the way AWS Batch and the container runtime do.

What Batch does with a request, and what is done here instead of it:

* **the container** of each node: the job definition's node range (multi-node) or container
  properties, with ``containerOverrides`` / the ``nodePropertyOverrides`` that target the node;
  the override's ``command`` replaces the definition's, its ``environment`` is merged over the
  definition's (by name);
* **parameters**: every argument of the command that is exactly ``Ref::name`` is replaced by the
  request's ``parameters[name]``, else the definition's default; one neither gives stays
  ``Ref::name`` literally, as Batch leaves it (the container then receives that text);
* **the image**: the runtime runs ENTRYPOINT + the command (which replaces CMD), in WORKDIR,
  with the image's ENV under the job's; ``python`` is this interpreter, WORKDIR a directory
  per node, ``PYTHONPATH`` the repository (the emulation runs in the project's environment,
  not in the image; USER is reported, not switched to);
* **volumes**: the definition's host volumes (``/fsx``, ``/efs``) and the container's private
  ``/tmp`` become directories under the workdir; argv and environment values under those
  paths are rewritten to them;
* **Batch's variables**: ``AWS_BATCH_JOB_ID`` (``ID#INDEX`` for a node), ``AWS_BATCH_JOB_ATTEMPT``
  (from 1), ``AWS_BATCH_JQ_NAME``, ``AWS_BATCH_CE_NAME``, and for multi-node jobs
  ``AWS_BATCH_JOB_NODE_INDEX``, ``AWS_BATCH_JOB_NUM_NODES``, ``AWS_BATCH_JOB_MAIN_NODE_INDEX``
  and, on the child nodes only, ``AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS`` (127.0.0.1).
  The nodes share loopback here, where each has its own address on AWS, so the emulator also
  sets ``MASTER_PORT`` to a free port (Batch sets none; torch's default 29500 could collide);
* **nodes**: each node a process group of its own, the main node first; the job ends when the
  main node exits, and the other nodes are then stopped (SIGTERM, SIGKILL after the grace);
* **timeout**: ``timeout.attemptDurationSeconds`` (request over definition) stops the attempt
  with SIGTERM, then SIGKILL after the grace; a timed-out attempt is not retried (as on Batch);
* **retries**: ``retryStrategy.attempts`` attempts; after a failed attempt ``evaluateOnExit`` is
  read in order, the first rule whose ``onExitCode``/``onStatusReason``/``onReason`` globs all
  match decides (RETRY or EXIT), and when none matches the job is retried, as Batch does;
* **S3**: the job's ``s3://`` URIs reach the moto server on loopback (``AWS_ENDPOINT_URL``), with
  the job role's credentials when the layout carries them (:mod:`mlhpc_app.emulate.iam`).
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlhpc.errors import MlhpcError
from mlhpc.invocation import LAUNCH_OPTION
from mlhpc_app.emulate.image import Image

LOOPBACK = "127.0.0.1"
STOP_GRACE_S = 10.0  # what Batch (ECS) waits between SIGTERM and SIGKILL by default is 30 s; shorter here
ESSENTIAL_EXITED = "Essential container in task exited"
# How an attempt ends: Batch's main node; SageMaker's every host (the first failure stops the rest);
# a Kubernetes Job's every pod (each left to its own end: the controller stops none).
UNTIL_MAIN, UNTIL_ALL, UNTIL_EVERY = "main", "all", "every"
TIMED_OUT = "Job attempt duration exceeded timeout"
# Host variables a container would not see but an emulation on shared cores needs.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TORCH_NUM_THREADS")


@dataclass(frozen=True)
class Layout:
    """Where an emulated job lives on this machine."""

    workdir: Path
    repo: Path
    endpoint: str  # the moto server
    region: str
    queue_name: str
    environment_name: str
    grace_s: float = STOP_GRACE_S
    credentials: dict[str, str] | None = (
        None  # the job role's (AWS_ACCESS_KEY_ID, ...); None: moto's fake ones
    )


@dataclass
class Attempt:
    """One attempt of the job: each node's exit code, the job's, and why it stopped."""

    number: int
    exit_code: int | None
    status_reason: str
    nodes: dict[int, int | None]
    logs: dict[int, Path]
    reclaimed: bool = False
    timed_out: bool = False
    duration_s: float = 0.0
    ended_by: int | None = None  # the node whose exit ended the attempt (its code is the attempt's)

    def to_dict(self) -> dict[str, Any]:
        """Return the attempt for JSON output."""
        return {
            "attempt": self.number,
            "exit_code": self.exit_code,
            "status_reason": self.status_reason,
            "nodes": {str(k): v for k, v in self.nodes.items()},
            "logs": {str(k): str(v) for k, v in self.logs.items()},
            "reclaimed": self.reclaimed,
            "timed_out": self.timed_out,
            "duration_s": round(self.duration_s, 2),
            "ended_by": self.ended_by,
        }


@dataclass
class JobRun:
    """An emulated job from start to its end."""

    job_id: str
    attempts: list[Attempt] = field(default_factory=list)
    status: str = "RUNNING"
    notes: list[str] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        """True when the last attempt exited 0."""
        return self.status == "SUCCEEDED"


# --- what Batch makes of the request ------------------------------------------------------


def substitute(command: list[str], parameters: Mapping[str, str]) -> list[str]:
    """Replace each ``Ref::name`` argument by its parameter; leave one with no value as Batch does."""
    return [parameters.get(part[5:], part) if part.startswith("Ref::") else part for part in command]


def unfilled(command: list[str]) -> list[str]:
    """Return the ``Ref::`` placeholders left in a command."""
    return [part for part in command if part.startswith("Ref::")]


def _in_range(target: str, index: int, nodes: int) -> bool:
    start, sep, end = target.partition(":")
    if not sep:
        return index == int(start)
    low = int(start) if start else 0
    high = int(end) if end else nodes - 1
    return low <= index <= high


def is_multi_node(definition: Mapping[str, Any]) -> bool:
    """True for a multi-node parallel job definition."""
    return definition.get("type") == "multinode" or bool(definition.get("nodeProperties"))


def num_nodes(definition: Mapping[str, Any], request: Mapping[str, Any]) -> int:
    """Return the nodes of the job: the request's numNodes, else the definition's (1 single-node)."""
    if not is_multi_node(definition):
        return 1
    override = (request.get("nodeOverrides") or {}).get("numNodes")
    return int(override or definition["nodeProperties"].get("numNodes", 1))


def main_node(definition: Mapping[str, Any]) -> int:
    """Return the main node's index (0 for a single-node job)."""
    return (
        int((definition.get("nodeProperties") or {}).get("mainNode", 0)) if is_multi_node(definition) else 0
    )


def container(definition: Mapping[str, Any], request: Mapping[str, Any], index: int) -> dict[str, Any]:
    """Return node ``index``'s container as Batch runs it: command replaced, environment merged."""
    if is_multi_node(definition):
        nodes = num_nodes(definition, request)
        ranges = definition["nodeProperties"].get("nodeRangeProperties") or []
        base = next(
            (r.get("container") or {} for r in ranges if _in_range(r.get("targetNodes", "0:"), index, nodes)),
            None,
        )
        if base is None:
            raise ValueError(f"no node range of the job definition covers node {index} of {nodes}")
        overrides = [
            o.get("containerOverrides") or {}
            for o in (request.get("nodeOverrides") or {}).get("nodePropertyOverrides") or []
            if _in_range(o.get("targetNodes", "0:"), index, nodes)
        ]
    else:
        base = definition.get("containerProperties") or {}
        overrides = [request.get("containerOverrides") or {}]
    merged = dict(base)
    env = {e["name"]: e["value"] for e in base.get("environment") or []}
    for override in overrides:
        if override.get("command") is not None:
            merged["command"] = list(override["command"])
        env.update({e["name"]: e["value"] for e in override.get("environment") or []})
    merged["environment"] = [{"name": k, "value": v} for k, v in env.items()]
    parameters = {**(definition.get("parameters") or {}), **(request.get("parameters") or {})}
    merged["command"] = substitute(list(merged.get("command") or []), parameters)
    return merged


def attempts_allowed(definition: Mapping[str, Any], request: Mapping[str, Any]) -> int:
    """Return retryStrategy.attempts (the request's over the definition's; 1 when none)."""
    strategy = request.get("retryStrategy") or definition.get("retryStrategy") or {}
    return max(1, int(strategy.get("attempts", 1)))


def timeout_s(definition: Mapping[str, Any], request: Mapping[str, Any]) -> float | None:
    """Return the attempt's duration limit in seconds (request over definition; None for none)."""
    value = (request.get("timeout") or definition.get("timeout") or {}).get("attemptDurationSeconds")
    return float(value) if value else None


def on_exit(
    definition: Mapping[str, Any], request: Mapping[str, Any], *, exit_code: int | None, status_reason: str
) -> str:
    """Return RETRY or EXIT for a failed attempt, by evaluateOnExit in order (RETRY when none matches)."""
    strategy = request.get("retryStrategy") or definition.get("retryStrategy") or {}
    for rule in strategy.get("evaluateOnExit") or []:
        checks = [
            (rule.get("onExitCode"), "" if exit_code is None else str(exit_code)),
            (rule.get("onStatusReason"), status_reason),
            (rule.get("onReason"), ""),
        ]
        if all(fnmatch.fnmatchcase(value, pattern) for pattern, value in checks if pattern is not None):
            return str(rule.get("action", "RETRY")).upper()
    return "RETRY"


# --- the container runtime --------------------------------------------------------------


def host_paths(definition: Mapping[str, Any], node: Mapping[str, Any], root: Path) -> dict[str, Path]:
    """Return container path -> local directory for the host volumes a node mounts."""
    del definition  # the node's container carries its volumes (single- and multi-node alike)
    volumes = {v["name"]: v for v in node.get("volumes") or []}
    mapping = {}
    for mount in node.get("mountPoints") or []:
        volume = volumes.get(mount.get("sourceVolume", ""))
        if volume is None or "host" not in volume:
            continue
        mapping[mount["containerPath"]] = root / "volumes" / volume["name"]
    return mapping


def rewrite(value: str, mapping: Mapping[str, Path]) -> str:
    """Return a value with a container path prefix replaced by its local directory."""
    for prefix, local in sorted(mapping.items(), key=lambda kv: -len(kv[0])):
        if prefix != "/" and (value == prefix or value.startswith(prefix.rstrip("/") + "/")):
            return str(local) + value[len(prefix.rstrip("/")) :]
    return value


def set_ranks(argv: list[str], ranks: int) -> list[str]:
    """Return argv with the launcher option's value replaced (an emulation-only change)."""
    out = list(argv)
    for i, part in enumerate(out[:-1]):
        if part == LAUNCH_OPTION:
            out[i + 1] = str(ranks)
    return [f"{LAUNCH_OPTION}={ranks}" if p.startswith(f"{LAUNCH_OPTION}=") else p for p in out]


def base_environment(home: Path) -> dict[str, str]:
    """Return what a container has before the image's ENV: PATH, a locale, HOME (and thread limits)."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "HOME": str(home),
        **{k: os.environ[k] for k in THREAD_VARIABLES if k in os.environ},
    }


def aws_environment(
    endpoint: str, region: str, credentials: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Return the variables that send the job's AWS calls to the moto server, as its role (or moto's fake keys)."""
    fake = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
    }
    return {
        "AWS_ENDPOINT_URL": endpoint,
        **(dict(credentials) if credentials else fake),
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
    }


@dataclass
class NodeStart:
    """How one node's process starts."""

    index: int
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    log: Path


def node_start(
    definition: Mapping[str, Any],
    request: Mapping[str, Any],
    image: Image,
    layout: Layout,
    *,
    job_id: str,
    attempt: int,
    index: int,
    port: int,
    ranks_per_node: int | None = None,
) -> NodeStart:
    """Return node ``index``'s argv, environment and directories for an attempt."""
    node = container(definition, request, index)
    root = layout.workdir / job_id
    node_dir = root / f"attempt-{attempt}" / f"node-{index}"
    mapping = {**host_paths(definition, node, root), "/tmp": node_dir / "tmp"}
    if image.workdir != "/":
        mapping[image.workdir] = node_dir / "workdir"
    command = list(node["command"])
    if ranks_per_node is not None:
        command = set_ranks(command, ranks_per_node)
    # container paths (/tmp, WORKDIR, host volumes) become local directories; then the image's `python`
    # is this interpreter, whose own path is never rewritten (a checkout under /tmp stays where it is)
    argv = [rewrite(part, mapping) for part in image.argv(command)]
    if argv[:1] == ["python"]:
        argv[0] = sys.executable
    env = base_environment(node_dir / "home")
    env["HOSTNAME"] = f"node-{index}"
    env.update(image.env)
    env.update({e["name"]: e["value"] for e in node.get("environment") or []})
    env = {k: rewrite(v, mapping) for k, v in env.items()}
    env["PYTHONPATH"] = str(layout.repo)  # the image's copy of the code is the repository here
    env["TMPDIR"] = str(mapping["/tmp"])
    env.update(aws_environment(layout.endpoint, layout.region, layout.credentials))
    env.update(
        {
            "AWS_BATCH_JOB_ATTEMPT": str(attempt),
            "AWS_BATCH_JQ_NAME": layout.queue_name,
            "AWS_BATCH_CE_NAME": layout.environment_name,
        }
    )
    if is_multi_node(definition):
        main = main_node(definition)
        env.update(
            {
                "AWS_BATCH_JOB_ID": f"{job_id}#{index}",
                "AWS_BATCH_JOB_NODE_INDEX": str(index),
                "AWS_BATCH_JOB_NUM_NODES": str(num_nodes(definition, request)),
                "AWS_BATCH_JOB_MAIN_NODE_INDEX": str(main),
                "MASTER_PORT": str(port),
            }
        )
        if index != main:
            env["AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS"] = LOOPBACK
    else:
        env["AWS_BATCH_JOB_ID"] = job_id
    for path in {*mapping.values(), node_dir / "home"}:
        path.mkdir(parents=True, exist_ok=True)
    cwd = mapping.get(image.workdir, node_dir / "workdir")
    cwd.mkdir(parents=True, exist_ok=True)
    return NodeStart(index=index, argv=argv, env=env, cwd=cwd, log=node_dir / "log.txt")


def _exit_code(code: int | None) -> int | None:
    # Docker reports a process killed by signal N as 128 + N.
    return 128 - code if code is not None and code < 0 else code


def _signal_group(proc: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signum)


def _stop(procs: list[subprocess.Popen[bytes]], grace_s: float) -> None:
    for proc in procs:
        if proc.poll() is None:
            _signal_group(proc, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for proc in procs:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            proc.wait()
    for proc in procs:
        _signal_group(proc, signal.SIGKILL)  # whatever the node left behind in its group


def run_attempt(
    starts: list[NodeStart],
    *,
    main: int,
    number: int,
    layout: Layout,
    limit_s: float | None,
    reclaim_after_s: float | None,
    until: str = UNTIL_MAIN,
) -> Attempt:
    """Start every node (the main node first), wait until the attempt ends, stop the rest.

    ``until`` is the service's rule for the end: :data:`UNTIL_MAIN` (Batch: the main node's exit ends
    the job and is its code), :data:`UNTIL_ALL` (SageMaker: every host exits 0, or the first that
    fails ends the job with its code) or :data:`UNTIL_EVERY` (a Kubernetes Job: every pod runs to
    its own end; the code is the main one's).
    """
    ordered = sorted(starts, key=lambda s: s.index != main)
    procs: dict[int, subprocess.Popen[bytes]] = {}
    logs = {}
    begun = time.monotonic()
    try:
        for start in ordered:
            start.log.parent.mkdir(parents=True, exist_ok=True)
            with start.log.open("wb") as log:
                procs[start.index] = subprocess.Popen(
                    start.argv,
                    cwd=start.cwd,
                    env=start.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            logs[start.index] = start.log
        reclaimed = timed_out = False
        kill_at: float | None = None
        deciding = main
        while True:
            if until == UNTIL_MAIN:
                if procs[main].poll() is not None:
                    break
            elif until == UNTIL_EVERY:
                if all(p.poll() is not None for p in procs.values()):
                    break
            else:
                codes = {i: p.poll() for i, p in procs.items()}
                failed = [i for i, c in codes.items() if c not in (None, 0)]
                if failed or all(c is not None for c in codes.values()):
                    deciding = failed[0] if failed else main
                    break
            now = time.monotonic() - begun
            if reclaim_after_s is not None and not reclaimed and now >= reclaim_after_s:
                reclaimed = True  # a Spot reclaim: every node's container gets SIGTERM
                for proc in procs.values():
                    _signal_group(proc, signal.SIGTERM)
            if limit_s is not None and not timed_out and now >= limit_s:
                timed_out = True
                kill_at = now + layout.grace_s
                for proc in procs.values():
                    _signal_group(proc, signal.SIGTERM)
            if kill_at is not None and now >= kill_at:
                for proc in procs.values():
                    _signal_group(proc, signal.SIGKILL)
                kill_at = None
            time.sleep(0.05)
    finally:
        _stop(list(procs.values()), layout.grace_s)
    return Attempt(
        number=number,
        exit_code=_exit_code(procs[deciding].returncode),
        status_reason=TIMED_OUT if timed_out else ESSENTIAL_EXITED,
        nodes={i: _exit_code(p.returncode) for i, p in sorted(procs.items())},
        logs=logs,
        reclaimed=reclaimed,
        timed_out=timed_out,
        duration_s=time.monotonic() - begun,
        ended_by=deciding,
    )


def run_job(
    definition: Mapping[str, Any],
    request: Mapping[str, Any],
    image: Image,
    layout: Layout,
    *,
    ranks_per_node: int | None = None,
    reclaim_after_s: float | None = None,
    job_id: str | None = None,
) -> JobRun:
    """Run every attempt of a job until one succeeds, the retry strategy says EXIT, or attempts run out."""
    from workloads.common.dist import free_port

    job = JobRun(job_id=job_id or str(uuid.uuid4()))
    nodes, main = num_nodes(definition, request), main_node(definition)
    left = unfilled(container(definition, request, main)["command"])
    if left:
        job.notes.append(
            f"no parameter fills {', '.join(left)}: Batch leaves it in the command as it is, and so does this"
        )
    allowed = attempts_allowed(definition, request)
    for number in range(1, allowed + 1):
        port = free_port()
        starts = [
            node_start(
                definition,
                request,
                image,
                layout,
                job_id=job.job_id,
                attempt=number,
                index=i,
                port=port,
                ranks_per_node=ranks_per_node,
            )
            for i in range(nodes)
        ]
        attempt = run_attempt(
            starts,
            main=main,
            number=number,
            layout=layout,
            limit_s=timeout_s(definition, request),
            reclaim_after_s=reclaim_after_s if number == 1 else None,
        )
        job.attempts.append(attempt)
        if attempt.exit_code == 0:
            job.status = "SUCCEEDED"
            return job
        if attempt.timed_out:
            job.notes.append("the attempt ran past its timeout; Batch does not retry a timed-out attempt")
            break
        if (
            on_exit(definition, request, exit_code=attempt.exit_code, status_reason=attempt.status_reason)
            == "EXIT"
        ):
            break
    job.status = "FAILED"
    return job


def last_lines(path: Path, count: int = 20) -> list[str]:
    """Return the last lines of a node's log."""
    if not path.is_file():
        return []
    return path.read_text(encoding="utf-8", errors="replace").splitlines()[-count:]


class NamespacesUnavailable(MlhpcError):
    """Processes that reach each other by name need a mount namespace each (their /etc/hosts); none is given."""


def named_hosts(directory: Path, names: Sequence[str]) -> list[str]:
    """Return the argv prefix that runs a process with an /etc/hosts naming ``names`` on loopback.

    The names are what a container network resolves (SageMaker's ``algo-K``, a Job's pod DNS
    names): the process gets a mount namespace of its own (``unshare``) in which /etc/hosts is this
    machine's plus those names. Refused with :class:`NamespacesUnavailable` where no namespace is given.
    """
    hosts = directory / "etc-hosts"
    current = Path("/etc/hosts").read_text(encoding="utf-8") if Path("/etc/hosts").is_file() else ""
    hosts.parent.mkdir(parents=True, exist_ok=True)
    hosts.write_text(f"{current.rstrip()}\n{LOOPBACK} {' '.join(names)}\n", encoding="utf-8")
    unshare = shutil.which("unshare")
    prefix = [
        unshare or "unshare",
        "--mount",
        *(["--map-root-user"] if os.geteuid() != 0 else []),
        "--",
        "sh",
        "-c",
        'mount --bind "$0" /etc/hosts && exec "$@"',
        str(hosts),
    ]
    probe = (
        subprocess.run([*prefix, "true"], capture_output=True, text=True, check=False, timeout=30)
        if unshare
        else None
    )
    if probe is None or probe.returncode != 0:
        why = "unshare (util-linux) is not installed" if probe is None else probe.stderr.strip()
        raise NamespacesUnavailable(
            f"the emulated processes reach each other by name ({', '.join(names)}), which needs a mount "
            f"namespace each for its /etc/hosts, and this machine refused one: {why}",
            fix="emulate one node/instance, or run where `unshare --mount` works (as root, or with "
            "unprivileged user namespaces enabled)",
        )
    return prefix

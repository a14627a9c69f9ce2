"""Several server processes per device behind one port, and the graceful drain on SIGTERM.

**Workers** (``--workers N``): one supervisor process binds the port and starts N copies of the
server, each with its own model, batcher and event loop, all accepting on that one socket (the
kernel hands each new connection to one of them). This is how serving systems get past one
Python process's HTTP, JSON and tokenisation rate: on a GPU the workers share the device (each a
CUDA context and a copy of the weights), on Inferentia each gets its own NeuronCores
(``NEURON_RT_VISIBLE_CORES``, which the Neuron device plugin sets for the container, split
evenly), and on a CPU each gets ``cores / N`` torch threads so that workers x threads = the cores.
The workers start serving together, once every one has loaded its model, so the first one up
does not collect every keep-alive connection. A worker that dies takes the pod down (the others
drain, the supervisor exits 1 and the kubelet restarts the container): a half-sized pod that
still passes its probes would hide the fault. A supervisor killed outright (SIGKILL, no signal to
forward) leaves no orphans: each worker watches its parent and drains itself when it is gone.

**Drain** (SIGTERM, as the kubelet sends it; SIGINT too): the supervisor forwards it to every
worker. Each worker at once answers ``/healthz`` with 503 (readiness fails: the endpoints
controller takes the pod out of its Service) and asks every client to close its connection
after its answer; after ``drain_delay_s`` it stops accepting connections, answers every request
it accepted (the batch in flight and the queue behind it), and exits 0 within
``drain_timeout_s``. uvicorn's own handler would re-raise SIGTERM after the drain (exit 143);
here a drained server exits 0.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from workloads.common.entry import WorkloadError

MAX_WORKERS = 64
WORKER_ENV = "MLHPC_BERT_WORKER"  # "<index>,<count>,<socket fd>,<ready fd>,<go fd>": set for workers only
NEURON_CORES_ENV = "NEURON_RT_VISIBLE_CORES"
BACKLOG = 2048


def available_cpus() -> int:
    """Return the CPUs this process may use: the cgroup's CPU quota (a pod's limit) or its affinity."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    with contextlib.suppress(OSError, ValueError):
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text(encoding="ascii").split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, int(int(quota) / int(period))))
    return max(1, cpus)


def threads_per_worker(workers: int, cpus: int | None = None) -> int:
    """Return torch threads for each of ``workers`` processes: the CPUs shared out, at least one each."""
    return max(1, (cpus or available_cpus()) // max(1, workers))


def parse_cores(text: str) -> list[int]:
    """Return the core ids of a NEURON_RT_VISIBLE_CORES value ("0-3", "4,5", "0-1,4-5")."""
    cores: list[int] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not match or (match[2] is not None and int(match[2]) < int(match[1])):
            raise WorkloadError(
                f"{NEURON_CORES_ENV}={text!r} is not a list of NeuronCore ids; give e.g. 0-3 or 0,1"
            )
        cores += range(int(match[1]), int(match[2] or match[1]) + 1)
    if not cores:
        raise WorkloadError(f"{NEURON_CORES_ENV}={text!r} names no NeuronCore; give e.g. 0-3")
    return cores


def split_cores(text: str, workers: int) -> list[str]:
    """Return each worker's NEURON_RT_VISIBLE_CORES: the visible cores split into equal contiguous groups."""
    cores = parse_cores(text)
    if len(cores) % workers:
        raise WorkloadError(
            f"--workers {workers} cannot share {len(cores)} NeuronCores ({NEURON_CORES_ENV}={text}) "
            f"evenly; use a divisor of {len(cores)} workers or request a multiple of {workers} cores"
        )
    size = len(cores) // workers
    groups = [cores[i * size : (i + 1) * size] for i in range(workers)]
    return [",".join(str(c) for c in group) for group in groups]


def worker_envs(count: int, *, threads: int, device: str, environ: dict[str, str]) -> list[dict[str, str]]:
    """Return the environment of each worker: its thread count and, on Neuron, its NeuronCores."""
    per_worker = threads or threads_per_worker(count)
    base = {**environ, "OMP_NUM_THREADS": str(per_worker)}
    visible = environ.get(NEURON_CORES_ENV)
    if visible:
        return [{**base, NEURON_CORES_ENV: group} for group in split_cores(visible, count)]
    if device == "neuron":
        raise WorkloadError(
            f"--workers {count} on Neuron needs {NEURON_CORES_ENV} (the Neuron device plugin sets it for a "
            "container requesting aws.amazon.com/neuroncore) to give each worker its own NeuronCores"
        )
    return [dict(base) for _ in range(count)]


@dataclass(frozen=True)
class WorkerHandle:
    """What a worker process got from its supervisor: its index, the shared socket and the start pipes."""

    index: int
    count: int
    socket_fd: int
    ready_fd: int
    go_fd: int

    @classmethod
    def from_env(cls) -> WorkerHandle | None:
        """Return the handle when this process is a worker (the supervisor sets WORKER_ENV), else None."""
        raw = os.environ.get(WORKER_ENV)
        if not raw:
            return None
        index, count, sock, ready, go = (int(x) for x in raw.split(","))
        return cls(index, count, sock, ready, go)

    def to_env(self) -> str:
        """Return the WORKER_ENV value for this handle."""
        return f"{self.index},{self.count},{self.socket_fd},{self.ready_fd},{self.go_fd}"

    def start_together(self) -> socket.socket:
        """Tell the supervisor the model is loaded, wait until every worker is, and return the socket."""
        os.write(self.ready_fd, b"1")
        os.close(self.ready_fd)
        os.read(self.go_fd, 1)  # b"" once the supervisor closes its end: every worker is ready
        os.close(self.go_fd)
        return socket.socket(fileno=self.socket_fd)


def _draining_server(config: Any, *, on_drain: Callable[[], None], drain_delay_s: float) -> Any:
    """Return a uvicorn Server that drains on SIGTERM/SIGINT and does not re-raise the signal."""
    import uvicorn

    class DrainingServer(uvicorn.Server):
        """uvicorn's graceful shutdown, preceded by failing readiness for ``drain_delay_s``."""

        def __init__(self) -> None:
            super().__init__(config)
            self.close_at: float | None = None

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            if self.close_at is None:
                self.close_at = time.monotonic() + drain_delay_s
                on_drain()
            elif sig == signal.SIGINT:  # a second Ctrl-C: stop waiting for requests
                self.force_exit = True

        async def on_tick(self, counter: int) -> bool:
            if self.close_at is not None and time.monotonic() >= self.close_at:
                self.should_exit = True
            return bool(await super().on_tick(counter))

    return DrainingServer()


def serve(
    app: Any, *, host: str, port: int, worker: WorkerHandle | None, on_drain: Callable[[], None],
    drain_delay_s: float, drain_timeout_s: float,
) -> Any:  # fmt: skip
    """Serve ``app`` until SIGTERM/SIGINT and drain; return the uvicorn Server (``started`` says it served)."""
    import uvicorn

    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", access_log=False,
        timeout_graceful_shutdown=math.ceil(drain_timeout_s),
    )  # fmt: skip
    server = _draining_server(config, on_drain=on_drain, drain_delay_s=drain_delay_s)
    if worker is None:
        server.run()
    else:
        sock = worker.start_together()
        _drain_when_orphaned()
        server.run(sockets=[sock])
    return server


def _drain_when_orphaned(poll_s: float = 1.0) -> None:
    """Drain this worker (SIGTERM to itself) if its supervisor dies without forwarding a signal (SIGKILL)."""
    import threading

    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        print(
            f"bert worker (pid {os.getpid()}): its supervisor (pid {parent}) is gone; draining",
            file=sys.stderr, flush=True,
        )  # fmt: skip
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="bert-orphan-watch", daemon=True).start()


def bind(host: str, port: int) -> socket.socket:
    """Return a TCP socket bound to host:port, not yet listening (connections are refused until it is)."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as err:
        sock.close()
        raise WorkloadError(
            f"cannot listen on {host}:{port} ({err.strerror}); choose another --port"
        ) from err
    return sock


def _say(text: str) -> None:
    print(f"bert supervisor (pid {os.getpid()}): {text}", file=sys.stderr, flush=True)


def supervise(argv: Sequence[str], *, count: int, host: str, port: int, threads: int, device: str) -> int:
    """Run ``argv`` as ``count`` workers on one socket; forward SIGTERM/SIGINT; return the exit code.

    0 after a drain in which every worker exited cleanly; 1 when a worker died on its own
    (the others are drained first); 2 when one could not start (its own message says why).
    """
    envs = worker_envs(count, threads=threads, device=device, environ=dict(os.environ))
    metrics_dir = tempfile.mkdtemp(prefix="bert-metrics-")  # prometheus_client multiprocess mode
    sock = bind(host, port)
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    procs: list[subprocess.Popen[bytes]] = []
    stopping = False

    def stop(sig: int = signal.SIGTERM, frame: FrameType | None = None) -> None:
        nonlocal stopping
        stopping = True
        for proc in procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        for index, base_env in enumerate(envs):
            if stopping:  # SIGTERM while starting: start no more
                break
            handle = WorkerHandle(index, count, sock.fileno(), ready_w, go_r)
            env = {**base_env, WORKER_ENV: handle.to_env(), "PROMETHEUS_MULTIPROC_DIR": metrics_dir}
            procs.append(subprocess.Popen(list(argv), env=env, pass_fds=(sock.fileno(), ready_w, go_r)))
        os.close(ready_w)
        os.close(go_r)
        ready = 0
        while ready < count and not stopping:
            readable, _, _ = select.select([ready_r], [], [], 0.2)
            if readable:
                ready += len(os.read(ready_r, count))
            failed = [(i, p.returncode) for i, p in enumerate(procs) if p.poll() is not None]
            if failed and ready < count and not stopping:
                index, code = failed[0]
                _say(f"worker {index} exited with code {code} before it was ready; stopping the others")
                stop()
                _wait_all(procs)
                return 2
        if not stopping:
            sock.listen(BACKLOG)
            _say(f"{count} workers serving on {host}:{port}")
        os.close(go_w)  # every worker starts accepting (or, when stopping, sees the SIGTERM it got)
        go_w = -1
        sock.close()  # the workers hold the socket now; it closes when the last one drains
        return _run(procs, is_stopping=lambda: stopping, stop=stop, metrics_dir=metrics_dir)
    finally:
        for fd in (ready_r, go_w):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        for s, handler in previous.items():
            signal.signal(s, handler)
        _wait_all(procs)
        with contextlib.suppress(OSError):
            for file in Path(metrics_dir).iterdir():
                file.unlink()
            Path(metrics_dir).rmdir()


def _run(
    procs: list[subprocess.Popen[bytes]], *, is_stopping: Callable[[], bool], stop: Callable[[], None],
    metrics_dir: str,
) -> int:  # fmt: skip
    """Wait for the workers; a worker exiting before a drain was asked for stops the others."""
    from prometheus_client import multiprocess

    failed: tuple[int, int] | None = None
    live = set(range(len(procs)))
    while live:
        for index in sorted(live):
            code = procs[index].poll()
            if code is None:
                continue
            live.discard(index)
            with contextlib.suppress(OSError):
                multiprocess.mark_process_dead(procs[index].pid, metrics_dir)
            if not is_stopping() and failed is None:
                failed = (index, code)
                _say(f"worker {index} exited with code {code} while serving; draining the others")
                stop()
            elif code not in (0, -signal.SIGTERM) and failed is None:
                failed = (index, code)
        time.sleep(0.05)
    if failed is not None:
        _say(f"worker {failed[0]} failed (code {failed[1]}); exiting 1")
        return 1
    return 0


def _wait_all(procs: Sequence[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=60)
        if proc.poll() is None:
            proc.kill()
            proc.wait()

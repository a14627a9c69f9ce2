"""SIGTERM mid-load: the Deployment's server fails readiness, answers every request it accepted, exits 0.

The pod is the InferenceStack Deployment's own container (``workloads.bert.k8s.deployment``: its
command, args, env, probes and grace period), started as the kubelet would by the emulator's
``kubelet.pod_start``, with two test-only changes: the tiny random model (generated into the
pod's ``/tmp/models``, where the manifest's ``MLHPC_MODEL_CACHE`` points) and appended options
that hold each request in the batcher for 150 ms, so a SIGTERM always finds requests queued and
a batch in flight. Four client threads keep sending while the kubelet's SIGTERM arrives.

"None lost" is checked from both ends: each worker logs how many requests it accepted and
answered, the clients count the 200s they received, and the two must match, with every other
client outcome a refusal before the server read the request (connection refused, or the
connection closed with no answer, which the server never counted as accepted).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlhpc_app.emulate import image, kubelet
from workloads.bert import k8s, models

REPO = Path(__file__).resolve().parents[3]
BODY = json.dumps({"pairs": [{"text_a": "The bank left rates unchanged.", "text_b": "Rates did not move."}]})
DRAIN_LINE = re.compile(r"drained in [\d.]+ s: (\d+) accepted, (\d+) answered, (\d+) dropped")
CLIENTS = 4


@dataclass
class Outcome:
    sent: float
    done: float
    what: str  # "200", another status, "refused", "closed" (no answer on an open connection), or an error


class Client(threading.Thread):
    """A closed-loop client on one keep-alive connection, recording every request's outcome."""

    def __init__(self, port: int, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.port, self.stop = port, stop
        self.outcomes: list[Outcome] = []

    def run(self) -> None:
        conn = http.client.HTTPConnection(kubelet.POD_IP, self.port, timeout=20)
        while not self.stop.is_set():
            sent = time.monotonic()
            try:
                conn.request("POST", "/predict", BODY, {"content-type": "application/json"})
                response = conn.getresponse()
                response.read()
                what = str(response.status)
                if response.getheader("connection", "").lower() == "close":
                    conn.close()  # draining: the next request opens a new connection
            except ConnectionRefusedError:
                what = "refused"
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                what = "closed"
            except OSError as err:
                what = f"error {type(err).__name__}: {err}"
            self.outcomes.append(Outcome(sent, time.monotonic(), what))
            if what not in ("200", "closed"):
                conn.close()
                if what == "refused":
                    return  # the listener is gone: the pod has stopped
            if what == "closed":
                conn.close()


def start_pod(root: Path, extra_args: list[str]) -> kubelet.PodStart:
    settings = k8s.ServiceSettings(image="mlhpc/bert:test", model_uri="bert-tiny-random", accelerator="cpu")
    deployment = k8s.deployment(settings)
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["args"] = [*container["args"], *extra_args]
    start = kubelet.pod_start(
        deployment, image.read(image.dockerfile(REPO, "bert")), root=root, repo=REPO, probe_scale=0.1,
        rewrites=kubelet.Rewrites(bind_option="--host"),
    )  # fmt: skip
    # the model the server will load, where the manifest's MLHPC_MODEL_CACHE points inside the pod
    models.make_random_classifier("bert-tiny-random", root=Path(start.env["MLHPC_MODEL_CACHE"]))
    return start


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_mid_load_loses_no_accepted_request(tmp_path: Path, workers: int) -> None:
    extra = ["--max-wait-ms", "150", "--drain-delay-s", "0.6", "--threads", "1"]
    if workers > 1:
        extra += ["--workers", str(workers)]
    start = start_pod(tmp_path, extra)
    assert start.argv[1:3] == ["-m", "workloads.bert.server"] and start.grace_s == 30
    with start.log.open("wb") as log:
        proc = subprocess.Popen(
            start.argv, cwd=start.cwd, env=start.env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    stop = threading.Event()
    clients: list[Client] = []
    try:
        begun = time.monotonic()
        for kind in ("startup", "readiness"):
            outcome = kubelet.run_probe(start.probes[kind], proc, start, begun)
            assert outcome.ok, f"{outcome.message}\n{start.log.read_text()}"
        clients = [Client(start.request_port, stop) for _ in range(CLIENTS)]
        for c in clients:
            c.start()
        time.sleep(1.0)
        sigterm = time.monotonic()
        proc.send_signal(signal.SIGTERM)  # what the kubelet does at the start of the grace period
        time.sleep(0.2)
        ready, message = start.probes["readiness"].handler.check(1.0, env=start.env, cwd=start.cwd)
        code = proc.wait(timeout=start.grace_s)
        stopped_after = time.monotonic() - sigterm
    finally:
        stop.set()
        for c in clients:
            c.join(timeout=30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # the supervisor and every worker it started
        proc.wait()
    log_text = start.log.read_text()
    assert code == 0, log_text
    assert stopped_after < start.grace_s
    assert not ready and "statuscode: 503" in message, message  # readiness fails while it drains

    outcomes = [o for c in clients for o in c.outcomes]
    kinds = {o.what for o in outcomes}
    assert kinds <= {"200", "refused", "closed"}, kinds  # no 5xx, no timeout, no half answer
    in_flight = [o for o in outcomes if o.what == "200" and o.sent < sigterm < o.done]
    assert in_flight, "no request was in flight at SIGTERM: the test did not test the drain"
    assert any(o.what == "200" and o.sent > sigterm for o in outcomes)  # served while draining

    drained = [tuple(map(int, m)) for m in DRAIN_LINE.findall(log_text)]
    assert len(drained) == workers, log_text
    accepted, answered, dropped = (sum(col) for col in zip(*drained, strict=True))
    assert dropped == 0 and accepted == answered, log_text
    # every answer the servers gave reached its client: none lost between accept and reply
    assert sum(o.what == "200" for o in outcomes) == answered, (answered, kinds)


def running(pid: str) -> bool:
    """Return True while a process runs (an exited one not yet reaped by init is a zombie: not running)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def test_workers_drain_and_exit_when_their_supervisor_is_killed(tmp_path: Path) -> None:
    start = start_pod(tmp_path, ["--workers", "2", "--threads", "1"])
    with start.log.open("wb") as log:
        proc = subprocess.Popen(
            start.argv, cwd=start.cwd, env=start.env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    try:
        outcome = kubelet.run_probe(start.probes["startup"], proc, start, time.monotonic())
        assert outcome.ok, f"{outcome.message}\n{start.log.read_text()}"
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        assert len(children) == 2
        proc.kill()  # SIGKILL: no signal is forwarded; the workers must notice on their own
        proc.wait()
        deadline = time.monotonic() + 15
        while any(running(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        alive = [pid for pid in children if running(pid)]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert not alive, start.log.read_text()
    assert start.log.read_text().count("its supervisor") == 2


def test_the_manifests_drain_ends_before_the_kubelets_sigkill() -> None:
    from workloads.bert import k8s

    deployment = next(
        o
        for o in k8s.service_objects(k8s.ServiceSettings(image="i", model_uri="s3://b/m/"))
        if o["kind"] == "Deployment"
    )
    pod = deployment["spec"]["template"]["spec"]
    args = pod["containers"][0]["args"]
    delay = float(args[args.index("--drain-delay-s") + 1])
    timeout = float(args[args.index("--drain-timeout-s") + 1])
    assert delay > 0  # readiness fails before the listener closes, so the Service stops sending first
    assert delay + timeout < pod["terminationGracePeriodSeconds"]

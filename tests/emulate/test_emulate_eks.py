"""`mlhpc emulate eks`: the BERT Deployment run as one pod, as the kubelet would run it.

The end-to-end test runs the real server on the real MiniLM (seeded on moto S3 at the manifest's
model URI) from ``config/default.yaml``, where InferenceStack is off, so the manifest is rendered by
the stack's own code. The kubelet's semantics (probe thresholds, the grace period, env and argv
rules) are checked on a tiny fake server. That the template's manifest is the rendered one is
checked on the example config that enables InferenceStack (one more synthesis: set
``MLHPC_EMULATE_ALL=1``).
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from mlhpc import contract
from mlhpc.config import load_config
from mlhpc_app.emulate import eks, kubelet
from mlhpc_app.emulate.assembly import load_assembly
from mlhpc_app.emulate.image import Image
from tests.cli.conftest import Cli
from tests.emulate.conftest import REPO

ALL = os.environ.get("MLHPC_EMULATE_ALL") == "1"
DEFAULT = REPO / "config" / "default.yaml"
EXAMPLE = REPO / "config" / "examples" / "inferentia-bert.yaml"


def emulate(workdir: Path, *argv: str, config: Path = DEFAULT) -> Any:
    return Cli()(
        "emulate", "eks", *argv, "--workdir", str(workdir), "--config", str(config), "--output", "json",
    )  # fmt: skip


# --- end to end --------------------------------------------------------------------------------


@pytest.mark.synth
def test_bert_pod_becomes_ready_answers_stays_live_and_stops_within_its_grace(emulate_workdir: Path) -> None:
    result = emulate(emulate_workdir, "bert", "--requests", "5", "--probe-scale", "0.2")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["passed"] and summary["failure"] == ""
    # default.yaml leaves InferenceStack off: the objects come from the stack's own rendering
    assert summary["manifest_source"] == "rendered"
    assert summary["image_argv"][:3] == [
        "python",
        "-m",
        "workloads.bert.server",
    ]  # command replaced ENTRYPOINT
    args = summary["image_argv"]
    assert args[args.index("--port") + 1] == "8080"
    local = summary["ports"]["8080"]
    assert summary["argv"][summary["argv"].index("--port") + 1] == str(local) != "8080"
    assert summary["argv"][summary["argv"].index("--host") + 1] == "127.0.0.1"
    assert summary["model"].startswith("s3://") and summary["model"].endswith("/models/bert/")
    assert summary["requests_ok"] == 5 and summary["requests_failed"] == 0 and summary["p50_ms"] > 0
    assert [p["probe"] for p in summary["probes"]] == ["startup", "readiness", "liveness"]
    assert summary["liveness_ok"] is True and summary["ready_after_s"] > 0
    assert summary["grace_s"] == 30 and summary["killed_after_grace"] is False
    assert summary["exit_code"] in (0, 143)  # uvicorn drains, then re-raises SIGTERM
    assert summary["stopped_after_s"] < summary["grace_s"]
    # the model came through S3 into the pod's /tmp (an emptyDir), as in the cluster
    tmp = Path(summary["log"]).parent / "volumes" / "tmp"
    assert list(tmp.glob("mlhpc-input-*/model.safetensors"))


@pytest.mark.synth
def test_a_model_the_server_cannot_load_fails_with_the_log_and_no_traceback(
    emulate_workdir: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "not-a-model"
    (empty / "weights").mkdir(parents=True)
    (empty / "weights" / "README").write_text("nothing here", encoding="utf-8")
    result = Cli()(
        "emulate", "eks", "bert", "--model", str(empty), "--probe-scale", "0.1",
        "--workdir", str(emulate_workdir), "--config", str(DEFAULT),
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "FAILED: the container exited (code 2) before its startup probe succeeded" in result.stderr
    assert "has no config.json" in result.stderr  # the server's own message, from the log's last lines
    assert "Traceback" not in result.output


def test_a_job_on_a_config_without_a_cluster_is_refused(emulate_workdir: Path) -> None:
    result = emulate(emulate_workdir, "hello")  # no service: its Job, and default.yaml has no EKS cluster
    assert result.exit_code == 1
    assert "default.yaml deploys no EKS cluster (inference.enabled: false)" in result.stderr
    assert "mlhpc emulate batch hello" in result.stderr and "Traceback" not in result.output


# --- the manifest: template and rendering agree -------------------------------------------------


@pytest.mark.synth
@pytest.mark.skipif(not ALL, reason="set MLHPC_EMULATE_ALL=1 (synthesizes the example config)")
def test_the_manifest_in_the_synthesized_template_is_the_rendered_one(emulate_workdir: Path) -> None:
    config = load_config(EXAMPLE)
    assert config.inference.enabled
    assembly = load_assembly(EXAMPLE, workdir=emulate_workdir)
    service = eks._services()["bert"]
    found = eks.template_manifest(assembly, service.manifest_id)
    assert found is not None
    _, from_template = found
    rendered = eks.rendered_manifest(service, config, assembly)
    # CDK labels what it applies (kubectl apply --prune); nothing else may differ
    assert eks.without_prune_labels(from_template) == rendered
    assert eks.service_manifest(service, config, assembly).source == eks.TEMPLATE
    (dep,) = kubelet.deployments(rendered)
    image = kubelet.pod_template(dep)[1]["containers"][0]["image"]
    # the deployment's one tag, with the variant of the Neuron group's family (torch-neuronx or torch-neuron)
    variant = contract.image_variant(config.inference.neuron_nodes.instance_types[0])
    assert (
        image.endswith(contract.image_reference("", config.hpc.image_tag, variant))
        and ".dkr.ecr.us-east-1.amazonaws.com/" in image
    )


# --- the kubelet's semantics on a fake server ---------------------------------------------------

FAKE_SERVER = textwrap.dedent(
    """
    import argparse, http.server, signal, sys

    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--mode", default="ok")
    a = p.parse_args()
    if a.mode == "crash":
        sys.exit(3)
    if a.mode == "ignore-term":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            bad = a.mode == "never-ready" or (a.mode == "not-ready" and self.path == "/ready")
            self.send_response(503 if bad else 200)
            self.end_headers()
            self.wfile.write(b"{}")

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    http.server.HTTPServer(("127.0.0.1", a.port), Handler).serve_forever()
    """
)


def fake_deployment(mode: str, startup: dict[str, Any] | None = None, **pod: Any) -> dict[str, Any]:
    probe = {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 1, "failureThreshold": 3}
    container = {
        "name": "fake",
        "image": "fake:1",
        "command": ["python", "-c", FAKE_SERVER],  # `python` is this interpreter
        "args": ["--port", "9000", "--mode", "$(MODE)"],
        "ports": [{"name": "http", "containerPort": 9000}],
        "env": [
            {"name": "MODE", "value": mode},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "GREETING", "value": "pod $(POD_NAME) in $(POD_NAMESPACE), $$(LITERAL), $(UNKNOWN)"},
            {"name": "CACHE", "value": "/tmp/cache"},
        ],
        "startupProbe": {**probe, **(startup or {})},
        "readinessProbe": {**probe, "httpGet": {"path": "/ready", "port": 9000}, "failureThreshold": 2},
        "livenessProbe": probe,
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "fake", "namespace": "demo"},
        "spec": {
            "template": {
                "metadata": {"labels": {"app": "fake"}},
                "spec": {
                    "containers": [container],
                    "volumes": [{"name": "tmp", "emptyDir": {}}],
                    "terminationGracePeriodSeconds": 5,
                    **pod,
                },
            }
        },
    }


def fake_pod(
    tmp_path: Path, mode: str, startup: dict[str, Any] | None = None, **pod: Any
) -> kubelet.PodStart:
    service = {
        "kind": "Service",
        "metadata": {"name": "fake-web", "namespace": "demo"},
        "spec": {"selector": {"app": "fake"}, "ports": [{"name": "web", "port": 80, "targetPort": "http"}]},
    }
    return kubelet.pod_start(
        fake_deployment(mode, startup, **pod), Image(), root=tmp_path / "pods", repo=REPO,
        objects=[service], probe_scale=0.2,
    )  # fmt: skip


def test_argv_env_ports_and_probes_are_the_kubelets(tmp_path: Path) -> None:
    start = fake_pod(tmp_path, "ok")
    local = start.ports[9000]
    assert start.argv == [sys.executable, "-c", FAKE_SERVER, "--port", str(local), "--mode", "ok"]
    assert start.image_argv[-3:] == ["9000", "--mode", "ok"]  # $(MODE) expanded from env
    assert start.name.startswith("fake-") and start.env["HOSTNAME"] == start.name
    assert start.env["POD_NAME"] == start.name and start.env["POD_NAMESPACE"] == "demo"
    assert start.env["POD_IP"] == "127.0.0.1"
    assert start.env["GREETING"] == f"pod {start.name} in demo, $(LITERAL), $(UNKNOWN)"
    assert start.env["CACHE"] == str(tmp_path / "pods" / f"demo-{start.name}" / "volumes" / "tmp" / "cache")
    # the Service's variables (enableServiceLinks) and the API server's
    assert start.env["FAKE_WEB_SERVICE_PORT"] == "80" and start.env["FAKE_WEB_PORT"].startswith("tcp://")
    assert start.env["KUBERNETES_SERVICE_PORT"] == "443"
    # named and numbered probe ports both map to the local port; the Service's targetPort gets the requests
    assert {p.handler.port for p in start.probes.values()} == {local} and start.request_port == local
    startup = start.probes["startup"]
    assert (startup.period_s, startup.failure_threshold, startup.timeout_s) == (0.2, 3, 1.0)
    assert start.grace_s == 5


def test_image_entrypoint_and_cmd_follow_kubernetes_rules() -> None:
    img = Image(entrypoint=["python", "-m", "workloads.bert"], cmd=["--help"])
    assert img.kubernetes_argv(None, None) == ["python", "-m", "workloads.bert", "--help"]
    assert img.kubernetes_argv(None, ["--mode", "serve"]) == [
        "python",
        "-m",
        "workloads.bert",
        "--mode",
        "serve",
    ]
    assert img.kubernetes_argv(["python", "-m", "x"], None) == [
        "python",
        "-m",
        "x",
    ]  # CMD goes with ENTRYPOINT
    assert img.kubernetes_argv(["python"], ["-V"]) == ["python", "-V"]
    assert img.kubernetes_argv([], []) == img.kubernetes_argv(None, None)  # empty is unset


def test_a_server_that_never_becomes_ready_fails_its_startup_probe_after_the_threshold(
    tmp_path: Path,
) -> None:
    # the first probe waits initialDelaySeconds (5 x 0.2 s): the server listens by then, so each failure is its 503
    start = fake_pod(tmp_path, "never-ready", startup={"initialDelaySeconds": 5})
    run = kubelet.run_pod(start, [kubelet.Request("POST", "/x", {})])
    assert not run.passed and run.ready_after_s is None and run.requests_ok == 0
    (startup,) = run.probes
    assert startup.kind == "startup" and startup.probes == 3  # failureThreshold 3, then the kubelet kills it
    assert run.failure.startswith("Startup probe failed 3 times in a row")
    assert "HTTP probe failed with statuscode: 503" in run.failure
    assert "kill the container and restart it" in run.failure
    assert 1.35 < startup.after_s < 4  # the delay, then three probes 0.2 s apart (periodSeconds 1 x 0.2)
    assert run.killed is False and run.exit_code == 143  # stopped by SIGTERM


def test_readiness_failing_leaves_the_pod_not_ready(tmp_path: Path) -> None:
    run = kubelet.run_pod(fake_pod(tmp_path, "not-ready"))
    assert [(p.kind, p.ok) for p in run.probes] == [("startup", True), ("readiness", False)]
    assert run.failure.startswith("Readiness probe failed 2 times in a row") and "NotReady" in run.failure


def test_a_container_that_exits_while_starting_is_reported_with_its_code(tmp_path: Path) -> None:
    run = kubelet.run_pod(fake_pod(tmp_path, "crash"))
    assert "exited (code 3) before its startup probe succeeded" in run.failure and run.exit_code == 3


def test_a_server_that_ignores_sigterm_is_killed_after_the_grace_period(tmp_path: Path) -> None:
    start = fake_pod(tmp_path, "ignore-term", terminationGracePeriodSeconds=1)
    run = kubelet.run_pod(start, [kubelet.Request("POST", "/predict", {"pairs": []})] * 3)
    assert run.requests_ok == 3 and run.liveness_ok is True and run.ready_after_s is not None
    assert run.killed and run.exit_code == 137  # SIGKILL
    assert run.stopped_after_s is not None and 1.0 <= run.stopped_after_s < 3
    assert "did not exit within terminationGracePeriodSeconds (1 s)" in run.failure and not run.passed


def test_a_server_that_stops_on_sigterm_passes(tmp_path: Path) -> None:
    run = kubelet.run_pod(fake_pod(tmp_path, "ok"), [kubelet.Request("POST", "/predict", {})] * 2)
    assert run.passed, run.failure
    assert (run.requests_ok, run.liveness_ok, run.killed, run.exit_code) == (2, True, False, 143)

"""`mlhpc emulate batch`: every Batch job of a config run as Batch would run it, outputs checked in S3 on moto.

Multi-node workloads (pinn, allreduce) run on two nodes with ``--ranks-per-node 1``: the default
config's g5.12xlarge gives each node 4 GPUs, so the job definition's command starts 4 ranks per
node (``--nproc-per-node 4``); on this machine's 2 shared cores each node starts one instead, an
emulation-only change the command prints as a note. Everything else is the synthesized definition.

The matrix covers every config in ``config/`` and ``config/examples/``; all but the default are
marked ``slow`` and skipped unless ``MLHPC_EMULATE_ALL=1`` (each config is one more synthesis and
its workloads' runs: minutes on 2 cores). A workload whose config synthesizes no Batch job
definition for it is skipped, naming why.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlhpc_app.aws.cluster import CannotStart
from mlhpc_app.emulate.batch import emulate_batch
from tests.emulate.conftest import REPO, emulate
from workloads import registry

CONFIGS = [REPO / "config" / "default.yaml", *sorted((REPO / "config" / "examples").glob("*.yaml"))]
ALL = os.environ.get("MLHPC_EMULATE_ALL") == "1"
MULTI_NODE = {"pinn", "allreduce", "mpi"}
# allreduce's spec lists scaling.csv/png, which only --mode scaling/both writes: run both, the
# scaling study cut to one variant and two steps (78 s on 2 cores otherwise).
EXTRA = {
    "bert": ["--set", "duration_s=1"],
    "allreduce": [
        *("--set", "mode=both", "--set", "variants=plain", "--set", "steps=2", "--set", "warmup_steps=0"),
        *("--set", "max_bytes=65536"),
    ],
}


def _config_param(path: Path) -> Any:
    marks = [] if path.name == "default.yaml" or ALL else [pytest.mark.skip(reason="set MLHPC_EMULATE_ALL=1")]
    return pytest.param(path, id=path.stem, marks=marks)


def _has_job_definition(config: Path, workload: str, workdir: Path) -> bool:
    from mlhpc.config import load_config
    from mlhpc_app.emulate.assembly import synthesized

    outdir = synthesized(load_config(config), config.read_text(encoding="utf-8"), workdir)
    outputs = json.loads((outdir / "HpcStack.template.json").read_text(encoding="utf-8")).get("Outputs", {})
    from mlhpc.contract import job_definition_output

    return job_definition_output(workload).key in outputs


@pytest.mark.synth
@pytest.mark.parametrize("config", [_config_param(p) for p in CONFIGS])
@pytest.mark.parametrize("workload", registry.names())
def test_every_batch_job_of_the_config_runs_and_writes_its_outputs(
    config: Path, workload: str, emulate_workdir: Path
) -> None:
    if not _has_job_definition(config, workload, emulate_workdir):
        pytest.skip(f"{config.name} synthesizes no Batch job definition for {workload}")
    nodes = ["--nodes", "2", "--ranks-per-node", "1"] if workload in MULTI_NODE else []
    result = emulate(emulate_workdir, workload, "--demo", *nodes, *EXTRA.get(workload, []), config=config)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["status"] == "SUCCEEDED" and summary["missing_outputs"] == []
    spec = registry.get(workload)
    local = Path(summary["local_outputs"])  # copied from the results URI on moto
    assert summary["outputs"].startswith("s3://") and all((local / name).is_file() for name in spec.outputs)
    (attempt,) = summary["attempts"]
    assert attempt["exit_code"] == 0
    if workload in MULTI_NODE:
        assert attempt["nodes"] == {"0": 0, "1": 0}
        metrics = json.loads((local / "metrics.json").read_text(encoding="utf-8"))
        assert metrics.get("world_size", 2) == 2  # two nodes x one rank


PINN = [
    "--set", "problem=oscillator", "--set", "adam_steps=1500", "--set", "lbfgs_steps=0",
    "--set", "checkpoint_every=25", "--set", "threads=1", "--set", "progress=false",
]  # fmt: skip


@pytest.mark.synth
def test_spot_reclaim_rehearsal_resumes_and_ends_as_an_uninterrupted_run(emulate_workdir: Path) -> None:
    two = ["--nodes", "2", "--ranks-per-node", "1"]
    straight = emulate(emulate_workdir, "pinn", *two, *PINN)
    assert straight.exit_code == 0, straight.output
    plain = json.loads(straight.stdout)
    # Reclaim well into training: after start-up and some checkpoints, before the end.
    after = round(0.7 * plain["attempts"][0]["duration_s"], 1)
    reclaimed = emulate(emulate_workdir, "pinn", *two, *PINN, "--reclaim-after", str(after))
    assert reclaimed.exit_code == 0, reclaimed.output
    summary = json.loads(reclaimed.stdout)
    first, second = summary["attempts"]
    assert first["reclaimed"] and first["exit_code"] == 143 and first["nodes"] == {"0": 143, "1": 143}
    assert second["exit_code"] == 0 and not second["reclaimed"]
    local, reference = Path(summary["local_outputs"]), Path(plain["local_outputs"])
    resumed = json.loads((local / "metrics.json").read_text(encoding="utf-8"))
    expected = json.loads((reference / "metrics.json").read_text(encoding="utf-8"))
    assert 0 < resumed["resumed_from_step"] < 1500
    assert resumed["relative_l2"] == expected["relative_l2"]
    with np.load(local / "prediction.npz") as got, np.load(reference / "prediction.npz") as want:
        np.testing.assert_array_equal(got["prediction"], want["prediction"])  # bitwise, as the resume tests


# --- wrong requests fail as the service would ---------------------------------------------


def test_an_unknown_option_is_the_submit_error(emulate_workdir: Path) -> None:
    result = emulate(emulate_workdir, "hello", "--set", "nope=1")
    assert result.exit_code == 1
    assert "error: hello has no argument 'nope'" in result.stderr
    assert "fix: use one of: chunk, n, stop_after_chunks" in result.stderr


def test_an_unknown_workload_is_the_submit_error(emulate_workdir: Path) -> None:
    result = emulate(emulate_workdir, "nosuch")
    assert result.exit_code == 1 and "nosuch" in result.stderr and "Traceback" not in result.output


@pytest.mark.synth
def test_a_missing_parameter_stays_literal_and_the_outputs_are_not_where_asked(emulate_workdir: Path) -> None:
    """A definition without the `out` default and a request that sends no command (Batch leaves Ref::out)."""

    def no_out(definition: dict[str, Any]) -> dict[str, Any]:
        del definition["parameters"]["out"]
        return definition

    def no_command(request: dict[str, Any]) -> dict[str, Any]:
        del request["containerOverrides"]["command"]
        return request

    em = emulate_batch(
        "hello", demo=True, workdir=emulate_workdir, edit_definition=no_out, edit_request=no_command
    )
    assert any("Ref::out" in note for note in em.job.notes)
    assert em.job.succeeded  # the container ran, writing to a directory named Ref::out
    assert not em.succeeded and em.missing == ["metrics.json"]
    node = em.job.attempts[0].logs[0].parent
    assert (node / "workdir" / "Ref::out" / "metrics.json").is_file()


@pytest.mark.synth
def test_a_job_no_instance_of_the_queue_holds_is_refused_with_the_placement_reason(
    emulate_workdir: Path,
) -> None:
    def huge(definition: dict[str, Any]) -> dict[str, Any]:
        for req in definition["containerProperties"]["resourceRequirements"]:
            if req["type"] == "MEMORY":
                req["value"] = str(1024 * 1024)
        return definition

    with pytest.raises(CannotStart) as refused:
        emulate_batch("hello", demo=True, workdir=emulate_workdir, edit_definition=huge)
    assert "Batch would accept hello on the cpu queue and never start it" in refused.value.message
    assert "1048576 MiB" in refused.value.message


@pytest.mark.synth
def test_the_attempt_timeout_stops_the_job_and_is_not_retried(emulate_workdir: Path) -> None:
    def short(definition: dict[str, Any]) -> dict[str, Any]:
        definition["timeout"] = {"attemptDurationSeconds": 3}
        return definition

    em = emulate_batch(
        "pinn", sets=PINN[1::2], workdir=emulate_workdir, nodes=1, ranks_per_node=1, edit_definition=short
    )
    (attempt,) = em.job.attempts
    assert attempt.timed_out and attempt.status_reason == "Job attempt duration exceeded timeout"
    assert em.job.status == "FAILED"


# --- in the workload's real image, where a container engine is present ---------------------------


@pytest.fixture
def fake_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "docker"
    shim.write_text(
        f'#!/bin/sh\nexec {sys.executable} {REPO / "tests" / "emulate" / "fake_engine.py"} "$@"\n'
    )
    shim.chmod(0o755)
    log = tmp_path / "engine.jsonl"
    monkeypatch.setenv("FAKE_ENGINE_LOG", str(log))
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return log


@pytest.mark.synth
def test_with_an_engine_each_node_runs_the_image_with_the_jobs_command(
    emulate_workdir: Path, fake_docker: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlhpc_app.emulate import image

    img = image.read(image.dockerfile(REPO, "hello"))
    config = {
        "Entrypoint": img.entrypoint,
        "Env": {**img.env, "PYTHONPATH": str(REPO)},
        "WorkingDir": str(REPO),
    }
    monkeypatch.setenv("FAKE_ENGINE_IMAGES", json.dumps({"mlhpc/hello:latest": config}))
    result = emulate(emulate_workdir, "hello", "--demo", "--engine", "docker")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["status"] == "SUCCEEDED" and summary["missing_outputs"] == []
    calls = [json.loads(line) for line in fake_docker.read_text(encoding="utf-8").splitlines()]
    (run,) = [c for c in calls if c[:1] == ["run"]]
    ref = run.index("mlhpc/hello:latest")
    # the override's command replaces the image's CMD; its ENTRYPOINT stays the image's
    assert run[ref + 1 :] == summary["request"]["containerOverrides"]["command"]
    assert run[ref + 1 :][:1] != ["python"]
    assert run[run.index("--network") : run.index("--network") + 2] == ["--network", "host"]
    names = {run[i + 1] for i, flag in enumerate(run) if flag == "-e"}
    assert {"AWS_BATCH_JOB_ID", "AWS_ENDPOINT_URL", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"} <= names
    assert not any("=" in name for name in names)  # values never on the command line (credentials)
    assert any(v.endswith(":/efs") for v in run if v.count(":") == 1 and v.startswith("/"))


def test_an_image_the_engine_lacks_says_how_to_build_it(
    emulate_workdir: Path, fake_docker: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_ENGINE_IMAGES", "{}")
    result = emulate(emulate_workdir, "hello", "--demo", "--engine", "docker")
    assert result.exit_code == 1 and "docker has no image mlhpc/hello:latest" in result.stderr
    assert "docker build -f workloads/hello/Dockerfile -t mlhpc/hello:latest ." in result.stderr
    if shutil.which("podman") is None:
        missing = emulate(emulate_workdir, "hello", "--engine", "podman")
        assert (
            missing.exit_code == 1
            and "--engine podman was asked for, but `podman` is not on PATH" in missing.stderr
        )


@pytest.mark.synth
def test_spot_reclaim_rehearsal_of_the_checkpointed_sum_resumes_to_the_exact_answer(
    emulate_workdir: Path,
) -> None:
    n, chunk = 400_000, 10_000  # 40 chunks, a checkpoint after each
    sets = ["--set", f"n={n}", "--set", f"chunk={chunk}"]
    two: list[str] = []  # hello is a single-node job on Batch (its ranks are a local world)
    straight = emulate(emulate_workdir, "hello", *two, *sets)
    assert straight.exit_code == 0, straight.output
    duration = json.loads(straight.stdout)["attempts"][0]["duration_s"]
    reclaimed = emulate(
        emulate_workdir, "hello", *two, *sets, "--reclaim-after", str(round(0.6 * duration, 2))
    )
    assert reclaimed.exit_code == 0, reclaimed.output
    summary = json.loads(reclaimed.stdout)
    first, second = summary["attempts"]
    assert first["reclaimed"] and first["exit_code"] == 143 and second["exit_code"] == 0
    metrics = json.loads((Path(summary["local_outputs"]) / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["total"] == n * (n + 1) // 2  # Gauss, exactly, across the interruption
    assert 0 < metrics["resumed_from_chunk"] < n // chunk

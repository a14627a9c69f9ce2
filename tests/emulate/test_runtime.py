"""What Batch makes of a request, without running anything: overrides, Ref::, node ranges, retries."""

from __future__ import annotations

import os
import sys
from typing import Any

import pytest

from mlhpc_app.emulate import runtime

STRATEGY = {  # what HpcStack's job definitions carry
    "attempts": 3,
    "evaluateOnExit": [
        {"action": "RETRY", "onStatusReason": "Host EC2*"},
        {"action": "RETRY", "onExitCode": "143"},
        {"action": "EXIT", "onExitCode": "*"},
    ],
}


def single(**container: Any) -> dict[str, Any]:
    return {
        "type": "container",
        "parameters": {"out": "s3://results/default", "checkpoint": "s3://ckpt/default"},
        "retryStrategy": STRATEGY,
        "containerProperties": {
            "command": ["--out", "Ref::out", "--checkpoint-dir", "Ref::checkpoint"],
            "environment": [{"name": "A", "value": "definition"}, {"name": "B", "value": "definition"}],
            **container,
        },
    }


def test_override_replaces_the_command_and_merges_the_environment() -> None:
    request = {
        "containerOverrides": {"command": ["--n", "5"], "environment": [{"name": "B", "value": "override"}]}
    }
    merged = runtime.container(single(), request, 0)
    assert merged["command"] == ["--n", "5"]
    assert {e["name"]: e["value"] for e in merged["environment"]} == {"A": "definition", "B": "override"}


def test_parameters_come_from_the_request_then_the_definition_and_an_unfilled_one_stays() -> None:
    definition = single()
    definition["containerProperties"]["command"].append("Ref::nope")
    merged = runtime.container(definition, {"parameters": {"out": "s3://given/"}}, 0)
    assert merged["command"] == ["--out", "s3://given/", "--checkpoint-dir", "s3://ckpt/default", "Ref::nope"]
    assert runtime.unfilled(merged["command"]) == ["Ref::nope"]


def test_node_ranges_and_overrides_target_nodes() -> None:
    definition = {
        "type": "multinode",
        "nodeProperties": {
            "numNodes": 2,
            "mainNode": 0,
            "nodeRangeProperties": [
                {"targetNodes": "0", "container": {"command": ["main"]}},
                {"targetNodes": "1:", "container": {"command": ["child"]}},
            ],
        },
    }
    request = {
        "nodeOverrides": {
            "numNodes": 3,
            "nodePropertyOverrides": [{"targetNodes": "2:2", "containerOverrides": {"command": ["last"]}}],
        }
    }
    assert runtime.num_nodes(definition, request) == 3
    assert [runtime.container(definition, request, i)["command"] for i in range(3)] == [
        ["main"],
        ["child"],
        ["last"],
    ]


@pytest.mark.parametrize(
    ("code", "reason", "action"),
    [
        (143, runtime.ESSENTIAL_EXITED, "RETRY"),  # a Spot reclaim (SIGTERM) is retried
        (1, runtime.ESSENTIAL_EXITED, "EXIT"),  # a failure is not
        (None, "Host EC2 (instance i-1) terminated.", "RETRY"),  # a lost host is
    ],
)
def test_evaluate_on_exit_first_matching_rule_decides(code: int | None, reason: str, action: str) -> None:
    assert runtime.on_exit(single(), {}, exit_code=code, status_reason=reason) == action


def test_no_matching_rule_retries_and_attempts_and_timeout_come_from_the_request_first() -> None:
    definition = single()
    definition["retryStrategy"] = {"attempts": 2, "evaluateOnExit": [{"action": "EXIT", "onExitCode": "2"}]}
    assert runtime.on_exit(definition, {}, exit_code=1, status_reason="") == "RETRY"
    assert runtime.attempts_allowed(definition, {}) == 2
    assert runtime.attempts_allowed(definition, {"retryStrategy": {"attempts": 5}}) == 5
    definition["timeout"] = {"attemptDurationSeconds": 60}
    assert runtime.timeout_s(definition, {"timeout": {"attemptDurationSeconds": 7}}) == 7


def test_container_paths_are_mapped_to_local_directories(tmp_path: Any) -> None:
    mapping = {"/fsx": tmp_path / "fsx", "/tmp": tmp_path / "tmp"}
    assert runtime.rewrite("/fsx/data/x", mapping) == str(tmp_path / "fsx" / "data" / "x")
    assert runtime.rewrite("/fsxy", mapping) == "/fsxy"
    assert runtime.rewrite("s3://b/fsx", mapping) == "s3://b/fsx"
    assert runtime.set_ranks(["--nproc-per-node", "4", "--out", "x"], 1) == [
        "--nproc-per-node",
        "1",
        "--out",
        "x",
    ]


def test_batch_variables_reach_each_node_and_only_children_get_the_main_address(tmp_path: Any) -> None:
    from mlhpc_app.emulate.image import parse

    definition = {
        "type": "multinode",
        "nodeProperties": {
            "numNodes": 2,
            "mainNode": 0,
            "nodeRangeProperties": [
                {
                    "targetNodes": "0:",
                    "container": {
                        "command": ["--out", "/fsx/out"],
                        "environment": [{"name": "DATA", "value": "/efs/data"}],
                        "volumes": [
                            {"name": "fsx", "host": {"sourcePath": "/fsx"}},
                            {"name": "efs", "host": {"sourcePath": "/efs"}},
                        ],
                        "mountPoints": [
                            {"containerPath": "/fsx", "sourceVolume": "fsx"},
                            {"containerPath": "/efs", "sourceVolume": "efs"},
                        ],
                    },
                }
            ],
        },
    }
    image = parse(
        'FROM x\nWORKDIR /opt/app\nENV PYTHONPATH=/opt/app DATA=image\nENTRYPOINT ["python", "-m", "w"]\n'
    )
    layout = runtime.Layout(
        workdir=tmp_path, repo=tmp_path / "repo", endpoint="http://127.0.0.1:1", region="us-east-1",
        queue_name="q", environment_name="ce",
    )  # fmt: skip
    starts = [
        runtime.node_start(definition, {}, image, layout, job_id="j", attempt=2, index=i, port=1234)
        for i in range(2)
    ]
    main, child = (s.env for s in starts)
    assert starts[0].argv[1:] == ["-m", "w", "--out", str(tmp_path / "j" / "volumes" / "fsx" / "out")]
    assert main["DATA"] == str(tmp_path / "j" / "volumes" / "efs" / "data")  # the job's env over the image's
    assert main["PYTHONPATH"] == str(tmp_path / "repo")
    assert starts[0].cwd == tmp_path / "j" / "attempt-2" / "node-0" / "workdir"
    assert (main["AWS_BATCH_JOB_ID"], child["AWS_BATCH_JOB_ID"]) == ("j#0", "j#1")
    for env in (main, child):
        assert env["AWS_BATCH_JOB_ATTEMPT"] == "2" and env["AWS_BATCH_JOB_NUM_NODES"] == "2"
        assert (env["AWS_BATCH_JQ_NAME"], env["AWS_BATCH_CE_NAME"]) == ("q", "ce")
        assert env["AWS_BATCH_JOB_MAIN_NODE_INDEX"] == "0"
    assert "AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS" not in main
    assert child["AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS"] == "127.0.0.1"


def test_the_interpreter_is_never_taken_for_a_container_path(tmp_path: Any, monkeypatch: Any) -> None:
    # a checkout (and its venv) under /tmp: the container's /tmp maps to a node directory, the host's
    # interpreter must stay where it is (CI clones into /tmp)
    import sys

    from mlhpc_app.emulate.image import parse

    monkeypatch.setattr(sys, "executable", "/tmp/ci/.venv/bin/python")
    definition = {"containerProperties": {"command": ["--scratch", "/tmp/s"]}}
    image = parse('FROM x\nENTRYPOINT ["python", "-m", "w"]\n')
    layout = runtime.Layout(
        workdir=tmp_path, repo=tmp_path / "repo", endpoint="http://127.0.0.1:1", region="us-east-1",
        queue_name="q", environment_name="ce",
    )  # fmt: skip
    start = runtime.node_start(definition, {}, image, layout, job_id="j", attempt=1, index=0, port=1)
    assert start.argv[0] == "/tmp/ci/.venv/bin/python"
    assert start.argv[-1] == str(tmp_path / "j" / "attempt-1" / "node-0" / "tmp" / "s")


def _starts(tmp_path: Any, *scripts: str) -> list[runtime.NodeStart]:
    return [
        runtime.NodeStart(
            index=i, argv=[sys.executable, "-c", code], env={"PATH": os.environ["PATH"]}, cwd=tmp_path,
            log=tmp_path / f"node-{i}.log",
        )
        for i, code in enumerate(scripts)
    ]  # fmt: skip


def _layout(tmp_path: Any) -> runtime.Layout:
    return runtime.Layout(
        workdir=tmp_path, repo=tmp_path, endpoint="", region="us-east-1", queue_name="", environment_name="",
        grace_s=2.0,
    )  # fmt: skip


def test_sagemaker_ends_when_every_host_is_done_or_the_first_fails(tmp_path: Any) -> None:
    # every host exits 0: the job waits for the last one, though the first finished long before
    done = runtime.run_attempt(
        _starts(tmp_path, "pass", "import time; time.sleep(1.0)"),
        main=0, number=1, layout=_layout(tmp_path), limit_s=None, reclaim_after_s=None, until=runtime.UNTIL_ALL,
    )  # fmt: skip
    assert (done.exit_code, done.nodes, done.ended_by) == (0, {0: 0, 1: 0}, 0)
    assert done.duration_s >= 1.0
    # a worker fails: the job fails with its code at once, and the main host is stopped (SIGTERM: 143)
    failed = runtime.run_attempt(
        _starts(tmp_path, "import time; time.sleep(60)", "import time, sys; time.sleep(0.3); sys.exit(3)"),
        main=0, number=1, layout=_layout(tmp_path), limit_s=None, reclaim_after_s=None, until=runtime.UNTIL_ALL,
    )  # fmt: skip
    assert (failed.exit_code, failed.ended_by, failed.nodes[0]) == (3, 1, 143)
    assert failed.duration_s < 10


def test_batch_ends_with_the_main_node_whatever_a_child_does(tmp_path: Any) -> None:
    attempt = runtime.run_attempt(
        _starts(tmp_path, "import time; time.sleep(0.5)", "import sys; sys.exit(3)"),
        main=0, number=1, layout=_layout(tmp_path), limit_s=None, reclaim_after_s=None,
    )  # fmt: skip
    assert (attempt.exit_code, attempt.ended_by, attempt.nodes[1]) == (0, 0, 3)

"""`mlhpc submit` against moto: requests, idempotency, following, and every error a user meets."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from mlhpc_app.aws import batch as batch_adapter
from tests.aws.harness import MOTO_CONFIG, default_stacks, deploy, put_logs, register_multi_node
from tests.cli.conftest import Cli


def batch_jobs(queue: str = "mlhpc-cpu") -> list[dict[str, Any]]:
    client = boto3.client("batch", region_name="us-east-1")
    return client.list_jobs(jobQueue=queue, filters=[{"name": "JOB_NAME", "values": ["mlhpc-*"]}])[
        "jobSummaryList"
    ]


def test_detach_prints_the_job_id_and_next_commands(cli: Cli, stacks: dict) -> None:
    result = cli("submit", "hello", "--set", "n=500", "--detach")
    assert result.exit_code == 0, result.output
    [job] = batch_jobs()
    assert (
        f"hello submitted {job['jobId']} (batch, {job['jobName']}); outputs -> s3://mlhpc-results-123/hello/"
        in result.stdout
    )
    for command in ("status", "logs", "results", "cancel"):
        assert f"mlhpc {command} {job['jobId']}" in result.stdout
    described = boto3.client("batch", region_name="us-east-1").describe_jobs(jobs=[job["jobId"]])["jobs"][0]
    run_id = described["tags"]["mlhpc:run-id"]
    # The command carries the spec's non-default arguments and the contract's output/checkpoint prefixes,
    # options only: it follows the image's ENTRYPOINT (python -m workloads.hello).
    assert described["container"]["command"] == [
        "--n",
        "500",
        "--out",
        f"s3://mlhpc-results-123/hello/{run_id}/",
        "--checkpoint-dir",
        f"s3://mlhpc-checkpoints-123/hello/{run_id}/",
    ]
    assert described["tags"]["mlhpc:workload"] == "hello"


def test_same_client_token_makes_one_job(cli: Cli, stacks: dict) -> None:
    first = cli.json("submit", "hello", "--client-token", "tok-1", "--detach")
    second = cli.json("submit", "hello", "--client-token", "tok-1", "--detach")
    assert first["created"] is True and second["created"] is False
    assert first["job_id"] == second["job_id"]
    assert len(batch_jobs()) == 1
    other = cli.json("submit", "hello", "--client-token", "tok-2", "--detach")
    assert other["job_id"] != first["job_id"] and len(batch_jobs()) == 2


def test_reusing_a_token_for_another_request_is_refused(cli: Cli, stacks: dict) -> None:
    cli.json("submit", "hello", "--client-token", "tok-1", "--detach")
    result = cli("submit", "hello", "--client-token", "tok-1", "--set", "n=7", "--detach")
    assert result.exit_code == 1
    assert "error: client token 'tok-1' was already used for a different request (job " in result.stderr
    assert len(batch_jobs()) == 1


def test_a_lost_submit_answer_is_looked_up_not_resent(stacks: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """Throttling on SubmitJob after the job was made: the retry finds it instead of making a second one."""
    from botocore.exceptions import ClientError

    from mlhpc_app.aws.session import Aws
    from mlhpc_app.aws.stacks import Deployment
    from workloads.registry import get

    aws = Aws.connect()
    spec = get("hello")
    sub = batch_adapter.prepare(
        aws,
        Deployment.load(aws, "mlhpc"),
        spec,
        spec.args(),
        nodes=None,
        queue_kind=None,
        token="t",
        run_id="r1",
    )
    client = aws.client("batch", retries=False)
    real = client.submit_job
    calls = []

    def flaky(**kwargs: Any) -> Any:
        calls.append(kwargs)
        real(**kwargs)  # the job is made, but the answer is "lost" as a throttling error
        raise ClientError(
            {"Error": {"Code": "TooManyRequestsException", "Message": "slow down"}}, "SubmitJob"
        )

    monkeypatch.setattr(client, "submit_job", flaky)
    job_id, created = batch_adapter.submit(aws, sub, sleep=lambda _s: None)
    assert (len(calls), created) == (1, False)
    assert [j["jobId"] for j in batch_jobs()] == [job_id]


def test_throttled_submit_gives_up_with_the_token_to_retry(
    stacks: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.exceptions import ClientError

    from mlhpc.errors import Throttled
    from mlhpc_app.aws.session import Aws
    from mlhpc_app.aws.stacks import Deployment
    from workloads.registry import get

    aws = Aws.connect()
    spec = get("hello")
    sub = batch_adapter.prepare(
        aws,
        Deployment.load(aws, "mlhpc"),
        spec,
        spec.args(),
        nodes=None,
        queue_kind=None,
        token="tok-9",
        run_id="r1",
    )
    client = aws.client("batch", retries=False)

    def throttled(**_kwargs: Any) -> Any:
        raise ClientError(
            {"Error": {"Code": "TooManyRequestsException", "Message": "slow down"}}, "SubmitJob"
        )

    monkeypatch.setattr(client, "submit_job", throttled)
    with pytest.raises(Throttled) as caught:
        batch_adapter.submit(aws, sub, sleep=lambda _s: None)
    assert str(caught.value) == (
        "AWS kept refusing batch:SubmitJob (ClientError) after 6 tries; no job was created"
    )
    assert (
        caught.value.fix
        == "wait a minute and submit again with the same --client-token tok-9 (it will not make a second job)"
    )
    assert batch_jobs() == []


def test_dry_run_prints_the_request_and_submits_nothing(cli: Cli, stacks: dict) -> None:
    data = cli.json("submit", "hello", "--set", "n=9", "--dry-run", "--queue", "gpu-spot")
    assert data["call"] == "batch.submit_job"
    request = data["request"]
    assert request["jobQueue"] == stacks["mlhpc-hpc"]["JobQueueGpuSpot"]
    assert request["jobDefinition"] == stacks["mlhpc-hpc"]["JobDefinitionHello"]
    assert request["containerOverrides"]["command"][:2] == ["--n", "9"]
    assert batch_jobs() == [] and batch_jobs("mlhpc-gpu-spot") == []
    table = cli("submit", "hello", "--dry-run")
    assert "dry run: would call batch.submit_job in us-east-1 with:" in table.stdout
    assert "nothing was submitted; drop --dry-run to submit." in table.stdout


def test_multi_node_uses_node_overrides() -> None:
    from moto import mock_aws

    with mock_aws(config=MOTO_CONFIG):  # type: ignore[arg-type]
        arn = register_multi_node("hello")
        deploy(default_stacks(workloads={"hello": arn}))
        data = Cli().json("submit", "hello", "--nodes", "4", "--dry-run")
        overrides = data["request"]["nodeOverrides"]
        assert overrides["numNodes"] == 4
        [node] = overrides["nodePropertyOverrides"]
        assert node["targetNodes"] == "0:"
        assert "--out" in node["containerOverrides"]["command"]
        assert "containerOverrides" not in data["request"]
        job = Cli().json("submit", "hello", "--nodes", "2", "--detach")
        assert job["created"] is True


def test_nodes_on_a_single_node_job_definition(cli: Cli, stacks: dict) -> None:
    result = cli("submit", "hello", "--nodes", "2", "--dry-run")
    assert result.exit_code == 1
    assert (
        "error: --nodes 2 needs a multi-node job definition, but mlhpc-hpc-JobDefinitionHello-"
        in result.stderr
    )
    assert "is single-node" in result.stderr


def test_follow_streams_logs_and_summarizes(cli: Cli, stacks: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    real_submit = batch_adapter.submit

    def submit_and_log(aws: Any, sub: Any, **kw: Any) -> tuple[str, bool]:
        job_id, created = real_submit(aws, sub, **kw)
        stream = batch_adapter.describe(aws, job_id).log_stream
        put_logs(stream, ["hello: sum of 1..10000 over 1 rank(s) = 50005000", "hello: outputs in s3://..."])
        return job_id, created

    monkeypatch.setattr(batch_adapter, "submit", submit_and_log)
    result = cli("submit", "hello", "--poll-s", "0")
    assert result.exit_code == 0, result.output
    assert "hello: sum of 1..10000 over 1 rank(s) = 50005000" in result.stdout
    assert "SUCCEEDED" in result.stdout
    [job] = batch_jobs()
    assert f"SUCCEEDED. next: mlhpc results {job['jobId']}" in result.stdout


def test_failed_job_exits_1_with_reason_and_last_lines(
    cli: Cli, stacks: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOTO_SIMPLE_BATCH_FAIL_AFTER", "0")
    real_submit = batch_adapter.submit

    def submit_and_log(aws: Any, sub: Any, **kw: Any) -> tuple[str, bool]:
        job_id, created = real_submit(aws, sub, **kw)
        put_logs(
            batch_adapter.describe(aws, job_id).log_stream, [f"line {i}" for i in range(30)] + ["error: boom"]
        )
        return job_id, created

    monkeypatch.setattr(batch_adapter, "submit", submit_and_log)
    result = cli("submit", "hello", "--poll-s", "0")
    assert result.exit_code == 1
    [job] = batch_jobs()
    info = boto3.client("batch", region_name="us-east-1").describe_jobs(jobs=[job["jobId"]])["jobs"][0]
    reason = info.get("statusReason", "")
    assert f"error: job {job['jobId']} (hello) FAILED: {reason or 'no reason given'}" in result.stderr
    assert f"status reason: {reason or '(none given)'}" in result.stderr
    assert "last log lines:" in result.stderr
    assert "  error: boom" in result.stderr
    assert "  line 11" in result.stderr and "  line 10" not in result.stderr  # the last 20 lines
    assert f"next: mlhpc logs {job['jobId']}" in result.stderr


def test_workload_needing_efa_on_a_queue_without_it(
    cli: Cli, stacks: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlhpc.spec import Efa, Resources
    from workloads import registry

    spec = registry.get("hello")
    efa_spec = spec.model_copy(update={"resources": Resources(gpus_per_node=8, efa=Efa.REQUIRED)})
    monkeypatch.setattr(registry, "get", lambda name: efa_spec)
    result = cli("submit", "hello", "--detach")
    assert result.exit_code == 1
    assert (
        "error: hello needs EFA (resources.efa=required) but the gpu queue in mlhpc-hpc has no EFA-capable instances"
        in result.stderr
    )
    assert "next: cdk deploy HpcStack" in result.stderr
    assert batch_jobs("mlhpc-gpu") == []


def test_stack_not_deployed(cli: Cli) -> None:
    from moto import mock_aws

    with mock_aws():
        result = cli("submit", "hello", "--detach")
    assert result.exit_code == 1
    assert "error: HpcStack is not deployed in us-east-1: run `cdk deploy HpcStack`" in result.stderr
    with mock_aws():
        other = cli("submit", "hello", "--detach", "--region", "eu-west-1")
    assert "error: HpcStack is not deployed in eu-west-1: run `cdk deploy HpcStack`" in other.stderr


def test_no_credentials(cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    result = cli("submit", "hello", "--detach")
    assert result.exit_code == 1
    assert "error: no AWS credentials found" in result.stderr
    assert (
        "fix: run `aws configure` or `aws sso login`, or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        in result.stderr
    )


def test_no_region(cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    for key in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    result = cli("submit", "hello", "--detach")
    assert result.exit_code == 1
    assert "error: no AWS region is set (the config deploys to us-east-1)" in result.stderr
    assert "fix: export AWS_DEFAULT_REGION=us-east-1 (AWS_REGION works too) or pass --region us-east-1" in (
        result.stderr
    )


@pytest.mark.parametrize("variable", ["AWS_DEFAULT_REGION", "AWS_REGION"])
def test_doing_what_the_region_fix_says_works(
    cli: Cli, stacks: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any, variable: str
) -> None:
    # the fix names variables; boto3 reads only AWS_DEFAULT_REGION, so each must really be read
    for key in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    first = cli("submit", "hello", "--detach")
    assert variable in first.stderr
    monkeypatch.setenv(variable, "us-east-1")
    result = cli("submit", "hello", "--detach")
    assert "no AWS region" not in result.stderr
    assert result.exit_code == 0, result.stderr


def test_unknown_workload_lists_the_known_ones(cli: Cli) -> None:
    result = cli("submit", "helo")
    assert result.exit_code == 1
    from workloads import registry

    known = ", ".join(registry.names())
    assert (
        f"error: unknown workload 'helo' (did you mean 'hello'?); known workloads: {known}" in result.stderr
    )


def test_set_out_of_range_and_unknown_key(cli: Cli) -> None:
    result = cli("submit", "hello", "--set", "n=0", "--dry-run")
    assert result.exit_code == 1
    assert "error: hello: n='0' is not valid: Input should be greater than or equal to 1" in result.stderr
    assert "fix: give n a value >= 1 and <= 1000000000" in result.stderr
    unknown = cli("submit", "hello", "--set", "chunks=3", "--dry-run")
    assert "error: hello has no argument 'chunks' (did you mean 'chunk'?)" in unknown.stderr
    assert "fix: use one of: chunk, n, stop_after_chunks" in unknown.stderr


def test_sagemaker_training_job(cli: Cli, stacks: dict) -> None:
    data = cli.json("submit", "hello", "--backend", "sagemaker", "--set", "n=42", "--dry-run")
    request = data["request"]
    assert data["call"] == "sagemaker.create_training_job"
    assert (
        request["AlgorithmSpecification"]["TrainingImage"]
        == stacks["mlhpc-hpc"]["RepositoryHelloUri"] + ":0.1.0"  # the same tag as the job definitions
    )
    assert request["RoleArn"] == stacks["mlhpc-hpc"]["SageMakerRoleArn"]
    assert request["HyperParameters"] == {"n": "42", "chunk": "1000", "stop_after_chunks": "0"}
    # no input named: no channel (CreateTrainingJob refuses a prefix with no objects)
    assert "InputDataConfig" not in request
    assert request["OutputDataConfig"]["S3OutputPath"].startswith("s3://mlhpc-results-123/hello/")
    first = cli.json("submit", "hello", "--backend", "sagemaker", "--client-token", "sm", "--detach")
    again = cli.json("submit", "hello", "--backend", "sagemaker", "--client-token", "sm", "--detach")
    assert first["created"] is True and again["created"] is False and first["job_id"] == again["job_id"]
    status = cli.json("status", first["job_id"])
    assert status["backend"] == "sagemaker" and status["workload"] == "hello"


def test_backend_the_spec_does_not_declare(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlhpc.spec import Backend
    from workloads import registry

    spec = registry.get("hello").model_copy(update={"backends": frozenset({Backend.LOCAL, Backend.BATCH})})
    monkeypatch.setattr(registry, "get", lambda name: spec)
    result = cli("submit", "hello", "--backend", "eks", "--dry-run")
    assert result.exit_code == 1
    assert "error: hello does not support the eks backend (it supports: batch)" in result.stderr


def test_json_output_of_detach(cli: Cli, stacks: dict) -> None:
    data = cli.json("submit", "hello", "--detach")
    assert set(data) >= {"job_id", "name", "backend", "run_id", "created", "client_token", "outputs", "next"}
    assert data["outputs"] == f"s3://mlhpc-results-123/hello/{data['run_id']}/"
    assert json.dumps(data)


def _bucket_with(key: str) -> str:
    import boto3

    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="inputs-1")
    s3.put_object(Bucket="inputs-1", Key=key, Body=b"x")
    return "inputs-1"


@pytest.fixture
def input_stacks() -> Any:
    """The stand-in stacks with job definitions for the workloads that take an input."""
    from tests.aws.harness import default_stacks, moto_stacks

    with moto_stacks(default_stacks(workloads={"qnn": False, "superradiance": False})) as outputs:
        yield outputs


def test_sagemaker_input_becomes_the_training_channel_only_when_it_holds_objects(
    cli: Cli, input_stacks: Any
) -> None:
    bucket = _bucket_with("states/rho.npz")
    empty = cli(
        "submit", "superradiance", "--backend", "sagemaker", "--input", f"s3://{bucket}/nothing/", "--detach"
    )
    assert empty.exit_code == 1
    assert (
        f"error: no S3 objects found under s3://{bucket}/nothing/ (the input of superradiance)"
        in empty.stderr
    )
    assert f"fix: upload the input first (aws s3 cp --recursive DIR s3://{bucket}/nothing/)" in empty.stderr
    data = cli.json(
        "submit", "superradiance", "--backend", "sagemaker", "--input", f"s3://{bucket}/states/", "--dry-run"
    )
    (channel,) = data["request"]["InputDataConfig"]
    assert channel["ChannelName"] == "training"
    assert channel["DataSource"]["S3DataSource"]["S3Uri"] == f"s3://{bucket}/states/"
    assert (
        data["request"]["HyperParameters"].get("initial_state", "") == ""
    )  # unset: the job reads the channel
    done = cli.json(
        "submit", "superradiance", "--backend", "sagemaker", "--input", f"s3://{bucket}/states/", "--detach"
    )
    assert done["created"] is True


def test_batch_input_is_the_workloads_input_argument_and_is_checked(cli: Cli, input_stacks: Any) -> None:
    bucket = _bucket_with("mnist/train-images-idx3-ubyte.gz")
    missing = cli("submit", "qnn", "--set", f"data_uri=s3://{bucket}/none/", "--detach")
    assert missing.exit_code == 1 and "no S3 objects found under" in missing.stderr
    data = cli.json(
        "submit", "qnn", "--set", "dataset=mnist", "--input", f"s3://{bucket}/mnist/", "--dry-run"
    )
    command = data["request"]["containerOverrides"]["command"]
    assert command[command.index("--data-uri") + 1] == f"s3://{bucket}/mnist/"


def test_input_for_a_job_that_takes_none_or_given_twice(cli: Cli, input_stacks: Any) -> None:
    none = cli("submit", "pinn", "--input", "s3://x/y/", "--dry-run")
    assert (
        none.exit_code == 1
        and "error: pinn takes no input; --input s3://x/y/ would not be read" in none.stderr
    )
    twice = cli("submit", "qnn", "--input", "s3://x/a/", "--set", "data_uri=s3://x/b/", "--dry-run")
    assert twice.exit_code == 1 and "both name qnn's input" in twice.stderr

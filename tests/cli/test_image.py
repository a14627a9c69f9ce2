"""`mlhpc image build|push`: a stand-in engine on PATH, CodeBuild and ECR in moto, and submit's image check."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path
from typing import Any

import boto3
import pytest

from mlhpc_app.engine import REPO_ROOT
from tests.aws.harness import REGION, default_image_tag, default_stacks, deploy, moto_stacks, put_image
from tests.cli.conftest import Cli

# moto's GetAuthorizationToken answers base64("AWS:<account>-auth-token").
MOTO_PASSWORD = "123456789012-auth-token"
REGISTRY = f"123456789012.dkr.ecr.{REGION}.amazonaws.com"
HELLO = f"{REGISTRY}/mlhpc/hello"
PINN = f"{REGISTRY}/mlhpc/pinn"


def stand_in_engine(bin_dir: Path, name: str = "docker", *, fail: str = "") -> Path:
    """Write an executable `name` that appends {argv, stdin} as one JSON line to calls.jsonl.

    ``fail`` names a subcommand (build, login, push) that exits 1 after printing a line.
    """
    bin_dir.mkdir(exist_ok=True)
    log = bin_dir / "calls.jsonl"
    script = bin_dir / name
    script.write_text(
        f"""#!{os.sys.executable}
import json, sys
argv = sys.argv[1:]
stdin = sys.stdin.read() if "--password-stdin" in argv else ""
with open({str(log)!r}, "a") as f:
    f.write(json.dumps({{"argv": argv, "stdin": stdin}}) + "\\n")
print("engine says: " + " ".join(argv[:1]))
sys.exit(1 if argv[:1] == [{fail!r}] else 0)
""",
        encoding="utf-8",
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return log


def calls(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()] if log.exists() else []


@pytest.fixture
def engine_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A bin dir holding only the stand-in engine(s), prepended to PATH; real engines are hidden."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{_path_without_engines()}")
    return bin_dir


def _path_without_engines() -> str:
    """PATH minus any directory holding a real docker/podman/finch (a developer's machine may have one)."""
    keep = [
        d
        for d in os.environ.get("PATH", "").split(os.pathsep)
        if d and not any((Path(d) / e).exists() for e in ("docker", "podman", "finch"))
    ]
    return os.pathsep.join(keep)


WORKLOADS = {"hello": False, "pinn": False}  # hello: the smoke test; pinn: a workload with a Dockerfile


@pytest.fixture
def empty_repos() -> Any:
    """Moto with the stacks (hello, pinn) deployed, their repositories empty: nothing pushed yet."""
    from moto import mock_aws

    from tests.aws.harness import MOTO_CONFIG

    with mock_aws(config=MOTO_CONFIG):  # type: ignore[arg-type]
        yield deploy(default_stacks(workloads=WORKLOADS), images=False)


# --- engine path --------------------------------------------------------------------------


@pytest.fixture
def bert_repo() -> Any:
    """Moto with the stacks deployed for bert (its repository empty)."""
    from moto import mock_aws

    from tests.aws.harness import MOTO_CONFIG

    with mock_aws(config=MOTO_CONFIG):  # type: ignore[arg-type]
        yield deploy(default_stacks(workloads={"bert": False}), images=False)


def test_a_variant_is_built_from_its_stage_under_its_tag(
    cli: Cli, engine_path: Path, bert_repo: dict
) -> None:
    from mlhpc import contract

    log = stand_in_engine(engine_path)
    data = cli.json("image", "build", "bert", "--variant", "neuron")
    (call,) = calls(log)
    uri = bert_repo["mlhpc-hpc"]["RepositoryBertUri"]
    reference = contract.image_reference(uri, default_image_tag(), "neuron")  # what the Deployment runs
    assert reference.endswith(f":{default_image_tag()}-neuron")
    assert call["argv"] == [
        "build", "-f", "workloads/bert/Dockerfile", "--build-arg", "VARIANT=neuron", "-t", reference, ".",
    ]  # fmt: skip
    assert data["image"] == reference and data["next"][0].startswith("mlhpc image push bert --variant neuron")


def test_a_variant_is_refused_where_the_dockerfile_has_none(cli: Cli) -> None:
    pinn = cli("image", "build", "pinn", "--variant", "neuron")
    assert pinn.exit_code == 1 and "pinn's Dockerfile has no variants (no ARG VARIANT)" in pinn.stderr
    odd = cli("image", "build", "bert", "--variant", "cuda")
    assert (
        odd.exit_code == 1 and "unknown image variant 'cuda'" in odd.stderr and "inf1, neuron" in odd.stderr
    )


def test_build_runs_the_engine_from_the_repository_root_with_the_deployment_tag(
    cli: Cli, engine_path: Path, empty_repos: dict
) -> None:
    log = stand_in_engine(engine_path)
    data = cli.json("image", "build", "pinn")
    (call,) = calls(log)
    reference = f"{empty_repos['mlhpc-hpc']['RepositoryPinnUri']}:{default_image_tag()}"
    assert reference == f"{PINN}:{default_image_tag()}"
    assert call["argv"] == ["build", "-f", "workloads/pinn/Dockerfile", "-t", reference, "."]
    assert data == {
        "workload": "pinn",
        "image": reference,
        "status": "built",
        "where": "local",
        "engine": "docker",
        "next": [f"mlhpc image push pinn --config {REPO_ROOT / 'config' / 'default.yaml'}"],
    }


def test_push_logs_in_through_stdin_then_pushes_and_never_shows_the_password(
    cli: Cli, engine_path: Path, empty_repos: dict
) -> None:
    log = stand_in_engine(engine_path)
    result = cli("image", "push", "hello", "--output", "json")
    assert result.exit_code == 0, result.output
    login, push = calls(log)
    assert login["argv"] == ["login", "--username", "AWS", "--password-stdin", REGISTRY]
    assert login["stdin"] == MOTO_PASSWORD  # the token moto returns, decoded, on stdin only
    assert push["argv"] == ["push", f"{HELLO}:{default_image_tag()}"]
    for call in (login, push):
        assert all(MOTO_PASSWORD not in arg for arg in call["argv"])
    assert MOTO_PASSWORD not in result.output
    assert base64.b64encode(f"AWS:{MOTO_PASSWORD}".encode()).decode() not in result.output
    assert json.loads(result.stdout)["status"] == "pushed"


def test_push_of_a_tag_already_in_ecr_is_reported_and_not_attempted(
    cli: Cli, engine_path: Path, stacks: dict
) -> None:
    log = stand_in_engine(engine_path)
    result = cli("image", "push", "hello")
    assert result.exit_code == 0, result.output
    assert calls(log) == []  # no login, no push: the immutable tag would reject it
    assert f"{HELLO}:{default_image_tag()} is already in ECR" in result.stdout
    assert "set hpc.image_tag" in result.stdout


def test_engine_order_and_choice(cli: Cli, engine_path: Path, empty_repos: dict) -> None:
    podman = stand_in_engine(engine_path, "podman")
    finch_dir = engine_path.parent / "finch-bin"
    finch = stand_in_engine(finch_dir, "finch")
    os.environ["PATH"] = f"{os.environ['PATH']}{os.pathsep}{finch_dir}"
    assert cli.json("image", "build", "pinn")["engine"] == "podman"  # no docker: podman comes next
    assert cli.json("image", "build", "pinn", "--engine", "finch")["engine"] == "finch"
    assert len(calls(podman)) == 1 and len(calls(finch)) == 1
    missing = cli("image", "build", "pinn", "--engine", "docker")
    assert missing.exit_code == 1
    assert "error: --engine docker was asked for, but `docker` is not on PATH" in missing.stderr


def test_failed_push_says_to_build_first(cli: Cli, engine_path: Path, empty_repos: dict) -> None:
    stand_in_engine(engine_path, fail="push")
    result = cli("image", "push", "hello")
    assert result.exit_code == 1
    assert "error: docker push failed (exit 1): engine says: push" in result.stderr
    assert "fix: is it built? `mlhpc image build hello --config" in result.stderr


def test_push_without_an_engine_names_the_in_account_build(
    cli: Cli, engine_path: Path, empty_repos: dict
) -> None:
    result = cli("image", "push", "hello")
    assert result.exit_code == 1
    assert "error: no container engine on PATH (docker, podman, finch) to push with" in result.stderr
    assert "next: mlhpc image build hello --in-account --config" in result.stderr


def test_a_workload_without_a_dockerfile_is_refused_before_any_engine_runs(
    cli: Cli, engine_path: Path, stacks: dict, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import mlhpc_app.engine

    monkeypatch.setattr(mlhpc_app.engine, "REPO_ROOT", tmp_path)  # a checkout with no Dockerfiles
    log = stand_in_engine(engine_path)
    result = cli("image", "build", "hello")
    assert result.exit_code == 1
    assert "error: hello has no Dockerfile" in result.stderr
    assert "fix: add workloads/hello/Dockerfile" in result.stderr
    assert calls(log) == []


# --- in-account path (CodeBuild in moto) -----------------------------------------------------


def _with_build_project(outputs: dict[str, dict[str, str]]) -> str:
    """Create the CodeBuild project in moto and add HpcStack's output naming it.

    moto's CloudFormation does not model AWS::CodeBuild::Project (the synthesized stack has it
    stubbed), so the project is made through the API and the output is added to the stand-in
    template's stack by an update.
    """
    codebuild = boto3.client("codebuild", region_name=REGION)
    name = "mlhpc-image-build"
    codebuild.create_project(
        name=name,
        source={"type": "S3", "location": "cdk-assets/source.zip"},
        artifacts={"type": "NO_ARTIFACTS"},
        environment={
            "type": "LINUX_CONTAINER",
            "image": "aws/codebuild/standard:7.0",
            "computeType": "BUILD_GENERAL1_MEDIUM",
            "privilegedMode": True,
        },
        serviceRole="arn:aws:iam::123456789012:role/mlhpc-image-build",
    )
    cfn = boto3.client("cloudformation", region_name=REGION)
    hpc = default_stacks(workloads=WORKLOADS)["mlhpc-hpc"]
    hpc["Outputs"]["ImageBuildProjectName"] = {"Value": name}
    cfn.update_stack(StackName="mlhpc-hpc", TemplateBody=json.dumps(hpc), Capabilities=["CAPABILITY_IAM"])
    return name


def test_build_in_account_starts_codebuild_with_the_overrides_and_follows_it(
    cli: Cli, engine_path: Path, empty_repos: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = _with_build_project(empty_repos)
    # moto's StartBuild accepts environmentVariablesOverride but does not keep it (its builds
    # always show the project's defaults), so the request is read where boto3 sends it.
    sent: list[dict[str, Any]] = []
    from mlhpc_app.aws import session

    real_client = session.Aws.client

    def client(self: Any, service: str, *, retries: bool = True) -> Any:
        made = real_client(self, service, retries=retries)
        if service == "codebuild" and not getattr(made, "_recording", False):
            made.meta.events.register(
                "provide-client-params.codebuild.StartBuild", lambda params, **_: sent.append(params)
            )
            made._recording = True
        return made

    monkeypatch.setattr(session.Aws, "client", client)
    # No engine on PATH: the build goes to the account by itself.
    result = cli("image", "build", "pinn", "--poll-s", "0")
    assert result.exit_code == 0, result.output
    assert "no container engine on PATH (docker, podman, finch): building in the account." in result.stdout
    assert "started CodeBuild build mlhpc-image-build:" in result.stdout
    assert f"SUCCEEDED: {PINN}:{default_image_tag()} is in ECR." in result.stdout
    (params,) = sent
    assert params["projectName"] == project
    assert params["environmentVariablesOverride"] == [
        {"name": "WORKLOAD", "value": "pinn", "type": "PLAINTEXT"},
        {"name": "REPOSITORY_URI", "value": PINN, "type": "PLAINTEXT"},
        {"name": "IMAGE_TAG", "value": default_image_tag(), "type": "PLAINTEXT"},
        {"name": "IMAGE_VARIANT", "value": "", "type": "PLAINTEXT"},
    ]
    # moto lists the build under the project, as AWS does
    (build_id,) = boto3.client("codebuild", region_name=REGION).list_builds_for_project(projectName=project)[
        "ids"
    ]
    assert build_id in result.stdout


def test_build_in_account_json_and_a_tag_already_there(
    cli: Cli, engine_path: Path, empty_repos: dict
) -> None:
    stand_in_engine(engine_path)  # an engine is there, but --in-account asks for CodeBuild
    _with_build_project(empty_repos)
    data = cli.json("image", "build", "pinn", "--in-account", "--poll-s", "0")
    assert data["status"] == "pushed" and data["where"] == "codebuild" and data["build_status"] == "SUCCEEDED"
    assert data["build_id"].startswith("mlhpc-image-build:")
    # moto's build pushes nothing: push the tag as CodeBuild would, then build again
    put_image(PINN)
    again = cli.json("image", "build", "pinn", "--in-account")
    assert again["status"] == "exists" and again["where"] == "codebuild"


def test_build_in_account_failure_ends_with_exit_1(
    cli: Cli, engine_path: Path, empty_repos: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    _with_build_project(empty_repos)
    # moto's builds always succeed on the first BatchGetBuilds; a failed one is simulated here.
    from mlhpc_app.aws import images
    from mlhpc_app.aws.jobs import JobInfo

    def failed(aws: Any, build_id: str, *, workload: str = "") -> JobInfo:
        return JobInfo(
            build_id, "mlhpc-image-build", "codebuild", "FAILED", workload, reason="FAILED in BUILD: exit 1"
        )

    monkeypatch.setattr(images, "describe_build", failed)
    result = cli("image", "build", "pinn", "--in-account", "--poll-s", "0")
    assert result.exit_code == 1
    assert (
        f"error: the in-account build of {PINN}:{default_image_tag()} failed: FAILED in BUILD: exit 1"
        in result.stderr
    )
    assert "next: aws codebuild batch-get-builds --ids mlhpc-image-build:" in result.stderr


def test_build_in_account_against_an_hpc_stack_without_the_project(
    cli: Cli, engine_path: Path, empty_repos: dict
) -> None:
    result = cli("image", "build", "pinn", "--in-account")
    assert result.exit_code == 1
    assert (
        "has no output ImageBuildProjectName (the CodeBuild project that builds workload images)"
        in result.stderr
    )
    assert "next: cdk deploy HpcStack" in result.stderr


def test_engine_and_in_account_exclude_each_other(cli: Cli) -> None:
    result = cli("image", "build", "hello", "--in-account", "--engine", "docker")
    assert result.exit_code == 1
    assert "error: --engine docker and --in-account exclude each other" in result.stderr


# --- submit checks the tag is in ECR ----------------------------------------------------------


def test_submit_proceeds_when_the_image_is_in_ecr(cli: Cli, stacks: dict) -> None:
    data = cli.json("submit", "hello", "--detach")
    assert data["created"] is True


@pytest.mark.parametrize("backend", ["batch", "sagemaker"])
def test_submit_refuses_an_image_not_in_ecr_and_names_the_push(
    cli: Cli, empty_repos: dict, backend: str
) -> None:
    result = cli("submit", "hello", "--backend", backend, "--detach")
    assert result.exit_code == 1
    config = REPO_ROOT / "config" / "default.yaml"
    assert f"error: the image {HELLO}:{default_image_tag()} is not in ECR" in result.stderr
    assert f"next: mlhpc image push hello --config {config}" in result.stderr
    assert not boto3.client("batch", region_name=REGION).list_jobs(
        jobQueue=empty_repos["mlhpc-hpc"]["JobQueueCpu"], jobStatus="SUBMITTED"
    )["jobSummaryList"]


def test_submit_dry_run_needs_no_image(cli: Cli, empty_repos: dict) -> None:
    data = cli.json("submit", "hello", "--dry-run")
    assert data["dry_run"] is True


def test_images_agree_across_backends_with_the_moto_stacks(cli: Cli) -> None:
    with moto_stacks() as outputs:
        uri = outputs["mlhpc-hpc"]["RepositoryHelloUri"]
        sm = cli.json("submit", "hello", "--backend", "sagemaker", "--dry-run")
        eks = cli.json("submit", "hello", "--backend", "eks", "--dry-run")
        batch = boto3.client("batch", region_name=REGION).describe_job_definitions(
            jobDefinitions=[outputs["mlhpc-hpc"]["JobDefinitionHello"]]
        )["jobDefinitions"][0]
    tag = default_image_tag()
    assert sm["request"]["AlgorithmSpecification"]["TrainingImage"] == f"{uri}:{tag}"
    (job,) = [o for o in eks["objects"] if o["kind"] == "Job"]
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == f"mlhpc/hello:{tag}"
    assert batch["containerProperties"]["image"] == f"{uri}:{tag}"


def _images(node: Any) -> list[Any]:
    if isinstance(node, dict):
        found = [v for k, v in node.items() if k == "Image"]
        return found + [i for k, v in node.items() if k != "Image" for i in _images(v)]
    return [i for v in node for i in _images(v)] if isinstance(node, list) else []


@pytest.mark.synth
def test_one_tag_in_synthesized_job_definitions_sagemaker_requests_and_eks_manifests(
    cli: Cli, stacks: dict, synth_config: Any
) -> None:
    from tests.conftest import load_template

    template = load_template(synth_config(REPO_ROOT / "config" / "default.yaml"), "HpcStack")
    tags = set()
    for res in template["Resources"].values():
        if res["Type"] == "AWS::Batch::JobDefinition":
            for image in _images(res["Properties"]):
                # ContainerImage.from_ecr_repository: Fn::Join of the registry, the repository and ":<tag>"
                last = image["Fn::Join"][1][-1]
                assert isinstance(last, str) and last.startswith(":"), image
                tags.add(last[1:])
    sm = cli.json("submit", "hello", "--backend", "sagemaker", "--dry-run")
    tags.add(sm["request"]["AlgorithmSpecification"]["TrainingImage"].rsplit(":", 1)[1])
    eks = cli.json("submit", "hello", "--backend", "eks", "--dry-run")
    (job,) = [o for o in eks["objects"] if o["kind"] == "Job"]
    tags.add(job["spec"]["template"]["spec"]["containers"][0]["image"].rsplit(":", 1)[1])
    assert tags == {default_image_tag()}

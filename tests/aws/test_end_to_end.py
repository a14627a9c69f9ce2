"""End to end: stacks created in moto's CloudFormation from template files, then submit and list.

The first test uses the hand-written contract templates (written to JSON files, as cdk.out
holds them). The second uses the *synthesized* NetworkStack/StorageStack/HpcStack as soon as
stacks/assembly.py builds HpcStack; until then it is skipped with the reason.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws
from typer.testing import CliRunner

from mlhpc_app.cli.main import app
from tests.aws.harness import MOTO_CONFIG, default_stacks, deploy, put_image

runner = CliRunner()


def submit_then_list(workload: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    submitted = runner.invoke(app, ["submit", workload, "--detach", "--output", "json"])
    assert submitted.exit_code == 0, submitted.output
    listed = runner.invoke(app, ["list", "--output", "json"])
    assert listed.exit_code == 0, listed.output
    return json.loads(submitted.stdout), json.loads(listed.stdout)


def test_contract_templates_from_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    files = {}
    for name, template in default_stacks().items():
        files[name] = tmp_path / f"{name}.template.json"
        files[name].write_text(json.dumps(template), encoding="utf-8")
    with mock_aws(config=MOTO_CONFIG):  # type: ignore[arg-type]
        outputs = deploy(files)
        job, listed = submit_then_list("hello")
    assert [row["job_id"] for row in listed] == [job["job_id"]]
    assert listed[0]["queue"] == outputs["mlhpc-hpc"]["JobQueueCpu"]


# What moto's CloudFormation cannot create, per stack of the default config. A change here
# means a new resource type moto does not model: look at it, then update the list.
EXPECTED_STUBS = {
    "NetworkStack": {"Custom::VpcRestrictDefaultSG"},
    "StorageStack": {
        "AWS::EC2::SecurityGroupEgress",
        "AWS::FSx::DataRepositoryAssociation",
        "AWS::FSx::FileSystem",
        "AWS::S3::BucketPolicy",
    },
    "HpcStack": {
        "AWS::Batch::JobDefinition (multinode, registered through the API)",
        "AWS::CodeBuild::Project",
        "AWS::CloudWatch::Alarm",
        "AWS::EC2::PlacementGroup",
        "AWS::EC2::SecurityGroupEgress",
        "AWS::SNS::TopicPolicy",
    },
}


@pytest.mark.synth
def test_synthesized_stacks(
    synth_config: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, moto_server: str
) -> None:
    """The real Network/Storage/Hpc templates create in a moto server; `mlhpc submit pinn` finds them."""
    from mlhpc.config import load_config
    from stacks.assembly import HPC, NETWORK, STORAGE
    from tests.aws.cfn_moto import deploy_assembly

    repo = Path(__file__).resolve().parents[2]
    config_file = repo / "config" / "default.yaml"
    project = load_config(config_file).project.name
    result = synth_config(config_file)
    monkeypatch.chdir(tmp_path)
    deployed = deploy_assembly(
        result.outdir,
        {NETWORK: f"{project}-network", STORAGE: f"{project}-storage", HPC: f"{project}-hpc"},
    )
    for construct_id, stack in deployed.items():
        assert stack.status == "CREATE_COMPLETE", (construct_id, stack.reason)
        assert set(stack.stubbed.values()) == EXPECTED_STUBS[construct_id], construct_id
        for key, value in stack.outputs.items():
            assert value and "Fn::" not in value and "Token[" not in value, (construct_id, key, value)
    hpc = deployed[HPC].outputs
    assert hpc["JobQueueGpuOnDemand"].startswith("arn:aws:batch:")
    assert hpc["JobDefinitionPinn"].startswith("arn:aws:batch:")  # multi-node, registered via the API
    assert deployed[STORAGE].stubbed_attributes == {"AWS::EFS::FileSystem.Arn"}
    assert hpc["ImageBuildProjectName"].startswith("stub-ImageBuildProject")  # CodeBuild: stubbed, named
    # submit refuses an image that is not in ECR: push the tag, as `mlhpc image push pinn` would
    refused = runner.invoke(app, ["submit", "pinn", "--detach"])
    assert refused.exit_code == 1 and "next: mlhpc image push pinn --config" in refused.stderr
    put_image(hpc["RepositoryPinnUri"])
    job, listed = submit_then_list("pinn")
    (row,) = [row for row in listed if row["job_id"] == job["job_id"]]
    assert row["queue"] == hpc["JobQueueGpuOnDemand"]  # a GPU workload goes to the GPU queue


@pytest.mark.synth
@pytest.mark.usefixtures("node_properties_described")  # moto leaves nodeProperties out; AWS returns them
def test_every_workload_on_every_backend_of_the_synthesized_default(
    synth_config: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    moto_server: str,
) -> None:
    """Each workload the default config enables, on each remote backend it supports, is a request that can start.

    Batch: the request's job definition and queue are described back from moto and held to
    Batch's placement rules against the environments moto created from the template. SageMaker:
    no input channel without --input (CreateTrainingJob refuses an empty prefix). EKS needs
    InferenceStack, which the default config leaves off.
    """
    import boto3

    from mlhpc.config import load_config
    from mlhpc.spec import Backend
    from mlhpc_app.aws import cluster
    from mlhpc_app.aws.session import Aws
    from stacks.assembly import HPC, NETWORK, STORAGE
    from tests.aws.cfn_moto import deploy_assembly
    from workloads.registry import all_specs

    repo = Path(__file__).resolve().parents[2]
    config_file = repo / "config" / "default.yaml"
    project = load_config(config_file).project.name
    result = synth_config(config_file)
    monkeypatch.chdir(tmp_path)
    deploy_assembly(
        result.outdir, {NETWORK: f"{project}-network", STORAGE: f"{project}-storage", HPC: f"{project}-hpc"}
    )
    aws = Aws.connect(region="us-east-1")
    batch = boto3.client("batch", region_name="us-east-1")
    tried = []
    for name, spec in sorted(all_specs().items()):
        for backend in sorted(spec.backends - {Backend.LOCAL, Backend.EKS}):
            argv = ["submit", name, "--backend", backend.value, "--dry-run", "--output", "json"]
            done = runner.invoke(app, argv)
            assert done.exit_code == 0, (name, backend, done.output)
            request = json.loads(done.stdout)["request"]
            tried.append(f"{name}/{backend.value}")
            if backend is Backend.BATCH:
                (jobdef,) = batch.describe_job_definitions(jobDefinitions=[request["jobDefinition"]])[
                    "jobDefinitions"
                ]
                multi = jobdef.get("nodeProperties")
                nodes = request.get("nodeOverrides", {}).get("numNodes") or (multi or {}).get("numNodes", 1)
                ask = cluster.ask_of(jobdef, nodes)
                assert ask.vcpus > 0 and ask.memory_mib > 0, (name, jobdef)
                envs = cluster.deployed_environments(aws, request["jobQueue"])
                assert envs and all(env.instance_types for env in envs), (name, envs)
                cluster.check_can_start(ask, envs, queue=request["jobQueue"], workload=name)
            else:
                assert "InputDataConfig" not in request, name
    assert {"pinn/batch", "pinn/sagemaker", "qnn/batch", "superradiance/sagemaker"} <= set(tried)

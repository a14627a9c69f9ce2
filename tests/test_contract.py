"""The stack/CLI contract: every output the CLI reads is written by the stack it reads it from, for every config.

The CLI side is played for real: a :class:`Deployment` is built from the outputs of the
synthesized templates (as CloudFormation would return them after `cdk deploy`) and every accessor
`mlhpc submit`, `status` and `results` use is called on it. A key renamed on one side only fails here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlhpc import contract
from mlhpc.config import load_config
from mlhpc.contract import QueueKind, StackId
from mlhpc.errors import OutputMissing
from mlhpc.instances import lookup
from mlhpc_app.aws.stacks import Deployment
from tests.conftest import CONFIG_FILES, config_id, load_template
from workloads.registry import all_specs

pytestmark = pytest.mark.synth


def _outputs(template: dict[str, Any]) -> dict[str, str]:
    """Return a template's outputs as CloudFormation lists them once deployed (tokens as placeholders)."""
    return {
        key: out["Value"] if isinstance(out["Value"], str) else f"<{key}>"
        for key, out in template.get("Outputs", {}).items()
    }


@pytest.fixture(params=CONFIG_FILES, ids=config_id)
def deployed(request: pytest.FixtureRequest, synth_config: Any) -> tuple[Path, Deployment]:
    path: Path = request.param
    result = synth_config(path)
    project = load_config(path).project.name
    deployment = Deployment(
        project=project,
        region="us-east-1",
        storage=_outputs(load_template(result, StackId.STORAGE)),
        hpc=_outputs(load_template(result, StackId.HPC)),
    )
    return path, deployment


def test_every_output_the_cli_reads_is_written(deployed: tuple[Path, Deployment]) -> None:
    path, deployment = deployed
    config = load_config(path)
    gpu = config.hpc.gpu
    for spec in all_specs().values():
        assert deployment.repository_uri(spec)
        if spec.resources.gpus_per_node and not gpu.enabled:
            # a GPU workload on a CPU-only cluster has no definition: the CLI says which stack to deploy
            with pytest.raises(OutputMissing, match=contract.job_definition_output(spec.name).key):
                deployment.job_definition(spec)
        else:
            assert deployment.job_definition(spec)
    assert deployment.results_bucket and deployment.checkpoints_bucket and deployment.datasets_bucket
    assert deployment.log_group and deployment.sagemaker_role
    expected = {
        QueueKind.CPU: True,
        QueueKind.GPU: gpu.enabled and gpu.on_demand,
        QueueKind.GPU_SPOT: gpu.enabled and gpu.spot,
    }
    for kind, written in expected.items():
        if written:
            assert deployment.queue(kind)
        else:
            with pytest.raises(OutputMissing, match=kind.output.key):
                deployment.queue(kind)
    assert set(deployment.queues()) == {k.value for k, on in expected.items() if on}
    # the typed boolean: written by the stack, decoded by the CLI, true exactly for EFA types
    efa = gpu.enabled and gpu.efa and any(t is not None and t.efa for t in map(lookup, gpu.instance_types))
    assert deployment.get(contract.GPU_QUEUE_EFA) is efa


def test_no_stack_writes_a_cli_key_the_contract_does_not_declare(deployed: tuple[Path, Deployment]) -> None:
    _, deployment = deployed
    declared = {
        o.key
        for o in vars(contract).values()
        if isinstance(o, contract.Output) and o.stack in (StackId.HPC, StackId.STORAGE)
    }
    declared |= {k.output.key for k in QueueKind}
    for name in all_specs():
        declared |= {contract.job_definition_output(name).key, contract.repository_output(name).key}
    # Export*: CDK's own cross-stack references (Fn::ImportValue in another stack), not read by the CLI
    written = {k for k in (*deployment.hpc, *deployment.storage) if not k.startswith("Export")}
    assert written <= declared, sorted(written - declared)


def test_a_missing_output_names_the_stack_and_the_fix() -> None:
    deployment = Deployment(project="demo", region="us-east-1", storage={}, hpc={})
    with pytest.raises(OutputMissing) as err:
        _ = deployment.results_bucket
    assert str(err.value).startswith("StorageStack (demo-storage) has no output ResultsBucketName")
    assert err.value.next_command == "cdk deploy StorageStack"


def test_booleans_cross_as_true_or_false_only() -> None:
    out = contract.GPU_QUEUE_EFA
    assert (out.encode(True), out.encode(False)) == ("true", "false")
    assert out.decode("true") is True and out.decode("false") is False
    with pytest.raises(ValueError, match="'True', not 'true' or 'false'"):
        out.decode("True")


def test_stack_names_are_project_dash_part() -> None:
    assert [contract.stack_name("p", s) for s in contract.STACK_IDS] == [
        "p-network", "p-storage", "p-hpc", "p-image", "p-inference", "p-analytics", "p-studio"
    ]  # fmt: skip

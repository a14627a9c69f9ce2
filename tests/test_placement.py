"""mlhpc.placement: the route, the per-node sizing and each refusal, on hand-made environments."""

from __future__ import annotations

import pytest

from mlhpc import placement
from mlhpc.config import parse_config
from mlhpc.contract import QueueKind
from mlhpc.instances import lookup
from mlhpc.placement import Environment, Refusal, Sizing
from mlhpc.spec import Backend, Efa, Resources, WorkloadArgs, WorkloadSpec
from workloads.registry import get


class NoArgs(WorkloadArgs):
    """No arguments."""


def spec(resources: Resources, *, distributed: bool = True) -> WorkloadSpec:
    return WorkloadSpec(
        name="job", description="a test job", module="workloads.job", args=NoArgs,
        resources=resources, image="mlhpc/job", distributed=distributed,
        backends=frozenset({Backend.LOCAL, Backend.BATCH}),
    )  # fmt: skip


WHOLE = Resources(nodes=2, gpus_per_node="all", vcpus_per_gpu=4, memory_per_gpu_mib=8192, efa=Efa.REQUIRED)
G5 = Environment(QueueKind.GPU, ("g5.12xlarge",), 96, spot=False, efa=True, path="hpc.gpu")


def test_usable_memory_is_installed_less_the_agents_share() -> None:
    g5 = lookup("g5.12xlarge")
    assert g5 is not None
    assert placement.usable_memory_mib(g5) == int(192 * 1024 * 0.95) == 186_777
    # The AWS Batch user guide's m4.large (8 GiB) registers 7985 MiB, less 32 MiB reserved:
    # the rule must never ask more than that.
    assert 8 * 1024 * (1 - placement.AGENT_MEMORY_SHARE) <= 7985 - 32


def test_all_gpus_take_the_node_of_the_smallest_type_that_hosts_it() -> None:
    mixed = Environment(QueueKind.GPU, ("g5.48xlarge", "g5.12xlarge"), 384, False, True, "hpc.gpu")
    sized = placement.size(spec(WHOLE), mixed)
    assert isinstance(sized, Sizing)
    assert (sized.instance_type, sized.nodes, sized.gpus, sized.vcpus, sized.memory_mib) == (
        "g5.12xlarge", 2, 4, 48, 186_777,
    )  # fmt: skip
    assert sized.fits_on == ("g5.48xlarge", "g5.12xlarge") and sized.efa and sized.ranks_per_node == 4


def test_a_number_of_gpus_asks_only_its_needs() -> None:
    sized = placement.size(
        spec(Resources(gpus_per_node=1, min_vcpus_per_node=4, min_memory_per_node_mib=8192)), G5
    )
    assert isinstance(sized, Sizing) and (sized.gpus, sized.vcpus, sized.memory_mib) == (1, 4, 8192)
    assert not sized.efa and not sized.multi_node


def test_route_prefers_on_demand_and_never_sends_multi_node_to_spot() -> None:
    multi, single = spec(WHOLE), spec(Resources(gpus_per_node=1))
    cpu = spec(Resources(min_vcpus_per_node=2))
    assert placement.route(multi, ["gpu", "gpu-spot", "cpu"]) is QueueKind.GPU
    assert placement.route(single, ["gpu-spot", "cpu"]) is QueueKind.GPU_SPOT
    assert placement.route(cpu, ["gpu", "cpu"]) is QueueKind.CPU
    with pytest.raises(placement.NoRoute) as caught:
        placement.route(multi, ["gpu-spot", "cpu"])
    assert caught.value.code == "HPC014" and "hpc.gpu.on_demand: true" in caught.value.fix
    with pytest.raises(placement.NoRoute) as absent:
        placement.route(single, ["cpu"])
    assert absent.value.code == "HPC016" and absent.value.absent
    with pytest.raises(placement.NoRoute, match="multi-node parallel jobs on Spot"):
        placement.check_queue(multi, "gpu-spot", 2)
    placement.check_queue(single, "gpu-spot", 1)


@pytest.mark.parametrize(
    ("env", "code", "numbers"),
    [
        (
            Environment(QueueKind.GPU_SPOT, ("g5.12xlarge",), 96, True, True, "hpc.gpu"),
            "HPC014",
            "2-node job",
        ),
        (Environment(QueueKind.GPU, ("g5.12xlarge",), 96, False, False, "hpc.gpu"), "HPC015", "requires EFA"),
        (Environment(QueueKind.GPU, ("g5.12xlarge",), 48, False, True, "hpc.gpu"), "HPC013", "= 96 vCPUs"),
        (
            Environment(QueueKind.GPU, ("g5.xlarge",), 96, False, True, "hpc.gpu"),
            "HPC012",
            "g5.xlarge (4 vCPU",
        ),
        (Environment(QueueKind.GPU, ("x9.huge",), 96, False, True, "hpc.gpu"), "HPC017", "x9.huge"),
    ],
    ids=["spot", "no-efa", "max-vcpus", "too-small", "unknown"],
)
def test_each_rule_refuses_with_its_code_and_numbers(env: Environment, code: str, numbers: str) -> None:
    res = WHOLE if code != "HPC012" else Resources(gpus_per_node=1, memory_per_gpu_mib=32_768)
    refused = placement.size(spec(res), env)
    assert isinstance(refused, Refusal) and refused.code == code, refused
    assert numbers in refused.message and refused.fix


def test_too_small_names_the_types_that_would_fit() -> None:
    env = Environment(QueueKind.CPU, ("c6i.large", "c6i.xlarge"), 64, True, False, "hpc.cpu")
    refused = placement.size(spec(Resources(min_vcpus_per_node=4, min_memory_per_node_mib=12_288)), env)
    assert isinstance(refused, Refusal) and refused.code == "HPC012"
    assert (
        "4 vCPUs and 12,288 MiB" in refused.message
        and "c6i.xlarge (4 vCPU, 7,782 MiB usable)" in refused.message
    )
    assert refused.would_fit[:3] == ("m6i.xlarge", "m7i.xlarge", "c6i.2xlarge")
    assert all((t := lookup(n)) is not None and t.gpus == 0 for n in refused.would_fit)


def test_the_default_cluster_runs_pinn_on_two_whole_g5_nodes_and_p5_on_two_whole_p5_nodes() -> None:
    default, _ = parse_config("")
    p5, _ = parse_config(
        "hpc:\n  gpu:\n    instance_types: [p5.48xlarge]\n    max_vcpus: 768\n    spot: false\n"
    )
    on_g5 = placement.place(get("pinn"), placement.environments(default.hpc))
    on_p5 = placement.place(get("pinn"), placement.environments(p5.hpc))
    assert isinstance(on_g5, Sizing) and isinstance(on_p5, Sizing)
    assert (on_g5.queue, on_g5.nodes, on_g5.gpus, on_g5.vcpus, on_g5.memory_mib) == (
        QueueKind.GPU,
        2,
        4,
        48,
        186_777,
    )
    assert (on_p5.nodes, on_p5.gpus, on_p5.vcpus, on_p5.memory_mib) == (2, 8, 192, 1_992_294)
    superradiance = placement.place(get("superradiance"), placement.environments(default.hpc))
    assert isinstance(superradiance, Sizing) and superradiance.memory_mib <= 15_564


def test_resources_refuse_per_gpu_needs_on_a_cpu_job_and_efa_without_gpus() -> None:
    with pytest.raises(ValueError, match="give min_vcpus_per_node"):
        Resources(vcpus_per_gpu=2)
    with pytest.raises(ValueError, match="EFA carries NCCL traffic between GPUs"):
        Resources(efa=Efa.PREFERRED)
    with pytest.raises(ValueError, match="or 'all'"):
        Resources(gpus_per_node=17)

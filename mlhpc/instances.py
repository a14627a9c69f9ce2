"""Facts about EC2 instance types that the cluster needs at synthesis time (no AWS call).

``efa_interfaces`` is the number of EFA network interfaces the type supports: one per
network card. A launch template for EFA attaches exactly that many (card 0 carries the
primary ENA+EFA interface, the others are EFA-only). 0 means the type has no EFA.
``gpudirect_rdma`` says whether NCCL may use GPUDirect RDMA over EFA
(``FI_EFA_USE_DEVICE_RDMA=1``): p4d/p4de and the p5 family do; g5/g6 do not.

Sources: the EC2 User Guide's "Supported instance types" for EFA and the instance type
pages (network cards, GPUs, vCPUs, memory), as of 2026. ``mlhpc validate --online``
confirms offerings in a region with DescribeInstanceTypes.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class InstanceType:
    """What mlhpc needs to know about one instance type."""

    name: str
    vcpus: int
    memory_gib: int
    gpus: int = 0
    gpu: str = ""
    efa_interfaces: int = 0
    gpudirect_rdma: bool = False
    accelerator: str = ""  # "neuron" for Inferentia/Trainium

    @property
    def efa(self) -> bool:
        """True when the type supports EFA at all."""
        return self.efa_interfaces > 0


_TYPES = [
    # GPU training: p4/p5/p6
    InstanceType("p4d.24xlarge", 96, 1152, 8, "A100 40GB", 4, True),
    InstanceType("p4de.24xlarge", 96, 1152, 8, "A100 80GB", 4, True),
    InstanceType("p5.4xlarge", 16, 256, 1, "H100", 1, True),
    InstanceType("p5.48xlarge", 192, 2048, 8, "H100", 32, True),
    InstanceType("p5e.48xlarge", 192, 2048, 8, "H200", 32, True),
    InstanceType("p5en.48xlarge", 192, 2048, 8, "H200", 16, True),
    InstanceType("p6-b200.48xlarge", 192, 2048, 8, "B200", 8, True),
    # GPU inference / smaller training: g5, g6, g6e
    InstanceType("g5.xlarge", 4, 16, 1, "A10G"),
    InstanceType("g5.2xlarge", 8, 32, 1, "A10G"),
    InstanceType("g5.8xlarge", 32, 128, 1, "A10G", 1),
    InstanceType("g5.12xlarge", 48, 192, 4, "A10G", 1),
    InstanceType("g5.16xlarge", 64, 256, 1, "A10G", 1),
    InstanceType("g5.24xlarge", 96, 384, 4, "A10G", 1),
    InstanceType("g5.48xlarge", 192, 768, 8, "A10G", 1),
    InstanceType("g6.xlarge", 4, 16, 1, "L4"),
    InstanceType("g6.8xlarge", 32, 128, 1, "L4", 1),
    InstanceType("g6.12xlarge", 48, 192, 4, "L4", 1),
    InstanceType("g6.48xlarge", 192, 768, 8, "L4", 1),
    InstanceType("g6e.12xlarge", 48, 384, 4, "L40S", 1),
    InstanceType("g6e.48xlarge", 192, 1536, 8, "L40S", 4),
    InstanceType("g4dn.xlarge", 4, 16, 1, "T4"),
    InstanceType("g4dn.12xlarge", 48, 192, 4, "T4"),
    InstanceType("g4dn.metal", 96, 384, 8, "T4", 1),
    # Neuron
    InstanceType("trn1.32xlarge", 128, 512, 0, "", 8, True, "neuron"),
    InstanceType("trn1n.32xlarge", 128, 512, 0, "", 16, True, "neuron"),
    InstanceType("inf2.xlarge", 4, 16, 0, "", 0, False, "neuron"),
    InstanceType("inf2.8xlarge", 32, 128, 0, "", 0, False, "neuron"),
    InstanceType("inf2.24xlarge", 96, 384, 0, "", 0, False, "neuron"),
    InstanceType("inf2.48xlarge", 192, 768, 0, "", 0, False, "neuron"),
    InstanceType("inf1.xlarge", 4, 8, 0, "", 0, False, "neuron"),
    InstanceType("inf1.6xlarge", 24, 48, 0, "", 0, False, "neuron"),
    # CPU: HPC and general purpose
    InstanceType("hpc7a.96xlarge", 192, 768, 0, "", 1),
    InstanceType("hpc6a.48xlarge", 96, 384, 0, "", 1),
    InstanceType("c5n.18xlarge", 72, 192, 0, "", 1),
    InstanceType("c6i.large", 2, 4),
    InstanceType("c6i.xlarge", 4, 8),
    InstanceType("c6i.2xlarge", 8, 16),
    InstanceType("c6i.4xlarge", 16, 32),
    InstanceType("c6i.32xlarge", 128, 256, 0, "", 1),
    InstanceType("c7i.large", 2, 4),
    InstanceType("c7i.2xlarge", 8, 16),
    InstanceType("m6i.large", 2, 8),
    InstanceType("m6i.xlarge", 4, 16),
    InstanceType("m6i.2xlarge", 8, 32),
    InstanceType("m7i.large", 2, 8),
    InstanceType("m7i.xlarge", 4, 16),
    InstanceType("r6i.2xlarge", 8, 64),
    InstanceType("t3.medium", 2, 4),
    InstanceType("t3.large", 2, 8),
]

INSTANCE_TYPES: dict[str, InstanceType] = {t.name: t for t in _TYPES}


def lookup(name: str) -> InstanceType | None:
    """Return the facts for an instance type, or None when mlhpc does not know it."""
    return INSTANCE_TYPES.get(name)


def efa_types() -> list[str]:
    """Return every known instance type with EFA, sorted."""
    return sorted(t.name for t in _TYPES if t.efa)

"""The superradiance workload's arguments and spec (the single source of truth for its options)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from mlhpc.spec import Backend, Resources, WorkloadArgs, WorkloadSpec

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


class Args(WorkloadArgs):
    """Options of one superradiance run (rates in units of gamma when gamma = 1)."""

    N: int = Field(default=8, ge=1, le=1_000_000, description="Number of nuclear spins.")
    method: Literal["auto", "general", "symmetric", "trajectories", "euler"] = Field(
        default="auto",
        description="Solver: auto = symmetric for uniform couplings, general up to N=12, else trajectories.",
    )
    couplings: Literal["uniform", "random", "list"] = Field(
        default="uniform", description="Coupling profile g_i (normalised to unit 2-norm)."
    )
    coupling_values: list[FiniteFloat] = Field(
        default_factory=list, description="The N couplings when couplings=list (comma-separated)."
    )
    seed: int = Field(
        default=0, ge=0, le=2**32 - 1, description="Seed of random couplings and of trajectories."
    )
    gamma: float = Field(
        default=1.0, gt=0, le=1e6, allow_inf_nan=False, description="Electron decay rate gamma."
    )
    a_mean: float = Field(
        default=1.0, gt=0, le=1e6, allow_inf_nan=False, description="Hyperfine scale Amean."
    )
    t_max: float = Field(
        default=0.0,
        ge=0,
        le=1e12,
        allow_inf_nan=False,
        description="End time (0: long enough for the whole burst).",
    )
    n_times: int = Field(default=501, ge=2, le=100_001, description="Output time points.")
    rtol: float = Field(default=1e-8, gt=0, le=1e-2, allow_inf_nan=False, description="Relative tolerance.")
    atol: float = Field(default=1e-10, gt=0, le=1e-2, allow_inf_nan=False, description="Absolute tolerance.")
    trajectories: int = Field(
        default=200, ge=1, le=1_000_000, description="Quantum trajectories (trajectories)."
    )
    workers: int = Field(
        default=2, ge=1, le=1024, description="Ray workers for trajectories and sweeps (1: no Ray)."
    )
    device: Literal["auto", "numpy", "cpu", "cuda"] = Field(
        default="auto",
        description="general solver backend: numpy (SciPy), cpu or cuda (PyTorch); auto: cuda if any.",
    )
    initial_state: str = Field(
        default="", description="Initial density matrix (.npz/.npy, path or s3://); default: all nuclei up."
    )
    euler_dt: float = Field(
        default=0.3, gt=0, le=10, allow_inf_nan=False, description="Step of method=euler."
    )
    sweep: str = Field(
        default="",
        pattern=r"^$|^(N|gamma|a_mean|seed)=[0-9.eE+-]+(,[0-9.eE+-]+)*$",
        description="Parameter sweep run as Ray tasks, e.g. N=4,6,8,10 (one comparison plot).",
    )


SPEC = WorkloadSpec(
    name="superradiance",
    description="Superradiant burst of N nuclear spins around an NV electron spin (exact and MCWF solvers).",
    module="workloads.superradiance",
    args=Args,
    # A CPU job: the driver and the two default Ray workers. 12 GiB covers the general solver's
    # largest size (N = 12: a 2^13 x 2^13 complex density matrix is 1 GiB; the adaptive
    # Dormand-Prince steps hold about ten of them) and fits a 16 GiB instance after the ECS
    # agent's share (15,564 MiB usable; see mlhpc.placement); 16,384 MiB would fit none.
    resources=Resources(min_vcpus_per_node=4, min_memory_per_node_mib=12_288, timeout_s=4 * 3600),
    input_arg="initial_state",
    image="mlhpc/superradiance",
    backends=frozenset({Backend.LOCAL, Backend.BATCH, Backend.SAGEMAKER}),
    default_backend=Backend.SAGEMAKER,
    outputs=("metrics.json", "result.npz", "emission.png"),
    demo_args={"N": 8},
)

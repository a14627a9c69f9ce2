"""Batch job definitions generated from workload specs (single-node and multi-node parallel)."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration, Size
from aws_cdk import aws_batch as batch
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from mlhpc import invocation
from mlhpc.invocation import RESUMABLE_EXIT_CODE
from mlhpc.placement import Sizing
from mlhpc.spec import WorkloadSpec


def efa_environment(*, gpudirect_rdma: bool) -> dict[str, str]:
    """Return the libfabric/NCCL environment of an EFA job, each variable with the reason it is set."""
    return {
        # Use libfabric's EFA provider for inter-node traffic (aws-ofi-nccl sits on top of it),
        # never the TCP or sockets fallbacks, which run at a fraction of EFA's bandwidth.
        "FI_PROVIDER": "efa",
        # GPUDirect RDMA: the EFA device reads and writes GPU memory directly. Only p4d/p4de and
        # the p5 family support it; elsewhere it must stay 0 or transfers fail.
        "FI_EFA_USE_DEVICE_RDMA": "1" if gpudirect_rdma else "0",
        # PyTorch DataLoader workers fork(); registered (pinned) memory must survive it.
        "FI_EFA_FORK_SAFE": "1",
        "RDMAV_FORK_SAFE": "1",
        # NCCL's bootstrap (TCP) must use the node's primary interface, not docker or loopback.
        "NCCL_SOCKET_IFNAME": "^docker,lo,veth",
        # WARN keeps logs small; set INFO on a job to see the transport (look for "NET/OFI").
        "NCCL_DEBUG": "WARN",
    }


@dataclass(frozen=True)
class JobContext:
    """What every job definition shares: roles, logs, file systems and default output locations."""

    job_role: iam.IRole
    execution_role: iam.IRole
    log_group: logs.ILogGroup
    results_uri: str
    checkpoints_uri: str
    image_tag: str
    fsx: bool
    efs: bool
    efa_devices: int
    gpudirect_rdma: bool
    retry_attempts: int


def retry_strategies() -> list[batch.RetryStrategy]:
    """Retry what the job did not cause (lost host, Spot reclaim, SIGTERM after a checkpoint), nothing else."""
    return [
        batch.RetryStrategy.of(batch.Action.RETRY, batch.Reason.SPOT_INSTANCE_RECLAIMED),
        batch.RetryStrategy.of(batch.Action.RETRY, batch.Reason.custom(on_status_reason="Host EC2*")),
        batch.RetryStrategy.of(
            batch.Action.RETRY, batch.Reason.custom(on_exit_code=str(RESUMABLE_EXIT_CODE))
        ),
        batch.RetryStrategy.of(batch.Action.EXIT, batch.Reason.custom(on_exit_code="*")),
    ]


class WorkloadJobDefinition(Construct):
    """The Batch job definition of one workload, shaped by its spec and sized for its queue.

    ``sizing`` (from :func:`mlhpc.placement.size`) gives each node's GPUs, vCPUs and memory
    for the instance types of the queue the workload is routed to. Distributed workloads
    with more than one node become multi-node parallel job definitions (each node's
    entrypoint, given ``--nproc-per-node``, runs ``workloads.common.batch_launch``, which
    starts one rank per GPU); the rest become single-node definitions. GPU jobs with EFA
    get the ``/dev/infiniband/uverbs*`` devices, unlimited memlock and the EFA environment.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        spec: WorkloadSpec,
        sizing: Sizing,
        repository: ecr.IRepository,
        context: JobContext,
    ) -> None:
        super().__init__(scope, construct_id)
        res = spec.resources
        self.sizing = sizing
        efa = sizing.efa and context.efa_devices > 0
        environment = {"MLHPC_WORKLOAD": spec.name, "PYTHONUNBUFFERED": "1"}
        if efa:
            environment.update(efa_environment(gpudirect_rdma=context.gpudirect_rdma))
        # Options only: Batch's command replaces the image's CMD and follows its ENTRYPOINT
        # (`python -m <module>`, see mlhpc.invocation). Several GPUs per node: the launcher option,
        # which makes the entrypoint start one rank per GPU through workloads.common.batch_launch.
        command = invocation.options(
            spec,
            run=invocation.RunOptions(out="Ref::out", checkpoint_dir="Ref::checkpoint"),
            nproc_per_node=invocation.nproc_per_node(spec, sizing.gpus),
        )

        linux = batch.LinuxParameters(
            self, "Linux", shared_memory_size=Size.mebibytes(res.shm_size_mib), init_process_enabled=True
        )
        if efa:
            linux.add_devices(
                *[
                    batch.Device(
                        host_path=f"/dev/infiniband/uverbs{i}",
                        container_path=f"/dev/infiniband/uverbs{i}",
                        permissions=[batch.DevicePermission.READ, batch.DevicePermission.WRITE],
                    )
                    for i in range(context.efa_devices)
                ]
            )
        volumes = []
        if context.fsx:
            volumes.append(batch.EcsVolume.host(name="fsx", host_path="/fsx", container_path="/fsx"))
        if context.efs:
            volumes.append(batch.EcsVolume.host(name="efs", host_path="/efs", container_path="/efs"))

        self.container = batch.EcsEc2ContainerDefinition(
            self,
            "Container",
            image=ecs.ContainerImage.from_ecr_repository(repository, context.image_tag),
            cpu=sizing.vcpus,
            memory=Size.mebibytes(sizing.memory_mib),
            gpu=sizing.gpus or None,
            command=command,
            environment=environment,
            job_role=context.job_role,
            execution_role=context.execution_role,
            linux_parameters=linux,
            ulimits=[
                # EFA and NCCL pin buffers: unlimited locked memory.
                batch.Ulimit(name=batch.UlimitName.MEMLOCK, soft_limit=-1, hard_limit=-1),
                batch.Ulimit(name=batch.UlimitName.NOFILE, soft_limit=65536, hard_limit=65536),
            ],
            volumes=volumes,
            logging=ecs.LogDriver.aws_logs(stream_prefix=spec.name, log_group=context.log_group),
            privileged=False,
        )
        parameters = {
            "out": f"{context.results_uri}/{spec.name}/default",
            "checkpoint": f"{context.checkpoints_uri}/{spec.name}/default",
        }
        common = {
            "parameters": parameters,
            "retry_attempts": context.retry_attempts,
            "retry_strategies": retry_strategies(),
            "timeout": Duration.seconds(res.timeout_s),
            "propagate_tags": True,
        }
        self.multi_node = sizing.multi_node
        if sizing.multi_node:
            self.definition: batch.IJobDefinition = batch.MultiNodeJobDefinition(
                self,
                "Definition",
                containers=[
                    batch.MultiNodeContainer(
                        container=self.container, start_node=0, end_node=sizing.nodes - 1
                    )
                ],
                main_node=0,
                **common,  # type: ignore[arg-type]
            )
        else:
            self.definition = batch.EcsJobDefinition(self, "Definition", container=self.container, **common)  # type: ignore[arg-type]

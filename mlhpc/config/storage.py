"""The storage domain: buckets, EFS and FSx for Lustre, and the STO rules (FSx sizes and throughput)."""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from mlhpc.config.common import RemovalPolicyName, Section
from mlhpc.config.issues import ConfigIssue

if TYPE_CHECKING:
    from mlhpc.config.model import Config


class BucketsConfig(Section):
    """The datasets, results and checkpoints buckets (plus one for their access logs)."""

    removal_policy: RemovalPolicyName = RemovalPolicyName.RETAIN
    checkpoint_expiry_days: int = Field(default=30, ge=1, le=3650, description="Old checkpoints are deleted.")
    results_noncurrent_expiry_days: int = Field(default=90, ge=1, le=3650)
    abort_incomplete_upload_days: int = Field(default=7, ge=1, le=365)
    access_log_expiry_days: int = Field(default=365, ge=1, le=3650)


class EfsThroughput(StrEnum):
    """EFS throughput modes."""

    ELASTIC = "elastic"
    BURSTING = "bursting"


class EfsConfig(Section):
    """EFS for home directories and shared software, mounted at /efs with TLS."""

    enabled: bool = True
    removal_policy: RemovalPolicyName = RemovalPolicyName.RETAIN
    throughput_mode: EfsThroughput = EfsThroughput.ELASTIC
    backups: bool = True
    infrequent_access_after_days: Literal[1, 7, 14, 30, 60, 90, 180, 270, 365] | None = 30


class FsxDeploymentType(StrEnum):
    """FSx for Lustre deployment types (SSD)."""

    SCRATCH_1 = "SCRATCH_1"
    SCRATCH_2 = "SCRATCH_2"
    PERSISTENT_1 = "PERSISTENT_1"
    PERSISTENT_2 = "PERSISTENT_2"


class FsxConfig(Section):
    """FSx for Lustre scratch at /fsx, in the EFA compute zone, linked to the datasets bucket."""

    enabled: bool = True
    deployment_type: FsxDeploymentType = FsxDeploymentType.PERSISTENT_2
    storage_capacity_gib: int = Field(default=1200, ge=1200, le=2_000_000)
    throughput_mib_per_tib: int | None = Field(
        default=125,
        description="MB/s per TiB of storage: PERSISTENT_1 50/100/200, PERSISTENT_2 125/250/500/1000.",
    )
    data_compression: bool = True
    removal_policy: RemovalPolicyName = RemovalPolicyName.RETAIN
    datasets_path: str = Field(default="/datasets", pattern=r"^/[A-Za-z0-9_./-]*$")


class StorageConfig(Section):
    """StorageStack: S3, EFS and FSx for Lustre."""

    buckets: BucketsConfig = BucketsConfig()
    efs: EfsConfig = EfsConfig()
    fsx: FsxConfig = FsxConfig()


# --- rules ------------------------------------------------------------------------------------


# FSx for Lustre SSD capacity: 1200 GiB, 2400 GiB, then multiples of the increment.
FSX_INCREMENT_GIB = {"SCRATCH_1": 3600, "SCRATCH_2": 2400, "PERSISTENT_1": 2400, "PERSISTENT_2": 2400}
FSX_THROUGHPUT = {"PERSISTENT_1": (50, 100, 200), "PERSISTENT_2": (125, 250, 500, 1000)}


def fsx_valid_capacities(deployment: str, up_to: int) -> list[int]:
    """Return the allowed capacities (GiB) of a deployment type up to a size."""
    step = FSX_INCREMENT_GIB[deployment]
    sizes = [1200, 2400, *list(range(step, up_to + step, step))]
    return sorted(set(s for s in sizes if s >= 1200))


def fsx_capacity(config: Config) -> Iterator[ConfigIssue]:
    """STO001/STO002: FSx capacity and throughput must be values FSx accepts for the deployment type."""
    fsx = config.storage.fsx
    if not fsx.enabled:
        return
    kind = fsx.deployment_type.value
    size = fsx.storage_capacity_gib
    valid = fsx_valid_capacities(kind, size + FSX_INCREMENT_GIB[kind])
    if size not in valid:
        lower = max(v for v in valid if v < size)
        upper = min(v for v in valid if v > size)
        step = FSX_INCREMENT_GIB[kind]
        yield ConfigIssue(
            code="STO001",
            path="storage.fsx.storage_capacity_gib",
            value=size,
            message=f"{kind} file systems come in 1200, 2400 or multiples of {step} GiB; {size} GiB is not one",
            fix=f"use {upper} (the next valid size) or {lower}",
        )
    allowed = FSX_THROUGHPUT.get(kind)
    given = fsx.throughput_mib_per_tib
    if allowed is None and given is not None:
        yield ConfigIssue(
            code="STO002",
            path="storage.fsx.throughput_mib_per_tib",
            value=given,
            message=f"{kind} file systems have a fixed throughput; it cannot be set",
            fix="remove storage.fsx.throughput_mib_per_tib (or write null)",
        )
    elif allowed is not None and given not in allowed:
        yield ConfigIssue(
            code="STO002",
            path="storage.fsx.throughput_mib_per_tib",
            value=given,
            message=f"{kind} supports {', '.join(map(str, allowed))} MB/s per TiB",
            fix=f"use one of: {', '.join(map(str, allowed))}",
        )

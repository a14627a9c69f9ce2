"""Find, describe, follow and stop jobs on any backend; fetch their results."""

from __future__ import annotations

import re

from mlhpc.aws import batch, sagemaker
from mlhpc.aws.jobs import JobInfo
from mlhpc.aws.logs import LogReader, find_stream
from mlhpc.cli.aws_options import Target

# Batch job ids are UUIDs (a multi-node child adds #N); anything else is a SageMaker job name.
BATCH_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(#\d+)?$")


def backend_of(job: str) -> str:
    """Return which backend a job id belongs to."""
    return "batch" if BATCH_ID.match(job) else "sagemaker"


def describe(target: Target, job: str) -> JobInfo:
    """Return the job, whichever backend ran it."""
    if backend_of(job) == "batch":
        return batch.describe(target.aws, job)
    return sagemaker.describe(target.aws, job)


def log_reader(target: Target, info: JobInfo) -> LogReader | None:
    """Return a reader of the job's log stream, or None while it has none."""
    if info.backend == "sagemaker":
        stream = find_stream(target.aws, sagemaker.LOG_GROUP, info.log_stream)
        return LogReader(target.aws, sagemaker.LOG_GROUP, stream) if stream else None
    if not info.log_stream:
        return None
    return LogReader(target.aws, target.deployment.log_group, info.log_stream)


def cancel(target: Target, job: str, reason: str) -> JobInfo:
    """Stop a job on its backend; return it as it was."""
    if backend_of(job) == "batch":
        return batch.cancel(target.aws, job, reason)
    return sagemaker.stop(target.aws, job)

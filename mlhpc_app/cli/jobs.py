"""Find, describe, follow and stop jobs on any backend: the backend is chosen once, from the job id."""

from __future__ import annotations

from mlhpc_app import backends
from mlhpc_app.aws.jobs import JobInfo
from mlhpc_app.aws.target import Target

__all__ = ["JobInfo", "cancel", "describe", "log_reader"]


def describe(target: Target, job: str) -> JobInfo:
    """Return the job, whichever backend ran it."""
    return backends.for_job(target, job).describe(job)


def log_reader(target: Target, info: JobInfo) -> backends.Lines | None:
    """Return a reader of the job's log, or None while it has none."""
    return backends.for_job(target, info.job_id).logs(info)


def cancel(target: Target, job: str, reason: str) -> JobInfo:
    """Stop a job on its backend; return it as it was."""
    return backends.for_job(target, job).cancel(job, reason)


def results_uri(target: Target, info: JobInfo) -> str:
    """Return the S3 prefix of the job's outputs."""
    return backends.for_job(target, info.job_id).results_uri(info)

"""What every backend tells about a job, in one shape, and the identity of a submission.

A submission is named from a *client token*: the job name is
``<project>-<workload>-<digest of the token>``. AWS Batch has no client token of its
own, so idempotency is built from that deterministic name: before submitting, and again
before any retry of a submit whose answer was lost, the CLI looks the name up in the
queue (``ListJobs`` with a ``JOB_NAME`` filter) and returns the job it finds instead of
making a second one. The job's tags record the token's request digest, so reusing a
token for a *different* request is refused rather than silently returning the old job.
SageMaker's training job names are unique per account and region, which gives the same
guarantee there.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

TAG_WORKLOAD = "mlhpc:workload"
TAG_RUN_ID = "mlhpc:run-id"
TAG_TOKEN = "mlhpc:client-token"
TAG_REQUEST = "mlhpc:request-digest"
TAG_PROJECT = "mlhpc:project"

TERMINAL = frozenset({"SUCCEEDED", "FAILED", "Completed", "Failed", "Stopped"})
FAILED = frozenset({"FAILED", "Failed", "Stopped"})


def new_client_token() -> str:
    """Return a fresh random client token (one per `mlhpc submit` unless --client-token is given)."""
    return secrets.token_hex(8)


def token_digest(token: str) -> str:
    """Return the 12 hex characters that name a submission made with this token."""
    return hashlib.sha256(token.encode()).hexdigest()[:12]


def request_digest(request: dict[str, Any]) -> str:
    """Return a digest of what a request asks for (its identity-free parts), to detect token reuse."""
    return hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()).hexdigest()[:16]


def new_run_id(token: str, now: datetime | None = None) -> str:
    """Return a run id: UTC time (sortable) plus the token digest, e.g. 20260101-120000-ab12cd34ef56."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%d-%H%M%S}-{token_digest(token)}"


def job_name(project: str, workload: str, token: str) -> str:
    """Return the deterministic job name for a submission (<= 63 characters: SageMaker's limit)."""
    return f"{project}-{workload.replace('_', '-')}-{token_digest(token)}"[:63]


@dataclass(frozen=True)
class Submission:
    """A prepared request (Batch submit_job or SageMaker create_training_job) and the names it makes."""

    request: dict[str, Any]
    job_name: str  # deterministic from the client token (:func:`job_name`)
    run_id: str
    token: str
    out_uri: str
    checkpoint_uri: str
    multi_node: bool = False  # Batch: a multi-node parallel job


@dataclass
class JobInfo:
    """A job as the CLI shows it, whatever the backend."""

    job_id: str
    name: str
    backend: str
    status: str
    workload: str = ""
    run_id: str = ""
    reason: str = ""
    queue: str = ""
    created: datetime | None = None
    started: datetime | None = None
    stopped: datetime | None = None
    exit_code: int | None = None
    nodes: int = 1
    log_stream: str = ""
    attempts: int = 0
    output_uri: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    instance_type: str = ""  # where the backend reports it (SageMaker's ResourceConfig)

    @property
    def done(self) -> bool:
        """True once the job can change no more."""
        return self.status in TERMINAL

    @property
    def failed(self) -> bool:
        """True when the job ended without success."""
        return self.status in FAILED

    @property
    def duration_s(self) -> float | None:
        """Seconds from start to stop (or to now while running)."""
        if self.started is None:
            return None
        end = self.stopped or datetime.now(UTC)
        return (end - self.started).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        """Return the job as JSON-ready data."""
        data = asdict(self)
        for key in ("created", "started", "stopped"):
            data[key] = data[key].isoformat() if data[key] else None
        data["duration_s"] = None if self.duration_s is None else round(self.duration_s, 1)
        return data


def from_millis(value: int | None) -> datetime | None:
    """Return a UTC datetime from Batch's epoch milliseconds."""
    return None if not value else datetime.fromtimestamp(value / 1000, tz=UTC)

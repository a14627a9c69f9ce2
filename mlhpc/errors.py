"""Errors a user can meet and fix: each carries what happened, the fix and the command to run next.

The CLI maps these (and a few botocore exceptions) to messages in one table
(:mod:`mlhpc_app.cli.errors`) and exits 1; anything else is a bug and exits 70.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

# How much of a value a message echoes: a pasted file or a runaway script can hand us megabytes,
# and a message that repeats them buries the one line that says what to do.
ECHO_LIMIT = 240
# A key or a name echoed inside a sentence (an argument name, one key of a config path).
KEY_LIMIT = 80


def shorten(text: str, limit: int = ECHO_LIMIT) -> str:
    """Return text as is up to `limit` characters, else its start and how many characters were left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…({len(text) - limit:,} more characters)"


def echo(value: object, limit: int = ECHO_LIMIT) -> str:
    """Return a user's value for a message: repr() of text (quotes show stray spaces), str() of others, shortened."""
    return shorten(repr(value) if isinstance(value, str) else str(value), limit)


class MlhpcError(Exception):
    """A user-facing problem: a one-line message, how to fix it, and optionally the next command."""

    def __init__(self, message: str, *, fix: str = "", next_command: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix
        self.next_command = next_command

    def __str__(self) -> str:
        return self.message


class UnknownWorkload(MlhpcError):
    """A workload name that no `workloads/<name>/spec.py` declares."""


class NoRegion(MlhpcError):
    """No AWS region was given or configured."""


class NoCredentials(MlhpcError):
    """No AWS credentials were found."""


class StackNotDeployed(MlhpcError):
    """A stack the command needs is not deployed (or not finished) in the region."""


class JobBlocked(MlhpcError):
    """Batch says a RUNNABLE job can never start (a MISCONFIGURATION: statusReason)."""


class InputMissing(MlhpcError):
    """A job's input is missing, empty, unreadable or given twice (the service would refuse or fail on it)."""


class OutputMissing(MlhpcError):
    """A deployed stack lacks an output the command needs (an older or different version of it)."""


class EfaUnavailable(MlhpcError):
    """The workload needs EFA and the chosen queue has none."""


class BackendUnsupported(MlhpcError):
    """The workload does not declare the backend asked for, or the backend cannot do what was asked."""


class JobNotFound(MlhpcError):
    """No job with that id or name exists in the region."""


class ClientTokenReused(MlhpcError):
    """A client token already used for a different request."""


class Throttled(MlhpcError):
    """AWS kept throttling a call after every retry."""


class JobFailed(MlhpcError):
    """A followed job ended FAILED; carries the status reason and the last log lines."""

    def __init__(
        self, message: str, *, reason: str, last_lines: list[str], fix: str = "", next_command: str = ""
    ) -> None:
        super().__init__(message, fix=fix, next_command=next_command)
        self.reason = reason
        self.last_lines = last_lines


class ImageMissing(MlhpcError):
    """The workload's image tag is not in its ECR repository (build and push it first)."""


class EngineUnavailable(MlhpcError):
    """No container engine (docker, podman, finch) is installed, or the one asked for is not."""


class EngineFailed(MlhpcError):
    """The container engine (or the in-account build) ran and failed."""


def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    """Return the closest candidate to a misspelt word, or None when nothing is close."""
    options = list(candidates)
    for option in options:
        if option.lower() == word.lower():
            return option
    matches = difflib.get_close_matches(word.lower(), [o.lower() for o in options], n=1, cutoff=0.6)
    if not matches:
        return None
    return next(o for o in options if o.lower() == matches[0])

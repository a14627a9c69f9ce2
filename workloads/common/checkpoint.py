"""Checkpoints that survive a Spot reclaim: atomic writes, a fingerprint, SIGTERM handling.

A job saves every K steps and when SIGTERM arrives (Batch and SageMaker send it
before a Spot instance goes away). It then exits with :data:`RESUMABLE_EXIT_CODE`,
which the Batch retry strategy retries; the next attempt finds the checkpoint and
continues from it. A checkpoint records a fingerprint (problem, architecture, ...);
loading one with a different fingerprint is refused, never silently mixed.
"""

from __future__ import annotations

import os
import signal
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import Any

# RESUMABLE_EXIT_CODE (143) lives in the invocation codec; re-exported for code importing it from here.
from mlhpc.invocation import CHECKPOINT_OPTION, RESUMABLE_EXIT_CODE  # noqa: F401
from workloads.common import storage

LATEST = "latest.pt"


class CheckpointMismatch(RuntimeError):
    """A checkpoint written by a different problem or architecture."""


class Preempted(Exception):
    """Raised when SIGTERM asked the job to stop: after saving a checkpoint, or (saved=False) with none.

    A job without checkpoints (a short solve) raises ``Preempted(saved=False)`` instead of
    writing partial results: the retry then starts over rather than trusting a truncated run.
    """

    def __init__(self, *, saved: bool = True) -> None:
        super().__init__(
            "stopped after saving a checkpoint" if saved else "stopped before finishing; nothing saved"
        )
        self.saved = saved


class GracefulStop:
    """Turn SIGTERM (and SIGINT) into a flag the training loop checks at a safe point."""

    def __init__(self, signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGINT)) -> None:
        self._event = threading.Event()
        self.signal_name: str | None = None
        self._previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in signals:
                self._previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.signal_name = signal.Signals(signum).name
        self._event.set()

    def request(self, reason: str = "requested") -> None:
        """Ask the job to stop at its next safe point (what the signal handler does)."""
        self.signal_name = reason
        self._event.set()

    @property
    def requested(self) -> bool:
        """True once a stop was asked for."""
        return self._event.is_set()

    def restore(self) -> None:
        """Put the previous signal handlers back."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()


class Checkpointer:
    """Save and load training state under a directory (local, or mirrored to an s3:// prefix)."""

    def __init__(self, location: str | os.PathLike[str], *, fingerprint: Mapping[str, Any]) -> None:
        self.location = str(location)
        self.fingerprint = dict(fingerprint)
        if storage.is_s3(self.location):
            self.dir = Path(tempfile.mkdtemp(prefix="mlhpc-ckpt-"))
            storage.download_prefix(self.location, self.dir)
        else:
            self.dir = Path(self.location).expanduser()
        self.dir.mkdir(parents=True, exist_ok=True)

    @property
    def path(self) -> Path:
        """The file holding the latest checkpoint."""
        return self.dir / LATEST

    def exists(self) -> bool:
        """True when there is a checkpoint to resume from."""
        return self.path.is_file()

    def save(self, state: Mapping[str, Any], *, step: int) -> Path:
        """Write the state atomically (temp file + rename) so a kill mid-write leaves the old one intact."""
        import torch

        payload = {"fingerprint": self.fingerprint, "step": int(step), "state": dict(state)}
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".tmp-", suffix=".pt")
        os.close(fd)
        try:
            torch.save(payload, tmp)
            os.replace(tmp, self.path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        if storage.is_s3(self.location):
            storage.upload_dir(self.dir, self.location)
        return self.path

    def load(self) -> tuple[int, dict[str, Any]] | None:
        """Return (step, state) of the latest checkpoint, None if there is none; refuse a foreign one."""
        if not self.exists():
            return None
        import torch

        payload = torch.load(self.path, map_location="cpu", weights_only=True)
        theirs = payload.get("fingerprint", {})
        if theirs != self.fingerprint:
            diff = sorted(
                k for k in set(theirs) | set(self.fingerprint) if theirs.get(k) != self.fingerprint.get(k)
            )
            detail = ", ".join(
                f"{k}: checkpoint {theirs.get(k)!r} vs run {self.fingerprint.get(k)!r}" for k in diff
            )
            raise CheckpointMismatch(
                f"the checkpoint in {self.location} belongs to another run ({detail}); "
                f"use another {CHECKPOINT_OPTION}, or delete it to start over"
            )
        return int(payload["step"]), payload["state"]

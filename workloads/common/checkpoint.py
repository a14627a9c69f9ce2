"""Checkpoints that survive a Spot reclaim: atomic writes, a fingerprint, SIGTERM handling.

A job saves every K steps and when SIGTERM arrives (Batch and SageMaker send it
before a Spot instance goes away). It then exits with :data:`RESUMABLE_EXIT_CODE`,
which the Batch retry strategy retries; the next attempt finds the checkpoint and
continues from it. A checkpoint records a fingerprint (problem, architecture, ...);
loading one with a different fingerprint is refused, never silently mixed.
"""

from __future__ import annotations

import os
import pickle
import signal
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import Any

# RESUMABLE_EXIT_CODE (143) lives in the invocation codec; re-exported for code importing it from here.
from mlhpc.errors import MlhpcError, echo, shorten
from mlhpc.invocation import CHECKPOINT_OPTION, NO_RESUME_OPTION, RESUMABLE_EXIT_CODE  # noqa: F401
from workloads.common import storage

LATEST = "latest.pt"
# What every checkpoint holds; a file without them is not one of ours.
PAYLOAD_KEYS = ("fingerprint", "step", "state")
# torch.save writes a zip archive; anything else (text, an old-style pickle) is not a checkpoint of ours.
ZIP_MAGIC = b"PK\x03\x04"


class CheckpointUnusable(MlhpcError):
    """A checkpoint that cannot be resumed from (empty, truncated, not a checkpoint, another run's).

    The message names the file; the fix gives both ways out: start over with ``--no-resume``
    (the next save replaces the file), or delete the file.
    """

    def __init__(self, where: str, problem: str, *, fix: str | None = None) -> None:
        super().__init__(
            f"cannot resume from the checkpoint {where}: {problem}", fix=fix or self.ways_out(where)
        )
        self.where = where

    @staticmethod
    def ways_out(where: str) -> str:
        """Return the fix: start over with --no-resume, or delete the file."""
        remove = f"aws s3 rm {where}" if storage.is_s3(where) else f"rm {where}"
        return (
            f"run again with {NO_RESUME_OPTION} to start over (its first checkpoint replaces the file), "
            f"or delete the file ({remove}) and run again"
        )


class CheckpointMismatch(CheckpointUnusable):
    """A checkpoint written by a different problem or architecture: a third way out is another directory."""

    @staticmethod
    def ways_out(where: str) -> str:
        """Return the fix: another --checkpoint-dir for this run, or either way out of a bad checkpoint."""
        return f"use another {CHECKPOINT_OPTION} for this run, or {CheckpointUnusable.ways_out(where)}"


class CheckpointDirUnusable(MlhpcError):
    """A checkpoint directory that cannot be created or written."""


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
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise CheckpointDirUnusable(
                f"cannot use {CHECKPOINT_OPTION} {echo(self.location)}: {err.strerror or err}",
                fix="give a directory you can write (or that can be created), or an s3:// prefix",
            ) from None
        if os.path.lexists(self.path) and not self.path.is_file():
            # Refused whether or not the run resumes: no save could replace a directory.
            raise CheckpointUnusable(
                self.where,
                "it is not a file (a directory or a broken link is in its place)",
                fix=f"remove it (rm -r {self.path}) and run again, or use another {CHECKPOINT_OPTION}",
            )

    @property
    def where(self) -> str:
        """The checkpoint file as the user knows it: the local path, or its s3:// URI."""
        if storage.is_s3(self.location):
            return f"{self.location.rstrip('/')}/{LATEST}"
        return str(self.path)

    @property
    def path(self) -> Path:
        """The file holding the latest checkpoint."""
        return self.dir / LATEST

    def exists(self) -> bool:
        """True when there is a checkpoint to resume from."""
        return self.path.is_file()

    def save(self, state: Mapping[str, Any], *, step: int) -> Path:
        """Write the state atomically: a temp file, fsync, then rename over the previous checkpoint.

        The previous checkpoint stays in place, whole, until the new one is complete on disk: a
        kill or a full disk mid-write leaves the temp file (removed here when we can) and the old one.
        """
        import torch

        payload = {"fingerprint": self.fingerprint, "step": int(step), "state": dict(state)}
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".tmp-", suffix=".pt")
        try:
            with os.fdopen(fd, "wb") as handle:
                torch.save(payload, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
            _fsync_dir(self.dir)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        if storage.is_s3(self.location):
            storage.upload_dir(self.dir, self.location)
        return self.path

    def load(self) -> tuple[int, dict[str, Any]] | None:
        """Return (step, state) of the latest checkpoint, None if there is none.

        Raise CheckpointUnusable (naming the file and the ways out) for an empty, truncated or
        foreign file, and CheckpointMismatch for another run's checkpoint.
        """
        if not self.exists():
            return None
        payload = read_payload(self.path, where=self.where)
        theirs = payload["fingerprint"]
        if theirs != self.fingerprint:
            diff = sorted(
                (
                    str(k)
                    for k in set(theirs) | set(self.fingerprint)
                    if theirs.get(k) != self.fingerprint.get(k)
                ),
            )
            detail = ", ".join(
                f"{k}: checkpoint {echo(theirs.get(k), 80)} vs run {echo(self.fingerprint.get(k), 80)}"
                for k in diff[:6]
            )
            raise CheckpointMismatch(self.where, f"it belongs to another run ({detail})")
        return payload["step"], payload["state"]


def read_payload(path: Path, *, where: str | None = None) -> dict[str, Any]:
    """Read and check a checkpoint file: tensors and plain values only (weights_only), our three keys."""
    import torch

    where = where or str(path)
    try:
        size = path.stat().st_size
    except OSError as err:
        raise CheckpointUnusable(where, f"it cannot be read ({err.strerror or err})") from None
    if size == 0:
        raise CheckpointUnusable(where, "the file is empty (a save was cut off, or something else wrote it)")
    with path.open("rb") as handle:
        magic = handle.read(len(ZIP_MAGIC))
    if magic != ZIP_MAGIC:
        raise CheckpointUnusable(
            where, f"it is not a checkpoint file ({size:,} bytes that are not a torch archive)"
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # weights_only=True refuses Python objects other than tensors and plain containers: loading
        # them could run code. Keep it that way; a checkpoint of ours never holds any.
        raise CheckpointUnusable(
            where,
            "it holds Python objects a checkpoint never contains (refused unread: loading them could run code)",
        ) from None
    except Exception as err:  # whatever torch raises on an archive it cannot decode, the file is unusable
        text = str(err).strip()
        first = text.splitlines()[0].split(". ")[0] if text else type(err).__name__
        raise CheckpointUnusable(
            where, f"the file is truncated or damaged ({size:,} bytes; torch: {shorten(first, 120)})"
        ) from None
    if not isinstance(payload, dict) or not all(k in payload for k in PAYLOAD_KEYS):
        found = (
            ", ".join(sorted(echo(str(k), 40) for k in payload)[:8]) or "nothing"
            if isinstance(payload, dict)
            else f"a {type(payload).__name__}"
        )
        raise CheckpointUnusable(
            where,
            f"it is not an mlhpc checkpoint (it holds {found}; a checkpoint holds {', '.join(PAYLOAD_KEYS)})",
        )
    fingerprint, step, state = (payload[k] for k in PAYLOAD_KEYS)
    if (
        not isinstance(fingerprint, dict)
        or not isinstance(state, dict)
        or isinstance(step, bool)
        or not isinstance(step, int)
        or step < 0
    ):
        raise CheckpointUnusable(
            where, "it is not an mlhpc checkpoint (fingerprint and state must be mappings, step a count >= 0)"
        )
    return {"fingerprint": fingerprint, "step": step, "state": state}


def _fsync_dir(directory: Path) -> None:
    """Make a rename in the directory durable (where the platform lets a directory be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)

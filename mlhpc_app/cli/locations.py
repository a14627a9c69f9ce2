"""Refuse an output or checkpoint location that cannot work, before a run writes anything.

`mlhpc run` checks `--out` and `--checkpoint-dir` here first, so a typo does not leave a
half-made directory tree behind or fail minutes into a run: nothing is created to find out.
"""

from __future__ import annotations

import os
from pathlib import Path

from mlhpc.errors import MlhpcError, echo
from workloads.common.storage import StorageError, is_s3, split_s3

NAME_MAX_BYTES = 255  # the longest file name Linux and macOS file systems take (NAME_MAX)


class LocationUnusable(MlhpcError):
    """An --out or --checkpoint-dir that is not a usable directory or s3:// prefix."""


def check_location(option: str, location: str, *, fix: str) -> None:
    """Raise LocationUnusable when `location` cannot be used as a directory (or an s3:// prefix)."""
    problem = location_problem(location)
    if problem is not None:
        raise LocationUnusable(f"cannot use {option} {echo(location)}: {problem}", fix=fix)


def location_problem(location: str) -> str | None:
    """Return why a directory or s3:// prefix cannot be written, or None; never creates anything."""
    if is_s3(location):
        try:
            split_s3(location)
        except StorageError:
            return "an S3 location needs a bucket: s3://BUCKET/PREFIX"
        return None
    if "\0" in location:
        return "it contains a NUL character, which no path may"
    try:
        path = Path(location).expanduser()
    except RuntimeError:  # ~name of a user this machine does not know
        return f"{echo(location.split('/', maxsplit=1)[0], 60)} names no user of this machine"
    for part in path.parts:
        if len(os.fsencode(part)) > NAME_MAX_BYTES:
            return f"the name {echo(part, 60)} is longer than {NAME_MAX_BYTES} bytes, the most a file system takes"
    probe = path
    while not os.path.lexists(probe) and probe != probe.parent:
        probe = probe.parent
    if probe == path:
        if not path.is_dir():
            return "it is a file, not a directory" if path.exists() else "it is a broken link"
        if not os.access(path, os.W_OK | os.X_OK):
            return "the directory is not writable by you"
        return None
    if not probe.is_dir():
        return f"{echo(str(probe), 120)} is not a directory (a file or a broken link), so none can be made under it"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"it does not exist and cannot be made: {echo(str(probe), 120)} is not writable by you"
    return None

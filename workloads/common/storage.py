"""Inputs from a local path or an s3:// URI; outputs to a directory that may be uploaded to S3."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse


class StorageError(RuntimeError):
    """An input that cannot be found or read, or an output that cannot be written."""


def is_s3(uri: str | os.PathLike[str]) -> bool:
    """True for 's3://bucket/key' strings."""
    return str(uri).startswith("s3://")


def split_s3(uri: str) -> tuple[str, str]:
    """Return (bucket, key) of an s3:// URI."""
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise StorageError(f"'{uri}' is not an S3 URI; expected s3://bucket/key")
    return parsed.netloc, parsed.path.lstrip("/")


def _client():  # type: ignore[no-untyped-def]
    import boto3

    return boto3.client("s3")


def local_target(root: str | os.PathLike[str], relative: str, *, key: str | None = None) -> Path:
    """Return where an object goes under a local directory, refusing a key that would leave it.

    An object key is text from outside (any job role can write the results and checkpoints
    buckets): ``../`` segments or a leading ``/`` would otherwise write anywhere the process may.
    """
    parts = PurePosixPath(relative).parts
    base = Path(root).resolve()
    target = base.joinpath(*parts) if parts else base
    if not parts or relative.startswith("/") or ".." in parts or not target.resolve().is_relative_to(base):
        raise StorageError(
            f"S3 key {key or relative!r} would be written outside {base}; nothing was downloaded "
            "(remove or rename the object: keys must be relative paths without '..')"
        )
    return target


def _targets(root: Path, keys: list[str], prefix: str) -> list[tuple[str, Path]]:
    """Return (key, local path) for every key, all checked before anything is written."""
    return [(k, local_target(root, k[len(prefix) :], key=k)) for k in keys if k[len(prefix) :].strip("/")]


def fetch(uri: str | os.PathLike[str], *, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Return a local path for an input: the path itself, or a download of an S3 object or prefix."""
    if not is_s3(uri):
        path = Path(uri).expanduser()
        if not path.exists():
            raise StorageError(f"input '{uri}' does not exist; give an existing path or an s3:// URI")
        return path
    bucket, key = split_s3(str(uri))
    dest_root = Path(cache_dir or tempfile.mkdtemp(prefix="mlhpc-input-"))
    dest_root.mkdir(parents=True, exist_ok=True)
    client = _client()
    keys = [key] if key and not key.endswith("/") else []
    if not keys:
        paginator = client.get_paginator("list_objects_v2")
        keys = [
            o["Key"]
            for page in paginator.paginate(Bucket=bucket, Prefix=key)
            for o in page.get("Contents", [])
        ]
        if not keys:
            raise StorageError(f"nothing found under {uri}; check the bucket and prefix")
        for k, target in _targets(dest_root, keys, key):
            target.parent.mkdir(parents=True, exist_ok=True)
            client.download_file(bucket, k, str(target))
        return dest_root
    target = local_target(dest_root, PurePosixPath(key).name, key=key)
    try:
        client.download_file(bucket, key, str(target))
    except Exception as err:
        raise StorageError(f"could not download {uri}: {err}") from err
    return target


def upload_dir(local: str | os.PathLike[str], uri: str) -> list[str]:
    """Upload every file under a directory to an S3 prefix; return the keys written."""
    bucket, prefix = split_s3(uri)
    client = _client()
    written = []
    root = Path(local)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        key = f"{prefix.rstrip('/')}/{path.relative_to(root).as_posix()}".lstrip("/")
        client.upload_file(str(path), bucket, key)
        written.append(key)
    return written


def download_prefix(uri: str, local: str | os.PathLike[str]) -> int:
    """Mirror an S3 prefix into a local directory (missing prefix: nothing); return files copied."""
    bucket, prefix = split_s3(uri)
    client = _client()
    count = 0
    paginator = client.get_paginator("list_objects_v2")
    base = prefix.rstrip("/") + "/" if prefix else ""
    keys = [
        o["Key"] for page in paginator.paginate(Bucket=bucket, Prefix=base) for o in page.get("Contents", [])
    ]
    for key, target in _targets(Path(local), keys, base):
        target.parent.mkdir(parents=True, exist_ok=True)
        client.download_file(bucket, key, str(target))
        count += 1
    return count


class OutputDir:
    """A local directory for a run's outputs, uploaded to S3 by :meth:`publish` when the target is s3://."""

    def __init__(self, target: str | os.PathLike[str]) -> None:
        self.target = str(target)
        if is_s3(self.target):
            split_s3(self.target)
            self.path = Path(tempfile.mkdtemp(prefix="mlhpc-out-"))
        else:
            self.path = Path(self.target).expanduser()
            self.path.mkdir(parents=True, exist_ok=True)

    def publish(self) -> str:
        """Upload the outputs if the target is S3; return where they are."""
        if is_s3(self.target):
            upload_dir(self.path, self.target)
        return self.target

    def cleanup(self) -> None:
        """Remove the local staging copy of an S3 target."""
        if is_s3(self.target):
            shutil.rmtree(self.path, ignore_errors=True)

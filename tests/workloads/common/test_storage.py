"""Inputs and outputs through S3 (moto), and the same code paths on local paths."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from tests.workloads.common import toy
from workloads.common import storage

BUCKET = "mlhpc-test-results"


@pytest.fixture
def s3():  # type: ignore[no-untyped-def]
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def test_fetch_local_path_and_missing_path(tmp_path: Path) -> None:
    file = tmp_path / "x.npz"
    file.write_bytes(b"data")
    assert storage.fetch(file) == file
    with pytest.raises(storage.StorageError, match="does not exist; give an existing path or an s3:// URI"):
        storage.fetch(tmp_path / "nope.npz")


def test_fetch_object_and_prefix_from_s3(s3, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    s3.put_object(Bucket=BUCKET, Key="inputs/a/state.npy", Body=b"abc")
    s3.put_object(Bucket=BUCKET, Key="inputs/a/sub/b.txt", Body=b"b")
    one = storage.fetch(f"s3://{BUCKET}/inputs/a/state.npy", cache_dir=tmp_path / "one")
    assert one.read_bytes() == b"abc"
    tree = storage.fetch(f"s3://{BUCKET}/inputs/a/", cache_dir=tmp_path / "tree")
    assert (tree / "sub" / "b.txt").read_bytes() == b"b"
    with pytest.raises(storage.StorageError, match="nothing found under"):
        storage.fetch(f"s3://{BUCKET}/missing/", cache_dir=tmp_path / "none")


def test_bad_uri_is_explained() -> None:
    with pytest.raises(storage.StorageError, match="expected s3://bucket/key"):
        storage.split_s3("s3:///key-without-bucket")


def test_a_run_publishes_outputs_and_checkpoints_to_s3(s3) -> None:  # type: ignore[no-untyped-def]
    prefix = f"s3://{BUCKET}/runs/toy-1"
    assert toy.main(["--steps", "4", "--out", prefix]) == 0
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="runs/toy-1/")["Contents"]}
    assert "runs/toy-1/metrics.json" in keys
    assert "runs/toy-1/checkpoints/latest.pt" in keys
    body = json.loads(s3.get_object(Bucket=BUCKET, Key="runs/toy-1/metrics.json")["Body"].read())
    assert body["total"] == 4.0


def test_resume_reads_the_checkpoint_back_from_s3(s3) -> None:  # type: ignore[no-untyped-def]
    prefix = f"s3://{BUCKET}/runs/toy-2"
    assert toy.main(["--steps", "8", "--stop-at", "3", "--out", prefix]) == 143
    assert toy.main(["--steps", "8", "--out", prefix]) == 0
    body = json.loads(s3.get_object(Bucket=BUCKET, Key="runs/toy-2/metrics.json")["Body"].read())
    assert (body["resumed_from"], body["total"]) == (3, 8.0)


@pytest.mark.parametrize("evil", ["../escaped.txt", "a/../../escaped.txt", "/etc/escaped.txt", "sub/.."])
def test_a_key_that_would_leave_the_directory_writes_nothing(s3, tmp_path: Path, evil: str) -> None:  # type: ignore[no-untyped-def]
    """S3 keys are outside input (any job may write the bucket): one with .. or a leading / is refused whole."""
    s3.put_object(Bucket=BUCKET, Key="in/fine.txt", Body=b"ok")
    s3.put_object(Bucket=BUCKET, Key=f"in/{evil}", Body=b"planted")
    dest = tmp_path / "deep" / "dest"
    for download in (
        lambda: storage.fetch(f"s3://{BUCKET}/in/", cache_dir=dest),
        lambda: storage.download_prefix(f"s3://{BUCKET}/in", dest),
    ):
        with pytest.raises(storage.StorageError, match=r"would be written outside .*nothing was downloaded"):
            download()
    planted = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert planted == []  # not even the good key: the check runs before any write


def test_local_target_keeps_ordinary_keys_inside(tmp_path: Path) -> None:
    assert storage.local_target(tmp_path, "a/b//c.txt") == tmp_path.resolve() / "a" / "b" / "c.txt"
    with pytest.raises(storage.StorageError):
        storage.local_target(tmp_path, "")

"""A moto server on loopback that plays S3 for an emulated job and for the emulator itself."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from mlhpc_app.aws.stacks import split_s3

FAKE_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@contextmanager
def server(region: str, buckets: Iterable[str]) -> Iterator[str]:
    """Start a moto server on 127.0.0.1 (a free port) with these buckets; yield its URL."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    url = f"http://{host}:{port}"
    # moto's state lives in this process, shared by every server it starts: begin from an empty account.
    _reset(url)
    try:
        s3 = client(url, region)
        for bucket in dict.fromkeys(buckets):
            kwargs: dict[str, Any] = {"Bucket": bucket}
            if region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
            s3.create_bucket(**kwargs)
        yield url
    finally:
        _reset(url)
        moto.stop()


def _reset(url: str) -> None:
    import urllib.request

    with urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=30):
        pass


def client(url: str, region: str, credentials: Mapping[str, str] | None = None) -> Any:
    """Return an S3 client of the moto server: the emulator's own, or one with a role's credentials.

    ``credentials`` are the variables a container gets (``AWS_ACCESS_KEY_ID`` ...), as
    :func:`mlhpc_app.emulate.iam.as_role` yields them.
    """
    import boto3

    keys = {name.lower(): value for name, value in credentials.items()} if credentials else FAKE_CREDENTIALS
    return boto3.client("s3", endpoint_url=url, region_name=region, **keys)


def missing(url: str, region: str, prefix_uri: str, names: Iterable[str]) -> list[str]:
    """Return the names not found under an s3:// prefix."""
    bucket, prefix = split_s3(prefix_uri)
    s3 = client(url, region)
    found = {
        obj["Key"][len(prefix) :]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for obj in page.get("Contents", [])
    }
    return [name for name in names if name not in found]


def get_bytes(url: str, region: str, uri: str) -> bytes:
    """Return one object's bytes."""
    bucket, key = split_s3(uri)
    body: bytes = client(url, region).get_object(Bucket=bucket, Key=key)["Body"].read()
    return body

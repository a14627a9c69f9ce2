"""A job's input, checked where the service will look for it before anything is submitted.

SageMaker refuses a training channel whose S3 prefix holds no objects ("No S3 objects found under
S3 URL") and Batch or EKS jobs would fail minutes later reading an empty prefix; one ListObjectsV2
call tells the user now, with the command that fixes it.
"""

from __future__ import annotations

from mlhpc.errors import InputMissing
from mlhpc.spec import WorkloadSpec
from mlhpc_app.aws.session import Aws, with_backoff
from mlhpc_app.aws.stacks import split_s3


def require_objects(aws: Aws, uri: str, *, spec: WorkloadSpec) -> None:
    """Raise InputMissing unless the s3:// URI holds at least one object (other URIs are the job's own)."""
    if not uri.startswith("s3://"):
        return  # a path on the cluster's file systems (/fsx, /efs): only the job can see it
    from botocore.exceptions import ClientError

    bucket, prefix = split_s3(uri)
    s3 = aws.client("s3")
    fix = f"upload the input first (aws s3 cp --recursive DIR {uri}), or pass another --input"
    try:
        found = with_backoff(
            lambda: s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1), what="s3:ListObjectsV2"
        )
    except ClientError as err:
        code = err.response.get("Error", {}).get("Code", "")
        if code in ("NoSuchBucket", "AccessDenied", "403", "404"):
            raise InputMissing(
                f"the input of {spec.name}, {uri}, cannot be listed: {code}",
                fix=fix,
                next_command=f"aws s3 ls {uri}",
            ) from None
        raise
    if not found.get("KeyCount"):
        raise InputMissing(
            f"no S3 objects found under {uri} (the input of {spec.name})",
            fix=fix,
            next_command=f"aws s3 ls {uri}",
        )

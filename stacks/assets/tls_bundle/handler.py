"""CloudFormation custom resource: write a self-signed EMR TLS bundle (and its CA) to S3.

Properties: Bucket, BundleKey, CaKey, KmsKeyId, DnsNames (list), Organization, ValidityDays.
Create and Update generate a new CA and server certificate; Delete removes both objects.
The private key only ever exists in this invocation's memory and in the KMS-encrypted object.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import boto3

try:  # packaged as stacks.assets.tls_bundle in tests, as top-level modules in Lambda
    from .selfsigned import make_bundle
except ImportError:  # pragma: no cover - the Lambda layout
    from selfsigned import make_bundle  # type: ignore[no-redef]


def _respond(
    event: dict[str, Any],
    status: str,
    *,
    physical_id: str,
    reason: str = "",
    data: dict[str, str] | None = None,
) -> None:
    body = json.dumps(
        {
            "Status": status,
            "Reason": reason[:1000] or status,
            "PhysicalResourceId": physical_id,
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
            "Data": data or {},
        }
    ).encode("utf-8")
    request = urllib.request.Request(
        event["ResponseURL"],
        data=body,
        method="PUT",
        headers={"Content-Type": "", "Content-Length": str(len(body))},
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # the pre-signed URL CloudFormation gave
        response.read()


def handler(event: dict[str, Any], context: Any, *, s3: Any = None) -> None:
    """Handle one CloudFormation request; always answer it, also on failure."""
    props = event.get("ResourceProperties", {})
    bucket, bundle_key, ca_key = props.get("Bucket", ""), props.get("BundleKey", ""), props.get("CaKey", "")
    physical_id = event.get("PhysicalResourceId") or f"s3://{bucket}/{bundle_key}"
    try:
        s3 = s3 or boto3.client("s3")
        if event["RequestType"] == "Delete":
            for key in (bundle_key, ca_key):
                if key:
                    s3.delete_object(Bucket=bucket, Key=key)
            _respond(event, "SUCCESS", physical_id=physical_id)
            return
        bundle = make_bundle(
            tuple(props["DnsNames"]),
            organization=props.get("Organization", "mlhpc"),
            days=int(props.get("ValidityDays", 365)),
        )
        encryption = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": props["KmsKeyId"]}
        s3.put_object(Bucket=bucket, Key=bundle_key, Body=bundle.emr_zip(), **encryption)
        s3.put_object(
            Bucket=bucket, Key=ca_key, Body=bundle.trusted_certificates.encode("ascii"), **encryption
        )
        physical_id = f"s3://{bucket}/{bundle_key}"
        data = {"BundleUri": physical_id, "CaUri": f"s3://{bucket}/{ca_key}"}
        _respond(event, "SUCCESS", physical_id=physical_id, data=data)
    except Exception as err:  # CloudFormation must get an answer, or it waits an hour
        _respond(event, "FAILED", physical_id=physical_id, reason=f"{type(err).__name__}: {err}")

"""The MIME multipart user data that prepares a Batch node (file systems, memlock, huge pages)."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Fn

SCRIPT = Path(__file__).resolve().parents[1] / "userdata" / "node-setup.sh"
BOUNDARY = "==MLHPC-NODE-SETUP=="


def mime_multipart(script: str) -> str:
    """Wrap a shell script as MIME multipart: AWS Batch merges launch-template user data only in that form.

    Batch appends its own part (the one that writes ECS_CLUSTER and joins the node to
    the compute environment's ECS cluster) after ours, so ours runs first.
    """
    return (
        f'Content-Type: multipart/mixed; boundary="{BOUNDARY}"\n'
        "MIME-Version: 1.0\n\n"
        f"--{BOUNDARY}\n"
        'Content-Type: text/x-shellscript; charset="us-ascii"\n\n'
        f"{script}\n"
        f"--{BOUNDARY}--\n"
    )


def node_user_data(*, fsx_dns: str = "", fsx_mount: str = "", efs_id: str = "", hugepages: int = 0) -> str:
    """Return base64 user data (a CloudFormation token) mounting /fsx and /efs and tuning for EFA."""
    text = mime_multipart(SCRIPT.read_text(encoding="utf-8"))
    return Fn.base64(
        Fn.sub(
            text,
            {"FsxDnsName": fsx_dns, "FsxMountName": fsx_mount, "EfsId": efs_id, "HugePages": str(hugepages)},
        )
    )


def render_for_test(
    *, fsx_dns: str, fsx_mount: str, efs_id: str, hugepages: int, region: str = "us-east-1"
) -> str:
    """Render the script the way Fn::Sub would, for shellcheck and unit tests."""
    text = SCRIPT.read_text(encoding="utf-8")
    values = {"FsxDnsName": fsx_dns, "FsxMountName": fsx_mount, "EfsId": efs_id, "HugePages": str(hugepages),
              "AWS::Region": region}  # fmt: skip
    for key, value in values.items():
        text = text.replace("${" + key + "}", value)
    return text.replace("${!", "${")

"""Workload images in ECR: is the tag there, a registry login for an engine, and in-account builds.

The repositories (HpcStack, output ``Repository<Name>Uri``) have immutable tags, so one tag
names one build: :func:`find` answers whether it exists (DescribeImages), :func:`require`
refuses a submission whose image was never pushed, with the command that pushes it.
:func:`registry_login` returns the password an engine reads on stdin; it is never put on a
command line or printed. :func:`start_build` / :func:`describe_build` drive the CodeBuild
project HpcStack defines (output ``ImageBuildProjectName``) for machines without an engine.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from mlhpc import contract
from mlhpc.contract import ImageBuildEnv
from mlhpc.errors import ImageMissing, JobNotFound, OutputMissing
from mlhpc_app.aws.jobs import JobInfo
from mlhpc_app.aws.session import Aws, with_backoff

BUILD_STATUS = {
    "SUCCEEDED": "SUCCEEDED",
    "IN_PROGRESS": "RUNNING",
}  # FAILED, FAULT, TIMED_OUT, STOPPED: FAILED


@dataclass(frozen=True)
class ImageRef:
    """A workload image in ECR: the repository URI and the deployment's tag."""

    workload: str
    repository_uri: str
    tag: str
    variant: str | None = None  # an image variant (contract.IMAGE_VARIANTS: the Neuron images of bert)

    @property
    def image_tag(self) -> str:
        """Return the tag in the repository: the deployment's, with the variant's suffix."""
        return contract.variant_tag(self.tag, self.variant)

    @property
    def reference(self) -> str:
        """Return `<repository-uri>:<tag>[-<variant>]`, what every backend runs."""
        return contract.image_reference(self.repository_uri, self.tag, self.variant)

    @property
    def registry(self) -> str:
        """Return the registry host: `<account>.dkr.ecr.<region>.amazonaws.com`."""
        return contract.split_repository_uri(self.repository_uri)[0]

    @property
    def repository_name(self) -> str:
        """Return the repository name: `<project>/<workload image>`."""
        return contract.split_repository_uri(self.repository_uri)[1]

    @property
    def registry_id(self) -> str:
        """Return the account id that owns the registry."""
        return self.registry.split(".", 1)[0]


@dataclass(frozen=True)
class Pushed:
    """An image found in ECR."""

    digest: str
    pushed_at: datetime | None


def find(aws: Aws, ref: ImageRef) -> Pushed | None:
    """Return the image of the tag when it is in ECR, None when it is not (DescribeImages)."""
    from botocore.exceptions import ClientError

    ecr = aws.client("ecr")
    try:
        found = with_backoff(
            lambda: ecr.describe_images(
                registryId=ref.registry_id,
                repositoryName=ref.repository_name,
                imageIds=[{"imageTag": ref.image_tag}],
            ),
            what="ecr:DescribeImages",
        )
    except ClientError as err:
        code = err.response.get("Error", {}).get("Code")
        if code == "ImageNotFoundException":
            return None
        if code == "RepositoryNotFoundException":
            raise OutputMissing(
                f"the repository {ref.repository_name} of {ref.workload} does not exist in {aws.region}",
                fix="deploy HpcStack, which creates one repository per workload",
                next_command="cdk deploy HpcStack",
            ) from None
        raise
    details = found.get("imageDetails", [])
    if not details:
        return None
    return Pushed(digest=str(details[0].get("imageDigest", "")), pushed_at=details[0].get("imagePushedAt"))


def push_command(workload: str, config_path: Path) -> str:
    """Return the command that builds and pushes a workload's image for a config."""
    return f"mlhpc image push {workload} --config {config_path}"


def require(aws: Aws, ref: ImageRef, *, config_path: Path) -> Pushed:
    """Return the pushed image, or raise ImageMissing naming the command that pushes it."""
    pushed = find(aws, ref)
    if pushed is None:
        raise ImageMissing(
            f"the image {ref.reference} is not in ECR: a job would fail to pull it (CannotPullContainerError)",
            fix=f"build and push it: `mlhpc image build {ref.workload} --config {config_path}`, then "
            f"`{push_command(ref.workload, config_path)}` (or `make image-{ref.workload}`)",
            next_command=push_command(ref.workload, config_path),
        )
    return pushed


@dataclass(frozen=True)
class Login:
    """A registry login: the user name, the password (for an engine's stdin only) and the registry."""

    username: str
    password: str
    registry: str

    def __repr__(self) -> str:  # never show the password, even in a traceback or a debugger
        return f"Login(username={self.username!r}, password='***', registry={self.registry!r})"


def registry_login(aws: Aws, ref: ImageRef) -> Login:
    """Return a login for the image's registry (ecr:GetAuthorizationToken; valid for 12 hours)."""
    ecr = aws.client("ecr")
    answer = with_backoff(
        lambda: ecr.get_authorization_token(registryIds=[ref.registry_id]), what="ecr:GetAuthorizationToken"
    )
    data = answer["authorizationData"][0]
    username, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
    registry = str(data.get("proxyEndpoint") or ref.registry).removeprefix("https://")
    return Login(username=username, password=password, registry=registry)


# --- in-account builds (CodeBuild) ------------------------------------------------------------


def build_project(deployment: Any) -> str:
    """Return the CodeBuild project's name from HpcStack's outputs."""
    return str(deployment.get(contract.IMAGE_BUILD_PROJECT))


def start_build(aws: Aws, project: str, ref: ImageRef) -> str:
    """Start a build of the workload's image at the tag; return the build id."""
    codebuild = aws.client("codebuild", retries=False)  # a retried StartBuild would start two builds
    answer = with_backoff(
        lambda: codebuild.start_build(
            projectName=project,
            environmentVariablesOverride=[
                {"name": name.value, "value": value, "type": "PLAINTEXT"}
                for name, value in (
                    (ImageBuildEnv.WORKLOAD, ref.workload),
                    (ImageBuildEnv.REPOSITORY_URI, ref.repository_uri),
                    (ImageBuildEnv.IMAGE_TAG, ref.image_tag),
                    (ImageBuildEnv.IMAGE_VARIANT, ref.variant or ""),
                )
            ],
        ),
        what="codebuild:StartBuild",
    )
    return str(answer["build"]["id"])


def describe_build(aws: Aws, build_id: str, *, workload: str = "") -> JobInfo:
    """Return a CodeBuild build as a JobInfo (status RUNNING while in progress, then SUCCEEDED or FAILED)."""
    codebuild = aws.client("codebuild")
    answer = with_backoff(lambda: codebuild.batch_get_builds(ids=[build_id]), what="codebuild:BatchGetBuilds")
    builds = answer.get("builds", [])
    if not builds:
        raise JobNotFound(f"no CodeBuild build '{build_id}' in {aws.region}", fix="check the build id")
    raw = builds[0]
    status = str(raw.get("buildStatus", "IN_PROGRESS"))
    phase = str(raw.get("currentPhase", ""))
    failed_phase = next(
        (p for p in raw.get("phases", []) if p.get("phaseStatus") not in (None, "SUCCEEDED")), None
    )
    reason = ""
    if failed_phase is not None:
        contexts = [c.get("message", "") for c in failed_phase.get("contexts", []) if c.get("message")]
        reason = f"{status} in {failed_phase.get('phaseType')}" + (f": {contexts[0]}" if contexts else "")
    elif status == "IN_PROGRESS" and phase:
        reason = f"phase {phase}"
    cloudwatch = raw.get("logs", {}) or {}
    return JobInfo(
        job_id=build_id,
        name=str(raw.get("projectName", "")),
        backend="codebuild",
        status=BUILD_STATUS.get(status, "FAILED"),
        workload=workload,
        reason=reason or (status if status not in BUILD_STATUS else ""),
        started=raw.get("startTime"),
        stopped=raw.get("endTime"),
        log_stream=str(cloudwatch.get("streamName") or ""),
        tags={"logGroup": str(cloudwatch.get("groupName") or "")},
    )

"""Load and check ami/versions.yaml, the single manifest of what the mlhpc images contain.

Every artifact pins a version and says how its bytes are verified: a download carries a
SHA-256 (or an explicit ``null`` with a ``checksum_source`` saying why), a package names
the signed repository whose key is the trust root, a bundled artifact names the download
that carries it. ImageStack turns an artifact into component parameters with
:meth:`Artifact.parameters`; nothing else in the repository writes a version.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

MANIFEST_PATH = Path(__file__).resolve().parents[2] / "ami" / "versions.yaml"

Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
HttpsUrl = Annotated[str, Field(pattern=r"^https://[^\s]+$")]
# A pin: digits and separators, never "latest", "*" or a range.
Version = Annotated[str, Field(pattern=r"^[0-9][0-9A-Za-z.+_-]*$", max_length=40)]


class ManifestError(ValueError):
    """The manifest is missing, unreadable or breaks a rule; the message says which and how to fix it."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ArtifactKind(StrEnum):
    """How an artifact reaches the image and how its bytes are verified."""

    DOWNLOAD = "download"
    PACKAGE = "package"
    BUNDLED = "bundled"


class Repository(_Model):
    """A signed RPM repository; its GPG key is the trust root for every package from it."""

    title: str
    baseurl: HttpsUrl
    gpgkey_url: HttpsUrl
    gpgkey_sha256: Sha256 | None
    checksum_source: str = Field(min_length=10)

    @property
    def verified(self) -> bool:
        """True when the key file has a checksum, so its packages install without an override."""
        return self.gpgkey_sha256 is not None


class Artifact(_Model):
    """One pinned piece of the image."""

    title: str
    version: Version
    kind: ArtifactKind
    url: HttpsUrl | None = None
    sha256: Sha256 | None = None
    checksum_source: str = Field(min_length=10)
    repository: str | None = None
    package: str | None = None
    packages: dict[str, Version] | None = None
    bundled_in: str | None = None
    minimum_driver: Version | None = None
    # What a workload container installs for this line (Python, OS packages, wheels): its Dockerfile
    # takes them as ARG defaults, and a test holds the two together.
    container: dict[str, Version] | None = None

    @model_validator(mode="after")
    def _fields_match_kind(self) -> Artifact:
        if self.kind is ArtifactKind.DOWNLOAD and self.url is None:
            raise ValueError("a download needs a url; add `url: https://...` with the pinned version in it")
        if self.kind is ArtifactKind.DOWNLOAD and self.version not in self.url:  # type: ignore[operator]
            raise ValueError(
                f"url {self.url} does not contain the pinned version {self.version}; "
                "use the publisher's versioned URL so the pin and the bytes cannot drift apart"
            )
        if self.kind is ArtifactKind.PACKAGE and (
            self.repository is None or not (self.package or self.packages)
        ):
            raise ValueError(
                "a package needs `repository:` and `package:` (or a `packages:` map of name: version)"
            )
        if self.kind is ArtifactKind.BUNDLED and self.bundled_in is None:
            raise ValueError("a bundled artifact needs `bundled_in:` naming the download that carries it")
        if self.kind is not ArtifactKind.DOWNLOAD and (self.url or self.sha256):
            raise ValueError(f"url/sha256 belong to downloads only, not to a {self.kind.value}")
        return self

    @property
    def verified(self) -> bool:
        """True when a download has a checksum (packages and bundles are judged by their source)."""
        return self.kind is not ArtifactKind.DOWNLOAD or self.sha256 is not None

    def package_specs(self) -> list[str]:
        """Return the RPM specs to install (``name-version``), pinned exactly."""
        if self.packages:
            return [f"{name}-{version}" for name, version in self.packages.items()]
        return [f"{self.package}-{self.version}"] if self.package else []


class Manifest(_Model):
    """ami/versions.yaml."""

    schema_version: Literal[1]
    platform: dict[str, str]
    cuda_architectures: tuple[Annotated[str, Field(pattern=r"^[0-9]{2,3}$")], ...] = Field(min_length=1)
    artifacts: dict[str, Artifact]
    repositories: dict[str, Repository]

    @model_validator(mode="after")
    def _references_resolve(self) -> Manifest:
        for name, artifact in self.artifacts.items():
            if artifact.repository is not None and artifact.repository not in self.repositories:
                raise ValueError(
                    f"artifacts.{name}.repository '{artifact.repository}' is not defined; "
                    f"use one of {sorted(self.repositories)} or add it under repositories"
                )
            if artifact.bundled_in is not None and artifact.bundled_in not in self.artifacts:
                raise ValueError(f"artifacts.{name}.bundled_in '{artifact.bundled_in}' is not an artifact")
        return self

    def artifact(self, name: str) -> Artifact:
        """Return an artifact by key, with the known keys in the error."""
        try:
            return self.artifacts[name]
        except KeyError:
            raise ManifestError(
                f"ami/versions.yaml has no artifact '{name}'; known: {', '.join(sorted(self.artifacts))}"
            ) from None

    def unverified(self) -> list[str]:
        """Return what would need the unverified-download override: downloads and repository keys without a checksum."""
        missing = [f"artifacts.{n}" for n, a in self.artifacts.items() if not a.verified]
        missing += [f"repositories.{n}" for n, r in self.repositories.items() if not r.verified]
        return missing

    def versions(self) -> set[str]:
        """Return every version string the manifest pins (for the no-hard-coded-versions test)."""
        found = {a.version for a in self.artifacts.values()}
        for artifact in self.artifacts.values():
            found.update((artifact.packages or {}).values())
            found.update((artifact.container or {}).values())
            if artifact.minimum_driver:
                found.add(artifact.minimum_driver)
        return found


def _first_error(err: ValidationError) -> str:
    lines = []
    for item in err.errors():
        where = ".".join(str(p) for p in item["loc"])
        lines.append(f"{where}: {item['msg']}")
    return "; ".join(lines)


def load_manifest(path: Path = MANIFEST_PATH) -> Manifest:
    """Read and check the manifest; raise ManifestError with the file, the place and the fix."""
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ManifestError(f"cannot read the image manifest {path}: {err.strerror}") from err
    except yaml.YAMLError as err:
        raise ManifestError(f"{path} is not valid YAML: {err}") from err
    try:
        return Manifest.model_validate(data)
    except ValidationError as err:
        raise ManifestError(f"{path}: {_first_error(err)}") from err


def short_sha(value: str | None) -> str:
    """Return the first 12 hex digits of a checksum, or a plain word when there is none."""
    return f"`{value[:12]}…`" if value else "none published"

"""The machine-image manifest (ami/versions.yaml): its model, its loader and the README version table."""

from mlhpc.ami.manifest import MANIFEST_PATH, Artifact, Manifest, ManifestError, Repository, load_manifest

__all__ = ["MANIFEST_PATH", "Artifact", "Manifest", "ManifestError", "Repository", "load_manifest"]

"""Print the README's version table from ami/versions.yaml: `python -m mlhpc.ami.table`."""

from __future__ import annotations

import sys
from pathlib import Path

from mlhpc.ami.manifest import MANIFEST_PATH, ArtifactKind, Manifest, ManifestError, load_manifest, short_sha


def _source(manifest: Manifest, name: str) -> tuple[str, str]:
    artifact = manifest.artifacts[name]
    if artifact.kind is ArtifactKind.DOWNLOAD:
        return f"[download]({artifact.url})", short_sha(artifact.sha256)
    if artifact.kind is ArtifactKind.PACKAGE:
        repo = manifest.repositories[artifact.repository or ""]
        pins = ", ".join(f"`{spec}`" for spec in artifact.package_specs())
        return f"{pins} from {repo.title}", f"repository key: {short_sha(repo.gpgkey_sha256)}"
    return f"inside `{artifact.bundled_in}`", f"via `{artifact.bundled_in}`"


def render(manifest: Manifest) -> str:
    """Return the markdown table: one row per artifact, then what needs the unverified override."""
    rows = [
        "| component | version | source | sha256 |",
        "| --- | --- | --- | --- |",
    ]
    for name, artifact in manifest.artifacts.items():
        source, checksum = _source(manifest, name)
        rows.append(f"| {artifact.title} (`{name}`) | `{artifact.version}` | {source} | {checksum} |")
    missing = manifest.unverified()
    rows.append("")
    if missing:
        rows.append(
            "Without a published checksum (the build refuses them unless "
            "`image.allow_unverified_downloads: true`): " + ", ".join(f"`{m}`" for m in missing) + "."
        )
    else:
        rows.append("Every download and repository key is verified by SHA-256.")
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Print the table for the manifest given as the only argument (default: ami/versions.yaml)."""
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else MANIFEST_PATH
    try:
        sys.stdout.write(render(load_manifest(path)))
    except ManifestError as err:
        sys.stderr.write(f"error: {err}\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

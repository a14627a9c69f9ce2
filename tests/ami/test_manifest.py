"""ami/versions.yaml: well formed, pinned, honest about checksums, and the only place versions are written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mlhpc.ami.manifest import ArtifactKind, ManifestError, load_manifest
from mlhpc.ami.table import BEGIN, END, main, render, update
from tests.ami.conftest import AMI, COMPONENTS, SCRIPTS

REQUIRED = {
    "nvidia_driver", "cuda", "efa_installer", "nccl", "aws_ofi_nccl", "gdrcopy", "openmpi", "nccl_tests",
    "neuron_inf1", "neuron_inf2", "cloudwatch_agent", "dcgm",
}  # fmt: skip
# A version-looking token: two or more dot-separated numbers (1.0, 2.27.7, 580.126.20).
VERSION_TOKEN = re.compile(r"(?<![\w.])\d+\.\d+(?:\.\d+)*(?:-\d+)?(?!\w)")
# Not versions: the instance metadata service address harden.sh probes.
NOT_VERSIONS = {"169.254.169.254"}


def test_manifest_pins_every_piece_the_issue_names() -> None:
    manifest = load_manifest()
    assert set(manifest.artifacts) >= REQUIRED
    for name, artifact in manifest.artifacts.items():
        assert "latest" not in artifact.version.lower(), name
        if artifact.kind is ArtifactKind.DOWNLOAD:
            assert artifact.url and artifact.url.startswith("https://"), name
            assert artifact.version in artifact.url, name


def test_inf1_driver_is_the_last_line_that_supports_inf1_and_inf2_is_newer() -> None:
    manifest = load_manifest()
    inf1 = manifest.artifact("neuron_inf1").packages or {}
    inf2 = manifest.artifact("neuron_inf2").packages or {}
    # Neuron's correction notice: driver 2.24 is the last line supporting Inf1.
    assert inf1["aws-neuronx-dkms"].startswith("2.24.")
    assert tuple(map(int, inf2["aws-neuronx-dkms"].split("."))) > tuple(
        map(int, inf1["aws-neuronx-dkms"].split("."))
    )


def test_a_missing_checksum_is_explicit_and_explained() -> None:
    manifest = load_manifest()
    missing = manifest.unverified()
    # What the search for published checksums could not find, as of this pin.
    assert set(missing) == {
        "artifacts.nvidia_driver", "artifacts.cloudwatch_agent", "repositories.nvidia_cuda", "repositories.neuron",
    }  # fmt: skip
    for name in ("nvidia_driver", "cloudwatch_agent"):
        assert manifest.artifact(name).sha256 is None
        assert len(manifest.artifact(name).checksum_source) > 40


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (('"1.41.0"\n    kind: download', '"latest"\n    kind: download'), "String should match pattern"),
        (("sha256: 3506354c", "sha256: 3506354C"), "efa_installer.sha256"),
        (("repository: neuron\n", "repository: nowhere\n"), "repository 'nowhere' is not defined"),
        (
            ("aws-efa-installer-1.41.0.tar.gz", "aws-efa-installer.tar.gz"),
            "does not contain the pinned version",
        ),
    ],
    ids=["latest", "uppercase-sha", "unknown-repo", "unversioned-url"],
)
def test_bad_manifests_are_refused_with_the_place_and_the_fix(
    tmp_path: Path, edit: tuple[str, str], message: str
) -> None:
    text = (AMI / "versions.yaml").read_text(encoding="utf-8")
    assert edit[0] in text
    bad = tmp_path / "versions.yaml"
    bad.write_text(text.replace(edit[0], edit[1], 1), encoding="utf-8")
    with pytest.raises(ManifestError, match=re.escape(message)):
        load_manifest(bad)


def test_no_version_is_written_outside_the_manifest() -> None:
    manifest = load_manifest()
    pinned = manifest.versions()
    offenders = []
    for path in [*sorted(COMPONENTS.glob("*.yaml")), *sorted(SCRIPTS.glob("*.sh"))]:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip() == "schemaVersion: 1.0":  # the document format's own version
                continue
            for token in set(VERSION_TOKEN.findall(line)) - NOT_VERSIONS:
                offenders.append(f"{path.name}:{number}: {token}")
            offenders += [f"{path.name}:{number}: pinned {v}" for v in pinned if v in line]
    assert offenders == []


def test_the_version_check_would_catch_a_hard_coded_version() -> None:
    assert VERSION_TOKEN.findall("curl https://x/nccl-2.27.7-1.tar.gz") == ["2.27.7-1"]
    assert VERSION_TOKEN.findall("-gencode=arch=compute_90 2>&1 sm_90") == []


def test_table_lists_every_artifact_and_what_is_unverified(capsys: pytest.CaptureFixture[str]) -> None:
    manifest = load_manifest()
    table = render(manifest)
    for name, artifact in manifest.artifacts.items():
        assert f"`{name}`" in table and f"`{artifact.version}`" in table
    assert "`3506354cdfbe…`" in table  # the EFA installer's published checksum, shortened
    assert "`artifacts.cloudwatch_agent`" in table
    assert main([]) == 0
    assert capsys.readouterr().out == table


def test_table_reports_a_broken_manifest_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "versions.yaml"
    bad.write_text("schema_version: 1\nartifacts: [\n", encoding="utf-8")
    assert main([str(bad)]) == 1
    assert capsys.readouterr().err.startswith(f"error: {bad} is not valid YAML")


def test_the_readme_table_is_generated_from_the_manifest() -> None:
    readme = (AMI / "README.md").read_text(encoding="utf-8")
    assert f"{BEGIN}\n{render(load_manifest())}{END}" in readme, (
        "run: python -m mlhpc.ami.table --update ami/README.md"
    )


def test_update_rewrites_only_between_the_markers(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{BEGIN}\nold\n{END}\nafter\n", encoding="utf-8")
    assert main(["--update", str(readme)]) == 0
    text = readme.read_text(encoding="utf-8")
    assert text.startswith(f"intro\n{BEGIN}\n| component |") and text.endswith(f"{END}\nafter\n")
    assert update(readme, render(load_manifest())) is False  # idempotent


def test_update_refuses_a_readme_without_markers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("no table here\n", encoding="utf-8")
    assert main(["--update", str(readme)]) == 1
    assert "has no version table markers" in capsys.readouterr().err

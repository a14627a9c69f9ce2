"""`make submit-bert` (mlhpc_app.cli.bert_deploy): the service manifest InferenceStack applies, through kubectl."""

from __future__ import annotations

import pytest

from mlhpc_app.cli import bert_deploy


def test_deploy_dry_run_renders_a_valid_manifest(capsys: pytest.CaptureFixture[str]) -> None:
    import kubernetes_validate
    import yaml

    code = bert_deploy.main(
        ["--image", "r/mlhpc/bert:0.2.0", "--model-uri", "s3://b/models/bert/", "--dry-run"]
    )
    assert code == 0
    objects = list(yaml.safe_load_all(capsys.readouterr().out))
    assert [o["kind"] for o in objects] == [
        "Namespace", "ServiceAccount", "Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget",
    ]  # fmt: skip
    for obj in objects:
        kubernetes_validate.validate(obj, "1.35.0", strict=True)
    container = objects[2]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "r/mlhpc/bert:0.2.0" and "s3://b/models/bert/" in container["args"]


def test_deploy_without_kubectl_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("shutil.which", lambda _: None)
    assert bert_deploy.main(["--image", "i:1", "--model-uri", "s3://b/m/"]) == 1
    assert "kubectl is not installed" in capsys.readouterr().err

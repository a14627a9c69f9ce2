"""`mlhpc validate` through typer's CliRunner: exit codes and the exact texts a user sees."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from mlhpc_app.cli.main import app

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]


def test_default_config_passes() -> None:
    result = runner.invoke(app, ["validate", str(REPO / "config" / "default.yaml")])
    assert result.exit_code == 0, result.output
    assert "OK" in result.output
    assert "project 'mlhpc' in us-east-1, VPC 10.0.0.0/16 over 2 zones" in result.output


def test_three_mistakes_each_with_a_fix(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "project:\n  name: My_Project\nnetwork:\n  nat_gateway: 1\n  flow_logs:\n    retention_days: 100\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["validate", str(bad)])
    assert result.exit_code == 1
    out = result.output
    assert f"{bad}:2 project.name" in out
    assert (
        "fix:   use 2-20 lowercase letters, digits or '-', starting with a letter, e.g. 'my-project'" in out
    )
    assert f"{bad}:4 network.nat_gateway" in out
    assert "unknown key 'nat_gateway' (did you mean 'nat_gateways'?)" in out
    assert f"{bad}:6 network.flow_logs.retention_days" in out
    assert "fix:   use 90 or 120" in out
    assert out.count("ERROR") == 3
    assert f"{bad}: 3 errors - fix them and run `mlhpc validate {bad}` again." in out
    assert "Traceback" not in out


def test_json_output_for_machines(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("network:\n  nat_gateways: 5\n", encoding="utf-8")
    result = runner.invoke(app, ["validate", str(bad), "--output", "json"])
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["valid"] is False
    assert data["issues"][0] == {
        "level": "error",
        "code": "NET001",
        "path": "network.nat_gateways",
        "line": 2,
        "value": 5,
        "message": "5 NAT gateways for 2 Availability Zones: at most one per zone",
        "fix": "set network.nat_gateways to 2 or fewer (1 is cheapest, 2 is zone-redundant)",
    }


def test_missing_file_is_a_user_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", str(tmp_path / "missing.yaml")])
    assert result.exit_code == 1
    assert "config file not found" in result.output
    assert "Traceback" not in result.output


def test_help_shows_examples() -> None:
    result = runner.invoke(app, ["validate", "--help"])
    assert result.exit_code == 0
    assert "mlhpc validate config/default.yaml" in result.output
    top = runner.invoke(app, ["--help"])
    assert "Examples" in top.output

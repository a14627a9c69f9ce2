"""The user's path: `cdk synth` through the pinned CDK CLI, config chosen by -c config=... ."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlhpc_app.synth import NODE22_BIN

REPO = Path(__file__).resolve().parents[1]
CDK = REPO / "node_modules" / ".bin" / "cdk"

pytestmark = pytest.mark.synth


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{NODE22_BIN}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["CDK_DISABLE_VERSION_CHECK"] = "true"
    env["JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION"] = "1"
    return env


@pytest.mark.skipif(not CDK.exists(), reason="the CDK CLI is installed by `make setup` (npm ci)")
def test_cdk_synth_with_config_context(tmp_path: Path) -> None:
    out = tmp_path / "cdk.out"
    proc = subprocess.run(
        [str(CDK), "synth", "--quiet", "--no-notices", "-c", "config=config/examples/cpu-dev.yaml", "-o", str(out)],
        cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    template = (out / "NetworkStack.template.json").read_text(encoding="utf-8")
    assert "10.42.0.0/20" in template
    listed = subprocess.run(
        [str(CDK), "ls", "--no-notices", "-c", "config=config/examples/cpu-dev.yaml", "-o", str(tmp_path / "ls.out")],
        cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert "NetworkStack" in listed.stdout


def test_app_with_a_bad_config_exits_1_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("network:\n  nat_gateways: 5\n", encoding="utf-8")
    env = cli_env()
    env["MLHPC_CONFIG"] = str(bad)
    proc = subprocess.run(
        [sys.executable, "app.py"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1
    assert "NET001" in proc.stderr
    assert "nothing was synthesized" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_app_without_the_lambda_packages_names_make_setup_without_traceback(tmp_path: Path) -> None:
    env = cli_env()
    env["MLHPC_CONFIG"] = str(
        REPO / "config" / "examples" / "analytics-studio.yaml"
    )  # the TLS bundle's function
    env["MLHPC_LAMBDA_DEPS"] = str(tmp_path / "not-built")
    env["CDK_OUTDIR"] = str(tmp_path / "cdk.out")
    proc = subprocess.run(
        [sys.executable, "app.py"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "self-signed TLS bundle Lambda function needs cryptography==" in proc.stderr
    assert str(tmp_path / "not-built") in proc.stderr and "fix: run `make setup`" in proc.stderr
    assert "Nothing was synthesized." in proc.stderr and "Traceback" not in proc.stderr

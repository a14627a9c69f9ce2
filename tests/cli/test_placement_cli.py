"""`mlhpc validate` reports workloads that cannot fit the cluster; `submit` refuses multi-node on Spot."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from mlhpc_app.cli.main import app
from tests.aws.harness import MOTO_CONFIG, default_stacks, deploy, register_multi_node
from tests.cli.conftest import Cli

runner = CliRunner()


def test_validate_shows_where_each_workload_goes(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["validate", str(Path(__file__).resolve().parents[2] / "config" / "default.yaml")]
    )
    assert result.exit_code == 0, result.output
    assert (
        "pinn: gpu queue, 2 node(s) x 4 GPU, 48 vCPU, 186,777 MiB per node (sized for g5.12xlarge, EFA)"
        in (result.output)
    )


def test_validate_reports_a_workload_that_cannot_fit(tmp_path: Path) -> None:
    bad = tmp_path / "small.yaml"
    bad.write_text("hpc:\n  cpu:\n    instance_types: [c6i.large, c6i.xlarge]\n", encoding="utf-8")
    result = runner.invoke(app, ["validate", str(bad)])
    assert result.exit_code == 1
    out = " ".join(result.output.split())
    assert f"ERROR [HPC012] {bad} hpc.cpu.instance_types" in out
    assert "superradiance needs per node 4 vCPUs and 12,288 MiB" in out
    assert "Instance types that would fit: m6i.xlarge, m7i.xlarge, c6i.2xlarge" in out
    assert "fix: add a type that fits to hpc.cpu.instance_types" in out


def test_validate_notes_gpu_workloads_on_a_cpu_only_cluster(tmp_path: Path) -> None:
    cpu_only = tmp_path / "cpu.yaml"
    cpu_only.write_text("hpc:\n  gpu:\n    enabled: false\n", encoding="utf-8")
    result = runner.invoke(app, ["validate", str(cpu_only)])
    assert result.exit_code == 0, result.output
    assert f"INFO [HPC016] {cpu_only} hpc.gpu" in result.output
    assert "pinn needs GPUs and this cluster has no GPU queue" in " ".join(result.output.split())


def test_submit_refuses_multi_node_on_the_spot_queue() -> None:
    from moto import mock_aws

    with mock_aws(config=MOTO_CONFIG):  # type: ignore[arg-type]
        arn = register_multi_node("hello")
        deploy(default_stacks(workloads={"hello": arn}))
        result = Cli()("submit", "hello", "--nodes", "2", "--queue", "gpu-spot", "--dry-run")
        assert result.exit_code == 1
        err = " ".join(result.stderr.split())
        assert (
            "error: --queue gpu-spot with 2 nodes: Batch does not run multi-node parallel jobs on Spot" in err
        )
        assert "use --queue gpu (On-Demand) for multi-node runs" in err

"""The mpi workload: the user's program under the real Open MPI, locally (`mlhpc run mpi --workers N -- ...`)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.cli.conftest import Cli

pytestmark = pytest.mark.skipif(
    shutil.which("mpirun") is None, reason="Open MPI is not installed (make setup)"
)

SUM = (
    "import sys; from mpi4py import MPI; c = MPI.COMM_WORLD; s = c.allreduce(c.rank + 1); "
    "c.rank == 0 and open(sys.argv[1], 'w').write(f'{c.size} {s}')"
)


def test_two_ranks_sum_under_real_open_mpi(tmp_path: Path) -> None:
    answer = tmp_path / "answer.txt"
    result = Cli()(
        "run", "mpi", "--workers", "2", "--out", str(tmp_path / "out"), "--output", "json",
        "--", "python", "-c", SUM, str(answer),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert answer.read_text(encoding="utf-8") == "2 3"  # two ranks, 1 + 2 (Gauss: N(N+1)/2)
    metrics = json.loads(result.stdout)["metrics"]
    assert (metrics["world_size"], metrics["nodes"], metrics["slots_per_node"]) == (2, 1, 2)
    assert metrics["program"][:2] == ["python", "-c"]


def test_a_failing_rank_is_the_runs_exit_code(tmp_path: Path) -> None:
    fail = "import sys; from mpi4py import MPI; sys.exit(3 if MPI.COMM_WORLD.rank == 1 else 0)"
    result = Cli()("run", "mpi", "--workers", "2", "--out", str(tmp_path), "--", "python", "-c", fail)
    assert result.exit_code == 1
    assert "rank 0 exited 3" in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "metrics.json").exists()


def test_the_demo_program_checks_its_own_sum(tmp_path: Path) -> None:
    result = Cli()("run", "mpi", "--demo", "--workers", "3", "--out", str(tmp_path), "--output", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["metrics"]["world_size"] == 3


def test_without_a_program_or_with_one_where_none_is_taken(tmp_path: Path) -> None:
    none = Cli()("run", "mpi", "--out", str(tmp_path))
    assert none.exit_code == 1 and "no program to run; give it after --" in none.stderr
    hello = Cli()("run", "hello", "--out", str(tmp_path), "--", "python", "x.py")
    assert hello.exit_code == 1 and "hello takes no program" in hello.stderr
    twice = Cli()("run", "mpi", "--set", "program=true", "--out", str(tmp_path), "--", "true")
    assert twice.exit_code == 1 and "program is given twice" in twice.stderr
    quote = Cli()("run", "mpi", "--set", "program=python 'unclosed", "--out", str(tmp_path))
    assert quote.exit_code == 1 and "cannot be split into words" in quote.stderr


def test_mlhpc_run_allreduce_over_mpi_gives_the_table_with_nothing_wrong(tmp_path: Path) -> None:
    # backend=mpi makes the run an MPI one (spec.mpi_when): one process whose mpirun starts both ranks
    result = Cli()(
        "run", "allreduce", "--workers", "2", "--demo", "--set", "backend=mpi", "--out", str(tmp_path),
        "--output", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)["metrics"]
    assert (metrics["backend"], metrics["world_size"], metrics["wrong"]) == ("mpi", 2, 0)
    assert metrics["rows"] and all(
        row["in_place_wrong"] == row["out_of_place_wrong"] == 0 for row in metrics["rows"]
    )
    assert (tmp_path / "allreduce.csv").is_file() and (tmp_path / "allreduce.png").is_file()

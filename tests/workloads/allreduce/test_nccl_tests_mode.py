"""mode=nccl-tests end to end: a stand-in <collective>_perf prints a fixture under the real launcher and mpirun.

The stand-in is a shell script in a directory named by MLHPC_NCCL_TESTS_BIN: it records the flags it
was given and, on MPI rank 0 only (as nccl-tests prints), writes a fixture in the pinned version's
format. Everything else is real: the entry point, workloads.common.mpi_launch (its key, hostfile
and Open MPI's mpirun), the parser, the table, the plot and the --expect verdict.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.workloads.allreduce.nccl_fixtures import ALL_REDUCE_P5, REDUCE_SCATTER_FAILED, output
from workloads.allreduce import nccl_tests
from workloads.allreduce.main import main
from workloads.allreduce.spec import OUTPUTS
from workloads.common import mpi_launch

REPO = Path(__file__).resolve().parents[3]
needs_mpirun = pytest.mark.skipif(
    not (shutil.which("mpirun") and shutil.which("ssh-keygen")),
    reason="needs Open MPI's mpirun and ssh-keygen (the launcher makes a job key)",
)


def _stand_in(bin_dir: Path, name: str, *, prints: str, code: int = 0) -> Path:
    bin_dir.mkdir(parents=True, exist_ok=True)
    (bin_dir / "printed.txt").write_text(prints)
    script = bin_dir / name
    script.write_text(
        "#!/bin/sh\n"
        f'printf "%s\\n" "$@" > "{bin_dir}/argv.$$"\n'
        f'[ "${{OMPI_COMM_WORLD_RANK:-0}}" = 0 ] && cat "{bin_dir}/printed.txt"\n'
        f"exit {code}\n"
    )
    script.chmod(0o755)
    return script


def _run(tmp_path: Path, bin_dir: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("OMPI_", "PMIX_", "AWS_BATCH_", "MLHPC_MPI"))
    }
    env.update(
        PYTHONPATH=str(REPO),
        TMPDIR=str(tmp_path),
        **{nccl_tests.BIN_ENV: str(bin_dir), mpi_launch.INTERFACES_ENV: "lo"},
    )
    return subprocess.run(
        [sys.executable, "-m", "workloads.allreduce", "--mode", "nccl-tests", *argv, "--out", str(tmp_path / "out")],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@needs_mpirun
def test_the_mode_runs_the_binary_under_the_launcher_and_reports_its_table(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    _stand_in(bin_dir, "all_reduce_perf", prints=output(ALL_REDUCE_P5))
    done = _run(
        tmp_path, bin_dir, "--min-bytes", "1048576", "--max-bytes", "17179869184", "--expect", "2xp5.48xlarge"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # one process per GPU slot; this machine has none, so one slot: the stand-in ran once, with the mapped flags
    (recorded,) = list(bin_dir.glob("argv.*"))
    assert recorded.read_text().split() == [
        "-b", "1048576", "-e", "17179869184", "-f", "2", "-g", "1", "-c", "1", "-n", "20", "-w", "5",
        "-o", "sum", "-d", "float", "-z", "0", "-a", "1",
    ]  # fmt: skip
    assert "# Avg bus bandwidth    : " in done.stdout  # nccl-tests' table streamed to the log
    m = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert m["mode"] == "nccl-tests" and m["ranks"] == 16 and m["wrong"] == 0 and len(m["rows"]) == 15
    assert m["nccl_tests"]["version"] == "2.17.6" and m["nccl_tests"]["out_of_bounds"] == 0
    assert m["avg_busbw_gbps"] == m["nccl_tests"]["avg_busbw_gbps"] > 0
    assert m["expect"]["ok"] is True and m["expect"]["fraction"] == pytest.approx(1.0)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(OUTPUTS["nccl-tests"])
    assert "expect 2xp5.48xlarge: busbw 487.09 GB/s at 17179869184 B is 100.0%" in done.stdout


@needs_mpirun
def test_wrong_values_are_written_as_outputs_and_then_fail_the_job(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    # nccl-tests exits non-zero when a check failed; the table it printed is still parsed and written,
    # and the job fails as the binary did (not a crash: no traceback, the wrong sizes named)
    _stand_in(bin_dir, "reduce_scatter_perf", prints=output(REDUCE_SCATTER_FAILED), code=3)
    done = _run(tmp_path, bin_dir, "--collective", "reduce_scatter", "--dtype", "float16", "--op", "min")
    assert done.returncode == 1, done.stdout + done.stderr
    m = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert m["wrong"] == 3 and m["nccl_tests"]["out_of_bounds"] == 1 and m["nccl_tests"]["exit_code"] == 3
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(OUTPUTS["nccl-tests"])
    assert "out of bounds values 1, #wrong 3" in done.stdout
    assert "error: allreduce: 3 wrong element(s) in the reduce_scatter results" in done.stderr
    assert "Traceback" not in done.stderr


@needs_mpirun
def test_a_binary_that_fails_before_its_table_is_an_error_quoting_its_last_lines(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    _stand_in(
        bin_dir,
        "all_gather_perf",
        prints="Failed: NCCL error common.cu:1216 'unhandled system error'",
        code=2,
    )
    done = _run(tmp_path, bin_dir, "--collective", "all_gather")
    assert done.returncode == 2
    assert "all_gather_perf under mpirun exited" in done.stderr and "no result rows" in done.stderr
    assert "  | Failed: NCCL error common.cu:1216 'unhandled system error'" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "out" / "metrics.json").exists()


def test_without_the_binary_the_mode_says_where_it_looked_and_what_would_work(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(nccl_tests.BIN_ENV, str(tmp_path / "empty"))
    assert main(["--mode", "nccl-tests", "--collective", "broadcast", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert (
        f"mode=nccl-tests runs {tmp_path}/empty/broadcast_perf, which is not an executable file here" in err
    )
    for what in ("ami/components/nccl-tests.yaml", "mlhpc submit allreduce --set mode=nccl-tests",
                 "mode=collective and backend=gloo (or mpi)"):  # fmt: skip
        assert what in err
    monkeypatch.delenv(nccl_tests.BIN_ENV)
    assert main(["--mode", "nccl-tests", "--out", str(tmp_path / "out")]) == 2
    assert "the default /opt/nccl-tests/bin (MLHPC_NCCL_TESTS_BIN unset)" in capsys.readouterr().err

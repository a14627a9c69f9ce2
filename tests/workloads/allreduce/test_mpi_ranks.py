"""backend=mpi for real: two ranks started by Open MPI's mpirun, mpi4py on numpy buffers.

Each run is ``mpirun -np 2 --oversubscribe`` on loopback, the way tests/workloads/common/test_mpi_launch.py
has the launcher run it (interfaces limited to ``lo``, ``--allow-run-as-root`` as root, the launcher's
OMPI_/PMIX_ variables of any outer run removed).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from workloads.allreduce.spec import OUTPUTS

REPO = Path(__file__).resolve().parents[3]
try:
    import mpi4py  # noqa: F401  (only looked up: importing mpi4py.MPI would start MPI in pytest)

    HAVE_MPI4PY = True
except ImportError:  # pragma: no cover - mpi4py is a dev dependency
    HAVE_MPI4PY = False
real_mpi = pytest.mark.skipif(
    not (shutil.which("mpirun") and HAVE_MPI4PY), reason="needs Open MPI's mpirun and mpi4py (make setup)"
)
SMALL = [
    "--min-bytes",
    "1024",
    "--max-bytes",
    "65536",
    "--step-factor",
    "8",
    "--iters",
    "3",
    "--warmup-iters",
    "1",
]
# The other collectives, each with a dtype and op of its own, run by main() four times in the same two
# ranks (MPI starts once per process): float16 goes through the user-defined reduction on Open MPI 4.
OTHERS = [
    ("reduce_scatter", "float16", "min"),
    ("all_gather", "float16", "sum"),
    ("broadcast", "float32", "sum"),
    ("all_reduce", "float16", "max"),
]
DRIVER = """
import json, sys
from workloads.allreduce.main import main
small, out, cases = sys.argv[1].split(), sys.argv[2], json.loads(sys.argv[3])
codes = [main(["--backend", "mpi", "--device", "cpu", "--collective", c, "--dtype", d, "--op", o, *small,
               "--out", f"{out}/{c}-{d}-{o}"]) for c, d, o in cases]
sys.exit(max(codes))
"""


def _mpirun(
    tmp_path: Path, *program: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    run_env = {k: v for k, v in os.environ.items() if not k.startswith(("OMPI_", "PMIX_", "AWS_BATCH_"))}
    run_env.update(PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", TMPDIR=str(tmp_path), **(env or {}))
    argv = ["mpirun", "-np", "2", "--oversubscribe", "--mca", "btl_tcp_if_include", "lo",
            "--mca", "oob_tcp_if_include", "lo"]  # fmt: skip
    if os.geteuid() == 0:
        argv.append("--allow-run-as-root")
    return subprocess.run(
        [*argv, *program], env=run_env, capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path
    )


def _table_rows(stdout: str) -> list[list[str]]:
    return [line.split() for line in stdout.splitlines() if line[:1] == " " and line.split()[0].isdigit()]


@real_mpi
def test_two_mpi_ranks_all_reduce_gives_the_table_with_no_wrong_value(tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = _mpirun(
        tmp_path, sys.executable, "-m", "workloads.allreduce", "--backend", "mpi", "--device", "cpu", *SMALL,
        "--out", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    # the table is printed once (rank 0), both layouts checked: #wrong 0 in each
    assert done.stdout.count("# Using devices") == 1 and done.stdout.count("#  Rank ") == 2
    rows = _table_rows(done.stdout)
    assert [int(r[0]) for r in rows] == [1024, 8192, 65536]
    assert all(r[2:4] == ["float", "sum"] and r[8] == "0" and r[12] == "0" for r in rows)
    assert "# Out of bounds values : 0 OK" in done.stdout
    m = json.loads((out / "metrics.json").read_text())
    assert m["backend"] == "mpi" and m["ranks"] == m["world_size"] == 2 and m["wrong"] == 0
    assert all(r["out_of_place_wrong"] == 0 and r["in_place_wrong"] == 0 for r in m["rows"])
    for r in m["rows"]:  # two ranks: busbw = algbw * 2 (n-1) / n = algbw
        assert r["out_of_place_busbw_gbps"] == pytest.approx(r["out_of_place_algbw_gbps"])
    # only MPI rank 0 wrote: exactly the declared outputs, one metrics.json
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUTS["collective"])


@real_mpi
def test_every_collective_dtype_and_op_over_mpi_is_correct_in_both_layouts(tmp_path: Path) -> None:
    done = _mpirun(
        tmp_path, sys.executable, "-c", DRIVER, " ".join(SMALL), str(tmp_path / "out"), json.dumps(OTHERS)
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for collective, dtype, op in OTHERS:
        m = json.loads((tmp_path / "out" / f"{collective}-{dtype}-{op}" / "metrics.json").read_text())
        assert (m["collective"], m["dtype"], m["op"], m["ranks"]) == (collective, dtype, op, 2)
        assert len(m["rows"]) == 3 and m["wrong"] == 0, (collective, dtype, op)
        assert all(r["out_of_place_wrong"] == 0 and r["in_place_wrong"] == 0 for r in m["rows"])
    assert "user-defined operation in numpy float16" in done.stdout  # Open MPI 4 has no float16 type


@real_mpi
def test_mpi_ranks_started_by_another_launcher_are_refused(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMPI_", "PMIX_"))}
    env.update(PYTHONPATH=str(REPO), RANK="1", WORLD_SIZE="2", MASTER_PORT="29999", TMPDIR=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "-m", "workloads.allreduce", "--backend", "mpi", "--device", "cpu", *SMALL,
         "--out", str(tmp_path / "out")],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert "started as rank 1 of 2 (torchrun variables) but MPI sees a world of 1" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "out" / "metrics.json").exists()

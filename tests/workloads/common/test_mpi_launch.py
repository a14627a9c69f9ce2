"""The MPI launcher of Batch multi-node jobs, run for real: two node processes on loopback, a real sshd
per job on the worker, the real Open MPI ``mpirun`` and mpi4py ranks.

Each node is a process with the variables Batch gives it (``AWS_BATCH_JOB_NODE_INDEX`` and the
rest); the shared file system is a temp directory; the nodes' private directories live under a
per-test TMPDIR, so the test can see that no key material is left behind.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workloads.common import mpi_launch

REPO = Path(__file__).resolve().parents[3]
NEEDS = [
    shutil.which("mpirun"),
    shutil.which("ssh"),
    shutil.which("sshd") or Path("/usr/sbin/sshd").is_file(),
]
try:
    import mpi4py  # noqa: F401
except ImportError:  # pragma: no cover - mpi4py is a dev dependency
    NEEDS.append(None)
real_mpi = pytest.mark.skipif(
    not all(NEEDS), reason="needs Open MPI, OpenSSH server and mpi4py (make setup installs them as root)"
)

ALLREDUCE = (
    "from mpi4py import MPI; c = MPI.COMM_WORLD; "
    "print(f'rank {c.rank} of {c.size} sum {c.allreduce(c.rank + 1)}', flush=True)"
)
KILLED = (
    "import os, time\nfrom mpi4py import MPI\nc = MPI.COMM_WORLD\n"
    "if c.rank == 1:\n    time.sleep(1)\n    os._exit(7)\nc.allreduce(1)\ntime.sleep(120)\n"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(tmp_path: Path, index: int, job: str = "job-1") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_BATCH_", "OMPI_", "PMIX_"))}
    env.update(
        PYTHONPATH=str(REPO),
        TMPDIR=str(tmp_path / f"node-{index}-tmp"),
        AWS_BATCH_JOB_ID=f"{job}#{index}",
        AWS_BATCH_JOB_NODE_INDEX=str(index),
        AWS_BATCH_JOB_NUM_NODES="2",
        AWS_BATCH_JOB_MAIN_NODE_INDEX="0",
        OMP_NUM_THREADS="1",
        **{
            mpi_launch.DIR_ENV: str(tmp_path / "efs"),
            mpi_launch.ADDRESS_ENV: "127.0.0.1",
            mpi_launch.SSH_PORT_ENV: str(_free_port()),
            mpi_launch.INTERFACES_ENV: "lo",
            mpi_launch.WAIT_ENV: "60",
        },
    )
    if index != 0:
        env["AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS"] = "127.0.0.1"
    Path(env["TMPDIR"]).mkdir(parents=True, exist_ok=True)
    return env


def _run_job(tmp_path: Path, program: str) -> tuple[subprocess.CompletedProcess[str], int, float]:
    argv = [sys.executable, "-m", "workloads.common.mpi_launch", "--slots-per-node", "1", "--"]
    rank = [sys.executable, "-c", program]
    worker = subprocess.Popen(
        [*argv, *rank], env=_env(tmp_path, 1), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    start = time.monotonic()
    try:
        main = subprocess.run(
            [*argv, *rank], env=_env(tmp_path, 0), capture_output=True, text=True, timeout=90, check=False
        )
        worker_code = worker.wait(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
    return main, worker_code, time.monotonic() - start


def _left_behind(tmp_path: Path) -> list[str]:
    return sorted(str(p.relative_to(tmp_path)) for p in tmp_path.glob("node-*-tmp/*"))


@real_mpi
def test_two_nodes_allreduce_over_mpirun_and_ssh_then_no_key_is_left(tmp_path: Path) -> None:
    main, worker_code, _ = _run_job(tmp_path, ALLREDUCE)
    assert main.returncode == 0, main.stdout + main.stderr
    assert worker_code == 0
    lines = sorted(line for line in main.stdout.splitlines() if line.startswith("rank"))
    assert lines == ["rank 0 of 2 sum 3", "rank 1 of 2 sum 3"]  # 1 + 2 from the two ranks
    assert _left_behind(tmp_path) == []  # both private directories (private key, host key) are gone
    shared = tmp_path / "efs" / "job-1"
    assert (shared.stat().st_mode & 0o777) == 0o700
    assert sorted(p.name for p in shared.iterdir()) == ["done.json", "node-1.json"]  # no key file stays
    record = json.loads((shared / "node-1.json").read_text())
    assert (
        record["host_key"].startswith("ssh-ed25519 ")
        and "PRIVATE" not in (shared / "node-1.json").read_text()
    )
    assert json.loads((shared / "done.json").read_text()) == {"exit_code": 0}


@real_mpi
def test_a_rank_that_dies_ends_the_job_within_seconds_with_its_code(tmp_path: Path) -> None:
    main, worker_code, seconds = _run_job(tmp_path, KILLED)
    assert main.returncode == 7, main.stdout + main.stderr
    assert seconds < 30  # the surviving rank sleeps 120 s: mpirun stopped it
    assert worker_code == 0
    assert _left_behind(tmp_path) == []


def test_the_hostfile_has_one_slot_per_gpu_and_pins_every_host_key(tmp_path: Path) -> None:
    node = mpi_launch.Node("j", index=0, count=3, main=0, main_address="10.0.0.1", address="10.0.0.1")
    assert mpi_launch.hostfile(node, 8) == "localhost slots=8\nnode1 slots=8\nnode2 slots=8\n"
    workers = {1: {"address": "10.0.0.2", "port": 2222}, 2: {"address": "10.0.0.3", "port": 2222}}
    config = mpi_launch.ssh_config(workers, tmp_path, "u")
    assert config.count("StrictHostKeyChecking yes") == 2 and "HostName 10.0.0.3" in config
    argv = mpi_launch.mpirun_argv(
        node, 8, ["python", "t.py"], tmp_path, {"NCCL_DEBUG": "INFO", "SECRET": "x"}
    )
    assert argv[argv.index("-np") + 1] == "24" and argv[argv.index("-N") + 1] == "8"
    assert argv[argv.index("NCCL_DEBUG") - 1 : argv.index("NCCL_DEBUG") + 1] == ["-x", "NCCL_DEBUG"]
    assert "SECRET" not in argv and argv[-2:] == ["python", "t.py"]


def test_the_jobs_sshd_takes_only_its_key_from_the_main_node(tmp_path: Path) -> None:
    node = mpi_launch.Node("j", index=1, count=2, main=0, main_address="10.0.0.1", address="10.0.0.2")
    config = mpi_launch.sshd_config(node, tmp_path, 2222, "mlhpc")
    for line in ("ListenAddress 10.0.0.2", "Port 2222", "PasswordAuthentication no", "AllowUsers mlhpc",
                 "PermitRootLogin no", "AllowTcpForwarding no", "UsePAM no"):  # fmt: skip
        assert line in config.splitlines()


@pytest.mark.parametrize("job", ["../../etc", "a/b", ""])
def test_a_job_id_cannot_leave_the_shared_directory(job: str) -> None:
    with pytest.raises(mpi_launch.LaunchError, match="not a job id"):
        mpi_launch.node_from_env({"AWS_BATCH_JOB_ID": job})


def test_a_child_node_without_the_main_address_is_refused() -> None:
    env = {"AWS_BATCH_JOB_ID": "j#1", "AWS_BATCH_JOB_NUM_NODES": "2", "AWS_BATCH_JOB_NODE_INDEX": "1"}
    with pytest.raises(mpi_launch.LaunchError, match="MAIN_NODE_PRIVATE_IPV4_ADDRESS"):
        mpi_launch.node_from_env(env)

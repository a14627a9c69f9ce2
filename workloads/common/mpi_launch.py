"""Run an MPI program across the nodes of an AWS Batch multi-node job: hostfile, per-job SSH, ``mpirun``.

Batch starts one container per node and tells each its place (``AWS_BATCH_JOB_NODE_INDEX``,
``AWS_BATCH_JOB_NUM_NODES``, ``AWS_BATCH_JOB_MAIN_NODE_INDEX``, and the main node's address on
the others). ``mpirun`` on the main node then starts the ranks everywhere over SSH, as the
seeds' ChainerMN cluster did (``mpiexec -n 32 -N 8`` over a hostfile)::

    python -m workloads.common.mpi_launch --slots-per-node 8 -- python /efs/train.py -g

How the nodes find each other: through the job's directory on the shared file system
(``$MLHPC_MPI_DIR/<job id>``, EFS on the cluster), not through the Batch API. DescribeJobs
would give every node's address too, but it has no resource-level permission: a job role
allowed it may read every job of the account, environment included. The shared directory
needs no IAM at all and only ever holds public keys:

1. the main node makes the job's SSH key pair in a private directory of its own (mode 0700,
   never on the shared file system, in an image, a template or a log) and publishes the
   public half as ``client.pub``;
2. each worker makes an SSH host key the same way, starts ``sshd`` for this job only — its
   own config, listening on its address and one port, public-key authentication only, for
   this user only, and the job key accepted only from the main node's address — and publishes
   ``node-<index>.json`` (address, port, host public key);
3. the main node writes the hostfile (one slot per GPU, or per core on a CPU job), an SSH
   config naming each worker and a known-hosts file of their host keys (so ``mpirun``
   connects with ``StrictHostKeyChecking yes``), and runs ``mpirun -np N -N S --hostfile …``,
   exporting the EFA/NCCL environment;
4. when ``mpirun`` ends, the main node writes ``done.json`` with its exit code and deletes its
   private key; the workers see it, stop ``sshd``, delete their keys and exit.

``mpirun`` ends the whole job when any rank exits non-zero, so one failing rank ends the job
within seconds with that rank's code, never a hang until the job's timeout. SIGTERM (a Spot
reclaim, a cancel) is forwarded to ``mpirun``, which passes it to every rank.

Limits: the shared directory is shared with the project's other jobs running as the same user;
they could read the public keys (harmless) and write into the directory, which a job cannot
prevent on a file system they all mount. The job's SSH server only accepts the job's key, from
the main node's address.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

DIR_ENV = "MLHPC_MPI_DIR"  # the shared directory (EFS on the cluster)
DEFAULT_DIR = "/efs/.mlhpc-mpi"
ADDRESS_ENV = "MLHPC_MPI_ADDRESS"  # this node's address (default: its hostname's)
SSH_PORT_ENV = "MLHPC_MPI_SSH_PORT"  # the workers' sshd port
DEFAULT_SSH_PORT = 2222
INTERFACES_ENV = "MLHPC_MPI_IF_INCLUDE"  # the interfaces MPI's TCP traffic may use (e.g. lo in tests)
WAIT_ENV = "MLHPC_MPI_WAIT_S"  # how long nodes wait for each other
DEFAULT_WAIT_S = 600.0
# What the ranks on every node get from the main node's environment (mpirun -x).
EXPORTED = re.compile(
    r"^(PATH|LD_LIBRARY_PATH|PYTHONPATH|HOME|LANG|OMP_NUM_THREADS|AWS_REGION|AWS_DEFAULT_REGION|"
    r"AWS_ENDPOINT_URL|MLHPC_.*|NCCL_.*|FI_.*|CUDA_.*)$"
)
JOB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")


class LaunchError(RuntimeError):
    """The nodes could not be brought together (what was missing, and where)."""


@dataclass(frozen=True)
class Node:
    """This container's place in the multi-node job."""

    job_id: str
    index: int
    count: int
    main: int
    main_address: str
    address: str

    @property
    def is_main(self) -> bool:
        """True on the node that runs mpirun."""
        return self.index == self.main

    @property
    def workers(self) -> list[int]:
        """The indexes of the other nodes."""
        return [i for i in range(self.count) if i != self.main]


def _int(env: Mapping[str, str], key: str, default: int | None = None) -> int:
    value = env.get(key)
    if value is None and default is not None:
        return default
    if value is None or not value.isdigit():
        raise LaunchError(f"{key}={value!r}: an AWS Batch multi-node job sets it to a number")
    return int(value)


def node_from_env(env: Mapping[str, str]) -> Node:
    """Return this node's place from the Batch variables (a single node when there are none)."""
    job = env.get("AWS_BATCH_JOB_ID", "local").partition("#")[0]
    if not JOB_ID.match(job):
        raise LaunchError(f"AWS_BATCH_JOB_ID={job!r} is not a job id (letters, digits, '-' and '_')")
    count = _int(env, "AWS_BATCH_JOB_NUM_NODES", 1)
    index = _int(env, "AWS_BATCH_JOB_NODE_INDEX", 0)
    main = _int(env, "AWS_BATCH_JOB_MAIN_NODE_INDEX", 0)
    if not (0 <= index < count and 0 <= main < count):
        raise LaunchError(f"node {index} (main {main}) is outside a job of {count} node(s)")
    address = env.get(ADDRESS_ENV) or _own_address()
    main_address = address if index == main else env.get("AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS", "")
    if not main_address:
        raise LaunchError("AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS is not set on a child node")
    return Node(job, index, count, main, main_address, address)


def _own_address() -> str:
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"


def _tool(name: str, *extra: str) -> str:
    for candidate in (shutil.which(name), *extra):
        if candidate and Path(candidate).is_file():
            return candidate
    raise LaunchError(f"{name} is not installed; the image needs Open MPI and OpenSSH (client and server)")


def _write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    tmp.chmod(mode)
    tmp.replace(path)


def _wait(
    what: str, ready: Callable[[], bool], timeout_s: float, alive: Callable[[], bool] = lambda: True
) -> None:
    deadline = time.monotonic() + timeout_s
    while not ready():
        if not alive():
            raise LaunchError(f"gave up waiting for {what}: the process it needs has ended")
        if time.monotonic() > deadline:
            raise LaunchError(f"waited {timeout_s:g} s for {what}")
        time.sleep(0.1)


def _keygen(path: Path, comment: str) -> str:
    subprocess.run(
        [_tool("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return path.with_suffix(".pub").read_text(encoding="utf-8").strip()


def job_dir(node: Node, env: Mapping[str, str]) -> Path:
    """Return the job's directory on the shared file system (made by the main node, mode 0700)."""
    return Path(env.get(DIR_ENV, DEFAULT_DIR)) / node.job_id


def hostfile(node: Node, slots: int) -> str:
    """Return the hostfile: the main node as localhost, each worker by its SSH alias, ``slots`` each."""
    return "".join([f"localhost slots={slots}\n", *(f"node{i} slots={slots}\n" for i in node.workers)])


def ssh_config(workers: Mapping[int, Mapping[str, object]], private: Path, user: str) -> str:
    """Return the SSH client config mpirun's ssh uses: one Host per worker, its host key pinned."""
    blocks = []
    for index, info in sorted(workers.items()):
        blocks.append(
            f"Host node{index}\n  HostName {info['address']}\n  Port {info['port']}\n  User {user}\n"
            f"  IdentityFile {private / 'id'}\n  IdentitiesOnly yes\n  BatchMode yes\n"
            f"  StrictHostKeyChecking yes\n  UserKnownHostsFile {private / 'known_hosts'}\n"
            "  LogLevel ERROR\n"
        )
    return "".join(blocks)


def mpirun_argv(
    node: Node, slots: int, program: Sequence[str], private: Path, env: Mapping[str, str]
) -> list[str]:
    """Return the mpirun command of the main node."""
    argv = [
        _tool("mpirun"), "--hostfile", str(private / "hostfile"), "-np", str(node.count * slots), "-N", str(slots),
        "--mca", "plm_rsh_agent", _tool("ssh"), "--mca", "plm_rsh_args", f"-F {private / 'ssh_config'}",
    ]  # fmt: skip
    interfaces = env.get(INTERFACES_ENV)
    if interfaces:
        argv += ["--mca", "oob_tcp_if_include", interfaces, "--mca", "btl_tcp_if_include", interfaces]
    if os.geteuid() == 0:
        argv.append("--allow-run-as-root")  # containers often run as root; Open MPI refuses it otherwise
    for key in sorted(env):
        if EXPORTED.match(key):
            argv += ["-x", key]
    return [*argv, *program]


def single_node_argv(slots: int, program: Sequence[str], env: Mapping[str, str]) -> list[str]:
    """Return the mpirun command of a one-node job: every rank on this machine, no hostfile, no SSH."""
    argv = [_tool("mpirun"), "-np", str(slots)]
    if slots > (os.cpu_count() or 1):
        argv.append("--oversubscribe")  # more ranks than cores was asked for (a local run's --workers)
    interfaces = env.get(INTERFACES_ENV)
    if interfaces:
        argv += ["--mca", "oob_tcp_if_include", interfaces, "--mca", "btl_tcp_if_include", interfaces]
    if os.geteuid() == 0:
        argv.append("--allow-run-as-root")
    for key in sorted(env):
        if EXPORTED.match(key):
            argv += ["-x", key]
    return [*argv, *program]


def run_single(slots: int, program: Sequence[str], env: Mapping[str, str]) -> int:
    """Run every rank on this node under mpirun; return its exit code."""
    proc = subprocess.Popen(single_node_argv(slots, program, env), env=dict(env))
    _forward(proc)
    return proc.wait()


def run(node: Node, slots: int, program: Sequence[str], env: Mapping[str, str]) -> int:
    """Run this node's part of the job: mpirun alone, mpirun over the workers, or a worker's sshd."""
    if node.count == 1:
        return run_single(slots, program, env)
    return run_main(node, slots, program, env) if node.is_main else run_worker(node, env)


def _forward(proc: subprocess.Popen[bytes]) -> None:
    def handler(signum: int, _frame: FrameType | None) -> None:
        if proc.poll() is None:
            proc.send_signal(signum)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def run_main(node: Node, slots: int, program: Sequence[str], env: Mapping[str, str]) -> int:
    """Publish the job key, gather the workers, run mpirun; return its exit code."""
    shared = job_dir(node, env)
    shared.mkdir(mode=0o700, parents=True, exist_ok=True)
    private = Path(tempfile.mkdtemp(prefix="mlhpc-mpi-"))  # 0700, this node's own disk
    wait_s = float(env.get(WAIT_ENV, DEFAULT_WAIT_S))
    code = 1
    try:
        public = _keygen(private / "id", f"mlhpc-mpi-{node.job_id}")
        _write_atomic(shared / "client.pub", public + "\n")
        found: dict[int, dict[str, object]] = {}

        def registered() -> bool:
            for index in node.workers:
                path = shared / f"node-{index}.json"
                if index not in found and path.is_file():
                    found[index] = json.loads(path.read_text(encoding="utf-8"))
            return len(found) == len(node.workers)

        _wait(
            f"node(s) {[i for i in node.workers if i not in found]} to register in {shared}",
            registered,
            wait_s,
        )
        known = "".join(f"[{w['address']}]:{w['port']} {w['host_key']}\n" for w in found.values())
        _write_atomic(private / "known_hosts", known, 0o600)
        _write_atomic(private / "ssh_config", ssh_config(found, private, getpass.getuser()), 0o600)
        _write_atomic(private / "hostfile", hostfile(node, slots), 0o600)
        proc = subprocess.Popen(mpirun_argv(node, slots, program, private, env), env=dict(env))
        _forward(proc)
        code = proc.wait()
        return code
    finally:
        _write_atomic(shared / "done.json", json.dumps({"exit_code": code}) + "\n")
        (shared / "client.pub").unlink(missing_ok=True)
        shutil.rmtree(private, ignore_errors=True)


def sshd_config(node: Node, private: Path, port: int, user: str) -> str:
    """Return the config of this job's sshd: one address and port, this job's key from the main node only."""
    return (
        f"Port {port}\nListenAddress {node.address}\nHostKey {private / 'host_key'}\n"
        f"AuthorizedKeysFile {private / 'authorized_keys'}\nPidFile {private / 'sshd.pid'}\n"
        f"AllowUsers {user}\nPubkeyAuthentication yes\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPermitEmptyPasswords no\nUsePAM no\n"
        f"PermitRootLogin {'prohibit-password' if user == 'root' else 'no'}\n"
        # the key files live in a private 0700 directory outside HOME, which StrictModes would refuse
        "StrictModes no\nAllowTcpForwarding no\nAllowAgentForwarding no\nX11Forwarding no\n"
        "PermitTunnel no\nPermitUserEnvironment no\nClientAliveInterval 30\nLogLevel ERROR\n"
    )


def run_worker(node: Node, env: Mapping[str, str]) -> int:
    """Serve SSH for this job until the main node says it is done; return 0 (the main node's code is the job's)."""
    shared = job_dir(node, env)
    private = Path(tempfile.mkdtemp(prefix="mlhpc-mpi-"))
    wait_s = float(env.get(WAIT_ENV, DEFAULT_WAIT_S))
    port = int(env.get(SSH_PORT_ENV, DEFAULT_SSH_PORT))
    sshd: subprocess.Popen[bytes] | None = None
    stop = {"now": False}

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, on_signal)
    try:
        host_key = _keygen(private / "host_key", f"mlhpc-mpi-{node.job_id}-node{node.index}")
        client = shared / "client.pub"
        _wait(f"the main node's key at {client}", client.is_file, wait_s)
        key = client.read_text(encoding="utf-8").strip()
        options = (
            f'from="{node.main_address}",no-port-forwarding,no-agent-forwarding,no-X11-forwarding,no-pty'
        )
        _write_atomic(private / "authorized_keys", f"{options} {key}\n", 0o600)
        user = getpass.getuser()
        _write_atomic(private / "sshd_config", sshd_config(node, private, port, user), 0o600)
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
        sshd = subprocess.Popen(
            [_tool("sshd", "/usr/sbin/sshd"), "-D", "-e", "-f", str(private / "sshd_config")]
        )
        # sshd writes its pid file once it listens (a probe connection would log a closed handshake)
        pid_file = private / "sshd.pid"
        _wait(f"sshd on {node.address}:{port}", pid_file.is_file, 30, lambda: sshd.poll() is None)
        record = {"address": node.address, "port": port, "host_key": host_key}
        _write_atomic(shared / f"node-{node.index}.json", json.dumps(record) + "\n")
        done = shared / "done.json"
        while not done.is_file() and not stop["now"] and sshd.poll() is None:
            time.sleep(0.2)
        return 0 if done.is_file() or stop["now"] else 1
    finally:
        if sshd is not None and sshd.poll() is None:
            sshd.terminate()
            try:
                sshd.wait(timeout=10)
            except subprocess.TimeoutExpired:
                sshd.kill()
        shutil.rmtree(private, ignore_errors=True)


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """Run the MPI program on this node's part of the job (mpirun on the main node, sshd elsewhere)."""
    parser = argparse.ArgumentParser(prog="python -m workloads.common.mpi_launch", description=__doc__)
    parser.add_argument("--slots-per-node", type=int, required=True, help="ranks per node (GPUs, or cores)")
    parser.add_argument("program", nargs=argparse.REMAINDER, help="-- then the program every rank runs")
    args = parser.parse_args(argv)
    program = args.program[1:] if args.program[:1] == ["--"] else args.program
    if not program or args.slots_per_node < 1:
        parser.error("give --slots-per-node N (N >= 1) and, after --, the program to run")
    env = dict(os.environ if env is None else env)
    try:
        return run(node_from_env(env), args.slots_per_node, program, env)
    except (LaunchError, subprocess.CalledProcessError, OSError) as err:
        print(f"error: mpi launch: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())

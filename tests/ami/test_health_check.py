"""The node health check's dry run on fake sysfs/dev trees and command shims: no GPU, EFA or FSx needed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.ami.conftest import SCRIPTS, run, shim

HEALTH = str(SCRIPTS / "health-check.sh")


class Node:
    """A fake node: a root tree (sysfs, /etc/fstab, /proc/mounts) and a bin dir of command shims."""

    def __init__(self, base: Path) -> None:
        self.root = base / "root"
        self.bin = base / "bin"
        (self.root / "sys/bus/pci/devices").mkdir(parents=True)
        (self.root / "sys/class/infiniband").mkdir(parents=True)
        (self.root / "etc").mkdir()
        (self.root / "proc").mkdir()
        (self.root / "etc/fstab").write_text("UUID=abc / xfs defaults 0 0\n", encoding="utf-8")
        (self.root / "proc/mounts").write_text("/dev/nvme0n1p1 / xfs rw 0 0\n", encoding="utf-8")
        self.bin.mkdir()
        self.devices = 0

    def pci(self, vendor: str, device: str, pci_class: str) -> Path:
        path = self.root / f"sys/bus/pci/devices/0000:00:{self.devices:02x}.0"
        self.devices += 1
        path.mkdir()
        for name, value in (("vendor", vendor), ("device", device), ("class", pci_class)):
            (path / name).write_text(value + "\n", encoding="utf-8")
        return path

    def gpus(self, count: int, *, smi_rows: list[str] | None = None) -> None:
        for _ in range(count):
            self.pci("0x10de", "0x2330", "0x030200")
        rows = (
            smi_rows if smi_rows is not None else [f"{i}, 00000000:00:{i:02X}.0, 0, No" for i in range(count)]
        )
        shim(self.bin, "nvidia-smi", "cat <<'EOF'\n" + "\n".join(rows) + "\nEOF")

    def efa(self, count: int, *, bound: int | None = None, provider_ok: bool = True) -> None:
        drivers = self.root / "sys/bus/pci/drivers/efa"
        drivers.mkdir(parents=True, exist_ok=True)
        for index in range(count):
            device = self.pci("0x1d0f", "0xefa1", "0x020000")
            if index < (count if bound is None else bound):
                (device / "driver").symlink_to(drivers)
                ib = self.root / f"sys/class/infiniband/rdmap{index}s0"
                ib.mkdir()
                (ib / "device").symlink_to(device)
        shim(self.bin, "fi_info", "exit 0" if provider_ok else "echo 'fi_getinfo: -61' >&2; exit 1")

    def fsx(self, *, mounted: bool) -> None:
        with (self.root / "etc/fstab").open("a", encoding="utf-8") as fstab:
            fstab.write("fs-0abc.fsx.us-east-2.amazonaws.com@tcp:/abcdef /fsx lustre defaults,_netdev 0 0\n")
        (self.root / "fsx").mkdir()
        if mounted:
            with (self.root / "proc/mounts").open("a", encoding="utf-8") as mounts:
                mounts.write("10.0.0.5@tcp:/abcdef /fsx lustre rw,flock 0 0\n")

    def check(self, *args: str) -> tuple[int, str]:
        result = run([HEALTH, "--dry-run", "--root", str(self.root), *args], bin_dir=self.bin)
        return result.returncode, result.stdout + result.stderr


@pytest.fixture
def node(tmp_path: Path) -> Node:
    return Node(tmp_path)


def test_a_cpu_node_without_fsx_is_healthy(node: Node) -> None:
    code, out = node.check("--region", "us-east-2")
    assert code == 0, out
    assert "MLHPC-HEALTH: ok: GPU: none on this instance" in out
    assert "MLHPC-HEALTH: ok: EFA: none attached" in out
    assert "MLHPC-HEALTH: HEALTHY" in out


def test_a_p5_like_node_with_gpus_efa_and_fsx_is_healthy(node: Node) -> None:
    node.gpus(8)
    node.efa(4)
    node.fsx(mounted=True)
    code, out = node.check("--expect-efa", "4", "--expect-gpus", "8")
    assert code == 0, out
    assert (
        "ok: GPU: 8 healthy" in out
        and "ok: EFA: 4 device(s) healthy" in out
        and "ok: FSx: /fsx mounted" in out
    )


def test_an_nvswitch_is_not_counted_as_a_gpu(node: Node) -> None:
    node.gpus(2)
    node.pci("0x10de", "0x22a3", "0x068000")  # NVSwitch: a bridge
    code, out = node.check()
    assert code == 0, out


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        (
            lambda n: n.gpus(8, smi_rows=[f"{i}, 00000000:00:{i:02X}.0, 0, No" for i in range(7)]),
            (),
            "GPU: nvidia-smi sees 7 of the 8 GPU(s) on the PCI bus",
        ),
        (
            lambda n: n.gpus(2, smi_rows=["0, 00000000:00:00.0, 0, No", "1, 00000000:00:01.0, 2, No"]),
            (),
            "GPU 1 (00000000:00:01.0): 2 uncorrectable ECC error(s)",
        ),
        (
            lambda n: n.gpus(1, smi_rows=["0, 00000000:00:00.0, 0, Yes"]),
            (),
            "GPU 0 (00000000:00:00.0): retired pages are pending",
        ),
        (lambda n: n.gpus(4), ("--expect-gpus", "8"), "GPU: 4 NVIDIA GPU(s) on the PCI bus, expected 8"),
        (lambda n: n.efa(2), ("--expect-efa", "4"), "EFA: 2 EFA device(s) attached, expected at least 4"),
        (
            lambda n: n.efa(4, bound=3),
            (),
            "EFA: 4 EFA device(s) on the PCI bus but 3 bound to the efa driver",
        ),
        (
            lambda n: n.efa(1, provider_ok=False),
            (),
            "EFA: 1 device(s) bound but libfabric's EFA provider does not start (fi_info -p efa)",
        ),
        (
            lambda n: n.fsx(mounted=False),
            (),
            "FSx: fs-0abc.fsx.us-east-2.amazonaws.com@tcp:/abcdef is in /etc/fstab but not mounted at /fsx",
        ),
    ],
    ids=[
        "gpu-missing",
        "ecc",
        "retired-pages",
        "fewer-gpus",
        "efa-missing",
        "efa-unbound",
        "efa-provider",
        "fsx",
    ],
)
def test_each_fault_marks_the_node_unhealthy_with_a_clear_message(
    node: Node, setup: object, args: tuple[str, ...], message: str
) -> None:
    setup(node)  # type: ignore[operator]
    code, out = node.check(*args)
    assert code == 1, out
    assert f"MLHPC-HEALTH: UNHEALTHY: {message}" in out
    # A dry run says what it would do and does it not.
    assert "dry run: would mask ecs.service so this node takes no jobs" in out
    assert not (node.root / "var/lib/mlhpc/health.json").exists()


def test_gpus_without_nvidia_smi_are_a_broken_image(node: Node) -> None:
    node.pci("0x10de", "0x2330", "0x030200")
    code, out = node.check()
    assert code == 1 and "nvidia-smi is not installed (is this the mlhpc GPU image?)" in out


def test_skip_fsx_ignores_an_unmounted_lustre(node: Node) -> None:
    node.fsx(mounted=False)
    assert node.check("--skip-fsx")[0] == 0


def test_without_dry_run_it_writes_the_status_file(node: Node, tmp_path: Path) -> None:
    node.fsx(mounted=False)
    status = tmp_path / "health.json"
    shim(node.bin, "systemctl", f'echo "$*" >> {tmp_path}/systemctl.log')
    shim(node.bin, "logger", "exit 0")
    result = run(
        [HEALTH, "--root", str(node.root)], bin_dir=node.bin, env={"MLHPC_HEALTH_STATUS": str(status)}
    )
    assert result.returncode == 1
    report = json.loads(status.read_text(encoding="utf-8"))
    assert report["status"] == "unhealthy"
    assert report["failures"][0].startswith(
        "FSx: fs-0abc.fsx.us-east-2.amazonaws.com@tcp:/abcdef is in /etc/fstab"
    )
    assert (tmp_path / "systemctl.log").read_text().split() == ["mask", "--now", "ecs.service"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--expect-efa", "four"), "--expect-efa needs a whole number, got 'four'"),
        (("--bogus",), "unknown option '--bogus'"),
    ],
)
def test_bad_options_exit_2_with_the_usage(node: Node, args: tuple[str, ...], message: str) -> None:
    code, out = node.check(*args)
    assert code == 2
    assert message in out

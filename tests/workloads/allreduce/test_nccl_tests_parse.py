"""The nccl-tests parser on output in the pinned version's format, and the flags the sweep's options map to."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tests.workloads.allreduce.nccl_fixtures import (
    ALL_REDUCE_P5,
    BROADCAST_NO_CHECK,
    DATA,
    REDUCE_SCATTER_FAILED,
    output,
)
from workloads.allreduce import bandwidth, nccl_tests, table
from workloads.allreduce.expectations import REFERENCES, compare
from workloads.allreduce.spec import SPEC
from workloads.common.dist import Rendezvous

REPO = Path(__file__).resolve().parents[3]
GETOPT_2_17_6 = "t:g:b:e:i:f:n:m:w:N:p:c:o:d:r:z:y:T:hG:C:a:R:x:D:V:J:S:"


def _printed_error(value: float) -> float:
    """Half a unit of the last digit nccl-tests printed (2 decimals below 1000, fewer above)."""
    return 0.5 * (0.01 if value < 1000 else 0.1 if value < 10000 else 1.0)


def test_every_fixture_is_the_pinned_version_and_says_where_its_format_is_from():
    pinned = yaml.safe_load((REPO / "ami/versions.yaml").read_text())["artifacts"]["nccl_tests"]["version"]
    for path in sorted(DATA.glob("*_perf_*.txt")):
        note = path.read_text().split("\n# ")[0]
        assert "NVIDIA/nccl-tests tag v" + pinned in note and "src/util.cu" in note, path.name
        assert nccl_tests.parse(output(path.name)).version == pinned, path.name


def test_all_reduce_on_two_nodes_gives_the_rows_and_the_verdict_lines():
    report = nccl_tests.parse(output(ALL_REDUCE_P5))
    assert report.program == "all_reduce_perf" and report.ranks == 16 and len(report.hosts) == 2
    assert report.out_of_bounds == 0 and report.wrong == 0
    assert [r.size for r in report.rows] == [2**k for k in range(20, 35)]
    for row in report.rows:
        assert row.count == row.size // 4 and row.dtype == "float32" and row.op == "sum" and row.root == -1
        assert set(row.results) == {"out_of_place", "in_place"}
        for m in row.results.values():
            # the columns are where the parser reads them: algbw = size / time, busbw = algbw * 2(n-1)/n
            # (the factor the torch and MPI sweeps use), within the rounding of the printed digits
            algbw = bandwidth.algbw_gbps(row.size, m.time_s)
            assert algbw == pytest.approx(m.algbw, rel=2e-3, abs=_printed_error(m.algbw))
            assert m.busbw == pytest.approx(
                m.algbw * bandwidth.bus_factor("all_reduce", 16), abs=2 * _printed_error(m.busbw)
            )
    # the figures are the published p5 sweep's; nccl-tests' own average is the mean over both layouts
    assert [(r.results["out_of_place"].busbw, r.results["in_place"].busbw) for r in report.rows] == [
        (b_out, b_in) for _, b_out, b_in in REFERENCES["2xp5.48xlarge"].rows
    ]
    assert report.avg_busbw == pytest.approx(table.average_busbw(report.rows), rel=1e-5)
    verdict = compare(
        REFERENCES["2xp5.48xlarge"], [r.size for r in report.rows],
        [r.results["out_of_place"].busbw for r in report.rows], ranks=report.ranks, fraction=0.8,
    )  # fmt: skip
    assert verdict is not None and verdict.ok and verdict.fraction == pytest.approx(1.0)


def test_a_failed_check_amid_log_lines_counts_elements_and_the_per_rank_count_is_converted():
    text = output(REDUCE_SCATTER_FAILED)
    assert "NCCL INFO" in text and "WARNING" in text  # noise the parser must pass over
    report = nccl_tests.parse(text)
    assert report.ranks == 8 and report.hosts == ("gpu-st-p5-1",)
    assert report.out_of_bounds == 1  # nccl-tests counts failed checks ...
    assert report.wrong == 3  # ... the rows count wrong elements
    bad = [(r.size, p) for r in report.rows for p, m in r.results.items() if m.wrong]
    assert bad == [(65536, "in_place")]
    for row in report.rows:  # printed count is per rank (size / 2 bytes / 8 ranks); rows hold the full buffer
        assert row.dtype == "float16" and row.op == "min" and row.count == row.size // 2
    printed = re.findall(r"^\s+(\d+)\s+(\d+)\s+half", text, flags=re.M)
    assert [(int(s), int(c)) for s, c in printed] == [(r.size, r.count // 8) for r in report.rows]


def test_broadcast_without_check_has_no_wrong_counts():
    report = nccl_tests.parse(output(BROADCAST_NO_CHECK))
    assert report.ranks == 2 and len(report.rows) == 7
    for row in report.rows:
        assert row.op == "none" and row.root == 0
        assert all(m.wrong is None for m in row.results.values())
        assert all(m.busbw == m.algbw for m in row.results.values())  # bus factor 1
    assert "N/A" in table.line(report.rows[0])  # the table prints them as nccl-tests does


def test_only_the_asked_layouts_are_kept():
    rows = nccl_tests.keep_places(nccl_tests.parse(output(ALL_REDUCE_P5)).rows, ("in_place",))
    assert all(set(r.results) == {"in_place"} for r in rows)


def test_a_truncated_run_names_what_is_missing():
    text = output(ALL_REDUCE_P5)
    with pytest.raises(nccl_tests.NcclTestsError, match="no '# Out of bounds values' line, no '# Avg bus"):
        nccl_tests.parse(text.split("# Out of bounds")[0])
    with pytest.raises(nccl_tests.NcclTestsError, match="no result rows"):
        nccl_tests.parse(text.split("#       size")[0])


def test_a_binary_built_without_mpi_is_recognised_by_its_repeated_ranks():
    text = re.sub(r"#  Rank +\d+ ", "#  Rank  0 ", output(ALL_REDUCE_P5))
    with pytest.raises(nccl_tests.NcclTestsError, match="built without MPI=1"):
        nccl_tests.parse(text)


def test_the_options_map_to_the_binarys_flags():
    args = SPEC.validate_args(
        {"min_bytes": 1024, "max_bytes": 2**30, "step_factor": 4, "dtype": "float16", "op": "max",
         "iters": 50, "warmup_iters": 0, "blocking": True, "check": False}
    )  # fmt: skip
    flags = nccl_tests.arguments(args)
    pairs = dict(zip(flags[::2], flags[1::2], strict=True))
    assert pairs == {"-b": "1024", "-e": str(2**30), "-f": "4", "-g": "1", "-c": "0", "-n": "50", "-w": "0",
                     "-o": "max", "-d": "half", "-z": "1", "-a": "1"}  # fmt: skip
    # each flag takes a value in the pinned version's option string (getopt_long in src/common.cu, v2.17.6)
    for flag in pairs:
        assert flag[1] + ":" in GETOPT_2_17_6, flag


def test_processes_per_node_follow_the_launcher_else_the_gpus():
    assert nccl_tests.slots_per_node(Rendezvous(), gpus=8) == 8
    assert nccl_tests.slots_per_node(Rendezvous(), gpus=0) == 1
    batch_node = Rendezvous(rank=8, world_size=16, local_rank=0, local_world_size=8, source="batch")
    assert nccl_tests.slots_per_node(batch_node, gpus=8) == 8
    assert nccl_tests.slots_per_node(Rendezvous(world_size=2, rank=1, source="batch"), gpus=4) == 4


def test_the_binary_directory_is_the_one_the_ami_script_installs_to():
    script = (REPO / "ami/scripts/nccl-tests.sh").read_text()
    assert f"BIN=${{{nccl_tests.BIN_ENV}:-{nccl_tests.BIN_DIR}}}" in script

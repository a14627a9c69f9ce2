"""The published-figure table and the --expect verdict."""

import pytest

from workloads.allreduce.expectations import REFERENCES, USUAL_CAUSES, compare


def test_references_are_sorted_sweeps_with_a_source():
    for ref in REFERENCES.values():
        sizes = [row[0] for row in ref.rows]
        assert sizes == sorted(sizes) and len(set(sizes)) == len(sizes)
        assert "awsome-distributed-training" in ref.source and ref.ranks == 16


def test_busbw_at_rows_and_log_linear_between_them():
    p5 = REFERENCES["2xp5.48xlarge"]
    assert p5.busbw_at(2147483648) == 443.72
    # half-way in log2(size) between 1 GiB (436.95) and 2 GiB (443.72): the mean, 440.335
    assert p5.busbw_at(int(2**30.5)) == pytest.approx(440.335, abs=1e-3)
    assert p5.busbw_at(1024) is None and p5.busbw_at(2**35) is None


def test_verdict_ok_slow_and_causes():
    ref = REFERENCES["2xp4de.24xlarge"]
    good = compare(ref, [2**30, 2**31], [70.0, 72.0], ranks=16, fraction=0.8)
    assert good is not None and good.ok and good.size == 2**31
    assert good.fraction == pytest.approx(72.0 / 78.33)
    slow = compare(ref, [2**30, 2**31], [5.0, 6.0], ranks=16, fraction=0.8)
    assert slow is not None and not slow.ok
    text = slow.message()
    assert "SLOW" in text and "7.7% of the published 78.33 GB/s" in text
    for needle in ("OUTBOUND", "uverbs", "aws-ofi-nccl", "FI_EFA_USE_DEVICE_RDMA"):
        assert needle in text
    assert len(USUAL_CAUSES) >= 3


def test_notes_for_other_rank_counts_and_small_messages_and_no_overlap():
    ref = REFERENCES["2xp5.48xlarge"]
    verdict = compare(ref, [2**20, 2**22], [1.0, 2.0], ranks=2, fraction=0.5)
    assert verdict is not None
    assert any("16 ranks on 2 nodes, this run 2" in n for n in verdict.notes)
    assert any("below 64 MiB" in n for n in verdict.notes)
    assert compare(ref, [1024, 4096], [0.1, 0.2], ranks=16, fraction=0.8) is None

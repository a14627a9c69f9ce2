"""busbw arithmetic against hand-computed factors and published nccl-tests rows."""

import math

import pytest

from workloads.allreduce import bandwidth


@pytest.mark.parametrize(
    ("collective", "ranks", "factor"),
    [
        ("all_reduce", 1, 0.0),  # one rank sends nothing
        ("all_reduce", 2, 1.0),  # 2 * 1 / 2
        ("all_reduce", 16, 1.875),  # 2 * 15 / 16
        ("reduce_scatter", 8, 0.875),  # 7 / 8
        ("all_gather", 4, 0.75),  # 3 / 4
        ("broadcast", 16, 1.0),
    ],
)
def test_bus_factor_hand_values(collective, ranks, factor):
    assert bandwidth.bus_factor(collective, ranks) == factor


def test_busbw_of_one_gib_in_one_second_on_16_ranks():
    # algbw = 2^30 / 1 s = 1.073741824 GB/s; busbw = 1.073741824 * 1.875 = 2.01326592 GB/s
    assert bandwidth.algbw_gbps(2**30, 1.0) == pytest.approx(1.073741824, rel=1e-15)
    assert bandwidth.busbw_gbps("all_reduce", 2**30, 1.0, 16) == pytest.approx(2.01326592, rel=1e-15)


# Published all_reduce_perf rows: (ranks, size B, time us, algbw, busbw). The first two from
# aws-samples/awsome-distributed-training micro-benchmarks/nccl-tests/README.md (2 x p5.48xlarge and
# 2 x p4de.24xlarge, out-of-place, 2 GiB); the third from NVIDIA/nccl issue #527 (1 x p4d, 8 GPUs, 1 GiB).
# nccl-tests prints bandwidths to 0.01 GB/s and time to ~5 significant digits (relative rounding <= 1e-5),
# so our formula applied to the printed time must land within 0.006 GB/s of the printed bandwidths.
PUBLISHED = [
    (16, 2147483648, 9074.5, 236.65, 443.72),
    (16, 2147483648, 51406, 41.78, 78.33),
    (8, 1073741824, 8142.6, 131.87, 230.77),
]


@pytest.mark.parametrize(("ranks", "size", "time_us", "algbw", "busbw"), PUBLISHED)
def test_formula_reproduces_published_nccl_tests_rows(ranks, size, time_us, algbw, busbw):
    seconds = time_us * 1e-6
    assert bandwidth.algbw_gbps(size, seconds) == pytest.approx(algbw, abs=0.006)
    assert bandwidth.busbw_gbps("all_reduce", size, seconds, ranks) == pytest.approx(busbw, abs=0.006 * 2)


def test_unknown_collective_and_bad_rank_count_are_refused():
    with pytest.raises(ValueError, match="unknown collective 'alltoall'"):
        bandwidth.bus_factor("alltoall", 2)
    with pytest.raises(ValueError, match="ranks=0"):
        bandwidth.bus_factor("all_reduce", 0)


def test_memcpy_bandwidth_is_a_positive_rate():
    gbps = bandwidth.memcpy_gbps(size_bytes=4 * 1024 * 1024, repeats=3)
    assert math.isfinite(gbps) and gbps > 0

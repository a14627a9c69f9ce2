"""The correctness check against hand-computed patterns and deliberately wrong reductions."""

import numpy as np
import pytest
import torch

from workloads.allreduce import check

# pattern(r, i) = ((7 i + 13 r + 1) mod 17) - 8 for m = 8, computed by hand for i = 0..3:
RANK0 = [-7, 0, 7, -3]  # 1, 8, 15, 22 mod 17 = 5
RANK1 = [6, -4, 3, -7]  # 14, 21 mod 17 = 4, 28 mod 17 = 11, 35 mod 17 = 1


def test_pattern_hand_values():
    assert check.pattern(0, 0, 4, m=8).tolist() == RANK0
    assert check.pattern(1, 0, 4, m=8).tolist() == RANK1


@pytest.mark.parametrize(
    ("op", "expected"),
    [("sum", [-1, -4, 10, -10]), ("max", [6, 0, 7, -3]), ("min", [-7, -4, 3, -7])],
)
def test_reduction_over_two_ranks_hand_values(op, expected):
    assert check.reduced(op, 2, 0, 4, m=8, device="cpu").tolist() == expected


def test_amplitude_keeps_sums_exact_and_tolerance_zero():
    assert check.amplitude(torch.float16, 2) == 8 and check.tolerance(torch.float16, 2) == 0.0
    assert check.amplitude(torch.bfloat16, 64) == 4  # 256 // 64
    # 256 float16 ranks: |sum| <= 8 * 256 = 2048, still exact; the sum cast to float16 loses nothing.
    exact = check.reduced("sum", 256, 0, 4096, m=check.amplitude(torch.float16, 256), device="cpu")
    assert torch.equal(exact.to(torch.float16).to(torch.float64), exact)
    # 512 bfloat16 ranks cannot stay exact: tolerance = n * m * eps = 512 * 1 * 2^-7 = 4
    assert check.amplitude(torch.bfloat16, 512) == 1
    assert check.tolerance(torch.bfloat16, 512) == 4.0


def _numpy_pattern(rank, n, m=8):
    i = np.arange(n)
    return ((7 * i + 13 * rank + 1) % (2 * m + 1) - m).astype(np.float64)


def test_correct_result_has_no_wrong_elements():
    expected = check.reduced("sum", 2, 0, 1000, m=8, device="cpu")
    assert check.count_wrong(expected.to(torch.float32), expected, 0.0) == 0


def test_max_instead_of_sum_is_caught_element_by_element():
    a, b = _numpy_pattern(0, 1000), _numpy_pattern(1, 1000)
    wrong_result = torch.from_numpy(np.maximum(a, b))
    expected = check.reduced("sum", 2, 0, 1000, m=8, device="cpu")
    # independent count: where max(a, b) differs from a + b, i.e. where min(a, b) != 0
    assert check.count_wrong(wrong_result, expected, 0.0) == int(np.count_nonzero(np.minimum(a, b)))


def test_a_missing_rank_contribution_is_caught():
    expected = check.reduced("sum", 2, 0, 1000, m=8, device="cpu")
    only_rank0 = torch.from_numpy(_numpy_pattern(0, 1000))
    assert check.count_wrong(only_rank0, expected, 0.0) == int(np.count_nonzero(_numpy_pattern(1, 1000)))


def test_single_corrupted_and_non_finite_elements_are_counted():
    expected = check.reduced("min", 2, 0, 100, m=8, device="cpu")
    result = expected.clone().to(torch.float16)
    result[17] += 1
    result[42] = float("nan")
    result[43] = float("inf")
    assert check.count_wrong(result, expected, 0.0) == 3
    # within tolerance: an error of 0.5 passes a tolerance of 1, fails a tolerance of 0.25
    close = expected.clone()
    close[5] += 0.5
    assert check.count_wrong(close, expected, 1.0) == 0
    assert check.count_wrong(close, expected, 0.25) == 1


def test_chunked_comparison_counts_across_chunk_boundaries(monkeypatch):
    monkeypatch.setattr(check, "CHUNK", 7)
    expected = lambda s, e: check.reduced("sum", 3, s, e, m=8, device="cpu")  # noqa: E731
    result = expected(0, 50).clone()
    result[[0, 6, 7, 49]] = 100.0
    assert check.wrong_against(result, expected, 0.0) == 4

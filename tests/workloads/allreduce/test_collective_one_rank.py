"""The harness on a one-rank gloo group in this process: layouts, sizes, and a broken collective caught."""

import pytest
import torch
import torch.distributed as tdist

from workloads.allreduce.collective import Collective, element_count, sizes


@pytest.fixture(scope="module")
def group():
    tdist.init_process_group("gloo", store=tdist.HashStore(), rank=0, world_size=1)
    yield
    tdist.destroy_process_group()


def test_sizes_follow_min_max_and_factor():
    assert sizes(8, 64, 2) == [8, 16, 32, 64]
    assert sizes(1000, 100000, 10) == [1000, 10000, 100000]
    assert sizes(8, 8, 2) == [8]


def test_element_counts_round_to_whole_parts_per_rank():
    assert element_count("all_reduce", 1024, 4, 16) == 256
    assert element_count("reduce_scatter", 1000, 4, 16) == 240  # 250 // 16 = 15 parts of 16
    assert element_count("all_gather", 8, 4, 16) == 16  # at least one element per rank
    assert element_count("all_reduce", 1, 2, 2) == 1


@pytest.mark.parametrize("kind", ["all_reduce", "reduce_scatter", "all_gather", "broadcast"])
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_every_collective_and_layout_is_correct(group, kind, dtype):
    coll = Collective(kind, dtype=dtype, op="sum", device=torch.device("cpu"))
    row = coll.measure(
        4096, places=("out_of_place", "in_place"), warmup=1, iters=2, blocking=False, verify=True
    )
    assert row.size == 4096 and row.count == 4096 // torch.empty(0, dtype=coll.dtype).element_size()
    for m in row.results.values():
        assert m.wrong == 0 and m.time_s > 0
        assert m.algbw == pytest.approx(4096 / m.time_s / 1e9)
        assert m.busbw == (0.0 if kind in ("all_reduce", "reduce_scatter", "all_gather") else m.algbw)


def test_a_collective_that_leaves_the_receive_buffer_untouched_is_all_wrong(group, monkeypatch):
    coll = Collective("all_reduce", dtype="float32", op="sum", device=torch.device("cpu"))

    class Done:
        def wait(self):
            return True

    monkeypatch.setattr(coll, "launch", lambda send, recv, async_op: Done())
    assert coll.wrong(1000, "out_of_place") == 1000  # receive buffer still holds the NaN sentinel


def test_a_reduction_that_doubles_the_values_is_caught(group, monkeypatch):
    coll = Collective("all_reduce", dtype="float32", op="max", device=torch.device("cpu"))
    real = coll.launch

    def doubled(send, recv, async_op):
        work = real(send, recv, async_op=async_op)
        work.wait()
        recv.mul_(2)
        return work

    monkeypatch.setattr(coll, "launch", doubled)
    expected_wrong = int(torch.count_nonzero(((7 * torch.arange(1000) + 1) % 17) - 8))  # 2x == x only at 0
    assert coll.wrong(1000, "in_place") == expected_wrong


def test_blocking_and_non_blocking_time_the_same_collective(group):
    coll = Collective("all_reduce", dtype="float32", op="sum", device=torch.device("cpu"))
    send, recv = coll.buffers(256, "in_place")
    assert coll.run(send, recv, 3, blocking=True) > 0
    assert coll.run(send, recv, 3, blocking=False) > 0

"""Bad input: clear messages naming the value and what would work, never a traceback."""

import pytest

from mlhpc.spec import Efa, SpecError
from workloads.allreduce.main import main
from workloads.allreduce.spec import SPEC


def test_defaults_and_demo_are_valid_and_distributed_efa():
    # it measures the fabric: EFA is required, on all GPUs of the node
    assert SPEC.multi_node and SPEC.resources.efa is Efa.REQUIRED and SPEC.resources.gpus_per_node == "all"
    demo = SPEC.validate_args(SPEC.demo_args)
    assert demo.max_bytes <= 4 * 1024 * 1024


@pytest.mark.parametrize(
    ("values", "needle"),
    [
        ({"min_bytes": 1024, "max_bytes": 8}, "min_bytes=1024 is larger than max_bytes=8"),
        ({"expect": "2xp3.16xlarge"}, "use one of: 2xp4de.24xlarge, 2xp5.48xlarge"),
        ({"variants": ["plain", "plain"]}, "names a variant twice"),
        ({"dtype": "float64"}, "one of: float32, float16, bfloat16"),
        ({"step_factor": 1}, ">= 2"),
    ],
)
def test_bad_arguments_name_the_value_and_the_fix(values, needle):
    with pytest.raises(SpecError) as err:
        SPEC.validate_args(values)
    assert needle in str(err.value)


def test_cuda_on_a_machine_without_one_exits_2_with_a_message(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert main(["--device", "cuda", "--out", str(tmp_path)]) == 2
    assert (
        "--device cuda was given but torch sees no CUDA device; use --device cpu or auto"
        in capsys.readouterr().err
    )


def test_nccl_on_cpu_and_missing_mpi_are_explained(tmp_path, capsys):
    assert main(["--device", "cpu", "--backend", "nccl", "--out", str(tmp_path)]) == 2
    assert "--backend nccl needs GPUs" in capsys.readouterr().err
    import torch.distributed as tdist

    if not tdist.is_mpi_available():
        assert main(["--device", "cpu", "--backend", "mpi", "--out", str(tmp_path)]) == 2
        assert "no MPI backend" in capsys.readouterr().err

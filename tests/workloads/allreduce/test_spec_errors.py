"""Bad input: clear messages naming the value and what would work, never a traceback."""

import pytest

from mlhpc.spec import Efa, SpecError
from workloads.allreduce.main import main
from workloads.allreduce.spec import OUTPUTS, SPEC


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


def test_nccl_on_cpu_is_explained(tmp_path, capsys):
    assert main(["--device", "cpu", "--backend", "nccl", "--out", str(tmp_path)]) == 2
    assert "--backend nccl needs GPUs (--device cuda); on CPUs use gloo or mpi" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("values", "needle"),
    [
        (
            {"backend": "mpi", "dtype": "bfloat16"},
            "dtype=bfloat16 has no MPI datatype (MPI defines none for bfloat16, and mpi4py's numpy buffers "
            "have no bfloat16 either); with backend=mpi use dtype float32 or float16, or keep "
            "dtype=bfloat16 with backend gloo (CPUs) or nccl (GPUs)",
        ),
        ({"backend": "mpi", "device": "cuda"}, "backend=mpi times host memory"),
        ({"backend": "mpi", "mode": "scaling"}, "use mode=collective with backend=mpi"),
        ({"backend": "mpi", "mode": "both"}, "use mode=collective with backend=mpi"),
        ({"backend": "gloo", "mode": "nccl-tests"}, "mode=nccl-tests runs NVIDIA's nccl-tests binaries"),
    ],
)
def test_what_the_mpi_backend_and_nccl_tests_mode_cannot_do_is_refused_up_front(values, needle):
    with pytest.raises(SpecError) as err:
        SPEC.validate_args(values)
    assert needle in str(err.value)


def test_the_bfloat16_refusal_is_an_exit_2_with_the_message_and_no_traceback(tmp_path, capsys):
    # refused while decoding the options: MPI is never started
    assert main(["--backend", "mpi", "--dtype", "bfloat16", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "has no MPI datatype" in err and "Traceback" not in err
    assert not (tmp_path / "metrics.json").exists()


def test_the_declared_outputs_are_the_default_modes():
    default = SPEC.args.model_fields["mode"].default
    assert SPEC.outputs == OUTPUTS[default] == ("metrics.json", "allreduce.csv", "allreduce.png")
    assert set(OUTPUTS) == set(SPEC.args.model_fields["mode"].annotation.__args__)

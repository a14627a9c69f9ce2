"""Bad input gets a clear message and exit code 2, never a traceback; the spec is consistent."""

import pytest
import torch

from mlhpc.spec import Efa
from workloads.pinn.main import main
from workloads.pinn.spec import SPEC, Args


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--problem", "heat9d"], "unknown problem 'heat9d'; known problems: burgers, oscillator"),
        (["--points", "-5"], "pinn: points='-5' is not valid: Input should be greater than or equal to 1"),
        (["--width", "0"], "pinn: width='0' is not valid: Input should be greater than or equal to 1"),
        (["--lr", "0"], "give lr a value > 0 and <= 1"),
        (["--precision", "half"], "give precision one of: float32, float64, mixed"),
        (
            ["--rar-points", "500", "--rar-candidates", "100"],
            "rar_points=500 is more than rar_candidates=100",
        ),
        (
            ["--adam-steps", "0", "--lbfgs-steps", "0"],
            "adam_steps and lbfgs_steps are both 0: nothing to train",
        ),
    ],
)
def test_bad_options_are_refused_with_a_message(tmp_path, capsys, argv, expected):
    assert main([*argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert expected in err
    assert "Traceback" not in err


def test_cuda_without_a_gpu_is_a_clear_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["--problem", "oscillator", "--device", "cuda", "--out", str(tmp_path)]) == 2
    assert "--device cuda was given but torch sees no CUDA device" in capsys.readouterr().err


def test_spec_describes_a_multi_node_gpu_job_and_a_small_demo():
    assert SPEC.distributed and SPEC.multi_node
    # all GPUs of whatever node the queue has; EFA where the nodes have it (its all-reduce is small)
    assert SPEC.resources.gpus_per_node == "all" and SPEC.resources.efa is Efa.PREFERRED
    assert {b.value for b in SPEC.backends} == {"local", "batch", "sagemaker"}
    demo = Args.model_validate(SPEC.demo_args)
    assert demo.problem == "oscillator"
    assert SPEC.command(demo)[:3] == ["python", "-m", "workloads.pinn"]


def test_unset_points_take_the_gpu_default_on_a_gpu_and_an_explicit_value_always_wins():
    from workloads.pinn.main import resolve
    from workloads.pinn.problems.burgers import Burgers

    d = Burgers.defaults
    assert d.gpu_points is not None and d.gpu_points > d.points
    assert resolve(Args(problem="burgers"))[1].points == d.points
    assert resolve(Args(problem="burgers"), device_type="cuda")[1].points == d.gpu_points
    assert resolve(Args(problem="burgers", points=1234), device_type="cuda")[1].points == 1234
    # a problem without a GPU default keeps its CPU one
    assert (
        resolve(Args(problem="poisson2d"), device_type="cuda")[1].points
        == resolve(Args(problem="poisson2d"))[1].points
    )

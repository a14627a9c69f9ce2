"""Bad inputs get clear errors (exit 2, no traceback); the SageMaker contract; outputs of a run."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import scipy.sparse as sp

from workloads.common.entry import WorkloadError
from workloads.superradiance.initial import load_state
from workloads.superradiance.main import main, run_sweep
from workloads.superradiance.model import make_couplings
from workloads.superradiance.spec import SPEC, Args


def run_cli(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_n_below_one_is_refused(tmp_path, capsys):
    code, text = run_cli(["--N", "0", "--out", str(tmp_path)], capsys)
    assert code == 2
    assert "N=0" in text.replace("'", "") or "N='0'" in text
    assert "greater than or equal to 1" in text
    with pytest.raises(WorkloadError, match="must be an integer >= 1"):
        make_couplings(0)


def test_couplings_of_the_wrong_length(tmp_path, capsys):
    argv = ["--N", "3", "--couplings", "list", "--coupling-values", "1,2", "--out", str(tmp_path)]
    code, text = run_cli(argv, capsys)
    assert code == 2
    assert "coupling values have length 2 but N=3" in text
    assert "Traceback" not in text


@pytest.mark.parametrize("bad", ["nan", "inf"])
def test_non_finite_values_are_refused(tmp_path, capsys, bad):
    code, text = run_cli(
        ["--N", "2", "--couplings", "list", "--coupling-values", f"1,{bad}", "--out", str(tmp_path)], capsys
    )
    assert code == 2
    assert "finite number" in text
    code, text = run_cli(["--gamma", bad, "--out", str(tmp_path)], capsys)
    assert code == 2
    assert "finite number" in text
    with pytest.raises(WorkloadError, match="must be finite numbers"):
        make_couplings(2, kind="list", values=[1.0, float(bad)])


def test_pickle_file_is_refused_with_the_conversion(tmp_path, capsys):
    path = tmp_path / "rho0.pkl"
    path.write_bytes(pickle.dumps(sp.csr_matrix(np.eye(4) / 4)))
    code, text = run_cli(["--N", "1", "--initial-state", str(path), "--out", str(tmp_path / "o")], capsys)
    assert code == 2
    assert "pickle files are refused" in text and "save_npz" in text
    disguised = tmp_path / "rho0.npy"  # a pickle under a NumPy name is caught by its magic bytes
    disguised.write_bytes(pickle.dumps(np.eye(4) / 4))
    with pytest.raises(WorkloadError, match="pickle"):
        load_state(str(disguised), n=1)


def test_wrong_shaped_initial_state(tmp_path, capsys):
    path = tmp_path / "rho0.npy"
    np.save(path, np.eye(8) / 8)  # N=1 needs 4x4
    code, text = run_cli(["--N", "1", "--initial-state", str(path), "--out", str(tmp_path / "o")], capsys)
    assert code == 2
    assert "has shape (8, 8) but N=1 needs a (4, 4) density matrix" in text


def test_sparse_and_dense_initial_states_load(tmp_path):
    rho = np.zeros((8, 8))
    rho[4, 4] = 1.0  # electron down, both nuclei up: the default state of N=2
    sp.save_npz(tmp_path / "s.npz", sp.csr_matrix(rho))
    np.savez(tmp_path / "d.npz", rho=rho)
    for name in ("s.npz", "d.npz"):
        loaded = load_state(str(tmp_path / name), n=2)
        dense = loaded.toarray() if sp.issparse(loaded) else loaded
        assert np.array_equal(dense, rho)
    with pytest.raises(WorkloadError, match="trace 2"):
        load_state(_saved(tmp_path, 2 * rho), n=2)


def _saved(tmp_path, rho):
    path = tmp_path / "x.npy"
    np.save(path, rho)
    return str(path)


def test_run_writes_result_metrics_and_plot(tmp_path, capsys):
    code, _ = run_cli(
        ["--N", "3", "--couplings", "random", "--seed", "2", "--n-times", "101", "--out", str(tmp_path)],
        capsys,
    )
    assert code == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["method"] == "general" and metrics["N"] == 3
    assert metrics["peak_intensity_over_I_ind"] > 1
    data = np.load(tmp_path / "result.npz")
    assert {"t", "polarization", "intensity", "I_ind"} <= set(data.files)
    assert data["I_ind"].shape == ()
    assert (tmp_path / "emission.png").stat().st_size > 10_000


def test_sweep_function_level_without_ray():
    args = Args(N=2, sweep="N=1,2", n_times=21, workers=1)
    runs = run_sweep(args, use_ray=False)
    assert [r["N"] for r in runs] == [1, 2]
    assert all(r["method"] == "symmetric" for r in runs)


def test_sagemaker_contract(tmp_path, monkeypatch, capsys):
    root = tmp_path / "ml"
    (root / "input" / "config").mkdir(parents=True)
    (root / "input" / "data" / "training").mkdir(parents=True)
    monkeypatch.setenv("MLHPC_SAGEMAKER_ROOT", str(root))
    rho = np.zeros((8, 8))
    rho[4, 4] = 1.0
    sp.save_npz(root / "input" / "data" / "training" / "rho0.npz", sp.csr_matrix(rho))
    hyper = {"N": "2", "method": '"general"', "n_times": "31"}
    (root / "input" / "config" / "hyperparameters.json").write_text(json.dumps(hyper))
    assert main(["train"]) == 0
    metrics = json.loads((root / "model" / "metrics.json").read_text())
    assert metrics["method"] == "general" and metrics["N"] == 2
    # a failure: wrong-shaped state in the channel -> reason in /opt/ml/output/failure, exit 255
    np.save(root / "input" / "data" / "training" / "rho0.npy", np.eye(4) / 4)
    (root / "input" / "data" / "training" / "rho0.npz").unlink()
    assert main(["train"]) == 255
    assert "needs a (8, 8) density matrix" in (root / "output" / "failure").read_text()
    capsys.readouterr()


def test_spec_defaults_and_demo():
    assert SPEC.default_backend.value == "sagemaker"
    assert SPEC.args.model_validate(SPEC.demo_args).N == 8
    assert SPEC.parse_sets(["N=1000", "method=symmetric"]).N == 1000


@pytest.mark.parametrize(("method", "couplings"), [("general", "random"), ("symmetric", "uniform")])
def test_a_stop_request_writes_no_partial_results(tmp_path, monkeypatch, capsys, method, couplings):  # type: ignore[no-untyped-def]
    """SIGTERM mid-solve: exit 143 for the retry, and no truncated result.npz passing for a finished run."""
    from workloads.common import checkpoint
    from workloads.superradiance.main import main

    original = checkpoint.GracefulStop.requested

    def requested(self):  # type: ignore[no-untyped-def]
        self.signal_name = "SIGTERM"
        return True

    monkeypatch.setattr(checkpoint.GracefulStop, "requested", property(requested))
    code = main(["--N", "4", "--method", method, "--couplings", couplings, "--out", str(tmp_path)])
    monkeypatch.setattr(checkpoint.GracefulStop, "requested", original)
    assert code == checkpoint.RESUMABLE_EXIT_CODE
    assert not (tmp_path / "result.npz").exists()
    assert "before finishing; no partial results were written" in capsys.readouterr().err

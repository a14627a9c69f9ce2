"""The benchmark's table: time to an error, and ratios that say when one side never got there."""

from workloads.pinn.bench import table, time_to


def _row(history, *, adam=(10, 1.0), lbfgs=(20, 4.0, 22)):
    return {
        "error_history": history,
        "relative_l2": history[-1][2],
        "train_s": history[-1][1],
        "adam_steps_done": adam[0],
        "adam_s": adam[1],
        "lbfgs_steps_done": lbfgs[0],
        "lbfgs_s": lbfgs[1],
        "lbfgs_evaluations": lbfgs[2],
    }


def test_time_to_is_the_first_evaluation_at_or_below_the_threshold():
    history = [[100, 1.0, 0.5], [200, 2.0, 0.009], [300, 3.0, 0.02], [400, 4.0, 0.004]]
    assert time_to(history, 1e-2) == 2.0
    assert time_to(history, 5e-3) == 4.0
    assert time_to(history, 1e-3) is None


def test_table_gives_measured_ratios_and_lower_bounds():
    ours = _row([[100, 10.0, 0.02], [200, 20.0, 0.008], [300, 30.0, 0.004]])
    theirs = _row([[100, 30.0, 0.05], [200, 60.0, 0.02], [300, 90.0, 0.015]], lbfgs=(20, 2.0, 21))
    text = table({"ours": ours, "deepxde": theirs})
    # 1e-2: ours at 20 s, DeepXDE never (90 s in all): at least 90 / 20 = 4.5 times faster.
    assert "| time to 0.01 | 20.0 s | not reached | > 4.5x (DeepXDE never reached it in 90 s) |" in text
    # The larger of the best errors (0.015) both reached: ours first at 20 s (0.008), DeepXDE at 90 s.
    assert "| time to 1.50e-02 (both reach it) | 20.0 s | 90.0 s | 4.5x |" in text
    # ms per L-BFGS iteration: 4 s / 20 = 200 ms vs 2 s / 20 = 100 ms, so DeepXDE's is 0.5x ours.
    assert "| ms per L-BFGS iteration (float64 vs float32) | 200.0 | 100.0 | 0.50x |" in text
    assert "| evaluations per L-BFGS iteration | 1.10 | 1.05 | |" in text


def test_table_says_when_ours_never_reached_an_error():
    ours = _row([[100, 10.0, 0.2], [200, 20.0, 0.012]])
    theirs = _row([[100, 5.0, 0.1], [200, 10.0, 0.009]])
    assert "| time to 0.01 | not reached | 10.0 s | < 0.50x (ours never reached it in 20 s) |" in table(
        {"ours": ours, "deepxde": theirs}
    )

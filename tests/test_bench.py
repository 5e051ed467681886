"""scripts/bench.sh: what its JSON report must hold (checked on the documented runs), and how it finds its experiment.

Timings are a benchmark, not a test: nothing here checks how fast anything is, only that every figure the
report promises is there, is a finite number, and that both sides of the comparison did the same work.
The floor (src/tools/bench_floor.py) builds the experiment's model with the folder's own `build`, found from its
config folder (it names no model folder); and the experiment is a parameter (--experiment, default model01).
"""

from __future__ import annotations

import ast
import json
import math
import re
from pathlib import Path

import pytest

from src.tools import bench, bench_floor
from src.tools.bench import experiment
from tests.conftest import REPO

FIGURES = (
    "workspace_wall_s", "floor_wall_s", "sweep_ratio",                                  # total wall, A/B
    "fixed_cost_per_trial_s", "fixed_cost_mean_s", "fixed_cost_first_trial_s",          # per trial, A - B
    "training_diff_per_trial_s",
    "workspace_trial_s", "floor_trial_s", "workspace_train_epochs_s", "floor_train_epochs_s",
    "workspace_samples_per_s", "floor_samples_per_s", "throughput_ratio",               # throughput
    "cold_start_s", "sweep_first_step_s", "floor_first_step_s",                         # cold start
    "load_run_s", "load_run_cold_s", "mlflow_ui_s",
    "error_line_s", "help_s",                                                           # train.py lr=abc, --help
)
BENCH_TARGETS = (
   "sweep_ratio", "fixed_cost_per_trial_s", "throughput_ratio", "cold_start_s", "load_run_s", "error_line_s",
           "help_s")


def imported_modules(path: Path) -> set[str]:
    """Every module a Python file imports (`import a.b`, `from a.b import c`: a.b and a.b.c), at any depth."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def test_the_floor_names_no_model_folder_and_builds_with_the_experiments_own_build() -> None:
    floor = REPO / "src/tools/bench_floor.py"
    imports = imported_modules(floor)
    assert imports, "the parser found the floor's imports"
    assert not [m for m in imports if m == "src.model" or m.startswith("src.model.")], imports
    # the model comes from the experiment's own build() (what it derives from the data: the head, a regression's
    # target scale), found from --config-dir: the floor's code names no folder
    assert not re.search(r"model0\d", floor.read_text())
    assert bench_floor.builder(REPO / "config/model/model02").__module__ == "src.model.model02.train"


def test_the_tree_floor_imports_nothing_from_the_workspace() -> None:
    """The bare loop of a boosting library: the library's estimator by its `_target_`, no code of src/."""
    floor = REPO / "src/tools/bench_trees_floor.py"
    imports = imported_modules(floor)
    assert {"importlib", "json"} <= imports and not [m for m in imports if m == "src" or m.startswith("src.")]


def test_a_tree_folder_sweeps_20_trials_and_only_it_takes_the_large_table(capsys) -> None:
    assert bench.parse_args(["--experiment", "model04"])[2] == 20
    assert bench.parse_args(["--experiment", "model04", "--size", "tiny"])[2] == 2
    assert bench.parse_args(["--experiment", "model05", "--size", "large", "--trials", "5"])[2] == 5
    with pytest.raises(SystemExit) as exc:
        bench.parse_args(["--size", "large"])
    assert exc.value.code == 2 and "--size large is a table for a tree folder; model01 is a network" in \
        capsys.readouterr().err


def test_the_timeline_callback_target_is_this_module() -> None:
    import hydra

    assert hydra.utils.get_method(bench.TIMELINE_TARGET) is bench.timeline_callback


@pytest.mark.parametrize("bad", [["--trials", "0"], ["--epochs", "0"], ["--pruning", "--trials", "0"],
                                 ["--threads", "0"], ["--repeats", "0"]])
def test_a_count_below_one_is_refused_not_replaced_by_the_default(bad: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        bench.parse_args(bad)
    assert exc.value.code == 2 and "must be >= 1" in capsys.readouterr().err


@pytest.mark.parametrize("bad", [["--confirm"], ["--pruning", "--confirm", "--replay"],
                                 ["--pruning", "--confirm", "--sizes", "0"]])
def test_confirm_goes_with_pruning_alone(bad: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        bench.parse_args(bad)
    assert exc.value.code == 2 and "--confirm goes with --pruning" in capsys.readouterr().err


def test_counts_not_given_are_the_sizes_defaults() -> None:
    assert bench.parse_args([])[2:] == (5, 3)
    assert bench.parse_args(["--size", "tiny", "--epochs", "4"])[2:] == (2, 4)


def test_the_experiment_comes_from_its_folder() -> None:
    exp = experiment("model01")
    assert (exp.train_py, exp.config_dir) == ("src/model/model01/train.py", "config/model/model01")
    assert (exp.mlflow_experiment, exp.feature_dir) == ("model01", "_data/feature/feature01")
    assert (exp.feature, exp.dataset, exp.batch_size) == ("feature01", "dataset01", 64)
    for bad in ("nope", "../model/model01", ""):
        with pytest.raises(ValueError, match="no model folder"):
            experiment(bad)


def check_report(report: dict, stdout: str, trials: int = 2) -> None:
    """Every figure a `bash scripts/bench.sh --size tiny` report promises, for model01; both sides did the same work.
    (The benchmark runs as the README and its --help show it, in tests/test_documented_commands.py.)"""
    for key in FIGURES:
        value = report["figures"][key]
        assert isinstance(value, float) and math.isfinite(value), key
    for key in BENCH_TARGETS:
        assert set(report["targets"][key]) >= {"value", "limit", "met"}, key
    bench = report["bench"]
    assert bench["size"] == "tiny" and bench["trials"] == trials and bench["epochs"] == 1
    assert bench["experiment"] == "model01" and bench["mlflow_experiment"] == "model01"
    assert bench["train_py"] == "src/model/model01/train.py" and bench["feature_dir"] == "_data/feature/feature01"
    assert bench["n_train"] + bench["n_valid"] == 500 and bench["load_before"] and bench["load_after"]
    # the same work on both sides: the same sampled parameters, the same accuracies
    assert bench["same_params"] is True and bench["max_objective_gap"] < 1e-4
    for side in ("workspace", "floor"):
        (run,) = report["runs"][side]
        assert len(run["trials"]) == trials and all(t["samples"] == bench["n_train"] for t in run["trials"])
    assert report["table"] in stdout and "fixed cost per trial" in report["table"]
    assert "error line (lr=abc)" in report["table"] and "--help" in report["table"]
    assert report["table"].startswith("model01 benchmark")


def check_pruning_report(report: dict, stdout: str) -> None:
    """A `bash scripts/bench.sh --pruning` report: pruner=none and each candidate, each with its figures; the
    table printed; the plot written beside the JSON."""
    bench, figures = report["bench"], report["figures"]
    assert list(figures) == ["none", *bench["candidates"]] and bench["candidates"]
    for name, row in figures.items():
        assert row["trials"] == bench["trials"] and 0 <= row["pruned"] <= row["trials"], name
        assert isinstance(row["wall_s"], float) and row["wall_s"] > 0, name
        assert row["time_to_best_s"] is None or 0 < row["time_to_best_s"] <= row["wall_s"], name
    assert figures["none"]["pruned"] == 0 and figures["none"]["wall_share"] == 1.0
    assert report["table"] in stdout and f"plot: {bench['plot']}" in stdout
    assert Path(bench["plot"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def check_replay_report(report: dict, stdout: str) -> None:
    """A `bash scripts/bench.sh --pruning --replay` report: per sweep kind (fold 0; fold=all from a fold=all pool)
    every option of the pruner group with pruner=none first, per size its regret and work; the table printed, the
    plot written, the recommendation said; the pool written beside it."""
    bench, replays = report["bench"], report["replays"]
    assert bench["pool"] >= 5 and bench["orders"] >= 1 and set(replays) <= {"0", "all"} and "0" in replays
    for fold, r in replays.items():
        assert list(r["table"])[0] == "none" and len(r["table"]) > 1, fold
        for name, rows in r["table"].items():
            assert rows and all(row["orders"] == bench["orders"] and 0 < row["work"] <= 1 for row in rows.values())
            assert name != "none" or all(row["work"] == 1 and row["p90_regret"] == 0 for row in rows.values())
        assert r["text"] in stdout and f"recommended for fold={fold}: " in stdout
        assert Path(r["plot"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pool = json.loads(Path(re.search(r"^report: (\S+)\.json$", stdout, re.M).group(1) + "_pool.json").read_text())
    assert len(pool["configs"]) == bench["pool"] and all(c["folds"] for c in pool["configs"])


def check_confirm_report(report: dict, stdout: str) -> None:
    """A `bash scripts/bench.sh --pruning --confirm` report: per pruner, seed and size both sides' bests, whether
    they are the same trial and the work share; the table and the count printed, each side's sweep recorded."""
    bench, rows = report["bench"], report["rows"]
    assert rows and {r["seed"] for r in rows} == set(bench["seeds"])
    assert {r["size"] for r in rows} == set(bench["sizes"])
    for r in rows:
        assert r["none_best"] is not None and 0 < r["work"] <= 1 and 0 <= r["pruned_trials"] <= r["size"], r
        assert r["same_best"] == (r["none_params"] == r["pruned_params"]), r
    assert all(f"none-{s}" in report["sweeps"] for s in bench["seeds"])
    assert report["table"] in stdout and "best trial in " in stdout


def test_a_confirmation_compares_prefixes_of_one_sweep_and_the_best_trials_parameters() -> None:
    from src.tools.bench_confirm import compare

    def t(state: str, value: float | None, lr: float, steps: int) -> dict:
        return {"state": state, "value": value, "params": {"lr": lr}, "steps": steps}

    none = [t("COMPLETE", 0.90, 1, 10), t("COMPLETE", 0.99, 2, 10), t("COMPLETE", 0.95, 3, 10)]
    kept = [t("COMPLETE", 0.90, 1, 10), t("COMPLETE", 0.99, 2, 10), t("PRUNED", None, 3, 2)]
    lost = [t("COMPLETE", 0.90, 1, 10), t("PRUNED", None, 2, 1), t("COMPLETE", 0.95, 3, 10)]
    row = compare(none, kept, 3, maximize=True)
    assert row["same_best"] and row["pruned_trials"] == 1 and row["work"] == 22 / 30
    row = compare(none, lost, 3, maximize=True)
    assert not row["same_best"] and row["pruned_best"] == 0.95 and row["none_best"] == 0.99
    assert row["regret"] == pytest.approx(0.04)
    worse = compare(lost, none, 3, maximize=True)  # the "pruned" side found better: a negative regret
    assert worse["regret"] == pytest.approx(-0.04) and worse["regret_rel"] == pytest.approx(-0.04 / 0.95)
    assert compare(none, lost, 1, maximize=True)["same_best"]  # the first trial alone: both the same
    assert compare(none, kept, 3, maximize=False)["none_params"] == {"lr": 1}  # minimise: the lowest value


def test_time_to_best_counts_complete_trials_against_the_unpruned_best() -> None:
    from src.tools.bench_pruning import figures

    def side(launch: float, wall: float, trials: list[tuple[str, float, float]]) -> dict:
        return {"launch": launch, "wall_s": wall, "trials": [
            {"state": s, "value": v, "end": launch + end, "steps": 3} for s, v, end in trials]}

    sides = {"none": side(100.0, 50.0, [("COMPLETE", 0.90, 10), ("COMPLETE", 0.97, 30), ("COMPLETE", 0.95, 45)]),
             "median": side(0.0, 20.0, [("COMPLETE", 0.90, 5), ("PRUNED", 0.99, 8), ("COMPLETE", 0.969, 15)]),
             "sha": side(0.0, 10.0, [("COMPLETE", 0.90, 5), ("PRUNED", 0.99, 8)])}
    rows = figures(sides, maximize=True, tolerance=0.002)
    assert rows["none"]["time_to_best_s"] == 30 and rows["none"]["best"] == 0.97
    # a pruned trial's last value is no result: median reaches 0.969 (within 0.002 of 0.97) at 15 s
    assert rows["median"]["time_to_best_s"] == 15 and rows["median"]["time_to_best_share"] == 15 / 50
    assert rows["median"]["pruned"] == 1 and rows["median"]["wall_share"] == 20 / 50
    assert rows["sha"]["time_to_best_s"] is None and rows["sha"]["best"] == 0.90
    low = figures({"none": side(0, 10, [("COMPLETE", 2.0, 4)]), "x": side(0, 5, [("COMPLETE", 2.0015, 2)])},
                  maximize=False, tolerance=0.002)
    assert low["x"]["time_to_best_s"] == 2


def check_ensemble_report(report: dict, stdout: str) -> None:
    """A `bash scripts/bench.sh --ensemble` report: each method blended the members, with its wall time, its phases
    and the blend's scores beside the best member's; the table printed."""
    assert report["members"] >= 2 and report["classes"] == 10
    assert [r["method"] for r in report["methods"]] == ["hill_climbing", "mean", "rank_mean", "stacking"]
    for row in report["methods"]:
        for key in ("wall_s", "members", "read", "fit", "nested", "score", "record", "oof_accuracy",
                    "nested_oof_accuracy", "best_member_oof_accuracy"):
            assert isinstance(row[key], float) and math.isfinite(row[key]), (row["method"], key)
        assert 0 < row["read"] < row["wall_s"]
    mean = next(r for r in report["methods"] if r["method"] == "mean")
    assert mean["oof_accuracy"] == mean["nested_oof_accuracy"]  # nothing fitted: nested and in-sample agree
    assert "| hill_climbing |" in stdout and "blend (nested)" in stdout


def pool_of(curves: list[list[float]], mode: str = "max") -> dict:
    """A recorded pool of single-fold networks: one configuration per curve (its best is its objective)."""
    best = max if mode == "max" else min
    return {"mode": mode, "configs": [{"objective": best(c), "folds": [
        {"fold": 0, "steps": list(range(len(c))), "values": c, "work": [1] * len(c), "best": best(c)}]}
        for c in curves]}


def test_a_replay_counts_the_work_a_pruned_trial_trained_and_what_its_sweep_missed() -> None:
    from src.tools import bench_replay

    # trial 2 is the best but starts low: a threshold of 0.5 after the first step prunes it at step 1
    trials = bench_replay.trials_of(pool_of([[0.6, 0.7, 0.8], [0.6, 0.65, 0.7], [0.3, 0.4, 0.95]]), "0")
    threshold = {"_target_": "optuna.pruners.ThresholdPruner", "lower": 0.5, "n_warmup_steps": 1}
    sweep = bench_replay.replay(threshold, trials, [0, 1, 2], maximize=True)
    assert sweep == [(True, 0.8, 3, 3), (True, 0.7, 3, 3), (False, 0.95, 2, 3)]
    regret, relative, work = bench_replay.prefix_figures(sweep, 3, maximize=True)
    assert regret == pytest.approx(0.15) and relative == pytest.approx(0.15 / 0.95) and work == pytest.approx(8 / 9)
    assert bench_replay.prefix_figures(sweep, 2, maximize=True) == (0.0, 0.0, 1.0)  # a sweep of the first two
    unpruned = bench_replay.replay(None, trials, [2, 0, 1], maximize=True)
    assert [t[0] for t in unpruned] == [True] * 3 and bench_replay.prefix_figures(unpruned, 3, True)[0] == 0.0


def test_with_fold_all_the_folds_are_the_steps_and_their_epochs_the_work() -> None:
    from src.tools import bench_replay

    pool = {"mode": "min", "configs": [{"objective": 2.0, "folds": [
        {"fold": k, "steps": [0, 1], "values": [3.0, 2.0 + k], "work": [1, 1 + k], "best": 2.0 + k}
        for k in (1, 0)]}]}
    (fold_all,) = bench_replay.trials_of(pool, "all")
    assert fold_all == {"steps": [0, 1], "values": [2.0, 3.0], "work": [2, 3], "objective": 2.0}
    (single,) = bench_replay.trials_of(pool, "0")
    assert single == {"steps": [0, 1], "values": [3.0, 2.0], "work": [1, 1], "objective": 2.0}


def test_an_option_keeps_the_best_only_at_every_size_and_pays_only_from_20_trials() -> None:
    from src.tools import bench_replay

    ok = {"median_regret": 0.0, "p90_regret": 0.002, "work": 0.5}
    rows = {5: dict(ok, work=0.9), 10: ok, 20: ok, 50: ok}
    assert bench_replay.verdict(rows, True, 0.001, 0.003) == {"keeps_best": True, "pays": True}
    assert not bench_replay.verdict({**rows, 5: dict(ok, p90_regret=0.004)}, True, 0.001, 0.003)["keeps_best"]
    assert not bench_replay.verdict({**rows, 20: dict(ok, work=0.61)}, True, 0.001, 0.003)["pays"]
    table = {"none": rows, "a": {s: dict(r, work=0.7) for s, r in rows.items()}, "b": rows,
             "c": {s: dict(r, p90_regret=0.01, work=0.1) for s, r in rows.items()}}
    assert bench_replay.recommend(table, True, 0.001, 0.003) == "b"  # c trains least but loses the best


def test_a_tree_curve_is_replayed_at_the_rounds_its_trial_reports(monkeypatch) -> None:
    from types import SimpleNamespace

    from src.tools.bench_pool import curve_of

    # logged every 10 rounds plus the kept round (24) and the last (33), as the tree learner logs its curve
    points = [SimpleNamespace(step=s, value=100.0 - s, timestamp=0) for s in (9, 19, 24, 29, 33)]
    client = SimpleNamespace(get_metric_history=lambda run_id, key: points)
    steps, values, work = curve_of(client, "r", "fold0-val_rmse", every=10)
    assert steps == [9, 19, 29] and values == [91.0, 81.0, 71.0] and work == [10, 10, 14]  # 34 rounds in all
    steps, values, work = curve_of(client, "r", "val_loss", every=1)  # a network: each point is an epoch
    assert steps == [0, 1, 2, 3, 4] and work == [1] * 5

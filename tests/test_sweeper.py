"""The workspace's Optuna sweeper for real: trial <-> run links, pruning, one budget for several workers, a worker
killed mid-trial, and Optuna's own plots on the parent run."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import optuna
import pandas as pd
import pytest
from omegaconf import OmegaConf

from tests.conftest import Workspace

pytestmark = pytest.mark.slow
TRAIN = "src/model/model01/train.py"


@pytest.fixture(scope="module")
def ws(prepared: Workspace) -> Workspace:
    return prepared


def study(ws: Workspace, name: str) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name=name, storage=f"sqlite:///{ws.root / 'logs/optuna/optuna.db'}")


def runs_of(ws: Workspace, study_name: str) -> tuple[list, list]:
    """(parent runs, trial runs) of a study."""
    client = ws.client()
    exp = client.get_experiment_by_name("model01")
    found = client.search_runs([exp.experiment_id], f"tags.optuna_study = '{study_name}'", max_results=1000)
    return ([r for r in found if r.data.tags.get("sweep") == "parent"],
            [r for r in found if r.data.tags.get("sweep") != "parent"])


def assert_linked_both_ways(trials: list, runs: list) -> None:
    by_id = {r.info.run_id: r for r in runs}
    assert len(by_id) == len(trials), "one MLflow run per trial"
    for trial in trials:
        run = by_id[trial.user_attrs["mlflow_run_id"]]
        assert run.data.tags["optuna_trial"] == str(trial.number)
        assert run.data.tags["optuna_state"] == trial.state.name


def test_a_pruned_sweep_links_every_trial_and_its_run(ws: Workspace) -> None:
    # a wide learning-rate range: some trials are hopeless by their third epoch and the median pruner stops them
    res = ws.script(TRAIN, "-m", "lr=tag(log,interval(1e-5,1.0))", "max_epochs=4", "~callbacks.early_stopping",
                    "pruner=median", "hydra.sweeper.n_trials=10", "hydra.sweeper.study_name=pruned",
                    "+trainer.limit_train_batches=6")  # six batches an epoch: the curves differ as much, sooner
    assert res.returncode == 0, res.stderr[-3000:]
    trials = study(ws, "pruned").trials
    states = [t.state.name for t in trials]
    assert len(trials) == 10 and set(states) == {"COMPLETE", "PRUNED"}, states
    pruner = OmegaConf.load(ws.root / "config/model/model01/pruner/median.yaml")
    assert pruner._target_ == "optuna.pruners.MedianPruner"
    (parent,), children = runs_of(ws, "pruned")
    assert_linked_both_ways(trials, children)
    assert all(c.data.tags["mlflow.parentRunId"] == parent.info.run_id for c in children)
    client = ws.client()
    for trial in trials:
        run = client.get_run(trial.user_attrs["mlflow_run_id"])
        assert run.info.status == "FINISHED"
        # every trial reported each epoch it ran to Optuna, and MLflow holds the same curve
        reported = trial.intermediate_values
        history = {m.step: m.value for m in client.get_metric_history(run.info.run_id, "val_acc")}
        assert len(reported) == len(history) and reported
        files = {a.path for a in client.list_artifacts(run.info.run_id, "checkpoints/fold0")}
        if trial.state.name == "PRUNED":
            step = int(run.data.tags["pruned_at_step"])
            assert max(reported) == step <= 3 and "best_val_acc" not in run.data.metrics
            # the config's MedianPruner: nothing before n_startup_trials have finished, nor before n_warmup_steps
            assert trial.number >= pruner.n_startup_trials and step >= pruner.n_warmup_steps, (trial.number, step)
            assert "checkpoints/fold0/last.ckpt" in files and client.list_artifacts(run.info.run_id, "logs")
            # where it stopped: in its name, its tags, and a point on its curve
            name = run.info.run_name
            assert name.startswith(f"model01 #{trial.number} (pruned at epoch {step}) lr="), name
            assert run.data.tags["pruned_at"] == f"epoch {step}"
            (point,) = client.get_metric_history(run.info.run_id, "pruned_value")
            assert (point.step, point.value) == (step, pytest.approx(reported[step]))
        else:
            assert len(reported) == 4 and run.data.metrics["best_val_acc"] == pytest.approx(trial.value)
    assert parent.data.metrics["n_trials_pruned"] == states.count("PRUNED")
    assert parent.data.metrics["n_trials_complete"] == states.count("COMPLETE")
    assert parent.data.tags["optuna_storage"].startswith("sqlite:///")
    assert parent.data.params["pruner"] == "MedianPruner"  # pruner=median; auto names the pruner it picked
    # the parent's trials table: each trial's state and the last step it reported
    table = pd.read_csv(client.download_artifacts(parent.info.run_id, "sweep/trials.csv"))
    assert list(table["state"]) == states
    assert list(table["last_step"]) == [max(t.intermediate_values) for t in trials]
    assert "sweep/intermediate_values.png" in {a.path for a in client.list_artifacts(parent.info.run_id, "sweep")}


def test_the_intermediate_values_plot_shows_pruned_trials_apart() -> None:
    import optuna

    from src.utils.tune.parent import optuna_plots

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize")
    for n, state in enumerate(["COMPLETE", "PRUNED", "COMPLETE"]):
        trial = study.ask()
        for step in range(2 if state == "PRUNED" else 4):
            trial.report(0.5 + 0.1 * n + 0.01 * step, step)
        study.tell(trial, 0.6 if state == "COMPLETE" else None, state=optuna.trial.TrialState[state])
    ax = optuna_plots(study)["intermediate_values"].axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert lines["Trial1"].get_linestyle() == "--" and lines["Trial0"].get_linestyle() == "-"
    crosses = [line for line in ax.get_lines() if line.get_marker() == "x" and line.get_label().startswith("_")]
    assert len(crosses) == 1 and list(crosses[0].get_xdata()) == [1]  # where trial 1 was stopped
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "COMPLETE (2)", "PRUNED (1), x: where it was stopped"]


def test_fold_all_reports_each_fold_as_a_step(ws: Workspace) -> None:
    # folds as steps, each the fold's own best value (what WilcoxonPruner's paired test compares)
    res = ws.script(TRAIN, "-m", "lr=tag(log,interval(1e-3,1e-2))", "fold=all", "max_epochs=1",
                    "hydra.sweeper.n_trials=2", "hydra.sweeper.study_name=folds-as-steps")
    assert res.returncode == 0, res.stderr[-3000:]
    client = ws.client()
    (parent,), _ = runs_of(ws, "folds-as-steps")
    assert parent.data.params["pruner"] == "WilcoxonPruner"  # the default, pruner=auto, with the folds as steps
    for trial in study(ws, "folds-as-steps").trials:
        metrics = client.get_run(trial.user_attrs["mlflow_run_id"]).data.metrics
        assert trial.intermediate_values == {k: pytest.approx(metrics[f"fold{k}_best_val_acc"]) for k in range(5)}


def test_trials_with_the_same_parameters_keep_their_own_runs(ws: Workspace) -> None:
    # one parameter with two values and four trials: at least two trials share their parameters
    res = ws.script(TRAIN, "-m", "dropout=choice(0.1,0.2)", "max_epochs=1", "pruner=none",
                    "hydra.sweeper.n_trials=4", "hydra.sweeper.study_name=same-params")
    assert res.returncode == 0, res.stderr[-3000:]
    trials = study(ws, "same-params").trials
    assert len({t.params["dropout"] for t in trials}) < len(trials) == 4
    assert_linked_both_ways(trials, runs_of(ws, "same-params")[1])


def test_two_workers_share_one_budget(ws: Workspace) -> None:
    cmd = [sys.executable, str(ws.root / TRAIN), "-m", "lr=tag(log,interval(1e-3,1e-2))", "max_epochs=1",
           "hydra.sweeper.n_trials=6", "hydra.sweeper.study_name=shared"]
    procs = [subprocess.Popen(cmd, cwd=ws.cwd, env=ws.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
    trials = study(ws, "shared").trials
    assert [t.state.name for t in trials] == ["COMPLETE"] * 6
    assert len({t.params["lr"] for t in trials}) == 6  # the workers never proposed the same point
    parents, children = runs_of(ws, "shared")
    assert len(parents) == 2 and {p.info.status for p in parents} == {"FINISHED"}
    assert_linked_both_ways(trials, children)


def test_a_killed_workers_trial_is_failed_and_run_again(ws: Workspace) -> None:
    sweep = ["-m", "lr=tag(log,interval(1e-3,1e-2))", "max_epochs=30", "~callbacks.early_stopping", "pruner=none",
             "hydra.sweeper.n_trials=2", "hydra.sweeper.study_name=killed",
             "hydra.sweeper.heartbeat_interval=1", "hydra.sweeper.grace_period=3"]
    proc = subprocess.Popen([sys.executable, str(ws.root / TRAIN), *sweep], cwd=ws.cwd, env=ws.env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while not any(t.state.name == "RUNNING" and t.intermediate_values for t in _trials(ws, "killed")):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)  # no handler runs: the trial is left RUNNING
    proc.wait()
    (dead,) = _trials(ws, "killed")
    assert dead.state.name == "RUNNING"
    time.sleep(4)  # past the grace period

    res = ws.script(TRAIN, *[a for a in sweep if not a.startswith("max_epochs")], "max_epochs=1")
    assert res.returncode == 0, res.stderr[-3000:]
    trials = study(ws, "killed").trials
    assert [t.state.name for t in trials] == ["FAIL", "COMPLETE", "COMPLETE"]
    assert trials[1].params == dead.params and trials[1].system_attrs["retry_history"] == [0]
    client = ws.client()
    assert client.get_run(dead.user_attrs["mlflow_run_id"]).info.status == "FAILED"
    assert client.get_run(trials[1].user_attrs["mlflow_run_id"]).info.status == "FINISHED"


def _trials(ws: Workspace, name: str) -> list:
    from filelock import FileLock

    db = ws.root / "logs/optuna/optuna.db"
    with FileLock(f"{db}.lock"):  # the lock the sweeper creates the database under
        if not db.exists():
            return []
        try:
            return study(ws, name).trials
        except KeyError:  # not created yet
            return []


def test_a_trial_refused_before_its_run_fails_in_optuna_and_the_sweep_goes_on(ws: Workspace) -> None:
    # fold 6 and 7 do not exist (5 folds): each trial fails on its check, before any run, and the next one starts
    res = ws.script(TRAIN, "-m", "fold=choice(6,7)", "hydra.sweeper.n_trials=2", "hydra.sweeper.study_name=refused")
    assert res.returncode == 0, res.stderr[-3000:]
    assert [t.state.name for t in study(ws, "refused").trials] == ["FAIL", "FAIL"]
    assert "does not exist: the features have 5 folds" in res.stdout + res.stderr
    (parent,), children = runs_of(ws, "refused")
    assert children == [] and parent.info.status == "FINISHED" and parent.data.metrics["n_trials_fail"] == 2


def test_a_sampler_that_runs_out_of_points_ends_the_sweep(ws: Workspace) -> None:
    # GridSampler (and BruteForceSampler: README's command, run by the documented-commands test) calls study.stop()
    # after the last point, which Optuna refuses outside study.optimize: the sweep ends there, FINISHED, instead of
    # failing after its last trial
    sampler, name = ["hydra/sweeper/sampler=grid"], "exhausted"
    res = ws.script(TRAIN, "-m", "dropout=choice(0.1,0.3)", *sampler, "max_epochs=1", "hydra.sweeper.n_trials=5",
                    f"hydra.sweeper.study_name={name}")
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr[-3000:]
    assert "has tried every point of the search space" in res.stdout + res.stderr
    trials = study(ws, name).trials
    assert sorted(t.params["dropout"] for t in trials) == [0.1, 0.3] and {t.state.name for t in trials} == {"COMPLETE"}
    (parent,), _ = runs_of(ws, name)
    assert parent.info.status == "FINISHED" and parent.data.metrics["n_trials_complete"] == 2

"""Sweep glue, as a Hydra callback (hydra.callbacks.mlflow_sweep in the model configs).

One MLflow parent run per sweep; every trial's run is nested under it. The parent run id reaches the trials
through the environment, so in-process and subprocess launchers both work. The parent names the Optuna study and
its storage (password hidden) and, when the sweep ends, gets the best trial (run_id, params, value), the trial
counts, the trials table (each trial with its `mlflow_run_id`) and Optuna's own plots. Budget, resume, trial links
and pruning are the sweeper's (src/utils/tune/sweeper.py).
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from src.utils.core.redaction import redact_uri
from src.utils.tune.study import budget
from src.utils.tune.sweeper import SWEEP_FAILED

PARENT_RUN_ENV = "WORKSPACE_SWEEP_PARENT_RUN_ID"
log = logging.getLogger(__name__)


def experiment_of(config: DictConfig) -> str:
    return "__debug__" if config.get("debug") else str(config.experiment_name)


class MlflowSweepCallback(Callback):
    def __init__(self, stage: str, folder: str) -> None:
        self.stage, self.folder = stage, folder
        self.parent_run_id: str | None = None
        self.config: DictConfig | None = None
        self.heartbeat = None

    def __getstate__(self) -> dict[str, Any]:
        # Launchers that pickle Hydra's context (joblib, submitit) carry this callback to their jobs; the parent run's
        # heartbeat (a thread) stays with the sweep process.
        return {**self.__dict__, "heartbeat": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        # arriving in a job's own process: it resolves the job's config (${root:} ...) before any code of ours runs
        from src.utils.tune.plugin import prepare_process

        prepare_process()
        self.__dict__.update(state)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from mlflow import MlflowClient

        from src.utils.core.errors import WorkspaceError
        from src.utils.track.liveness import Heartbeat, process_tags
        from src.utils.track.runs import _job_log_files, install_interrupt_handlers
        from src.utils.track.tracking import get_or_create_experiment, setup_mlflow, standard_tags

        install_interrupt_handlers()
        try:
            setup_mlflow()
            heartbeat = Heartbeat()
        except WorkspaceError as exc:  # Hydra would only warn about an exception from a callback and go on
            print(f"error: {exc}", file=sys.stderr, flush=True)
            raise SystemExit(exc.exit_code) from exc
        self.config = config
        sweeper = config.hydra.sweeper
        study = study_of(config)
        finished_before = budget(study.get_trials(deepcopy=False))["finished"]
        client = MlflowClient()
        experiment_id = get_or_create_experiment(experiment_of(config))
        overrides = list(OmegaConf.to_container(config.hydra.overrides.task, resolve=False))
        tags = {
            **standard_tags(self.stage, self.folder),
            "sweep": "parent",
            "optuna_study": str(sweeper.study_name),
            "optuna_storage": redact_uri(str(sweeper.storage)),
            "hydra_overrides": json.dumps(overrides),
            "sweep_dir": str(config.hydra.sweep.dir),
            "mlflow.runName": f"sweep {sweeper.study_name}",
        }
        tags |= process_tags()
        if log_files := _job_log_files():  # when Hydra's logging of the sweep process writes a file
            tags["log_file"] = str(log_files[0])
        run = client.create_run(experiment_id, tags=tags)
        self.parent_run_id = run.info.run_id
        self.heartbeat = heartbeat.start(self.parent_run_id)  # a parent whose process died is ended FAILED
        os.environ[PARENT_RUN_ENV] = self.parent_run_id
        earlier = [r for r in client.search_runs(
            [experiment_id], f"tags.optuna_study = '{sweeper.study_name}' and tags.sweep = 'parent'",
            order_by=["attributes.start_time DESC"], max_results=2) if r.info.run_id != self.parent_run_id]
        if earlier:
            client.set_tag(self.parent_run_id, "resumed_from_run_id", earlier[0].info.run_id)
        client.set_tag(self.parent_run_id, "finished_trials_before", str(finished_before))
        params = {"n_trials": sweeper.n_trials, "direction": sweeper.direction, "n_jobs": sweeper.n_jobs,
                  "sampler": str(sweeper.sampler._target_).rsplit(".", 1)[-1],
                  "sampler_seed": sweeper.sampler.get("seed"), "search_space": " ".join(overrides)[:6000],
                  "pruner": pruner_name(config)}
        for k, v in params.items():
            client.log_param(self.parent_run_id, k, v)
        atexit.register(self._close, "FAILED")
        log.info("MLflow sweep parent run %s (experiment %r, Optuna study %r)", self.parent_run_id,
                 experiment_of(config), sweeper.study_name)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self._close("FINISHED")

    def _close(self, status: str) -> None:
        """End the parent run; at exit without on_multirun_end the sweep was interrupted or crashed."""
        if self.parent_run_id is None or self.config is None:
            return
        run_id, self.parent_run_id = self.parent_run_id, None
        os.environ.pop(PARENT_RUN_ENV, None)
        from mlflow import MlflowClient

        from src.utils.track.runs import INTERRUPTED
        from src.utils.track.tracking import browse_hint

        if status != "FINISHED" or SWEEP_FAILED.is_set():  # on_multirun_end runs after a failed sweep too
            status = "KILLED" if INTERRUPTED.is_set() else "FAILED"
        client = MlflowClient()
        try:
            best = summarize_sweep(client, run_id, self.config)
            if best is None and status != "KILLED":
                print(f"sweep parent run {run_id}: no trial completed; the `trial N failed:` lines above and the "
                      f"failed runs' logs in MLflow say why ({browse_hint()})", flush=True)
            elif best is not None:
                print(f"sweep done: parent run {run_id}; best run_id={best['run_id']} "
                      f"{best['metric']}={best['value']:.4f} params={best['params']} "
                      f"({browse_hint()})", flush=True)
        except Exception:
            log.exception("could not summarise sweep %s", run_id)
            status = "FAILED"
        finally:
            if self.heartbeat is not None:
                self.heartbeat.stop()
            client.set_terminated(run_id, status)
        log.info("sweep parent run %s ended %s", run_id, status)
        if status == "KILLED":
            import shlex
            import sys

            print(f"interrupted: sweep parent run {run_id} ended KILLED; the finished trials are kept in Optuna "
                  f"study {self.config.hydra.sweeper.study_name!r}. Resume with the same command:\n"
                  f"  {shlex.join(['python', *sys.argv])}", flush=True)


def pruner_name(config: DictConfig) -> str:
    """The sweep's pruner as the parent run shows it: its class (`MedianPruner`), or `none`."""
    node = config.get("pruner")
    target = node.get("_target_") if isinstance(node, DictConfig) else None
    if target and str(target).endswith(".by_steps"):  # pruner=auto: the one for this sweep's steps
        from src.utils.tune.pruners import by_steps

        target = by_steps(node.get("fold"), node.epochs, node.folds).get("_target_")
    return str(target).rsplit(".", 1)[-1] if target else "none"


def study_of(config: DictConfig):
    from src.utils.tune.study import open_study

    sweeper = config.hydra.sweeper
    return open_study(str(sweeper.storage), str(sweeper.study_name), [str(sweeper.direction)])


def summarize_sweep(client, parent_run_id: str, config: DictConfig) -> dict[str, Any] | None:
    """Record the study's outcome on the parent run; returns the best trial (None if none completed)."""
    import pandas as pd

    study = study_of(config)
    experiment_id = client.get_run(parent_run_id).info.experiment_id
    children = client.search_runs([experiment_id], f"tags.mlflow.parentRunId = '{parent_run_id}'",
                                  max_results=5000)
    trials = study.get_trials(deepcopy=False)
    # each trial names its run (set by the job itself); the run's tag says how the trial ended
    run_of_trial = {t.number: t.user_attrs["mlflow_run_id"] for t in trials if "mlflow_run_id" in t.user_attrs}
    for trial in trials:
        if trial.number in run_of_trial and trial.state.is_finished():
            client.set_tag(run_of_trial[trial.number], "optuna_state", trial.state.name)
            # a trial failed as stale: its worker died, and its run was left RUNNING
            if trial.state.name == "FAIL" and client.get_run(run_of_trial[trial.number]).info.status == "RUNNING":
                client.set_terminated(run_of_trial[trial.number], "FAILED")

    states = pd.Series([t.state.name for t in trials], dtype=str)
    for name in ("COMPLETE", "PRUNED", "FAIL"):
        client.log_metric(parent_run_id, f"n_trials_{name.lower()}", int((states == name).sum()))
    client.log_metric(parent_run_id, "n_trials_failed", int((states == "FAIL").sum()))
    client.log_metric(parent_run_id, "n_trials_total", len(trials))
    client.set_tag(parent_run_id, "n_children", str(len(children)))

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        table = study.trials_dataframe(attrs=("number", "state", "value", "params", "datetime_start",
                                              "duration", "user_attrs"))
        # where each trial stopped on its curve: its last reported step (an epoch; a fold with fold=all)
        last_step = {t.number: max(t.intermediate_values) for t in trials if t.intermediate_values}
        table["last_step"] = table["number"].map(last_step).astype("Int64")
        table["mlflow_run_id"] = table["number"].map(run_of_trial)
        # whether each trial's run beat the trivial baseline on the competition's metric (src/utils/run/baseline.py)
        beats = {c.info.run_id: c.data.tags.get("beats_baseline") for c in children}
        table["beats_baseline"] = table["mlflow_run_id"].map(beats)
        table.to_csv(tmp_path / "trials.csv", index=False)
        client.log_artifact(parent_run_id, str(tmp_path / "trials.csv"), "sweep")

        completed = [t for t in trials if t.state.name == "COMPLETE"]
        if not completed:
            client.set_tag(parent_run_id, "best_run_id", "none (no trial completed)")
            return None
        best = study.best_trial
        monitor = str(config.get("monitor", "objective"))
        client.log_metric(parent_run_id, f"best_{monitor}", float(best.value))
        client.set_tag(parent_run_id, "best_run_id", run_of_trial.get(best.number, "unknown"))
        client.set_tag(parent_run_id, "best_trial", str(best.number))
        for k, v in best.params.items():
            client.log_param(parent_run_id, f"best.{k}", v)
        draw_best_trial_plots(client, run_of_trial.get(best.number))
        for name, figure in optuna_plots(study).items():
            path = tmp_path / f"{name}.png"
            figure.savefig(path, dpi=110, bbox_inches="tight")
            client.log_artifact(parent_run_id, str(path), "sweep")
    return {"run_id": run_of_trial.get(best.number, "unknown"), "metric": f"best_{monitor}",
            "value": float(best.value), "params": best.params}


def draw_best_trial_plots(client, run_id: str | None) -> None:
    """The task's plots of the best trial, which its run deferred to the end of the sweep (a failure to draw them
    is a warning: the sweep's record stands without them)."""
    from src.utils.track.plots import DEFERRED, PLOTS_TAG, draw_task_plots

    if not run_id or client.get_run(run_id).data.tags.get(PLOTS_TAG) != DEFERRED:
        return
    try:
        draw_task_plots(client, run_id)
    except Exception as exc:  # noqa: BLE001  (the study's outcome is recorded already)
        log.warning("the best trial's plots were not drawn (%s: %s); draw them with "
                    "src.utils.track.plots.draw_task_plots(MlflowClient(), %r)", type(exc).__name__, exc, run_id)


def optuna_plots(study) -> dict[str, Any]:
    """Optuna's own plots of the study (matplotlib backend), those that apply to it."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna
    from optuna.visualization import matplotlib as ovm

    trials = study.get_trials(deepcopy=False)
    completed = [t for t in trials if t.state.name == "COMPLETE"]
    wanted = {"optimization_history": ovm.plot_optimization_history}
    if len(completed) >= 2 and completed[0].params:
        wanted |= {"param_importances": ovm.plot_param_importances,
                   "parallel_coordinate": ovm.plot_parallel_coordinate}
    if any(t.intermediate_values for t in trials):
        wanted["intermediate_values"] = ovm.plot_intermediate_values
    figures = {}
    plt.close("all")
    for name, plot in wanted.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            try:
                figures[name] = plot(study).figure
            except (ValueError, RuntimeError) as exc:  # e.g. importances of a parameter that never varied
                log.warning("no %s plot: %s", name, exc)
    if "intermediate_values" in figures:
        mark_pruned(figures["intermediate_values"], trials)
    return figures


def mark_pruned(figure, trials: list) -> None:
    """Optuna's intermediate-values plot draws every trial alike: pruned trials become grey dashed lines ending
    in a cross where they were stopped, and the legend says which is which."""
    from matplotlib.lines import Line2D

    pruned = {f"Trial{t.number}" for t in trials if t.state.name == "PRUNED"}
    ax = figure.axes[0]
    for line in ax.get_lines():
        if line.get_label() in pruned:
            line.set(color="0.55", linestyle="--", alpha=0.8)
            xs, ys = line.get_data()
            if len(xs):
                ax.plot([xs[-1]], [ys[-1]], marker="x", color="0.25", markersize=7, linestyle="none")
    n_pruned, n_complete = len(pruned), sum(t.state.name == "COMPLETE" for t in trials)
    ax.legend(handles=[Line2D([], [], color="C0", marker=".", label=f"COMPLETE ({n_complete})"),
                       Line2D([], [], color="0.55", linestyle="--", marker="x", markeredgecolor="0.25",
                              label=f"PRUNED ({n_pruned}), x: where it was stopped")],
              loc="best", fontsize=8)

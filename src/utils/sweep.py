"""Sweep glue, as a Hydra callback (hydra.callbacks.mlflow_sweep in the model configs).

* One MLflow parent run per sweep; every trial's run is nested under it. The parent run id reaches the
  trials through the environment, so in-process and subprocess launchers both work. When the sweep ends,
  the parent gets the best trial (run_id, params, value), the trials table and Optuna's
  optimization-history and parameter-importance plots.
* Resume: the study name comes from the sweep command, so re-running the command loads the same study.
  Before the Optuna sweeper starts, the callback creates/loads the study (under a file lock, so workers
  starting together on a fresh SQLite database do not race on its schema), lowers `n_trials` to what is
  missing for `n_trials` finished trials in total, and offsets the sampler seed by the number of finished
  trials so that a seeded sampler does not replay the points it already proposed.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

PARENT_RUN_ENV = "WORKSPACE_SWEEP_PARENT_RUN_ID"
log = logging.getLogger(__name__)
FINISHED_STATES = ("COMPLETE", "FAIL", "PRUNED")


def open_study(storage: str, study_name: str, direction: str):
    """Create or load the study; a SQLite database is created under a file lock."""
    import optuna
    from filelock import FileLock

    if storage.startswith("sqlite:///"):
        db = Path(storage.removeprefix("sqlite:///"))
        db.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(db) + ".lock", timeout=300):
            return optuna.create_study(study_name=study_name, storage=storage, direction=direction,
                                       load_if_exists=True)
    for attempt in range(5):  # server databases: retry the schema/study creation race with backoff
        try:
            return optuna.create_study(study_name=study_name, storage=storage, direction=direction,
                                       load_if_exists=True)
        except Exception:
            if attempt == 4:
                raise
            time.sleep(0.5 * 2**attempt)
    raise AssertionError("unreachable")


def prepare_resume(config: DictConfig) -> dict[str, Any]:
    """Adjust the sweeper config in place for a study that already has finished trials."""
    from omegaconf import open_dict, read_write

    sweeper = config.hydra.sweeper
    study = open_study(str(sweeper.storage), str(sweeper.study_name), str(sweeper.direction))
    finished = sum(t.state.name in FINISHED_STATES and not t.user_attrs.get("interrupted")
                   for t in study.get_trials(deepcopy=False))
    requested = int(sweeper.n_trials)
    info = {"n_trials_requested": requested, "finished_before": finished}
    if finished:
        remaining = max(0, requested - finished)
        with read_write(sweeper), open_dict(sweeper):
            sweeper.n_trials = remaining
            if sweeper.sampler.get("seed") is not None:
                sweeper.sampler.seed = int(sweeper.sampler.seed) + finished
        log.info("resuming Optuna study %r: %d trial(s) finished, %d to go for n_trials=%d",
                 sweeper.study_name, finished, remaining, requested)
        if remaining == 0:
            # The sweeper launches nothing then, so nothing creates the sweep folder it writes its results to.
            Path(str(config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
    return info


def redact_uri(uri: str) -> str:
    """A storage URI without its password (postgresql://user:pw@host/db -> postgresql://user:***@host/db)."""
    if "://" in uri and "@" in uri:
        scheme, rest = uri.split("://", 1)
        cred, host = rest.rsplit("@", 1)
        if ":" in cred:
            cred = cred.split(":", 1)[0] + ":***"
        return f"{scheme}://{cred}@{host}"
    return uri


def experiment_of(config: DictConfig) -> str:
    return "__debug__" if config.get("debug") else str(config.experiment_name)


def match_trials(trials: list, candidates: list[tuple[set[str], Any]]) -> dict[int, Any]:
    """Optuna trial number -> candidate, by the overrides the sweeper gave the trial (`name=value`).

    The sweeper passes each trial's params as `name=str(value)` overrides, so the same strings identify
    the job (and its MLflow run) that ran the trial. Each candidate is used once, in order.
    """
    used: set[int] = set()
    out = {}
    for trial in trials:
        wanted = {f"{k}={v}" for k, v in trial.params.items()}
        for i, (overrides, candidate) in enumerate(candidates):
            if i not in used and wanted and wanted <= overrides:
                out[trial.number] = candidate
                used.add(i)
                break
    return out


def match_trials_to_runs(trials: list, runs: list) -> dict[int, Any]:
    """Optuna trial number -> the MLflow run of the job that ran it (runs tagged with their overrides)."""
    candidates = [(set(json.loads(r.data.tags.get("hydra_overrides") or "[]")), r) for r in runs]
    return match_trials(trials, candidates)


class MlflowSweepCallback(Callback):
    def __init__(self, stage: str, folder: str) -> None:
        self.stage, self.folder = stage, folder
        self.parent_run_id: str | None = None
        self.job_overrides: list[str] = []  # the trial running now, to close its Optuna trial if interrupted
        self.config: DictConfig | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from mlflow import MlflowClient

        from src.utils.errors import WorkspaceError
        from src.utils.runs import install_interrupt_handlers
        from src.utils.tracking import get_or_create_experiment, setup_mlflow, standard_tags

        install_interrupt_handlers()
        try:
            setup_mlflow()
        except WorkspaceError as exc:  # Hydra would only warn about an exception from a callback and go on
            print(f"error: {exc}", file=sys.stderr, flush=True)
            raise SystemExit(exc.exit_code) from exc
        self.config = config
        resume = prepare_resume(config)
        sweeper = config.hydra.sweeper
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
        run = client.create_run(experiment_id, tags=tags)
        self.parent_run_id = run.info.run_id
        os.environ[PARENT_RUN_ENV] = self.parent_run_id
        earlier = [r for r in client.search_runs(
            [experiment_id], f"tags.optuna_study = '{sweeper.study_name}' and tags.sweep = 'parent'",
            order_by=["attributes.start_time DESC"], max_results=2) if r.info.run_id != self.parent_run_id]
        if earlier:
            client.set_tag(self.parent_run_id, "resumed_from_run_id", earlier[0].info.run_id)
        client.set_tag(self.parent_run_id, "finished_trials_before", str(resume["finished_before"]))
        params = {"n_trials": resume["n_trials_requested"], "direction": sweeper.direction, "n_jobs": sweeper.n_jobs,
                  "sampler": str(sweeper.sampler._target_).rsplit(".", 1)[-1],
                  "sampler_seed": sweeper.sampler.get("seed"), "search_space": " ".join(overrides)[:6000]}
        for k, v in params.items():
            client.log_param(self.parent_run_id, k, v)
        atexit.register(self._close, "FAILED")
        log.info("MLflow sweep parent run %s (experiment %r, Optuna study %r)", self.parent_run_id,
                 experiment_of(config), sweeper.study_name)

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.job_overrides = list(config.hydra.overrides.task)

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        self.job_overrides = []

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self._close("FINISHED")

    def _close(self, status: str) -> None:
        """End the parent run; at exit without on_multirun_end the sweep was interrupted or crashed."""
        if self.parent_run_id is None or self.config is None:
            return
        run_id, self.parent_run_id = self.parent_run_id, None
        os.environ.pop(PARENT_RUN_ENV, None)
        from mlflow import MlflowClient

        from src.utils.runs import INTERRUPTED

        if status != "FINISHED":
            status = "KILLED" if INTERRUPTED.is_set() else "FAILED"
            fail_running_trial(self.config, self.job_overrides)
        client = MlflowClient()
        try:
            best = summarize_sweep(client, run_id, self.config)
            if best is None and status != "KILLED":
                print(f"sweep parent run {run_id}: no trial completed; the failed runs' logs in MLflow say why "
                      f"(bash scripts/mlflow_ui.sh)", flush=True)
            elif best is not None:
                print(f"sweep done: parent run {run_id}; best run_id={best['run_id']} "
                      f"{best['metric']}={best['value']:.4f} params={best['params']} "
                      f"(browse: bash scripts/mlflow_ui.sh)", flush=True)
        except Exception:
            log.exception("could not summarise sweep %s", run_id)
            status = "FAILED"
        finally:
            client.set_terminated(run_id, status)
        log.info("sweep parent run %s ended %s", run_id, status)
        if status == "KILLED":
            import shlex
            import sys

            print(f"interrupted: sweep parent run {run_id} ended KILLED; the finished trials are kept in Optuna "
                  f"study {self.config.hydra.sweeper.study_name!r}. Resume with the same command:\n"
                  f"  {shlex.join(['python', *sys.argv])}", flush=True)


def fail_running_trial(config: DictConfig, overrides: list[str]) -> None:
    """Tell Optuna that the trial cut short by an interrupt failed, so the study has no RUNNING leftover."""
    import optuna

    if not overrides:
        return
    sweeper = config.hydra.sweeper
    try:
        study = optuna.load_study(study_name=str(sweeper.study_name), storage=str(sweeper.storage))
        running = [t for t in study.get_trials(deepcopy=False) if t.state.name == "RUNNING"]
        for number in match_trials(running, [(set(overrides), None)]):
            trial = next(t for t in running if t.number == number)
            # marked, so that a resumed sweep runs this point's share again instead of counting it as done
            optuna.trial.Trial(study, trial._trial_id).set_user_attr("interrupted", True)
            study.tell(number, state=optuna.trial.TrialState.FAIL)
            log.info("Optuna trial %d marked FAIL (interrupted)", number)
    except Exception:
        log.exception("could not close the interrupted Optuna trial")


def summarize_sweep(client, parent_run_id: str, config: DictConfig) -> dict[str, Any] | None:
    """Record the study's outcome on the parent run; returns the best trial (None if none completed)."""
    import optuna
    import pandas as pd

    sweeper = config.hydra.sweeper
    study = optuna.load_study(study_name=str(sweeper.study_name), storage=str(sweeper.storage))
    experiment_id = client.get_run(parent_run_id).info.experiment_id
    children = client.search_runs([experiment_id], f"tags.mlflow.parentRunId = '{parent_run_id}'",
                                  max_results=5000)
    trials = study.get_trials(deepcopy=False)
    # runs of this study from every sweep that worked on it (a resumed study spans several parents)
    tagged = client.search_runs([experiment_id], f"tags.optuna_study = '{study.study_name}'", max_results=5000)
    run_of_trial = {int(r.data.tags["optuna_trial"]): r.info.run_id for r in tagged if "optuna_trial" in r.data.tags}
    untagged = [r for r in children if "optuna_trial" not in r.data.tags]
    unmapped = [t for t in trials if t.number not in run_of_trial]
    for number, run in match_trials_to_runs(unmapped, untagged).items():
        client.set_tag(run.info.run_id, "optuna_trial", str(number))
        client.set_tag(run.info.run_id, "optuna_study", study.study_name)
        run_of_trial[number] = run.info.run_id

    states = pd.Series([t.state.name for t in trials])
    client.log_metric(parent_run_id, "n_trials_total", len(trials))
    client.log_metric(parent_run_id, "n_trials_complete", int((states == "COMPLETE").sum()))
    client.log_metric(parent_run_id, "n_trials_failed", int((states == "FAIL").sum()))
    client.set_tag(parent_run_id, "n_children", str(len(children)))

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        table = study.trials_dataframe(attrs=("number", "state", "value", "params", "datetime_start",
                                              "duration", "user_attrs"))
        table["mlflow_run_id"] = table["number"].map(run_of_trial)
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
        for name, plot in _plots(study).items():
            path = tmp_path / f"{name}.png"
            plot.figure.savefig(path, dpi=110, bbox_inches="tight")
            client.log_artifact(parent_run_id, str(path), "sweep")
    return {"run_id": run_of_trial.get(best.number, "unknown"), "metric": f"best_{monitor}",
            "value": float(best.value), "params": best.params}


def _plots(study) -> dict[str, Any]:
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna
    from optuna.visualization import matplotlib as ovm

    plots = {}
    plt.close("all")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        plots["optimization_history"] = ovm.plot_optimization_history(study)
    completed = [t for t in study.trials if t.state.name == "COMPLETE"]
    if len(completed) >= 2 and completed[0].params:
        # Optuna 2.10's own importance plot calls an API matplotlib 3.9 removed, and its default fANOVA
        # evaluator fails on numpy 2: compute mean-decrease-impurity importances, draw the bars here.
        try:
            importances = optuna.importance.get_param_importances(
                study, evaluator=optuna.importance.MeanDecreaseImpurityImportanceEvaluator(seed=0))
        except (ValueError, RuntimeError) as exc:
            log.warning("no parameter-importance plot: %s", exc)
        else:
            names = list(importances)[::-1]
            fig, ax = plt.subplots(figsize=(6, 0.5 + 0.45 * len(names)))
            ax.barh(names, [importances[n] for n in names], color="tab:blue")
            ax.set_xlabel("importance (mean decrease impurity)")
            ax.set_title("Hyperparameter importances")
            plots["param_importances"] = ax
    return plots

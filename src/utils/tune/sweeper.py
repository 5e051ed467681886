"""The Optuna sweeper of this workspace: Hydra's official hydra-optuna-sweeper, with trials that know their jobs.

Selected in the model configs as `override hydra/sweeper: workspace_optuna`; same command line as the official
plugin (`interval`, `choice`, `range`, `tag(log, ...)`, `hydra.sweeper.params`), same sampler options. What it
adds, on top of the official implementation's search-space parsing and trial configuration:

* **Each job receives its Optuna trial.** The trial's id reaches the job through `hydra.job.env_set`, so it works
  with every launcher (in-process, joblib, submitit); the job reports each epoch's monitored value to the trial,
  stores its MLflow run id on the trial (`mlflow_run_id`) and tags its run with `optuna_study`/`optuna_trial`.
  Jobs are numbered by their trials (`hydra.job.num`, the multirun sub-folder), and the launch line names the
  trial once with its sampled values (`#4 : lr=0.003728 dropout=0.32`), without that plumbing.
* **Pruning.** The job asks the study's pruner (the task config's `pruner` node) after each report and stops a
  hopeless trial; it returns a `PrunedTrial` and the trial ends PRUNED.
* **One budget.** `n_trials` counts the study's finished trials (COMPLETE, PRUNED, FAIL): a re-run continues up
  to it, and N workers on the same study (same command, same storage) share it. Asking for trials happens under a
  lock (a file lock for SQLite, an advisory lock on PostgreSQL), so workers never overshoot.
* **Heartbeats.** Trials send a heartbeat while their job runs; a trial whose worker died is failed by the next
  worker or resume that looks at the study, and its point is queued again (a FAIL that was retried, or one cut
  short by Ctrl-C, does not count towards `n_trials`).
* **No replays.** A seeded sampler is seeded per trial (`seed + trial number`): one worker is reproducible, a
  resumed study does not replay its first points, and two workers never propose the same points.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import re
import sys
import threading
import warnings
from pathlib import Path
from typing import Any

from hydra.core.utils import JobStatus
from hydra_plugins.hydra_optuna_sweeper import _impl

from src.utils.config.targets import SAMPLERS, instantiate
from src.utils.core.errors import WorkspaceError
from src.utils.tune import launchers
from src.utils.tune.checks import check_settings, parse_space
from src.utils.tune.launch_lines import LAUNCH_LINE, show_launch_lines
from src.utils.tune.launchers import LostJob
from src.utils.tune.study import budget, heartbeats, make_storage, open_study, queue_again, study_lock
from src.utils.tune.trial import STUDY_ENV, TRIAL_ENV, PrunedTrial, trial_title

log = logging.getLogger(__name__)


SWEEP_FAILED = threading.Event()  # set when this process's sweep ended in an exception (an interrupt included)

SAMPLER_DONE = threading.Event()  # set when a sampler asked the study to stop after the last trial told

class StopAware:
    """A study whose `tell` survives the sampler's `study.stop()`: GridSampler and BruteForceSampler call it once
    every point has been tried, which Optuna refuses outside `study.optimize` (a RuntimeError raised after the trial
    is stored). Here it ends the sweep instead."""

    def __init__(self, study) -> None:
        self._study = study

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)

    def tell(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return self._study.tell(*args, **kwargs)
        except RuntimeError as exc:
            if "Study.stop" not in str(exc):
                raise
            SAMPLER_DONE.set()
            return None

def consecutive(trials: list) -> list[list]:
    """The trials (sorted by number) in runs of consecutive numbers: each run is launched with its first number as
    the first job number, so a job's number (hydra.job.num, its multirun sub-folder) is its trial's number."""
    groups: list[list] = []
    for trial in sorted(trials, key=lambda t: t.number):
        if groups and trial.number == groups[-1][-1].number + 1:
            groups[-1].append(trial)
        else:
            groups.append([trial])
    return groups

def quoted(value: str) -> str:
    """A string as a quoted Hydra override value. Hydra unescapes backslashes only where they precede a quote or
    end the value, so only those are doubled (a backslash inside a value stays one), and quotes are escaped."""
    body = re.sub(r"(\\+)(?='|$)", lambda m: m.group(1) * 2, value)
    return "'" + body.replace("'", "\\'") + "'"


class WorkspaceSweeperImpl(_impl.OptunaSweeperImpl):
    """The official implementation with the trial loop replaced: shared budget, trial handover, pruning."""

    def __init__(self, sampler_config: Any, heartbeat_interval: int | None, grace_period: int | None,
                 **kwargs: Any) -> None:
        self.sampler_config = sampler_config
        self.heartbeat_interval, self.grace_period = heartbeat_interval, grace_period
        super().__init__(sampler=self._sampler(None), **kwargs)

    def _sampler(self, trial_number: int | None):
        seed = self.sampler_config.get("seed")
        if trial_number is None or seed is None or "GridSampler" in str(self.sampler_config.get("_target_")):
            return instantiate(self.sampler_config, allowed=SAMPLERS)
        return instantiate(self.sampler_config, seed=int(seed) + trial_number, allowed=SAMPLERS)

    def sweep(self, arguments: list[str]) -> None:
        SWEEP_FAILED.clear()
        try:
            self._sweep(arguments)
        except WorkspaceError as exc:  # found once the sweep runs (e.g. the scheduler refused its jobs): one line
            SWEEP_FAILED.set()
            log.debug("user error", exc_info=True)
            print(f"error: {exc}", file=sys.stderr, flush=True)
            raise SystemExit(exc.exit_code) from exc
        except BaseException:  # Hydra 1.4 calls on_multirun_end either way: the sweep callback reads this
            SWEEP_FAILED.set()
            raise

    def _sweep(self, arguments: list[str]) -> None:
        _impl.optuna.logging.set_verbosity(logging.WARNING)  # not a line per study load; ours say what happens
        space, n_trials = self._space(arguments)
        directions = self._get_directions()
        url = str(self.storage)
        storage = make_storage(url, self.heartbeat_interval, self.grace_period)
        study = open_study(url, str(self.study_name), directions, storage=storage, sampler=self.sampler)
        done = budget(study.get_trials(deepcopy=False))["finished"]
        log.info("Optuna study %r (%s): %d of n_trials=%d finished, %d to go", study.study_name,
                 type(self.sampler).__name__, done, n_trials, max(0, n_trials - done))
        while trials := self._ask(study, storage, url, n_trials):
            returns = self._launch(study, storage, trials, space)
            told = []
            for trial, ret in zip(trials, returns, strict=True):
                if getattr(ret, "job", None):  # a submitit job: its id, state and output files go to the run
                    record_trial_job(trial, ret)
                told.append(self._tell(study, trial, ret, len(directions)))
            failures = [f for f in told if f is not None]
            if failures and len(failures) / len(returns) > self.max_failure_rate:
                raise failures[0]
            if SAMPLER_DONE.is_set():  # GridSampler, BruteForceSampler: every point of the space has been tried
                log.info("the %s has tried every point of the search space", type(study.sampler).__name__)
                break
        self._save_results(study, len(directions))

    def _space(self, arguments: list[str]) -> tuple[tuple[dict, dict, list], int]:
        """The search space (the official plugin's reading of config and command line), checked, and the number
        of trials it allows (a grid has as many as its points)."""
        self._process_searchspace_config()
        arguments = [*self._parse_sweeper_params_config(), *arguments]
        space = parse_space(arguments)
        check_settings(self.n_trials, space[0], arguments)
        n_trials = int(self.n_trials)
        if isinstance(self.sampler, functools.partial):  # GridSampler: built from the space
            grid = {name: self._to_grid_sampler_choices(d) for name, d in space[0].items()}
            self.sampler = self.sampler(grid)
            n_trials = min(n_trials, math.prod(len(v) for v in grid.values()))
        return space, n_trials

    def _ask(self, study, storage, url: str, n_trials: int) -> list:
        """The next batch of trials (at most n_jobs, within what is left of n_trials), under the study lock."""
        import optuna

        with study_lock(url, study.study_name), warnings.catch_warnings():
            # heartbeats with ask-and-tell: the heartbeat thread is ours (see heartbeats())
            warnings.filterwarnings("ignore", "Heartbeat of storage is supposed to be used with Study.optimize")
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            if storage.get_heartbeat_interval():
                optuna.storages.fail_stale_trials(study)
            used = budget(study.get_trials(deepcopy=False))
            free = n_trials - used["finished"] - used["running"] - used["waiting"]
            trials = []
            for _ in range(min(self.n_jobs, max(0, free) + used["waiting"])):
                if not self.is_grid():
                    study.sampler = self._sampler(len(study.get_trials(deepcopy=False)))
                trials.append(study.ask())
        return sorted(trials, key=lambda t: t.number)

    def _launch(self, study, storage, trials: list, space: tuple[dict, dict, list]) -> list:
        """The trials' jobs, numbered by their trials, each handed its trial; their returns."""
        overrides = []
        for trial in trials:
            if not self.is_grid():
                study.sampler = self._sampler(trial.number)
            (job,) = self._configure_trials([trial], *space)
            overrides.append((*job, f"++hydra.job.env_set.{TRIAL_ENV}={trial._trial_id}",
                              f"++hydra.job.env_set.{STUDY_ENV}={quoted(study.study_name)}"))
            LAUNCH_LINE.titles[trial.number] = trial_title(trial.params)
        show_launch_lines()
        try:
            with heartbeats(storage, [t._trial_id for t in trials]):
                returns, start = [], 0
                for group in consecutive(trials):
                    returns += self.launcher.launch(overrides[start:start + len(group)],
                                                    initial_job_idx=group[0].number)
                    start += len(group)
            return returns
        except BaseException:  # Ctrl-C, SIGTERM: the trials end FAIL, their points queued for the resume
            self._interrupted(study, trials)
            raise

    def _interrupted(self, study, trials: list) -> None:
        from optuna.trial import TrialState

        if isinstance(self.launcher, launchers.JobsMixin):  # its jobs are cancelled: end what they left
            with contextlib.suppress(Exception):
                launchers.end_interrupted([r for r in map(run_id_of, trials) if r])
        for trial in trials:
            with contextlib.suppress(Exception):
                trial.set_user_attr("interrupted", True)
                study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
                queue_again(study, trial.number)

    def _save_results(self, study, n_objectives: int) -> None:
        from omegaconf import OmegaConf

        finished = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
        results: dict[str, Any] = {"name": "optuna", "study": study.study_name}
        if finished and n_objectives == 1:
            results |= {"best_params": study.best_trial.params, "best_value": study.best_trial.value}
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)  # a study with nothing left to run launched no job into it
        OmegaConf.save(OmegaConf.create(results), sweep_dir / "optimization_results.yaml")

    def is_grid(self) -> bool:
        import optuna

        return isinstance(self.sampler, optuna.samplers.GridSampler)

    @staticmethod
    def _tell(study, trial, ret, n_objectives: int) -> BaseException | None:
        SAMPLER_DONE.clear()
        study = StopAware(study)
        """Tell Optuna how the job ended; returns the failure, if it failed."""
        from optuna.trial import TrialState

        value = ret._return_value
        if ret.status == JobStatus.COMPLETED and isinstance(value, PrunedTrial):
            study.tell(trial, state=TrialState.PRUNED, skip_if_finished=True)
            log.info("trial %d pruned at step %d", trial.number, value.step)
            return None
        if ret.status == JobStatus.COMPLETED:
            try:
                values = [float(v) for v in (value if n_objectives > 1 else [value])]
                if len(values) != n_objectives or not all(map(math.isfinite, values)):
                    raise ValueError(f"the job returned {value!r}, not {n_objectives} finite number(s)")
                study.tell(trial, values, skip_if_finished=True)
                return None
            except (TypeError, ValueError) as exc:
                failure: BaseException = exc
        elif isinstance(value, LostJob):  # the scheduler ended the job (scancel, time limit, memory, node)
            study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
            queue_again(study, trial.number)
            log.warning("trial %d failed: %s; its point is asked again", trial.number, value)
            return None
        else:
            failure = value if isinstance(value, BaseException) else RuntimeError(f"job failed: {value!r}")
        study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
        log.warning("trial %d failed: %s", trial.number, str(failure).splitlines()[0] if str(failure) else
                    type(failure).__name__)
        return failure

def run_id_of(trial) -> str | None:
    """The MLflow run id the trial's job stored (read from the storage: `trial.user_attrs` is this process's
    cached copy, made before the job ran)."""
    return trial.study._storage.get_trial(trial._trial_id).user_attrs.get("mlflow_run_id")

def record_trial_job(trial, ret) -> None:
    """The job's id, state and output files on the trial's run (see src/utils/tune/launchers.py)."""
    value = ret._return_value if ret.status != JobStatus.COMPLETED else None
    try:
        launchers.record_job(run_id_of(trial), ret.job, value if isinstance(value, LostJob) else None)
    except Exception as exc:  # the trial's outcome still counts; only its evidence is missing
        log.warning("trial %d: its job's logs could not be attached: %s", trial.number, exc)

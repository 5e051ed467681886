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
import copy
import functools
import logging
import math
import os
import re
import sys
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hydra.core.utils import JobStatus
from hydra.utils import instantiate
from hydra_plugins.hydra_optuna_sweeper import _impl
from omegaconf import DictConfig

from src.utils import launchers
from src.utils.errors import WorkspaceError
from src.utils.launchers import LostJob

# the plugin (config node and class, registered with Hydra) imports no Optuna: src/utils/optuna_plugin.py
from src.utils.optuna_plugin import WorkspaceOptunaSweeper, WorkspaceOptunaSweeperConf  # noqa: F401

log = logging.getLogger(__name__)
_impl.optuna.logging.set_verbosity(logging.WARNING)  # not a line per study load; our own lines say what happens
# in a sweep job's environment: its trial's id and study (the job's own config resolves another study name: the
# name comes from the sweep command's overrides, and the job's overrides differ)
TRIAL_ENV, STUDY_ENV = "WORKSPACE_OPTUNA_TRIAL", "WORKSPACE_OPTUNA_STUDY"
SWEEP_FAILED = threading.Event()  # set when this process's sweep ended in an exception (an interrupt included)
SAMPLER_TARGETS = ("hydra_plugins.hydra_optuna_sweeper.*", "optuna.samplers.*")
PRUNER_TARGETS = ("optuna.pruners.*", "src.*")


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


class PrunedTrial(float):
    """What a pruned job returns: its last reported value, and the step it was pruned at."""

    def __new__(cls, value: float, step: int) -> PrunedTrial:
        obj = super().__new__(cls, value)
        obj.step = step
        return obj

    def __reduce__(self):  # launchers that pickle job returns (joblib, submitit) keep the type
        return (PrunedTrial, (float(self), self.step))


# --- the study: storage, budget, lock ---------------------------------------------------------------------------

def make_storage(url: str, heartbeat_interval: int | None = None, grace_period: int | None = None):
    """An RDB storage for `url`; with a heartbeat, stale trials are failed and their point queued again."""
    import optuna

    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 60}}
    if heartbeat_interval:
        kwargs |= {"heartbeat_interval": int(heartbeat_interval), "grace_period": int(grace_period or 0) or None,
                   "heartbeat_stale_trial_callback": retry_callback()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeats: stable since 2.8
        return optuna.storages.RDBStorage(url, **kwargs)


def retry_callback():
    """Queues a failed trial's point again (its params in a new WAITING trial), up to 3 times."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=3)


@contextlib.contextmanager
def study_lock(url: str, study_name: str) -> Iterator[None]:
    """Serialise study creation and trial asks across processes (and machines, on PostgreSQL)."""
    if url.startswith("sqlite:///"):
        from filelock import FileLock

        with FileLock(url.removeprefix("sqlite:///") + ".lock", timeout=600):
            yield
    elif url.startswith("postgresql"):
        import zlib

        import sqlalchemy

        key = zlib.crc32(study_name.encode())
        engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
        with engine.connect() as con:
            con.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": key})
            try:
                yield
            finally:
                con.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
        engine.dispose()
    else:  # other databases: Optuna's own transactions only; workers may run a trial or two beyond n_trials
        yield


def open_study(url: str, study_name: str, directions: list[str], storage=None, sampler=None):
    """Create or load the study (under the study lock: workers on a fresh SQLite database race on its schema)."""
    import optuna

    with study_lock(url, study_name):
        return optuna.create_study(study_name=study_name, storage=storage or make_storage(url), sampler=sampler,
                                   directions=directions, load_if_exists=True)


def budget(trials: list) -> dict[str, int]:
    """How much of n_trials the study's trials take: finished ones (less those retried: a stale or interrupted
    trial whose point was queued again), and running and waiting ones."""
    retried = {n for t in trials for n in t.system_attrs.get("retry_history", [])}
    states = [t.state.name for t in trials if not (t.state.name == "FAIL" and t.number in retried)]
    return {"finished": sum(s in ("COMPLETE", "PRUNED", "FAIL") for s in states),
            "running": states.count("RUNNING"), "waiting": states.count("WAITING")}


def queue_again(study, trial_number: int) -> None:
    """Queue a failed trial's point again (the same as a stale trial gets): it then does not count."""
    frozen = copy.deepcopy(study.get_trials(deepcopy=False)[trial_number])
    frozen.user_attrs = {k: v for k, v in frozen.user_attrs.items() if k not in ("interrupted", "mlflow_run_id")}
    retry_callback()(study, frozen)


@contextlib.contextmanager
def heartbeats(storage, trial_ids: list[int]) -> Iterator[None]:
    """Record the trials' heartbeats while their jobs run (nothing when the storage has no heartbeat)."""
    if not storage.get_heartbeat_interval():
        yield
        return
    stop = threading.Event()

    def beat() -> None:
        while True:
            for trial_id in trial_ids:
                with contextlib.suppress(Exception):  # a busy database: the next beat is in time
                    storage.record_heartbeat(trial_id)
            if stop.wait(storage.get_heartbeat_interval()):
                return

    thread = threading.Thread(target=beat, name="optuna-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


# --- the sweeper ------------------------------------------------------------------------------------------------

def check_settings(n_trials: Any, distributions: dict[str, Any], overrides: list[str]) -> None:
    """Bad sweep settings, before any trial starts: one line each."""
    from optuna.distributions import FloatDistribution, IntDistribution

    if not isinstance(n_trials, int) or isinstance(n_trials, bool) or n_trials < 1:
        raise WorkspaceError(f"hydra.sweeper.n_trials={n_trials} is not allowed: a whole number >= 1")
    for name, dist in distributions.items():
        if isinstance(dist, FloatDistribution | IntDistribution) and not dist.low < dist.high:
            given = next((o for o in overrides if o.split("=", 1)[0].lstrip("+~") == name), name)
            raise WorkspaceError(f"{given}: the interval is empty; give a lower and a higher end, "
                                 f"e.g. {name}=interval({dist.low},{dist.low * 10 or 1})")


def check_pruner(config: Any) -> None:
    """The `pruner` node builds an Optuna pruner, or one error line says what to write instead."""
    import optuna

    example = "e.g. pruner=median, pruner=none, or '~pruner' '+pruner={_target_:optuna.pruners.MedianPruner}'"
    target = config.get("_target_") if isinstance(config, dict | DictConfig) else None
    if not target:
        raise WorkspaceError(f"pruner={config} is not allowed: a node with the _target_ of an Optuna pruner "
                             f"({example})")
    check_resources(config, "pruner")
    try:
        pruner = job_pruner(config)
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WorkspaceError(f"pruner._target_={target} cannot be built: {reason} ({example})") from exc
    if not isinstance(pruner, optuna.pruners.BasePruner):
        raise WorkspaceError(f"pruner._target_={target} is not an Optuna pruner ({example})")


def check_resources(config: Any, path: str) -> None:
    """Successive halving's settings, which Optuna checks only when the first trial asks (a ZeroDivisionError
    in the middle of a sweep): reduction_factor >= 2, 1 <= min_resource <= max_resource."""
    rf, low, high = (config.get(k) for k in ("reduction_factor", "min_resource", "max_resource"))
    if rf is not None and (not isinstance(rf, int) or isinstance(rf, bool) or rf < 2):
        raise WorkspaceError(f"{path}.reduction_factor={rf} is not allowed: a whole number >= 2 (3 keeps 1 trial in "
                             f"3 at each rung)")
    ints = {k: v for k, v in (("min_resource", low), ("max_resource", high)) if isinstance(v, int)}
    if any(v < 1 for v in ints.values()) or len(ints) == 2 and low > high:
        given = " and ".join(f"{path}.{k}={v}" for k, v in ints.items())
        raise WorkspaceError(f"{given} {'are' if len(ints) == 2 else 'is'} not allowed: whole numbers with "
                             f"1 <= min_resource <= max_resource (steps: epochs, or folds with fold=all)")
    for key, node in config.items():  # PatientPruner's wrapped_pruner, by_steps' epochs and folds
        if isinstance(node, dict | DictConfig) and "_target_" in node:
            check_resources(node, f"{path}.{key}")


def by_steps(fold: Any, epochs: Any, folds: Any) -> Any:
    """Hydra target of a pruner option that depends on what the steps are: the pruner `epochs` for a single-fold
    sweep (each epoch is a step), `folds` with fold=all (each fold is a step); both are built from their nodes."""
    return folds if str(fold) == "all" else epochs


def parse_space(arguments: list[str]) -> tuple[dict, dict, list]:
    """The official plugin's reading of the search space: distributions, fixed params, fixed overrides."""
    from hydra.errors import HydraException

    try:
        dists, fixed, fixed_overrides = _impl.create_params_from_overrides(arguments)
    except (ValueError, HydraException) as exc:  # e.g. an inverted interval: Optuna refuses low > high
        raise WorkspaceError(f"the sweep {' '.join(arguments)} cannot be run: {str(exc).splitlines()[0]}; "
                             f"give each interval(low,high) with low < high") from exc
    for name in fixed:
        dists.pop(name, None)
    return dists, fixed, fixed_overrides


def short(value: Any) -> str:
    """A parameter value for names and lines: numbers to 4 significant digits (0.003728, 0.32, 64)."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def trial_title(params: dict[str, Any]) -> str:
    """A trial's sampled parameters, short: `lr=0.003728 dropout=0.32`."""
    return " ".join(f"{k}={short(v)}" for k, v in params.items())


# Hydra's launchers log each job as `#<job number> : <its overrides>`, the overrides that hand a job its trial
# (hydra.job.env_set...) and the sweep's fixed ones included. The jobs are numbered by their trials here, and the
# line keeps the trial's sampled parameters only: `#4 : lr=0.003728 dropout=0.32`.
LAUNCHER_LOGGERS = ("hydra._internal.core_plugins.basic_launcher", "hydra_plugins.hydra_joblib_launcher._core",
                    "hydra_plugins.hydra_submitit_launcher.submitit_launcher", "src.utils.launchers")
_LAUNCH_LINE = re.compile(r"^(\s*)#(\d+) : ")


class LaunchLine(logging.Filter):
    """Rewrites a launcher's `#<n> : <overrides>` line to `#<n> : <sampled parameters>` for the trials it knows."""

    def __init__(self) -> None:
        super().__init__()
        self.titles: dict[int, str] = {}  # trial number -> its sampled parameters, as shown

    def filter(self, record: logging.LogRecord) -> bool:
        match = _LAUNCH_LINE.match(str(record.msg)) if isinstance(record.msg, str) and not record.args else None
        if match and int(match[2]) in self.titles:
            record.msg = f"{match[1]}#{match[2]} : {self.titles[int(match[2])]}"
        return True


LAUNCH_LINE = LaunchLine()


def show_launch_lines() -> None:
    for name in LAUNCHER_LOGGERS:
        if LAUNCH_LINE not in logging.getLogger(name).filters:
            logging.getLogger(name).addFilter(LAUNCH_LINE)


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
    """A string as a quoted Hydra override value."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


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
            return instantiate(self.sampler_config, _execution_whitelist_=SAMPLER_TARGETS)
        return instantiate(self.sampler_config, seed=int(seed) + trial_number, _execution_whitelist_=SAMPLER_TARGETS)

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
        import optuna
        from omegaconf import OmegaConf

        self._process_searchspace_config()
        arguments = [*self._parse_sweeper_params_config(), *arguments]
        dists, fixed, fixed_overrides = parse_space(arguments)
        check_settings(self.n_trials, dists, arguments)
        n_trials = int(self.n_trials)
        if isinstance(self.sampler, functools.partial):  # GridSampler: built from the space
            grid = {name: self._to_grid_sampler_choices(d) for name, d in dists.items()}
            self.sampler = self.sampler(grid)
            n_trials = min(n_trials, math.prod(len(v) for v in grid.values()))
        directions = self._get_directions()
        url = str(self.storage)
        storage = make_storage(url, self.heartbeat_interval, self.grace_period)
        study = open_study(url, str(self.study_name), directions, storage=storage, sampler=self.sampler)
        done = budget(study.get_trials(deepcopy=False))["finished"]
        log.info("Optuna study %r (%s): %d of n_trials=%d finished, %d to go", study.study_name,
                 type(self.sampler).__name__, done, n_trials, max(0, n_trials - done))

        while True:
            with study_lock(url, study.study_name), warnings.catch_warnings():
                # heartbeats with ask-and-tell: the heartbeat thread is ours (see heartbeats())
                warnings.filterwarnings("ignore", "Heartbeat of storage is supposed to be used with Study.optimize")
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                if storage.get_heartbeat_interval():
                    optuna.storages.fail_stale_trials(study)
                used = budget(study.get_trials(deepcopy=False))
                free = n_trials - used["finished"] - used["running"] - used["waiting"]
                size = min(self.n_jobs, max(0, free) + used["waiting"])
                if size <= 0:
                    break
                trials = []
                for _ in range(size):
                    if not self.is_grid():
                        study.sampler = self._sampler(len(study.get_trials(deepcopy=False)))
                    trials.append(study.ask())
            trials.sort(key=lambda t: t.number)
            overrides = []
            for trial in trials:
                if not self.is_grid():
                    study.sampler = self._sampler(trial.number)
                (job,) = self._configure_trials([trial], dists, fixed, fixed_overrides)
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
            except BaseException:  # Ctrl-C, SIGTERM: the trials end FAIL, their points queued for the resume
                if isinstance(self.launcher, launchers.JobsMixin):  # its jobs are cancelled: end what they left
                    with contextlib.suppress(Exception):
                        launchers.end_interrupted([r for r in map(run_id_of, trials) if r])
                for trial in trials:
                    with contextlib.suppress(Exception):
                        trial.set_user_attr("interrupted", True)
                        study.tell(trial, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
                        queue_again(study, trial.number)
                raise
            told = []
            for trial, ret in zip(trials, returns, strict=True):
                if getattr(ret, "job", None):  # a submitit job: its id, state and output files go to the run
                    record_job(trial, ret)
                told.append(self._tell(study, trial, ret, len(directions)))
            failures = [f for f in told if f is not None]
            if failures and len(failures) / len(returns) > self.max_failure_rate:
                raise failures[0]
            if SAMPLER_DONE.is_set():  # GridSampler, BruteForceSampler: every point of the space has been tried
                log.info("the %s has tried every point of the search space", type(study.sampler).__name__)
                break

        finished = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
        results: dict[str, Any] = {"name": "optuna", "study": study.study_name}
        if finished and len(directions) == 1:
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


def record_job(trial, ret) -> None:
    """The job's id, state and output files on the trial's run (see src/utils/launchers.py)."""
    value = ret._return_value if ret.status != JobStatus.COMPLETED else None
    try:
        launchers.record_job(run_id_of(trial), ret.job, value if isinstance(value, LostJob) else None)
    except Exception as exc:  # the trial's outcome still counts; only its evidence is missing
        log.warning("trial %d: its job's logs could not be attached: %s", trial.number, exc)


# --- the job's side ---------------------------------------------------------------------------------------------

def job_pruner(config: Any):
    """The pruner a job asks: the config's `pruner` node built (Optuna's NopPruner for none)."""
    import optuna

    if config is None:
        return optuna.pruners.NopPruner()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # e.g. WilcoxonPruner's, per trial
        return instantiate(config, _execution_whitelist_=PRUNER_TARGETS)


@functools.cache
def job_storage(url: str):
    """The storage the jobs of this process report to: one per URL, so trials launched in the same process (the
    basic launcher) do not each connect and check the schema again."""
    return make_storage(url)


class TrialLink:
    """The Optuna trial this job runs, when it runs one: links it with the MLflow run, reports, prunes."""

    def __init__(self, storage_url: str, study_name: str, trial_id: int, pruner_config: Any) -> None:
        import optuna

        self.study_name = study_name
        self.study = optuna.load_study(study_name=study_name, storage=job_storage(storage_url),
                                       pruner=job_pruner(pruner_config))
        self.trial = optuna.trial.Trial(self.study, trial_id)
        self.number = self.trial.number
        self.pruned_at: tuple[float, int] | None = None

    @classmethod
    def current(cls, hydra_cfg: DictConfig, pruner_config: Any) -> TrialLink | None:
        link, study_name = os.environ.get(TRIAL_ENV), os.environ.get(STUDY_ENV)
        sweeper = hydra_cfg.get("sweeper") or {}
        if not link or not study_name or "storage" not in sweeper:
            return None
        return cls(str(sweeper.storage), study_name, int(link), pruner_config)

    def attach(self, run_id: str) -> dict[str, str]:
        """Store the MLflow run id on the trial; the tags that name the trial on the run."""
        self.trial.set_user_attr("mlflow_run_id", run_id)
        return {"optuna_study": self.study_name, "optuna_trial": str(self.number)}

    def report(self, value: float, step: int) -> bool:
        """Report the monitored value at `step`; True when the pruner says stop."""
        if not math.isfinite(value):
            return False
        self.trial.report(float(value), step)
        if self.trial.should_prune():
            self.pruned_at = (float(value), step)
            return True
        return False

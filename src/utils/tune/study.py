"""The Optuna study behind a sweep: its storage (SQLite or PostgreSQL, with heartbeats), the lock that serialises
asks across workers, the shared `n_trials` budget, and queuing a failed trial's point again. Imports Optuna lazily
and nothing of src besides src.utils.core."""

from __future__ import annotations

import contextlib
import copy
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any


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

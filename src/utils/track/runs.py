"""One tracked MLflow run per stage execution, with its log attached whatever happens; interrupts."""

from __future__ import annotations

import contextlib
import logging
import signal
import tempfile
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import mlflow

from src.utils.core.errors import RunRefused, WorkspaceError, in_multirun
from src.utils.track.liveness import Heartbeat, process_tags
from src.utils.track.tracking import get_or_create_experiment, log_params_flat, setup_mlflow, standard_tags

log = logging.getLogger(__name__)
INTERRUPTED = threading.Event()  # set once a run of this process ended KILLED


def _raise_interrupt(signum: int, frame: Any) -> None:
    INTERRUPTED.set()
    raise KeyboardInterrupt(f"received {signal.Signals(signum).name}")


def install_interrupt_handlers() -> None:
    """SIGINT and SIGTERM both become KeyboardInterrupt and are remembered in INTERRUPTED.

    Python's default for SIGTERM is to die on the spot: no `finally`, no log upload, a run left RUNNING.
    As a KeyboardInterrupt it unwinds like Ctrl-C, so runs end KILLED with their evidence kept.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    for sig, default in ((signal.SIGTERM, signal.SIG_DFL), (signal.SIGINT, signal.default_int_handler)):
        if signal.getsignal(sig) in (default, None):
            signal.signal(sig, _raise_interrupt)


def _job_log_files() -> list[Path]:
    """The files the root logger writes to: Hydra's job log (<output dir>/<job name>.log) in a Hydra run."""
    files = [Path(h.baseFilename) for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler)]
    return [f for f in files if f.is_file()]  # not /dev/null (pytest's stand-in handler)


@contextlib.contextmanager
def _run_log() -> Iterator[list[Path]]:
    """Hydra's job log of this run; a temporary one where job logging is off, so a run always keeps its log."""
    files = _job_log_files()
    if files:
        yield files
        return
    with tempfile.TemporaryDirectory() as tmp:
        handler = logging.FileHandler(Path(tmp) / "run.log", encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [%(name)s] %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        if root.level > logging.INFO or root.level == logging.NOTSET:
            root.setLevel(logging.INFO)
        try:
            yield [Path(handler.baseFilename)]
        finally:
            root.removeHandler(handler)
            handler.close()


def _describe(run: mlflow.ActiveRun, experiment: str, tags: Mapping[str, str], params: Mapping[str, Any] | None,
              note: str | None) -> None:
    """A new run's tags, params and description (`note`, shown in the MLflow UI)."""
    mlflow.set_tags(tags)
    if note:
        mlflow.set_tag("mlflow.note.content", str(note))
    if params:
        log_params_flat(params)
    log.info("MLflow run %s in experiment %r", run.info.run_id, experiment)


@contextlib.contextmanager
def tracked_run(
    stage: str,
    folder: str,
    experiment: str,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
    run_name: str | None = None,
    system_metrics: bool = False,
    note: str | None = None,
    path: str | None = None,
) -> Iterator[mlflow.ActiveRun]:
    """Start a run in `experiment` with the standard tags and `params`; end it FINISHED, FAILED or KILLED.

    The run's log (Hydra's job log) is attached under logs/ in every case, so a failed or interrupted run keeps
    its evidence. `system_metrics` samples CPU, memory (and GPUs) into the run while it lasts; `note` (the `note=`
    of the command line) becomes the run's description.
    """
    install_interrupt_handlers()
    setup_mlflow()
    experiment_id = get_or_create_experiment(experiment)
    heartbeat = Heartbeat()  # the run says it is alive until it ends; a run whose process died is ended FAILED
    with _run_log() as log_files:
        run = mlflow.start_run(experiment_id=experiment_id, run_name=run_name, log_system_metrics=system_metrics,
                               tags={**process_tags(), "log_file": str(log_files[0])})
        status, refused = "FINISHED", False
        try:
            heartbeat.start(run.info.run_id)
            _describe(run, experiment, {**standard_tags(stage, folder, path), **(tags or {})}, params, note)
            yield run
        except (KeyboardInterrupt, SystemExit) as exc:
            # Ctrl-C, SIGTERM, or Lightning's own exit after it handled one (SystemExit/SIGTERMException);
            # our user errors never get here as SystemExit: they are WorkspaceErrors until the entry point.
            status = "KILLED"
            INTERRUPTED.set()
            log.error("interrupted (%s); run %s ends KILLED", type(exc).__name__, run.info.run_id)
            raise
        except WorkspaceError as exc:
            status, refused = "FAILED", isinstance(exc, RunRefused)
            # a user error is one line on the console; in a sweep the trial's log keeps the traceback too
            log.error("%s", exc, exc_info=in_multirun())
            raise
        except BaseException:
            status = "FAILED"
            log.exception("run %s failed", run.info.run_id)
            raise
        finally:
            heartbeat.stop()
            try:
                for handler in logging.getLogger().handlers:
                    handler.flush()
                for path in log_files:
                    if path.is_file():
                        mlflow.log_artifact(str(path), artifact_path="logs")
            finally:
                mlflow.end_run(status=status)
                if refused:  # nothing of the user's in it: the store is left as if the command had been refused
                    mlflow.MlflowClient().delete_run(run.info.run_id)

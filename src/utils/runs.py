"""One tracked MLflow run per stage execution, with its log file attached whatever happens."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import mlflow

from src.utils.errors import WorkspaceError, in_multirun
from src.utils.logs import start_log_file, stop_log_file
from src.utils.tracking import get_or_create_experiment, log_params_flat, setup_mlflow, standard_tags

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


@contextlib.contextmanager
def tracked_run(
    stage: str,
    folder: str,
    experiment: str,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
    run_name: str | None = None,
    nested: bool = False,
) -> Iterator[mlflow.ActiveRun]:
    """Start a run in `experiment` with the standard tags and `params`; end it FINISHED, FAILED or KILLED.

    The run's Python log (logs/logging_/<stage>/<folder>/...) is attached as an artifact in every case,
    so a failed or interrupted run keeps its evidence.
    """
    install_interrupt_handlers()
    log_path, handler = start_log_file(stage, folder)
    setup_mlflow()
    experiment_id = get_or_create_experiment(experiment)
    run = mlflow.start_run(experiment_id=experiment_id, run_name=run_name, nested=nested)
    status = "FINISHED"
    try:
        mlflow.set_tags({**standard_tags(stage, folder), "log_file": str(log_path), **(tags or {})})
        if params:
            log_params_flat(params)
        log.info("MLflow run %s in experiment %r", run.info.run_id, experiment)
        yield run
    except (KeyboardInterrupt, SystemExit) as exc:
        # Ctrl-C, SIGTERM, or Lightning's own exit after it handled one (SystemExit/SIGTERMException);
        # our user errors never get here as SystemExit: they are WorkspaceErrors until the entry point.
        status = "KILLED"
        INTERRUPTED.set()
        log.error("interrupted (%s); run %s ends KILLED", type(exc).__name__, run.info.run_id)
        raise
    except WorkspaceError as exc:
        status = "FAILED"
        # a user error is one line on the console; in a sweep the trial's log keeps the traceback too
        log.error("%s", exc, exc_info=in_multirun())
        raise
    except BaseException:
        status = "FAILED"
        log.exception("run %s failed", run.info.run_id)
        raise
    finally:
        stop_log_file(handler)
        try:
            mlflow.log_artifact(str(log_path), artifact_path="logs")
        finally:
            mlflow.end_run(status=status)

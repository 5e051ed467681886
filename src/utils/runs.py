"""One tracked MLflow run per stage execution, with its log file attached whatever happens."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from typing import Any

import mlflow

from src.utils.errors import WorkspaceError, in_multirun
from src.utils.logs import start_log_file, stop_log_file
from src.utils.tracking import get_or_create_experiment, log_params_flat, setup_mlflow, standard_tags

log = logging.getLogger(__name__)


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
    except KeyboardInterrupt:
        status = "KILLED"
        log.error("interrupted; run %s ends KILLED", run.info.run_id)
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

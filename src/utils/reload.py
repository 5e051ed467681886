"""Come back to a run: its trained model, resolved config and metrics, from what MLflow holds alone.

    from src.utils.reload import best_run_id, load_run
    run = load_run(best_run_id("model01"))        # or load_run("<run_id>")
    run.model(x)                                   # the LightningModule, in eval mode
    run.config.lr, run.metrics["best_val_acc"], run.history("val_acc")

The model is unpickled with the code logged with the run (its `code/` folder), so it still loads after
the experiment folder has been edited; a warning says when today's folder differs from the logged code.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import logging
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from omegaconf import DictConfig, OmegaConf

from src.utils.errors import WorkspaceError
from src.utils.hashing import tree_sha256
from src.utils.paths import ROOT
from src.utils.tracking import setup_mlflow

log = logging.getLogger(__name__)


class CodeChangedWarning(UserWarning):
    """Today's experiment folder differs from the code the run was trained with."""


@dataclass
class LoadedRun:
    run_id: str
    experiment: str
    model: Any
    config: DictConfig
    metrics: dict[str, float]
    params: dict[str, str]
    tags: dict[str, str]
    status: str
    code_changed: bool = False
    _client: Any = field(default=None, repr=False)

    def history(self, metric: str) -> pd.DataFrame:
        """Per-epoch values of `metric` (step, value), e.g. run.history("val_acc")."""
        rows = self._client.get_metric_history(self.run_id, metric)
        return pd.DataFrame({"step": [m.step for m in rows], "value": [m.value for m in rows]}).sort_values("step")


def _get_run(client, run_id: str):
    try:
        return client.get_run(run_id)
    except MlflowException as exc:
        raise WorkspaceError(f"run_id {run_id!r} is not in the MLflow store ({mlflow.get_tracking_uri()}); "
                             f"copy a run_id from `bash scripts/mlflow_ui.sh` or use best_run_id(...)") from exc


@contextlib.contextmanager
def _logged_package(code_dir: Path, package: str) -> Iterator[None]:
    """Import `package` (e.g. src.model.model01) from a model's code/ folder for the duration of the block."""
    parent_name, _, _ = package.rpartition(".")
    mine = [k for k in sys.modules if k == package or k.startswith(package + ".")]
    saved = {k: sys.modules.pop(k) for k in mine}
    parent = importlib.import_module(parent_name)
    original_path = list(parent.__path__)
    parent.__path__.insert(0, str(code_dir / Path(*parent_name.split("."))))
    try:
        yield
    finally:
        parent.__path__[:] = original_path
        for k in [k for k in sys.modules if k == package or k.startswith(package + ".")]:
            sys.modules.pop(k)  # the loaded model keeps its classes; later imports get today's code
        sys.modules.update(saved)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Unpickling a model imports torch and Lightning in a process that has not yet (~0.5 M objects); with the
    cyclic collector walking them again and again meanwhile, a first load_run takes ~1.5 s longer."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@_gc_paused()
def load_run(run_id: str, model_name: str = "model", allow_failed: bool = False) -> LoadedRun:
    """The run's model (eval mode), resolved config, metrics, params and tags."""
    setup_mlflow()
    client = mlflow.MlflowClient()
    run = _get_run(client, run_id)
    experiment = client.get_experiment(run.info.experiment_id).name
    if run.info.status == "FAILED" and not allow_failed:
        raise WorkspaceError(f"run {run_id} (experiment {experiment}) ended FAILED, so its model is not to be "
                             f"trusted; pick a FINISHED run, or pass allow_failed=True to look at it anyway")
    if run.info.status == "RUNNING":
        raise WorkspaceError(f"run {run_id} (experiment {experiment}) is still RUNNING; wait until it ends")
    try:
        local = Path(mlflow.artifacts.download_artifacts(f"runs:/{run_id}/{model_name}"))
    except (MlflowException, OSError) as exc:
        raise WorkspaceError(f"run {run_id} (experiment {experiment}) has no logged model {model_name!r}; "
                             f"models are logged by training runs (src/model/*/train.py), not by sweep "
                             f"parents or data stages") from exc
    folder = run.data.tags.get("experiment_folder", "")
    code_changed = False
    code_dir = local / "code"
    if folder and (code_dir / folder).is_dir():
        logged, today = run.data.tags.get("code_hash"), (ROOT / folder)
        if not today.is_dir() or tree_sha256(today) != logged:
            code_changed = True
            warnings.warn(f"{folder} differs from the code run {run_id[:8]} was trained with; the model is "
                          f"loaded with the code logged with the run", CodeChangedWarning, stacklevel=2)
        with _logged_package(code_dir, folder.replace("/", ".")):
            model = mlflow.pytorch.load_model(str(local), map_location="cpu")
    else:
        model = mlflow.pytorch.load_model(str(local), map_location="cpu")
    model.eval()
    try:
        config = OmegaConf.load(mlflow.artifacts.download_artifacts(f"runs:/{run_id}/config.yaml"))
    except (MlflowException, OSError):
        config = OmegaConf.create({})
    return LoadedRun(run_id=run_id, experiment=experiment, model=model, config=config,
                     metrics=dict(run.data.metrics), params=dict(run.data.params), tags=dict(run.data.tags),
                     status=run.info.status, code_changed=code_changed, _client=client)


def best_run_id(experiment: str = "model01", metric: str = "best_val_acc", mode: str = "max") -> str:
    """run_id of the FINISHED training run (not a sweep parent) with the best `metric` in `experiment`."""
    setup_mlflow()
    client = mlflow.MlflowClient()
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        raise WorkspaceError(f"no MLflow experiment {experiment!r}; train first, e.g. bash scripts/demo.sh")
    order = "DESC" if mode == "max" else "ASC"
    runs = client.search_runs([exp.experiment_id], "attributes.status = 'FINISHED'",
                              order_by=[f"metrics.{metric} {order}"], max_results=500)
    runs = [r for r in runs if r.data.tags.get("sweep") != "parent" and metric in r.data.metrics]
    if not runs:
        raise WorkspaceError(f"experiment {experiment!r} has no FINISHED run with metric {metric!r}")
    return runs[0].info.run_id

"""Come back to a run: its trained model, resolved config and metrics, from what MLflow holds alone.

    from src.utils.predict.reload import best_run_id, load_run
    run = load_run(best_run_id("<experiment>"))   # or load_run("<run_id>")
    run.model                                      # the LightningModule (eval mode) or the fitted estimator
    run.config.lr, run.metrics[f"best_{run.config.monitor}"], run.history(run.config.monitor)

The model is unpickled with the code logged with the run (its `code/` folder), so it still loads after
the experiment folder has been edited; a warning says when today's folder differs from the logged code.
"""

from __future__ import annotations

import contextlib
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

from src.utils.core import collector
from src.utils.core.errors import WorkspaceError
from src.utils.core.hashing import tree_sha256
from src.utils.core.paths import ROOT
from src.utils.track.formats import check_training_run, older_run
from src.utils.track.tracking import setup_mlflow

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
    code_dir: Path | None = None  # the run's logged code (its `code/` folder); set by load_run
    _client: Any = field(default=None, repr=False)

    @property
    def folder(self) -> str:
        return self.tags.get("experiment_folder", "")

    def model_named(self, name: str) -> Any:
        """Another model of the run (`model_fold<k>` of a fold=all run), loaded with the run's code."""
        return load_run(self.run_id, model_name=name, allow_failed=True).model

    @property
    def folds(self) -> list[int]:
        """The folds whose models the run logged: each fold's of a fold=all run (its `fold_models` tag), else the
        one it was trained on."""
        if str(self.params.get("fold")) != "all":
            return [int(self.params.get("fold", 0))]
        if not self.tags.get("fold_models"):
            raise older_run(self.run_id, "tag fold_models")
        return [int(k) for k in self.tags["fold_models"].split(",")]

    def fold_models(self) -> list[Any]:
        """The models that make the run's test predictions: each fold's for a fold=all run, else its model."""
        if str(self.params.get("fold")) != "all":
            return [self.model]
        return [self.model_named(f"model_fold{k}") for k in self.folds]

    def datamodule(self, features: Any, fold: int = 0, **overrides: Any) -> Any:
        """The run's data module (its config's `data` node, built with the code logged with the run)."""
        from src.utils.config.targets import instantiate

        own = (f"{self.folder.split('/')[0]}.*",)  # the run's own code is trusted too
        kwargs = {"features": features, "fold": fold, **overrides, "trusted": own}
        with _logged_package(self.code_dir, self.folder.replace("/", ".")):
            return instantiate(self.config.data, **kwargs)

    def competition(self, used_by: str | None = None) -> Any:
        """The competition as the run read it (its competition.yaml), not today's file; `used_by` (the command)
        warns in one line when today's file differs."""
        from src.utils.competition import spec as competitions

        try:
            text = Path(mlflow.artifacts.download_artifacts(f"runs:/{self.run_id}/competition.yaml")).read_text()
        except (MlflowException, OSError) as exc:
            raise older_run(self.run_id, "competition.yaml") from exc
        if used_by:
            return competitions.logged(self.tags["competition"], text, self.run_id, used_by)
        return competitions.from_yaml(self.tags["competition"], text)

    def history(self, metric: str) -> pd.DataFrame:
        """Per-epoch values of `metric` (step, value), e.g. run.history(run.config.monitor)."""
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
    """Import `package` (e.g. src.model.modelNN) from a model's code/ folder for the duration of the block."""
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


@collector.paused()
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
    if run.data.tags.get("stage") == "model":
        check_training_run(run_id, run.data.tags)
    try:
        local = Path(mlflow.artifacts.download_artifacts(f"runs:/{run_id}/{model_name}"))
    except (MlflowException, OSError) as exc:
        raise WorkspaceError(f"run {run_id} (experiment {experiment}) has no logged model {model_name!r}; "
                             f"models are logged by training runs (src/model/*/train.py), not by sweep "
                             f"parents or data stages") from exc
    folder = run.data.tags.get("experiment_folder", "")
    code_dir = local / "code"
    if not folder or not (code_dir / folder).is_dir():
        raise older_run(run_id, f"code with its model {model_name!r}")
    try:
        config = OmegaConf.load(mlflow.artifacts.download_artifacts(f"runs:/{run_id}/config.yaml"))
    except (MlflowException, OSError) as exc:
        raise older_run(run_id, "config.yaml") from exc
    logged, today = run.data.tags.get("code_hash"), (ROOT / folder)
    code_changed = not today.is_dir() or tree_sha256(today) != logged
    if code_changed:
        warnings.warn(f"{folder} differs from the code run {run_id[:8]} was trained with; the model is "
                      f"loaded with the code logged with the run", CodeChangedWarning, stacklevel=2)
    with _logged_package(code_dir, folder.replace("/", ".")):
        model = _load_model(local)
    return LoadedRun(run_id=run_id, experiment=experiment, model=model, config=config,
                     metrics=dict(run.data.metrics), params=dict(run.data.params), tags=dict(run.data.tags),
                     status=run.info.status, code_changed=code_changed, code_dir=code_dir, _client=client)


def _load_model(local: Path) -> Any:
    """A logged model by its MLflow flavour: a network (pytorch, in eval mode on the CPU) or an estimator (lightgbm,
    xgboost, catboost, sklearn), as its library's own object."""
    import importlib

    flavors = OmegaConf.load(local / "MLmodel").get("flavors", {})
    if "pytorch" in flavors:
        return mlflow.pytorch.load_model(str(local), map_location="cpu").eval()
    for lib in ("lightgbm", "xgboost", "catboost", "sklearn"):
        if lib in flavors:
            return importlib.import_module(f"mlflow.{lib}").load_model(str(local))
    raise WorkspaceError(f"the model in {local} has no flavour this workspace loads ({', '.join(flavors)})")


def best_run_id(experiment: str, metric: str | None = None, mode: str | None = None) -> str:
    """run_id of the FINISHED training run (not a sweep parent, not a pruned trial) with the best `metric` in
    `experiment`; by default each run's own `best_<monitor>`, better as its own `monitor_mode` says. Like is
    compared with like: the `fold=all` runs by their CV mean, or, when the experiment has none, its single-fold
    runs by their validation fold's score, and a line says so."""
    setup_mlflow()
    client = mlflow.MlflowClient()
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        raise WorkspaceError(f"no MLflow experiment {experiment!r}; train first (src/model/<folder>/train.py)")
    runs = client.search_runs([exp.experiment_id], "attributes.status = 'FINISHED'", max_results=5000,
                              order_by=["attributes.start_time DESC"])
    runs = [r for r in runs if r.data.tags.get("sweep") != "parent" and r.data.tags.get("optuna_state") != "PRUNED"
            and "monitor" in r.data.params]
    if not runs:
        raise WorkspaceError(f"experiment {experiment!r} has no FINISHED training run")
    cv = [r for r in runs if r.data.params.get("fold") == "all"]
    if not cv:
        log.info("run_id=best: experiment %s has no fold=all run; comparing its single-fold runs, each by the score "
                 "of its own validation fold", experiment)
    runs = cv or runs
    latest = runs[0].data.params  # the experiment's monitor as its latest run has it
    metric = metric or f"best_{latest['monitor']}"
    mode = mode or latest.get("monitor_mode", "max")
    scored = [r for r in runs if metric in r.data.metrics]
    if not scored:
        raise WorkspaceError(f"experiment {experiment!r} has no FINISHED run with metric {metric!r}")
    sign = 1 if mode == "max" else -1
    return max(scored, key=lambda r: (sign * r.data.metrics[metric], -r.info.start_time)).info.run_id

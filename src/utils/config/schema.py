"""Typed configs: what each key may hold, checked before anything runs.

Every entry script declares its keys as a dataclass (a structured config): the harness's keys live in
`RunConfig` here (`TrainConfig` for a network, `EstimatorConfig` for an estimator), an experiment adds its own in a
subclass (model01: `dropout: float`). The values stay in the
YAML; the dataclass says what they may be. `validate` turns a composed config into the dataclass (its checks
run), so a misspelt key, a wrong type or an impossible value is one `error:` line naming the key, the value and
what is allowed. The command-line preflight (src/utils/cli/preflight.py) validates before Hydra starts, the
harness again before each run. Checks that need another package (the competition file, the pruner) are passed
to `validate` by its caller: this module imports only src.utils.core.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue, ValidationError

from src.utils.core.errors import WorkspaceError
from src.utils.core.paths import ROOT

KINDS = {float: "a number", int: "a whole number", bool: "true or false", str: "a string"}


def require(ok: bool, key: str, value: Any, allowed: str) -> None:
    """Raise the one-line error for a value a key may not take: `dropout=1.5 is not allowed: a number in [0, 1)`."""
    if not ok:
        raise WorkspaceError(f"{key}={value} is not allowed: {allowed}")


@dataclass
class MlflowOptions:
    log_model: bool = True  # the model with its code, in its library's MLflow flavour (pytorch, lightgbm, ...)
    log_checkpoint: bool = True
    system_metrics: bool = True  # CPU, memory (and GPU where present), sampled in the background
    # a sweep's task plots (confusion matrix, ...): `best` draws them for the best trial when the sweep ends (a
    # trial's own cost 0.5 s at MNIST size), `every` in each trial as it ends
    trial_plots: str = "best"


@dataclass
class RunConfig:
    """The keys the training harness reads whatever the learner. A model folder's Config subclasses TrainConfig (a
    network fitted by Lightning) or EstimatorConfig (a scikit-learn-API estimator: gradient-boosted trees, ...)."""

    experiment_name: str = MISSING
    feature_dir: str = MISSING
    competition: str | None = None  # config/competition/<name>.yaml (None: the one the features were built for)
    seed: int = 42
    fold: Any = 0  # a fold number, or "all" for K-fold CV (the upper bound comes from the features)
    debug: bool = False
    monitor: str = MISSING  # the metric the model logs that early stopping, checkpoints and sweeps follow
    monitor_mode: str = "max"
    objective: str = "monitor"  # the sweep objective: best `monitor` (CV mean), or `oof`: the competition's metric
    pruner: Any = None  # an optuna.pruners `_target_` node; None: sweeps never prune
    note: str | None = None  # note="why this run": the run's description in MLflow and the diary
    mlflow: MlflowOptions = field(default_factory=MlflowOptions)

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Ranges and combinations; a subclass adds its own and calls super().check()."""
        require(self.fold == "all" or (type(self.fold) is int and self.fold >= 0), "fold", self.fold,
                "a fold number (0, 1, ...) or all")
        require(self.monitor_mode in ("max", "min"), "monitor_mode", self.monitor_mode, "max or min")
        require(self.objective in ("monitor", "oof"), "objective", self.objective,
                "monitor (the best monitored value) or oof (the competition's metric on the OOF predictions)")
        require(self.mlflow.trial_plots in ("best", "every"), "mlflow.trial_plots", self.mlflow.trial_plots,
                "best (drawn for a sweep's best trial when it ends) or every (each trial draws its own)")


@dataclass
class TrainConfig(RunConfig):
    """The keys of a network fitted by Lightning. An experiment subclasses this for its own hyper-parameters."""

    lr: float = MISSING
    batch_size: int = MISSING
    max_epochs: int = MISSING
    weight_decay: float = 0.0
    ckpt_path: str | None = None
    # Hydra `_target_` nodes: what they build is checked by what builds it
    model: Any = MISSING
    data: Any = MISSING
    optimizer: Any = MISSING
    scheduler: Any = None
    callbacks: dict[str, Any] = field(default_factory=dict)
    trainer: Any = MISSING
    tensorboard: bool = False  # also log to TensorBoard (logs/tensorboard/<experiment>/<run_id>)

    def check(self) -> None:
        require(self.lr > 0, "lr", self.lr, "a number > 0 (e.g. lr=0.003)")
        require(self.batch_size >= 1, "batch_size", self.batch_size, "a whole number >= 1 (e.g. batch_size=64)")
        require(self.max_epochs >= 1, "max_epochs", self.max_epochs, "a whole number >= 1")
        require(self.weight_decay >= 0, "weight_decay", self.weight_decay, "a number >= 0")
        super().check()
        require(not (self.fold == "all" and self.ckpt_path), "ckpt_path", self.ckpt_path,
                "it resumes a single fold; pass fold=<k> with it, not fold=all")


@dataclass
class EstimatorConfig(RunConfig):
    """The keys of a scikit-learn-API estimator (LightGBM, XGBoost, CatBoost, any scikit-learn estimator), fitted
    on a fold's rows with the library's own early stopping on its validation rows."""

    estimator: Any = MISSING  # a `_target_` node: the estimator of one fold
    early_stopping_rounds: int | None = 50  # rounds without improvement of the library's first metric; None: off
    log_every: int = 10  # boosting rounds between two logged points of the validation curve
    report_every: int = 10  # boosting rounds between two reports to the sweep's trial (its pruner)

    def check(self) -> None:
        super().check()
        require(self.early_stopping_rounds is None or self.early_stopping_rounds >= 1, "early_stopping_rounds",
                self.early_stopping_rounds, "a whole number >= 1, or null (no early stopping)")
        require(self.log_every >= 1, "log_every", self.log_every, "a whole number >= 1")
        require(self.report_every >= 1, "report_every", self.report_every, "a whole number >= 1")


@dataclass
class PredictConfig:
    """The keys of a model folder's predict.yaml."""

    experiment_name: str = MISSING
    run_id: str = "best"  # a run_id, or `best`: the FINISHED run with the best `metric` in experiment_name
    metric: str | None = None  # None: best_<monitor> of the runs' own monitor
    mode: str | None = None  # None: the runs' own monitor_mode
    batch_size: int | None = None  # None: the run's own

    def __post_init__(self) -> None:
        require(self.mode in ("max", "min", None), "mode", self.mode, "max, min or null")
        require(self.batch_size is None or self.batch_size >= 1, "batch_size", self.batch_size,
                "a whole number >= 1")


def _where(schema: type) -> str:
    try:
        path = Path(inspect.getsourcefile(schema) or "").resolve().relative_to(ROOT)
    except (TypeError, ValueError):
        path = Path(schema.__module__.replace(".", "/") + ".py")
    return f"{schema.__name__} in {path}"


def _kind(schema: type, key: str) -> str:
    hints = typing.get_type_hints(schema)
    top = key.split(".")[0]
    hint = hints.get(top)
    if "." in key and dataclasses.is_dataclass(hint):
        return _kind(hint, key.split(".", 1)[1])
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    base = args[0] if len(args) == 1 else hint
    return KINDS.get(base, str(base)) + (" or null" if type(None) in typing.get_args(hint) else "")


def validate(cfg: DictConfig | dict, schema: type, checks: tuple[Callable[[Any], None], ...] = ()) -> Any:
    """The config as an instance of `schema` (its checks run, then each of `checks` on it); a WorkspaceError names
    the first bad key.

    Keys the schema does not declare are left alone (untyped): an experiment declares the keys it reads.
    """
    if isinstance(cfg, DictConfig):
        data = OmegaConf.to_container(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]), resolve=True)
    else:
        data = {k: v for k, v in cfg.items() if k != "hydra"}
    declared = {f.name for f in dataclasses.fields(schema)}
    typed = {k: v for k, v in data.items() if k in declared}
    try:
        merged = OmegaConf.merge(OmegaConf.structured(schema), typed)
        obj = OmegaConf.to_object(merged)
    except ValidationError as exc:
        key = exc.full_key or "?"
        value = OmegaConf.select(OmegaConf.create(typed), key, default="?")
        raise WorkspaceError(f"{key}={value!r} is not {_kind(schema, key)} (declared in {_where(schema)})") from exc
    except MissingMandatoryValue as exc:
        raise WorkspaceError(f"config key '{exc.full_key}' has no value; {_where(schema)} needs one: set it in the "
                             f"YAML or on the command line ({exc.full_key}=...)") from exc
    for check in checks:
        check(obj)
    return obj


@dataclass
class StageConfig:
    """The keys every data stage (dataset, feature folders) has; a stage subclasses it for its own."""

    experiment_name: str = MISSING
    output_dir: str = MISSING
    competition: str | None = None  # config/competition/<name>.yaml: the competition this stage belongs to
    force: bool = False  # rebuild even when the outputs are up to date
    note: str | None = None  # note="...": the run's description in MLflow and the diary

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """A stage subclasses this for its own checks (and calls super().check())."""


@dataclass
class Members:
    """Who is in an ensemble: any mix of run_ids, sweeps' top trials and model experiments' top runs."""

    runs: list[str] = field(default_factory=list)  # run_ids of fold=all training runs
    sweeps: list[str] = field(default_factory=list)  # sweep parent run_ids: the top_k trials of each, by monitor
    experiments: list[str] = field(default_factory=list)  # model experiments (model01): their top_k fold=all runs
    top_k: int = 5

    def __post_init__(self) -> None:
        require(self.top_k >= 1, "members.top_k", self.top_k, "a whole number >= 1")


@dataclass
class EnsembleConfig:
    """The keys an ensemble folder's config.yaml holds (src/utils/ensemble/run.py reads them)."""

    experiment_name: str = MISSING
    competition: str = MISSING  # config/competition/<name>.yaml: every member must belong to it
    members: Members = field(default_factory=Members)
    method: Any = MISSING  # config/ensemble/<folder>/method/: a node with _target_ (src/utils/ensemble/methods.py)
    nested_cv: bool = True  # also score the blend fitted on the other folds, on the held-out fold
    note: str | None = None  # note="...": the run's description in MLflow and the diary

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        if not isinstance(self.method, dict) or "_target_" not in self.method:
            raise WorkspaceError(f"method={self.method} is not allowed: an option of the method group (method=mean, "
                                 f"rank_mean, hill_climbing, stacking) or a node with _target_")

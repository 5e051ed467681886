"""Each library's own way to fit one fold: LightGBM, XGBoost and CatBoost with their early stopping on the validation
rows, their evaluation history and a callback that reports to the sweep's trial every few rounds (and stops the
fit when its pruner says so); any other scikit-learn estimator is fitted as it is (no rounds). Also each one's gain
importance and its MLflow flavour. Which library an estimator belongs to is read from its class's module."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# library -> (MLflow flavour module, its log_model's model argument)
FLAVOURS = {"lightgbm": "mlflow.lightgbm", "xgboost": "mlflow.xgboost", "catboost": "mlflow.catboost",
            "sklearn": "mlflow.sklearn"}


def library(estimator: Any) -> str:
    """lightgbm, xgboost or catboost by the estimator's class; sklearn for any other estimator."""
    top = type(estimator).__module__.split(".")[0]
    return top if top in ("lightgbm", "xgboost", "catboost") else "sklearn"


@dataclass
class Reporter:
    """Reports the validation value of `metric` (a name in the library's history) every `every` rounds; True when
    the fit is to stop (the trial's pruner said so)."""

    report: Callable[[float, int], bool]  # TrialLink.report(value, step)
    metric: str
    every: int
    stopped_at: int | None = None

    def __call__(self, round_: int, value: float) -> bool:
        if (round_ + 1) % self.every or self.stopped_at is not None:
            return False
        if self.report(float(value), round_):
            self.stopped_at = round_
            return True
        return False


@dataclass
class Fitted:
    history: dict[str, list[float]] = field(default_factory=dict)  # validation metric -> its value per round
    best_round: int | None = None  # the round early stopping kept (0-based); None: no rounds or no early stopping


def fit_lightgbm(est: Any, train: tuple, valid: tuple, stop: int | None, reporter: Reporter | None) -> Fitted:
    import lightgbm as lgb

    record: dict[str, dict[str, list[float]]] = {}
    callbacks = [lgb.record_evaluation(record)]
    if stop:
        callbacks.append(lgb.early_stopping(stop, first_metric_only=True, verbose=False))
    if reporter is not None:
        def report(env: Any) -> None:
            for _, name, value, _ in env.evaluation_result_list:
                if name == reporter.metric and reporter(env.iteration, value):
                    raise lgb.callback.EarlyStopException(env.iteration, env.evaluation_result_list)
        report.order = 40  # after the evaluation is recorded
        callbacks.append(report)
    est.fit(*train, eval_X=(valid[0],), eval_y=(valid[1],), eval_names=["val"], callbacks=callbacks)
    best = getattr(est, "best_iteration_", 0) or 0
    return Fitted(record.get("val", {}), best - 1 if best > 0 else None)


def fit_xgboost(est: Any, train: tuple, valid: tuple, stop: int | None, reporter: Reporter | None) -> Fitted:
    import xgboost as xgb

    class Report(xgb.callback.TrainingCallback):
        def after_iteration(self, model: Any, epoch: int, evals_log: dict) -> bool:
            values = evals_log.get("validation_0", {}).get(reporter.metric)
            return bool(values) and reporter(epoch, values[-1])

    est.set_params(early_stopping_rounds=stop or None, callbacks=[Report()] if reporter is not None else None)
    try:
        est.fit(*train, eval_set=[valid], verbose=False)
    finally:
        est.set_params(callbacks=None)  # the logged model carries no trial
    best = getattr(est, "best_iteration", None) if stop else None
    return Fitted({k: list(v) for k, v in est.evals_result().get("validation_0", {}).items()}, best)


def fit_catboost(est: Any, train: tuple, valid: tuple, stop: int | None, reporter: Reporter | None) -> Fitted:
    class Report:
        def after_iteration(self, info: Any) -> bool:  # False stops the fit
            values = info.metrics.get("validation", {}).get(reporter.metric)
            return not (values and reporter(info.iteration - 1, values[-1]))

    est.fit(*train, eval_set=valid, early_stopping_rounds=stop, verbose=False,
            callbacks=[Report()] if reporter is not None else None)
    history = {k: list(v) for k, v in est.get_evals_result().get("validation", {}).items()}
    return Fitted(history, int(est.get_best_iteration()) if stop else None)


def fit_sklearn(est: Any, train: tuple, valid: tuple, stop: int | None, reporter: Reporter | None) -> Fitted:
    est.fit(*train)
    return Fitted()


FIT = {"lightgbm": fit_lightgbm, "xgboost": fit_xgboost, "catboost": fit_catboost, "sklearn": fit_sklearn}


def prepare(est: Any, lib: str, work_dir: str, x: Any = None) -> None:
    """What a library writes on its own goes under the fold's folder (CatBoost's catboost_info/), not the cwd; a
    table's categorical columns are declared to the libraries that need it (XGBoost, CatBoost; LightGBM reads
    pandas categories by itself)."""
    params = est.get_params()
    if lib == "catboost" and not {"train_dir", "allow_writing_files"} & set(params):
        est.set_params(train_dir=work_dir)
    categorical = categorical_columns(x)
    if not categorical:
        return
    if lib == "xgboost":
        est.set_params(enable_categorical=True)
    elif lib == "catboost" and params.get("cat_features") is None:
        est.set_params(cat_features=categorical)


def categorical_columns(x: Any) -> list[str]:
    dtypes = getattr(x, "dtypes", None)
    return [] if dtypes is None else [str(c) for c, t in dtypes.items() if str(t) == "category"]


def as_input(lib: str, x: Any) -> Any:
    """`x` as the library reads it: CatBoost takes categories as text with missing as its own value ("nan"), the
    others a table's categories as they are."""
    categorical = categorical_columns(x) if lib == "catboost" else []
    if not categorical:
        return x
    x = x.copy()
    for column in categorical:
        x[column] = x[column].astype(object).where(x[column].notna(), "nan").astype(str)
    return x


def importance(est: Any, lib: str, n_features: int) -> tuple[np.ndarray, str] | None:
    """Each feature's importance and what it measures (the library's gain where it has one); None: the estimator
    has none."""
    if lib == "lightgbm":
        return est.booster_.feature_importance(importance_type="gain").astype(np.float64), "gain"
    if lib == "xgboost":
        scores = est.get_booster().get_score(importance_type="gain")
        names = est.get_booster().feature_names or [f"f{i}" for i in range(n_features)]
        return np.array([scores.get(name, 0.0) for name in names], dtype=np.float64), "gain"
    if lib == "catboost":
        return np.asarray(est.get_feature_importance(), dtype=np.float64), "PredictionValuesChange"
    if getattr(est, "feature_importances_", None) is not None:
        return np.asarray(est.feature_importances_, dtype=np.float64), "impurity decrease"
    if getattr(est, "coef_", None) is not None:
        coef = np.abs(np.asarray(est.coef_, dtype=np.float64))
        return (coef.reshape(-1, n_features).mean(0) if coef.size > n_features else coef.reshape(-1)), "|coef|"
    return None


def log_model(est: Any, lib: str, name: str, code_paths: list[str]) -> None:
    """The estimator in its library's MLflow flavour, with the code it needs and its library's version."""
    import mlflow

    package = {"sklearn": "scikit-learn"}.get(lib, lib)
    version = importlib.import_module(lib).__version__
    flavour = importlib.import_module(FLAVOURS[lib])
    # LightGBM's scikit-learn API and other estimators are pickled (as the networks are): MLflow's default, skops,
    # costs 6 s a process just to import (it lists every scikit-learn estimator, importing torch on the way)
    kwargs = ({"model_format": "ubj"} if lib == "xgboost" else
              {"serialization_format": "cloudpickle"} if lib in ("lightgbm", "sklearn") else {})
    flavour.log_model(est, name=name, code_paths=code_paths,
                      pip_requirements=[f"{package}=={version}", f"mlflow=={mlflow.__version__}"], **kwargs)

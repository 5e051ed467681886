"""model05: gradient-boosted trees on feature03's table of any CSV competition (here the diabetes-sample
regression), trained and tracked by the harness. Categorical columns reach each library as it wants them (pandas
categories for LightGBM, `enable_categorical` for XGBoost, `cat_features` for CatBoost); missing values stay missing.

    poetry run python src/model/model05/train.py                          # LightGBM, validation fold 0
    poetry run python src/model/model05/train.py estimator=xgboost fold=all   # XGBoost (or catboost), K-fold CV
    poetry run python src/model/model05/train.py -m hparams_search=trees  # the versioned Optuna sweep

What this file decides is what makes the experiment: the keys it reads (Config) and the estimator of a fold
(build). The estimator is the config's `estimator` node (config/model/model05/estimator/); early stopping, the
validation curve, importance, OOF predictions and the model's MLflow flavour: src/utils/run/estimators.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import hydra
from omegaconf import MISSING, DictConfig

from src.utils.cli.preflight import preflight
from src.utils.config.schema import EstimatorConfig, require
from src.utils.config.targets import instantiate
from src.utils.core.paths import config_dir

if TYPE_CHECKING:
    from src.utils.data.features import Features


@dataclass
class Config(EstimatorConfig):
    """model05's keys on top of the harness's (fold, monitor, early_stopping_rounds, ...); values in config.yaml."""

    learning_rate: float = MISSING
    n_estimators: int = MISSING
    max_depth: int = MISSING
    subsample: float = MISSING
    colsample: float = MISSING
    l2: float = MISSING
    threads: int = MISSING

    def check(self) -> None:
        super().check()
        require(self.learning_rate > 0, "learning_rate", self.learning_rate, "a number > 0 (e.g. 0.1)")
        require(self.n_estimators >= 1, "n_estimators", self.n_estimators, "a whole number >= 1")
        require(self.max_depth >= 1, "max_depth", self.max_depth, "a whole number >= 1")
        require(0 < self.subsample <= 1, "subsample", self.subsample, "a number in (0, 1]")
        require(0 < self.colsample <= 1, "colsample", self.colsample, "a number in (0, 1]")
        require(self.l2 >= 0, "l2", self.l2, "a number >= 0")
        require(self.threads >= 1, "threads", self.threads, "a whole number >= 1")


def build(cfg: DictConfig, features: Features, fold: int) -> Any:
    """The estimator of one fold (the same for every fold: the library's own seed and thread count are fixed)."""
    return instantiate(cfg.estimator)


@hydra.main(config_path=config_dir(__file__), config_name="config")
def main(cfg: DictConfig) -> float:
    from src.utils.run.harness import fit  # the libraries and MLflow load once the command line is checked

    return fit(cfg, build, Config)


if __name__ == "__main__":
    preflight(__file__, Config)  # a wrong key, type or value: one error line before anything starts
    main()

"""model02: an MLP on feature02 (the diabetes-sample regression), trained and tracked by the shared harness.

    poetry run python src/model/model02/train.py                         # one run, validation fold 0
    poetry run python src/model/model02/train.py fold=all                # K-fold CV: OOF RMSE, test predictions
    poetry run python src/model/model02/train.py -m hparams_search=lr_hidden     # the versioned Optuna sweep

What this file decides is what makes the experiment: the keys it reads (Config) and how model and data are
built for a fold (build). Tracking, folds, checkpoints, OOF predictions and interrupts: src/utils/harness.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import hydra
from omegaconf import MISSING, DictConfig

from src.utils.competition import load as load_competition
from src.utils.paths import config_dir
from src.utils.run.heads import head_of
from src.utils.schema import TrainConfig, instantiate, preflight, require

if TYPE_CHECKING:
    from src.utils.features import Features


@dataclass
class Config(TrainConfig):
    """model02's keys on top of the harness's (lr, batch_size, fold, ...); the values are in config.yaml."""

    dropout: float = MISSING
    width: int = MISSING

    def check(self) -> None:
        super().check()
        require(0 <= self.dropout < 1, "dropout", self.dropout, "a number in [0, 1)")
        require(self.width >= 1, "width", self.width, "a whole number >= 1")


def build(cfg: DictConfig, features: Features, fold: int):
    """The model and the data of one fold: the head (width, loss) from the competition's task, a regression's
    target scale from the fold's training rows."""
    task = load_competition(cfg.competition).task
    y = features.train_y[features.split(fold)[0]]
    datamodule = instantiate(cfg.data, features=features, fold=fold)
    model = instantiate(cfg.model, n_inputs=int(features.train_x.shape[1]), **head_of(task, y))
    return model, datamodule


@hydra.main(config_path=config_dir(__file__), config_name="config")
def main(cfg: DictConfig) -> float:
    from src.utils.harness import fit  # torch, Lightning and MLflow load once the command line is checked

    return fit(cfg, build, Config)


if __name__ == "__main__":
    preflight(__file__, Config)  # a wrong key, type or value: one error line before anything starts
    main()

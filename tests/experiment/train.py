"""The test experiment's entry: what the shared harness is handed, as a model folder's train.py hands it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from omegaconf import DictConfig

from src.utils.config.targets import instantiate

if TYPE_CHECKING:
    from src.utils.data.features import Features


def build(cfg: DictConfig, features: Features, fold: int):
    return (instantiate(cfg.model, trusted=("tests.*",)),
            instantiate(cfg.data, features=features, fold=fold, trusted=("tests.*",)))

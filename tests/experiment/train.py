"""The test experiment's entry: what the shared harness is handed, as a model folder's train.py hands it."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from src.utils.features import Features
from src.utils.harness import TARGETS


def instantiate(node, **kwargs):
    return hydra.utils.instantiate(node, _execution_whitelist_=("tests.*", *TARGETS), **kwargs)


def build(cfg: DictConfig, features: Features, fold: int):
    return instantiate(cfg.model), instantiate(cfg.data, features=features, fold=fold)

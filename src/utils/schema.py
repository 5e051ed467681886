"""An old import path of the frozen contract (src/utils/contract.py): re-exports only."""

from src.utils.cli.preflight import preflight
from src.utils.config.schema import EnsembleConfig, PredictConfig, StageConfig, TrainConfig, require, validate
from src.utils.config.targets import instantiate

__all__ = ["EnsembleConfig", "PredictConfig", "StageConfig", "TrainConfig", "instantiate", "preflight", "require",
           "validate"]

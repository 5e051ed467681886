"""An old import path of the frozen contract (src/utils/contract.py): re-exports only."""

from src.utils.run.predictions import predict_outputs, predict_scores, predict_trainer, test_loader

__all__ = ["predict_outputs", "predict_scores", "predict_trainer", "test_loader"]

"""An old import path of the frozen contract (src/utils/contract.py): re-exports only."""

from src.utils.predict.inference import blend_submission, check_against_sample, pack_submission, rebuild_features

__all__ = ["blend_submission", "check_against_sample", "pack_submission", "rebuild_features"]

"""An old import path of the frozen contract (src/utils/contract.py): re-exports only."""

from src.utils.tune.parent import MlflowSweepCallback

__all__ = ["MlflowSweepCallback"]

"""An old import path of the frozen contract (src/utils/contract.py): re-exports only."""

from src.utils.data.cv import assign_folds

__all__ = ["assign_folds"]

"""An old import path of the frozen contract (src/utils/contract.py): re-exports only."""

from src.utils.data.stage import build_stage

__all__ = ["build_stage"]

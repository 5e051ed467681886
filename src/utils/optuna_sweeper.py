"""An old import path of the frozen contract (src/utils/contract.py): re-exports only."""

from src.utils.tune.pruners import by_steps

__all__ = ["by_steps"]

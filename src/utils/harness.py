"""An old import path of the frozen contract (src/utils/contract.py): re-exports only."""

from src.utils.run.harness import fit

__all__ = ["fit"]

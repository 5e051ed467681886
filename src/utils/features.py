"""An old import path of the frozen contract (src/utils/contract.py): re-exports only."""

from src.utils.data.features import Features, load_features

__all__ = ["Features", "load_features"]

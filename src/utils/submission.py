"""An old import path of the frozen contract (src/utils/contract.py): re-exports only."""

from src.utils.predict.submission import run_features, write_submission

__all__ = ["run_features", "write_submission"]

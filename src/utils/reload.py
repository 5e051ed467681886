"""An old import path of the frozen contract (src/utils/contract.py): re-exports only."""

from src.utils.predict.reload import best_run_id, load_run

__all__ = ["best_run_id", "load_run"]

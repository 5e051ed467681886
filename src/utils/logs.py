"""An old import path of the frozen contract (src/utils/contract.py): re-exports only."""

from src.utils.core.logs import quiet_libraries

__all__ = ["quiet_libraries"]

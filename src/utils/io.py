"""An old import path of the frozen contract (src/utils/contract.py): re-exports only."""

from src.utils.core.io import atomic_file, read_json, write_json

__all__ = ["atomic_file", "read_json", "write_json"]

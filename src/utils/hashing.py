"""An old import path of the frozen contract (src/utils/contract.py): re-exports only."""

from src.utils.core.hashing import file_sha256, files_sha256

__all__ = ["file_sha256", "files_sha256"]

"""An old import path of the frozen contract (src/utils/contract.py): re-exports only."""

from src.utils.core.errors import WorkspaceError, exit_on_user_error

__all__ = ["WorkspaceError", "exit_on_user_error"]

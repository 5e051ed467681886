"""User-facing errors: one line that says what is wrong, where, and how to fix it."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger(__name__)


class WorkspaceError(Exception):
    """An error caused by the user's input or environment, reported as one line without a traceback."""

    exit_code = 2


class RunRefused(WorkspaceError):
    """A user error found only once the run had started (e.g. a monitor the model never logs, seen at its first
    validation): the run it ends holds nothing of the user's, so it is deleted, as if the command had been refused
    before it began."""


def exit_on_user_error(func: F) -> F:
    """Wrap an entry point: a WorkspaceError becomes `error: <message>` on stderr and a non-zero exit."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except WorkspaceError as exc:
            if in_multirun():
                raise  # the sweeper records the failed trial and goes on
            log.debug("user error", exc_info=True)
            for h in logging.getLogger().handlers:
                h.flush()
            print(f"error: {exc}", file=sys.stderr, flush=True)
            sys.exit(exc.exit_code)

    return wrapper  # type: ignore[return-value]


def in_multirun() -> bool:
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    except Exception:
        return False

"""Waiting for a server this workspace starts (the MLflow UI, the MLflow server) to answer. Standard library only
(the scripts run it with `python -S`); imports nothing else of src.

    python -m src.utils.core.servers URL SECONDS [PID]   # exit 0 once URL answers 200; 1 after SECONDS, or as soon
                                                          # as process PID (the server) is gone
"""

from __future__ import annotations

import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return True


def wait_http(url: str, seconds: float, alive: Callable[[], bool] = lambda: True, every: float = 0.1) -> bool:
    """True once `url` answers 200 within `seconds`; False when the time is up or `alive()` (the server's process
    still running) turns false first."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return True
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if not alive() or time.monotonic() > deadline:
            return False
        time.sleep(every)


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print("usage: python -m src.utils.core.servers URL SECONDS [PID]", file=sys.stderr)
        return 2
    pid = int(argv[2]) if len(argv) == 3 else None
    return 0 if wait_http(argv[0], float(argv[1]), (lambda: pid_alive(pid)) if pid else (lambda: True)) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

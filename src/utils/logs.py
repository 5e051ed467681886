"""Python logging to logs/logging_/<stage>/<folder>/<timestamp>.log, one file per run."""

from __future__ import annotations

import logging
import os
from datetime import datetime
from pathlib import Path

from src.utils.paths import LOGGING_DIR

FORMAT = "%(asctime)s %(levelname)s [%(name)s] %(message)s"


def start_log_file(stage: str, folder: str) -> tuple[Path, logging.Handler]:
    """Attach a file handler for this run to the root logger; returns the file and the handler."""
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S-%f")
    path = LOGGING_DIR / stage / folder / f"{stamp}_{os.getpid()}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.setLevel(logging.INFO)
    root = logging.getLogger()
    root.addHandler(handler)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    return path, handler


def stop_log_file(handler: logging.Handler) -> None:
    handler.flush()
    logging.getLogger().removeHandler(handler)
    handler.close()

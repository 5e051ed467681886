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


def quiet_libraries() -> None:
    """Silence start-up chatter that says nothing about this run (GPU/TPU probes, tips, deprecations)."""
    import warnings

    for name in ("pytorch_lightning.utilities.rank_zero", "lightning_fabric.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # We log pickled models on purpose (pt2 reloads as a GraphModule, not the LightningModule).
    logging.getLogger("mlflow.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=r".*Checkpoint directory .* exists and is not empty.*")

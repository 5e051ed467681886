"""Logging: Hydra's job logging writes each run's log (<output dir>/<job name>.log); this keeps it readable."""

from __future__ import annotations

import logging


def quiet_libraries() -> None:
    """Silence start-up chatter that says nothing about this run (GPU/TPU probes, tips, deprecations)."""
    import warnings

    for name in ("pytorch_lightning.utilities.rank_zero", "lightning_fabric.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # We log pickled models on purpose (pt2 reloads as a GraphModule, not the LightningModule).
    logging.getLogger("mlflow.pytorch").setLevel(logging.ERROR)
    logging.getLogger("mlflow.system_metrics").setLevel(logging.WARNING)
    logging.getLogger("mlflow.types.type_hints").setLevel(logging.ERROR)  # the signature is not used
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=r".*Checkpoint directory .* exists and is not empty.*")

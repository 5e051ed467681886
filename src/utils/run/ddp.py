"""DDP and jobs in other processes: which process is a DDP worker (it trains, rank 0 records), the run it trains
into, and `build`/`Config` taken from the experiment's module when a launcher pickled them by value."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

from omegaconf import DictConfig

from src.utils.core.paths import ROOT

RUN_ENV = "WORKSPACE_RUN_ID"  # the run being trained, for the DDP processes Lightning starts


def from_module(build, schema: type) -> tuple:
    """`build` and `Config` as the entry script's module defines them.

    A launcher that runs jobs in other processes (joblib, submitit) pickles the task function; the entry script
    being `__main__` where it was pickled, its `build` and `Config` arrive there as copies made by value, whose
    type hints no longer resolve. In such a process they are taken from the experiment's module instead.
    """
    entry = Path(build.__code__.co_filename).resolve()
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    if build.__module__ != "__main__" or (main_file and Path(main_file).resolve() == entry):
        return build, schema
    module = importlib.import_module(".".join(entry.relative_to(ROOT).with_suffix("").parts))
    return module.build, getattr(module, schema.__name__) if schema.__module__ == "__main__" else schema


def ddp_worker(cfg: DictConfig | None = None) -> bool:
    """A DDP process besides rank 0: one Lightning started (it re-runs the entry script with LOCAL_RANK/NODE_RANK),
    or a task of `srun` other than the first when the run's strategy is DDP (SLURM starts every process)."""
    if int(os.environ.get("LOCAL_RANK", "0") or 0) > 0 or int(os.environ.get("NODE_RANK", "0") or 0) > 0:
        return True
    strategy = str(((cfg or {}).get("trainer") or {}).get("strategy") or "")
    return ("ddp" in strategy and int(os.environ.get("SLURM_NTASKS", "1") or 1) > 1
            and int(os.environ.get("SLURM_PROCID", "0") or 0) > 0)

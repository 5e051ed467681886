"""What a training run is checked for before it exists, beyond its typed config: the competition its objective is
measured by, the pruner a sweep asks, and the checkpoint it resumes from."""

from __future__ import annotations

from typing import Any

from src.utils.competition.spec import load as load_competition
from src.utils.config.schema import RunConfig, require
from src.utils.core.errors import WorkspaceError
from src.utils.core.paths import resolve
from src.utils.tune.checks import check_pruner


def train_checks(config: RunConfig) -> None:
    """The checks of a training config that read other files: the competition's metric and the pruner node."""
    if config.competition is not None:
        metric = load_competition(config.competition).metric
        require(config.objective != "oof" or metric.direction == config.monitor_mode, "objective", config.objective,
                f"the competition's metric {metric.name} is to be {metric.direction}imized but monitor_mode="
                f"{config.monitor_mode}; set monitor_mode={metric.direction}")
    if config.pruner is not None:
        check_pruner(config.pruner)


def checked_ckpt(path: str | None, max_epochs: int | None = None) -> str | None:
    """The checkpoint to resume from, checked before any run exists: a file Lightning wrote, with epochs left."""
    if not path:
        return None
    p = resolve(path)
    if not p.is_file():
        raise WorkspaceError(f"ckpt_path={path}: no such file; pick one under logs/lightning/")
    try:
        import torch

        ckpt = torch.load(p, map_location="cpu", weights_only=False)
        assert isinstance(ckpt, dict) and "state_dict" in ckpt
    except Exception as exc:
        raise WorkspaceError(f"ckpt_path={path} is not a readable Lightning checkpoint ({type(exc).__name__}); "
                             f"pick another one under logs/lightning/") from exc
    done = ckpt.get("loops", {}).get("fit_loop", {}).get("epoch_progress", {}).get("current", {}).get("processed")
    if max_epochs is not None and max_epochs > 0 and isinstance(done, int) and done >= max_epochs:
        raise WorkspaceError(f"ckpt_path={path} has already trained {done} epoch(s), and max_epochs={max_epochs}: "
                             f"nothing is left to train; resume with a larger max_epochs (e.g. "
                             f"max_epochs={done + max_epochs})")
    return str(p)


def folds_to_run(fold: Any, n_folds: int) -> list[int]:
    """The folds a run trains: `fold=all`, or the one fold named (which must exist)."""
    if str(fold) == "all":
        return list(range(n_folds))
    if not 0 <= int(fold) < n_folds:
        raise WorkspaceError(f"fold={fold} does not exist: the features have {n_folds} folds "
                             f"(use fold=0..{n_folds - 1} or fold=all)")
    return [int(fold)]

"""The config resolvers the workspace's YAML uses, registered by `register()` (called by the entry points' set-up):

    ${root:}            the project root, so output dirs and stores never depend on the cwd
    ${stable_id:LIST}   short hash of a list (sweep overrides -> Optuna study name)
    ${direction:max}    Optuna direction for a monitor mode
"""

from __future__ import annotations

import hashlib

from omegaconf import OmegaConf

from src.utils.core.paths import ROOT


def stable_id(items: object, space: object = None) -> str:
    """Short hash of a list of overrides (and a search space): the same sweep command always maps to the same
    study; a search space from config (hydra.sweeper.params) counts with its content, not only its name."""
    values = sorted(str(v) for v in (items or []))
    if space:
        values.append(str(sorted((str(k), str(v)) for k, v in dict(space).items())))
    return hashlib.sha256("\n".join(values).encode()).hexdigest()[:10]


def direction(mode: str) -> str:
    if mode not in ("max", "min"):
        raise ValueError(f"monitor_mode must be max or min, not {mode!r}")
    return "maximize" if mode == "max" else "minimize"


def register() -> None:
    for name, fn in (("root", lambda: str(ROOT)), ("stable_id", stable_id), ("direction", direction)):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_resolver(name, fn)

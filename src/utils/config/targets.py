"""The one instantiate allow-list: which packages a config's `_target_` may build from, per kind of node.

Hydra 1.4 builds config `_target_`s only from packages a trusted call site names. Experiment configs build from
the workspace's own code and the libraries below; the sweep's sampler and pruner nodes from Optuna's. A class
from another package is built once its package is added here.
"""

from __future__ import annotations

from typing import Any

BUILD = ("src.*", "torch.*", "pytorch_lightning.*", "torchmetrics.*", "torchvision.*", "timm.*", "sklearn.*",
         "scipy.*", "numpy.*", "lightgbm.*", "xgboost.*", "catboost.*")
# model, data, optimizer, callbacks, trainer, task, splitter, blend method, estimator ...
SAMPLERS = ("hydra_plugins.hydra_optuna_sweeper.*", "optuna.samplers.*")  # hydra.sweeper.sampler
PRUNERS = ("optuna.pruners.*", "src.*")  # the `pruner` node (src.*: by_steps and pruners of the workspace's own)


def instantiate(config: Any, *args: Any, trusted: tuple[str, ...] = (), allowed: tuple[str, ...] = BUILD,
                **kwargs: Any) -> Any:
    """`hydra.utils.instantiate` limited to `allowed` (default: what experiment configs build) and `trusted`."""
    import hydra

    return hydra.utils.instantiate(config, *args, _execution_whitelist_=(*allowed, *trusted), **kwargs)

"""`hydra/sweeper=workspace_optuna`: the Hydra plugin (its config node and its class), registered without importing
Optuna, so a command line is composed and checked (schema.preflight) before anything heavy loads. What the sweeper
does is in src/utils/optuna_sweeper.py, imported when a sweep starts."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.plugins import Plugins
from hydra_plugins.hydra_optuna_sweeper.config import OptunaSweeperConf
from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper


class WorkspaceOptunaSweeper(OptunaSweeper):
    """The plugin Hydra instantiates for `hydra/sweeper=workspace_optuna` (see src/utils/optuna_sweeper.py)."""

    def __init__(self, sampler: Any, heartbeat_interval: int | None = None, grace_period: int | None = None,
                 **kwargs: Any) -> None:
        from src.utils.optuna_sweeper import WorkspaceSweeperImpl

        self.sweeper = WorkspaceSweeperImpl(sampler, heartbeat_interval, grace_period, **kwargs)


@dataclass
class WorkspaceOptunaSweeperConf(OptunaSweeperConf):
    _target_: str = f"{__name__}.WorkspaceOptunaSweeper"
    # a trial whose worker sent no heartbeat for grace_period seconds is failed and its point queued again
    heartbeat_interval: int | None = 10
    grace_period: int | None = 60


# Hydra 1.4 instantiates `hydra.callbacks` without an execution whitelist and warns about it on every sweep; the
# callback is this workspace's own (src.utils.sweep), so that warning says nothing here.
warnings.filterwarnings("ignore", message=r"hydra\.utils\.instantiate\(\) resolved _target_='src\.utils\.sweep\.")
ConfigStore.instance().store(group="hydra/sweeper", name="workspace_optuna", node=WorkspaceOptunaSweeperConf,
                             provider="kaggle_workspace")
Plugins.instance().register(WorkspaceOptunaSweeper)

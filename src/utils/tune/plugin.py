"""`hydra/sweeper=workspace_optuna`: the Hydra plugin (its config node and its class), registered without importing
Optuna, so a command line is composed and checked (cli/preflight.py) before anything heavy loads. What the sweeper
does is in src/utils/tune/sweeper.py, imported when a sweep starts."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.plugins import Plugins
from hydra_plugins.hydra_optuna_sweeper.config import OptunaSweeperConf
from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper

from src.utils.config import resolvers
from src.utils.core import env


class WorkspaceOptunaSweeper(OptunaSweeper):
    """The plugin Hydra instantiates for `hydra/sweeper=workspace_optuna` (see src/utils/tune/sweeper.py)."""

    def __init__(self, sampler: Any, heartbeat_interval: int | None = None, grace_period: int | None = None,
                 **kwargs: Any) -> None:
        from src.utils.tune.sweeper import WorkspaceSweeperImpl

        self.sweeper = WorkspaceSweeperImpl(sampler, heartbeat_interval, grace_period, **kwargs)


@dataclass
class WorkspaceOptunaSweeperConf(OptunaSweeperConf):
    _target_: str = f"{__name__}.WorkspaceOptunaSweeper"
    # a trial whose worker sent no heartbeat for grace_period seconds is failed and its point queued again
    heartbeat_interval: int | None = 10
    grace_period: int | None = 60


def prepare_process() -> None:
    """What every Hydra process of the workspace needs before it composes or resolves a config: the environment
    (.env, MLflow's defaults), the resolvers and the plugins. The entry points' set-up calls it; so does a sweep job
    in a process of its own (joblib, submitit), when the sweep callback arrives there (tune/parent.py)."""
    env.load()
    resolvers.register()
    register()


def register() -> None:
    """Register `hydra/sweeper=workspace_optuna`, `hydra/launcher=submitit_slurm|submitit_local` with Hydra."""
    from src.utils.tune import launchers

    launchers.register()
    # Hydra 1.4 instantiates `hydra.callbacks` without an execution whitelist and warns about it on every sweep; the
    # callback is this workspace's own (src.utils.sweep, src.utils.tune.parent), so that warning says nothing here.
    warnings.filterwarnings("ignore", message=r"hydra\.utils\.instantiate\(\) resolved "
                                              r"_target_=.src\.utils\.(sweep|tune\.parent)\.")
    ConfigStore.instance().store(group="hydra/sweeper", name="workspace_optuna", node=WorkspaceOptunaSweeperConf,
                                 provider="kaggle_workspace")
    Plugins.instance().register(WorkspaceOptunaSweeper)

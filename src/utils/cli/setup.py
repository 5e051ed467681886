"""The one set-up of a workspace process, called first by every entry point (through `preflight`, or directly).

It does, in this order and once: the environment (`.env`, MLflow's defaults, before MLflow is imported), the check
that the code imported is this workspace's own, the config resolvers (`${root:}`, `${stable_id:}`,
`${direction:}`), and the Hydra plugins of the workspace (`hydra/sweeper=workspace_optuna`,
`hydra/launcher=submitit_slurm|submitit_local`). With `collector=True` (training scripts) the cyclic collector is
paused for the heavy imports that follow; the harness resumes it once they are in (src/utils/core/collector.py).
Nothing of this happens when a module is imported.
"""

from __future__ import annotations

from src.utils.core import collector, paths
from src.utils.tune.plugin import prepare_process

_done: set[str] = set()


def setup(collector_paused: bool = False) -> None:
    if "base" not in _done:
        paths.check_workspace()
        prepare_process()  # .env and MLflow's defaults, resolvers, plugins
        _done.add("base")
    if collector_paused and "collector" not in _done:
        collector.pause()
        _done.add("collector")


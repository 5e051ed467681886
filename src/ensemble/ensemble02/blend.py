"""ensemble02: blend finished fold=all runs of the diabetes sample (regression), tracked as a run.

    poetry run python src/ensemble/ensemble02/blend.py members.sweeps=[<sweep run_id>]          # its top-5 trials
    poetry run python src/ensemble/ensemble02/blend.py members.runs=[<run_id>,<run_id>] method=stacking
    poetry run python src/ensemble/ensemble02/blend.py members.experiments=[model02] members.top_k=3 method=mean

What this folder decides is what makes the ensemble: its config (config/ensemble/ensemble02/: members, method and
its settings). Members' checks, arrays, nested CV, tracking and the submission: src/utils/ensemble.py; the
methods: src/utils/blend.py (a method of your own goes in this folder, named by method._target_).
"""

from __future__ import annotations

from dataclasses import dataclass

import hydra
from omegaconf import DictConfig

from src.utils.paths import config_dir
from src.utils.schema import EnsembleConfig, preflight


@dataclass
class Config(EnsembleConfig):
    """ensemble02's keys: the shared ones (members, method, nested_cv, ...); the values are in config.yaml."""


@hydra.main(config_path=config_dir(__file__), config_name="config")
def main(cfg: DictConfig) -> float:
    from src.utils.ensemble import blend  # MLflow and scikit-learn load once the command line is checked

    return blend(cfg, Config, __file__)


if __name__ == "__main__":
    preflight(__file__, Config)  # a wrong key, type or value: one error line before anything starts
    main()

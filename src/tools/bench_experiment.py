"""The experiment scripts/bench.sh measures: a model folder, its config, and the data folders its features come from.

`experiment(name)` reads src/model/<name>/train.py's composed config and follows its `feature_dir` to the feature
folder whose config writes it, that folder's `dataset_dir` to the dataset folder writing it, and that folder's raw
data; every path is kept relative to the project root, so it holds in the benchmark's throw-away copy as it does
here. A name or a chain that does not resolve is a ValueError whose text bench.py prints as its usage error.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from src.utils.core.paths import ROOT


@dataclass(frozen=True)
class Experiment:
    """Paths relative to the project root, so they hold in the throw-away copy as they do here."""

    name: str  # the model folder: src/model/<name>, config/model/<name>
    train_py: str
    config_dir: str
    mlflow_experiment: str  # the config's experiment_name
    feature_dir: str  # the config's feature_dir
    feature: str  # the feature folder writing feature_dir (src/feature/<feature>/build_features.py)
    dataset: str  # the dataset folder that feature folder reads (src/dataset/<dataset>/make_dataset.py)
    raw_dir: str  # where that dataset folder reads the raw data
    batch_size: int  # 0 for a tree folder (no batches)
    competition: str = "digit-recognizer"  # the dataset folder's competition
    monitor_mode: str = "max"  # the config's monitor_mode: the direction of "best"
    max_epochs: int = 15  # the config's max_epochs (0 for a tree folder)

    def epochs_override(self, epochs: int | None) -> list[str]:
        """`max_epochs=<epochs>` for a network when --epochs is given; nothing for a tree (its rounds are its own)."""
        return [f"max_epochs={epochs}"] if epochs and self.max_epochs else []


def _compose(config_dir: Path) -> Any:
    """A folder's config as its entry script composes it (no overrides)."""
    import hydra

    import src.utils.tune.plugin  # noqa: F401  (registers hydra/sweeper=workspace_optuna)

    with hydra.initialize_config_dir(config_dir=str(config_dir)):
        return hydra.compose("config")


def _inside_root(value: str, what: str) -> str:
    path = Path(os.path.normpath(Path(value) if Path(value).is_absolute() else ROOT / value))
    if not path.is_relative_to(ROOT):
        raise ValueError(f"{what}={value} is outside the project; the benchmark builds and reads the data in a "
                         f"throw-away copy of the project, so it needs a path under the project root")
    return str(path.relative_to(ROOT))


def _writer(stage: str, output_dir: str, script: str) -> str:
    """The stage folder whose config's output_dir is `output_dir` (relative to the root)."""
    for cfg_file in sorted((ROOT / "config" / stage).glob("*/config.yaml")):
        folder = cfg_file.parent.name
        if not (ROOT / "src" / stage / folder / script).is_file():
            continue
        out = _compose(cfg_file.parent).get("output_dir")
        if out is not None and _inside_root(str(out), f"output_dir of {cfg_file}") == output_dir:
            return folder
    raise ValueError(f"no {stage} folder writes {output_dir} (no config/{stage}/*/config.yaml with that "
                     f"output_dir and a src/{stage}/<folder>/{script})")


def experiment(name: str) -> Experiment:
    """The model folder `name` and the chain of data folders that makes its features."""
    train_py, config_dir = f"src/model/{name}/train.py", f"config/model/{name}"
    if not name or Path(name).name != name or not (ROOT / train_py).is_file() \
            or not (ROOT / config_dir / "config.yaml").is_file():
        have = sorted(p.parent.name for p in (ROOT / "config/model").glob("*/config.yaml")
                      if (ROOT / "src/model" / p.parent.name / "train.py").is_file())
        raise ValueError(f"--experiment {name}: no model folder with {train_py} and {config_dir}/config.yaml "
                         f"(model folders: {', '.join(have) or 'none'})")
    cfg = _compose(ROOT / config_dir)
    feature_dir = _inside_root(str(cfg.feature_dir), f"feature_dir of {config_dir}/config.yaml")
    feature = _writer("feature", feature_dir, "build_features.py")
    dataset_dir = _inside_root(str(_compose(ROOT / "config/feature" / feature).dataset_dir),
                               f"dataset_dir of config/feature/{feature}/config.yaml")
    dataset = _writer("dataset", dataset_dir, "make_dataset.py")
    dataset_cfg = _compose(ROOT / "config/dataset" / dataset)
    if dataset_cfg.get("raw_dir") is None:  # the competition's raw folder
        from src.utils.competition.spec import load

        dataset_cfg.raw_dir = str(load(str(dataset_cfg.competition)).cfg.raw_dir)
    raw_dir = _inside_root(str(dataset_cfg.raw_dir), f"raw_dir of config/dataset/{dataset}/config.yaml")
    return Experiment(name=name, train_py=train_py, config_dir=config_dir,
                      mlflow_experiment=str(cfg.experiment_name), feature_dir=feature_dir, feature=feature,
                      dataset=dataset, raw_dir=raw_dir, batch_size=int(cfg.get("batch_size") or 0),
                      competition=str(dataset_cfg.get("competition") or "digit-recognizer"),
                      monitor_mode=str(cfg.monitor_mode), max_epochs=int(cfg.get("max_epochs") or 0))

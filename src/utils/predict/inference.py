"""Inference from a packed run (scripts/kaggle_pack.sh), with the experiment's own code and nothing else.

A pack holds the run's code (src/utils and its model folder as logged), the dataset and feature folders that made
its features, their configs (`stages.json`), the competition file, the run's config and its models. On Kaggle
(or anywhere) `rebuild_features` runs the packed dataset and feature stages on the competition's files, exactly
as they built the run's features, and `pack_submission` predicts the test rows with the run's own data module and
models through Lightning (an estimator run: its pickled estimators) and writes the competition's submission: the
same steps, code and result as `src/model/<folder>/predict.py`. Needs numpy, pandas, scikit-learn, hydra and
omegaconf, and torch and pytorch_lightning for a network, or the estimator's library (LightGBM, XGBoost, CatBoost).
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf

from src.utils.data.features import Features
from src.utils.data.manifest import seal


def rebuild_features(code: Path, raw_dir: Path, work_dir: Path) -> Features:
    """The run's features made again from the competition's files in `raw_dir` by the packed stages."""
    stages = json.loads((code / "stages.json").read_text())
    dataset, feature = stages["dataset"], stages["feature"]
    dataset_dir, feature_dir = work_dir / dataset["folder"], work_dir / feature["folder"]
    for folder in (dataset_dir, feature_dir):
        folder.mkdir(parents=True, exist_ok=True)
    ds_cfg = OmegaConf.create(dataset["config"])
    make = importlib.import_module(f"src.dataset.{dataset['folder']}.make_dataset")
    facts = make.write(Path(raw_dir), ds_cfg, dataset_dir)
    ds_manifest = seal(dataset_dir, dataset["folder"], facts, competition=ds_cfg.get("competition"),
                       mlflow_run_id=dataset["run_id"])
    ft_cfg = OmegaConf.create({**feature["config"], "dataset_dir": str(dataset_dir)})
    build = importlib.import_module(f"src.feature.{feature['folder']}.build_features")
    facts = build.write(dataset_dir, ds_manifest, ft_cfg, feature_dir)
    manifest = seal(feature_dir, feature["folder"], facts, competition=ft_cfg.get("competition"),
                    mlflow_run_id=feature["run_id"])
    return Features(feature_dir, manifest)


def packed_scores(pack: Path, features: Features, competition, accelerator: str = "cpu"):
    """The packed models' test scores: networks (models/*.pth) through the run's data module and Lightning,
    estimators (models/*.pkl, pickled by their library's scikit-learn API) on the features' test rows."""
    from src.utils.core.logs import quiet_libraries

    quiet_libraries()
    estimators = sorted((pack / "models").glob("*.pkl"))
    if estimators:
        import pickle

        from src.utils.run.estimators import estimator_test_scores

        models = []
        for path in estimators:
            with open(path, "rb") as f:
                models.append(pickle.load(f))
        return estimator_test_scores(models, features, competition.task, competition.fold_models)
    import torch

    from src.utils.config.targets import instantiate
    from src.utils.run.predictions import predict_scores, predict_trainer, test_loader

    config = OmegaConf.load(pack / "code" / "config.yaml")
    models = [torch.load(p, map_location="cpu", weights_only=False) for p in sorted((pack / "models").glob("*.pth"))]
    datamodule = instantiate(config.data, features=features, fold=0)
    return predict_scores(models, test_loader(datamodule, features), competition.task, competition.fold_models,
                          predict_trainer(accelerator))


def pack_submission(pack: Path, features: Features, accelerator: str = "cpu") -> pd.DataFrame:
    """The packed run's submission on `features`' test rows, checked against the competition's sample."""
    from src.utils.competition.spec import load as load_competition

    config = OmegaConf.load(pack / "code" / "config.yaml")
    competition = load_competition(str(config.competition))
    scores = packed_scores(pack, features, competition, accelerator)
    return competition.submission(features.test_ids(competition.ids), scores)


def check_against_sample(submission: pd.DataFrame, raw_dir: Path, code: Path) -> None:
    """Same columns, ids and rows as the competition's sample_submission.csv in `raw_dir`."""
    from src.utils.competition.spec import from_yaml

    config = OmegaConf.load(code / "config.yaml")
    name = str(config.competition)
    text = (code / "config" / "competition" / f"{name}.yaml").read_text()
    competition = from_yaml(name, text)
    competition.cfg.raw_dir = str(raw_dir)
    competition.check_submission(submission)


def blend_submission(ensemble: Path, member_scores: list, ids: pd.DataFrame, raw_dir: Path) -> pd.DataFrame:
    """A packed ensemble's submission: its fitted method (blend/method.pkl of the run) on the members' test scores
    (in the order of members.json), checked against the competition's sample_submission.csv in `raw_dir`."""
    import pickle

    import numpy as np

    from src.utils.competition.spec import from_yaml

    config = OmegaConf.load(ensemble / "config.yaml")
    competition = from_yaml(str(config.competition), (ensemble / "competition.yaml").read_text())
    with open(ensemble / "method.pkl", "rb") as f:
        method = pickle.load(f)
    scores = method.predict(np.stack([np.asarray(s, dtype=np.float64).reshape(len(s), -1) for s in member_scores]))
    submission = competition.submission(ids, scores)
    competition.cfg.raw_dir = str(raw_dir)
    competition.check_submission(submission)
    return submission

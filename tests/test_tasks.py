"""The shared harness on every kind of task, in-process and fast, on tiny generated data: a competition file per
task (multiclass, binary with ROC-AUC, multi-label with F1, regression with RMSE), feature folders of memory-mapped
arrays or of image files read from disk by an augmenting data module, folds from GroupKFold and TimeSeriesSplit,
and a model whose outputs do not fit its task. The experiment is tests/experiment (a tiny LightningModule and its
data modules), handed to `src.utils.run.harness.fit` as a model folder's train.py hands it.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from omegaconf import OmegaConf

from src.utils.competition import spec as competitions
from src.utils.core.errors import WorkspaceError
from src.utils.data import cv
from src.utils.data.features import load_features
from src.utils.data.manifest import seal
from tests.experiment.train import build
from tests.test_experiments import hydra_config, store  # noqa: F401  (the module's MLflow store)

pytestmark = pytest.mark.usefixtures("store")

COMPETITIONS = {
    "tiny-multiclass": {
        "task": {"_target_": "src.tasks.Multiclass", "classes": ["cat", "dog", "owl"]}, "target": ["animal"],
        "metrics": {"accuracy": {"fn": {"_target_": "sklearn.metrics.accuracy_score", "_partial_": True},
                                 "input": "label", "direction": "max"},
                    "log_loss": {"fn": {"_target_": "sklearn.metrics.log_loss", "_partial_": True,
                                        "labels": [0, 1, 2]}, "input": "score", "direction": "min"}}},
    "tiny-binary": {
        "task": {"_target_": "src.tasks.Binary"}, "target": ["is_positive"],
        "metrics": {"roc_auc": {"fn": {"_target_": "sklearn.metrics.roc_auc_score", "_partial_": True},
                                "input": "score", "direction": "max"}},
        "submission": {"values": "score"}},
    "tiny-multilabel": {
        "task": {"_target_": "src.tasks.MultiLabel"}, "target": ["red", "green", "blue"],
        "metrics": {"f1": {"fn": {"_target_": "sklearn.metrics.f1_score", "_partial_": True, "average": "micro"},
                           "input": "label", "direction": "max"}}},
    "tiny-regression": {
        "task": {"_target_": "src.tasks.Regression"}, "target": ["price"],
        "metrics": {"rmse": {"fn": {"_target_": "sklearn.metrics.root_mean_squared_error", "_partial_": True},
                             "input": "score", "direction": "min"}}},
}
WIDTH = {"tiny-multiclass": 3, "tiny-binary": 1, "tiny-multilabel": 3, "tiny-regression": 1}
KIND = {"tiny-multiclass": "multiclass", "tiny-binary": "binary", "tiny-multilabel": "multilabel",
        "tiny-regression": "regression"}
N, N_TEST = 60, 12


@pytest.fixture(scope="module")
def competition_dir(tmp_path_factory):
    """The tiny competitions' files, in a config/competition folder of their own."""
    folder = tmp_path_factory.mktemp("competition")
    raw = tmp_path_factory.mktemp("raw")
    for name, spec in COMPETITIONS.items():
        doc = {"slug": name, "raw_dir": str(raw / name), "id": ["row_id"],
               "files": {"train": "train.csv", "test": "test.csv", "sample_submission": "sample_submission.csv"},
               **spec}
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(doc))
        (raw / name).mkdir()
        values = {t: 0 for t in spec["target"]} if name != "tiny-multiclass" else {"animal": "cat"}
        pd.DataFrame({"row_id": 1000 + np.arange(N_TEST), **values}).to_csv(raw / name / "sample_submission.csv",
                                                                            index=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(competitions, "COMPETITION_DIR", folder)
        yield folder


def targets(name: str, rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
    signal = x[:, 0] + 0.5 * x[:, 1]
    if name == "tiny-multiclass":
        return np.digitize(signal, np.quantile(signal, [1 / 3, 2 / 3])).astype(np.int64)
    if name == "tiny-binary":
        return (signal > np.median(signal)).astype(np.float32)
    if name == "tiny-multilabel":
        return (x[:, :3] > 0).astype(np.float32)
    return (3 * signal + rng.normal(0, 0.1, len(x))).astype(np.float32)


def write_features(folder: Path, name: str, splitter: dict, images: bool = False, groups: bool = False) -> Path:
    """A feature folder as a feature stage writes it (manifest through src/utils/data/manifest.py)."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    x, x_test = rng.normal(size=(N, 4)).astype(np.float32), rng.normal(size=(N_TEST, 4)).astype(np.float32)
    y = targets(name, rng, x)
    frame = pd.DataFrame({"group": np.arange(N) // 6, "y": y if y.ndim == 1 else y[:, 0]})
    node = OmegaConf.create({"splitter": splitter, "stratify": None, "groups": "group" if groups else None})
    folds = cv.assign_folds(node, frame)
    if images:
        from PIL import Image

        (folder / "images").mkdir()
        for split, data in (("train", x), ("test", x_test)):
            files = []
            for i, row in enumerate(data):
                pixels = np.clip((np.outer(row, row[::-1]) + 2) * 60, 0, 255).astype(np.uint8)  # 4x4, from the row
                files.append(f"images/{split}{i}.png")
                Image.fromarray(np.kron(pixels, np.ones((2, 2), np.uint8))).save(folder / files[-1])
            np.save(folder / f"{split}_files.npy", np.array(files))
    else:
        np.save(folder / "train_x.npy", x)
        np.save(folder / "test_x.npy", x_test)
    np.save(folder / "train_y.npy", y)
    np.save(folder / "folds.npy", folds.folds)
    np.save(folder / "test_ids.npy", 1000 + np.arange(N_TEST))
    seal(folder, folder.name, {**folds.facts(), "source": {"source": "generated", "is_sample": True},
                               "dataset": {"name": "tinydata", "dir": str(folder / "none"), "hash": "0" * 64,
                                           "run_id": "none"}},
         competition=name, mlflow_run_id="none")
    return folder


def config(name: str, feature_dir: Path, fold="all", images: bool = False, width: int | None = None, **extra):
    kind = KIND[name]
    return OmegaConf.create({
        "experiment_name": f"tasks-{name}", "competition": name, "feature_dir": str(feature_dir), "lr": 0.01,
        "batch_size": 16, "max_epochs": 2, "seed": 0, "fold": fold, "debug": False, "ckpt_path": None,
        "monitor": "val_loss", "monitor_mode": "min", "optimizer": None, "pruner": None, "note": None,
        "model": {"_target_": "tests.experiment.model.TinyNet", "kind": kind, "n_inputs": 4, "image": images,
                  "n_outputs": width or WIDTH[name]},
        "data": {"_target_": "tests.experiment.data.TinyData", "batch_size": 16, "images": images},
        "callbacks": {"model_checkpoint": {"_target_": "pytorch_lightning.callbacks.ModelCheckpoint",
                                           "monitor": "val_loss", "mode": "min", "save_top_k": 1}},
        "trainer": {"_target_": "pytorch_lightning.Trainer", "accelerator": "cpu", "devices": 1, "max_epochs": 2,
                    "deterministic": True, "enable_progress_bar": False, "enable_model_summary": False,
                    "num_sanity_val_steps": 1, "log_every_n_steps": 1},
        "mlflow": {"log_model": True, "log_checkpoint": False, "system_metrics": False}, **extra})


@pytest.fixture
def hydra_run(tmp_path: Path):
    """Hydra's runtime as a real single run has it (output folder, overrides, choices)."""
    return hydra_config("model", "model01", [], tmp_path / "hydra")


def run_of(experiment: str):
    import mlflow

    client = mlflow.MlflowClient()
    exp = client.get_experiment_by_name(experiment)
    return client, client.search_runs([exp.experiment_id], order_by=["attributes.start_time DESC"])[0]


def artifact(client, run_id: str, path: str) -> Path:
    return Path(client.download_artifacts(run_id, path))


@pytest.mark.parametrize("name,metric", [("tiny-multiclass", "accuracy"), ("tiny-binary", "roc_auc"),
                                         ("tiny-multilabel", "f1"), ("tiny-regression", "rmse")])
def test_every_task_trains_scores_its_oof_and_predicts_the_test_rows(name, metric, competition_dir, hydra_run,
                                                                       tmp_path) -> None:
    from src.utils.run.harness import fit

    features = write_features(tmp_path / "features", name, {"_target_": "sklearn.model_selection.KFold",
                                                             "n_splits": 3, "shuffle": True, "random_state": 0})
    fit(config(name, features), build)
    client, run = run_of(f"tasks-{name}")
    assert run.info.status == "FINISHED" and run.data.tags["task"] == KIND[name]
    assert f"oof_{metric}" in run.data.metrics and np.isfinite(run.data.metrics[f"oof_{metric}"])
    oof = pd.read_csv(artifact(client, run.info.run_id, "oof_predictions.csv"))
    assert len(oof) == N and list(oof["row"]) == list(range(N))  # every row once, in order
    competition = competitions.load(name)
    for target in competition.targets:  # columns named from the competition's targets
        assert target in oof and f"pred_{target}" in oof
    if name == "tiny-multiclass":
        assert set(oof["animal"]) <= {"cat", "dog", "owl"} and {"prob_cat", "prob_dog", "prob_owl"} <= set(oof)
        assert np.allclose(oof[["prob_cat", "prob_dog", "prob_owl"]].sum(1), 1)  # softmax by the task
    if name in ("tiny-binary", "tiny-multilabel"):
        probs = oof[[c for c in oof if c.startswith("prob_")]].to_numpy()
        assert probs.min() >= 0 and probs.max() <= 1 and len(np.unique(probs)) > 2  # sigmoid, not a constant
    # the metric is scikit-learn's on these very columns
    y, pred = oof[competition.targets].to_numpy(), oof[[f"pred_{t}" for t in competition.targets]].to_numpy()
    if name == "tiny-regression":
        from sklearn.metrics import root_mean_squared_error

        assert run.data.metrics["oof_rmse"] == pytest.approx(root_mean_squared_error(y[:, 0], pred[:, 0]))
    files = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert "test_predictions.csv" in files and any(f.endswith(".png") for f in files)
    test = pd.read_csv(artifact(client, run.info.run_id, "test_predictions.csv"))
    assert list(test["row_id"]) == list(1000 + np.arange(N_TEST))
    # the submission of those predictions, in the competition's format, passes its sample's check
    scores = np.load(artifact(client, run.info.run_id, "predictions/test_scores.npy"))
    submission = competition.submission(load_features(features).test_ids(competition.ids), scores)
    competition.check_submission(submission)
    assert list(submission.columns) == ["row_id", *competition.targets]


def test_image_files_from_disk_with_an_augmenting_data_module(competition_dir, hydra_run, tmp_path) -> None:
    from src.utils.predict.reload import load_run
    from src.utils.predict.submission import test_scores
    from src.utils.run.harness import fit

    features = write_features(tmp_path / "images", "tiny-binary", {"_target_": "sklearn.model_selection.KFold",
                                                                    "n_splits": 2}, images=True)
    assert not (features / "train_x.npy").exists()  # only file paths: the data module reads the PNGs
    fit(config("tiny-binary", features, images=True, experiment_name="tasks-images"), build)
    client, run = run_of("tasks-images")
    assert run.info.status == "FINISHED" and "oof_roc_auc" in run.data.metrics
    # predict.py's path: the run's models and data module, loaded with the logged code, through trainer.predict
    loaded = load_run(run.info.run_id)
    again = test_scores(loaded, load_features(features))
    logged = np.load(artifact(client, run.info.run_id, "predictions/test_scores.npy"))
    assert np.allclose(again, logged, atol=1e-6)


def test_group_kfold_keeps_groups_together_and_time_series_never_trains_on_the_future(tmp_path) -> None:
    frame = pd.DataFrame({"group": np.arange(40) // 5, "label": np.arange(40) % 2})
    node = OmegaConf.create({"splitter": {"_target_": "sklearn.model_selection.GroupKFold", "n_splits": 4},
                             "stratify": None, "groups": "group"})
    folds = cv.assign_folds(node, frame)
    assert not folds.ordered and (folds.folds >= 0).all()
    for g, rows in frame.groupby("group").groups.items():
        assert len(set(folds.folds[rows])) == 1, g  # a group is never split across folds
    node = OmegaConf.create({"splitter": {"_target_": "sklearn.model_selection.TimeSeriesSplit", "n_splits": 3},
                             "stratify": None, "groups": None})
    ts = cv.assign_folds(node, frame)
    assert ts.ordered and (ts.folds[:10] == -1).all()  # the first block is never validated
    for k in range(3):
        train, valid = cv.train_rows(ts.folds, k, ts.ordered), np.flatnonzero(ts.folds == k)
        assert len(train) and train.max() < valid.min()  # only rows before the validation block


def test_time_series_features_train_each_fold_on_the_past_only(competition_dir, hydra_run, tmp_path) -> None:
    from src.utils.run.harness import fit

    features = write_features(tmp_path / "ts", "tiny-regression",
                              {"_target_": "sklearn.model_selection.TimeSeriesSplit", "n_splits": 3})
    loaded = load_features(features)
    for k in range(3):
        train, valid = loaded.split(k)
        assert train.max() < valid.min()
    fit(config("tiny-regression", features, experiment_name="tasks-ts"), build)
    client, run = run_of("tasks-ts")
    oof = pd.read_csv(artifact(client, run.info.run_id, "oof_predictions.csv"))
    assert run.info.status == "FINISHED" and len(oof) == (loaded.folds >= 0).sum() < N  # validated rows only


@pytest.mark.parametrize("name,width", [("tiny-regression", 3), ("tiny-binary", 2), ("tiny-multiclass", 1)])
def test_outputs_that_do_not_fit_the_task_fail_on_the_first_batch(name, width, competition_dir, hydra_run,
                                                                    tmp_path, capsys) -> None:
    from src.utils.run.harness import fit

    features = write_features(tmp_path / "f", name, {"_target_": "sklearn.model_selection.KFold", "n_splits": 2})
    start = time.perf_counter()
    with pytest.raises(SystemExit) as exit_:
        fit(config(name, features, fold=0, width=width, experiment_name=f"tasks-bad-{name}"), build)
    assert exit_.value.code == 2 and time.perf_counter() - start < 30
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("error: the model's validation_step returned outputs of shape")
    client, run = run_of(f"tasks-bad-{name}")
    assert run.info.status == "FAILED" and "train_loss" not in run.data.metrics  # before any training epoch


def test_bad_cv_settings_are_one_line(tmp_path) -> None:
    frame = pd.DataFrame({"label": [0] * 3 + [1] * 20})
    cases = [({"_target_": "sklearn.model_selection.StratifiedKFold", "n_splits": 5}, "label", None, "has only 3 rows"),
             ({"_target_": "sklearn.model_selection.StratifiedKFold", "n_splits": 2}, "labl", None, "no column 'labl'"),
             ({"_target_": "sklearn.model_selection.GroupKFold", "n_splits": 2}, None, None, "groups is null"),
             ({"_target_": "sklearn.model_selection.GroupKFold", "n_splits": 2}, None, "team", "no column 'team'"),
             ({"_target_": "sklearn.model_selection.GroupKFold", "n_splits": 30}, None, "label", "cannot split"),
             ({"_target_": "sklearn.model_selection.NoSuchFold"}, None, None, "cannot be built")]
    for splitter, stratify, groups, message in cases:
        node = OmegaConf.create({"splitter": splitter, "stratify": stratify, "groups": groups})
        with pytest.raises(WorkspaceError) as err:
            cv.assign_folds(node, frame)
        assert message in str(err.value) and "\n" not in str(err.value), str(err.value)


def test_a_truncated_or_edited_feature_file_is_one_line_naming_the_rebuild(competition_dir, tmp_path) -> None:
    import os

    features = write_features(tmp_path / "featureX", "tiny-regression",
                              {"_target_": "sklearn.model_selection.KFold", "n_splits": 2})
    data = (features / "train_y.npy").read_bytes()
    (features / "train_y.npy").write_bytes(data[:-8])
    with pytest.raises(WorkspaceError) as err:
        load_features(features)
    assert "train_y.npy" in str(err.value) and "truncated" in str(err.value)
    assert "src/feature/featureX/build_features.py" in str(err.value)
    (features / "train_y.npy").write_bytes(data[:-4] + b"\x00\x00\x00\x01")  # same size, edited
    later = (features / "manifest.json").stat().st_mtime + 5
    os.utime(features / "train_y.npy", (later, later))
    with pytest.raises(WorkspaceError) as err:
        load_features(features)
    assert "was edited after it was built" in str(err.value)

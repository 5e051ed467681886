"""src.utils.predict: a loaded run's properties (built in memory, no MLflow), which run `run_id=best` takes (from
runs in memory), the features a run was trained on, and the packed-notebook helpers that check and blend a
submission from files."""

from __future__ import annotations

import pickle
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from src.utils.competition.spec import COMPETITION_DIR
from src.utils.core.errors import WorkspaceError
from src.utils.data.manifest import seal
from src.utils.ensemble.methods import Mean
from src.utils.predict import reload
from src.utils.predict.inference import blend_submission, check_against_sample
from src.utils.predict.reload import LoadedRun, best_run_id
from src.utils.predict.submission import run_features


def loaded(params: dict | None = None, tags: dict | None = None, config: dict | None = None, **kw) -> LoadedRun:
    return LoadedRun(run_id="0123456789abcdef", experiment="model01", model="the model",
                     config=OmegaConf.create(config or {}), metrics={"best_val_acc": 0.9}, params=params or {},
                     tags=tags or {}, status="FINISHED", **kw)


# --- LoadedRun --------------------------------------------------------------------------------------------------------
def test_the_folder_comes_from_the_tags() -> None:
    assert loaded(tags={"experiment_folder": "src/model/model01"}).folder == "src/model/model01"


def test_a_single_fold_run_predicts_with_its_model() -> None:
    run = loaded(params={"fold": "2"})
    assert run.fold_models() == ["the model"] and run.folds == [2]
    assert loaded().fold_models() == ["the model"]


def test_a_fold_all_run_predicts_with_its_fold_models(monkeypatch) -> None:
    asked: list[str] = []

    def model_named(self, name: str) -> str:
        asked.append(name)
        return f"loaded {name}"

    monkeypatch.setattr(LoadedRun, "model_named", model_named)
    run = loaded(params={"fold": "all"}, tags={"fold_models": "0,2,3"})
    assert run.folds == [0, 2, 3]
    assert run.fold_models() == ["loaded model_fold0", "loaded model_fold2", "loaded model_fold3"]
    assert asked == ["model_fold0", "model_fold2", "model_fold3"]


def test_a_run_older_than_the_oldest_format_is_one_error_naming_the_commit_that_reads_it() -> None:
    older = loaded(params={"fold": "all"})  # logged before the fold_models tag
    with pytest.raises(WorkspaceError, match=r"^run 01234567 was logged by an older version of this workspace \(it "
                                             r"records no tag fold_models\); this code reads runs logged since "
                                             r"commit ee0232e \(2026-11-30\): read it with commit 686a27a "):
        older.fold_models()


def test_history_is_sorted_by_step() -> None:
    rows = [SimpleNamespace(step=2, value=0.8), SimpleNamespace(step=0, value=0.5), SimpleNamespace(step=1, value=0.7)]
    client = SimpleNamespace(get_metric_history=lambda run_id, metric: rows if metric == "val_acc" else [])
    history = loaded(_client=client).history("val_acc")
    assert history["step"].tolist() == [0, 1, 2] and history["value"].tolist() == [0.5, 0.7, 0.8]
    assert loaded(_client=client).history("other").empty


# --- run_features -----------------------------------------------------------------------------------------------------
def features_dir(folder: Path, seed: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "train_y.npy", np.arange(6) % 2)
    np.save(folder / "folds.npy", np.array([0, 1, 0, 1, 0, 1]))
    np.save(folder / "test_x.npy", np.full((2, 3), seed, dtype=np.float32))
    seal(folder, "feature09", {"n_folds": 2})
    return folder


def test_run_features_are_the_features_the_run_was_trained_on(tmp_path: Path) -> None:
    folder = features_dir(tmp_path / "feature09", seed=1)
    from src.utils.core.io import read_json

    content = read_json(folder / "manifest.json")["content_hash"]
    run = loaded(config={"feature_dir": str(folder)}, tags={"feature09_hash": content})
    assert run_features(run).content_hash == content
    untagged = loaded(config={"feature_dir": str(folder)})  # logged before runs named their features' hash
    with pytest.raises(WorkspaceError, match="records no tag feature09_hash"):
        run_features(untagged)


def test_run_features_refuses_features_that_changed_since(tmp_path: Path) -> None:
    folder = features_dir(tmp_path / "feature09", seed=2)
    run = loaded(config={"feature_dir": str(folder)}, tags={"feature09_hash": "a" * 64})
    with pytest.raises(WorkspaceError, match=r"^run 01234567 was trained on feature09 aaaaaaaaaaaa but .*feature09 "
                                             r"now holds [0-9a-f]{12}; rebuild the features"):
        run_features(run)


# --- the packed notebook's helpers ------------------------------------------------------------------------------------
def code_dir(tmp_path: Path, name: str) -> Path:
    code = tmp_path / "code"
    (code / "config" / "competition").mkdir(parents=True)
    (code / "config.yaml").write_text(f"competition: {name}\n")
    (code / "config" / "competition" / f"{name}.yaml").write_text((COMPETITION_DIR / f"{name}.yaml").read_text())
    return code


def raw(tmp_path: Path, frame: pd.DataFrame) -> Path:
    folder = tmp_path / "input"
    folder.mkdir()
    frame.to_csv(folder / "sample_submission.csv", index=False)
    return folder


def test_check_against_sample_reads_the_packed_competition(tmp_path: Path) -> None:
    code = code_dir(tmp_path, "digit-recognizer")
    raw_dir = raw(tmp_path, pd.DataFrame({"ImageId": [1, 2, 3], "Label": 0}))
    check_against_sample(pd.DataFrame({"ImageId": [1, 2, 3], "Label": [7, 1, 0]}), raw_dir, code)
    with pytest.raises(WorkspaceError, match="has 2 rows but"):
        check_against_sample(pd.DataFrame({"ImageId": [1, 2], "Label": [7, 1]}), raw_dir, code)
    with pytest.raises(WorkspaceError, match=r"has columns \['ImageId', 'label'\]"):
        check_against_sample(pd.DataFrame({"ImageId": [1, 2, 3], "label": 0}), raw_dir, code)


def packed_ensemble(tmp_path: Path, members: np.ndarray) -> Path:
    ensemble = tmp_path / "ensemble"
    ensemble.mkdir()
    (ensemble / "config.yaml").write_text("competition: diabetes-sample\n")
    (ensemble / "competition.yaml").write_text((COMPETITION_DIR / "diabetes-sample.yaml").read_text())
    method = Mean().fit(members, np.zeros(members.shape[1]), lambda y, s: 0.0, 1.0)
    with open(ensemble / "method.pkl", "wb") as f:
        pickle.dump(method, f)
    return ensemble


def test_blend_submission_applies_the_fitted_method_and_checks_the_sample(tmp_path: Path) -> None:
    a, b = np.array([100.0, 150.0, 200.0]), np.array([110.0, 130.0, 210.0])
    ensemble = packed_ensemble(tmp_path, np.stack([a, b])[:, :, None])
    raw_dir = raw(tmp_path, pd.DataFrame({"id": [7, 8, 9], "target": 0.0}))
    ids = pd.DataFrame({"id": [9, 7, 8]})
    submission = blend_submission(ensemble, [a, b.reshape(-1, 1)], ids, raw_dir)  # 1-d or (rows, 1) scores
    assert list(submission.columns) == ["id", "target"]
    assert submission["id"].tolist() == [9, 7, 8]
    np.testing.assert_allclose(submission["target"], [105.0, 140.0, 205.0])


def test_blend_submission_refuses_ids_that_are_not_the_samples(tmp_path: Path) -> None:
    a = np.array([1.0, 2.0])
    ensemble = packed_ensemble(tmp_path, np.stack([a, a])[:, :, None])
    raw_dir = raw(tmp_path, pd.DataFrame({"id": [1, 2], "target": 0.0}))
    with pytest.raises(WorkspaceError, match=r"id values differ"):
        blend_submission(ensemble, [a, a], pd.DataFrame({"id": [1, 3]}), raw_dir)


# --- run_id=best ------------------------------------------------------------------------------------------------------
def a_run(run_id: str, fold: str, score: float, start: int, **tags: str) -> SimpleNamespace:
    return SimpleNamespace(info=SimpleNamespace(run_id=run_id, start_time=start),
                           data=SimpleNamespace(params={"fold": fold, "monitor": "val_acc", "monitor_mode": "max"},
                                                metrics={"best_val_acc": score}, tags=tags))


@pytest.fixture
def store(monkeypatch):
    """An experiment's FINISHED runs, newest first, as MLflow's client hands them to best_run_id."""
    runs: list[SimpleNamespace] = []

    class Client:
        def get_experiment_by_name(self, name: str):
            return SimpleNamespace(experiment_id="1")

        def search_runs(self, ids, filter_string, max_results, order_by):
            return sorted(runs, key=lambda r: -r.info.start_time)

    monkeypatch.setattr(reload, "setup_mlflow", lambda: None)
    monkeypatch.setattr(reload.mlflow, "MlflowClient", Client)
    return runs


def test_best_compares_fold_all_runs_by_their_cv_mean_not_a_lucky_single_fold(store, caplog) -> None:
    store += [a_run("single", "0", 0.99, 1), a_run("cv-low", "all", 0.95, 2), a_run("cv-high", "all", 0.97, 3),
              a_run("parent", "all", 0.999, 4, sweep="parent")]
    assert best_run_id("model01") == "cv-high" and "no fold=all run" not in caplog.text


def test_best_without_a_fold_all_run_compares_single_fold_runs_and_says_so(store, caplog) -> None:
    store += [a_run("fold0", "0", 0.96, 1), a_run("fold1", "1", 0.98, 2)]
    with caplog.at_level("INFO"):
        assert best_run_id("model01") == "fold1"
    assert "experiment model01 has no fold=all run; comparing its single-fold runs" in caplog.text

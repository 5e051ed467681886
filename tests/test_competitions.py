"""The second sample competition (diabetes-sample: tabular regression) through the whole chain, as a user runs it:
its own raw files, dataset02 -> feature02 -> a model02 sweep of fold=all runs with OOF RMSE and test predictions,
predict.py -> a submission that matches the competition's sample_submission.csv, rerun.sh exact, the trials
stacked by ensemble02 (packed and rerun exactly); and both
competitions side by side without mixing their folders, raw files or runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import Workspace

pytestmark = pytest.mark.slow
RAW = "_data/data/diabetes-sample/raw"


@pytest.fixture(scope="module")
def ws(prepared: Workspace) -> Workspace:
    for script in ("src/dataset/dataset02/make_dataset.py", "src/feature/feature02/build_features.py"):
        res = prepared.script(script)
        assert res.returncode == 0, res.stderr[-3000:]
    return prepared


def run_id_of(res) -> str:
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout.split("run_id=")[1].split()[0]


def test_the_regression_sample_has_its_own_files_folds_and_lineage(ws: Workspace) -> None:
    raw = ws.root / RAW
    source = json.loads((raw / "SOURCE.json").read_text())
    assert source["source"] == "sample:sklearn-diabetes" and source["is_sample"] is True
    assert (ws.root / "_data/data/raw/train.csv").is_file()  # the digit competition's raw files, beside it
    train, test = pd.read_csv(raw / "train.csv"), pd.read_csv(raw / "test.csv")
    assert (len(train), len(test)) == (354, 88) and "target" in train and "target" not in test
    manifest = json.loads((ws.root / "_data/feature/feature02/manifest.json").read_text())
    assert manifest["competition"] == "diabetes-sample" and manifest["n_folds"] == 5
    assert manifest["cv"]["splitter"] == "sklearn.model_selection._split.KFold"
    folds = np.load(ws.root / "_data/feature/feature02/folds.npy")
    assert sorted(np.bincount(folds).tolist()) == [70, 71, 71, 71, 71]
    # features of one competition cannot feed a model of the other
    res = ws.script("src/model/model01/train.py", "feature_dir=_data/feature/feature02", "max_epochs=1")
    err = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert res.returncode == 2 and len(err) == 1 and "was built for diabetes-sample" in err[0], res.stderr[-2000:]


def test_sweep_fold_all_submission_ensemble_and_rerun(ws: Workspace, tmp_path) -> None:
    from tests.test_ensembles import packed_submission

    client = ws.client()
    res = ws.script("src/model/model02/train.py", "-m", "fold=all", "hparams_search=lr_hidden",
                    "hydra.sweeper.n_trials=3", "max_epochs=4", "pruner=none")  # every trial to its end: members
    assert res.returncode == 0, res.stderr[-3000:]
    exp = client.get_experiment_by_name("model02")
    trials = client.search_runs([exp.experiment_id], "tags.optuna_state = 'COMPLETE'")
    assert len(trials) == 3 and all("best_val_rmse" in t.data.metrics and "oof_rmse" in t.data.metrics
                                    for t in trials)
    (parent,) = client.search_runs([exp.experiment_id], "tags.sweep = 'parent'")
    best = min(trials, key=lambda t: t.data.metrics["best_val_rmse"])  # monitor_mode=min: lower is better
    assert parent.data.tags["best_run_id"] == best.info.run_id

    run_id = best.info.run_id  # a fold=all run: each fold's model, OOF RMSE, test predictions
    run = client.get_run(run_id)
    m = run.data.metrics
    assert run.data.tags["competition"] == "diabetes-sample" and run.data.tags["task"] == "regression"
    assert {"oof_rmse", "oof_mae", "oof_r2", "cv_val_rmse"} <= set(m)
    oof = pd.read_csv(client.download_artifacts(run_id, "oof_predictions.csv"))
    assert list(oof.columns) == ["row", "fold", "target", "pred_target"] and len(oof) == 354
    assert m["oof_rmse"] == pytest.approx(float(np.sqrt(((oof["target"] - oof["pred_target"]) ** 2).mean())))
    files = {a.path for a in client.list_artifacts(run_id)}
    assert {"prediction_error.png", "test_predictions.csv", "competition.yaml"} <= files

    # the three trials stacked (Ridge on their OOF values): the ensemble's submission, packed and rerun exactly
    res = ws.script("src/ensemble/ensemble02/blend.py", f"members.sweeps=[{parent.info.run_id}]", "method=stacking")
    ensemble = run_id_of(res)
    em = client.get_run(ensemble).data.metrics
    assert {"oof_rmse", "nested_oof_rmse", "best_member_oof_rmse", "oof_r2"} <= set(em)
    assert em["best_member_oof_rmse"] == pytest.approx(min(t.data.metrics["oof_rmse"] for t in trials))
    local = Path(res.stdout.split("submission: ")[1].split()[0])
    blended = pd.read_csv(local)
    assert list(blended.columns) == ["id", "target"] and blended["target"].std() > 1
    assert packed_submission(ws, ensemble, RAW, "diabetes-sample", tmp_path) == local.read_bytes()
    again = ws.bash("scripts/rerun.sh", ensemble)
    assert again.returncode == 0, again.stdout + again.stderr[-3000:]
    assert "submission.csv: the same file, byte for byte" in again.stdout

    res = ws.script("src/model/model02/predict.py", f"run_id={run_id}")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "kaggle competitions submit -c diabetes-sample" in res.stdout
    submission = pd.read_csv(res.stdout.split("submission: ")[1].split()[0])
    sample = pd.read_csv(ws.root / RAW / "sample_submission.csv")
    assert list(submission.columns) == list(sample.columns) and submission["id"].tolist() == sample["id"].tolist()
    assert submission["target"].between(0, 500).all() and submission["target"].std() > 1  # values, not a constant
    logged = pd.read_csv(client.download_artifacts(run_id, "test_predictions.csv"))  # the run's own test predictions
    assert np.allclose(logged["pred_target"], submission["target"], rtol=1e-6)

    again = ws.bash("scripts/rerun.sh", run_id)
    assert again.returncode == 0, again.stdout + again.stderr[-3000:]
    line = next(x for x in again.stdout.splitlines() if x.startswith("best_val_rmse:"))
    assert "-> equal" in line

    # run_id=best follows the runs' own monitor and mode: the fold=all run with the lowest best_val_rmse (CV mean)
    res = ws.script("src/model/model02/predict.py")
    assert res.returncode == 0, res.stderr[-3000:]
    finished = [r for r in client.search_runs([exp.experiment_id], "attributes.status = 'FINISHED'")
                if r.data.tags.get("sweep") != "parent" and "best_val_rmse" in r.data.metrics
                and r.data.params.get("fold") == "all"]
    lowest = min(finished, key=lambda r: (r.data.metrics["best_val_rmse"], r.info.start_time))  # ties: the first
    assert f"model02 {lowest.info.run_id[:8]}" in res.stdout

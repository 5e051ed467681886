"""dataset01 and feature01 end to end, as real processes in a throw-away workspace copy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from src.dataset import raw_data
from src.utils.core.hashing import files_sha256
from src.utils.core.io import read_json
from tests.conftest import Workspace, write_kaggle_csvs


def runs_of(ws: Workspace, experiment: str):
    client = ws.client()
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"no MLflow experiment {experiment}"
    return client, client.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"])


def artifact_paths(client, run_id: str, path: str | None = None) -> set[str]:
    out = set()
    for item in client.list_artifacts(run_id, path):
        out |= artifact_paths(client, run_id, item.path) if item.is_dir else {item.path}
    return out


@pytest.mark.slow
def test_sample_data_through_both_stages(workspace: Workspace) -> None:
    ws = workspace
    res = ws.bash("scripts/prepare_data.sh")
    assert res.returncode == 0, res.stderr
    assert "SAMPLE DATA" in res.stdout + res.stderr

    res = ws.script("src/dataset/dataset01/make_dataset.py", "n_folds=4")
    assert res.returncode == 0, res.stderr
    out = ws.root / "_data/data/dataset01"
    manifest = read_json(out / "manifest.json")
    train = pd.read_parquet(out / "train.parquet")
    assert manifest["counts"]["train_rows"] == len(train) == 1437 and manifest["n_folds"] == 4
    assert sorted(train["fold"].unique()) == [0, 1, 2, 3]
    # stratified: every fold holds every class in about the same share
    per_fold_class = pd.crosstab(train["fold"], train["label"])
    assert (per_fold_class.max() - per_fold_class.min()).max() <= 1
    assert manifest["source"]["is_sample"] is True

    client, runs = runs_of(ws, "dataset01")
    (run,) = runs
    assert run.info.status == "FINISHED" and run.info.run_id == manifest["mlflow_run_id"]
    assert run.data.params["n_folds"] == "4" and run.data.tags["is_sample_data"] == "true"
    assert run.data.tags["content_hash"] == manifest["content_hash"]
    files = artifact_paths(client, run.info.run_id)
    assert "manifest.json" in files and any(f.startswith("logs/") and f.endswith(".log") for f in files)
    # artifacts live under logs/mlruns/artifacts of the workspace, not in the cwd
    assert (ws.root / "logs/mlruns/artifacts/dataset01").is_dir() and not (ws.cwd / "mlruns").exists()
    assert list((ws.root / "outputs/dataset01").glob("*/*/make_dataset.log"))  # Hydra's job log, attached above
    (source,) = run.inputs.dataset_inputs  # the raw folder it read, with the raw files' hash
    raw = ws.root / "_data/data/raw"
    raw_hash = files_sha256([raw / n for n in raw_data.RAW_FILES if (raw / n).exists()], raw)
    assert source.dataset.name == "raw" and source.dataset.digest == raw_hash[:20]

    res = ws.script("src/feature/feature01/build_features.py")
    assert res.returncode == 0, res.stderr
    fdir = ws.root / "_data/feature/feature01"
    fman = read_json(fdir / "manifest.json")
    assert fman["dataset"]["hash"] == manifest["content_hash"] and fman["dataset"]["name"] == "dataset01"
    assert fman["dataset"]["run_id"] == manifest["mlflow_run_id"]
    x = np.load(fdir / "train_x.npy")
    assert x.dtype == np.float32 and x.shape == (1437, 1, 28, 28)
    assert abs(float(x.mean())) < 1e-3 and abs(float(x.std()) - 1) < 1e-3  # standardised
    np.testing.assert_array_equal(np.load(fdir / "folds.npy"), train["fold"].to_numpy())
    client, (frun,) = runs_of(ws, "feature01")
    assert frun.data.tags["dataset01_run_id"] == manifest["mlflow_run_id"]
    assert "manifest.json" in artifact_paths(client, frun.info.run_id)

    # up to date: says so, changes nothing, logs no new run
    mtime = (fdir / "train_x.npy").stat().st_mtime_ns
    res = ws.script("src/feature/feature01/build_features.py")
    assert res.returncode == 0 and "up to date" in res.stderr + res.stdout
    assert (fdir / "train_x.npy").stat().st_mtime_ns == mtime
    assert len(runs_of(ws, "feature01")[1]) == 1
    # another config rebuilds; force=true rebuilds
    res = ws.script("src/feature/feature01/build_features.py", "normalization.method=minmax")
    assert res.returncode == 0, res.stderr
    x = np.load(fdir / "train_x.npy")
    assert x.min() == 0.0 and x.max() == 1.0
    res = ws.script("src/feature/feature01/build_features.py", "normalization.method=minmax", "force=true")
    assert res.returncode == 0 and "up to date" not in res.stderr
    assert len(runs_of(ws, "feature01")[1]) == 3

    # what the stages read of the competition file is one of their inputs: a renamed target rebuilds them, and a
    # model refuses features built under another version of the file, in one line, before any run
    competition = ws.root / "config/competition/digit-recognizer.yaml"
    text = competition.read_text()
    competition.write_text(text.replace("target: [Label]", "target: [Digit]"))
    res = ws.script("src/feature/feature01/build_features.py", "normalization.method=minmax")
    assert res.returncode == 0 and "up to date" not in res.stderr + res.stdout, res.stderr
    client, runs = runs_of(ws, "feature01")
    assert len(runs) == 4 and runs[-1].data.tags["competition_digest"] == read_json(fdir / "manifest.json")[
        "competition_digest"]
    competition.write_text(text)
    res = ws.script("src/model/model01/train.py", "max_epochs=1")
    (line,) = [line for line in res.stderr.splitlines() if line.strip()][-1:]
    assert res.returncode == 2 and line.startswith("error: _data/feature/feature01 was built under another version "
                                                   "of config/competition/digit-recognizer.yaml"), res.stderr
    assert "src/dataset/dataset01/make_dataset.py" in line and client.get_experiment_by_name("model01") is None


@pytest.mark.slow
def test_malformed_train_csv_fails_cleanly(workspace: Workspace) -> None:
    ws = workspace
    raw = write_kaggle_csvs(ws.root / "_data/data/raw", n_train=60, n_test=10)
    lines = (raw / "train.csv").read_text().splitlines()
    cells = lines[5].split(",")
    cells[30] = "300"
    lines[5] = ",".join(cells)
    (raw / "train.csv").write_text("\n".join(lines) + "\n")

    res = ws.script("src/dataset/dataset01/make_dataset.py")
    assert res.returncode != 0
    err_lines = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(err_lines) == 1 and "Traceback" not in res.stderr
    assert "train.csv line 6, column pixel29: pixel value 300 is outside 0-255" in err_lines[0]
    assert not (ws.root / "_data/data/dataset01").exists()
    # the failed attempt is recorded, with its log
    client, (run,) = runs_of(ws, "dataset01")
    assert run.info.status == "FAILED"
    assert any(p.startswith("logs/") for p in artifact_paths(client, run.info.run_id))


@pytest.mark.slow
def test_missing_inputs_name_the_command_to_run(workspace: Workspace) -> None:
    res = workspace.script("src/dataset/dataset01/make_dataset.py")
    assert res.returncode != 0 and "bash scripts/prepare_data.sh" in res.stderr.splitlines()[-1]
    res = workspace.script("src/feature/feature01/build_features.py")
    assert res.returncode != 0 and "src/dataset/dataset01/make_dataset.py" in res.stderr.splitlines()[-1]


def test_prepare_data_never_replaces_other_raw_data_silently(workspace: Workspace) -> None:
    write_kaggle_csvs(workspace.root / "_data/data/raw", n_train=20, n_test=5)
    before = (workspace.root / "_data/data/raw/train.csv").read_bytes()
    res = workspace.bash("scripts/prepare_data.sh")
    assert res.returncode != 0 and "--force" in res.stderr
    assert (workspace.root / "_data/data/raw/train.csv").read_bytes() == before
    res = workspace.bash("scripts/prepare_data.sh", "--force")
    assert res.returncode == 0, res.stderr
    assert (workspace.root / "_data/data/raw/SOURCE.json").is_file()

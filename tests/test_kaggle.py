"""scripts/kaggle_pack.sh, offline: the packed notebook, executed with nbclient against a Kaggle-like input folder
built here, rebuilds the features with the packed dataset and feature code and writes the same submission as
predict.py for the same run (a single-fold digit run, fold=all runs of the regression sample's network and trees)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from nbclient import NotebookClient

from tests.conftest import Workspace

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ws(prepared: Workspace) -> Workspace:
    return prepared


def train(ws: Workspace, *overrides: str, folder: str = "model01") -> str:
    short = "n_estimators=20" if folder in TREES else "max_epochs=1"
    res = ws.script(f"src/model/{folder}/train.py", short, *overrides)
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout.split("run_id=")[1].split()[0]


@pytest.fixture(scope="module")
def fold0_run(ws: Workspace) -> str:
    """One model01 run on fold 0, packed by the tests that need any run."""
    return train(ws)


# (model folder, fold, the competition's slug, its raw folder, its submission's columns): a single network of the
# image competition, the fold models of a tree folder of the tabular one (a network's fold=all run is packed by the
# same lines as a tree's: one logged model per fold, model_fold0..)
PACKS = [("model01", "0", "digit-recognizer", "_data/data/raw", ["ImageId", "Label"]),
         ("model04", "all", "diabetes-sample", "_data/data/diabetes-sample/raw", ["id", "target"])]
TREES = ("model03", "model04")  # estimator folders: their pack holds pickled estimators


@pytest.mark.parametrize("folder,fold,competition,raw,columns", PACKS, ids=[f"{p[0]}-fold{p[1]}" for p in PACKS])
def test_packed_notebook_writes_the_submission_predict_writes(ws: Workspace, fold0_run: str, tmp_path: Path,
                                                              folder: str, fold: str, competition: str, raw: str,
                                                              columns: list) -> None:
    if folder in ("model02", "model04") and not (ws.root / "_data/feature/feature02/manifest.json").is_file():
        for script in ("src/dataset/dataset02/make_dataset.py", "src/feature/feature02/build_features.py"):
            assert ws.script(script).returncode == 0
    run_id = fold0_run if (folder, fold) == ("model01", "0") else train(ws, f"fold={fold}", folder=folder)
    res = ws.bash("scripts/kaggle_pack.sh", run_id, "--user", "alice")
    assert res.returncode == 0, res.stderr[-3000:]
    dest = ws.root / "outputs/kaggle" / run_id
    meta = json.loads((dest / "dataset/dataset-metadata.json").read_text())
    kernel = json.loads((dest / "notebook/kernel-metadata.json").read_text())
    slug = meta["id"].split("/", 1)[1]
    assert meta["id"] == f"alice/{folder}-{run_id[:8]}" and kernel["enable_internet"] is False
    assert kernel["dataset_sources"] == [meta["id"]] and kernel["competition_sources"] == [competition]
    models = sorted(p.name for p in (dest / "dataset/models").iterdir())
    ext = "pkl" if folder in TREES else "pth"
    assert models == ([f"model_fold{k}.{ext}" for k in range(5)] if fold == "all" else [f"model.{ext}"])
    assert (dest / f"dataset/code/src/model/{folder}/train.py").is_file()
    stages = json.loads((dest / "dataset/code/stages.json").read_text())  # the experiment's own data code
    assert (dest / "dataset/code/src/dataset" / stages["dataset"]["folder"] / "make_dataset.py").is_file()
    assert (dest / "dataset/code/src/feature" / stages["feature"]["folder"] / "build_features.py").is_file()
    assert f"kaggle kernels push -p outputs/kaggle/{run_id}/notebook" in res.stdout

    # Kaggle's layout: /kaggle/input/<slug>/ (the dataset) and /kaggle/input/<competition>/ (its files)
    kaggle_input, working = tmp_path / "input", tmp_path / "working"
    shutil.copytree(dest / "dataset", kaggle_input / slug)
    shutil.copytree(ws.root / raw, kaggle_input / competition, ignore=shutil.ignore_patterns("SOURCE.json"))
    nb = nbformat.read(dest / "notebook" / kernel["code_file"], as_version=4)
    # the notebook sees only what Kaggle gives it: no workspace on its path, its own folder as the cwd
    env = {k: v for k, v in ws.env(KAGGLE_INPUT=str(kaggle_input), KAGGLE_WORKING=str(working)).items()
           if k != "PYTHONPATH"}
    NotebookClient(nb, timeout=300, kernel_name="python3").execute(cwd=str(tmp_path), env=env)
    packed = pd.read_csv(working / "submission.csv")

    res = ws.script(f"src/model/{folder}/predict.py", f"run_id={run_id}")
    assert res.returncode == 0, res.stderr[-3000:]
    local = Path(res.stdout.split("submission: ")[1].split()[0])
    assert list(packed.columns) == columns
    assert (working / "submission.csv").read_bytes() == local.read_bytes()  # the same file, byte for byte
    text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert "the same features the run was trained on" in text


def test_push_without_credentials_is_one_error_line(ws: Workspace, fold0_run: str) -> None:
    run_id = fold0_run
    res = ws.bash("scripts/kaggle_pack.sh", run_id, "--push", KAGGLE_CONFIG_DIR=str(ws.root / "no-such-folder"),
                  HOME=str(ws.root / "no-home"))
    err = res.stderr.strip().splitlines()
    assert res.returncode == 2 and err[-1].startswith("error: --push needs Kaggle credentials")


def test_dotenv_credentials_are_used_and_never_logged(ws: Workspace, fold0_run: str) -> None:
    secret = "s3cr3t-key-never-logged"
    env_file = ws.root / ".env"
    env_file.write_text(f"KAGGLE_USERNAME=carol\nKAGGLE_KEY='{secret}'\n")
    try:
        res = ws.bash("scripts/kaggle_pack.sh", fold0_run)  # the user comes from .env
        assert res.returncode == 0, res.stderr[-3000:]
        meta = json.loads((ws.root / "outputs/kaggle" / fold0_run / "dataset/dataset-metadata.json").read_text())
        assert meta["id"] == f"carol/model01-{fold0_run[:8]}"
        assert secret not in res.stdout + res.stderr
    finally:
        env_file.unlink()
    leaked = [p for folder in ("logs", "outputs", "multirun") for p in (ws.root / folder).rglob("*")
              if p.is_file() and secret.encode() in p.read_bytes()]
    assert leaked == []

"""scripts/kaggle_pack.sh, offline: the packed notebook, executed with nbclient against a Kaggle-like input folder
built here, writes the same submission as predict.py for the same run (a single-fold run and a fold=all run)."""

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


def train(ws: Workspace, *overrides: str) -> str:
    res = ws.script("src/model/model01/train.py", "max_epochs=1", *overrides)
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout.split("run_id=")[1].split()[0]


@pytest.mark.parametrize("fold", ["0", "all"])
def test_packed_notebook_writes_the_submission_predict_writes(ws: Workspace, tmp_path: Path, fold: str) -> None:
    run_id = train(ws, f"fold={fold}")
    res = ws.bash("scripts/kaggle_pack.sh", run_id, "--user", "alice")
    assert res.returncode == 0, res.stderr[-3000:]
    dest = ws.root / "outputs/kaggle" / run_id
    meta = json.loads((dest / "dataset/dataset-metadata.json").read_text())
    kernel = json.loads((dest / "notebook/kernel-metadata.json").read_text())
    slug = meta["id"].split("/", 1)[1]
    assert meta["id"] == f"alice/model01-{run_id[:8]}" and kernel["enable_internet"] is False
    assert kernel["dataset_sources"] == [meta["id"]] and kernel["competition_sources"] == ["digit-recognizer"]
    models = sorted(p.name for p in (dest / "dataset/models").iterdir())
    assert models == ([f"model_fold{k}.pth" for k in range(5)] if fold == "all" else ["model.pth"])
    assert (dest / "dataset/code/src/model/model01/model.py").is_file()
    assert f"kaggle kernels push -p outputs/kaggle/{run_id}/notebook" in res.stdout

    # Kaggle's layout: /kaggle/input/<slug>/ (the dataset) and /kaggle/input/digit-recognizer/ (the competition)
    kaggle_input, working = tmp_path / "input", tmp_path / "working"
    shutil.copytree(dest / "dataset", kaggle_input / slug)
    (kaggle_input / "digit-recognizer").mkdir(parents=True)
    shutil.copyfile(ws.root / "_data/data/raw/test.csv", kaggle_input / "digit-recognizer/test.csv")
    nb = nbformat.read(dest / "notebook" / kernel["code_file"], as_version=4)
    # the notebook sees only what Kaggle gives it: no workspace on its path, its own folder as the cwd
    env = {k: v for k, v in ws.env(KAGGLE_INPUT=str(kaggle_input), KAGGLE_WORKING=str(working)).items()
           if k != "PYTHONPATH"}
    NotebookClient(nb, timeout=300, kernel_name="python3").execute(cwd=str(tmp_path), env=env)
    packed = pd.read_csv(working / "submission.csv")

    res = ws.script("src/model/model01/predict.py", f"run_id={run_id}")
    assert res.returncode == 0, res.stderr[-3000:]
    expected = pd.read_csv(res.stdout.split("submission: ")[1].split()[0])
    assert list(packed.columns) == ["ImageId", "Label"]
    pd.testing.assert_frame_equal(packed, expected)


def test_push_without_credentials_is_one_error_line(ws: Workspace) -> None:
    run_id = train(ws)
    res = ws.bash("scripts/kaggle_pack.sh", run_id, "--push", KAGGLE_CONFIG_DIR=str(ws.root / "no-such-folder"),
                  HOME=str(ws.root / "no-home"))
    err = res.stderr.strip().splitlines()
    assert res.returncode == 2 and err[-1].startswith("error: --push needs Kaggle credentials")


def test_dotenv_credentials_are_used_and_never_logged(ws: Workspace) -> None:
    secret = "s3cr3t-key-never-logged"
    env_file = ws.root / ".env"
    env_file.write_text(f"KAGGLE_USERNAME=carol\nKAGGLE_KEY='{secret}'\n")
    try:
        run_id = train(ws, "note='with a .env'")
        res = ws.bash("scripts/kaggle_pack.sh", run_id)  # the user comes from .env
        assert res.returncode == 0, res.stderr[-3000:]
        meta = json.loads((ws.root / "outputs/kaggle" / run_id / "dataset/dataset-metadata.json").read_text())
        assert meta["id"] == f"carol/model01-{run_id[:8]}"
        assert secret not in res.stdout + res.stderr
    finally:
        env_file.unlink()
    leaked = [p for folder in ("logs", "outputs", "multirun") for p in (ws.root / folder).rglob("*")
              if p.is_file() and secret.encode() in p.read_bytes()]
    assert leaked == []

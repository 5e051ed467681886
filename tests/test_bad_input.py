"""Bad input, table-driven: each case is a real command that must fail with one clear `error:` line, a
non-zero exit, and no half-written output that could later pass for a valid one.

Only what needs a real process and store is here: config typos, out-of-range values and missing files the
harness finds before a run are checked in-process (tests/test_experiments.py: the one line, and an unchanged
store), the raw-CSV and IDX formats cell by cell in test_raw_data.py, the README's error examples as written in
test_documented_commands.py, the UI scripts' busy ports in test_scripts_ui.py.
"""

from __future__ import annotations

import gzip
import json
import shutil
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import Workspace, write_kaggle_csvs

pytestmark = pytest.mark.slow
TRAIN, PREDICT = "src/model/model01/train.py", "src/model/model01/predict.py"
DATASET, FEATURES = "src/dataset/dataset01/make_dataset.py", "src/feature/feature01/build_features.py"


@dataclass
class Case:
    id: str
    command: list[str]  # script path (or scripts/*.sh) + args; {bad} is the per-case scratch folder
    message: str  # must appear in the single error line
    must_not_exist: list[str] = field(default_factory=list)  # relative to {bad}
    failed_run: bool = False  # found by the stage's own work, in its run (which ends FAILED); else: no run at all


CASES = [
    Case("fold-out-of-range", [TRAIN, "fold=7"], "fold=7 does not exist: the features have 5 folds"),
    Case("features-from-another-dataset", [TRAIN, "feature_dir={bad}/stale_features"],
         "was built from dataset01 000000000000 but dataset01 is now"),
    Case("corrupted-checkpoint", [TRAIN, "ckpt_path={bad}/broken.ckpt"], "is not a readable Lightning checkpoint"),
    Case("load-run-unknown-id", [PREDICT, "run_id=0123456789abcdef"], "is not in the MLflow store"),
    Case("load-run-without-model", [PREDICT, "run_id={dataset_run}"], "has no logged model 'model'"),
    Case("raw-label-10", [DATASET, "raw_dir={bad}/raw_label", "output_dir={bad}/out"],
         "column label: label 10 is not a digit 0-9", ["out"], failed_run=True),
    Case("raw-empty-file", [DATASET, "raw_dir={bad}/raw_empty", "output_dir={bad}/out"], "is empty (0 bytes)",
         ["out"], failed_run=True),
    Case("too-few-folds", [DATASET, "n_folds=1", "output_dir={bad}/out"],
         "n_folds=1 is not allowed: a whole number >= 2", ["out"]),
    Case("dataset-file-truncated", [FEATURES, "dataset_dir={bad}/damaged/dataset01", "output_dir={bad}/out"],
         "train.parquet has", ["out"]),
    Case("unknown-normalization", [FEATURES, "normalization.method=zscore", "output_dir={bad}/out"],
         "normalization.method=zscore is not allowed: standardize, minmax or none", ["out"]),
    Case("oof-objective-against-the-metric", [TRAIN, "objective=oof", "monitor_mode=min"],
         "the competition's metric accuracy is to be maximized but monitor_mode=min"),
    Case("cv-unknown-column", [DATASET, "cv.stratify=labl", "output_dir={bad}/out"],
         "cv.stratify=labl: the training data has no column 'labl'", ["out"], failed_run=True),
    Case("cv-more-folds-than-a-class-has", [DATASET, "n_folds=200", "output_dir={bad}/out"],
         "has only", ["out"], failed_run=True),
    Case("truncated-gzip-idx", ["scripts/prepare_data.sh", "--mnist", "{bad}/mnist", "--raw-dir", "{bad}/raw_out"],
         "damaged or truncated", ["raw_out/train.csv"]),
]


@pytest.fixture(scope="module")
def ws(prepared: Workspace) -> tuple[Workspace, Path, dict]:
    ws = prepared
    bad = ws.root.parent / "bad"
    bad.mkdir()
    # features whose manifest names another dataset01 build
    stale = bad / "stale_features"
    shutil.copytree(ws.root / "_data/feature/feature01", stale)
    manifest = json.loads((stale / "manifest.json").read_text())
    manifest["dataset"]["hash"] = "0" * 64
    (stale / "manifest.json").write_text(json.dumps(manifest))
    (bad / "broken.ckpt").write_bytes(b"PK\x03\x04 not really a checkpoint")
    # a dataset output whose file was cut short after its manifest was written
    damaged = shutil.copytree(ws.root / "_data/data/dataset01", bad / "damaged/dataset01")
    (damaged / "train.parquet").write_bytes((damaged / "train.parquet").read_bytes()[:1000])
    raw = write_kaggle_csvs(bad / "raw_label", n_train=30, n_test=5)
    lines = (raw / "train.csv").read_text().splitlines()
    lines[3] = ",".join(["10", *lines[3].split(",")[1:]])
    (raw / "train.csv").write_text("\n".join(lines) + "\n")
    write_kaggle_csvs(bad / "raw_empty", n_train=30, n_test=5)
    (bad / "raw_empty/train.csv").write_text("")
    (bad / "mnist").mkdir()
    for stem, shape in (("train-images-idx3-ubyte", (20, 28, 28)), ("train-labels-idx1-ubyte", (20,)),
                        ("t10k-images-idx3-ubyte", (5, 28, 28)), ("t10k-labels-idx1-ubyte", (5,))):
        data = struct.pack(">BBBB", 0, 0, 8, len(shape)) + struct.pack(f">{len(shape)}I", *shape)
        data += np.zeros(shape, np.uint8).tobytes()
        (bad / "mnist" / f"{stem}.gz").write_bytes(gzip.compress(data))
    path = bad / "mnist/train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    dataset_run = json.loads((ws.root / "_data/data/dataset01/manifest.json").read_text())["mlflow_run_id"]
    return ws, bad, {"bad": str(bad), "dataset_run": dataset_run}


def finished_model_runs(ws: Workspace) -> int:
    client = ws.client()
    exp = client.get_experiment_by_name("model01")
    return 0 if exp is None else len(client.search_runs([exp.experiment_id], "attributes.status = 'FINISHED'"))


def store_size(ws: Workspace) -> tuple[int, int]:
    """(experiments, runs) in the workspace's MLflow store, deleted ones included."""
    from mlflow.entities import ViewType

    client = ws.client()
    experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    return len(experiments), len(client.search_runs(experiments, run_view_type=ViewType.ALL, max_results=50000))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_fails_with_one_clear_line(ws, case: Case) -> None:
    workspace, bad, values = ws
    script, *args = [part.format(**values) for part in case.command]
    before, store = finished_model_runs(workspace), store_size(workspace)
    res = workspace.bash(script, *args) if script.endswith(".sh") else workspace.script(script, *args)
    assert res.returncode != 0
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, res.stderr[-2000:]
    assert case.message in errors[0], errors[0]
    assert "Traceback" not in res.stderr
    for rel in case.must_not_exist:
        assert not (bad / rel).exists(), rel
    assert finished_model_runs(workspace) == before  # a failed attempt never passes for a finished run
    if not case.failed_run:  # what can be checked before a run is: no run, no experiment
        assert store_size(workspace) == store
    assert not list(bad.glob("**/.*.tmp-*"))  # no temporary leftovers


def damage(db: Path, how: str) -> None:
    """A SQLite file as a crash or a bad disk leaves it: its header overwritten, or one table's root page."""
    import sqlite3

    if how == "header":
        data = bytearray(db.read_bytes())
        data[:64] = b"not a database" * 4 + b"\0" * 8
        db.write_bytes(bytes(data))
        return
    with sqlite3.connect(db) as con:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # every page in the file itself
        table = "trials" if db.name == "optuna.db" else "runs"  # Optuna's schema, MLflow's
        page = con.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()[0]
        size = con.execute("PRAGMA page_size").fetchone()[0]
    with db.open("r+b") as f:
        f.seek(size * (page - 1) + 8)
        f.write(b"\xff" * 300)


@pytest.mark.parametrize("how", ["header", "page"])
@pytest.mark.parametrize("store", ["mlflow", "optuna"])
def test_a_damaged_store_is_one_line_in_every_command_and_left_as_it_was(prepared_template: Workspace, tmp_path: Path,
                                                                       store: str, how: str) -> None:
    """A damaged mlflow.db (or a sweep's optuna.db): each command that opens it says which file, what is wrong and
    how to recover it, in one `error:` line, exits non-zero, and writes nothing to it or beside it."""
    from tests.conftest import copy_prepared

    ws = copy_prepared(prepared_template, tmp_path / "ws")
    if store == "mlflow":
        db = ws.root / "logs/mlruns/mlflow.db"
        commands = [("script", TRAIN, "max_epochs=1"), ("script", PREDICT, "run_id=best"), ("script", DATASET,
                    "force=true"), ("bash", "scripts/mlflow_ui.sh"), ("bash", "scripts/new_diary.sh")]
    else:  # a readable MLflow store, and the sweeps' study storage damaged
        import optuna

        db = ws.root / "logs/optuna/optuna.db"
        db.parent.mkdir(parents=True, exist_ok=True)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        optuna.create_study(storage=f"sqlite:///{db}", study_name="made-before").optimize(
            lambda trial: trial.suggest_float("x", 0, 1), n_trials=30)  # trials on the page to damage
        commands = [("script", TRAIN, "-m", "lr=interval(1e-3,1e-2)", "hydra.sweeper.n_trials=1", "max_epochs=1")]
        runs = store_size(ws)
    damage(db, how)
    before, around = db.read_bytes(), sorted(p.name for p in db.parent.iterdir())
    name = f"logs/{db.parent.name}/{db.name}"
    for kind, *command in commands:
        res = getattr(ws, kind)(*command, timeout=120)
        out = res.stdout + res.stderr
        errors = [line for line in out.splitlines() if line.startswith("error:")]
        assert res.returncode != 0 and len(errors) == 1 and "Traceback" not in out, (command, out[-3000:])
        assert f"{name} (the " in errors[0] and f"cp {name} {name}.damaged" in errors[0], errors[0]
        assert db.read_bytes() == before and sorted(p.name for p in db.parent.iterdir()) == around, command
    if store == "optuna":
        assert store_size(ws) == runs  # the sweep was refused before its parent run

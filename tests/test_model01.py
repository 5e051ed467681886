"""model01: Optuna sweeps with their MLflow parent/child record, resume, failing trials, reload.

(`fold=all` and `debug=true` runs are checked where the README's commands run: test_documented_commands.py.)

One prepared workspace (offline sample data -> dataset01 -> feature01) serves the whole module.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import optuna
import pandas as pd
import pytest
import torch

from src.utils.track.plots import DEFERRED
from tests.conftest import Workspace

pytestmark = pytest.mark.slow
SWEEP_STUDY = "records-and-resume"
SWEEP = ["-m", "lr=tag(log,interval(1e-3,1e-2))", "dropout=choice(0.1,0.3)", "batch_size=range(32,96,32)",
         "max_epochs=1", f"hydra.sweeper.study_name={SWEEP_STUDY}"]


@pytest.fixture(scope="module")
def ws(prepared: Workspace) -> Workspace:
    return prepared


def experiment_runs(ws: Workspace, name: str, query: str = "") -> list:
    client = ws.client()
    exp = client.get_experiment_by_name(name)
    return [] if exp is None else client.search_runs([exp.experiment_id], query, max_results=1000)


def artifacts(client, run_id: str, path: str | None = None) -> set[str]:
    out = set()
    for item in client.list_artifacts(run_id, path):
        out |= artifacts(client, run_id, item.path) if item.is_dir else {item.path}
    return out


def launch_lines(res) -> dict[int, str]:
    """The sweep's launch lines (`#<trial> : <sampled values>`): trial number -> values, which hold no plumbing."""
    lines = [line.split("#", 1)[1] for line in (res.stdout + res.stderr).splitlines() if " : " in line and "#" in line]
    assert not [line for line in lines if "hydra." in line or "max_epochs" in line], lines
    return {int(number): values.strip() for number, values in (line.split(" : ", 1) for line in lines)}


def study_of(ws: Workspace, parent) -> optuna.Study:
    storage = f"sqlite:///{ws.root / 'logs/optuna/optuna.db'}"
    return optuna.load_study(study_name=parent.data.tags["optuna_study"], storage=storage)


def test_sweep_records_parent_children_artifacts_and_resumes(ws: Workspace) -> None:
    res = ws.script("src/model/model01/train.py", *SWEEP, "hydra.sweeper.n_trials=3")
    assert res.returncode == 0, res.stderr[-3000:]
    client = ws.client()
    mine = f"tags.optuna_study = '{SWEEP_STUDY}'"
    (parent,) = experiment_runs(ws, "model01", f"tags.sweep = 'parent' and {mine}")
    children = experiment_runs(ws, "model01", f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert parent.info.status == "FINISHED" and len(children) == 3
    assert all(c.info.status == "FINISHED" for c in children)
    assert list((ws.root / "multirun/model01").glob("*/*/0/.hydra/overrides.yaml"))

    # every trial run: params, per-epoch metrics, artifacts, tags (lineage, code, git, command)
    fman = json.loads((ws.root / "_data/feature/feature01/manifest.json").read_text())
    for child in children:
        p, m, t = child.data.params, child.data.metrics, child.data.tags
        for key in ("lr", "batch_size", "max_epochs", "weight_decay", "dropout", "choice.optimizer", "seed", "fold",
                    "model.channels", "optimizer._target_", "trainer.max_epochs", "callbacks.early_stopping.patience"):
            assert key in p, key
        for key in ("train_loss", "train_acc", "val_loss", "val_acc", "best_val_acc", "objective", "oof_accuracy",
                    "epoch_time_s", "train_samples_per_s"):
            assert key in m, key
        assert len(client.get_metric_history(child.info.run_id, "val_acc")) == 1  # one epoch
        assert any(f.startswith("code/src/model/model01/") for f in artifacts(client, child.info.run_id, "code"))
        (data_input,) = child.inputs.dataset_inputs
        assert data_input.dataset.name == "feature01" and data_input.dataset.digest == fman["content_hash"][:20]
        files = artifacts(client, child.info.run_id)
        for name in ("config.yaml", "hydra/hydra.yaml", "hydra/overrides.yaml", "oof_predictions.csv",
                     "predictions/oof.npz"):
            assert name in files, name
        # the task's plots: drawn for the best trial when the sweep ended, deferred (not drawn) for the others
        best = child.info.run_id == parent.data.tags["best_run_id"]
        assert ("confusion_matrix.png" in files) == best and t["task_plots"] == ("drawn" if best else DEFERRED)
        assert any(f.startswith("logs/") and f.endswith(".log") for f in files)
        assert any(f.startswith("checkpoints/fold0/") and f.endswith(".ckpt") for f in files)
        assert t["feature01_hash"] == fman["content_hash"] and t["feature01_run_id"] == fman["mlflow_run_id"]
        assert t["dataset01_hash"] == fman["dataset"]["hash"] and t["dataset01_run_id"] == fman["dataset"]["run_id"]
        assert t["experiment_folder"] == "src/model/model01" and len(t["code_hash"]) == 64
        assert len(t["utils_hash"]) == 64 and t["git_dirty"] in ("true", "false", "unknown")
        assert "git_commit" in t and "train.py" in t["command"] and t["is_sample_data"] == "true"

    # the objective the sweeper got is each run's best validation metric
    study = study_of(ws, parent)
    by_trial = {int(c.data.tags["optuna_trial"]): c for c in children}
    assert sorted(by_trial) == [0, 1, 2]
    for trial in study.trials:
        assert trial.state.name == "COMPLETE"
        assert trial.user_attrs["mlflow_run_id"] == by_trial[trial.number].info.run_id  # linked both ways
        assert by_trial[trial.number].data.tags["optuna_state"] == "COMPLETE"
        assert trial.value == pytest.approx(by_trial[trial.number].data.metrics["best_val_acc"])
        assert by_trial[trial.number].data.params["lr"] == str(trial.params["lr"])

    # each trial is launched and named by its Optuna number and sampled values (4 significant digits), once
    launched = launch_lines(res)
    assert sorted(launched) == [0, 1, 2], res.stdout[-3000:]
    for trial in study.trials:
        values = {f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in trial.params.items()}
        assert set(launched[trial.number].split()) == values and len(values) == 3  # lr, dropout, batch_size
        name = by_trial[trial.number].info.run_name.split()
        assert name[:2] == ["model01", f"#{trial.number}"] and set(name[2:]) == values, name
        assert list((ws.root / "multirun/model01").glob(f"*/*/{trial.number}/.hydra/overrides.yaml"))
    assert parent.info.run_name == f"sweep {SWEEP_STUDY}"  # the sweep's parent names its study

    # the parent: best trial's run, params and value; trials table and plots
    best = max(children, key=lambda c: c.data.metrics["objective"])
    assert parent.data.tags["best_run_id"] == best.info.run_id
    assert parent.data.metrics["best_val_acc"] == pytest.approx(best.data.metrics["objective"])
    assert parent.data.params["best.lr"] == best.data.params["lr"]
    assert parent.data.metrics["n_trials_failed"] == 0
    files = artifacts(client, parent.info.run_id)
    assert {"sweep/trials.csv", "sweep/optimization_history.png", "sweep/param_importances.png",
            "sweep/parallel_coordinate.png", "sweep/intermediate_values.png"} <= files
    table = pd.read_csv(client.download_artifacts(parent.info.run_id, "sweep/trials.csv"))
    assert len(table) == 3 and set(table["mlflow_run_id"]) == {c.info.run_id for c in children}

    # runs:/<id>/model gives the LightningModule back, with the same outputs as the logged checkpoint
    mlflow.set_tracking_uri(ws.tracking_uri)
    model = mlflow.pytorch.load_model(f"runs:/{best.info.run_id}/model")
    assert type(model).__name__ == "DigitCNN" and hasattr(model, "training_step")
    ckpt = next(f for f in artifacts(client, best.info.run_id) if f.endswith(".ckpt"))
    weights = torch.load(client.download_artifacts(best.info.run_id, ckpt), weights_only=False)["state_dict"]
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())  # the best epoch's weights

    # resume: the same command with n_trials=4 runs one more trial, at a new point
    res = ws.script("src/model/model01/train.py", *SWEEP, "hydra.sweeper.n_trials=4")
    assert res.returncode == 0, res.stderr[-3000:]
    parents = experiment_runs(ws, "model01", f"tags.sweep = 'parent' and {mine}")
    (second,) = [p for p in parents if p.info.run_id != parent.info.run_id]
    assert second.data.tags["resumed_from_run_id"] == parent.info.run_id
    assert len(experiment_runs(ws, "model01", f"tags.mlflow.parentRunId = '{second.info.run_id}'")) == 1
    trials = study_of(ws, parent).trials
    assert len(trials) == 4
    assert trials[3].params not in [t.params for t in trials[:3]]
    assert list(launch_lines(res)) == [3]  # the resumed study's next trial, numbered as Optuna numbers it

    # and once more: the study is complete, nothing runs, the command still succeeds
    res = ws.script("src/model/model01/train.py", *SWEEP, "hydra.sweeper.n_trials=4")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "0 to go" in res.stdout + res.stderr and len(study_of(ws, parent).trials) == 4


def test_a_failing_trial_does_not_end_the_sweep(ws: Workspace) -> None:
    # sgd with lr=100 diverges to NaN within the first epoch: a real failure, not a 0-accuracy success.
    # The random sampler with the config's seed 42 proposes 100, 0.003, 0.003.
    res = ws.script("src/model/model01/train.py", "-m", "lr=choice(0.003,100)", "optimizer=sgd", "max_epochs=1",
                    "hydra/sweeper/sampler=random", "hydra.sweeper.n_trials=3",
                    "hydra.sweeper.study_name=failing")
    assert res.returncode == 0, res.stderr[-3000:]
    (parent,) = experiment_runs(ws, "model01", "tags.optuna_study = 'failing' and tags.sweep = 'parent'")
    children = experiment_runs(ws, "model01", f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    study = study_of(ws, parent)
    states = {t.number: t.state.name for t in study.trials}
    assert len(children) == len(states) == 3 and set(states.values()) == {"COMPLETE", "FAIL"}
    for child in children:
        lr = float(child.data.params["lr"])
        assert child.info.status == ("FAILED" if lr == 100 else "FINISHED")
        assert states[int(child.data.tags["optuna_trial"])] == ("FAIL" if lr == 100 else "COMPLETE")
    assert parent.data.metrics["n_trials_failed"] == sum(s == "FAIL" for s in states.values())
    log = Path(ws.client().download_artifacts(
        next(c for c in children if c.info.status == "FAILED").info.run_id, "logs"))
    assert "loss became nan" in "".join(p.read_text() for p in log.glob("*.log"))


def test_same_seed_same_run(ws: Workspace) -> None:
    values = []
    for _ in range(2):
        res = ws.script("src/model/model01/train.py", "max_epochs=1", "seed=7", "mlflow.log_model=false")
        assert res.returncode == 0, res.stderr[-3000:]
        run = ws.client().get_run(res.stdout.split("run_id=")[1].split()[0])
        values.append((run.data.metrics["val_loss"], run.data.metrics["train_loss"], run.data.metrics["best_val_acc"]))
    assert values[0] == values[1]


RELOAD = """
import sys, warnings, numpy as np, torch
from src.utils.predict.reload import load_run, best_run_id
from src.utils.core.errors import WorkspaceError
run_id = sys.argv[1]
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    run = load_run(run_id)
x = torch.from_numpy(np.load(sys.argv[2])[:64])
with torch.inference_mode():
    np.save(sys.argv[3], run.model(x).numpy())
print("best", best_run_id("model01"), "changed", run.code_changed, "warned",
      any("differs from the code" in str(w.message) for w in caught), "lr", run.config.lr,
      "acc", run.metrics["best_val_acc"], "training", run.model.training)
try:
    load_run(sys.argv[4])
except WorkspaceError as exc:
    print("failed-run-error", exc)
"""


def test_reload_best_run_and_predict(ws: Workspace, tmp_path: Path) -> None:
    # its own runs: a 5-fold run (every fold model logged) and a run that fails (sgd with lr=100 diverges)
    res = ws.script("src/model/model01/train.py", "max_epochs=1", "fold=all", "+trainer.limit_train_batches=4")
    assert res.returncode == 0, res.stderr[-3000:]
    cv_run_id = res.stdout.split("run_id=")[1].split()[0]
    res = ws.script("src/model/model01/train.py", "max_epochs=1", "optimizer=sgd", "lr=100")
    assert res.returncode != 0 and "loss became nan" in res.stderr
    client = ws.client()
    exp = client.get_experiment_by_name("model01")
    finished = [r for r in client.search_runs([exp.experiment_id], "attributes.status = 'FINISHED'")
                if r.data.tags.get("sweep") != "parent" and "best_val_acc" in r.data.metrics]
    # run_id=best compares like with like: the fold=all runs by their CV mean, whatever a single fold scored
    best = max((r for r in finished if r.data.params.get("fold") == "all"),
               key=lambda r: r.data.metrics["best_val_acc"])
    failed = client.search_runs([exp.experiment_id], "attributes.status = 'FAILED'")[0]
    mlflow.set_tracking_uri(ws.tracking_uri)
    fold = f"checkpoints/fold{best.data.tags.get('model_fold', '0')}/"  # the fold whose model is logged as `model`
    ckpt = next(a for a in artifacts(client, best.info.run_id) if a.startswith(fold) and a.endswith(".ckpt"))
    reference = mlflow.pytorch.load_model(f"runs:/{best.info.run_id}/model").eval()
    weights = torch.load(client.download_artifacts(best.info.run_id, ckpt), weights_only=False)["state_dict"]
    reference.load_state_dict(weights)  # what the best checkpoint computes
    features = ws.root / "_data/feature/feature01/train_x.npy"
    with torch.inference_mode():
        expected = reference(torch.from_numpy(np.load(features)[:64])).numpy()

    # the experiment folder's code is edited after training: load_run still uses the logged code
    model_py = ws.root / "src/model/model01/model.py"
    original = model_py.read_text()
    edited = original.replace("return self.head(self.features(x))", "return 0 * self.head(self.features(x))")
    assert edited != original
    model_py.write_text(edited)
    try:
        script = tmp_path / "reload.py"
        script.write_text(RELOAD)
        out = tmp_path / "out.npy"
        res = ws.python(str(script), best.info.run_id, str(features), str(out), failed.info.run_id)
    finally:
        model_py.write_text(original)
    assert res.returncode == 0, res.stderr[-3000:]
    words = res.stdout.split()
    assert words[words.index("best") + 1] == best.info.run_id
    assert words[words.index("changed") + 1] == "True" and words[words.index("warned") + 1] == "True"
    assert words[words.index("training") + 1] == "False"
    assert float(words[words.index("acc") + 1]) == pytest.approx(best.data.metrics["best_val_acc"])
    assert "ended FAILED" in res.stdout
    np.testing.assert_array_equal(np.load(out), expected)

    # a Kaggle submission from the best run, and from a fold=all run (fold models averaged)
    for run_id in ("best", cv_run_id):
        res = ws.script("src/model/model01/predict.py", f"run_id={run_id}")
        assert res.returncode == 0, res.stderr[-3000:]
        path = Path(res.stdout.split("submission: ")[1].split()[0])
        assert path.read_text().splitlines()[0] == "ImageId,Label"
        sub = pd.read_csv(path)
        assert len(sub) == 360 and sub["ImageId"].tolist() == list(range(1, 361))
        assert sub["Label"].between(0, 9).all() and "kaggle competitions submit" in res.stdout
    assert artifacts(client, cv_run_id, "submissions")

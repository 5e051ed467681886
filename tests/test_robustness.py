"""Faults injected for real: interrupts (SIGINT/SIGTERM) of real processes, and what they leave behind."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import torch

from tests.conftest import Workspace, ctrl_c_reaches_it, make_workspace

pytestmark = pytest.mark.slow
LONG = ["max_epochs=60", "~callbacks.early_stopping"]


@pytest.fixture(scope="module")
def ws(prepared: Workspace) -> Workspace:
    return prepared


def start(ws: Workspace, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(ws.root / "src/model/model01/train.py"), *args], cwd=ws.cwd,
                            env=ws.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=ctrl_c_reaches_it)


def wait_for_checkpoint(ws: Workspace, proc: subprocess.Popen, known: set[Path], timeout: float = 180) -> Path:
    """Block until the process has written a new last.ckpt (so it is mid-training, an epoch done), return it.

    Waiting for any checkpoint would race: ModelCheckpoint writes the epoch's best-*.ckpt first and last.ckpt
    after it, so a signal sent on seeing the first could land before the second is written."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        new = set((ws.root / "logs/lightning").glob("model01/*/fold0/last.ckpt")) - known
        if new:
            return new.pop()
        time.sleep(0.2)
    proc.kill()
    raise AssertionError("no checkpoint appeared in time")


def runs(ws: Workspace, query: str) -> list:
    client = ws.client()
    exp = client.get_experiment_by_name("model01")
    return client.search_runs([exp.experiment_id], query, max_results=1000)


def artifacts(ws: Workspace, run_id: str, path: str) -> list[str]:
    return [a.path for a in ws.client().list_artifacts(run_id, path)]


def test_sigint_during_a_sweep_trial_ends_it_killed_and_the_sweep_resumes(ws: Workspace) -> None:
    sweep = ["-m", "lr=tag(log,interval(1e-3,1e-2))", "hydra.sweeper.study_name=interrupted",
             "hydra.sweeper.n_trials=2"]
    known = set((ws.root / "logs/lightning").glob("model01/*/fold0/*.ckpt"))
    proc = start(ws, *sweep, *LONG)
    wait_for_checkpoint(ws, proc, known)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert "Resume with the same command" in out and "hydra.sweeper.study_name=interrupted" in out

    (parent,) = runs(ws, "tags.optuna_study = 'interrupted' and tags.sweep = 'parent'")
    assert parent.info.status == "KILLED"
    (child,) = runs(ws, f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert child.info.status == "KILLED"
    # the checkpoint written at the interrupt, and the last epoch's
    assert artifacts(ws, child.info.run_id, "logs") and {"checkpoints/fold0/interrupted.ckpt",
                                                          "checkpoints/fold0/last.ckpt"} <= set(
        artifacts(ws, child.info.run_id, "checkpoints/fold0"))
    storage = f"sqlite:///{ws.root / 'logs/optuna/optuna.db'}"
    study = optuna.load_study(study_name="interrupted", storage=storage)
    # the trial cut short failed and does not count: its point is queued again for the resume
    assert [(t.state.name, t.user_attrs.get("interrupted")) for t in study.trials] == [("FAIL", True),
                                                                                       ("WAITING", None)]
    assert study.trials[1].params == study.trials[0].params

    # the same sweep again: the interrupted point runs again, and one new one: two trials complete
    res = ws.script("src/model/model01/train.py", *sweep, "max_epochs=1")
    assert res.returncode == 0, res.stderr[-3000:]
    study = optuna.load_study(study_name="interrupted", storage=storage)
    assert [t.state.name for t in study.trials] == ["FAIL", "COMPLETE", "COMPLETE"]
    assert study.trials[1].user_attrs["mlflow_run_id"] != child.info.run_id
    assert not [t for t in study.trials if t.state.name == "RUNNING"]
    (second,) = [p for p in runs(ws, "tags.optuna_study = 'interrupted' and tags.sweep = 'parent'")
                 if p.info.run_id != parent.info.run_id]
    assert second.data.tags["resumed_from_run_id"] == parent.info.run_id and second.info.status == "FINISHED"


def test_sigterm_during_a_single_run_keeps_its_checkpoint_and_it_resumes(ws: Workspace) -> None:
    known = set((ws.root / "logs/lightning").glob("model01/*/fold0/*.ckpt"))
    proc = start(ws, *LONG)
    wait_for_checkpoint(ws, proc, known)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode != 0
    hint = next(line for line in out.splitlines() if line.startswith("interrupted: resume"))
    ckpt = Path(hint.split("ckpt_path=")[1])
    assert ckpt.name == "interrupted.ckpt" and ckpt.is_file()  # the newest checkpoint: the interrupt's own
    killed = [r for r in runs(ws, "attributes.status = 'KILLED'")
              if "mlflow.parentRunId" not in r.data.tags and r.data.tags.get("sweep") != "parent"]
    assert len(killed) == 1 and artifacts(ws, killed[0].info.run_id, "logs")
    assert {"checkpoints/fold0/interrupted.ckpt", "checkpoints/fold0/last.ckpt"} <= set(
        artifacts(ws, killed[0].info.run_id, "checkpoints/fold0"))

    # resumed, it goes on from the epoch it was interrupted in: the epochs before are not trained again
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    done = state["loops"]["fit_loop"]["epoch_progress"]["current"]["processed"]  # epochs trained before the signal
    res = ws.script("src/model/model01/train.py", f"ckpt_path={ckpt}", f"max_epochs={done + 2}")
    assert res.returncode == 0, res.stderr[-3000:]
    run_id = res.stdout.split("run_id=")[1].split()[0]
    epochs = [int(line.split("epoch ")[1].split("/")[0]) for line in res.stderr.splitlines() + res.stdout.splitlines()
              if " epoch " in line and f"/{done + 2}" in line]
    # (Lightning finishes the interrupted epoch's remaining batches, then trains the next ones up to max_epochs)
    assert epochs and epochs[-1] == done + 2 and min(epochs) > done, (done, epochs, res.stderr[-2000:])
    assert 1 <= len(ws.client().get_metric_history(run_id, "val_acc")) <= 2


def test_two_sweeps_at_once_on_fresh_stores_both_finish_with_every_run(ws: Workspace, tmp_path: Path) -> None:
    fresh = make_workspace(tmp_path / "ws")
    shutil.copytree(ws.root / "_data", fresh.root / "_data", dirs_exist_ok=True)
    assert not (fresh.root / "logs/mlruns/mlflow.db").exists() and not (fresh.root / "logs/optuna").exists()
    cmd = [sys.executable, str(fresh.root / "src/model/model01/train.py"), "-m", "lr=tag(log,interval(1e-3,1e-2))",
           "hydra.sweeper.n_trials=3", "max_epochs=1"]
    procs = [subprocess.Popen([*cmd, f"seed={i}"], cwd=fresh.cwd, env=fresh.env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(2)]
    outputs = [p.communicate(timeout=600) for p in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err[-3000:]
        assert "database is locked" not in err + out

    client = fresh.client()
    exp = client.get_experiment_by_name("model01")
    parents = client.search_runs([exp.experiment_id], "tags.sweep = 'parent'")
    assert len(parents) == 2 and {p.info.status for p in parents} == {"FINISHED"}
    for parent in parents:
        children = client.search_runs([exp.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
        assert len(children) == 3
        for child in children:
            assert child.info.status == "FINISHED" and "optuna_trial" in child.data.tags
            names = {a.path for a in client.list_artifacts(child.info.run_id)}
            assert {"config.yaml", "oof_predictions.csv", "checkpoints", "logs"} <= names
            # the task's plots: the best trial's, drawn when the sweep ended
            assert ("confusion_matrix.png" in names) == (child.info.run_id == parent.data.tags["best_run_id"])
        storage = f"sqlite:///{fresh.root / 'logs/optuna/optuna.db'}"
        study = optuna.load_study(study_name=parent.data.tags["optuna_study"], storage=storage)
        assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3


def test_secrets_in_the_environment_never_reach_the_records(ws: Workspace) -> None:
    secrets = {"KAGGLE_KEY": "kg-4f1c9e-not-a-real-key", "MY_API_TOKEN": "tok-8d2b77-not-real",
               "DB_PASSWORD": "pw-31aa0c-not-real", "AWS_SECRET_ACCESS_KEY": "aws-77e1d0-not-real"}
    # even a config key that pulls the secret in is redacted in params and the logged config
    res = ws.script("src/model/model01/train.py", "-m", "lr=tag(log,interval(1e-3,1e-2))", "max_epochs=1",
                    "hydra.sweeper.n_trials=2", "hydra.sweeper.study_name=secrets",
                    "+kaggle_key=${oc.env:KAGGLE_KEY}", **secrets)
    assert res.returncode == 0, res.stderr[-3000:]
    res = ws.script("src/model/model01/predict.py", "run_id=best", **secrets)
    assert res.returncode == 0, res.stderr[-3000:]
    (parent,) = runs(ws, "tags.optuna_study = 'secrets' and tags.sweep = 'parent'")
    child = runs(ws, f"tags.mlflow.parentRunId = '{parent.info.run_id}'")[0]
    assert child.data.params["kaggle_key"] == "***"

    found = []
    for folder in ("logs", "outputs", "multirun"):
        for path in (ws.root / folder).rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                found += [(str(path), name) for name, value in secrets.items() if value.encode() in data]
    assert found == []

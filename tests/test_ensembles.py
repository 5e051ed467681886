"""Ensembles end to end, through the scripts a user types: a sweep of fold=all runs, its top-3 trials blended in
one command, the ensemble run's records, its Kaggle pack (the notebook executed offline writes the ensemble's
submission byte for byte) and rerun.sh (the same score and file); a real pruned trial and a member logged
without test predictions. (The regression sample's ensemble: tests/test_competitions.py.)"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import Workspace

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ws(prepared: Workspace) -> Workspace:
    return prepared


def sweep(ws: Workspace, folder: str, *args: str) -> str:
    res = ws.script(f"src/model/{folder}/train.py", "-m", "fold=all", "pruner=none", *args)
    assert res.returncode == 0, res.stderr[-3000:]
    return re.search(r"sweep done: parent run (\w+)", res.stdout).group(1)


def blend(ws: Workspace, folder: str, *args: str):
    return ws.script(f"src/ensemble/{folder}/blend.py", *args)


def packed_submission(ws: Workspace, run_id: str, raw: str, competition: str, tmp_path: Path) -> bytes:
    """Pack the run, execute its notebook offline against a Kaggle-like input folder; the submission it writes."""
    res = ws.bash("scripts/kaggle_pack.sh", run_id, "--user", "alice")
    assert res.returncode == 0, res.stderr[-3000:]
    dest = ws.root / "outputs/kaggle" / run_id
    slug = json.loads((dest / "dataset/dataset-metadata.json").read_text())["id"].split("/", 1)[1]
    kaggle_input, working = tmp_path / "input", tmp_path / "working"
    shutil.copytree(dest / "dataset", kaggle_input / slug)
    shutil.copytree(ws.root / raw, kaggle_input / competition, ignore=shutil.ignore_patterns("SOURCE.json"))
    nb = nbformat.read(dest / "notebook/inference.ipynb", as_version=4)
    env = {k: v for k, v in ws.env(KAGGLE_INPUT=str(kaggle_input), KAGGLE_WORKING=str(working)).items()
           if k != "PYTHONPATH"}  # the notebook sees only what Kaggle gives it
    NotebookClient(nb, timeout=600, kernel_name="python3").execute(cwd=str(tmp_path), env=env)
    return (working / "submission.csv").read_bytes()


def test_a_sweeps_top3_blend_packs_and_reruns_exactly(ws: Workspace, tmp_path: Path) -> None:
    parent = sweep(ws, "model01", "lr=tag(log,interval(1e-3,1e-2))", "hydra.sweeper.n_trials=4", "max_epochs=1",
                   "+trainer.limit_train_batches=4")  # four fold=all trials, four batches an epoch
    client = ws.client()
    trials = client.search_runs([client.get_experiment_by_name("model01").experiment_id],
                                f"tags.mlflow.parentRunId = '{parent}'")
    assert len(trials) == 4
    ranked = sorted(trials, key=lambda r: (-r.data.metrics["best_val_acc"], r.info.start_time))

    res = blend(ws, "ensemble01", f"members.sweeps=[{parent}]", "members.top_k=3")  # hill climbing, its top-3
    assert res.returncode == 0, res.stderr[-3000:]
    run_id = res.stdout.split("run_id=")[1].split()[0]
    run = client.get_run(run_id)
    tags, metrics = run.data.tags, run.data.metrics
    members = tags["ensemble_members"].split(",")
    assert members == [r.info.run_id for r in ranked[:3]]  # the three best trials by their monitor, best first
    assert [tags[f"member.{i}"] for i in range(3)] == members and tags["n_members"] == "3"
    # the nested CV score and the best member's side by side, in the run and in what it prints
    best_member = max(r.data.metrics["oof_accuracy"] for r in ranked[:3])
    assert metrics["best_member_oof_accuracy"] == pytest.approx(best_member)
    assert {"oof_accuracy", "nested_oof_accuracy"} <= set(metrics)
    assert f"nested_oof_accuracy={metrics['nested_oof_accuracy']:.4f}" in res.stdout
    assert f"best_member_oof_accuracy={best_member:.4f}" in res.stdout
    model_ids = {o.model_id for m in members for o in client.get_run(m).outputs.model_outputs}
    assert model_ids and {i.model_id for i in run.inputs.model_inputs} == model_ids  # the members' models
    local = Path(res.stdout.split("submission: ")[1].split()[0])
    assert local.read_bytes() == Path(client.download_artifacts(run_id, "submission.csv", str(tmp_path))).read_bytes()

    # the diary lists it, beside its best member
    res = ws.bash("scripts/new_diary.sh")
    assert res.returncode == 0, res.stderr[-2000:]
    diary = Path(res.stdout.strip().splitlines()[-1]).read_text()
    row = next(line for line in diary.splitlines() if line.startswith(f"| ensemble01 | {run_id[:8]} |"))
    assert f"{best_member:.4f}" in row and f"{metrics['nested_oof_accuracy']:.4f}" in row
    assert f"| {run_id[:8]} | ensemble of 3 |" in diary

    packed = packed_submission(ws, run_id, "_data/data/raw", "digit-recognizer", tmp_path / "kaggle")
    assert packed == local.read_bytes()  # every member's packed code + the fitted blend: the same file

    res = ws.bash("scripts/rerun.sh", run_id)
    assert res.returncode == 0, res.stdout + res.stderr[-3000:]
    assert "-> equal" in res.stdout and "submission.csv: the same file, byte for byte" in res.stdout

    # a real pruned trial cannot be a member; a member logged without its predictions (a run older than the oldest
    # run format) is one error line naming the commit that reads it
    pruned_parent = ws.script("src/model/model01/train.py", "-m", "fold=all", "pruner=threshold",
                              "pruner.lower=0.999", "pruner.n_warmup_steps=0", "hydra.sweeper.n_trials=1",
                              "max_epochs=1")
    assert pruned_parent.returncode == 0, pruned_parent.stderr[-3000:]
    (pruned,) = client.search_runs([trials[0].info.experiment_id], "tags.optuna_state = 'PRUNED'")
    res = blend(ws, "ensemble01", f"members.runs=[{members[0]},{pruned.info.run_id}]")
    assert res.returncode == 2 and res.stderr.strip().splitlines() == [
        f"error: member {pruned.info.run_id[:8]} ({pruned.info.run_name}, from run) was pruned at fold 0 and has no "
        f"OOF predictions; leave it out, or pick a trial that finished"]
    stripped = members[1]
    artifacts = ws.root / "logs/mlruns/artifacts/model01" / stripped / "artifacts"
    shutil.rmtree(artifacts / "predictions")
    blends = client.get_experiment_by_name("ensemble01").experiment_id
    before = {r.info.run_id for r in client.search_runs([blends])}
    res = blend(ws, "ensemble01", f"members.runs=[{members[0]},{stripped}]", "method=mean")
    assert res.returncode == 2 and res.stderr.strip().splitlines() == [
        f"error: run {stripped[:8]} was logged by an older version of this workspace (it records no "
        f"predictions/oof.npz or predictions/test_scores.npy); this code reads runs logged since commit ee0232e "
        f"(2026-11-30): read it with commit 686a27a (git worktree add ../workspace-686a27a 686a27a; docs/runs.md)"]
    assert {r.info.run_id for r in client.search_runs([blends])} == before  # no ensemble run was made

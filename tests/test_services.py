"""Scale-out against the real engines: `scripts/services.sh` starts PostgreSQL and an MLflow tracking server (installing
PostgreSQL where it is missing), and sweeps share them: two workers on one budget, joblib and submitit_local
launchers, a 2-process DDP run, the local runs copied to the server, then everything stopped.

One workspace for the module, on its own ports, set up by docs/scaling.md's services block as written; `down`
runs whatever happens, and nothing may be left running after it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from mlflow import MlflowClient

from tests.conftest import Workspace
from tests.docs import block_after, poetry_bin

pytestmark = pytest.mark.slow
TRAIN = "src/model/model01/train.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(prepared: Workspace):
    """(workspace, env with OPTUNA_STORAGE and MLFLOW_TRACKING_URI, seconds `up` took).

    docs/scaling.md's services block runs as written, in one shell, on this module's own ports (the sweep with
    `hydra.sweeper.n_trials=2 max_epochs=1` appended); its last line, `down`, runs when the module is done, whatever
    happened, and must leave nothing running."""
    ports = {"WORKSPACE_PG_PORT": str(free_port()), "WORKSPACE_MLFLOW_PORT": str(free_port())}
    block = block_after("docs/scaling.md", "bash scripts/services.sh up")
    assert block[0] == "bash scripts/services.sh up" and block[-1] == "bash scripts/services.sh down", block
    lines = [f"{line} hydra.sweeper.n_trials=2 max_epochs=1" if " -m " in line else line for line in block[:-1]]
    env = prepared.env(**ports)
    env["PATH"] = f"{poetry_bin()}:{env['PATH']}"
    start = time.monotonic()
    res = subprocess.run(["bash", "-ec", "\n".join(lines)], cwd=prepared.root, env=env, capture_output=True,
                         text=True, timeout=1200)
    up_s = time.monotonic() - start
    try:
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
        assert "PostgreSQL: running" in res.stdout and "MLflow server: running" in res.stdout, res.stdout[-3000:]
        yield prepared, exports(prepared, ports), up_s
    finally:
        down = subprocess.run(["bash", "-c", block[-1]], cwd=prepared.root, env=prepared.env(**ports),
                              capture_output=True, text=True, timeout=300)
        server = prepared.root / "logs/services/postgres/server"
        if server.is_symlink():  # the server's files went to postgres's home (the test folder is closed to it)
            shutil.rmtree(server.resolve(), ignore_errors=True)
        assert down.returncode == 0, down.stderr
        assert_nothing_running(prepared, ports)


def exports(ws: Workspace, ports: dict[str, str]) -> dict[str, str]:
    """`ports` and what `services.sh env` exports (as the block's `eval` sets them)."""
    res = ws.bash("scripts/services.sh", "env", **ports)
    assert res.returncode == 0, res.stderr
    env = dict(ports)
    for line in res.stdout.splitlines():
        key, value = line.removeprefix("export ").split("=", 1)
        env[key] = value.strip("'")
    return env


def assert_nothing_running(ws: Workspace, ports: dict[str, str]) -> None:
    status = ws.bash("scripts/services.sh", "status", **ports).stdout
    assert "PostgreSQL: not running" in status and "MLflow server: not running" in status
    for port in ports.values():
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", int(port))) != 0
    leftover = subprocess.run(["pgrep", "-f", str(ws.root / "logs/services")], capture_output=True, text=True)
    assert leftover.stdout.strip() == "", leftover.stdout
    assert os.environ.get("OPTUNA_STORAGE") is None  # nothing leaked into the test process


def client(env: dict[str, str]) -> MlflowClient:
    return MlflowClient(env["MLFLOW_TRACKING_URI"])


def study(env: dict[str, str], name: str) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name=name, storage=env["OPTUNA_STORAGE"])


def sweep_runs(env: dict[str, str], study_name: str) -> tuple[list, list]:
    c = client(env)
    exp = c.get_experiment_by_name("model01")
    found = c.search_runs([exp.experiment_id], f"tags.optuna_study = '{study_name}'", max_results=1000)
    return ([r for r in found if r.data.tags.get("sweep") == "parent"],
            [r for r in found if r.data.tags.get("sweep") != "parent"])


def test_up_starts_both_and_keeps_the_password_private(served) -> None:
    ws, env, up_s = served
    pw = ws.root / "logs/services/postgres/password"
    assert oct(pw.stat().st_mode & 0o777) == "0o600"
    assert pw.read_text().strip() in env["OPTUNA_STORAGE"]
    assert env["OPTUNA_STORAGE"].startswith("postgresql://workspace:") and "@127.0.0.1:" in env["OPTUNA_STORAGE"]
    status = ws.bash("scripts/services.sh", "status", **{k: env[k] for k in ("WORKSPACE_PG_PORT",
                                                                              "WORKSPACE_MLFLOW_PORT")})
    assert "PostgreSQL: running" in status.stdout and "MLflow server: running" in status.stdout
    assert pw.read_text().strip() not in status.stdout + (ws.root / "logs/services/mlflow.log").read_text()
    print(f"services up in {up_s:.1f} s")


def test_two_workers_share_one_budget_on_postgresql_and_the_server(served) -> None:
    ws, env, _ = served
    cmd = [sys.executable, str(ws.root / TRAIN), "-m", "lr=tag(log,interval(1e-3,1e-2))", "max_epochs=1",
           "hydra.sweeper.n_trials=4", "hydra.sweeper.study_name=pg-shared"]
    start = time.monotonic()
    procs = [subprocess.Popen(cmd, cwd=ws.cwd, env=ws.env(**env), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    for proc in procs:
        out, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, err[-3000:]
    print(f"2 workers, 4 trials: {time.monotonic() - start:.1f} s")
    trials = study(env, "pg-shared").trials
    assert [t.state.name for t in trials] == ["COMPLETE"] * 4
    parents, children = sweep_runs(env, "pg-shared")
    assert len(parents) == 2 and len(children) == 4
    assert {t.user_attrs["mlflow_run_id"] for t in trials} == {c.info.run_id for c in children}
    c = client(env)
    for child in children:
        assert child.info.status == "FINISHED" and child.info.artifact_uri.startswith("mlflow-artifacts:")
        assert child.data.tags["mlflow.parentRunId"] in {p.info.run_id for p in parents}
    # artifacts come back through the server, and the model loads from it
    local = Path(c.download_artifacts(children[0].info.run_id, "config.yaml"))
    assert "experiment_name: model01" in local.read_text()
    res = ws.python("-c", "import mlflow, sys; m = mlflow.pytorch.load_model(f'runs:/{sys.argv[1]}/model'); "
                    "print(type(m).__name__)", children[0].info.run_id, **env)
    assert res.returncode == 0 and res.stdout.strip().endswith("DigitCNN"), res.stderr[-2000:]


@pytest.mark.parametrize("launcher", ["joblib", "submitit_local"])
def test_parallel_trials_through_a_hydra_launcher(served, launcher: str) -> None:
    ws, env, _ = served
    name = f"launcher-{launcher}"
    res = ws.script(TRAIN, "-m", "lr=tag(log,interval(1e-3,1e-2))", "max_epochs=1", f"hydra/launcher={launcher}",
                    "hydra.sweeper.n_jobs=2", "hydra.sweeper.n_trials=4", f"hydra.sweeper.study_name={name}", **env)
    assert res.returncode == 0, res.stderr[-3000:]
    trials = study(env, name).trials
    assert [t.state.name for t in trials] == ["COMPLETE"] * 4
    (parent,), children = sweep_runs(env, name)
    assert len(children) == 4 and all(c.data.tags["mlflow.parentRunId"] == parent.info.run_id for c in children)
    assert {t.user_attrs["mlflow_run_id"] for t in trials} == {c.info.run_id for c in children}
    assert all(c.info.status == "FINISHED" for c in children)


def test_ddp_run_is_one_run(served) -> None:
    ws, env, _ = served
    res = ws.script(TRAIN, "trainer.strategy=ddp", "trainer.devices=2", "max_epochs=2",
                    "+tags_for_test=ddp", **env)
    assert res.returncode == 0, res.stderr[-3000:]
    c = client(env)
    exp = c.get_experiment_by_name("model01")
    (run,) = c.search_runs([exp.experiment_id], "params.tags_for_test = 'ddp'")
    assert run.info.status == "FINISHED" and run.data.params["trainer.strategy"] == "ddp"
    assert len(c.get_metric_history(run.info.run_id, "val_acc")) == 2 and run.data.metrics["best_val_acc"] > 0
    files = {a.path for a in c.list_artifacts(run.info.run_id, "checkpoints/fold0")}
    assert any(f.endswith(".ckpt") for f in files)
    assert res.stdout.count("run_id=") == 1


def test_local_runs_move_to_the_server(served) -> None:
    ws, env, _ = served
    local = {k: v for k, v in env.items() if k not in ("MLFLOW_TRACKING_URI",)}
    res = ws.script(TRAIN, "max_epochs=1", "+tags_for_test=local", **local)
    assert res.returncode == 0, res.stderr[-3000:]
    ports = {k: env[k] for k in ("WORKSPACE_PG_PORT", "WORKSPACE_MLFLOW_PORT")}
    moved = ws.bash("scripts/services.sh", "import", "--experiment", "model01", **ports)
    assert moved.returncode == 0, moved.stderr[-3000:]
    c = client(env)
    exp = c.get_experiment_by_name("model01")
    (run,) = c.search_runs([exp.experiment_id], "params.tags_for_test = 'local'")
    original = ws.client().get_run(run.data.tags["imported_from_run_id"])
    assert run.data.metrics == original.data.metrics and run.data.params == original.data.params
    assert run.info.status == "FINISHED" and {a.path for a in c.list_artifacts(run.info.run_id)} >= {
        "config.yaml", "oof_predictions.csv", "checkpoints", "logs"}
    again = ws.bash("scripts/services.sh", "import", "--experiment", "model01", **ports)
    assert "copied 0 run(s)" in again.stdout

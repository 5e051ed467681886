"""Runs whose process died (SIGKILL: the OOM killer, `kill -9`, a lost machine) do not stay RUNNING.

In-process: the reaper's rules on a throw-away store (this host: the pid; another host: the heartbeat).
Slow: real processes killed with SIGKILL mid-work, and the next workspace command that ends their runs.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest

from src.utils.core.errors import WorkspaceError
from src.utils.track import liveness
from tests.conftest import Workspace

TRAIN = "src/model/model01/train.py"


# --- the reaper, in-process ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def empty_store(tmp_path_factory) -> Path:
    """An MLflow SQLite store with its schema (made once: the migrations take seconds)."""
    db = tmp_path_factory.mktemp("store") / "mlflow.db"
    mlflow.MlflowClient(tracking_uri=f"sqlite:///{db}").search_experiments()
    return db


@pytest.fixture
def store(empty_store: Path, tmp_path: Path):
    shutil.copy(empty_store, tmp_path / "mlflow.db")
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.create_experiment("exp", artifact_location=(tmp_path / "artifacts").as_uri())
    return client, exp


@pytest.fixture
def sleeper():
    """A live process of this host, stopped at the end."""
    proc = subprocess.Popen(["sleep", "60"])
    yield proc
    proc.kill()
    proc.wait()


def dead_pid() -> tuple[int, str]:
    """The pid and start time of a process that has exited (and been reaped)."""
    proc = subprocess.Popen(["sleep", "60"])
    start = liveness.process_start(proc.pid)
    proc.kill()
    proc.wait()
    assert start and liveness.process_start(proc.pid) is None
    return proc.pid, start


def here(pid: int, start: str | None, **extra: str) -> dict[str, str]:
    return {**liveness.process_tags(), "pid": str(pid), "pid_start": start or "", **extra}


def elsewhere(heartbeat_age: float, **extra: str) -> dict[str, str]:
    return {"host": "another-host", "pid": "4242", "pid_start": "1.00", "pid_ns": "pid:[1]",
            "heartbeat": str(int(time.time() - heartbeat_age)), **extra}


def status(client, run_id: str) -> str:
    return client.get_run(run_id).info.status


def test_the_reaper_ends_dead_processes_runs_and_never_a_live_one(store, sleeper, tmp_path, capsys) -> None:
    client, exp = store
    log_file = tmp_path / "train.log"
    log_file.write_text("epoch 3 ...\n")
    pid, start = dead_pid()
    runs = {
        "remote_fresh": elsewhere(60),  # another host, alive by its heartbeat
        "remote_stale": elsewhere(3600, log_file=str(log_file)),
        "local_alive": here(sleeper.pid, liveness.process_start(sleeper.pid)),
        "local_dead": here(pid, start, log_file=str(log_file)),
        "local_reused": here(sleeper.pid, "12345.67"),  # the pid is alive, but it is another process now
        "this_process": here(os.getpid(), liveness.process_start(os.getpid())),
        "older_code": {"stage": "model"},  # no liveness tags: nothing tells
        "older_code_other_host": {"host": "another-host"},
    }
    ids = {name: client.create_run(exp, tags=tags, run_name=name).info.run_id for name, tags in runs.items()}
    finished = client.create_run(exp, tags=here(pid, start), run_name="finished").info.run_id
    client.set_terminated(finished, "FINISHED")

    ended = liveness.end_dead_runs(client, "pytest", grace=600)

    assert set(ended) == {ids["remote_stale"], ids["local_dead"], ids["local_reused"]}
    for name, run_id in ids.items():
        assert status(client, run_id) == ("FAILED" if run_id in ended else "RUNNING"), name
    assert status(client, finished) == "FINISHED"
    dead = client.get_run(ids["local_dead"])
    assert dead.data.tags["ended_by"] == f"workspace: process {pid} on {socket.gethostname()} is gone (found by pytest)"
    assert dead.info.end_time == int(dead.data.tags["heartbeat"]) * 1000 or dead.info.end_time == dead.info.start_time
    assert [a.path for a in client.list_artifacts(ids["local_dead"], "logs")] == ["logs/train.log"]
    stale = client.get_run(ids["remote_stale"])
    assert "no heartbeat for 60 min" in stale.data.tags["ended_by"]
    assert [a.path for a in client.list_artifacts(ids["remote_stale"], "logs")] == ["logs/train.log"]
    out = capsys.readouterr().out.splitlines()
    assert f"note: run {ids['local_dead']} (exp/local_dead) was RUNNING but its process {pid} on " \
           f"{socket.gethostname()} is gone; ended FAILED" in out
    assert len(out) == 3

    assert liveness.end_dead_runs(client, "pytest", grace=600) == []  # ended runs are not ended again


def test_the_reaper_spares_the_sweep_parent_and_the_active_run(store, monkeypatch) -> None:
    client, exp = store
    pid, start = dead_pid()
    parent = client.create_run(exp, tags=here(pid, start)).info.run_id
    kept = client.create_run(exp, tags=here(pid, start)).info.run_id
    monkeypatch.setenv(liveness.SWEEP_PARENT_ENV, parent)
    assert liveness.end_dead_runs(client, "pytest", keep=(kept,)) == []
    assert status(client, parent) == status(client, kept) == "RUNNING"


def test_the_sweep_parent_variable_is_the_sweeps() -> None:
    from src.utils.tune.parent import PARENT_RUN_ENV

    assert liveness.SWEEP_PARENT_ENV == PARENT_RUN_ENV


def test_the_heartbeat_refreshes_its_tag_until_stopped(store) -> None:
    client, exp = store
    run_id = client.create_run(exp, tags={"heartbeat": "0"}).info.run_id
    beat = liveness.Heartbeat(run_id, interval=0.1, client=client).start()
    deadline = time.monotonic() + 10
    while client.get_run(run_id).data.tags["heartbeat"] == "0":
        assert time.monotonic() < deadline, "no heartbeat"
        time.sleep(0.05)
    beat.stop()
    assert abs(int(client.get_run(run_id).data.tags["heartbeat"]) - time.time()) < 5
    assert not beat._thread.is_alive()


def test_the_sweep_callback_pickles_without_its_heartbeat(store) -> None:
    """joblib and submitit pickle Hydra's context, callbacks included, to start their jobs."""
    import pickle

    from src.utils.tune.parent import MlflowSweepCallback

    callback = MlflowSweepCallback("model", "model01")
    callback.heartbeat = liveness.Heartbeat("0" * 32, interval=3600, client=object()).start()
    try:
        copy = pickle.loads(pickle.dumps(callback))
    finally:
        callback.heartbeat.stop()
    assert copy.heartbeat is None and (copy.stage, copy.folder) == ("model", "model01")


def test_a_store_with_nothing_running_is_answered_without_mlflow(store, tmp_path) -> None:
    client, exp = store
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert not liveness.maybe_running(uri)
    run_id = client.create_run(exp).info.run_id
    assert liveness.maybe_running(uri)
    client.set_terminated(run_id)
    assert not liveness.maybe_running(uri)
    assert not liveness.maybe_running(f"sqlite:///{tmp_path / 'absent.db'}")


@pytest.mark.parametrize("name", [liveness.INTERVAL_ENV, liveness.GRACE_ENV])
@pytest.mark.parametrize("value", ["abc", "0", "-5", "inf"])
def test_bad_heartbeat_settings_are_one_error_line(monkeypatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(WorkspaceError, match=f"{name}=.*positive number"):
        liveness.seconds(name, 30)
    res = subprocess.run([sys.executable, "-m", "src.utils.track.liveness", "--tracking-uri", "sqlite:////nonexistent.db"],
                         capture_output=True, text=True, env={**os.environ, name: value},
                         cwd=Path(__file__).resolve().parents[1])
    if name == liveness.GRACE_ENV:
        assert res.returncode == 2 and res.stderr.startswith(f"error: {name}=") and len(res.stderr.splitlines()) == 1
    else:
        assert res.returncode == 0, res.stderr


# --- SIGKILL for real ---------------------------------------------------------------------------------------------

def running_run(ws: Workspace, experiment: str, proc: subprocess.Popen, query: str = "", timeout: float = 120):
    """Block until `experiment` has a RUNNING run (matching `query`); return it."""
    client, deadline = ws.client(), time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        exp = client.get_experiment_by_name(experiment)
        if exp is not None:
            found = client.search_runs([exp.experiment_id], " and ".join(
                ["attributes.status = 'RUNNING'", *([query] if query else [])]))
            if found:
                return found[0]
        time.sleep(0.05)
    raise AssertionError(f"no RUNNING run in {experiment} in time")


def kill9(proc: subprocess.Popen, group: bool = False) -> None:
    if group:
        os.killpg(proc.pid, signal.SIGKILL)
    else:
        proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)


def assert_ended_dead(ws: Workspace, run_id: str, out: str, with_log: bool = True) -> None:
    client = ws.client()
    run = client.get_run(run_id)
    assert run.info.status == "FAILED"
    assert run.data.tags["ended_by"].startswith(f"workspace: process {run.data.tags['pid']} on ")
    assert f"note: run {run_id} (" in out and "is gone; ended FAILED" in out
    if with_log:
        logs = [a.path for a in client.list_artifacts(run_id, "logs")]
        assert logs == [f"logs/{Path(run.data.tags['log_file']).name}"]


def no_run_running(ws: Workspace) -> bool:
    client = ws.client()
    ids = [e.experiment_id for e in client.search_experiments()]
    return not client.search_runs(ids, "attributes.status = 'RUNNING'")


@pytest.mark.slow
def test_a_training_run_killed_hard_is_ended_by_the_next_command(prepared: Workspace) -> None:
    ws = prepared
    proc = subprocess.Popen([sys.executable, str(ws.root / TRAIN), "max_epochs=50", "~callbacks.early_stopping"],
                            cwd=ws.cwd, env=ws.env(**{liveness.INTERVAL_ENV: "0.5"}), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    run = running_run(ws, "model01", proc)
    assert run.data.tags["pid"] == str(proc.pid) and run.data.tags["host"] == socket.gethostname()
    deadline = time.monotonic() + 30
    while (beat := ws.client().get_run(run.info.run_id).data.tags["heartbeat"]) == run.data.tags["heartbeat"]:
        assert time.monotonic() < deadline and proc.poll() is None, "the run sends no heartbeat"
        time.sleep(0.1)
    kill9(proc)
    assert ws.client().get_run(run.info.run_id).info.status == "RUNNING"  # nothing of the process ended it

    res = ws.bash("scripts/new_diary.sh")
    assert res.returncode == 0, res.stderr[-3000:]
    assert_ended_dead(ws, run.info.run_id, res.stdout)
    assert ws.client().get_run(run.info.run_id).info.end_time >= int(beat) * 1000  # its last sign of life
    assert no_run_running(ws)
    # the diary lists the run as it now is
    diary = next((ws.root / "diary").glob("20*.md")).read_text()
    assert run.info.run_id[:8] in diary and "FAILED" in diary


@pytest.mark.slow
def test_a_data_stage_killed_hard_mid_work_is_ended_by_the_mlflow_ui(prepared: Workspace, tmp_path: Path) -> None:
    ws = prepared
    # a bigger copy of the raw data, so the stage is still reading it when its run is RUNNING
    raw, big = ws.root / "_data/data/raw", tmp_path / "raw_big"
    big.mkdir()
    for name in ("SOURCE.json", "test.csv", "sample_submission.csv"):
        if (raw / name).exists():
            (big / name).write_bytes((raw / name).read_bytes())
    header, *rows = (raw / "train.csv").read_text().splitlines(keepends=True)
    (big / "train.csv").write_text(header + "".join(rows) * 30)
    out_dir = ws.root / "_data/data/dataset01"
    manifest = (out_dir / "manifest.json").read_text()
    proc = subprocess.Popen([sys.executable, str(ws.root / "src/dataset/dataset01/make_dataset.py"),
                             f"raw_dir={big}"], cwd=ws.cwd, env=ws.env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    run = running_run(ws, "dataset01", proc)
    kill9(proc)
    run = ws.client().get_run(run.info.run_id)
    assert run.info.status == "RUNNING" and "content_hash" not in run.data.tags  # killed before it wrote its output
    assert (out_dir / "manifest.json").read_text() == manifest

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ui = subprocess.Popen(["bash", str(ws.root / "scripts/mlflow_ui.sh"), str(port)], cwd=ws.cwd, env=ws.env(),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        lines = []
        for line in ui.stdout:  # the reaper's lines come before the server starts
            lines.append(line)
            if line.startswith("MLflow UI:"):
                break
    finally:
        os.killpg(ui.pid, signal.SIGTERM)
        ui.wait(timeout=30)
    assert_ended_dead(ws, run.info.run_id, "".join(lines))
    assert "found by scripts/mlflow_ui.sh" in ws.client().get_run(run.info.run_id).data.tags["ended_by"]
    assert no_run_running(ws)


@pytest.mark.slow
def test_a_sweep_killed_hard_mid_trial_is_ended_by_the_next_run(prepared: Workspace) -> None:
    ws = prepared
    sweep = ["-m", "lr=tag(log,interval(1e-3,1e-2))", "hydra.sweeper.n_trials=2", "hydra.sweeper.study_name=kill9",
             "max_epochs=50", "~callbacks.early_stopping", "pruner=none"]
    proc = subprocess.Popen([sys.executable, str(ws.root / TRAIN), *sweep], cwd=ws.cwd, env=ws.env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    parent = running_run(ws, "model01", proc, "tags.sweep = 'parent' and tags.optuna_study = 'kill9'")
    trial = running_run(ws, "model01", proc, f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert parent.data.tags["pid"] == str(proc.pid)
    kill9(proc, group=True)

    res = ws.script(TRAIN, "max_epochs=1")
    assert res.returncode == 0, res.stderr[-3000:]
    assert_ended_dead(ws, parent.info.run_id, res.stdout, with_log="log_file" in parent.data.tags)
    assert_ended_dead(ws, trial.info.run_id, res.stdout)
    assert no_run_running(ws)

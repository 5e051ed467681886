"""src.utils.track: liveness (why a run is dead), secrets and flattening of params, the SQLite store's home, the
oldest run format."""

from __future__ import annotations

import os
import socket
import sqlite3
import time
from pathlib import Path

import pytest

from src.utils.core.errors import WorkspaceError
from src.utils.track import formats, liveness, store
from src.utils.track.liveness import maybe_running, process_start, process_tags, seconds, why_dead
from src.utils.track.store import DEFAULT_TRACKING_URI, relocate_store, store_home, tracking_uri
from src.utils.track.tracking import flatten

NOW = 1_700_000_000.0
GRACE = 600.0


def never_a_pid() -> int:
    """A pid no process can have: pids are below pid_max."""
    return int(Path("/proc/sys/kernel/pid_max").read_text())


@pytest.fixture
def here() -> dict[str, str]:
    """The tags of a run on this host, in this pid namespace."""
    return {"host": socket.gethostname(), "pid_ns": liveness._pid_namespace()}


# --- why_dead ---------------------------------------------------------------------------------------------------------
def test_a_live_process_of_this_host_is_alive(here) -> None:
    me = os.getpid()
    assert why_dead({**here, "pid": str(me), "pid_start": process_start(me)}, NOW, GRACE, set()) is None
    assert why_dead({**here, "pid": str(me)}, NOW, GRACE, set()) is None  # no pid_start to compare: alive


def test_a_dead_pid_on_this_host_is_dead_whatever_its_heartbeat(here) -> None:
    pid = never_a_pid()
    tags = {**here, "pid": str(pid), "heartbeat": str(NOW)}  # a fresh heartbeat does not save it
    assert why_dead(tags, NOW, GRACE, set()) == f"its process {pid} on {here['host']} is gone"


def test_a_reused_pid_is_another_process(here) -> None:
    me = os.getpid()
    tags = {**here, "pid": str(me), "pid_start": "12.34"}  # this pid, started at another time
    assert why_dead(tags, NOW, GRACE, set()) == f"its process {me} on {here['host']} is gone"


def test_a_run_of_this_process_or_its_ancestors_is_never_dead(here) -> None:
    for pid in (os.getpid(), never_a_pid()):
        tags = {**here, "pid": str(pid), "pid_start": "12.34"}
        assert why_dead(tags, NOW, GRACE, {pid}) is None


def test_a_process_of_another_user_is_alive(here, monkeypatch) -> None:
    monkeypatch.setattr(liveness, "process_start", lambda pid: "")  # psutil.AccessDenied
    assert why_dead({**here, "pid": "4242", "pid_start": "1.00"}, NOW, GRACE, set()) is None


def test_another_host_is_judged_by_its_heartbeat() -> None:
    tags = {"host": "node-7", "pid": "12", "pid_ns": "pid:[1]"}
    assert why_dead({**tags, "heartbeat": str(NOW - 60)}, NOW, GRACE, set()) is None
    assert why_dead({**tags, "heartbeat": str(NOW - GRACE)}, NOW, GRACE, set()) is None  # not older than grace
    assert (why_dead({**tags, "heartbeat": str(NOW - 1800)}, NOW, GRACE, set())
            == "its process 12 on node-7 sent no heartbeat for 30 min")


def test_another_pid_namespace_on_this_host_is_another_host(here) -> None:
    tags = {**here, "pid_ns": "pid:[other]", "pid": str(never_a_pid())}
    assert why_dead({**tags, "heartbeat": str(NOW)}, NOW, GRACE, set()) is None  # its pid means nothing here
    assert why_dead({**tags, "heartbeat": str(NOW - 7200)}, NOW, GRACE, set()).endswith("for 120 min")


def test_runs_without_tags_or_heartbeat_are_left_alone(here) -> None:
    assert why_dead({}, NOW, GRACE, set()) is None
    assert why_dead({"host": "node-7", "pid": "12"}, NOW, GRACE, set()) is None
    assert why_dead({"host": "node-7", "heartbeat": "soon"}, NOW, GRACE, set()) is None
    assert (why_dead({**here, "pid": "", "heartbeat": str(NOW - 3600)}, NOW, GRACE, set())
            == f"its process ? on {here['host']} sent no heartbeat for 60 min")
    assert why_dead({"heartbeat": str(NOW - 3600)}, NOW, GRACE, set()) == (
        "its process ? on ? sent no heartbeat for 60 min")


def test_process_start_and_tags() -> None:
    assert process_start(never_a_pid()) is None
    start = process_start(os.getpid())
    assert start and float(start) <= time.time()
    tags = process_tags()
    assert tags["pid"] == str(os.getpid()) and tags["host"] == socket.gethostname()
    assert tags["pid_start"] == start and abs(int(tags["heartbeat"]) - time.time()) < 60
    assert why_dead(tags, time.time(), GRACE, set()) is None


def test_process_tags_name_a_slurm_jobs_id(monkeypatch) -> None:
    monkeypatch.setenv("SLURM_JOB_ID", "101")
    assert process_tags()["job_id"] == "101"
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "100")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    assert process_tags()["job_id"] == "100_3"


@pytest.mark.parametrize(("text", "value"), [("", 30.0), ("  ", 30.0), ("5", 5.0), ("0.5", 0.5)])
def test_seconds(monkeypatch, text: str, value: float) -> None:
    monkeypatch.setenv("UNIT_SECONDS", text)
    assert seconds("UNIT_SECONDS", 30) == value


@pytest.mark.parametrize("text", ["0", "-1", "soon", "nan", "inf"])
def test_bad_seconds_are_one_error_line(monkeypatch, text: str) -> None:
    monkeypatch.setenv("UNIT_SECONDS", text)
    with pytest.raises(WorkspaceError, match=rf"^UNIT_SECONDS='{text}' is not a number of seconds; .*\(default 30\)"):
        seconds("UNIT_SECONDS", 30)


def test_maybe_running_reads_a_sqlite_store(tmp_path: Path) -> None:
    db = tmp_path / "mlflow.db"
    uri = f"sqlite:///{db}"
    assert maybe_running(uri) is False  # no file: nothing runs
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE other (x)")
    assert maybe_running(uri) is True  # a schema it does not know: MLflow is to look
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE runs (run_uuid, status)")
        con.execute("INSERT INTO runs VALUES ('a', 'FINISHED')")
    assert maybe_running(uri) is False
    with sqlite3.connect(db) as con:
        con.execute("INSERT INTO runs VALUES ('b', 'RUNNING')")
    assert maybe_running(uri) is True
    assert maybe_running("postgresql://u@h/db") is True


# --- tracking: params -------------------------------------------------------------------------------------------------
def test_flatten_gives_dotted_names() -> None:
    cfg = {"a": 1, "b": {"c": 2, "d": {"e": [1, 2]}}, "f": {}}
    assert list(flatten(cfg)) == [("a", 1), ("b.c", 2), ("b.d.e", [1, 2])]
    assert list(flatten({"x": 1}, "p.")) == [("p.x", 1)]


# --- store ------------------------------------------------------------------------------------------------------------
def make_store(root: Path, home: Path) -> Path:
    """A SQLite file with the columns the store helpers read, its artifacts under `home`/logs/mlruns/artifacts."""
    db = root / "logs" / "mlruns" / "mlflow.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    art = f"{home}/logs/mlruns/artifacts"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE experiments (experiment_id, artifact_location)")
        con.execute("CREATE TABLE runs (run_uuid, artifact_uri)")
        con.execute("CREATE TABLE datasets (dataset_uuid, dataset_source)")
        con.executemany("INSERT INTO experiments VALUES (?, ?)",
                        [(0, f"file://{art}/Default"), (1, f"file://{art}/model01"), (2, "s3://bucket/elsewhere")])
        con.executemany("INSERT INTO runs VALUES (?, ?)", [("r1", f"file://{art}/model01/r1/artifacts"),
                                                          ("r2", "s3://bucket/r2")])
        con.execute("INSERT INTO datasets VALUES ('d1', ?)", (f'{{"uri": "{home}/_data/feature/f01"}}',))
    return db


def rows(db: Path, table: str, column: str) -> list[str]:
    with sqlite3.connect(db) as con:
        return [r[0] for r in con.execute(f"SELECT {column} FROM {table} ORDER BY 1")]


def test_store_home_is_the_root_the_experiments_point_at(tmp_path: Path) -> None:
    db = make_store(tmp_path / "copy", tmp_path / "original")
    assert store_home(db) == tmp_path / "original"


def test_store_home_of_an_empty_or_foreign_store_is_none(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    assert store_home(empty) is None  # no schema yet
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as con:
        con.execute("CREATE TABLE experiments (artifact_location)")
        con.execute("INSERT INTO experiments VALUES ('s3://bucket/x')")
    assert store_home(foreign) is None


def test_relocate_store_points_a_copied_store_at_its_own_root(tmp_path: Path) -> None:
    old, new = tmp_path / "original", tmp_path / "copy"
    db = make_store(new, old)
    assert relocate_store(new) == old
    assert store_home(db) == new
    assert rows(db, "experiments", "artifact_location") == [
        f"file://{new}/logs/mlruns/artifacts/Default", f"file://{new}/logs/mlruns/artifacts/model01",
        "s3://bucket/elsewhere"]
    assert rows(db, "runs", "artifact_uri") == [f"file://{new}/logs/mlruns/artifacts/model01/r1/artifacts",
                                                "s3://bucket/r2"]
    assert rows(db, "datasets", "dataset_source") == [f'{{"uri": "{new}/_data/feature/f01"}}']
    assert relocate_store(new) is None  # at home now: nothing to change


def test_relocate_store_does_not_touch_a_longer_sibling_path(tmp_path: Path) -> None:
    old, new = tmp_path / "ws", tmp_path / "copy"
    db = make_store(new, old)
    with sqlite3.connect(db) as con:
        con.execute("INSERT INTO runs VALUES ('r3', ?)", (f"file://{old}-other/logs/mlruns/artifacts/x",))
    relocate_store(new)
    assert f"file://{old}-other/logs/mlruns/artifacts/x" in rows(db, "runs", "artifact_uri")


def test_relocate_store_without_a_store_is_none(tmp_path: Path) -> None:
    assert relocate_store(tmp_path) is None


def test_check_store_home_refuses_another_workspaces_store(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(store, "ROOT", tmp_path)
    db = make_store(tmp_path, tmp_path / "elsewhere")
    with pytest.raises(WorkspaceError, match=r"keeps its artifacts in .*elsewhere .*bash scripts/setup.sh"):
        store.check_store_home(db)
    relocate_store(tmp_path)
    store.check_store_home(db)
    store.check_store_home(tmp_path / "missing.db")


def test_store_home_under_a_path_with_a_hash(tmp_path: Path) -> None:
    root = tmp_path / "ws#1"
    db = make_store(root, tmp_path / "original")
    assert store_home(db) == tmp_path / "original"


def test_tracking_uri(monkeypatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking_uri() == DEFAULT_TRACKING_URI
    assert DEFAULT_TRACKING_URI == f"sqlite:///{store.ROOT / 'logs' / 'mlruns' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert tracking_uri() == "http://127.0.0.1:5000"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "")
    assert tracking_uri() == DEFAULT_TRACKING_URI


def test_landing_counts_active_runs_and_picks_the_latest_experiment(tmp_path: Path) -> None:
    db = tmp_path / "mlflow.db"
    assert store.landing(db) == (0, None)  # no file yet
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE experiments (experiment_id, name, lifecycle_stage)")
        con.execute("CREATE TABLE runs (run_uuid, experiment_id, lifecycle_stage, start_time)")
        con.executemany("INSERT INTO experiments VALUES (?, ?, ?)",
                        [(1, "model01", "active"), (2, "__debug__", "active"), (3, "gone", "deleted")])
        con.executemany("INSERT INTO runs VALUES (?, ?, ?, ?)",
                        [("a", 1, "active", 100), ("b", 2, "active", 300), ("c", 3, "active", 400),
                         ("d", 1, "deleted", 500)])
    assert store.landing(db) == (3, (1, "model01"))  # __debug__ only when nothing else has runs
    with sqlite3.connect(db) as con:
        con.execute("DELETE FROM runs WHERE experiment_id = 1")
    assert store.landing(db) == (2, (2, "__debug__"))


# --- the oldest run format ----------------------------------------------------------------------------------------
def test_a_training_run_with_the_format_tags_is_read() -> None:
    formats.check_training_run("f" * 32, {"competition": "digit-recognizer", "task": "multiclass",
                                          "folds_hash": "ab" * 32})


@pytest.mark.parametrize("missing", [("task",), ("competition", "folds_hash"), ("competition", "task", "folds_hash")])
def test_a_training_run_without_them_is_one_error_naming_the_commit_that_reads_it(missing) -> None:
    tags = {t: "x" for t in formats.TRAINING_TAGS if t not in missing}
    with pytest.raises(WorkspaceError) as exc:
        formats.check_training_run("0123456789abcdef" * 2, tags)
    message = str(exc.value)
    assert "\n" not in message and message.startswith("run 01234567 was logged by an older version")
    assert f"records no tag {', '.join(missing)})" in message
    assert "since commit ee0232e (2026-11-30)" in message and "git worktree add ../workspace-686a27a 686a27a" in message


def test_the_commits_the_format_names_exist() -> None:
    import subprocess

    root = Path(__file__).resolve().parents[2]
    for commit in (formats.OLDEST, formats.READS_OLDER):
        out = subprocess.run(["git", "-C", str(root), "cat-file", "-t", commit], capture_output=True, text=True)
        assert out.stdout.strip() == "commit", commit


def test_a_readable_missing_or_busy_store_passes_a_damaged_one_is_one_line(tmp_path: Path) -> None:
    import sqlite3

    from src.utils.track.store import check_readable

    db = tmp_path / "mlflow.db"
    check_readable(db)  # no file yet: nothing to check
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode=WAL")  # as the workspace's stores are
    with con:
        con.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY, name TEXT)")
        con.executemany("INSERT INTO runs (name) VALUES (?)", [(f"run {i}" * 20,) for i in range(400)])
    con.close()
    check_readable(db)
    locked = sqlite3.connect(db, isolation_level=None)
    locked.execute("BEGIN EXCLUSIVE")  # another process writing: busy, not damaged
    try:
        check_readable(db)
    finally:
        locked.close()
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode=DELETE")  # every page in the file, none in a -wal beside it
    con.close()
    data = bytearray(db.read_bytes())
    data[4096 + 8: 4096 + 308] = b"\xff" * 300  # a page of the table
    db.write_bytes(bytes(data))
    with pytest.raises(WorkspaceError) as page:
        check_readable(db, "the Optuna study storage")
    data[:16] = b"not a database!!"
    db.write_bytes(bytes(data))
    with pytest.raises(WorkspaceError) as header:
        check_readable(db)
    for exc, what in ((page, "the Optuna study storage"), (header, "the MLflow store")):
        line = str(exc.value)
        assert "\n" not in line and f"{db} ({what}) cannot be read" in line and f"cp {db} {db}.damaged" in line
    assert "file is not a database" in str(header.value)


def test_a_trials_deferred_plots_are_drawn_from_what_its_run_logged(tmp_path: Path) -> None:
    import mlflow
    import numpy as np

    from src.utils.core.paths import ROOT
    from src.utils.track.plots import PLOTS_TAG, draw_task_plots

    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = client.create_run(client.create_experiment("e", artifact_location=(tmp_path / "a").as_uri()))
    rid = run.info.run_id
    (tmp_path / "competition.yaml").write_text((ROOT / "config/competition/digit-recognizer.yaml").read_text())
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 50)
    np.savez(tmp_path / "oof.npz", rows=np.arange(50), folds=np.zeros(50), y=y, scores=rng.dirichlet(np.ones(10), 50))
    client.log_artifact(rid, str(tmp_path / "competition.yaml"))
    client.log_artifact(rid, str(tmp_path / "oof.npz"), "predictions")
    client.set_tag(rid, "competition", "digit-recognizer")
    client.log_metric(rid, "oof_accuracy", 0.12)
    assert draw_task_plots(client, rid) == ["confusion_matrix.png"]
    assert "confusion_matrix.png" in {a.path for a in client.list_artifacts(rid)}
    assert client.get_run(rid).data.tags[PLOTS_TAG] == "drawn"

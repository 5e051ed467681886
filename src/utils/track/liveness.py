"""Runs whose process died: every run names its process and sends heartbeats; dead ones are ended FAILED.

A process killed with SIGKILL (the OOM killer, `kill -9`, a lost machine) runs no handler, so its MLflow run would
stay RUNNING forever. So each run carries, as tags: `host`, `pid`, `pid_start` (the process's start time: a reused
pid is another process), `pid_ns` (its pid namespace: containers on one host may share the host name, not their
pids), `log_file` (set by the run's owner) and `heartbeat` (unix time), refreshed every
WORKSPACE_HEARTBEAT_INTERVAL seconds (default 30) while the run lasts.

`end_dead_runs` ends the RUNNING runs whose process is gone: on this host, when the pid is not alive or is another
process; on another host, only when the heartbeat is older than WORKSPACE_HEARTBEAT_GRACE seconds (default 600).
It tags them `ended_by`, attaches their log file under logs/ when it is still on disk, and ends them FAILED at
their last heartbeat (FAILED, not KILLED: KILLED is a run that handled its interrupt and kept its evidence).
Runs without these tags (made by other code: a notebook, the MLflow UI) are left alone. The first command of a
process that opens the store calls it (tracking.setup_mlflow), and so does `python -m src.utils.track.liveness`
(scripts/mlflow_ui.sh).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import Any

from src.utils.core.errors import WorkspaceError
from src.utils.track.store import tracking_uri

INTERVAL_ENV, GRACE_ENV = "WORKSPACE_HEARTBEAT_INTERVAL", "WORKSPACE_HEARTBEAT_GRACE"
SWEEP_PARENT_ENV = "WORKSPACE_SWEEP_PARENT_RUN_ID"  # src.utils.tune.parent.PARENT_RUN_ENV: this process's sweep parent


def seconds(name: str, default: float) -> float:
    """A positive number of seconds from the environment variable `name`."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise WorkspaceError(f"{name}={text!r} is not a number of seconds; set it to a positive number "
                             f"(default {default:g}) or unset it")
    return value


def process_start(pid: int) -> str | None:
    """When process `pid` started (None: no such process, or one that is dead and not yet reaped)."""
    import psutil

    try:
        proc = psutil.Process(pid)
        if proc.status() in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
            return None
        return f"{proc.create_time():.2f}"
    except psutil.NoSuchProcess:
        return None
    except psutil.AccessDenied:  # alive, of another user
        return ""


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


def process_tags() -> dict[str, str]:
    """The tags that tell whether this process, the run's, is alive."""
    tags = {"host": socket.gethostname(), "pid": str(os.getpid()), "pid_start": process_start(os.getpid()) or "",
            "pid_ns": _pid_namespace(), "heartbeat": str(int(time.time()))}
    if os.environ.get("SLURM_JOB_ID"):  # a SLURM job: its id as squeue, sacct and scancel name it
        array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
        tags["job_id"] = f"{array}_{task}" if array and task else os.environ["SLURM_JOB_ID"]
    return tags


class Heartbeat:
    """A daemon thread that sets the run's `heartbeat` tag every `interval` seconds until stopped (through `client`,
    default: an MlflowClient of the current tracking URI)."""

    def __init__(self, run_id: str | None = None, interval: float | None = None, client: Any = None) -> None:
        self.run_id, self.client = run_id, client
        self.interval = interval or seconds(INTERVAL_ENV, 30)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, run_id: str | None = None) -> Heartbeat:
        import mlflow

        self.run_id = run_id or self.run_id
        client, run_id = self.client or mlflow.MlflowClient(), self.run_id

        def beat() -> None:
            while not self._stop.wait(self.interval):
                with contextlib.suppress(Exception):  # a busy store: the next beat is in time
                    client.set_tag(run_id, "heartbeat", str(int(time.time())))

        self._thread = threading.Thread(target=beat, name=f"heartbeat-{run_id[:8]}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)


def _own_pids() -> set[int]:
    """This process and its ancestors (a sweep's parent process among them)."""
    import psutil

    me = psutil.Process()
    with contextlib.suppress(psutil.Error):
        return {me.pid, *(p.pid for p in me.parents())}
    return {me.pid}


def why_dead(tags: dict[str, str], now: float, grace: float, own_pids: set[int]) -> str | None:
    """Why the run with these tags has no live process (None: alive, or not known to be dead)."""
    host, pid = tags.get("host", ""), tags.get("pid", "")
    here = host == socket.gethostname() and tags.get("pid_ns", "") == _pid_namespace()
    if here and pid.isdigit():
        if int(pid) in own_pids:
            return None
        start = process_start(int(pid))
        if start is None or (start and tags.get("pid_start") and start != tags["pid_start"]):
            return f"its process {pid} on {host} is gone"
        return None
    try:
        age = now - float(tags["heartbeat"])
    except (KeyError, ValueError):
        return None  # not one of ours (no heartbeat): nothing tells
    if age > grace:
        return f"its process {pid or '?'} on {host or '?'} sent no heartbeat for {age / 60:.0f} min"
    return None


def end_dead_runs(client: Any, found_by: str, grace: float | None = None, keep: tuple[str | None, ...] = ()
                  ) -> list[str]:
    """End FAILED the RUNNING runs (of every experiment) whose process is gone; their ids, one printed line each.

    Never touches `keep`, this process's active run or its sweep's parent run, nor a run of this process or of
    one of its ancestors.
    """
    import mlflow
    from mlflow.entities import ViewType

    grace = grace if grace is not None else seconds(GRACE_ENV, 600)
    experiments = {e.experiment_id: e.name for e in client.search_experiments(view_type=ViewType.ALL)}
    if not experiments:
        return []
    running = client.search_runs(list(experiments), "attributes.status = 'RUNNING'", max_results=50000)
    active = mlflow.active_run()
    keep = {*keep, os.environ.get(SWEEP_PARENT_ENV), active.info.run_id if active else None}
    now, own, ended = time.time(), None, []
    for run in running:
        if run.info.run_id in keep:
            continue
        tags = run.data.tags
        if own is None and tags.get("host") == socket.gethostname():
            own = _own_pids()
        reason = why_dead(tags, now, grace, own or set())
        if reason is None or client.get_run(run.info.run_id).info.status != "RUNNING":  # ended meanwhile
            continue
        client.set_tag(run.info.run_id, "ended_by", f"workspace: {reason.removeprefix('its ')} (found by {found_by})")
        log_file = Path(tags.get("log_file", ""))
        if tags.get("log_file") and log_file.is_file():
            with contextlib.suppress(Exception):  # the evidence is a bonus; the status is the point
                client.log_artifact(run.info.run_id, str(log_file), "logs")
        try:  # the run ended at its last sign of life, not now
            end_ms = max(int(float(tags["heartbeat"]) * 1000), run.info.start_time or 0)
        except (KeyError, ValueError):
            end_ms = None
        client.set_terminated(run.info.run_id, "FAILED", end_time=end_ms)
        name = run.info.run_name or tags.get("mlflow.runName", "")
        print(f"note: run {run.info.run_id} ({experiments.get(run.info.experiment_id, '?')}/{name}) was RUNNING "
              f"but {reason}; ended FAILED", flush=True)
        ended.append(run.info.run_id)
    return ended


def maybe_running(uri: str) -> bool:
    """False when a SQLite store surely holds no RUNNING run (one query, no MLflow import); True otherwise."""
    if not uri.startswith("sqlite:///"):
        return True
    db = Path(uri.removeprefix("sqlite:///"))
    if not db.is_file():
        return False
    try:
        with contextlib.closing(sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=10)) as con:
            return con.execute("SELECT 1 FROM runs WHERE status = 'RUNNING' LIMIT 1").fetchone() is not None
    except sqlite3.Error:  # no tables yet, or a schema this query does not know: let MLflow look
        return True


def end_dead_runs_of(uri: str, found_by: str) -> None:
    """`end_dead_runs` on the store at `uri`, when it may hold a RUNNING run. A store that cannot answer now does not
    stop the command (a warning); a bad WORKSPACE_HEARTBEAT_GRACE is the user's to fix (a WorkspaceError)."""
    grace = seconds(GRACE_ENV, 600)
    if not maybe_running(uri):  # one SQLite query; nothing RUNNING costs nothing more
        return
    import mlflow

    try:
        end_dead_runs(mlflow.MlflowClient(tracking_uri=uri), found_by, grace)
    except Exception as exc:
        print(f"warning: could not look for runs whose process died: {exc}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    """End the dead runs of a store (default: MLFLOW_TRACKING_URI, else the workspace store)."""
    parser = argparse.ArgumentParser(prog="python -m src.utils.track.liveness", description=main.__doc__)
    parser.add_argument("--found-by", default="python -m src.utils.track.liveness", help="named in the ended_by tag")
    parser.add_argument("--tracking-uri", help="the store (default: MLFLOW_TRACKING_URI, else the workspace's)")
    args = parser.parse_args(argv)
    try:
        uri = args.tracking_uri
        if uri is None:
            uri = tracking_uri()
        end_dead_runs_of(uri, args.found_by)
    except WorkspaceError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())

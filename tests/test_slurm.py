"""SLURM for real: a one-node cluster (munge, MariaDB, slurmdbd, slurmctld, slurmd from Debian's packages, installed
when missing) started by `scripts/services.sh slurm up`, with the PostgreSQL study and the MLflow server of
`services.sh up`. docs/scaling.md's "On a SLURM cluster" block runs as written (tiny settings appended): a 6-trial
sweep as job arrays, 2 jobs at once, and a DDP run as one job of 2 srun tasks. Then the faults: a job cancelled with
scancel, a job killed at its time limit, a sweep interrupted with Ctrl-C. The block's two `down` lines run when the
module is done, whatever happened, and must leave nothing running.
"""

from __future__ import annotations

import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import optuna
import pytest

from tests.conftest import Workspace, ctrl_c_reaches_it
from tests.docs import block_after, poetry_bin
from tests.test_services import client, exports, free_port, study, sweep_runs

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0, reason="the one-node SLURM cluster runs as root (slurmd)")]
TRAIN = "src/model/model01/train.py"
TINY_SWEEP = ["max_epochs=2"]
TINY_DDP = ["max_epochs=2"]


def free_base() -> int:
    """A port with the next three free too (slurmctld, slurmd, slurmdbd, MariaDB)."""
    for _ in range(200):
        base = random.randrange(20000, 40000, 10)
        ok = True
        for port in range(base, base + 4):
            with socket.socket() as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise AssertionError("no 4 free ports in a row")


def with_tiny(line: str) -> str:
    if " -m " in line:
        return f"{line} {' '.join(TINY_SWEEP)}"
    if line.startswith("sbatch "):
        return f"{line} {' '.join(TINY_DDP)}"
    return line


def daemon_pids(ws: Workspace) -> dict[str, int]:
    run = ws.root / "logs/slurm/run"
    return {f.stem: int(f.read_text().strip()) for f in run.glob("*.pid") if f.read_text().strip().isdigit()}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()


@pytest.fixture(scope="module")
def cluster(prepared: Workspace):
    """(workspace, env: the exports of `services.sh env`, the block's output, seconds `slurm up` took)."""
    ports = {"WORKSPACE_PG_PORT": str(free_port()), "WORKSPACE_MLFLOW_PORT": str(free_port()),
             "WORKSPACE_SLURM_PORT": str(free_base())}
    block = block_after("docs/scaling.md", "## On a SLURM cluster")
    assert block[0] == "bash scripts/services.sh up" and block[1] == "bash scripts/services.sh slurm up", block
    assert block[-2:] == ["bash scripts/services.sh slurm down", "bash scripts/services.sh down"], block
    env = prepared.env(**ports)
    env["PATH"] = f"{poetry_bin()}:{env['PATH']}"
    start = time.monotonic()
    res = subprocess.run(["bash", "-ec", "\n".join(with_tiny(line) for line in block[:-2])], cwd=prepared.root,
                         env=env, capture_output=True, text=True, timeout=1800)
    print(f"docs/scaling.md SLURM block (services, cluster, 6-trial sweep, DDP job): {time.monotonic() - start:.1f} s")
    pids: dict[str, int] = {}
    try:
        pids = daemon_pids(prepared)
        assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
        up = re.search(r"\[slurm\] up in ([\d.]+) s", res.stdout)
        assert up, res.stdout[-3000:]
        env = exports(prepared, ports)
        assert env["SLURM_CONF"] == str(prepared.root / "logs/slurm/etc/slurm.conf")
        yield prepared, env, res.stdout, float(up.group(1))
    finally:
        down = subprocess.run(["bash", "-c", "\n".join(block[-2:])], cwd=prepared.root, env=prepared.env(**ports),
                              capture_output=True, text=True, timeout=300)
        server = prepared.root / "logs/services/postgres/server"
        if server.is_symlink():
            import shutil

            shutil.rmtree(server.resolve(), ignore_errors=True)
        assert down.returncode == 0, down.stderr
        left = {name: pid for name, pid in pids.items() if alive(pid)}
        assert not left, f"still running after down: {left}"
        for port in ports.values():
            with socket.socket() as s:
                assert s.connect_ex(("127.0.0.1", int(port))) != 0


def slurm(env: dict[str, str], *args: str) -> str:
    res = subprocess.run(list(args), env={**os.environ, "SLURM_CONF": env["SLURM_CONF"]}, capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return res.stdout


def job_times(env: dict[str, str], job_ids: set[str]) -> dict[str, tuple[datetime, datetime]]:
    out = slurm(env, "sacct", "-X", "--parsable2", "--noheader", "-o", "JobID,Start,End", "-j",
                ",".join(sorted({j.split("_")[0] for j in job_ids})))
    times = {}
    for line in out.splitlines():
        job, begin, end = line.split("|")
        if job in job_ids and begin[0].isdigit() and end[0].isdigit():
            times[job] = (datetime.fromisoformat(begin), datetime.fromisoformat(end))
    return times


def test_readme_sweep_runs_as_slurm_jobs_two_at_once(cluster) -> None:
    ws, env, out, up_s = cluster
    print(f"one-node cluster up in {up_s:.1f} s")
    names = [s.study_name for s in optuna.get_all_study_summaries(env["OPTUNA_STORAGE"])]
    (name,) = [n for n in names if not n.startswith("slurm-")]  # the README's sweep
    trials = study(env, name).trials
    assert len(trials) == 6 and {t.state.name for t in trials} <= {"COMPLETE", "PRUNED"}, [t.state for t in trials]
    (parent,), children = sweep_runs(env, name)
    assert len(children) == 6 and all(c.data.tags["mlflow.parentRunId"] == parent.info.run_id for c in children)
    assert {t.user_attrs["mlflow_run_id"] for t in trials} == {c.info.run_id for c in children}
    c = client(env)
    for run in children:
        assert run.info.status == "FINISHED" and run.data.tags["job_state"] == "COMPLETED"
        assert re.fullmatch(r"\d+_\d", run.data.tags["job_id"]), run.data.tags
        logs = {a.path for a in c.list_artifacts(run.info.run_id, "logs/job")}
        assert f"logs/job/{run.data.tags['job_id']}_0_log.out" in logs, logs
        text = Path(c.download_artifacts(run.info.run_id, f"logs/job/{run.data.tags['job_id']}_0_log.out")).read_text()
        assert run.info.run_id in text
    times = job_times(env, {r.data.tags["job_id"] for r in children})
    assert len(times) == 6
    spans = sorted(times.values())
    overlaps = sum(spans[i][1] > spans[i + 1][0] for i in range(len(spans) - 1))
    assert overlaps >= 1, spans  # at least two jobs ran at the same time
    assert "sweep done: parent run" in out


def test_ddp_job_is_one_run_of_two_srun_tasks(cluster) -> None:
    ws, env, out, _ = cluster
    c = client(env)
    exp = c.get_experiment_by_name("model01")
    runs = [r for r in c.search_runs([exp.experiment_id], "params.`trainer.strategy` = 'ddp'")
            if "job_id" in r.data.tags]
    assert len(runs) == 1, [r.data.tags for r in runs]
    (run,) = runs
    assert run.info.status == "FINISHED" and len(c.get_metric_history(run.info.run_id, "val_acc")) == 2
    job = run.data.tags["job_id"]
    log = (ws.root / f"logs/jobs/{job}.out").read_text()
    assert "0: run_id=" in log and "1: run_id=" not in log, log[-3000:]
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in log
    steps = slurm(env, "sacct", "-j", job, "--parsable2", "--noheader", "-o", "JobID,NTasks,State")
    assert f"{job}.0|2|COMPLETED" in steps, steps


def wait_for_runs(env: dict[str, str], name: str, n: int, timeout: float = 300) -> list:
    """The sweep's first n trial runs, once they are RUNNING and have reported an epoch."""
    c = client(env)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        _, children = sweep_runs(env, name)
        ready = [r for r in children if r.info.status == "RUNNING" and "job_id" in r.data.tags
                 and c.get_metric_history(r.info.run_id, "val_acc")]
        if len(ready) >= n:
            return ready[:n]
        time.sleep(0.3)
    raise AssertionError(f"{n} trial runs of {name} never started")


def sweep(ws: Workspace, env: dict[str, str], name: str, *args: str) -> subprocess.Popen:
    cmd = [sys.executable, str(ws.root / TRAIN), "-m", "lr=tag(log,interval(1e-3,1e-2))",
           "hydra/launcher=submitit_slurm", "hydra.sweeper.n_jobs=2", f"hydra.sweeper.study_name={name}",
           "pruner=none", *args]
    return subprocess.Popen(cmd, cwd=ws.cwd, env=ws.env(**env), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=ctrl_c_reaches_it)


STOP = threading.Event()


def keep_stopped(pid: int) -> None:
    """A process that hangs: SIGSTOP again after every SIGCONT, until it is killed."""
    while not STOP.is_set():
        try:
            os.kill(pid, signal.SIGSTOP)
        except ProcessLookupError:
            return
        time.sleep(0.05)


def test_cancelled_and_timed_out_jobs_are_failed_and_asked_again(cluster) -> None:
    """One job is cancelled (scancel): its process ends its run KILLED. The other one hangs (kept stopped with
    SIGSTOP, through the SIGCONTs SLURM sends) and its time limit is cut to 1 minute: the controller kills it as
    TIMEOUT (SIGKILL in the end), and the sweep ends its run KILLED. Both trials FAIL with the reason on their runs,
    their points are run again, and the sweep still ends with n_trials=2 finished."""
    ws, env, _, _ = cluster
    name = "slurm-faults"
    start = time.monotonic()
    proc = sweep(ws, env, name, "hydra.sweeper.n_trials=2", "max_epochs=6")
    try:
        first, second = sorted(wait_for_runs(env, name, 2), key=lambda r: r.data.tags["job_id"])
        slurm(env, "scancel", first.data.tags["job_id"])
        hang = threading.Thread(target=keep_stopped, args=(int(second.data.tags["pid"]),), daemon=True)
        hang.start()
        slurm(env, "scontrol", "update", f"JobId={second.data.tags['job_id']}", "TimeLimit=1")
        out, err = proc.communicate(timeout=600)
    finally:
        proc.kill()
        STOP.set()
    assert proc.returncode == 0, err[-4000:]
    print(f"2-trial sweep with a cancelled and a timed-out job: {time.monotonic() - start:.1f} s")
    trials = study(env, name).trials
    states = [t.state.name for t in trials]
    assert states.count("FAIL") == 2 and states.count("COMPLETE") == 2 and len(trials) == 4, states
    failed = [t for t in trials if t.state.name == "FAIL"]
    retried = [t for t in trials if t.system_attrs.get("failed_trial") is not None]
    assert sorted(t.system_attrs["failed_trial"] for t in retried) == sorted(t.number for t in failed)
    for t in retried:  # the same point, asked again
        assert t.params == trials[t.system_attrs["failed_trial"]].params
    _, children = sweep_runs(env, name)
    assert len(children) == 4
    by_id = {r.info.run_id: r for r in children}
    ended = {}
    for t in failed:
        run = by_id[t.user_attrs["mlflow_run_id"]]
        assert run.info.status == "KILLED", (run.info.status, run.data.tags)
        ended[run.data.tags["job_id"]] = run.data.tags["ended_by"]
    assert ended[first.data.tags["job_id"]].endswith("CANCELLED by 0: cancelled (scancel)"), ended
    assert "TIMEOUT: killed at its time limit" in ended[second.data.tags["job_id"]], ended
    assert sum(r.info.status == "FINISHED" for r in children) == 2
    assert out.count("its point is asked again") == 2, out[-3000:]


def test_interrupted_sweep_leaves_no_job(cluster) -> None:
    ws, env, _, _ = cluster
    name = "slurm-interrupted"
    proc = sweep(ws, env, name, "hydra.sweeper.n_trials=2", "max_epochs=50", "~callbacks.early_stopping")
    try:
        runs = wait_for_runs(env, name, 2)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=180)
    finally:
        proc.kill()
    assert proc.returncode != 0
    jobs = {r.data.tags["job_id"] for r in runs}
    queue = slurm(env, "squeue", "-h", "-o", "%i")
    assert not jobs & set(queue.split()), queue
    assert "cancelled 2 job(s)" in out + err, (out + err)[-3000:]
    c = client(env)
    for run in runs:
        assert c.get_run(run.info.run_id).info.status == "KILLED"
    assert [t.state.name for t in study(env, name).trials if t.state.name != "WAITING"] == ["FAIL", "FAIL"]


def test_a_job_the_cluster_cannot_run_is_one_error_line(cluster) -> None:
    ws, env, _, _ = cluster
    res = ws.script(TRAIN, "-m", "lr=tag(log,interval(1e-3,1e-2))", "hydra/launcher=submitit_slurm",
                    "hydra.launcher.mem_gb=100000", "hydra.sweeper.n_trials=1", "hydra.sweeper.study_name=slurm-bad",
                    **env)
    assert res.returncode == 2, res.stderr[-3000:]
    errors = [line for line in res.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "the scheduler refused the trials' jobs" in errors[0], res.stderr[-3000:]
    assert "hydra.launcher.*" in errors[0] and "Traceback" not in res.stderr
    assert [t.state.name for t in study(env, "slurm-bad").trials] == ["FAIL", "WAITING"]  # its point is kept


def test_a_ddp_trial_is_one_job_of_two_tasks_and_one_run(cluster) -> None:
    """`hydra.launcher.tasks_per_node=2 trainer.strategy=ddp trainer.devices=2`: submitit starts both processes with
    srun; task 1 (a DDP worker) takes the experiment's Config from its module, as task 0 does."""
    ws, env, _, _ = cluster
    name = "slurm-ddp-trial"
    proc = sweep(ws, env, name, "hydra.sweeper.n_trials=1", "max_epochs=2", "hydra.launcher.tasks_per_node=2",
                 "trainer.strategy=ddp", "trainer.devices=2", "hydra.launcher.timeout_min=5")
    try:
        out, err = proc.communicate(timeout=400)
    finally:
        proc.kill()
    assert proc.returncode == 0, err[-4000:]
    assert [t.state.name for t in study(env, name).trials] == ["COMPLETE"]
    _, (run,) = sweep_runs(env, name)
    assert run.info.status == "FINISHED" and run.data.params["trainer.strategy"] == "ddp"
    assert len(client(env).get_metric_history(run.info.run_id, "val_acc")) == 2
    steps = slurm(env, "sacct", "-j", run.data.tags["job_id"], "--parsable2", "--noheader", "-o", "JobID,NTasks")
    assert any(line.endswith("|2") for line in steps.splitlines()), steps

"""What scripts/bench.sh times in its copy: the two sweeps, cold start, load_run, the MLflow UI and two commands.

(A) is the workspace's own sweep (`train.py -m` through Hydra, Optuna, Lightning and MLflow) with the timeline
callback added, (B) the floor (src/tools/bench_floor.py) on the same search space; each returns its wall and CPU
time and its per-trial windows. The cheap measurements each run in a fresh process, as a user meets them: a single
run up to its first training step, load_run(run_id) cold and warm, scripts/mlflow_ui.sh up to a 200 from /health,
and `train.py lr=abc` / `train.py --help` up to their exit (with what they print checked).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from typing import Any

from src.tools.bench_experiment import Experiment
from src.tools.bench_timeline import TIMELINE_TARGET, epoch_stats, trial_stats
from src.tools.bench_workspace import Copy
from src.utils.core.servers import wait_http

LR_LOW, LR_HIGH = 1e-4, 1e-2
SEARCH_SPACE = f"lr=tag(log,interval({LR_LOW},{LR_HIGH}))"


# --------------------------------------------------------------------------------------------------
# (A) and (B)
# --------------------------------------------------------------------------------------------------
def run_workspace(ws: Copy, exp: Experiment, trials: int, epochs: int, tag: str, pruner: str = "pruner=none",
                  extra: tuple[str, ...] = ("~callbacks.early_stopping",)) -> dict[str, Any]:
    """The workspace's sweep; without pruning and early stopping (the floor has neither) unless `pruner` and
    `extra` say otherwise."""
    import optuna

    timeline = ws.cwd / f"timeline-A-{tag}.jsonl"
    study = f"bench-{exp.name}-{tag}"
    launch = time.time()
    wall, cpu, out = ws.python(
        str(ws.root / exp.train_py), "-m", SEARCH_SPACE, f"max_epochs={epochs}",
        f"hydra.sweeper.n_trials={trials}", f"hydra.sweeper.study_name={study}", pruner, *extra,
        f"+callbacks.bench_timeline._target_={TIMELINE_TARGET}",
        f"+callbacks.bench_timeline.path={timeline}", what=f"the workspace sweep (A), {exp.train_py} -m")
    events = [json.loads(line) for line in timeline.read_text().splitlines()]
    storage = f"sqlite:///{ws.root / 'logs/optuna/optuna.db'}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    done = optuna.load_study(study_name=study, storage=storage).trials
    rows = [{"number": t.number, "params": t.params, "value": t.value, "state": t.state.name,
             "start": t.datetime_start.timestamp(), "end": t.datetime_complete.timestamp(),
             "steps": len(t.intermediate_values)} for t in done]
    best = re.search(r"best run_id=(\w+)", out)
    return {"wall_s": wall, "cpu_s": cpu, "first_step_s": epoch_stats(events)["first_step"] - launch,
            "launch": launch, "best_run_id": best.group(1) if best else None, **trial_stats(rows, events)}


def run_floor(ws: Copy, exp: Experiment, trials: int, epochs: int, tag: str) -> dict[str, Any]:
    out_file = ws.cwd / f"timeline-B-{tag}.json"
    launch = time.time()
    wall, cpu, _ = ws.python(
        "-m", "src.tools.bench_floor", "--config-dir", str(ws.root / exp.config_dir),
        "--feature-dir", str(ws.root / exp.feature_dir), "--trials", str(trials),
        "--epochs", str(epochs), "--lr-low", str(LR_LOW), "--lr-high", str(LR_HIGH), "--out", str(out_file),
        what="the floor (B)")
    data = json.loads(out_file.read_text())
    return {"wall_s": wall, "cpu_s": cpu, "first_step_s": epoch_stats(data["events"])["first_step"] - launch,
            "n_train": data["n_train"], "n_valid": data["n_valid"], **trial_stats(data["trials"], data["events"])}


# --------------------------------------------------------------------------------------------------
# Cold start, load_run, MLflow UI
# --------------------------------------------------------------------------------------------------
def cold_start(ws: Copy, exp: Experiment, tag: str) -> float:
    """Seconds from launching a single `train.py` run to its first training step."""
    timeline = ws.cwd / f"timeline-cold-{tag}.jsonl"
    launch = time.time()
    ws.python(str(ws.root / exp.train_py), "max_epochs=1", "+trainer.limit_train_batches=2",
              "+trainer.limit_val_batches=2",
              f"+callbacks.bench_timeline._target_={TIMELINE_TARGET}",
              f"+callbacks.bench_timeline.path={timeline}", what=f"a single {exp.train_py} run")
    events = [json.loads(line) for line in timeline.read_text().splitlines()]
    return epoch_stats(events)["first_step"] - launch


def time_command(ws: Copy, exp: Experiment, arg: str) -> float:
    """Seconds from launching `train.py <arg>` to its exit, as a subprocess: `lr=abc` (its one error line) or
    `--help` (Hydra's help); what it prints is checked, so a fast wrong answer is no figure."""
    expect = {"lr=abc": (2, "error: lr='abc' is not a number"), "--help": (0, "== Config ==")}[arg]
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, str(ws.root / exp.train_py), arg], cwd=ws.cwd, env=ws.env(),
                         capture_output=True, text=True, timeout=300)
    wall = time.perf_counter() - t0
    if (res.returncode, expect[1] in res.stdout + res.stderr) != (expect[0], True):
        tail = "\n".join((res.stdout + res.stderr).strip().splitlines()[-10:])
        raise RuntimeError(f"{exp.train_py} {arg} exited {res.returncode} without {expect[1]!r}:\n{tail}")
    return wall


# A notebook's view, in fresh processes: import load_run, then call it. "cold": nothing else imported, so the
# call also imports torch and Lightning to unpickle the model; "warm": those are imported first (as anything
# that then uses the model has them), and load_run is called twice.
LOAD_RUN_PROBE = """
import json, sys, time
t0 = time.perf_counter()
from src.utils.predict.reload import load_run
t1 = time.perf_counter()
if sys.argv[2] == "warm":
    import torch, pytorch_lightning
calls = []
for _ in range(1 if sys.argv[2] == "cold" else 2):
    s = time.perf_counter()
    run = load_run(sys.argv[1])
    calls.append(time.perf_counter() - s)
print(json.dumps({"import_s": t1 - t0, "calls": calls, "experiment": run.experiment}))
"""


def time_load_run(ws: Copy, exp: Experiment, run_id: str) -> dict[str, float]:
    """load_run(run_id) in fresh processes: the first call with torch/Lightning already imported, a second
    call, and a first call in a process that has imported nothing else (cold)."""
    runs = {}
    for mode in ("cold", "warm"):
        _, _, out = ws.python("-c", LOAD_RUN_PROBE, run_id, mode, what="load_run")
        runs[mode] = json.loads(out.strip().splitlines()[-1])
        if runs[mode]["experiment"] != exp.mlflow_experiment:
            raise RuntimeError(f"run {run_id} is in the MLflow experiment {runs[mode]['experiment']!r}, not in "
                               f"{exp.mlflow_experiment!r} (experiment_name of {exp.config_dir}/config.yaml)")
    return {"import_s": runs["warm"]["import_s"], "first_s": runs["warm"]["calls"][0],
            "warm_s": runs["warm"]["calls"][1], "cold_s": runs["cold"]["calls"][0]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def time_mlflow_ui(ws: Copy, timeout: float = 180) -> float:
    """Seconds from `bash scripts/mlflow_ui.sh PORT` to a 200 from its /health endpoint; the server is stopped."""
    port = free_port()
    log = ws.cwd / f"mlflow_ui-{port}.log"
    t0 = time.perf_counter()
    with open(log, "w") as f:
        proc = subprocess.Popen(["bash", str(ws.root / "scripts/mlflow_ui.sh"), str(port)], cwd=ws.cwd,
                                env=ws.env(), stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        answered = wait_http(f"http://127.0.0.1:{port}/health", timeout, lambda: proc.poll() is None, every=0.05)
        seconds = time.perf_counter() - t0
        if proc.poll() is not None:
            raise RuntimeError(f"scripts/mlflow_ui.sh exited ({proc.returncode}): {log.read_text()[-2000:]}")
        if not answered:
            raise RuntimeError(f"scripts/mlflow_ui.sh did not answer within {timeout:.0f} s; see {log}")
        return seconds
    finally:
        with_group = proc.poll() is None
        if with_group:
            os.killpg(proc.pid, signal.SIGTERM)  # its own session: the server and its workers, nothing else
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

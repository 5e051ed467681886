"""What the workspace costs over a bare PyTorch + Optuna loop, on the same data, model, trials, epochs and seed.

    bash scripts/bench.sh                                  # model01, offline digits, 5 trials x 3 epochs
    bash scripts/bench.sh --experiment model02             # another model folder (src/model/model02)
    bash scripts/bench.sh --size mnist                     # generated 60,000 + 10,000 28x28 images, 3 x 2
    bash scripts/bench.sh --size mnist --trials 4 --epochs 1 --threads 1 --keep
    bash scripts/bench.sh --pruning                        # each pruner against pruner=none (bench_pruning.py)
    bash scripts/bench.sh --profile --size mnist --trials 2 --epochs 1   # a trial's time outside training
    bash scripts/bench.sh --ensemble                       # blending 20 MNIST-size members, per method

The experiment (--experiment, default model01) is a model folder: src/model/<experiment>/train.py with its
config in config/model/<experiment>/. Everything comes from there: the script run, the config, the MLflow
experiment (its `experiment_name`) and the features (its `feature_dir`, built in the copy by the feature
folder that writes them, from the dataset folder that feature folder reads).

(A) the workspace: `src/model/<experiment>/train.py -m 'lr=tag(log,interval(1e-4,1e-2))'` through Hydra, the
    Optuna sweeper, Lightning and MLflow with all logging on, early stopping off;
(B) the floor: src/tools/bench_floor.py, a hand-written PyTorch loop and an in-process Optuna study, on the
    model, optimizer and scheduler the experiment's composed config builds.
Both run in a throw-away copy of the project (outputs/bench/work-*, deleted unless --keep), so the
workspace's own logs/, _data/ and MLflow store are never touched. Both record the same timeline (fit, epoch,
training part of the epoch, first step); trial windows come from Optuna (ask -> tell) on both sides.

Prints one table and writes it as JSON under outputs/bench/. Timings are wall-clock on a possibly shared
machine: the load average before and after is in the table, and --threads 1 keeps torch's OpenMP threads
from fighting other processes (both sides get the same setting).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from src.utils.core.paths import ROOT

TIMELINE_TARGET = "src.tools.bench.timeline_callback"  # this module's timeline_callback, as Hydra finds it

SIZES = ("digits", "mnist", "tiny")
DEFAULT_RUNS = {"digits": (5, 3), "mnist": (3, 2), "tiny": (2, 1)}  # trials, epochs
GENERATED = {"mnist": (60_000, 10_000), "tiny": (500, 100)}  # train, test images made on the fly
DIGITS = "digit-recognizer"  # the competition whose layout the generated images have
LR_LOW, LR_HIGH = 1e-4, 1e-2
SEARCH_SPACE = f"lr=tag(log,interval({LR_LOW},{LR_HIGH}))"
# (key in the report, comparison, limit, what the issue asks)
BENCH_TARGETS = (
    ("sweep_ratio", "<=", 1.10, "sweep wall at MNIST size <= 1.10x the floor"),
    ("fixed_cost_per_trial_s", "<=", 0.5, "fixed cost per trial <= 0.5 s"),
    ("throughput_ratio", ">=", 0.9, "training throughput >= 0.9x the floor"),
    ("cold_start_s", "<=", 8.0, "cold start to the first training step <= 8 s"),
    ("load_run_s", "<=", 2.0, "load_run <= 2 s"),
    ("error_line_s", "<=", 1.5, "a bad command's error line <= 1.5 s"),
    ("help_s", "<=", 1.5, "--help <= 1.5 s"),
)


# --------------------------------------------------------------------------------------------------
# Instrumentation of (A): a Lightning callback added with `+callbacks.bench_timeline=...`
# --------------------------------------------------------------------------------------------------
def timeline_callback(path: str) -> Any:
    """Hydra target: a Lightning callback appending the events bench_floor.py records to `path` (JSON lines)."""
    import pytorch_lightning as pl

    class Timeline(pl.Callback):
        def __init__(self) -> None:
            self.samples, self.first, self.train_end_written = 0, True, False

        def _write(self, event: str, **extra: Any) -> None:
            with open(path, "a", encoding="utf-8") as f:
                f.write(json.dumps({"event": event, "t": time.time(), **extra}) + "\n")

        def on_fit_start(self, trainer, pl_module) -> None:
            self._write("fit_start")

        def on_train_epoch_start(self, trainer, pl_module) -> None:
            self.samples, self.train_end_written = 0, False
            self._write("epoch_start")

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            if self.first:
                self.first = False
                self._write("first_step")

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            self.samples += len(batch[0])

        def on_validation_epoch_start(self, trainer, pl_module) -> None:
            if not trainer.sanity_checking and not self.train_end_written:
                self.train_end_written = True
                self._write("train_end", samples=self.samples)

        def on_train_epoch_end(self, trainer, pl_module) -> None:
            if not self.train_end_written:
                self._write("train_end", samples=self.samples)
            self._write("epoch_end")

        def on_fit_end(self, trainer, pl_module) -> None:
            self._write("fit_end")

    return Timeline()


def epoch_stats(events: list[dict]) -> dict[str, float]:
    """Whole epochs (training + validation) and their training parts, from a timeline."""
    epochs_s = train_s = samples = 0.0
    start = None
    for e in events:
        if e["event"] == "epoch_start":
            start = e["t"]
        elif e["event"] == "train_end" and start is not None:
            train_s += e["t"] - start
            samples += e["samples"]
        elif e["event"] == "epoch_end" and start is not None:
            epochs_s += e["t"] - start
            start = None
    first = [e["t"] for e in events if e["event"] == "first_step"]
    return {"epochs_s": epochs_s, "train_s": train_s, "samples": samples, "first_step": min(first, default=None)}


# --------------------------------------------------------------------------------------------------
# The experiment: a model folder, its config, and the data folders its features come from
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Experiment:
    """Paths relative to the project root, so they hold in the throw-away copy as they do here."""

    name: str  # the model folder: src/model/<name>, config/model/<name>
    train_py: str
    config_dir: str
    mlflow_experiment: str  # the config's experiment_name
    feature_dir: str  # the config's feature_dir
    feature: str  # the feature folder writing feature_dir (src/feature/<feature>/build_features.py)
    dataset: str  # the dataset folder that feature folder reads (src/dataset/<dataset>/make_dataset.py)
    raw_dir: str  # where that dataset folder reads the raw data
    batch_size: int
    competition: str = "digit-recognizer"  # the dataset folder's competition
    monitor_mode: str = "max"  # the config's monitor_mode: the direction of "best"
    max_epochs: int = 15  # the config's max_epochs


def _compose(config_dir: Path) -> Any:
    """A folder's config as its entry script composes it (no overrides)."""
    import hydra

    import src.utils.tune.plugin  # noqa: F401  (registers hydra/sweeper=workspace_optuna)

    with hydra.initialize_config_dir(config_dir=str(config_dir)):
        return hydra.compose("config")


def _inside_root(value: str, what: str) -> str:
    path = Path(os.path.normpath(Path(value) if Path(value).is_absolute() else ROOT / value))
    if not path.is_relative_to(ROOT):
        raise ValueError(f"{what}={value} is outside the project; the benchmark builds and reads the data in a "
                         f"throw-away copy of the project, so it needs a path under the project root")
    return str(path.relative_to(ROOT))


def _writer(stage: str, output_dir: str, script: str) -> str:
    """The stage folder whose config's output_dir is `output_dir` (relative to the root)."""
    for cfg_file in sorted((ROOT / "config" / stage).glob("*/config.yaml")):
        folder = cfg_file.parent.name
        if not (ROOT / "src" / stage / folder / script).is_file():
            continue
        out = _compose(cfg_file.parent).get("output_dir")
        if out is not None and _inside_root(str(out), f"output_dir of {cfg_file}") == output_dir:
            return folder
    raise ValueError(f"no {stage} folder writes {output_dir} (no config/{stage}/*/config.yaml with that "
                     f"output_dir and a src/{stage}/<folder>/{script})")


def experiment(name: str) -> Experiment:
    """The model folder `name` and the chain of data folders that makes its features."""
    train_py, config_dir = f"src/model/{name}/train.py", f"config/model/{name}"
    if not name or Path(name).name != name or not (ROOT / train_py).is_file() \
            or not (ROOT / config_dir / "config.yaml").is_file():
        have = sorted(p.parent.name for p in (ROOT / "config/model").glob("*/config.yaml")
                      if (ROOT / "src/model" / p.parent.name / "train.py").is_file())
        raise ValueError(f"--experiment {name}: no model folder with {train_py} and {config_dir}/config.yaml "
                         f"(model folders: {', '.join(have) or 'none'})")
    cfg = _compose(ROOT / config_dir)
    feature_dir = _inside_root(str(cfg.feature_dir), f"feature_dir of {config_dir}/config.yaml")
    feature = _writer("feature", feature_dir, "build_features.py")
    dataset_dir = _inside_root(str(_compose(ROOT / "config/feature" / feature).dataset_dir),
                               f"dataset_dir of config/feature/{feature}/config.yaml")
    dataset = _writer("dataset", dataset_dir, "make_dataset.py")
    dataset_cfg = _compose(ROOT / "config/dataset" / dataset)
    if dataset_cfg.get("raw_dir") is None:  # the competition's raw folder
        from src.utils.competition.spec import load

        dataset_cfg.raw_dir = str(load(str(dataset_cfg.competition)).cfg.raw_dir)
    raw_dir = _inside_root(str(dataset_cfg.raw_dir), f"raw_dir of config/dataset/{dataset}/config.yaml")
    return Experiment(name=name, train_py=train_py, config_dir=config_dir,
                      mlflow_experiment=str(cfg.experiment_name), feature_dir=feature_dir, feature=feature,
                      dataset=dataset, raw_dir=raw_dir, batch_size=int(cfg.batch_size),
                      competition=str(dataset_cfg.get("competition") or "digit-recognizer"),
                      monitor_mode=str(cfg.monitor_mode), max_epochs=int(cfg.max_epochs))


# --------------------------------------------------------------------------------------------------
# The throw-away copy and its data
# --------------------------------------------------------------------------------------------------
def make_copy(dest: Path) -> Path:
    """A copy of the project as tests/conftest.py makes it (code, configs, scripts; .venv linked), byte-compiled."""
    dest.mkdir(parents=True)
    for name in ("src", "config", "scripts"):
        shutil.copytree(ROOT / name, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for sub in ("_data/data/raw", "_data/feature", "logs/mlruns", "logs/lightning", "outputs", "multirun"):
        (dest / sub).mkdir(parents=True, exist_ok=True)
    (dest / ".venv").symlink_to(ROOT / ".venv")
    # The installed packages are byte-compiled by scripts/setup.sh; the copy's own code is compiled here, so
    # no run pays for it (PYTHONDONTWRITEBYTECODE, common in containers, would make every run pay).
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(dest / "src")], check=True,
                   env={**os.environ, "PYTHONDONTWRITEBYTECODE": ""}, stdout=subprocess.DEVNULL)
    return dest


def generated_digits(n_train: int, n_test: int, seed: int = 0):
    """MNIST-sized 28x28 uint8 digits made on the fly (never downloaded), deterministic by `seed`.

    Each image is one of scikit-learn's 1,797 bundled 8x8 digits upscaled into MNIST's 20x20 box, shifted by
    up to 3 pixels, dimmed and noised, so the set has MNIST's size and shape and is not trivially repeated.
    """
    import numpy as np
    from scipy.ndimage import zoom
    from sklearn.datasets import load_digits

    digits = load_digits()
    big = np.clip(zoom(digits.images.astype(np.float32) / 16.0, (1, 20 / 8, 20 / 8), order=1), 0.0, 1.0)
    base = np.zeros((len(big), 28, 28), np.float32)
    base[:, 4:24, 4:24] = big
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    pick = rng.integers(0, len(base), n)
    shifts = rng.integers(-3, 4, size=(n, 2))
    images = np.empty((n, 28, 28), np.float32)
    for dy in range(-3, 4):
        for dx in range(-3, 4):
            rows = np.flatnonzero((shifts[:, 0] == dy) & (shifts[:, 1] == dx))
            images[rows] = np.roll(base[pick[rows]], (dy, dx), axis=(1, 2))
    images *= rng.uniform(0.6, 1.0, size=(n, 1, 1)).astype(np.float32)
    images += rng.normal(0.0, 0.08, size=images.shape).astype(np.float32)
    images = np.round(np.clip(images, 0.0, 1.0) * 255).astype(np.uint8)
    labels = digits.target[pick]
    return images[:n_train], labels[:n_train], images[n_train:]


class Copy:
    """The throw-away workspace: runs its scripts with its own `src` and store, never the user's."""

    def __init__(self, root: Path, threads: int | None) -> None:
        self.root, self.threads = root, threads
        self.cwd = root.parent

    def env(self) -> dict[str, str]:
        # The user's MLFLOW_TRACKING_URI / OPTUNA_STORAGE would send the copy's runs to the user's stores.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "HYDRA_", "OPTUNA_"))}
        env.update(PYTHONPATH=str(self.root), MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true")
        if self.threads:
            env.update(OMP_NUM_THREADS=str(self.threads), MKL_NUM_THREADS=str(self.threads))
        return env

    def run(self, args: list[str], what: str, timeout: float = 7200) -> tuple[float, float, str]:
        """Run a command in the copy; (wall s, CPU s of it and its children, stdout). Fails loudly."""
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        res = subprocess.run(args, cwd=self.cwd, env=self.env(), capture_output=True, text=True, timeout=timeout)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if res.returncode != 0:
            tail = "\n".join((res.stdout + res.stderr).strip().splitlines()[-25:])
            raise RuntimeError(f"{what} failed (exit {res.returncode}) in {self.root}:\n{tail}\n"
                               f"(re-run with --keep to inspect the copy)")
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return wall, cpu, res.stdout

    def python(self, *args: str, what: str) -> tuple[float, float, str]:
        return self.run([sys.executable, *args], what)


def prepare_data(ws: Copy, exp: Experiment, size: str, seed: int, n_train: int | None = None) -> dict:
    """Raw data, then the experiment's dataset and feature folders in the copy; the features' manifest.

    The generated sizes are digit images in the Digit Recognizer layout; another competition's `tiny` is its own
    offline sample (small already)."""
    if size == "digits" or exp.competition != DIGITS:
        ws.run(["bash", str(ws.root / "scripts/prepare_data.sh"), "--competition", exp.competition],
               "prepare_data.sh")
    else:
        from src.dataset.raw_data import write_layout

        n_train, n_test = (n_train or GENERATED[size][0]), GENERATED[size][1]
        train_x, train_y, test_x = generated_digits(n_train, n_test, seed)
        write_layout(ws.root / exp.raw_dir, train_x, train_y, test_x, {
            "source": f"generated:bench-{size}", "is_sample": True, "seed": seed,
            "note": "GENERATED for scripts/bench.sh: scikit-learn digits upscaled, shifted and noised"})
    ws.python(str(ws.root / "src/dataset" / exp.dataset / "make_dataset.py"), what=f"{exp.dataset}/make_dataset.py")
    ws.python(str(ws.root / "src/feature" / exp.feature / "build_features.py"),
              what=f"{exp.feature}/build_features.py")
    return json.loads((ws.root / exp.feature_dir / "manifest.json").read_text())


# --------------------------------------------------------------------------------------------------
# (A) and (B)
# --------------------------------------------------------------------------------------------------
def trial_stats(trials: list[dict], events: list[dict]) -> dict[str, Any]:
    """Per-trial windows (Optuna ask -> tell) with the epochs that fall inside each."""
    rows = []
    for t in trials:
        inside = [e for e in events if t["start"] <= e["t"] <= t["end"]]
        stats, wall = epoch_stats(inside), t["end"] - t["start"]
        rows.append({**t, **stats, "wall_s": wall, "fixed_s": wall - stats["epochs_s"]})
    return {"trials": rows, "trial_s": statistics.mean(r["wall_s"] for r in rows),
            "epochs_s": statistics.mean(r["epochs_s"] for r in rows),
            "samples_per_s": sum(r["samples"] for r in rows) / max(1e-9, sum(r["train_s"] for r in rows))}


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
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"scripts/mlflow_ui.sh exited ({proc.returncode}): {log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as resp:
                    if resp.status == 200:
                        return time.perf_counter() - t0
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.perf_counter() - t0 > timeout:
                raise RuntimeError(f"scripts/mlflow_ui.sh did not answer within {timeout:.0f} s; see {log}")
            time.sleep(0.05)
    finally:
        with_group = proc.poll() is None
        if with_group:
            os.killpg(proc.pid, signal.SIGTERM)  # its own session: the server and its workers, nothing else
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


# --------------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------------
def median(values: list[float]) -> float:
    return float(statistics.median(values))


def fixed_gaps(a: dict, b: dict) -> list[float]:
    """Per trial, A's time outside the epochs minus B's, trial by trial."""
    return [ta["fixed_s"] - tb["fixed_s"] for ta, tb in zip(a["trials"], b["trials"], strict=True)]


def combine(a_runs: list[dict], b_runs: list[dict], cold: list[float], loads: list[dict],
            ui: list[float], commands: dict[str, list[float]]) -> dict[str, float]:
    """The report's figures: medians over repeats, computed per repeat first where A and B are paired."""
    pairs = list(zip(a_runs, b_runs, strict=True))

    def m(fn) -> float:
        return median([fn(a, b) for a, b in pairs])

    return {
        "workspace_wall_s": m(lambda a, b: a["wall_s"]),
        "floor_wall_s": m(lambda a, b: b["wall_s"]),
        "sweep_ratio": m(lambda a, b: a["wall_s"] / b["wall_s"]),
        "workspace_cpu_s": m(lambda a, b: a["cpu_s"]),
        "floor_cpu_s": m(lambda a, b: b["cpu_s"]),
        "workspace_trial_s": m(lambda a, b: a["trial_s"]),
        "floor_trial_s": m(lambda a, b: b["trial_s"]),
        "workspace_train_epochs_s": m(lambda a, b: a["epochs_s"]),
        "floor_train_epochs_s": m(lambda a, b: b["epochs_s"]),
        # what a trial costs outside its epochs, A minus B (MLflow run, artifacts, checkpoints, Hydra job, ...):
        # the median over trials is what one more trial costs; the first trial also pays the process's lazy
        # imports (plotting, model logging), shown apart and included in the mean
        "fixed_cost_per_trial_s": m(lambda a, b: median(fixed_gaps(a, b))),
        "fixed_cost_mean_s": m(lambda a, b: statistics.mean(fixed_gaps(a, b))),
        "fixed_cost_first_trial_s": m(lambda a, b: fixed_gaps(a, b)[0]),
        "training_diff_per_trial_s": m(lambda a, b: a["epochs_s"] - b["epochs_s"]),
        # what the process costs outside its trials: imports, set-up, the sweep's summary at the end
        "workspace_one_off_s": m(lambda a, b: a["wall_s"] - a["trial_s"] * len(a["trials"])),
        "floor_one_off_s": m(lambda a, b: b["wall_s"] - b["trial_s"] * len(b["trials"])),
        "workspace_samples_per_s": m(lambda a, b: a["samples_per_s"]),
        "floor_samples_per_s": m(lambda a, b: b["samples_per_s"]),
        "throughput_ratio": m(lambda a, b: a["samples_per_s"] / b["samples_per_s"]),
        "cold_start_s": median(cold),
        "sweep_first_step_s": m(lambda a, b: a["first_step_s"]),
        "floor_first_step_s": m(lambda a, b: b["first_step_s"]),
        "load_run_s": median([x["first_s"] for x in loads]),
        "load_run_cold_s": median([x["cold_s"] for x in loads]),
        "load_run_warm_s": median([x["warm_s"] for x in loads]),
        "load_run_import_s": median([x["import_s"] for x in loads]),
        "mlflow_ui_s": median(ui),
        "error_line_s": median(commands["lr=abc"]),
        "help_s": median(commands["--help"]),
    }


def check_targets(figures: dict[str, float], size: str) -> dict[str, dict]:
    out = {}
    for key, op, limit, text in BENCH_TARGETS:
        value = figures[key]
        met = value <= limit if op == "<=" else value >= limit
        applies = size == "mnist" or key != "sweep_ratio"  # the wall ratio target is set for MNIST size
        out[key] = {"value": value, "limit": limit, "op": op, "met": bool(met), "applies": applies, "target": text}
    return out


def format_table(report: dict) -> str:
    f, b, t = report["figures"], report["bench"], report["targets"]

    def mark(key: str) -> str:
        x = t[key]
        verdict = ("ok" if x["met"] else "MISSED") if x["applies"] else "(set for mnist)"
        return f"{x['op']} {x['limit']:g}{'x' if 'ratio' in key else ' s'}  {verdict}"

    rows = [
        ("sweep wall [s]", f"{f['workspace_wall_s']:.1f}", f"{f['floor_wall_s']:.1f}", f"{f['sweep_ratio']:.3f}x",
         mark("sweep_ratio")),
        ("  CPU time [s]", f"{f['workspace_cpu_s']:.1f}", f"{f['floor_cpu_s']:.1f}",
         f"{f['workspace_cpu_s'] / f['floor_cpu_s']:.3f}x", ""),
        ("  one-off (start-up, summary) [s]", f"{f['workspace_one_off_s']:.2f}", f"{f['floor_one_off_s']:.2f}", "", ""),
        ("  per trial: wall [s]", f"{f['workspace_trial_s']:.2f}", f"{f['floor_trial_s']:.2f}", "", ""),
        ("  per trial: epochs [s]", f"{f['workspace_train_epochs_s']:.2f}", f"{f['floor_train_epochs_s']:.2f}",
         f"{f['training_diff_per_trial_s']:+.2f} s", ""),
        ("fixed cost per trial, A-B [s]", f"{f['fixed_cost_per_trial_s']:.2f}", "", "", mark("fixed_cost_per_trial_s")),
        ("  mean / first trial [s]", f"{f['fixed_cost_mean_s']:.2f} / {f['fixed_cost_first_trial_s']:.2f}", "", "",
         ""),
        ("training throughput [samples/s]", f"{f['workspace_samples_per_s']:.0f}", f"{f['floor_samples_per_s']:.0f}",
         f"{f['throughput_ratio']:.3f}x", mark("throughput_ratio")),
        ("cold start to first step [s]", f"{f['cold_start_s']:.2f}", f"{f['floor_first_step_s']:.2f}", "",
         mark("cold_start_s")),
        ("  ... of the sweep (A) [s]", f"{f['sweep_first_step_s']:.2f}", "", "", ""),
        ("load_run(run_id) [s]", f"{f['load_run_s']:.2f}", "", "", mark("load_run_s")),
        ("  cold: it imports torch/Lightning [s]", f"{f['load_run_cold_s']:.2f}", "", "", ""),
        ("  2nd call / import reload [s]", f"{f['load_run_warm_s']:.2f} / {f['load_run_import_s']:.2f}", "", "",
         ""),
        ("mlflow_ui.sh answers [s]", f"{f['mlflow_ui_s']:.2f}", "", "", ""),
        ("error line (lr=abc) [s]", f"{f['error_line_s']:.2f}", "", "", mark("error_line_s")),
        ("--help [s]", f"{f['help_s']:.2f}", "", "", mark("help_s")),
    ]
    head = (f"{b['experiment']} benchmark, size={b['size']} ({b['n_train']} train / {b['n_valid']} valid images), "
            f"{b['trials']} trials x {b['epochs']} epochs, batch {b['batch_size']}, torch threads "
            f"{b['threads'] or 'default'}, sweep repeats {b['sweep_repeats']}, repeats {b['repeats']}\n"
            f"load average {b['load_before']} -> {b['load_after']} ({b['cpus']} CPUs)")
    widths = (34, 14, 12, 10)
    lines = [head, f"{'':{widths[0]}}{'workspace (A)':>{widths[1]}}{'floor (B)':>{widths[2]}}{'A/B':>{widths[3]}}"
                   f"  target"]
    for name, a, bb, ratio, target in rows:
        lines.append(f"{name:{widths[0]}}{a:>{widths[1]}}{bb:>{widths[2]}}{ratio:>{widths[3]}}  {target}".rstrip())
    return "\n".join(lines)


def say(msg: str) -> None:
    print(f"[bench] {msg}", flush=True)


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bash scripts/bench.sh", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiment", default="model01", metavar="NAME",
                        help="model folder to benchmark: src/model/NAME with config/model/NAME (default model01)")
    parser.add_argument("--size", choices=SIZES, default=None,
                        help="digits: offline sample (default); mnist: generated 60,000+10,000 digit images; "
                             "tiny: 500+100 for tests (a model of another competition: its offline sample)")
    parser.add_argument("--trials", type=int, help="trials per sweep (default: 5 digits, 3 mnist, 2 tiny)")
    parser.add_argument("--epochs", type=int, help="epochs per trial (default: 3 digits, 2 mnist, 1 tiny)")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of the cheap measurements (default 3)")
    parser.add_argument("--sweep-repeats", type=int, default=1, help="repeats of the A/B sweeps (default 1)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch/OpenMP threads for both sides (default: torch's own, one per core)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated images")
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "bench", help="report folder")
    parser.add_argument("--keep", action="store_true", help="keep the throw-away copy (its runs and data)")
    pruning = parser.add_argument_group("--pruning: time-to-best per pruner (src/tools/bench_pruning.py)")
    pruning.add_argument("--pruning", action="store_true",
                         help="instead of A/B: the experiment's sweep with pruner=none and with each candidate "
                              "pruner (same sampler seed, trials, max_epochs, early stopping); e.g. "
                              "--pruning --trials 20 --epochs 15")
    pruning.add_argument("--pruners", type=lambda s: tuple(p for p in s.split(",") if p), metavar="A,B",
                         help="candidates from config/model/<experiment>/pruner/ (default: median,hyperband,"
                              "successive_halving,patient; with --fold all: median,wilcoxon,hyperband)")
    pruning.add_argument("--fold", default="0", help="the sweeps' fold: a number, or all (folds as steps)")
    pruning.add_argument("--tolerance", type=float, default=0.002,
                         help="time-to-best: when the best-so-far first came within this of the unpruned best")
    parser.add_argument("--profile", action="store_true",
                        help="instead of A/B: the workspace sweep with one trial after the first under cProfile "
                             "(src/tools/bench_profile.py): where a trial's time goes outside training")
    ensemble = parser.add_argument_group("--ensemble: blending at Kaggle size (src/tools/bench_ensemble.py)")
    ensemble.add_argument("--ensemble", action="store_true",
                          help="instead of A/B: blend --members synthetic fold=all runs with each method, as "
                               "src/ensemble/ensemble01/blend.py does (size: mnist unless --size says otherwise)")
    ensemble.add_argument("--members", type=int, default=20, help="members of the blend (default 20)")
    ensemble.add_argument("--methods", type=lambda s: tuple(m for m in s.split(",") if m), metavar="A,B",
                          default=("hill_climbing", "mean", "rank_mean", "stacking"),
                          help="the methods to time (default: hill_climbing,mean,rank_mean,stacking)")
    parser.add_argument("--n-train", type=int, metavar="N",
                        help="generated sizes: N training images instead of 60,000 (mnist) or 500 (tiny); "
                             "e.g. --size mnist --n-train 12000 for a subsample of MNIST's")
    args = parser.parse_args(argv)
    args.size = args.size or ("mnist" if args.ensemble else "digits")
    if args.ensemble:
        have = sorted(p.stem for p in (ROOT / "config/ensemble/ensemble01/method").glob("*.yaml"))
        bad = [m for m in args.methods if m not in have]
        if bad or args.members < 2:
            parser.error(f"--methods {','.join(bad)}: not a method of config/ensemble/ensemble01/method/ (have: "
                         f"{', '.join(have)})" if bad else "--members N: N >= 2")
        args.ensemble_rows = {"mnist": (42000, 28000), "digits": (1437, 360), "tiny": (2000, 500)}[args.size]
        if args.n_train:
            args.ensemble_rows = (args.n_train, args.ensemble_rows[1])
    trials = args.trials or DEFAULT_RUNS[args.size][0]
    epochs = args.epochs or DEFAULT_RUNS[args.size][1]
    if args.n_train is not None and (args.size == "digits" or args.n_train < 50):
        parser.error("--n-train N: N >= 50, with a generated size (--size mnist or tiny)")
    if min(trials, epochs, args.repeats, args.sweep_repeats) < 1 or (args.threads is not None and args.threads < 1):
        parser.error("--trials, --epochs, --repeats, --sweep-repeats and --threads must be >= 1")
    try:
        exp = experiment(args.experiment)
    except ValueError as exc:
        parser.error(str(exc))
    if args.pruning:  # the config's sweep: its n_trials (20) and max_epochs unless given
        trials, epochs = args.trials or 20, args.epochs or exp.max_epochs
        have = sorted(p.stem for p in (ROOT / exp.config_dir / "pruner").glob("*.yaml"))
        bad = [p for p in args.pruners or () if p not in have or p == "none"]
        if bad or not have:
            parser.error(f"--pruners {','.join(bad)}: not a pruner of {exp.config_dir}/pruner/ (have: "
                         f"{', '.join(p for p in have if p != 'none') or 'no pruner group'})")
        if args.fold != "all" and not args.fold.isdigit():
            parser.error(f"--fold {args.fold}: a fold number or all")
    if args.size == "mnist" and exp.competition != DIGITS:
        parser.error(f"--size mnist generates digit images, but {exp.name} is a {exp.competition} model; "
                     f"use --size digits (its offline sample) or --size tiny")

    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    args.out.mkdir(parents=True, exist_ok=True)
    work = args.out / f"work-{stamp}"
    ws = Copy(make_copy(work / "ws"), args.threads)
    try:
        if args.ensemble:
            from src.tools.bench_ensemble import ensemble_figures

            say(f"copy of the workspace in {work}")
            return ensemble_figures(ws, args, stamp)
        say(f"copy of the workspace in {work}; experiment {exp.name} (features {exp.feature_dir} from "
            f"{exp.feature} <- {exp.dataset}); preparing {args.size} data")
        t0 = time.perf_counter()
        manifest = prepare_data(ws, exp, args.size, args.seed, args.n_train)
        say(f"data ready in {time.perf_counter() - t0:.1f} s: train_x {manifest['shapes']['train_x']}")
        load_before = load_average()
        if args.threads is None and os.getloadavg()[0] > 0.5 * (os.cpu_count() or 1):
            say(f"the machine is busy (load {load_before} on {os.cpu_count()} CPUs): torch's OpenMP threads will "
                f"fight other processes and the timings swing by 10-20%; --threads 1 gives steadier figures")
        if args.profile:
            out = args.out / f"bench_profile_{args.size}_{stamp}.prof"
            _, _, text = ws.python("-m", "src.tools.bench_profile", "--out", str(out), str(ws.root / exp.train_py),
                                   "-m", SEARCH_SPACE, f"max_epochs={epochs}",
                                   f"hydra.sweeper.n_trials={max(2, trials)}",
                                   "hydra.sweeper.study_name=bench-profile", "pruner=none",
                                   "~callbacks.early_stopping", what="the profiled sweep")
            print(text[text.index("profiled trial(s)") - 2:] if "profiled trial(s)" in text else text)
            return 0
        if args.pruning:
            from src.tools.bench_pruning import pruning_figures

            return pruning_figures(ws, exp, trials, epochs, args, stamp, manifest)
        a_runs, b_runs = [], []
        for r in range(args.sweep_repeats):
            order = ("A", "B") if r % 2 == 0 else ("B", "A")  # alternate, so a drift in load hits both sides
            for side in order:
                say(f"sweep {r + 1}/{args.sweep_repeats}: {'workspace (A)' if side == 'A' else 'floor (B)'}, "
                    f"{trials} trials x {epochs} epochs (load {load_average()})")
                if side == "A":
                    a_runs.append(run_workspace(ws, exp, trials, epochs, str(r)))
                else:
                    b_runs.append(run_floor(ws, exp, trials, epochs, str(r)))
        same_params = all([t["params"] for t in a["trials"]] == [t["params"] for t in b["trials"]]
                          for a, b in zip(a_runs, b_runs, strict=True))
        value_gap = max(abs(ta["value"] - tb["value"]) for a, b in zip(a_runs, b_runs, strict=True)
                        for ta, tb in zip(a["trials"], b["trials"], strict=True))
        say(f"cold start, load_run, mlflow_ui.sh, an error line and --help, {args.repeats} time(s) each "
            f"(load {load_average()})")
        cold = [cold_start(ws, exp, str(i)) for i in range(args.repeats)]
        run_id = a_runs[0]["best_run_id"]
        if not run_id:
            raise RuntimeError("the workspace sweep printed no best run_id; re-run with --keep and look at its log")
        loads = [time_load_run(ws, exp, run_id) for _ in range(args.repeats)]
        ui = [time_mlflow_ui(ws) for _ in range(args.repeats)]
        commands = {arg: [time_command(ws, exp, arg) for _ in range(args.repeats)] for arg in ("lr=abc", "--help")}
        load_after = load_average()

        figures = combine(a_runs, b_runs, cold, loads, ui, commands)
        report = {
            "bench": {
                "experiment": exp.name, "mlflow_experiment": exp.mlflow_experiment, "train_py": exp.train_py,
                "feature_dir": exp.feature_dir, "size": args.size, "trials": trials, "epochs": epochs,
                "repeats": args.repeats, "sweep_repeats": args.sweep_repeats, "threads": args.threads,
                "seed": args.seed, "search_space": SEARCH_SPACE, "batch_size": exp.batch_size,
                "n_train": b_runs[0]["n_train"], "n_valid": b_runs[0]["n_valid"], "cpus": os.cpu_count(),
                "load_before": load_before, "load_after": load_after, "created": stamp,
                "same_params": same_params, "max_objective_gap": value_gap,
                "work_dir": str(work) if args.keep else None,
            },
            "figures": figures,
            "targets": check_targets(figures, args.size),
            "runs": {"workspace": a_runs, "floor": b_runs, "cold_start_s": cold, "load_run": loads,
                     "mlflow_ui_s": ui, "error_line_s": commands["lr=abc"], "help_s": commands["--help"]},
        }
        table = format_table(report)
        report["table"] = table
        path = args.out / f"bench_{args.size}_{stamp}.json"
        path.write_text(json.dumps(report, indent=2, default=str))
        print(table)
        print(f"same trial parameters on both sides: {same_params}; largest objective gap {value_gap:.2e}")
        print(f"report: {path}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    from src.utils.cli.setup import setup

    setup()  # the environment, resolvers and plugins, before anything else runs
    sys.exit(main())

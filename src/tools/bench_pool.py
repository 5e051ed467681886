"""The pool that `bash scripts/bench.sh --pruning --replay` replays: recorded curves of a folder's own sweep.

A pruner decides only from the values a trial reports, so the training is done once: the folder's sweep over its
first versioned search space (`hparams_search/`), with Optuna's random sampler, `pruner=none`, its own early
stopping and max_epochs (or boosting rounds), `fold=all` unless asked otherwise, in the benchmark's throw-away
copy. Each run's curves are read back from the copy's MLflow store: per fold, the monitored value at every step a
trial reports (each epoch of a network; every `report_every` rounds of a tree), the work each step cost (epochs or
rounds) and the fold's best value; with the run's objective. One fold=all pool serves both replays: the single-fold
sweep (fold 0's curve, epochs or rounds as steps: every fold is seeded alike, so fold 0 of a fold=all run is the
run `fold=0` would have made) and the fold=all sweep (the folds as steps).

The pool is a JSON file (`--pool-file` replays a recorded one without training).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from src.tools.bench_experiment import Experiment
from src.tools.bench_workspace import Copy, say
from src.utils.core.paths import ROOT


def search_space(exp: Experiment) -> str:
    """The folder's first versioned search space (config/model/<name>/hparams_search/<space>.yaml)."""
    spaces = sorted((ROOT / exp.config_dir / "hparams_search").glob("*.yaml"))
    if not spaces:
        raise SystemExit(f"error: {exp.config_dir}/hparams_search/ holds no search space; the pool is drawn from "
                         f"one: add one (see config/model/model01/hparams_search/lr_dropout.yaml)")
    return spaces[0].stem


def train_pool(ws: Copy, exp: Experiment, n: int, fold: str, seed: int, epochs: int | None = None) -> dict[str, Any]:
    """`n` configurations of the folder's search space trained in the copy (a network's to `epochs`, default its
    max_epochs); the pool (see `read_pool`)."""
    space = search_space(exp)
    cap = exp.epochs_override(epochs)
    study = f"pool-{exp.name}-{fold}-{seed}"
    say(f"pool: {n} trials of {exp.name} over hparams_search={space}, random sampler (seed {seed}), fold={fold}, "
        f"pruner=none, the folder's early stopping")
    t0 = time.perf_counter()
    ws.python(str(ws.root / exp.train_py), "-m", f"hparams_search={space}", f"hydra.sweeper.n_trials={n}",
              "hydra/sweeper/sampler=random", f"hydra.sweeper.sampler.seed={seed}",
              f"hydra.sweeper.study_name={study}", "pruner=none", f"fold={fold}", "mlflow.log_model=false",
              "mlflow.log_checkpoint=false", *cap, what=f"the pool sweep, {exp.train_py} -m")
    pool = read_pool(ws.root / "logs/mlruns/mlflow.db", exp, study)
    pool.update(space=space, seed=seed, train_s=time.perf_counter() - t0)
    return pool


def curve_of(client: Any, run_id: str, key: str, every: int) -> tuple[list[int], list[float], list[int]]:
    """(report steps, values, work of each step) of one curve: every point of a network's (its k-th point is
    epoch k); a tree's at the rounds its trial is told, every `every` rounds (round r counts r + 1 rounds)."""
    history = sorted(client.get_metric_history(run_id, key), key=lambda m: (m.step, m.timestamp))
    if every <= 1:  # a network: one point per epoch, logged at Lightning's global step
        values = [m.value for m in history]
        return list(range(len(values))), values, [1] * len(values)
    points = {m.step: m.value for m in history}
    steps = [s for s in sorted(points) if (s + 1) % every == 0]
    work = [s + 1 - (prev + 1) for prev, s in zip([-1, *steps], steps, strict=False)]
    if history and (history[-1].step not in steps):  # rounds after the last report, early stopping's rounds
        work[-1:] = [work[-1] + history[-1].step - steps[-1]] if steps else []
    return steps, [points[s] for s in steps], work


def read_pool(db: Path, exp: Experiment, study: str) -> dict[str, Any]:
    """The pool sweep's runs as curves: per configuration its params, objective and per fold the steps."""
    import mlflow
    import optuna

    client = mlflow.MlflowClient(f"sqlite:///{db}")
    experiment = client.get_experiment_by_name(exp.mlflow_experiment)
    runs = client.search_runs([experiment.experiment_id], f"tags.optuna_study = '{study}'", max_results=10_000)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    trials = optuna.load_study(study_name=study, storage=f"sqlite:///{db.parent.parent / 'optuna/optuna.db'}").trials
    params = {t.number: t.params for t in trials}
    configs = []
    runs = [r for r in runs if "optuna_trial" in r.data.tags and r.info.status == "FINISHED"]  # not the parent
    for run in sorted(runs, key=lambda r: int(r.data.tags["optuna_trial"])):
        configs.append(config_of(client, run, params.get(int(run.data.tags["optuna_trial"]), {})))
    if not configs:
        raise RuntimeError(f"the pool sweep {study} left no FINISHED run in {db}")
    first = configs[0]
    return {"experiment": exp.name, "competition": exp.competition, "monitor": first["monitor"],
            "mode": exp.monitor_mode, "fold": "all" if len(first["folds"]) > 1 else "single",
            "unit": first["unit"], "configs": configs}


def config_of(client: Any, run: Any, params: dict[str, Any]) -> dict[str, Any]:
    """One pool run: its params, objective and per fold (steps, values, work, best)."""
    p = run.data.params
    monitor, every = p["monitor"], int(p.get("report_every") or 1)  # report_every: a tree folder's key
    metrics = run.data.metrics
    folds = sorted(int(k[4:].split("_", 1)[0]) for k in metrics if k.startswith("fold") and
                   k.endswith(f"_best_{monitor}"))
    keys = {k: (f"fold{k}-{monitor}", metrics[f"fold{k}_best_{monitor}"]) for k in folds} or {
        int(p["fold"]): (monitor, metrics[f"best_{monitor}"])}
    out = []
    for k, (key, best) in keys.items():
        steps, values, work = curve_of(client, run.info.run_id, key, every)
        out.append({"fold": k, "steps": steps, "values": values, "work": work, "best": best})
    return {"params": params, "run_id": run.info.run_id, "objective": metrics["objective"], "monitor": monitor,
            "unit": "rounds" if every > 1 else "epochs", "folds": out}

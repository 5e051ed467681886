"""`bash scripts/bench.sh --pruning --replay`: every option of a folder's pruner group judged on recorded curves.

A pruner decides from the values trials report and nothing else, so a pool of recorded curves (bench_pool.py)
stands in for training: each replay is an Optuna study with the option's pruner, built from the folder's own config
(`pruner=<option> fold=<fold>`, as a sweep job builds it), whose trials report a pool configuration's recorded
values step by step and stop when the pruner says so. The pool's configurations are taken in `--orders` random
orders (seeded 0, 1, ...); a sweep of n trials is the first n of an order, so one replay of the largest size gives
every smaller one (a pruner only sees the trials before). Per option and size: the regret (the best COMPLETE
trial against the best of the same n trials unpruned: how much worse the pruned sweep's answer is; for a metric to
minimise also as a share of that best), its median and 90th percentile over the orders, and the share of the
unpruned sweep's work (epochs, boosting rounds) the pruned one trained.

An option *keeps the best* when at every size its median regret is <= --max-median and its 90th percentile
<= --max-p90 (absolute for a metric to maximise; as a share of the best for one to minimise), and it *pays* when it
trains at least 40% less at 20 trials and more. The recommendation is the option that keeps the best and trains
least at 20 trials and more; the table says which options qualify.
"""

from __future__ import annotations

import statistics
import warnings
from pathlib import Path
from typing import Any

SIZES = (5, 10, 20, 50)
PAYS_AT = 20  # sizes from which a pruner must save work
MIN_SAVING = 0.40


def pruner_nodes(config_dir: Path, options: list[str], fold: str, n_folds: int) -> dict[str, Any]:
    """Each option's `pruner` node, composed from the folder's config as a sweep job composes it."""
    import hydra
    from omegaconf import OmegaConf

    import src.utils.tune.plugin  # noqa: F401  (registers hydra/sweeper=workspace_optuna)

    nodes = {}
    with hydra.initialize_config_dir(config_dir=str(config_dir)):
        for name in options:
            overrides = [f"pruner={name}", f"fold={fold}"]
            if name == "hyperband" and fold == "all":  # the brackets span the folds (as bench.sh --pruning does)
                overrides.append(f"pruner.max_resource={n_folds}")
            cfg = hydra.compose("config", overrides=overrides)
            nodes[name] = OmegaConf.to_container(cfg.pruner, resolve=True) if cfg.pruner is not None else None
    return nodes


def trials_of(pool: dict[str, Any], fold: str) -> list[dict[str, Any]]:
    """What each pool configuration reports in a sweep with `fold`: its steps, values and their work, and its
    objective. fold=all: the folds are the steps (each fold's best); otherwise fold 0's epochs (rounds)."""
    out = []
    for c in pool["configs"]:
        if fold == "all":
            folds = sorted(c["folds"], key=lambda f: f["fold"])
            out.append({"steps": [f["fold"] for f in folds], "values": [f["best"] for f in folds],
                        "work": [sum(f["work"]) for f in folds], "objective": c["objective"]})
        else:
            f = min(c["folds"], key=lambda f: f["fold"])
            out.append({"steps": f["steps"], "values": f["values"], "work": f["work"], "objective": f["best"]})
    return out


def replay(node: Any, trials: list[dict[str, Any]], order: list[int], maximize: bool) -> list[tuple]:
    """One sweep over `order`: per trial (COMPLETE, objective, work trained, work of the whole curve)."""
    import math

    import optuna

    from src.utils.tune.pruners import job_pruner

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study = optuna.create_study(study_name="replay", direction="maximize" if maximize else "minimize",
                                    pruner=job_pruner(node), sampler=optuna.samplers.RandomSampler(0))
    out = []
    for i in order:
        t, trial, done = trials[i], study.ask(), 0
        complete = True
        for step, value, work in zip(t["steps"], t["values"], t["work"], strict=True):
            done += work
            if not math.isfinite(value):  # what TrialLink.report skips
                continue
            trial.report(float(value), step)
            if trial.should_prune():
                complete = False
                break
        if complete:
            study.tell(trial, float(t["objective"]))
        else:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        out.append((complete, float(t["objective"]), done, sum(t["work"])))
    return out


def prefix_figures(sweep: list[tuple], size: int, maximize: bool) -> tuple[float, float, float]:
    """(regret, regret as a share of the unpruned best, share of the unpruned work) of the first `size` trials."""
    head = sweep[:size]
    pick = max if maximize else min
    unpruned = pick(t[1] for t in head)
    kept = [t[1] for t in head if t[0]]
    found = pick(kept) if kept else (float("-inf") if maximize else float("inf"))
    regret = unpruned - found if maximize else found - unpruned
    return regret, regret / abs(unpruned) if unpruned else regret, sum(t[2] for t in head) / sum(t[3] for t in head)


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def judge(pool: dict[str, Any], nodes: dict[str, Any], fold: str, orders: int,
          sizes: tuple[int, ...] = SIZES) -> dict[str, dict[int, dict[str, float]]]:
    """Per option and size: median / p90 regret (absolute and relative), mean and p90 work share, over `orders`."""
    import numpy as np
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # a study per replay: no line per study
    trials, maximize = trials_of(pool, fold), pool["mode"] == "max"
    sizes = tuple(s for s in sizes if s <= len(trials))
    table: dict[str, dict[int, dict[str, float]]] = {}
    for name, node in nodes.items():
        per: dict[int, list[tuple[float, float, float]]] = {s: [] for s in sizes}
        for seed in range(orders):
            order = [int(i) for i in np.random.default_rng(seed).permutation(len(trials))[:max(sizes)]]
            sweep = replay(node, trials, order, maximize)
            for s in sizes:
                per[s].append(prefix_figures(sweep, s, maximize))
        table[name] = {s: summary([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])
                       for s, rows in per.items()}
    return table


def summary(regret: list[float], relative: list[float], work: list[float]) -> dict[str, float]:
    return {"median_regret": statistics.median(regret), "p90_regret": quantile(regret, 0.9),
            "median_regret_rel": statistics.median(relative), "p90_regret_rel": quantile(relative, 0.9),
            "work": statistics.fmean(work), "p90_work": quantile(work, 0.9), "orders": len(regret)}


def verdict(rows: dict[int, dict[str, float]], maximize: bool, max_median: float, max_p90: float) -> dict[str, bool]:
    """Does the option keep the best at every size, and save MIN_SAVING of the work from PAYS_AT trials on?"""
    key = "" if maximize else "_rel"
    keeps = all(r[f"median_regret{key}"] <= max_median + 1e-12 and r[f"p90_regret{key}"] <= max_p90 + 1e-12
                for r in rows.values())
    big = [r for s, r in rows.items() if s >= PAYS_AT]
    pays = bool(big) and all(r["work"] <= 1 - MIN_SAVING for r in big)
    return {"keeps_best": keeps, "pays": pays}


def recommend(table: dict[str, dict[int, dict[str, float]]], maximize: bool, max_median: float,
              max_p90: float) -> str | None:
    """The option that keeps the best and trains least from PAYS_AT trials on (None: none keeps the best)."""
    keep = [n for n, rows in table.items()
            if n != "none" and verdict(rows, maximize, max_median, max_p90)["keeps_best"]]

    def work(name: str) -> float:
        big = [r["work"] for s, r in table[name].items() if s >= PAYS_AT] or [r["work"] for r in table[name].values()]
        return statistics.fmean(big)

    return min(keep, key=work) if keep else None


def text_table(table: dict[str, dict[int, dict[str, float]]], maximize: bool, max_median: float, max_p90: float,
               title: str) -> str:
    unit = "" if maximize else " [% of best]"
    scale = 1.0 if maximize else 100.0
    key = "" if maximize else "_rel"
    lines = [title, f"| pruner | trials | median regret{unit} | p90 regret{unit} | work trained (mean, p90) | "
                    f"keeps the best | saves {MIN_SAVING:.0%} from {PAYS_AT} |", "|---|---|---|---|---|---|---|"]
    for name, rows in table.items():
        v = verdict(rows, maximize, max_median, max_p90)
        for s, r in rows.items():
            lines.append(f"| {name} | {s} | {r[f'median_regret{key}'] * scale:.4f} | "
                         f"{r[f'p90_regret{key}'] * scale:.4f} | {r['work']:.0%}, {r['p90_work']:.0%} | "
                         f"{'yes' if v['keeps_best'] else 'no'} | {'yes' if v['pays'] else 'no'} |")
    return "\n".join(lines)


def plot(table: dict[str, dict[int, dict[str, float]]], maximize: bool, path: Path, title: str) -> Path:
    """p90 regret against the work trained, one point per option and size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    key, scale = ("p90_regret", 1.0) if maximize else ("p90_regret_rel", 100.0)
    fig, ax = plt.subplots(figsize=(8, 5))
    markers = dict(zip(SIZES, "o^sD", strict=True))
    for name, rows in table.items():
        xs = [r["work"] for r in rows.values()]
        ys = [r[key] * scale for r in rows.values()]
        line, = ax.plot(xs, ys, "-", lw=1, alpha=0.6, label=name)
        for (s, r) in rows.items():
            ax.plot([r["work"]], [r[key] * scale], markers.get(s, "o"), color=line.get_color(), ms=6)
    for s, m in markers.items():
        ax.plot([], [], m, color="grey", label=f"{s} trials")
    ax.set_xlabel("work trained: share of the unpruned sweep's epochs / rounds (mean over the orders)")
    ax.set_ylabel("90th percentile regret" + ("" if maximize else " [% of the best]"))
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def thresholds(args: Any, maximize: bool) -> tuple[float, float]:
    """--max-median, --max-p90: given, or 0.001 / 0.003 for a metric to maximise (accuracy), 0.5% of the best
    for one to minimise (RMSE, log loss)."""
    median = args.max_median if args.max_median is not None else (0.001 if maximize else 0.005)
    p90 = args.max_p90 if args.max_p90 is not None else (0.003 if maximize else 0.005)
    return median, p90


def pool_of(ws: Any, exp: Any, args: Any, epochs: int | None) -> dict[str, Any]:
    """The pool: --pool-file, or trained in the copy (data prepared first) and written beside the report."""
    import json

    from src.tools.bench_data import prepare_data
    from src.tools.bench_pool import train_pool

    if args.pool_file:
        return json.loads(Path(args.pool_file).read_text())
    manifest = prepare_data(ws, exp, args.size, args.seed, args.n_train)
    pool = train_pool(ws, exp, args.pool, args.pool_fold, args.seed, epochs)
    pool["n_folds"] = int(manifest.get("n_folds") or len(pool["configs"][0]["folds"]))
    return pool


def replay_figures(ws: Any, exp: Any, args: Any, stamp: str, epochs: int | None = None) -> int:
    """The pool (trained or read), every option of the folder's pruner group replayed on it per sweep kind (single
    fold; fold=all when the pool has all folds); the tables printed, the plots and one JSON written."""
    import json
    import time

    from src.utils.core.paths import ROOT

    pool = pool_of(ws, exp, args, epochs)
    path = args.out / f"bench_replay_{exp.name}_{stamp}"
    (path.parent / f"{path.name}_pool.json").write_text(json.dumps(pool))
    maximize = pool["mode"] == "max"
    max_median, max_p90 = thresholds(args, maximize)
    have = sorted(p.stem for p in (ROOT / exp.config_dir / "pruner").glob("*.yaml"))
    options = ["none", *[p for p in (args.pruners or have) if p != "none"]]
    report: dict[str, Any] = {"bench": {"experiment": exp.name, "pool": len(pool["configs"]), "orders": args.orders,
                                        "sizes": list(SIZES), "max_median": max_median, "max_p90": max_p90,
                                        "monitor": pool["monitor"], "mode": pool["mode"], "unit": pool["unit"],
                                        "created": stamp, "pool_train_s": pool.get("train_s")}, "replays": {}}
    for fold in (["0", "all"] if pool["fold"] == "all" else ["0"]):
        t0 = time.perf_counter()
        nodes = pruner_nodes(ROOT / exp.config_dir, options, fold, int(pool.get("n_folds") or 5))
        table = judge(pool, nodes, fold, args.orders)
        steps = "folds" if fold == "all" else pool["unit"]
        title = (f"replay, {exp.name} ({pool['monitor']}, {pool['mode']}): {len(pool['configs'])} recorded "
                 f"configurations, {args.orders} orders, fold={fold} ({steps} as steps)")
        text = text_table(table, maximize, max_median, max_p90, title)
        best = recommend(table, maximize, max_median, max_p90)
        png = plot(table, maximize, Path(f"{path}_fold-{fold}.png"), title)
        report["replays"][fold] = {"table": table, "text": text, "recommended": best, "plot": str(png),
                                   "verdicts": {n: verdict(r, maximize, max_median, max_p90)
                                                for n, r in table.items()},
                                   "replay_s": time.perf_counter() - t0}
        print(text)
        print(f"recommended for fold={fold}: {best or 'none of the options keeps the best at every size'}"
              f" (replayed in {time.perf_counter() - t0:.1f} s)")
        print(f"plot: {png}")
    json_path = path.with_suffix(".json")
    json_path.write_text(json.dumps(report, indent=2, default=str))
    print(f"report: {json_path}")
    return 0

"""`bash scripts/bench.sh --pruning --confirm`: a replay's choice checked live, on the folder's own sweep.

For each sampler seed (`--sampler-seeds`, default the sample folders' 42 and two more) the folder's sweep over its
first versioned search space (`hparams_search/`, its sampler, max_epochs unless `--epochs`, early stopping,
`--fold`) runs twice in the benchmark's copy: with `pruner=none` and with the pruner under test (`--pruners`,
default `auto`). The sweeper seeds its sampler per trial number and runs the trials one after the other, so a
trial's parameters depend only on the trials before it: the first n trials of a sweep of `--trials` are the sweep
of n trials, and one sweep per side gives every size of `--sizes` (default the demo's 5 and 20). Per seed and
size: each side's best value and the parameters of its best trial, whether the pruned side ended with the
unpruned side's best trial (the same parameters), the regret (how much worse its best is; negative when its own
trials, which the sampler chose after other pruned ones, found better), and the share of the unpruned epochs
(rounds, folds) it trained.
"""

from __future__ import annotations

import json
from typing import Any

from src.tools.bench_experiment import Experiment
from src.tools.bench_pool import search_space
from src.tools.bench_workspace import Copy, say


def sweep(ws: Copy, exp: Experiment, pruner: str, seed: int, trials: int, fold: str,
          *extra: str) -> list[dict[str, Any]]:
    """One sweep of the folder in the copy; its trials in order (state, value, params, steps reported)."""
    import optuna

    study = f"confirm-{exp.name}-{pruner}-{seed}-{fold}"
    wall, cpu, _ = ws.python(str(ws.root / exp.train_py), "-m", f"hparams_search={search_space(exp)}",
                             f"hydra.sweeper.n_trials={trials}", f"hydra.sweeper.sampler.seed={seed}",
                             f"hydra.sweeper.study_name={study}", f"pruner={pruner}", f"fold={fold}",
                             "mlflow.log_model=false", *extra, what=f"{exp.train_py} -m pruner={pruner} (seed {seed})")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = f"sqlite:///{ws.root / 'logs/optuna/optuna.db'}"
    done = sorted(optuna.load_study(study_name=study, storage=storage).trials, key=lambda t: t.number)
    say(f"pruner={pruner} seed {seed}: {len(done)} trials in {wall:.0f} s")
    return [{"number": t.number, "state": t.state.name, "value": t.value, "params": t.params,
             "steps": len(t.intermediate_values), "wall_s": wall, "cpu_s": cpu} for t in done]


def best_of(trials: list[dict[str, Any]], maximize: bool) -> dict[str, Any] | None:
    complete = [t for t in trials if t["state"] == "COMPLETE" and t["value"] is not None]
    if not complete:
        return None
    return (max if maximize else min)(complete, key=lambda t: t["value"])


def compare(none: list[dict[str, Any]], pruned: list[dict[str, Any]], size: int, maximize: bool) -> dict[str, Any]:
    """The first `size` trials of both sides: bests, whether they are the same trial, the work share."""
    a, b = best_of(none[:size], maximize), best_of(pruned[:size], maximize)
    work = sum(t["steps"] for t in pruned[:size]) / max(1, sum(t["steps"] for t in none[:size]))
    regret = None
    if a and b:  # how much worse the pruned side's best is (negative: its own trials found better)
        regret = a["value"] - b["value"] if maximize else b["value"] - a["value"]
    return {"size": size, "none_best": a and a["value"], "pruned_best": b and b["value"], "regret": regret,
            "regret_rel": None if regret is None or not a["value"] else regret / abs(a["value"]),
            "none_params": a and a["params"], "pruned_params": b and b["params"],
            "same_best": bool(a and b and a["params"] == b["params"]), "work": work,
            "pruned_trials": sum(t["state"] == "PRUNED" for t in pruned[:size])}


def regret_text(row: dict[str, Any], maximize: bool) -> str:
    """Absolute for a metric to maximise (accuracy), a share of the unpruned best for one to minimise."""
    if row["regret"] is None:
        return "-"
    return f"{row['regret']:+.4f}" if maximize else f"{row['regret_rel']:+.2%}"


def confirm_figures(ws: Copy, exp: Experiment, args: Any, trials: int, stamp: str) -> int:
    """Both sides per seed; the table printed and the JSON written."""
    maximize = exp.monitor_mode == "max"
    sizes = sorted(s for s in args.sizes if s <= trials) or [trials]
    rows, sides = [], {}
    cap = exp.epochs_override(args.epochs)
    for pruner in args.pruners or ("auto",):
        for seed in args.sampler_seeds:
            if ("none", seed) not in sides:
                sides[("none", seed)] = sweep(ws, exp, "none", seed, trials, str(args.fold), *cap)
            none, pruned = sides[("none", seed)], sweep(ws, exp, pruner, seed, trials, str(args.fold), *cap)
            sides[(pruner, seed)] = pruned
            rows += [{"pruner": pruner, "seed": seed, **compare(none, pruned, s, maximize)} for s in sizes]
    lines = [f"live confirmation, {exp.name} (fold={args.fold}, hparams_search={search_space(exp)}): each pruner "
             f"against pruner=none, same sampler seed; the first n trials of one sweep of {trials}",
             "| pruner | seed | trials | best, none | best, pruned | same best trial | regret | pruned trials | work |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['pruner']} | {r['seed']} | {r['size']} | {r['none_best']:.4f} | "
                     f"{'-' if r['pruned_best'] is None else format(r['pruned_best'], '.4f')} | "
                     f"{'yes' if r['same_best'] else 'NO'} | {regret_text(r, maximize)} | "
                     f"{r['pruned_trials']}/{r['size']} | {r['work']:.0%} |")
    text = "\n".join(lines)
    path = args.out / f"bench_confirm_{exp.name}_{stamp}.json"
    path.write_text(json.dumps({"bench": {"experiment": exp.name, "fold": str(args.fold), "trials": trials,
                                          "sizes": sizes, "seeds": list(args.sampler_seeds), "created": stamp},
                                "rows": rows, "table": text,
                                "sweeps": {f"{p}-{s}": t for (p, s), t in sides.items()}}, indent=2, default=str))
    print(text)
    print(f"the pruned sweep ended with the unpruned sweep's best trial in {sum(r['same_best'] for r in rows)} of "
          f"{len(rows)} (seed, size) pairs")
    print(f"report: {path}")
    return 0

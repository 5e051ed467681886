"""`bash scripts/bench.sh --pruning`: what each pruner buys on the same sweep, measured as time-to-best.

The experiment's own sweep (`train.py -m`, its early stopping and max_epochs, the sampler seed of its config) runs
once with `pruner=none` and once per candidate pruner of its `config/model/<name>/pruner/` group, with the same
n_trials and search space. The sweeper seeds its sampler per trial number, so the start-up trials get the same
points on every side; after that each side's sampler follows what its own trials reported.

For each side: the sweep's wall time, its best value (COMPLETE trials only), the trials pruned, and the wall time
(since launch) at which its best-so-far first came within --tolerance of the unpruned sweep's best, each also as a
share of the unpruned sweep's wall. A PNG draws best-so-far against wall-clock time, one line per side.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from src.tools.bench_experiment import Experiment
from src.tools.bench_measure import run_workspace
from src.tools.bench_workspace import Copy, load_average, say

# the candidates measured by default: epochs as steps (fold=N) and folds as steps (fold=all)
CANDIDATES = {"single": ("median", "hyperband", "successive_halving", "patient"),
              "all": ("median", "wilcoxon", "hyperband")}


def best_so_far(side: dict[str, Any], maximize: bool) -> list[tuple[float, float]]:
    """(seconds since launch, best value so far) at the end of each COMPLETE trial, in the order they ended."""
    points, best = [], None
    for t in sorted((t for t in side["trials"] if t["state"] == "COMPLETE"), key=lambda t: t["end"]):
        value = float(t["value"])
        if best is None or (value > best if maximize else value < best):
            best = value
        points.append((t["end"] - side["launch"], best))
    return points


def time_to(points: list[tuple[float, float]], target: float, maximize: bool) -> float | None:
    """The first time the best-so-far reached `target` (None: never)."""
    return next((s for s, v in points if (v >= target if maximize else v <= target)), None)


def figures(sides: dict[str, dict[str, Any]], maximize: bool, tolerance: float) -> dict[str, dict[str, Any]]:
    """Per side: wall, best, pruned, time-to-within-tolerance of the unpruned best; shares of the unpruned wall."""
    curves = {name: best_so_far(side, maximize) for name, side in sides.items()}
    ref_wall = sides["none"]["wall_s"]
    ref_best = curves["none"][-1][1] if curves["none"] else None
    target = None if ref_best is None else ref_best - tolerance if maximize else ref_best + tolerance
    out = {}
    for name, side in sides.items():
        reach = time_to(curves[name], target, maximize) if target is not None else None
        out[name] = {"wall_s": side["wall_s"], "wall_share": side["wall_s"] / ref_wall,
                     "cpu_s": side.get("cpu_s"), "cpu_share": side["cpu_s"] / sides["none"]["cpu_s"]
                     if side.get("cpu_s") and sides["none"].get("cpu_s") else None,
                     "best": curves[name][-1][1] if curves[name] else None,
                     "pruned": sum(t["state"] == "PRUNED" for t in side["trials"]),
                     "trials": len(side["trials"]), "steps": sum(t["steps"] for t in side["trials"]),
                     "time_to_best_s": reach, "time_to_best_share": None if reach is None else reach / ref_wall,
                     "curve": curves[name]}
    return out


def table(rows: dict[str, dict[str, Any]], title: str, tolerance: float) -> str:
    def pct(x: float | None) -> str:
        return "never" if x is None else f"{x:.0%}"

    lines = [title, f"| pruner | wall [s] | share | CPU share | best | pruned | steps | within {tolerance} of "
                    f"unpruned best [s] | share of unpruned wall |", "|---|---|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        best = "-" if r["best"] is None else f"{r['best']:.4f}"
        reach = "never" if r["time_to_best_s"] is None else f"{r['time_to_best_s']:.1f}"
        cpu = "-" if r.get("cpu_share") is None else pct(r["cpu_share"])
        lines.append(f"| {name} | {r['wall_s']:.1f} | {pct(r['wall_share'])} | {cpu} | {best} | "
                     f"{r['pruned']}/{r['trials']} | {r['steps']} | {reach} | {pct(r['time_to_best_share'])} |")
    return "\n".join(lines)


def plot(rows: dict[str, dict[str, Any]], path: Path, title: str, maximize: bool, tolerance: float) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.8))
    for name, r in rows.items():
        if not r["curve"]:
            continue
        xs = [s for s, _ in r["curve"]] + [r["wall_s"]]  # held to the sweep's end
        ys = [v for _, v in r["curve"]] + [r["curve"][-1][1]]
        line, = ax.step(xs, ys, where="post", label=f"{name} ({r['pruned']} pruned, {r['wall_s']:.0f} s)",
                        lw=2.2 if name == "none" else 1.5, ls="--" if name == "none" else "-")
        if r["time_to_best_s"] is not None:
            ax.plot([r["time_to_best_s"]], [next(v for s, v in r["curve"] if s == r["time_to_best_s"])], "o",
                    color=line.get_color())
    ref = rows["none"]["best"]
    if ref is not None:
        ax.axhspan(ref - tolerance if maximize else ref, ref if maximize else ref + tolerance, color="grey",
                   alpha=0.2, label=f"within {tolerance} of the unpruned best")
    ax.set_xlabel("wall-clock time since the sweep's launch [s]")
    ax.set_ylabel("best value so far (COMPLETE trials)")
    ax.set_title(title.replace(": ", ":\n", 1), fontsize=9)
    ax.set_xlim(left=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right" if maximize else "upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def pruning_figures(ws: Copy, exp: Experiment, trials: int, epochs: int, args: argparse.Namespace, stamp: str,
                    manifest: dict[str, Any]) -> int:
    """The experiment's sweep with pruner=none and with each candidate; prints the table, writes JSON and PNG."""
    cv = str(args.fold) == "all"
    candidates = args.pruners or CANDIDATES["all" if cv else "single"]
    n_folds = int(manifest.get("n_folds") or 5)
    extra = [f"fold={args.fold}"]
    sides: dict[str, dict[str, Any]] = {}
    for name in ("none", *candidates):
        override = [f"pruner={name}"]
        if name == "hyperband" and cv:  # the folds are the steps: the brackets span n_folds of them
            override.append(f"pruner.max_resource={n_folds}")
        say(f"sweep pruner={name}: {trials} trials x {epochs} epochs, fold={args.fold} (load {load_average()})")
        sides[name] = run_workspace(ws, exp, trials, epochs, f"pruning-{name}", override[0],
                                    extra=(*override[1:], *extra))
        sides[name]["overrides"] = override + extra
    maximize = exp.monitor_mode == "max"
    rows = figures(sides, maximize, args.tolerance)
    rows_of = manifest.get("shapes", {}).get("train_x") or [None]
    size = ("offline sample" if args.size == "digits" else args.size) + (
        f" ({rows_of[0]} training {'images' if len(rows_of) > 2 else 'rows'})" if rows_of[0] else "")
    title = (f"pruning, {exp.name}, {size}, fold={args.fold}: {trials} trials x max {epochs} epochs, "
             f"same sampler seed, the config's early stopping")
    text = table(rows, title, args.tolerance)
    base = args.out / f"bench_pruning_{args.size}_fold-{args.fold}_{stamp}"
    png = plot(rows, base.with_suffix(".png"), title, maximize, args.tolerance)
    report = {"bench": {"experiment": exp.name, "size": args.size, "fold": str(args.fold), "trials": trials,
                        "epochs": epochs, "tolerance": args.tolerance, "candidates": list(candidates),
                        "threads": args.threads, "n_train": (manifest.get("shapes") or {}).get("train_x"),
                        "load_after": load_average(), "created": stamp, "plot": str(png)},
              "figures": {k: {kk: vv for kk, vv in v.items() if kk != "curve"} for k, v in rows.items()},
              "curves": {k: v["curve"] for k, v in rows.items()}, "sides": sides, "table": text}
    path = base.with_suffix(".json")
    path.write_text(json.dumps(report, indent=2, default=str))
    print(text)
    print(f"plot: {png}")
    print(f"report: {path}")
    return 0

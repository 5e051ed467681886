"""What the workspace costs over a bare PyTorch + Optuna loop, on the same data, model, trials, epochs and seed.

    bash scripts/bench.sh                                  # model01, offline digits, 5 trials x 3 epochs
    bash scripts/bench.sh --experiment model02             # another model folder (src/model/model02)
    bash scripts/bench.sh --size mnist                     # generated 60,000 + 10,000 28x28 images, 3 x 2
    bash scripts/bench.sh --size mnist --trials 4 --epochs 1 --threads 1 --keep
    bash scripts/bench.sh --pruning                        # each pruner against pruner=none (bench_pruning.py)
    bash scripts/bench.sh --profile --size mnist --trials 2 --epochs 1   # a trial's time outside training
    bash scripts/bench.sh --ensemble                       # blending 20 MNIST-size members, per method
    bash scripts/bench.sh --experiment model04             # a tree folder against a bare loop of its library
    bash scripts/bench.sh --experiment model05 --size large   # ... on a generated 100,000 x 50 table (bench_trees.py)

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
import shutil
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

# The benchmark's parts, one module per concern. Every name this module held before the split stays importable
# from here: bench_pruning.py, bench_ensemble.py and the tests import them so, and TIMELINE_TARGET resolves
# timeline_callback through this module.
from src.tools.bench_data import DIGITS, GENERATED, generated_digits, prepare_data
from src.tools.bench_experiment import Experiment, experiment
from src.tools.bench_measure import (
    LOAD_RUN_PROBE,
    LR_HIGH,
    LR_LOW,
    SEARCH_SPACE,
    cold_start,
    free_port,
    run_floor,
    run_workspace,
    time_command,
    time_load_run,
    time_mlflow_ui,
)
from src.tools.bench_report import BENCH_TARGETS, check_targets, combine, fixed_gaps, format_table, median
from src.tools.bench_timeline import TIMELINE_TARGET, epoch_stats, timeline_callback, trial_stats
from src.tools.bench_workspace import Copy, load_average, make_copy, say
from src.utils.core.paths import ROOT

__all__ = [
    "BENCH_TARGETS", "DEFAULT_RUNS", "DIGITS", "GENERATED", "LOAD_RUN_PROBE", "LR_HIGH", "LR_LOW", "SEARCH_SPACE",
    "SIZES", "TIMELINE_TARGET", "Copy", "Experiment", "Plan", "check_targets", "cold_start", "combine",
    "epoch_stats", "experiment", "fixed_gaps", "format_table", "free_port", "generated_digits", "load_average",
    "main", "make_copy", "median", "prepare_data", "run_floor", "run_workspace", "say", "time_command",
    "time_load_run", "time_mlflow_ui", "timeline_callback", "trial_stats",
]

SIZES = ("digits", "mnist", "tiny", "large")
DEFAULT_RUNS = {"digits": (5, 3), "mnist": (3, 2), "tiny": (2, 1), "large": (20, 1)}  # trials, epochs (large: trees)


# --------------------------------------------------------------------------------------------------
# The command line
# --------------------------------------------------------------------------------------------------
def add_replay_and_confirm(parser: argparse.ArgumentParser) -> None:
    """--pruning --replay (recorded curves) and --pruning --confirm (live) options."""
    replay = parser.add_argument_group("--pruning --replay: every pruner on recorded curves (bench_replay.py)")
    replay.add_argument("--replay", action="store_true",
                        help="with --pruning: train a pool of the folder's sweep once (pruner=none), then replay "
                             "every option of its pruner group on it over --orders random orders and 5/10/20/50 "
                             "trials: regret and work per option and size")
    replay.add_argument("--pool", type=int, default=60, help="configurations in the pool (default 60)")
    replay.add_argument("--pool-fold", default="all", choices=("all", "0"),
                        help="the pool's runs: all (default; both replays) or 0 (single fold, cheaper)")
    replay.add_argument("--pool-file", type=Path, help="replay a recorded pool (a *_pool.json) without training")
    replay.add_argument("--orders", type=int, default=100, help="random orders per sweep size (default 100)")
    replay.add_argument("--max-median", type=float, help="median regret that keeps the best (default 0.001, or "
                                                         "0.005 of the best for a metric to minimise)")
    confirm = parser.add_argument_group("--pruning --confirm: a pruner against none, live (bench_confirm.py)")
    confirm.add_argument("--confirm", action="store_true",
                         help="with --pruning: the folder's sweep over its first hparams_search space with pruner=none "
                              "and with each of --pruners (default auto), per --sampler-seeds; the same best?")
    confirm.add_argument("--sampler-seeds", type=lambda s: tuple(int(x) for x in s.split(",") if x), metavar="A,B",
                         default=(42, 0, 1), help="sampler seeds (default 42,0,1: the sample folders' seed, then 0, 1)")
    confirm.add_argument("--sizes", type=lambda s: tuple(int(x) for x in s.split(",") if x), metavar="A,B",
                         default=(5, 20), help="sweep sizes compared, prefixes of one sweep of --trials (default "
                                               "5,20: the demo's and 20)")
    replay.add_argument("--max-p90", type=float, help="90th-percentile regret (default 0.003, or 0.005 of the best)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bash scripts/bench.sh", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiment", default="model01", metavar="NAME",
                        help="model folder to benchmark: src/model/NAME with config/model/NAME (default model01)")
    parser.add_argument("--size", choices=SIZES, default=None,
                        help="digits: offline sample (default); mnist: generated 60,000+10,000 digit images; "
                             "tiny: 500+100 for tests (a model of another competition: its offline sample); "
                             "large: a tree folder on a generated table of 100,000 rows x 50 mixed columns")
    parser.add_argument("--trials", type=int, help="trials per sweep (default: 5 digits, 3 mnist, 2 tiny; a tree "
                                                   "folder's sweep: 20)")
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
    add_replay_and_confirm(parser)
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
    return parser


def check_ensemble(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """--ensemble: known methods and at least two members; sets args.ensemble_rows, the (OOF, test) rows that
    bench_ensemble.py records per member."""
    have = sorted(p.stem for p in (ROOT / "config/ensemble/ensemble01/method").glob("*.yaml"))
    bad = [m for m in args.methods if m not in have]
    if bad or args.members < 2:
        parser.error(f"--methods {','.join(bad)}: not a method of config/ensemble/ensemble01/method/ (have: "
                     f"{', '.join(have)})" if bad else "--members N: N >= 2")
    args.ensemble_rows = {"mnist": (42000, 28000), "digits": (1437, 360), "tiny": (2000, 500)}[args.size]
    if args.n_train:
        args.ensemble_rows = (args.n_train, args.ensemble_rows[1])


def check_pruning(parser: argparse.ArgumentParser, args: argparse.Namespace, exp: Experiment) -> None:
    """--pruning: candidates from the experiment's pruner group (never `none`, the reference), and a fold."""
    have = sorted(p.stem for p in (ROOT / exp.config_dir / "pruner").glob("*.yaml"))
    bad = [p for p in args.pruners or () if p not in have or p == "none"]
    if bad or not have:
        parser.error(f"--pruners {','.join(bad)}: not a pruner of {exp.config_dir}/pruner/ (have: "
                     f"{', '.join(p for p in have if p != 'none') or 'no pruner group'})")
    if args.fold != "all" and not args.fold.isdigit():
        parser.error(f"--fold {args.fold}: a fold number or all")


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, Experiment, int, int]:
    """The flags, checked in this order (the first problem is the usage error, exit 2); the experiment they name;
    the sweeps' trials and epochs."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.size = args.size or ("mnist" if args.ensemble else "digits")
    if args.ensemble:
        check_ensemble(parser, args)
    default = (20, None) if args.pruning else DEFAULT_RUNS[args.size]  # --pruning: the config's n_trials, max_epochs
    trials = default[0] if args.trials is None else args.trials
    epochs = default[1] if args.epochs is None else args.epochs
    if args.n_train is not None and (args.size == "digits" or args.n_train < 50):
        parser.error("--n-train N: N >= 50, with a generated size (--size mnist or tiny)")
    given = [trials, args.repeats, args.sweep_repeats] + [n for n in (epochs, args.threads) if n is not None]
    if min(given) < 1:
        parser.error("--trials, --epochs, --repeats, --sweep-repeats and --threads must be >= 1")
    try:
        exp = experiment(args.experiment)
    except ValueError as exc:
        parser.error(str(exc))
    if args.pruning:
        epochs = epochs or exp.max_epochs
        check_pruning(parser, args, exp)
    if args.replay and (not args.pruning or args.pool < 5 or args.orders < 1):
        parser.error("--replay goes with --pruning, --pool N with N >= 5 and --orders N with N >= 1")
    if args.confirm and (not args.pruning or args.replay or not args.sampler_seeds or min(args.sizes or [0]) < 1):
        parser.error("--confirm goes with --pruning (not --replay), --sampler-seeds A,B and --sizes N,M with N >= 1")
    from src.tools.bench_trees import is_tree_folder

    if is_tree_folder(exp) and args.trials is None and args.size != "tiny":
        trials = 20  # a tree folder's sweep: the 20 trials its target is set for
    if args.size == "large" and not is_tree_folder(exp):
        parser.error(f"--size large is a table for a tree folder; {exp.name} is a network (--size digits, mnist "
                     f"or tiny)")
    if args.size == "mnist" and exp.competition != DIGITS:
        parser.error(f"--size mnist generates digit images, but {exp.name} is a {exp.competition} model; "
                     f"use --size digits (its offline sample) or --size tiny")
    return args, exp, trials, epochs


# --------------------------------------------------------------------------------------------------
# The steps of a benchmark
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Plan:
    """One checked invocation: what every step needs, so that none re-reads or re-derives it."""

    args: argparse.Namespace
    exp: Experiment
    trials: int
    epochs: int
    stamp: str  # when it started: the name of the copy's folder and of the report files
    work: Path  # the throw-away copy's folder, outputs/bench/work-<stamp> (removed unless --keep)


def warn_if_busy(threads: int | None, load: str) -> None:
    """A busy machine makes torch's default threads (one per core) swing the figures; say so before measuring."""
    if threads is None and os.getloadavg()[0] > 0.5 * (os.cpu_count() or 1):
        say(f"the machine is busy (load {load} on {os.cpu_count()} CPUs): torch's OpenMP threads will "
            f"fight other processes and the timings swing by 10-20%; --threads 1 gives steadier figures")


def profile(ws: Copy, plan: Plan) -> int:
    """--profile: the workspace sweep with one trial after the first under cProfile; prints its summary."""
    args, exp = plan.args, plan.exp
    out = args.out / f"bench_profile_{args.size}_{plan.stamp}.prof"
    _, _, text = ws.python("-m", "src.tools.bench_profile", "--out", str(out), str(ws.root / exp.train_py),
                           "-m", SEARCH_SPACE, f"max_epochs={plan.epochs}",
                           f"hydra.sweeper.n_trials={max(2, plan.trials)}",
                           "hydra.sweeper.study_name=bench-profile", "pruner=none",
                           "~callbacks.early_stopping", what="the profiled sweep")
    print(text[text.index("profiled trial(s)") - 2:] if "profiled trial(s)" in text else text)
    return 0


def sweeps(ws: Copy, plan: Plan) -> tuple[list[dict], list[dict]]:
    """--sweep-repeats pairs of the workspace (A) and floor (B) sweeps."""
    a_runs, b_runs = [], []
    for r in range(plan.args.sweep_repeats):
        order = ("A", "B") if r % 2 == 0 else ("B", "A")  # alternate, so a drift in load hits both sides
        for side in order:
            say(f"sweep {r + 1}/{plan.args.sweep_repeats}: {'workspace (A)' if side == 'A' else 'floor (B)'}, "
                f"{plan.trials} trials x {plan.epochs} epochs (load {load_average()})")
            if side == "A":
                a_runs.append(run_workspace(ws, plan.exp, plan.trials, plan.epochs, str(r)))
            else:
                b_runs.append(run_floor(ws, plan.exp, plan.trials, plan.epochs, str(r)))
    return a_runs, b_runs


def same_work(a_runs: list[dict], b_runs: list[dict]) -> tuple[bool, float]:
    """Whether both sides sampled the same parameters, trial by trial, and the largest gap in their objectives."""
    same_params = all([t["params"] for t in a["trials"]] == [t["params"] for t in b["trials"]]
                      for a, b in zip(a_runs, b_runs, strict=True))
    value_gap = max(abs(ta["value"] - tb["value"]) for a, b in zip(a_runs, b_runs, strict=True)
                    for ta, tb in zip(a["trials"], b["trials"], strict=True))
    return same_params, value_gap


def cheap_measurements(ws: Copy, plan: Plan, a_runs: list[dict]
                       ) -> tuple[list[float], list[dict], list[float], dict[str, list[float]]]:
    """--repeats each of cold start, load_run (of A's best run), mlflow_ui.sh, the error line and --help."""
    args, exp = plan.args, plan.exp
    say(f"cold start, load_run, mlflow_ui.sh, an error line and --help, {args.repeats} time(s) each "
        f"(load {load_average()})")
    cold = [cold_start(ws, exp, str(i)) for i in range(args.repeats)]
    run_id = a_runs[0]["best_run_id"]
    if not run_id:
        raise RuntimeError("the workspace sweep printed no best run_id; re-run with --keep and look at its log")
    loads = [time_load_run(ws, exp, run_id) for _ in range(args.repeats)]
    ui = [time_mlflow_ui(ws) for _ in range(args.repeats)]
    commands = {arg: [time_command(ws, exp, arg) for _ in range(args.repeats)] for arg in ("lr=abc", "--help")}
    return cold, loads, ui, commands


def bench_header(plan: Plan, floor: dict, loads: tuple[str, str], same_params: bool, value_gap: float) -> dict:
    """The report's `bench` part: what was measured and how (`loads`: the load average before and after)."""
    args, exp = plan.args, plan.exp
    return {
        "experiment": exp.name, "mlflow_experiment": exp.mlflow_experiment, "train_py": exp.train_py,
        "feature_dir": exp.feature_dir, "size": args.size, "trials": plan.trials, "epochs": plan.epochs,
        "repeats": args.repeats, "sweep_repeats": args.sweep_repeats, "threads": args.threads,
        "seed": args.seed, "search_space": SEARCH_SPACE, "batch_size": exp.batch_size,
        "n_train": floor["n_train"], "n_valid": floor["n_valid"], "cpus": os.cpu_count(),
        "load_before": loads[0], "load_after": loads[1], "created": plan.stamp,
        "same_params": same_params, "max_objective_gap": value_gap,
        "work_dir": str(plan.work) if args.keep else None,
    }


def compare(ws: Copy, plan: Plan, load_before: str) -> int:
    """The A/B benchmark: the sweeps, the cheap measurements, then the table printed and the JSON report."""
    a_runs, b_runs = sweeps(ws, plan)
    same_params, value_gap = same_work(a_runs, b_runs)
    cold, loads, ui, commands = cheap_measurements(ws, plan, a_runs)
    load_after = load_average()

    figures = combine(a_runs, b_runs, cold, loads, ui, commands)
    report = {
        "bench": bench_header(plan, b_runs[0], (load_before, load_after), same_params, value_gap),
        "figures": figures,
        "targets": check_targets(figures, plan.args.size),
        "runs": {"workspace": a_runs, "floor": b_runs, "cold_start_s": cold, "load_run": loads,
                 "mlflow_ui_s": ui, "error_line_s": commands["lr=abc"], "help_s": commands["--help"]},
    }
    table = format_table(report)
    report["table"] = table
    path = plan.args.out / f"bench_{plan.args.size}_{plan.stamp}.json"
    path.write_text(json.dumps(report, indent=2, default=str))
    print(table)
    print(f"same trial parameters on both sides: {same_params}; largest objective gap {value_gap:.2e}")
    print(f"report: {path}")
    return 0


def run_mode(ws: Copy, plan: Plan) -> int:
    """In the copy: --ensemble (no data needed), or the experiment's data, then --profile, --pruning or A/B."""
    args, exp = plan.args, plan.exp
    if args.ensemble:
        from src.tools.bench_ensemble import ensemble_figures

        say(f"copy of the workspace in {plan.work}")
        return ensemble_figures(ws, args, plan.stamp)
    from src.tools.bench_trees import is_tree_folder, tree_figures

    if is_tree_folder(exp) and not (args.profile or args.pruning):
        return tree_figures(ws, exp, args, plan.trials, plan.stamp)
    if args.replay:
        from src.tools.bench_replay import replay_figures

        return replay_figures(ws, exp, args, plan.stamp, plan.epochs)
    say(f"copy of the workspace in {plan.work}; experiment {exp.name} (features {exp.feature_dir} from "
        f"{exp.feature} <- {exp.dataset}); preparing {args.size} data")
    t0 = time.perf_counter()
    manifest = prepare_data(ws, exp, args.size, args.seed, args.n_train)
    say(f"data ready in {time.perf_counter() - t0:.1f} s: train_x {manifest['shapes']['train_x']}")
    load_before = load_average()
    warn_if_busy(args.threads, load_before)
    if args.profile:
        return profile(ws, plan)
    if args.confirm:
        from src.tools.bench_confirm import confirm_figures

        return confirm_figures(ws, exp, args, plan.trials, plan.stamp)
    if args.pruning:
        from src.tools.bench_pruning import pruning_figures

        return pruning_figures(ws, exp, plan.trials, plan.epochs, args, plan.stamp, manifest)
    rc = compare(ws, plan, load_before)
    if args.size == "tiny":  # the small-table row: a fold=all run against a bare loop of the same epochs
        from src.tools.bench_small import small_table

        small_table(ws, exp, plan.stamp, args.out, args.epochs)
    return rc


def main(argv: list[str] | None = None) -> int:
    args, exp, trials, epochs = parse_args(argv)
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    args.out.mkdir(parents=True, exist_ok=True)
    plan = Plan(args=args, exp=exp, trials=trials, epochs=epochs, stamp=stamp, work=args.out / f"work-{stamp}")
    ws = Copy(make_copy(plan.work / "ws"), args.threads)
    try:
        return run_mode(ws, plan)
    finally:
        if not args.keep:
            shutil.rmtree(plan.work, ignore_errors=True)


if __name__ == "__main__":
    from src.utils.cli.setup import setup

    setup()  # the environment, resolvers and plugins, before anything else runs
    sys.exit(main())

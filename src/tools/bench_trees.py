"""`bash scripts/bench.sh --experiment <tree folder>`: the workspace's gradient-boosted trees against a bare loop of
the same library, on the same features, folds, rounds, early stopping and threads.

    bash scripts/bench.sh --experiment model04                 # the regression sample: fold=all, a 20-trial sweep
    bash scripts/bench.sh --experiment model05 --size large    # a generated table, 100,000 rows x 50 mixed columns

(A) `train.py fold=all` in the copy, as a user runs it: the process's wall clock (imports, the config check, the
    MLflow run, the curves, importance, OOF and test predictions, every fold's model logged in its flavour).
(B) src/tools/bench_trees_floor.py in a process of its own: the library imported, the same feature files read, the
    estimator the folder's config composes fitted per fold with the library's early stopping: the bare loop plus
    its imports. A and B alternate (--sweep-repeats pairs); the figures are medians.
(C) `train.py -m` with --trials trials (default 20) over the learning rate: the sweep's wall clock (on the large
    table only when --trials is given).
Targets: A/B <= 1.5 on the sample, <= 1.2 on the large table; the 20-trial sweep on the sample <= 60 s.
"""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path
from typing import Any

from src.tools.bench_experiment import Experiment
from src.tools.bench_workspace import Copy, load_average, say

LARGE = (100_000, 20_000, 40, 10)  # training rows, test rows, numeric columns, text (categorical) columns
SWEEP = "learning_rate=tag(log,interval(0.02,0.3))"
TARGETS = {"ratio_sample": 1.5, "ratio_large": 1.2, "sweep_20_s": 60.0}


def is_tree_folder(exp: Experiment) -> bool:
    """A model folder whose `build` returns an estimator: its config has the `estimator` group."""
    from src.utils.core.paths import ROOT

    return (ROOT / exp.config_dir / "estimator").is_dir()


def large_table(raw_dir: Path, competition: Any, seed: int) -> None:
    """train.csv, test.csv and sample_submission.csv of LARGE's size in the competition's layout (its id and target
    columns): numbers with missing values and text categories, and a target that depends on both."""
    import numpy as np
    import pandas as pd

    n_train, n_test, n_num, n_cat = LARGE
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    numbers = rng.normal(size=(n, n_num))
    levels = [np.array([f"c{j}_{v}" for v in range(3 + 2 * j)]) for j in range(n_cat)]
    codes = [rng.integers(0, len(lv), n) for lv in levels]
    effect = sum(np.sin(code + j) for j, code in enumerate(codes[:4]))
    y = numbers[:, :8] @ rng.normal(size=8) + numbers[:, 0] * numbers[:, 1] + effect + rng.normal(0, 0.5, n)
    numbers[rng.random(numbers.shape) < 0.05] = np.nan
    frame = pd.DataFrame(numbers, columns=[f"x{i}" for i in range(n_num)])
    for j, (lv, code) in enumerate(zip(levels, codes, strict=True)):
        frame[f"cat{j}"] = lv[code]
    (id_col,), (target,) = competition.ids, competition.targets
    frame.insert(0, id_col, np.arange(1, n + 1))
    raw_dir.mkdir(parents=True, exist_ok=True)
    for old in raw_dir.glob("*.csv"):
        old.unlink()
    frame.iloc[:n_train].assign(**{target: y[:n_train]}).to_csv(raw_dir / competition.cfg.files.train, index=False)
    frame.iloc[n_train:].to_csv(raw_dir / competition.cfg.files.test, index=False)
    frame.iloc[n_train:][[id_col]].assign(**{target: 0.0}).to_csv(raw_dir / competition.cfg.files.sample_submission,
                                                                  index=False)
    (raw_dir / "SOURCE.json").write_text(json.dumps({"source": "generated:bench-large", "is_sample": True,
                                                     "seed": seed, "note": "GENERATED for scripts/bench.sh"}))


def prepare(ws: Copy, exp: Experiment, size: str, seed: int) -> dict:
    """The experiment's raw data (its offline sample, or the large table) through its dataset and feature folders."""
    from src.tools.bench_data import prepare_data
    from src.utils.competition.spec import load

    if size != "large":
        return prepare_data(ws, exp, "digits", seed)
    large_table(ws.root / exp.raw_dir, load(exp.competition), seed)
    try:
        ws.python(str(ws.root / "src/dataset" / exp.dataset / "make_dataset.py"), what=f"{exp.dataset}/make_dataset.py")
    except RuntimeError as exc:
        raise RuntimeError(f"--size large: {exp.dataset} (the dataset folder of {exp.name}) refused the generated "
                           f"table of numbers and text columns; benchmark a tree folder on the tabular stages "
                           f"(dataset03/feature03, e.g. model05)\n{exc}") from exc
    ws.python(str(ws.root / "src/feature" / exp.feature / "build_features.py"), what=f"{exp.feature}/build_features.py")
    return json.loads((ws.root / exp.feature_dir / "manifest.json").read_text())


def floor_spec(ws: Copy, exp: Experiment) -> dict[str, Any]:
    """The estimator node and early stopping as the folder's config composes them for `fold=all`."""
    import hydra
    from omegaconf import OmegaConf

    with hydra.initialize_config_dir(config_dir=str(ws.root / exp.config_dir)):
        cfg = hydra.compose("config", ["fold=all"])
    return {"estimator": OmegaConf.to_container(cfg.estimator, resolve=True),
            "early_stopping_rounds": cfg.get("early_stopping_rounds")}


def pairs(ws: Copy, exp: Experiment, repeats: int) -> tuple[list[float], list[dict]]:
    """`repeats` alternating pairs of (A) the workspace's fold=all run and (B) the bare loop."""
    spec, workspace, floor = json.dumps(floor_spec(ws, exp)), [], []
    for r in range(repeats):
        for side in (("A", "B") if r % 2 == 0 else ("B", "A")):
            say(f"pair {r + 1}/{repeats}: {'workspace fold=all (A)' if side == 'A' else 'bare loop (B)'} "
                f"(load {load_average()})")
            if side == "A":
                wall, _, _ = ws.python(str(ws.root / exp.train_py), "fold=all", f"experiment_name=bench-{exp.name}",
                                       what=f"{exp.train_py} fold=all (A)")
                workspace.append(wall)
            else:
                wall, _, out = ws.python("-m", "src.tools.bench_trees_floor", spec, str(ws.root / exp.feature_dir),
                                         what="the bare loop (B)")
                floor.append({"wall_s": wall, **json.loads(out.strip().splitlines()[-1])})
    return workspace, floor


def sweep(ws: Copy, exp: Experiment, trials: int) -> float:
    say(f"sweep: {trials} trials of {exp.train_py} -m {SWEEP} (load {load_average()})")
    wall, _, _ = ws.python(str(ws.root / exp.train_py), "-m", SWEEP, f"hydra.sweeper.n_trials={trials}",
                           f"hydra.sweeper.study_name=bench-{exp.name}-sweep", f"experiment_name=bench-{exp.name}",
                           what=f"{exp.train_py} -m (C)")
    return wall


def table(figures: dict[str, float], targets: dict[str, str], trials: int, size: str) -> str:
    limit = TARGETS["ratio_large" if size == "large" else "ratio_sample"]
    sweep = f"  target <= 60 s: {targets['sweep']}" if "sweep" in targets else ""
    swept = (f"{figures['sweep_s']:.1f} s ({figures['sweep_trial_s']:.2f} s a trial){sweep}"
             if figures["sweep_s"] == figures["sweep_s"] else "not run (--trials N runs it)")
    rows = [("workspace fold=all run (A)", f"{figures['workspace_fold_all_s']:.2f} s"),
            ("bare loop of the library (B)", f"{figures['floor_fold_all_s']:.2f} s (imports "
                                             f"{figures['floor_import_s']:.2f} s, fit {figures['floor_fit_s']:.2f} s)"),
            ("A / B", f"{figures['ratio']:.2f}x  target <= {limit}x: {targets['ratio']}"),
            (f"sweep of {trials} trials (C)", swept),
            ("OOF RMSE: bare loop", f"{figures['floor_oof_rmse']:.4f}")]
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"  {name:<{width}}  {value}" for name, value in rows)


def tree_figures(ws: Copy, exp: Experiment, args: Any, trials: int, stamp: str) -> int:
    """The tree benchmark in the copy: the data, the A/B pairs, the sweep; prints the table, writes the report."""
    say(f"copy of the workspace; tree folder {exp.name} (features {exp.feature_dir} from {exp.feature} <- "
        f"{exp.dataset}); preparing {'the large table' if args.size == 'large' else 'its offline sample'}")
    manifest = prepare(ws, exp, args.size, args.seed)
    load_before = load_average()
    workspace, floor = pairs(ws, exp, args.sweep_repeats)
    # the sweep's target is the sample's; on the large table it runs only when --trials asks for it
    sweep_s = sweep(ws, exp, trials) if args.size != "large" or args.trials else float("nan")
    med = statistics.median
    figures = {"workspace_fold_all_s": med(workspace), "floor_fold_all_s": med(f["wall_s"] for f in floor),
               "floor_import_s": med(f["import_s"] for f in floor), "floor_fit_s": med(f["fit_s"] for f in floor),
               "floor_oof_rmse": floor[0]["oof_rmse"], "sweep_s": sweep_s, "sweep_trial_s": sweep_s / trials}
    figures["ratio"] = figures["workspace_fold_all_s"] / figures["floor_fold_all_s"]
    limit = TARGETS["ratio_large" if args.size == "large" else "ratio_sample"]
    targets = {"ratio": "met" if figures["ratio"] <= limit else "MISSED"}
    if trials == 20 and args.size != "large":
        targets["sweep"] = "met" if sweep_s <= TARGETS["sweep_20_s"] else "MISSED"
    text = table(figures, targets, trials, args.size)
    report = {"bench": {"experiment": exp.name, "size": "large" if args.size == "large" else "sample",
                        "trials": trials, "pairs": args.sweep_repeats,
                        "train_shape": manifest.get("shapes", {}).get("train_x"), "cpus": os.cpu_count(),
                        "load_before": load_before, "load_after": load_average(), "created": stamp},
              "figures": figures, "targets": targets, "runs": {"workspace_s": workspace, "floor": floor},
              "table": text}
    path = args.out / f"bench_trees_{exp.name}_{'large' if args.size == 'large' else 'sample'}_{stamp}.json"
    path.write_text(json.dumps(report, indent=2, default=str))
    print(text)
    print(f"report: {path}")
    return 0

"""The small-table row of `bash scripts/bench.sh --size tiny`: what a `fold=all` run costs over its training.

(A) the workspace: `train.py fold=all` in the copy, as a user runs it (its early stopping, checkpoints, curves,
    OOF and test predictions, plots, models: every record kept); the epochs each fold trained are read back
    from its run;
(B) the floor: src/tools/bench_floor.py --fold-epochs, the same network, optimizer, schedule, batches and seeds,
    each fold trained for the epochs A's fold trained, in a plain loop with nothing recorded.
Both are timed as processes, imports included (what a user waits for). The target: A within 3x of B.
"""

from __future__ import annotations

import json
import re
from typing import Any

from src.tools.bench_experiment import Experiment
from src.tools.bench_workspace import Copy, say

TARGET = 3.0


def workspace_fold_all(ws: Copy, exp: Experiment, epochs: int | None = None) -> dict[str, Any]:
    """A's run (a network's to `epochs` per fold when given): its process wall and CPU, the epochs each fold
    trained and its CV mean of the monitor."""
    import mlflow

    cap = exp.epochs_override(epochs)
    wall, cpu, out = ws.python(str(ws.root / exp.train_py), "fold=all", *cap, what=f"{exp.train_py} fold=all (A)")
    found = re.search(r"run_id=(\w+)", out)
    if not found:
        raise RuntimeError(f"{exp.train_py} fold=all printed no run_id; re-run with --keep and look at its log")
    client = mlflow.MlflowClient(f"sqlite:///{ws.root / 'logs/mlruns/mlflow.db'}")
    run = client.get_run(found.group(1))
    monitor = run.data.params["monitor"]
    folds = sorted(int(k[4:].split("_", 1)[0]) for k in run.data.metrics if re.fullmatch(rf"fold\d+_best_{monitor}", k))
    epochs = [len(client.get_metric_history(run.info.run_id, f"fold{k}-{monitor}")) for k in folds]
    return {"wall_s": wall, "cpu_s": cpu, "run_id": run.info.run_id, "fold_epochs": epochs,
            "cv": run.data.metrics[f"best_{monitor}"], "monitor": monitor}


def small_table(ws: Copy, exp: Experiment, stamp: str, out_dir: Any, epochs: int | None = None) -> dict[str, Any]:
    """A and B side by side (`epochs`: --epochs when given, else the folder's max_epochs and early stopping);
    prints the row and writes bench_small_<experiment>_<stamp>.json."""
    say(f"small table: {exp.train_py} fold=all against a bare loop of the same epochs")
    a = workspace_fold_all(ws, exp, epochs)
    out_file = ws.cwd / "small-table-B.json"
    wall, cpu, _ = ws.python("-m", "src.tools.bench_floor", "--config-dir", str(ws.root / exp.config_dir),
                             "--feature-dir", str(ws.root / exp.feature_dir), "--fold-epochs",
                             ",".join(map(str, a["fold_epochs"])), "--out", str(out_file), what="the floor (B)")
    b = {"wall_s": wall, "cpu_s": cpu, **json.loads(out_file.read_text())}
    b.pop("events", None)
    ratio = a["wall_s"] / b["wall_s"]
    cv_b = sum(b["fold_best"]) / len(b["fold_best"])
    row = {"experiment": exp.name, "epochs": sum(a["fold_epochs"]), "fold_epochs": a["fold_epochs"],
           "workspace_wall_s": a["wall_s"], "floor_wall_s": b["wall_s"], "ratio": ratio, "target": TARGET,
           "met": ratio <= TARGET, "workspace_cv": a["cv"], "floor_cv": cv_b, "monitor": a["monitor"]}
    print(f"| fold=all run, {exp.name}, {sum(a['fold_epochs'])} epochs in {len(a['fold_epochs'])} folds | "
          f"{a['wall_s']:.1f} s | {b['wall_s']:.1f} s | {ratio:.2f}x | <= {TARGET:g}x "
          f"{'ok' if ratio <= TARGET else 'MISSED'} | CV {a['monitor']} {a['cv']:.4f} vs {cv_b:.4f} |")
    path = out_dir / f"bench_small_{exp.name}_{stamp}.json"
    path.write_text(json.dumps({"row": row, "workspace": a, "floor": b}, indent=2))
    print(f"report: {path}")
    return row

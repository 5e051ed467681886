"""`bash scripts/bench.sh --ensemble`: how long blending takes at Kaggle size, per method.

In the benchmark's throw-away copy of the workspace, `--members` (20) synthetic `fold=all` runs of the digit
competition are recorded the way training records them (tags, params, metrics, `predictions/oof.npz`,
`predictions/test_scores.npy`, `test_predictions.csv` with the ids): MNIST's size (42,000 OOF rows, 28,000 test
rows, 10 classes), each member a noisy copy of the truth with its own strength, so their accuracies spread and their
errors correlate as real members' do. Then `src/ensemble/ensemble01/blend.py members.experiments=[model01]
members.top_k=N` runs once per method as a user runs it, and its phases (check the members, read their arrays, fit,
nested CV, score, record) are read from its log. The report (a table and JSON under outputs/bench/) gives each
method's wall time, its phases, and the blend's accuracy in-sample and nested beside the best member's.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from pathlib import Path

import numpy as np

METHODS = ("hill_climbing", "mean", "rank_mean", "stacking")


def make_members(n_members: int, n_train: int, n_test: int, seed: int = 0) -> list[str]:
    """Record `n_members` synthetic fold=all runs of model01 in this workspace's store; their run_ids."""
    import mlflow

    from src.utils.data.cv import folds_hash
    from src.utils.track.tracking import get_or_create_experiment, setup_mlflow

    setup_mlflow()
    experiment_id = get_or_create_experiment("model01")
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n_train)
    folds = rng.permutation(np.arange(n_train) % 5)
    shared_train = rng.normal(size=(n_train, 10))  # the part of the errors every member shares
    shared_test = rng.normal(size=(n_test, 10))
    test_y = rng.integers(0, 10, n_test)
    ids = []

    def softmax(z: np.ndarray) -> np.ndarray:
        e = np.exp(z - z.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    for m in range(n_members):
        strength = 2.2 + 1.4 * m / max(n_members - 1, 1)
        oof = softmax(strength * np.eye(10)[y] + 0.8 * shared_train + rng.normal(size=(n_train, 10)))
        test = softmax(strength * np.eye(10)[test_y] + 0.8 * shared_test + rng.normal(size=(n_test, 10)))
        accuracy = float((oof.argmax(1) == y).mean())
        with mlflow.start_run(experiment_id=experiment_id, run_name=f"synthetic member {m}") as run:
            mlflow.set_tags({"stage": "model", "competition": "digit-recognizer", "task": "multiclass",
                             "competition_metric": "accuracy", "folds_hash": folds_hash(folds),
                             "experiment_folder": "src/model/model01"})
            mlflow.log_params({"fold": "all", "monitor": "val_acc", "monitor_mode": "max"})
            mlflow.log_metrics({"best_val_acc": accuracy, "oof_accuracy": accuracy})
            with tempfile.TemporaryDirectory() as tmp:
                np.savez(Path(tmp) / "oof.npz", rows=np.arange(n_train), folds=folds, y=y, scores=oof)
                np.save(Path(tmp) / "test_scores.npy", test)
                labels = "".join(f"{i},{k}\n" for i, k in enumerate(test.argmax(1), start=1))
                (Path(tmp) / "test_predictions.csv").write_text("ImageId,Label\n" + labels)
                for name in ("oof.npz", "test_scores.npy"):
                    mlflow.log_artifact(str(Path(tmp) / name), artifact_path="predictions")
                mlflow.log_artifact(str(Path(tmp) / "test_predictions.csv"))
            ids.append(run.info.run_id)
    return ids


def phases(log: str) -> dict[str, float]:
    line = re.search(r"timings: (.*)$", log, re.M)
    return {k: float(v) for k, v in re.findall(r"(\w+) ([\d.]+) s", line.group(1))} if line else {}


def ensemble_figures(ws, args, stamp: str) -> int:
    """Run by src/tools/bench.py in its copy `ws` (a bench.Copy)."""
    from src.tools.bench_workspace import say

    n_train, n_test = args.ensemble_rows
    raw = ws.root / "_data/data/raw"
    raw.mkdir(parents=True, exist_ok=True)  # the submission is checked against the competition's sample
    (raw / "sample_submission.csv").write_text("ImageId,Label\n" + "".join(f"{i},0\n" for i in range(1, n_test + 1)))
    say(f"recording {args.members} synthetic fold=all members ({n_train:,} OOF rows, {n_test:,} test rows, "
        f"10 classes)")
    wall, _, _ = ws.python("-m", "src.tools.bench_ensemble", "--make-members", str(args.members), str(n_train),
                           str(n_test), what="recording the synthetic members")
    say(f"members recorded in {wall:.1f} s")
    rows = []
    for method in args.methods:
        say(f"blending {args.members} members: method={method}")
        wall, cpu, out = ws.python(str(ws.root / "src/ensemble/ensemble01/blend.py"), "members.experiments=[model01]",
                                   f"members.top_k={args.members}", f"method={method}", what=f"method={method}")
        scores = dict(re.findall(r"(\w+_accuracy)=([\d.]+)", out))
        rows.append({"method": method, "wall_s": wall, "cpu_s": cpu, **phases(out),
                     **{k: float(v) for k, v in scores.items()}})
    report = {"members": args.members, "oof_rows": n_train, "test_rows": n_test, "classes": 10, "methods": rows}
    header = ["method", "wall s", "members s", "read s", "fit s", "nested s", "score s", "record s", "best member",
              "blend", "blend (nested)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        cells = [r["method"], f"{r['wall_s']:.1f}", *(f"{r.get(k, float('nan')):.2f}" for k in
                                                     ("members", "read", "fit", "nested", "score", "record")),
                 *(f"{r.get(k, float('nan')):.4f}" for k in ("best_member_oof_accuracy", "oof_accuracy",
                                                             "nested_oof_accuracy"))]
        lines.append("| " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    print(f"\nBlending {args.members} members, {n_train:,} OOF rows x 10 classes ({n_test:,} test rows); wall time of "
          f"the whole command (Python, imports and MLflow included) and its phases:\n\n{table}\n")
    out = args.out / f"bench_ensemble_{stamp}.json"
    out.write_text(json.dumps(report, indent=2))
    print(f"report: {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="record synthetic ensemble members (run by bench.sh --ensemble)")
    parser.add_argument("--make-members", nargs=3, type=int, metavar=("N", "TRAIN", "TEST"), required=True)
    args = parser.parse_args(argv)
    ids = make_members(*args.make_members)
    print(" ".join(ids))
    return 0


if __name__ == "__main__":
    from src.utils.cli.setup import setup

    setup()  # the environment, resolvers and plugins, before anything else runs
    sys.exit(main())

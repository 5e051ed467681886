"""The floor of the tree benchmark: a bare K-fold loop of one boosting library, nothing of the workspace.

    python -m src.tools.bench_trees_floor '{"estimator": {...}, "early_stopping_rounds": 30}' <feature folder>

It imports the library, reads the feature folder's files as they lie (train_x.parquet or .npy, train_y.npy,
folds.npy, test_x), and for each fold fits the estimator with the library's own early stopping on the validation
rows, predicting the validation and test rows: what a Kaggler writes by hand. It prints one JSON line: the seconds
spent importing, reading and fitting, the rounds kept per fold, and the OOF root mean squared error (a check that
both sides learnt the same thing). It imports nothing from src/ (tests/test_bench.py checks it).
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from pathlib import Path
from typing import Any


def read(folder: Path, name: str) -> Any:
    import numpy as np
    import pandas as pd

    if (folder / f"{name}.parquet").is_file():
        return pd.read_parquet(folder / f"{name}.parquet")
    return np.load(folder / f"{name}.npy")


def fit(est: Any, library: str, train: tuple, valid: tuple, stop: int | None, categorical: list[str]) -> int:
    """One fold with the library's early stopping; the number of rounds it kept."""
    if library == "lightgbm":
        import lightgbm as lgb

        callbacks = [lgb.early_stopping(stop, first_metric_only=True, verbose=False)] if stop else []
        est.fit(*train, eval_set=[valid], callbacks=callbacks)
        return int(est.best_iteration_ or est.n_estimators)
    if library == "xgboost":
        est.set_params(early_stopping_rounds=stop, enable_categorical=bool(categorical))
        est.fit(*train, eval_set=[valid], verbose=False)
        return int(getattr(est, "best_iteration", est.n_estimators - 1)) + 1
    if library == "catboost":
        est.fit(*train, eval_set=valid, early_stopping_rounds=stop, cat_features=categorical or None, verbose=False)
        return int(est.get_best_iteration() or 0) + 1
    est.fit(*train)
    return 0


def main(spec: dict[str, Any], stop: int | None, folder: Path) -> dict[str, Any]:
    """`spec`: the estimator node as the folder's config composes it (its `_target_` and keyword arguments)."""
    t0 = time.perf_counter()
    module, name = spec["_target_"].rsplit(".", 1)
    estimator_class = getattr(importlib.import_module(module), name)
    import numpy as np

    t1 = time.perf_counter()
    x, y, folds, test = read(folder, "train_x"), np.load(folder / "train_y.npy"), np.load(folder / "folds.npy"), \
        read(folder, "test_x")
    categorical = [c for c in getattr(x, "columns", []) if str(x[c].dtype) == "category"]
    t2 = time.perf_counter()
    params = {k: v for k, v in spec.items() if k != "_target_"}
    oof, rounds = np.zeros(len(y)), []
    take = (lambda a, rows: a.iloc[rows]) if hasattr(x, "iloc") else (lambda a, rows: a[rows])
    for k in sorted(int(f) for f in np.unique(folds) if f >= 0):
        tr, va = np.flatnonzero(folds != k), np.flatnonzero(folds == k)
        est = estimator_class(**params)
        rounds.append(fit(est, module.split(".")[0], (take(x, tr), y[tr]), (take(x, va), y[va]), stop,
                          categorical))
        oof[va] = np.asarray(est.predict(take(x, va)), dtype=np.float64).reshape(len(va), -1)[:, 0]
        est.predict(test)
    t3 = time.perf_counter()
    rows = folds >= 0
    rmse = float(np.sqrt(np.mean((oof[rows] - np.asarray(y, dtype=np.float64).reshape(len(y), -1)[rows, 0]) ** 2)))
    return {"import_s": t1 - t0, "read_s": t2 - t1, "fit_s": t3 - t2, "rounds": rounds, "oof_rmse": rmse,
            "n_train": int(len(y)), "n_features": int(x.shape[1])}


if __name__ == "__main__":
    given = json.loads(sys.argv[1])
    print(json.dumps(main(given["estimator"], given.get("early_stopping_rounds"), Path(sys.argv[2]))))

"""The diabetes-sample competition's files, made offline from scikit-learn's bundled diabetes data.

    bash scripts/prepare_data.sh --competition diabetes-sample

train.csv (id, 10 measurements, target), test.csv (id, 10 measurements) and sample_submission.csv (id, target),
as a Kaggle competition ships them; the test rows' targets are held back, as on Kaggle.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from src.utils.io import atomic_file, read_json, write_json


def prepare_sample(raw_dir: Path, test_fraction: float = 0.2, seed: int = 0, n_rows: int | None = None) -> dict:
    """Write the three CSVs and SOURCE.json into `raw_dir`; `n_rows` keeps only that many rows (tests)."""
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True, scaled=False).frame
    if n_rows:
        frame = frame.sample(n=min(n_rows, len(frame)), random_state=seed)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(frame))
    frame = frame.iloc[order].reset_index(drop=True)
    frame.insert(0, "id", np.arange(1, len(frame) + 1) * 7 + 1000)  # ids as a competition has them: not 0..n-1
    n_test = int(round(len(frame) * test_fraction))
    test, train = frame.iloc[:n_test], frame.iloc[n_test:]
    raw_dir.mkdir(parents=True, exist_ok=True)
    (raw_dir / "SOURCE.json").unlink(missing_ok=True)
    for name, df in (("train.csv", train), ("test.csv", test.drop(columns="target")),
                     ("sample_submission.csv", pd.DataFrame({"id": test["id"], "target": 0.0}))):
        with atomic_file(raw_dir / name) as f:
            df.to_csv(f, index=False)
    write_json(raw_dir / "SOURCE.json", {
        "source": "sample:sklearn-diabetes", "is_sample": True, "seed": seed, "test_fraction": test_fraction,
        "note": "SAMPLE DATA: scikit-learn's diabetes data laid out as a competition", "train_rows": len(train),
        "test_rows": len(test), "created": datetime.now(UTC).isoformat(timespec="seconds")})
    return read_json(raw_dir / "SOURCE.json")

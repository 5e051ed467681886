"""Shared fixtures: a throw-away copy of the workspace, and small generated data files.

Stage scripts run as real subprocesses inside the copy (PYTHONPATH points at it, so its `src` and its
paths are used), from a current directory outside it, so nothing touches the developer's own workspace.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
PIXELS = [f"pixel{i}" for i in range(784)]


@dataclass
class Workspace:
    root: Path
    cwd: Path

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "HYDRA_"))}
        env.update(PYTHONPATH=str(self.root), MLFLOW_DISABLE_TELEMETRY="true", **extra)
        return env

    def python(self, *args: str, timeout: int = 600, **env: str) -> subprocess.CompletedProcess:
        """Run the workspace's Python (from another cwd) and capture its output."""
        return subprocess.run([sys.executable, *args], cwd=self.cwd, env=self.env(**env),
                              capture_output=True, text=True, timeout=timeout)

    def script(self, rel: str, *args: str, **kw) -> subprocess.CompletedProcess:
        return self.python(str(self.root / rel), *args, **kw)

    def bash(self, rel: str, *args: str, timeout: int = 600, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", str(self.root / rel), *args], cwd=self.cwd, env=self.env(**env),
                              capture_output=True, text=True, timeout=timeout)

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{self.root / 'logs' / 'mlruns' / 'mlflow.db'}"

    def client(self):
        import mlflow

        return mlflow.MlflowClient(tracking_uri=self.tracking_uri)


def make_workspace(dest: Path) -> Workspace:
    dest.mkdir(parents=True)
    for name in ("src", "config", "scripts", "notebooks", "diary"):
        if (REPO / name).exists():
            shutil.copytree(REPO / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    for sub in ("_data/data/raw", "_data/feature", "logs/mlruns", "logs/lightning", "outputs", "multirun"):
        (dest / sub).mkdir(parents=True, exist_ok=True)
    (dest / ".venv").symlink_to(REPO / ".venv")  # the scripts call .venv/bin/python
    cwd = dest.parent / "elsewhere"
    cwd.mkdir(exist_ok=True)
    return Workspace(root=dest, cwd=cwd)


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return make_workspace(tmp_path / "ws")


def random_digits(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    rng.shuffle(labels)
    images = rng.integers(0, 256, size=(n, 784), dtype=np.uint8)
    return labels, images


def write_kaggle_csvs(folder: Path, n_train: int = 120, n_test: int = 30, seed: int = 0) -> Path:
    """Small, valid Kaggle-layout CSVs."""
    folder.mkdir(parents=True, exist_ok=True)
    labels, images = random_digits(n_train, seed)
    train = pd.DataFrame(images, columns=PIXELS)
    train.insert(0, "label", labels)
    train.to_csv(folder / "train.csv", index=False)
    _, test_images = random_digits(n_test, seed + 1)
    pd.DataFrame(test_images, columns=PIXELS).to_csv(folder / "test.csv", index=False)
    pd.DataFrame({"ImageId": np.arange(1, n_test + 1), "Label": 0}).to_csv(
        folder / "sample_submission.csv", index=False)
    return folder

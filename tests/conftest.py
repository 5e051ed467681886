"""Shared fixtures: a throw-away copy of the workspace (empty, or prepared with the offline sample data run
through dataset01 and feature01), and small generated data files.

Stage scripts run as real subprocesses inside the copy (PYTHONPATH points at it, so its `src` and its
paths are used), from a current directory outside it, so nothing touches the developer's own workspace.
The prepared workspace is built once per session and copied for each module that asks for one, so modules
never see each other's runs.

Nothing of the developer's own set-up reaches a test: the repository's `.env` is ignored (WORKSPACE_DOTENV=0),
and the variables that point at real services or credentials (MLflow, Optuna, Kaggle, the workspace's own) are
removed from this process and from every subprocess; Kaggle's CLI config folder is an empty one.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

# What a developer's shell or .env may hold that would send test runs to real services or accounts (SLURM_: a
# cluster's configuration, or the job the suite runs in, which would make test runs look like SLURM jobs).
USER_PREFIXES = ("MLFLOW_", "HYDRA_", "OPTUNA_", "KAGGLE_", "WORKSPACE_", "DATABASE_URL", "PG", "SLURM_")
for _name in [n for n in os.environ if n.startswith(USER_PREFIXES)]:
    del os.environ[_name]
os.environ["WORKSPACE_DOTENV"] = "0"  # the set-up below (and every subprocess's) then ignores .env
os.environ["KAGGLE_CONFIG_DIR"] = str(Path(__file__).resolve().parent / "no-kaggle-config")  # never ~/.kaggle

# Each pytest-xdist worker gets its share of the cores for torch's (OpenMP's) threads, in its own process and in
# every run it starts. Left at one thread per core each, two workers' trainings on two cores spin-wait on each other:
# an epoch of the digit sample took 19 s instead of 5 s when two ran at once.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_name, str(max(1, (os.cpu_count() or 1) // _WORKERS)))


def pytest_configure(config) -> None:
    """The in-process tests run the workspace code as an entry point does: after its one set-up."""
    from src.utils.cli.setup import setup

    setup()



# The modules that take longest (minutes of subprocess runs each, measured in a full run), started first: a worker
# that takes one of them last would keep the suite waiting for it alone. The others follow in their usual order.
# scripts/test.sh turns off pytest-xdist's own reordering (by number of tests) so that this order is the one used.
HEAVIEST_FIRST = ("test_documented_bench", "test_slurm", "test_documented_pages", "test_documented_commands",
                  "test_sweeper", "test_services", "test_documented_fresh", "test_model01", "test_robustness",
                  "test_kaggle", "test_competitions", "test_ensembles",
                  "test_experiments", "test_ensemble_folders")  # the fast suite's two longest, on two workers


def pytest_collection_modifyitems(config, items) -> None:
    rank = {name: i for i, name in enumerate(HEAVIEST_FIRST)}
    items.sort(key=lambda item: rank.get(Path(item.nodeid.split("::")[0]).stem, len(rank)))


@pytest.fixture(autouse=True)
def _collector_as_it_was():
    """An in-process run that stops before the harness resumes the collector (a refused config, a pruned
    trial) leaves it paused, as a real process would until it exits; the next test gets it back as it was."""
    import gc

    was = gc.isenabled()
    yield
    if was and not gc.isenabled():
        gc.enable()


REPO = Path(__file__).resolve().parents[1]
PIXELS = [f"pixel{i}" for i in range(784)]


@dataclass
class Workspace:
    root: Path
    cwd: Path

    def env(self, **extra: str) -> dict[str, str]:
        # a copy has no .env unless a test writes one, and then it is read as a user's would be
        env = {k: v for k, v in os.environ.items() if not k.startswith(USER_PREFIXES)}
        env.update(PYTHONPATH=str(self.root), MLFLOW_DISABLE_TELEMETRY="true",
                   KAGGLE_CONFIG_DIR=str(self.root / "no-kaggle-config"))
        env.update(extra)
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


def ctrl_c_reaches_it() -> None:
    """A `preexec_fn` for a process a test interrupts with SIGINT, as Ctrl-C at a terminal would: a suite started
    in the background of a non-interactive shell (`bash scripts/test.sh &`, a CI runner) passes SIGINT down
    ignored, and a process that inherits it ignored keeps it so (as `nohup` asks), so the signal would never land."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def make_workspace(dest: Path) -> Workspace:
    dest.mkdir(parents=True)
    for name in ("src", "config", "scripts", "notebooks", "diary", "tests", "pyproject.toml", "poetry.lock",
                 "poetry.toml"):
        if (REPO / name).exists():
            if (REPO / name).is_dir():
                shutil.copytree(REPO / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(REPO / name, dest / name)
    for sub in ("_data/data/raw", "_data/feature", "logs/mlruns", "logs/lightning", "logs/jobs", "outputs", "multirun"):
        (dest / sub).mkdir(parents=True, exist_ok=True)
    (dest / ".venv").symlink_to(REPO / ".venv")  # the scripts call .venv/bin/python
    cwd = dest.parent / "elsewhere"
    cwd.mkdir(exist_ok=True)
    return Workspace(root=dest, cwd=cwd)


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return make_workspace(tmp_path / "ws")


@pytest.fixture(scope="session")
def prepared_template(tmp_path_factory) -> Workspace:
    """The offline sample data through prepare_data.sh, dataset01 and feature01, once per session."""
    ws = make_workspace(tmp_path_factory.mktemp("prepared") / "ws")
    for kind, rel in (("bash", "scripts/prepare_data.sh"), ("script", "src/dataset/dataset01/make_dataset.py"),
                      ("script", "src/feature/feature01/build_features.py")):
        res = getattr(ws, kind)(rel)
        assert res.returncode == 0, res.stderr[-3000:]
    return ws


def copy_prepared(template: Workspace, dest: Path) -> Workspace:
    """A copy of the prepared workspace (its data, features and the MLflow runs that built them)."""
    shutil.copytree(template.root, dest, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    res = subprocess.run([sys.executable, "-c", "from src.utils.track.store import relocate_store; relocate_store()"],
                         cwd=dest, env={**os.environ, "PYTHONPATH": str(dest)}, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    cwd = dest.parent / "elsewhere"
    cwd.mkdir(exist_ok=True)
    return Workspace(root=dest, cwd=cwd)


@pytest.fixture(scope="module")
def prepared(prepared_template: Workspace, tmp_path_factory) -> Workspace:
    """This module's own copy of the prepared workspace."""
    return copy_prepared(prepared_template, tmp_path_factory.mktemp("module") / "ws")


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

"""The throw-away copy of the project that scripts/bench.sh measures in, and the way commands run inside it.

`make_copy` copies the code, configs and scripts (the virtual environment linked, the code byte-compiled) into
outputs/bench/work-*, with empty data, log and output folders, so the user's own logs/, _data/ and MLflow store are
never touched; `Copy` runs commands there with the copy's `src` on the path and without the user's MLflow, Hydra
and Optuna settings, timing each one (wall and CPU) and failing loudly with the tail of its output.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from src.utils.core.paths import ROOT


def say(msg: str) -> None:
    print(f"[bench] {msg}", flush=True)


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def make_copy(dest: Path) -> Path:
    """A copy of the project as tests/conftest.py makes it (code, configs, scripts; .venv linked), byte-compiled."""
    dest.mkdir(parents=True)
    for name in ("src", "config", "scripts"):
        shutil.copytree(ROOT / name, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for sub in ("_data/data/raw", "_data/feature", "logs/mlruns", "logs/lightning", "outputs", "multirun"):
        (dest / sub).mkdir(parents=True, exist_ok=True)
    (dest / ".venv").symlink_to(ROOT / ".venv")
    # The installed packages are byte-compiled by scripts/setup.sh; the copy's own code is compiled here, so
    # no run pays for it (PYTHONDONTWRITEBYTECODE, common in containers, would make every run pay).
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(dest / "src")], check=True,
                   env={**os.environ, "PYTHONDONTWRITEBYTECODE": ""}, stdout=subprocess.DEVNULL)
    return dest


class Copy:
    """The throw-away workspace: runs its scripts with its own `src` and store, never the user's."""

    def __init__(self, root: Path, threads: int | None) -> None:
        self.root, self.threads = root, threads
        self.cwd = root.parent

    def env(self) -> dict[str, str]:
        # The user's MLFLOW_TRACKING_URI / OPTUNA_STORAGE would send the copy's runs to the user's stores.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "HYDRA_", "OPTUNA_"))}
        env.update(PYTHONPATH=str(self.root), MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true")
        if self.threads:
            env.update(OMP_NUM_THREADS=str(self.threads), MKL_NUM_THREADS=str(self.threads))
        return env

    def run(self, args: list[str], what: str, timeout: float = 7200) -> tuple[float, float, str]:
        """Run a command in the copy; (wall s, CPU s of it and its children, stdout). Fails loudly."""
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        res = subprocess.run(args, cwd=self.cwd, env=self.env(), capture_output=True, text=True, timeout=timeout)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if res.returncode != 0:
            tail = "\n".join((res.stdout + res.stderr).strip().splitlines()[-25:])
            raise RuntimeError(f"{what} failed (exit {res.returncode}) in {self.root}:\n{tail}\n"
                               f"(re-run with --keep to inspect the copy)")
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return wall, cpu, res.stdout

    def python(self, *args: str, what: str) -> tuple[float, float, str]:
        return self.run([sys.executable, *args], what)

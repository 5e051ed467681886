"""The suite never reaches a developer's real services or accounts.

A copy of the workspace gets a `.env` with Kaggle credentials and an `OPTUNA_STORAGE`, the shell exports another
`OPTUNA_STORAGE` and an `MLFLOW_TRACKING_URI`, `~/.kaggle/kaggle.json` holds credentials and a `kaggle` command on
the PATH records every call. Tests that sweep and that push are run there with pytest: they pass, no storage named
by the developer's set-up is ever created, and `kaggle` is never called.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import make_workspace

pytestmark = pytest.mark.slow
SELECTED = ["tests/test_kaggle.py::test_push_without_credentials_is_one_error_line",
            "tests/test_sweeper.py::test_a_trial_refused_before_its_run_fails_in_optuna_and_the_sweep_goes_on"]


def test_a_developers_env_and_credentials_never_reach_the_tests(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    trap = tmp_path / "developer"
    (trap / "bin").mkdir(parents=True)
    (trap / "home/.kaggle").mkdir(parents=True)
    (trap / "home/.kaggle/kaggle.json").write_text(json.dumps({"username": "dev", "key": "dev-real-key"}))
    kaggle = trap / "bin/kaggle"
    kaggle.write_text(f"#!/bin/sh\necho \"$@\" >> {trap / 'kaggle-calls'}\n")
    kaggle.chmod(0o755)
    (ws.root / ".env").write_text(f"KAGGLE_USERNAME=dev\nKAGGLE_KEY=dev-dotenv-key\n"
                                  f"OPTUNA_STORAGE=sqlite:///{trap / 'optuna-dotenv.db'}\n")
    env = {k: v for k, v in os.environ.items() if k not in ("WORKSPACE_DOTENV", "KAGGLE_CONFIG_DIR")}
    env.update(OPTUNA_STORAGE=f"sqlite:///{trap / 'optuna-exported.db'}",
               MLFLOW_TRACKING_URI=f"sqlite:///{trap / 'mlflow-exported.db'}",
               KAGGLE_USERNAME="dev", KAGGLE_KEY="dev-exported-key", HOME=str(trap / "home"),
               PATH=f"{trap / 'bin'}:{env['PATH']}", PYTHONPATH=str(ws.root))
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *SELECTED], cwd=ws.root,
                         env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert "2 passed" in res.stdout, res.stdout[-2000:]
    assert sorted(p.name for p in trap.iterdir()) == ["bin", "home"]  # no storage created, kaggle never called

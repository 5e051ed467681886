"""scripts/bench.sh on a tiny generated set: it runs end to end and its JSON report has every field.

Timings are a benchmark, not a test: nothing here checks how fast anything is, only that every figure the
report promises is there, is a finite number, and that both sides of the comparison did the same work.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow

FIGURES = (
    "workspace_wall_s", "floor_wall_s", "sweep_ratio",                                  # total wall, A/B
    "fixed_cost_per_trial_s", "fixed_cost_mean_s", "fixed_cost_first_trial_s",          # per trial, A - B
    "training_diff_per_trial_s",
    "workspace_trial_s", "floor_trial_s", "workspace_train_epochs_s", "floor_train_epochs_s",
    "workspace_samples_per_s", "floor_samples_per_s", "throughput_ratio",               # throughput
    "cold_start_s", "sweep_first_step_s", "floor_first_step_s",                         # cold start
    "load_run_s", "load_run_cold_s", "mlflow_ui_s",
)
TARGETS = ("sweep_ratio", "fixed_cost_per_trial_s", "throughput_ratio", "cold_start_s", "load_run_s")


def test_bench_runs_on_a_tiny_set_and_reports_every_field(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "HYDRA_", "OPTUNA_"))}
    res = subprocess.run(["bash", str(REPO / "scripts/bench.sh"), "--size", "tiny", "--trials", "2", "--epochs", "1",
                          "--repeats", "1", "--out", str(tmp_path)],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]

    (path,) = tmp_path.glob("bench_tiny_*.json")
    report = json.loads(path.read_text())
    for key in FIGURES:
        value = report["figures"][key]
        assert isinstance(value, float) and math.isfinite(value), key
    for key in TARGETS:
        assert set(report["targets"][key]) >= {"value", "limit", "met"}, key
    bench = report["bench"]
    assert bench["size"] == "tiny" and bench["trials"] == 2 and bench["epochs"] == 1
    assert bench["n_train"] + bench["n_valid"] == 500 and bench["load_before"] and bench["load_after"]
    # the same work on both sides: the same sampled parameters, the same accuracies
    assert bench["same_params"] is True and bench["max_objective_gap"] < 1e-4
    for side in ("workspace", "floor"):
        (run,) = report["runs"][side]
        assert len(run["trials"]) == 2 and all(t["samples"] == bench["n_train"] for t in run["trials"])

    assert report["table"] in res.stdout and "fixed cost per trial" in report["table"]
    assert not list(tmp_path.glob("work-*")), "the throw-away copy is removed unless --keep is given"
    assert not (REPO / "outputs" / "bench").joinpath(path.name).exists()

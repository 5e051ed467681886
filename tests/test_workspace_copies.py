"""A copied or moved workspace works on its own folder, or refuses with one line naming both folders; it never
reads or writes the other workspace's files."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO, Workspace


def test_the_venv_finds_the_root_it_lies_in(workspace: Workspace) -> None:
    """The .venv's path file computes the project root from where the .venv is, not from where it was made."""
    python = workspace.root / ".venv/bin/python"  # a link to this checkout's .venv, as in a second checkout
    res = subprocess.run([str(python), "-c", "import src; print(src.__file__)"], cwd=workspace.cwd,
                         capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert res.returncode == 0, res.stderr
    assert Path(res.stdout.strip()) == workspace.root / "src/__init__.py"


def test_another_workspaces_python_refuses_in_one_line(workspace: Workspace) -> None:
    before = sorted(p for p in (REPO / "logs").rglob("*"))
    res = subprocess.run([str(REPO / ".venv/bin/python"), str(workspace.root / "src/model/model01/train.py")],
                         cwd=workspace.cwd, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert res.returncode != 0
    (line,) = res.stderr.strip().splitlines()
    assert line.startswith("error: ") and str(workspace.root) in line and str(REPO) in line
    assert sorted(p for p in (REPO / "logs").rglob("*")) == before  # nothing written into the other workspace


@pytest.mark.slow
def test_a_copied_store_is_refused_until_setup_points_it_here(prepared_template: Workspace, tmp_path: Path) -> None:
    original = prepared_template.root
    copy = tmp_path / "copy"
    shutil.copytree(original, copy, symlinks=True)
    ws = Workspace(root=copy, cwd=tmp_path)
    artifacts_before = sorted(p.name for p in (original / "logs/mlruns/artifacts").rglob("*"))

    res = ws.script("src/model/model01/train.py", "debug=true")
    assert res.returncode != 0
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(original) in errors[0] and "bash scripts/setup.sh" in errors[0], res.stderr

    res = subprocess.run(["bash", str(copy / "scripts/setup.sh")], cwd=tmp_path, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    assert f"MLflow store moved from {original}" in res.stdout

    res = ws.script("src/model/model01/train.py", "debug=true")
    assert res.returncode == 0, res.stderr[-3000:]
    run_id = res.stdout.split("run_id=")[1].split()[0]
    run = ws.client().get_run(run_id)
    assert run.info.artifact_uri.startswith((copy / "logs/mlruns/artifacts").as_uri())
    dataset_run = ws.client().search_runs([ws.client().get_experiment_by_name("dataset01").experiment_id])[0]
    assert ws.client().list_artifacts(dataset_run.info.run_id)  # the copied artifacts are found in the copy
    assert sorted(p.name for p in (original / "logs/mlruns/artifacts").rglob("*")) == artifacts_before


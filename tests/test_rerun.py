"""scripts/rerun.sh: a CPU run re-executed from MLflow alone reproduces its metric exactly, with the code logged
with it (not today's); changed features are refused with one line saying which and how to rebuild."""

from __future__ import annotations

import pytest

from tests.conftest import Workspace

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ws(prepared: Workspace) -> Workspace:
    return prepared


@pytest.fixture(scope="module")
def run_id(ws: Workspace) -> str:
    res = ws.script("src/model/model01/train.py", "max_epochs=2", "dropout=0.1")
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout.split("run_id=")[1].split()[0]


def test_rerun_reproduces_the_run_with_its_logged_code(ws: Workspace, run_id: str) -> None:
    # today's folder is edited after the run: the re-run still runs the code the run was trained with
    model_py = ws.root / "src/model/model01/model.py"
    original = model_py.read_text()
    model_py.write_text(original.replace("return self.head(self.features(x))",
                                         "return 0 * self.head(self.features(x))"))
    try:
        again = ws.bash("scripts/rerun.sh", run_id)
    finally:
        model_py.write_text(original)
    assert again.returncode == 0, again.stdout + again.stderr[-3000:]
    client = ws.client()
    logged = client.get_run(run_id).data.metrics["best_val_acc"]
    line = next(x for x in again.stdout.splitlines() if x.startswith("best_val_acc:"))
    assert f"logged {logged!r}, reproduced {logged!r} -> equal" in line
    new_id = line.split("new run ")[1].split(",")[0]
    new = client.get_run(new_id)
    assert new.data.tags["rerun_of"] == run_id and new.data.params["dropout"] == "0.1"
    assert new.data.tags["code_hash"] == client.get_run(run_id).data.tags["code_hash"]


def test_rerun_refuses_when_the_features_changed(ws: Workspace, run_id: str) -> None:
    changed = ws.script("src/feature/feature01/build_features.py", "normalization.method=minmax")
    assert changed.returncode == 0, changed.stderr[-3000:]
    try:
        res = ws.bash("scripts/rerun.sh", run_id)
        err = res.stderr.strip().splitlines()
        assert res.returncode == 2 and len(err) == 1 and err[0].startswith("error: the data differ"), err
        assert "feature01 (run: " in err[0] and "build_features.py force=true" in err[0]
    finally:
        assert ws.script("src/feature/feature01/build_features.py").returncode == 0


def test_rerun_of_an_unknown_run_is_one_error_line(ws: Workspace) -> None:
    res = ws.bash("scripts/rerun.sh", "0" * 32)
    assert res.returncode == 2 and res.stderr.strip().startswith("error: no run '") and len(
        res.stderr.strip().splitlines()) == 1

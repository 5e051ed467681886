"""notebooks/: committed without outputs, and run top to bottom headless against a real run.

The slow tests prepare a workspace copy (offline sample -> dataset01 -> feature01 -> a 2-epoch model01 run) and
execute the notebooks there with nbclient: the kernel is this interpreter's `python3`, started in the copy's
notebooks/ folder with PYTHONPATH pointing at the copy, so the notebooks never read the developer's runs.
"""

from __future__ import annotations

import re
import sys

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from nbclient import NotebookClient

from tests.conftest import REPO, Workspace

NAMES = ("load_model.ipynb", "eda.ipynb")
CELL_TIMEOUT = 180  # seconds per cell; a cold start of torch + mlflow on a busy machine stays well below
REEVAL = re.compile(r"re-evaluated (\w+) ([0-9.]+) = logged (\w+) ([0-9.]+) \(run (\w+)\)")
STRIP = ("strip it: .venv/bin/jupyter nbconvert --clear-output --inplace notebooks/<name>.ipynb "
         "(then set execution_count to null) before committing")


def test_committed_notebooks_have_no_outputs() -> None:
    for name in NAMES:
        nb = nbformat.read(REPO / "notebooks" / name, as_version=4)
        nbformat.validate(nb)
        for i, cell in enumerate(nb.cells):
            if cell.cell_type == "code":
                assert cell.outputs == [], f"notebooks/{name} cell {i} has outputs; {STRIP}"
                assert cell.execution_count is None, f"notebooks/{name} cell {i} has an execution count; {STRIP}"
        assert "widgets" not in nb.metadata, f"notebooks/{name} holds widget state; {STRIP}"
    first = next(c for c in nbformat.read(REPO / "notebooks" / NAMES[0], as_version=4).cells
                 if c.cell_type == "code")
    assert 'EXPERIMENT = "model01"' in first.source and "RUN_ID = None" in first.source


@pytest.fixture(scope="module")
def trained(prepared: Workspace) -> tuple[Workspace, str]:
    ws = prepared
    res = ws.script("src/model/model01/train.py", "max_epochs=2")
    assert res.returncode == 0, res.stderr[-3000:]
    return ws, res.stdout.split("run_id=")[1].split()[0]


def execute(ws: Workspace, name: str, **env: str) -> str:
    """Run a notebook of the workspace copy top to bottom (as a user would open it) and return its text output."""
    spec = KernelSpecManager().get_kernel_spec("python3")
    if spec.argv[0] not in ("python", "python3", sys.executable):
        pytest.fail(f"the python3 kernelspec in {spec.resource_dir} starts {spec.argv[0]}, not this interpreter "
                    f"({sys.executable}); remove that kernelspec or reinstall ipykernel in .venv")
    kernel_env = ws.env(**env)
    if "RUN_ID" not in env:
        kernel_env.pop("RUN_ID", None)
    nb = nbformat.read(ws.root / "notebooks" / name, as_version=4)
    client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3")
    client.execute(cwd=str(ws.root / "notebooks"), env=kernel_env)  # raises CellExecutionError on any error
    outputs = [o for cell in nb.cells for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") if o.output_type == "stream" else
                   "".join(v for k, v in o.get("data", {}).items() if k in ("text/plain", "text/markdown"))
                   for o in outputs)
    assert f"project root: {ws.root}\n" in text  # the copy's src, not the checkout the venv points at
    return text


def reevaluated(text: str) -> tuple[float, str, float, str]:
    match = REEVAL.search(text)
    assert match, f"no 're-evaluated <metric> ... = logged ...' line in the output:\n{text[-3000:]}"
    assert match[3] == f"oof_{match[1]}"
    return float(match[2]), match[3], float(match[4]), match[5]


@pytest.mark.slow
def test_load_model_reevaluates_the_run(trained: tuple[Workspace, str]) -> None:
    ws, run_id = trained
    logged = ws.client().get_run(run_id).data.metrics["oof_accuracy"]
    acc, metric, printed_logged, used = reevaluated(execute(ws, "load_model.ipynb", RUN_ID=run_id))
    assert used == run_id and metric == "oof_accuracy"
    assert acc == pytest.approx(logged, abs=1e-6) and printed_logged == pytest.approx(logged, abs=1e-9)


@pytest.mark.slow
def test_load_model_checks_a_regression_run_with_its_own_metric(trained: tuple[Workspace, str]) -> None:
    ws, _ = trained
    for args in (("src/dataset/dataset02/make_dataset.py",), ("src/feature/feature02/build_features.py",),
                 ("src/model/model02/train.py", "fold=all", "max_epochs=3")):
        res = ws.script(*args)
        assert res.returncode == 0, res.stderr[-3000:]
    run_id = res.stdout.split("run_id=")[1].split()[0]
    text = execute(ws, "load_model.ipynb", RUN_ID=run_id)
    rmse, metric, logged, used = reevaluated(text)
    assert used == run_id and metric == "oof_rmse"
    assert rmse == pytest.approx(ws.client().get_run(run_id).data.metrics["oof_rmse"], rel=1e-6)
    assert "regression" in text


@pytest.mark.slow
def test_load_model_without_run_id_takes_the_best_run(trained: tuple[Workspace, str]) -> None:
    ws, run_id = trained
    client = ws.client()
    (best,) = client.search_runs([client.get_experiment_by_name("model01").experiment_id],
                                 "attributes.status = 'FINISHED'", order_by=["metrics.best_val_acc DESC"],
                                 max_results=1)
    assert best.info.run_id == run_id
    acc, _, _, used = reevaluated(execute(ws, "load_model.ipynb"))
    assert used == run_id and acc == pytest.approx(best.data.metrics["oof_accuracy"], abs=1e-6)


@pytest.mark.slow
def test_eda_runs_and_flags_the_sample_data(trained: tuple[Workspace, str]) -> None:
    ws, _ = trained
    text = execute(ws, "eda.ipynb")
    assert "train.csv: 1437 images of 28x28" in text
    assert "this is the offline sample data" in text

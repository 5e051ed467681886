"""The analysis diary (scripts/new_diary.sh) and new experiment folders (scripts/new_experiment.sh).

One prepared workspace serves the slow tests: model06 and feature04 are copied from model01 and feature01
*before* anything runs (model02 and feature02 are the second sample competition's), then the real pipeline
runs (sample data -> dataset01 -> feature01 and feature04, one model06 run, a two-trial model06 sweep), so the
diary has real runs of every kind to list. The refusals run in a fresh copy each and take about a second.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date
from pathlib import Path
from types import SimpleNamespace

import pytest
from omegaconf import OmegaConf

from src.utils.core.io import read_json
from tests.conftest import Workspace, make_workspace

SWEEP = ["-m", "lr=interval(1e-3,1e-2)", "hydra.sweeper.n_trials=2", "max_epochs=1"]


def tree_state(root: Path) -> dict[str, str]:
    """Every file and folder under src/ and config/ (hidden ones too) -> content hash; '' for folders."""
    state = {}
    for top in ("src", "config"):
        for p in sorted((root / top).rglob("*")):
            if "__pycache__" in p.parts:
                continue
            rel = p.relative_to(root).as_posix()
            state[rel] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else ""
    return state


def ok(res) -> str:
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


def one_line_error(res) -> str:
    """The failure is one `error:` line, no traceback; returns it."""
    assert res.returncode != 0, res.stdout
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in res.stderr, res.stderr
    return errors[0]


def runs_of(ws: Workspace, experiment: str) -> list:
    client = ws.client()
    exp = client.get_experiment_by_name(experiment)
    return [] if exp is None else client.search_runs([exp.experiment_id], max_results=1000)


def row_of(text: str, run_id: str) -> list[str]:
    """The cells of the (first) table row that shows `run_id` in its short form."""
    rows = [line for line in text.splitlines() if line.startswith("|") and f"| {run_id[:8]} |" in line]
    assert rows, f"no table row for run {run_id[:8]} in:\n{text}"
    return [c.strip() for c in rows[0].strip("|").split("|")]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> SimpleNamespace:
    ws = make_workspace(tmp_path_factory.mktemp("diary") / "ws")
    before = tree_state(ws.root)
    copied = {stage: ok(ws.bash("scripts/new_experiment.sh", stage, f"{stage}01")) for stage in ("model", "feature")}
    ok(ws.bash("scripts/prepare_data.sh"))
    for script in ("src/dataset/dataset01/make_dataset.py", "src/feature/feature01/build_features.py",
                   "src/feature/feature04/build_features.py"):
        ok(ws.script(script))
    trained = ok(ws.script("src/model/model06/train.py", "max_epochs=1", "note='baseline, one epoch'"))
    ok(ws.script("src/model/model06/train.py", *SWEEP))
    return SimpleNamespace(ws=ws, before=before, copied=copied, trained=trained)


@pytest.mark.slow
def test_model06_copy_trains_into_its_own_mlflow_experiment(pipeline) -> None:
    ws = pipeline.ws
    out = pipeline.copied["model"]
    assert "created src/model/model06/ and config/model/model06/" in out
    assert ".venv/bin/python src/model/model06/train.py" in out  # the command to run next

    # model01 is frozen: byte for byte what it was; the copy names itself and nothing else
    after = tree_state(ws.root)
    for rel, digest in pipeline.before.items():
        assert after.get(rel) == digest, f"{rel} changed"
    copy_files = [*(ws.root / "src/model/model06").rglob("*.py"), ws.root / "config/model/model06/config.yaml"]
    assert not any("model01" in p.read_text() for p in copy_files)
    cfg = OmegaConf.load(ws.root / "config/model/model06/config.yaml")
    assert cfg.experiment_name == "model06" and cfg.model._target_ == "src.model.model06.model.DigitCNN"
    assert cfg.feature_dir == "_data/feature/feature01"  # another stage's name: unchanged
    assert cfg.data._target_ == "src.model.model06.data.DigitDataModule"
    # only experiment code was copied: the machinery stays in src/utils
    python = "".join(p.read_text() for p in (ws.root / "src/model/model06").rglob("*.py"))
    for machinery in ("import gc", "import signal", "import mlflow", "KeyboardInterrupt", "gc.", "signal."):
        assert machinery not in python, machinery
    assert cfg.hydra.callbacks.mlflow_sweep.folder == "model06"  # the sweep parent's tags name the copy

    assert "experiment=model06" in pipeline.trained
    assert runs_of(ws, "model01") == []
    runs = runs_of(ws, "model06")
    (single,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags and r.data.tags.get("sweep") != "parent"]
    assert single.info.status == "FINISHED" and "best_val_acc" in single.data.metrics
    assert single.data.tags["experiment_folder"] == "src/model/model06" and single.data.tags["stage"] == "model"
    assert single.data.params["experiment_name"] == "model06" and single.data.params["max_epochs"] == "1"
    assert single.data.tags["hydra_output_dir"].startswith(str(ws.root / "outputs" / "model06"))
    (parent,) = [r for r in runs if r.data.tags.get("sweep") == "parent"]
    assert parent.data.tags["experiment_folder"] == "src/model/model06"
    assert parent.data.tags["optuna_study"].startswith("model06-")


@pytest.mark.slow
def test_feature04_copy_still_reads_dataset01(pipeline) -> None:
    ws = pipeline.ws
    cfg = OmegaConf.load(ws.root / "config/feature/feature04/config.yaml")
    assert (cfg.experiment_name, cfg.dataset_dir, cfg.output_dir) == (
        "feature04", "_data/data/dataset01", "_data/feature/feature04")
    dataset = read_json(ws.root / "_data/data/dataset01/manifest.json")
    built = read_json(ws.root / "_data/feature/feature04/manifest.json")
    assert built["dataset"]["hash"] == dataset["content_hash"] and built["stage"] == "feature04"
    assert (ws.root / "_data/feature/feature01/manifest.json").is_file()  # feature01's output is its own
    (run,) = runs_of(ws, "feature04")
    assert run.data.tags["experiment_folder"] == "src/feature/feature04"
    assert run.data.tags["dataset01_run_id"] == dataset["mlflow_run_id"]
    assert "_data/feature/feature04" in pipeline.copied["feature"]  # says how a model would use it


@pytest.mark.slow
def test_diary_lists_the_days_runs_and_appends(pipeline) -> None:
    ws = pipeline.ws
    res = ws.bash("scripts/new_diary.sh")
    path = Path(ok(res).strip())
    assert path == ws.root / "diary" / f"{date.today():%Y-%m-%d}.md" and "created" in res.stderr
    text = path.read_text()
    assert text.startswith(f"# Diary {date.today():%Y-%m-%d}") and "${" not in text

    client = ws.client()
    all_runs = client.search_runs([e.experiment_id for e in client.search_experiments()], max_results=1000)
    assert len(all_runs) == 7  # dataset01, feature01, feature04, model06 run, sweep parent + 2 trials
    names = {e.experiment_id: e.name for e in client.search_experiments()}
    for run in all_runs:
        cells = row_of(text, run.info.run_id)
        assert cells[1] == names[run.info.experiment_id] and cells[4] == run.info.status
        assert run.info.run_id not in text  # short ids only
    single = next(r for r in runs_of(ws, "model06") if not r.data.tags.get("mlflow.parentRunId")
                  and r.data.tags.get("sweep") != "parent")
    cells = row_of(text, single.info.run_id)
    assert cells[3] == "run" and cells[5] == "lr=0.003 batch_size=64 dropout=0.25 optimizer=adamw fold=0 max_epochs=1"
    below = " (does not beat it)" if single.data.tags["beats_baseline"] == "false" else ""
    assert cells[6] == (f"best_val_acc={single.data.metrics['best_val_acc']:.4f} "
                        f"oof_accuracy={single.data.metrics['oof_accuracy']:.4f} "
                        f"baseline={single.data.metrics['baseline_oof_accuracy']:.4f}{below}")
    assert cells[7] == "baseline, one epoch"  # the note given on the command line

    parent = next(r for r in runs_of(ws, "model06") if r.data.tags.get("sweep") == "parent")
    trials = [r for r in all_runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(trials) == 2
    assert row_of(text, trials[0].info.run_id)[3] == f"trial of {parent.info.run_id[:8]}"
    runs_section, sweeps_section = text.split("### Sweeps")
    assert row_of(runs_section, parent.info.run_id)[3:6] == ["sweep", "FINISHED", "n_trials=2"]
    best = parent.data.tags["best_run_id"]
    sweep_row = row_of(sweeps_section, parent.info.run_id)
    assert sweep_row[0] == "model06" and sweep_row[3] == "2/2"
    assert sweep_row[4] == f"{int(parent.data.metrics['n_trials_pruned'])} ({parent.data.params['pruner']})"
    assert sweep_row[6] == f"best_val_acc={parent.data.metrics['best_val_acc']:.4f}" and sweep_row[7] == best[:8]
    assert sweep_row[8] == f"lr={float(parent.data.params['best.lr']):.4g}"
    # each experiment of the day links to its runs table in the MLflow UI's "Model training" view
    model06 = client.get_experiment_by_name("model06").experiment_id
    assert f"[model06](http://127.0.0.1:5000/#/experiments/{model06}?workflowType=machine_learning)" in runs_section

    # a second call appends; what the user wrote meanwhile (even without a final newline) stays
    path.write_text(text + "my note: dropout 0.1 next")
    res = ws.bash("scripts/new_diary.sh")
    assert Path(ok(res).strip()) == path and "appended" in res.stderr
    again = path.read_text()
    assert again.startswith(text + "my note: dropout 0.1 next\n")
    assert len(re.findall(r"^## \d\d:\d\d$", again, re.M)) == 2 and again.count("\n---\n") == 1
    assert row_of(again[len(text):], single.info.run_id)  # the new section has the table too

    # another day, with a store that has runs but none that day
    res = ws.bash("scripts/new_diary.sh", "2001-02-03")
    other = Path(ok(res).strip())
    assert other.name == "2001-02-03.md" and "_No runs on 2001-02-03._" in other.read_text()


def test_diary_links_each_experiment_to_its_runs_table() -> None:
    from src.tools.diary import DayRuns, ui_links

    def run(experiment_id: str) -> SimpleNamespace:
        return SimpleNamespace(info=SimpleNamespace(experiment_id=experiment_id))

    day = date(2024, 5, 1)
    runs = [run("3"), run("1"), run("3")]
    local = DayRuns(day, runs, {"1": "dataset01", "3": "model01"}, "sqlite:////ws/logs/mlruns/mlflow.db", False)
    assert ui_links(local) == (
        "MLflow UI (`bash scripts/mlflow_ui.sh`): "
        "[model01](http://127.0.0.1:5000/#/experiments/3?workflowType=machine_learning) · "
        "[dataset01](http://127.0.0.1:5000/#/experiments/1?workflowType=machine_learning)")
    # a tracking server is its own UI; its address never carries the login
    server = DayRuns(day, runs[:1], {"3": "model01"}, "http://user:***@hub:5055/", False)
    assert ui_links(server) == ("MLflow UI (http://hub:5055): "
                                "[model01](http://hub:5055/#/experiments/3?workflowType=machine_learning)")
    assert ui_links(DayRuns(day, [], {}, "sqlite:////ws/logs/mlruns/mlflow.db", True)) == \
        "MLflow UI: `bash scripts/mlflow_ui.sh`"


def test_diary_without_a_store_says_no_runs_yet(workspace: Workspace) -> None:
    ws = workspace
    res = ws.bash("scripts/new_diary.sh", "2024-05-01")
    path = Path(ok(res).strip())
    text = path.read_text()
    assert path == ws.root / "diary/2024-05-01.md"
    assert "No runs yet" in text and "_No sweeps on this day._" in text and "### Next ideas" in text
    assert "MLflow UI: `bash scripts/mlflow_ui.sh`" in text and "${" not in text
    assert not (ws.root / "logs/mlruns/mlflow.db").exists()  # writing a note does not create a store

    for bad in ("2024-13-01", "yesterday", "2024-5-1"):
        assert "YYYY-MM-DD" in one_line_error(ws.bash("scripts/new_diary.sh", bad))
    assert sorted(p.name for p in (ws.root / "diary").glob("2*.md")) == ["2024-05-01.md"]


def test_new_experiment_refuses_and_writes_nothing(workspace: Workspace) -> None:
    ws = workspace
    ok(ws.bash("scripts/new_experiment.sh", "model", "model01"))  # -> model06 (02: regression; 03, 04, 05: trees)
    (ws.root / "config/model/model07").mkdir()  # half an experiment: its number is taken too
    state = tree_state(ws.root)
    for args, message in [
        (("model", "model01", "model06"), "src/model/model06 already exists"),
        (("model", "model01", "model07"), "config/model/model07 already exists"),
        (("model", "model01", "model01"), "src/model/model01 already exists"),
        (("model", "model11"), "no experiment folder src/model/model11; existing model folders: model01, model02, "
                               "model03, model04, model05, model06"),
        (("model", "feature01"), "no experiment folder src/model/feature01"),
        (("models", "model01"), "unknown stage 'models'"),
        (("utils", "diary"), "unknown stage 'utils'"),
        (("model", "model01", "mymodel"), "must be model followed by a number"),
        (("model",), "usage: bash scripts/new_experiment.sh"),
    ]:
        assert message in one_line_error(ws.bash("scripts/new_experiment.sh", *args)), args
        assert tree_state(ws.root) == state, f"{args} wrote something"

    # the next number is past every one in use (src/ or config/), and an explicit free name works
    assert "src/model/model08/" in ok(ws.bash("scripts/new_experiment.sh", "model", "model01"))
    assert "src/model/model10/" in ok(ws.bash("scripts/new_experiment.sh", "model", "model06", "model10"))
    assert (ws.root / "src/model/model10/train.py").read_text().startswith('"""model10: ')
    assert not [p for p in (*(ws.root / "src/model").iterdir(), *(ws.root / "config/model").iterdir())
                if p.name.startswith(".")]  # no temporary folders left behind


def test_dataset_copy_renames_its_outputs_only(workspace: Workspace) -> None:
    ws = workspace
    (ws.root / "src/dataset/dataset01/__pycache__").mkdir(exist_ok=True)
    (ws.root / "src/dataset/dataset01/__pycache__/x.cpython-311.pyc").write_bytes(b"\0")
    out = ok(ws.bash("scripts/new_experiment.sh", "dataset", "dataset01"))
    assert ".venv/bin/python src/dataset/dataset04/make_dataset.py" in out
    yaml = (ws.root / "config/dataset/dataset04/config.yaml").read_text()
    cfg = OmegaConf.create(yaml)
    assert (cfg.experiment_name, cfg.raw_dir, cfg.output_dir) == ("dataset04", None, "_data/data/dataset04")
    assert cfg.competition == "digit-recognizer"  # the copy belongs to its source's competition
    assert "dataset01" not in yaml and "${root:}/outputs/dataset04/" in yaml
    code = (ws.root / "src/dataset/dataset04/make_dataset.py").read_text()
    assert code.startswith('"""dataset04: ') and "src/dataset/dataset04/make_dataset.py" in code
    # no other folder's name is written in the copy: its next: line is found when it runs (the feature folders whose
    # config reads its output), so the copy never names its source's readers
    assert "feature01" not in code and "--competition" in code
    assert not (ws.root / "src/dataset/dataset04/__pycache__").exists()
    assert oct((ws.root / "src/dataset/dataset04").stat().st_mode & 0o777) == oct(
        (ws.root / "src/dataset/dataset01").stat().st_mode & 0o777)


@pytest.mark.slow
def test_the_fast_tests_pick_up_the_copy(pipeline) -> None:
    """The copy is tested by the in-process tests over every folder without editing them."""
    ws = pipeline.ws
    res = ws.python("-m", "pytest", str(ws.root / "tests/test_experiments.py"), "-v", "-p", "no:cacheprovider",
                    "-k", "model06 and (composes or trains or option)", "--rootdir", str(ws.root))
    assert res.returncode == 0, res.stdout[-3000:]
    # its config and schema, every option of its config groups, its training through the harness
    for test in ("test_config_composes_and_passes_its_schema[model-model06]",
                 "test_every_config_option_reaches_the_model[model06-scheduler=none]",
                 "test_model_folder_trains_through_the_harness[model06]"):
        assert f"{test} PASSED" in res.stdout, res.stdout[-3000:]


def test_a_pruned_trial_says_where_it_stopped_in_the_diary() -> None:
    from types import SimpleNamespace

    from src.tools.diary import kind

    def run(**tags: str) -> SimpleNamespace:
        return SimpleNamespace(data=SimpleNamespace(tags=tags))

    parent = {"mlflow.parentRunId": "0123456789abcdef0123456789abcdef"}
    assert kind(run(**parent)) == "trial of 01234567"
    assert kind(run(**parent, optuna_state="PRUNED", pruned_at="epoch 3")) == "trial of 01234567, pruned at epoch 3"
    assert kind(run(sweep="parent")) == "sweep" and kind(run()) == "run"

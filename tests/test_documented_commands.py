"""Every shell command the documentation shows, run as written (tiny settings appended).

The commands come from README.md, README.ja.md, the reference pages docs/*.md (their ```bash blocks and `$ `
prompts) and the tools' `--help` (tests/docs.py collects them, in that order), so a documented line that stops
working fails here, and a new one, or a new page, is run without editing this file. Each runs with `bash -c`
from the root of a throw-away copy of the workspace, the way a user types it: `poetry run` included, `~` being a
temporary home. Appended, never replacing what is shown:
`max_epochs=1` to a training run (`max_epochs=2` to one that resumes the 1-epoch run's checkpoint),
`hydra.sweeper.n_trials=2 max_epochs=1` to a sweep, a free port to a UI (run until it answers), `--size tiny
--trials 2 --epochs 1 --repeats 1 --sweep-repeats 1` to the benchmark. After each command the store must hold no
RUNNING run. `<run_id>` is the run the first training command made, `<sweep run_id>` the parent run of the latest
documented `fold=all` sweep of the ensemble's competition, `<ensemble run_id>` the latest documented ensemble's run.

Commands that cannot run here are in NOT_HERE with the reason; a command of a form this file does not know
fails `test_every_documented_command_is_run_or_has_a_reason`.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import pstats
import re
import shlex
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import textwrap
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import Workspace, copy_prepared, make_workspace, write_kaggle_csvs
from tests.docs import BACK_LINK, DOCS, REPO, Command, broken_links, documented_commands, poetry_bin, readme_commands
from tests.test_bench import (
    check_confirm_report,
    check_ensemble_report,
    check_pruning_report,
    check_replay_report,
    check_report,
)

COMMANDS = documented_commands()
TINY_RUN = ["max_epochs=1"]
TINY_RESUME = ["max_epochs=2"]  # resuming the 1-epoch run's last.ckpt: one more epoch
TINY_SWEEP = ["hydra.sweeper.n_trials=2", "max_epochs=1"]
TINY_BENCH = ["--size", "tiny", "--trials", "2", "--epochs", "1", "--repeats", "1", "--sweep-repeats", "1"]
UIS = ("mlflow_ui.sh", "optuna_dashboard.sh", "jupyter.sh", "tensorboard.sh")

NOT_HERE = {  # a pattern of the command -> why this test does not run it
    r"^bash scripts/test\.sh": "the test suite itself (CI runs it; here it would run itself)",
    r"^kaggle competitions": "the Kaggle CLI talks to kaggle.com with your credentials; nothing here is online",
}
ELSEWHERE = {  # commands another module runs as written, in their block's order (not counted as 'not here')
    r"submitit_slurm|^sbatch |^sacct |^bash scripts/services\.sh slurm ":
        "tests/test_slurm.py runs docs/scaling.md's SLURM block as written, on a one-node cluster it starts",
    r"scripts/services\.sh": "tests/test_services.py runs docs/scaling.md's services block as written, in order",
}
NEEDS_GPU = r"trainer\.accelerator=gpu"
DATA = r"^bash scripts/prepare_data\.sh"  # each in a workspace of its own: they fill an empty raw folder


# A training or sweep command runs as written the first time its page shows its path through the code: its
# script, one run or a sweep (-m), and the keys below, which change what a run does rather than what it trains with.
# A later command on a path already run (other hyper-parameters, another optimizer, pruner, sampler or search space)
# is checked instead: the workspace's own preflight composes it as Hydra will, every sweep point included, validates
# every key, type, value and config-group choice and builds its pruner, which is how a documented line breaks when
# the configs change. What each pruner, sampler and optimizer does in a sweep: tests/test_sweeper.py and tests/unit.
PATH_KEYS = ("fold=all", "ckpt_path=", "debug=", "tensorboard=", "trainer.strategy=", "hydra/launcher=", "note=",
             "hydra/sweeper/sampler=")  # the preflight builds the pruner node, not the sampler
CHECK = """
import importlib.util, sys
from src.utils.cli.setup import setup
from src.utils.cli.preflight import check_command
spec = importlib.util.spec_from_file_location("entry", sys.argv[1])
entry = sys.modules["entry"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(entry)
setup()
print(f"composed and validated {check_command(sys.argv[1], entry.Config, 'config', sys.argv[2:])} config(s)")
"""


def path_of(text: str) -> tuple[str, bool, tuple[str, ...]]:
    words = shlex.split(text)
    script = next(w for w in words if re.search(r"src/model/model\d+/train\.py$", w))
    return script, "-m" in words, tuple(k for k in PATH_KEYS if any(w.startswith(k) for w in words))


def page_of(command: Command) -> str:
    """The page a reader follows the command on: the first that shows it (README.ja.md shows README.md's)."""
    return command.places[0].split(":")[0]


def check_composed(ws: Workspace, env: dict[str, str], text: str, where: str) -> None:
    """A command on a path already run: composed and validated by the preflight its script runs first."""
    words = shlex.split(text)
    at = next(i for i, w in enumerate(words) if re.search(r"src/model/model\d+/train\.py$", w))
    res = subprocess.run([str(ws.root / ".venv/bin/python"), "-c", CHECK, words[at], *words[at + 1:]], cwd=ws.root,
                         env=env, capture_output=True, text=True, timeout=300)
    out = res.stdout + res.stderr
    checked = re.search(r"composed and validated (\d+) config", out)
    assert res.returncode == 0 and checked and int(checked[1]) >= 1 + ("-m" in words), f"{where}\n{out[-3000:]}"


# The benchmark runs once per mode (its timings, its pruners, its blend methods, or another experiment's); a later
# documented command of a mode already run (other sizes, counts, --fold, --threads, --keep) has its options checked by
# the benchmark's own parser, as written, sizes included.
BENCH_MODES = ("--profile", "--replay", "--confirm", "--pruning", "--ensemble")


def bench_mode(text: str) -> str:
    words = shlex.split(text)
    experiment = words[words.index("--experiment") + 1] if "--experiment" in words else "model01"
    if "--confirm" in words:  # the folder's own sweeps, whatever its learner: one path
        return "--confirm"
    if (REPO / "config/model" / experiment / "estimator").is_dir():
        return "a tree folder against its library"  # one path for every tree folder and size (bench_trees.py)
    return next((m for m in BENCH_MODES if m in words), "timings")  # any network folder: the same path


def check_bench_options(ws: Workspace, env: dict[str, str], text: str, where: str) -> None:
    argv = shlex.split(text.removeprefix("bash scripts/bench.sh"))
    res = subprocess.run([str(ws.root / ".venv/bin/python"), "-c", "import sys; from src.utils.cli.setup import setup; "
                          "setup(); from src.tools.bench import parse_args; "
                          "print('options of', parse_args(sys.argv[1:])[1].name, 'checked')", *argv],
                         cwd=ws.root, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and "checked" in res.stdout, f"{where}\n{(res.stdout + res.stderr)[-3000:]}"


def reason_not_run(text: str) -> str | None:
    for pattern, reason in (NOT_HERE | ELSEWHERE).items():
        if re.search(pattern, text):
            return reason
    return None


def section_lines(doc: str, heading: str) -> range:
    lines = (REPO / doc).read_text(encoding="utf-8").splitlines()
    start = lines.index(heading)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return range(start + 1, end + 1)


WALKTHROUGH = section_lines("README.md", "## Start your own competition")


def in_walkthrough(command: Command) -> bool:
    return any(place.startswith("README.md:") and int(place.split(":")[1]) in WALKTHROUGH
               for place in command.places)


def kind(text: str) -> str:
    """How a command is run: its tiny settings and what 'it worked' means."""
    command = next((c for c in COMMANDS if c.text == text), None)
    if any(re.search(pattern, text) for pattern in ELSEWHERE):
        return "elsewhere"
    if reason_not_run(text):
        return "not here"
    if command is not None and in_walkthrough(command):
        return "walkthrough"
    if re.search(NEEDS_GPU, text):
        return "gpu"
    if text.startswith("bash scripts/demo.sh"):
        return "demo"
    if re.search(DATA, text):
        return "data"
    if text.startswith("bash scripts/run_bg.sh "):
        return "background"
    if any(text.startswith(f"bash scripts/{ui}") for ui in UIS):
        return "ui"
    if text.startswith("bash scripts/bench.sh"):
        return "bench"
    if re.search(r"(^|\s)poetry run python src/model/model\d+/train\.py", text):
        return "sweep" if " -m " in f"{text} " else "train"
    if re.match(r"^(\$\{EDITOR:-vi\} \"\$\(bash scripts/new_diary\.sh\)\"|bash scripts/\w+\.sh|poetry run python src/"
                r"(dataset|feature|model|ensemble)/\w+/\w+\.py)", text):
        return "plain"
    return "unknown"


def gpus_needed(text: str) -> int:
    """How many GPUs a GPU command names: trainer.devices=N or a list of indices, CUDA_VISIBLE_DEVICES=i."""
    need = 1
    if m := re.search(r"trainer\.devices=(\d+)", text):
        need = int(m.group(1))
    if m := re.search(r"trainer\.devices=\[([\d,]+)\]", text):
        need = max(int(i) for i in m.group(1).split(",")) + 1
    if m := re.search(r"CUDA_VISIBLE_DEVICES=(\d+)", text):
        need = max(need, int(m.group(1)) + 1)
    return need


def test_every_documented_command_is_run_or_has_a_reason() -> None:
    unknown = [f"{c.text} ({', '.join(c.places)})" for c in COMMANDS if kind(c.text) == "unknown"]
    assert not unknown, "documented commands this test cannot run; teach kind() how, or list them in NOT_HERE:\n" \
        + "\n".join(unknown)
    assert len(COMMANDS) > 40 and sum(kind(c.text) == "not here" for c in COMMANDS) < 12


def test_documentation_links_and_pages() -> None:
    """Every link to a file or #anchor of the repository resolves, every page of docs/ starts with its way back to
    the README, and the README links every page."""
    pages = [d for d in DOCS if d.startswith("docs/")]
    assert pages, "no reference pages in docs/"
    broken = [b for doc in (*DOCS, "CHANGELOG.md") for b in broken_links(doc)]
    assert not broken, "links to nothing:\n" + "\n".join(broken)
    assert [p for p in pages if (REPO / p).read_text(encoding="utf-8").splitlines()[0] != BACK_LINK] == []
    for readme in ("README.md", "README.ja.md"):
        text = (REPO / readme).read_text(encoding="utf-8")
        assert [p for p in pages if f"]({p}" not in text] == [], f"{readme} does not link every page of docs/"


def test_japanese_readme_shows_the_same_commands() -> None:
    """README.ja.md mirrors README.md: the same commands in the same order (the reference pages are English)."""
    assert [c.text for c in readme_commands("README.ja.md")] == [c.text for c in readme_commands("README.md")]


# ---------------------------------------------------------------------------------------------------------------
@dataclass
class Session:
    main: Workspace  # prepared (sample data through every stage of both samples): training, tools, UIs
    fresh: object  # () -> an empty workspace copy, for commands that fill the raw data themselves
    home: Path
    env: dict[str, str]
    run_id: str | None = None
    benched: dict[str, str] | None = None  # the benchmark's options left after the tiny ones -> the command run
    walk: Workspace | None = None  # "Start your own competition", followed step by step in a workspace of its own
    walk_edited: set[str] | None = None  # the walkthrough's steps whose edits are made
    sweeps: dict[str, str] | None = None  # competition -> the parent run of its latest documented fold=all sweep
    ensemble_run_id: str | None = None  # the run the latest documented ensemble command made
    paths_run: dict | None = None  # path_of(a training command) -> the command that ran it


def write_idx(folder: Path, n_train: int = 60, n_test: int = 20) -> None:
    """MNIST's IDX files, tiny: what a user who downloaded MNIST has in ~/mnist."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(
            gzip.compress(struct.pack(">IIII", 2051, n, 28, 28) + images.tobytes()))
        (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(
            gzip.compress(struct.pack(">II", 2049, n) + labels.tobytes()))


def kaggle_zip(path: Path, tmp: Path) -> Path:
    files = write_kaggle_csvs(tmp / "kaggle-files", n_train=120, n_test=30)
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as z:
        for f in sorted(files.iterdir()):
            z.write(f, f.name)
    return path


@pytest.fixture(scope="module")
def session(prepared_template: Workspace, tmp_path_factory) -> Session:
    base = tmp_path_factory.mktemp("documented")
    main = copy_prepared(prepared_template, base / "main" / "ws")
    home = base / "home"
    home.mkdir()
    write_idx(home / "mnist")
    kaggle_zip(home / "Downloads" / "digit-recognizer.zip", base)
    env = main.env(HOME=str(home), EDITOR="cat", POETRY_VIRTUALENVS_IN_PROJECT="true",
                   POETRY_VENV=os.environ.get("POETRY_VENV", str(Path.home() / ".local/share/kaggle-workspace-poetry")))
    env["PATH"] = f"{poetry_bin()}:{env['PATH']}"
    for rel in ("src/dataset/dataset02/make_dataset.py", "src/feature/feature02/build_features.py"):
        res = main.script(rel)  # the regression sample's stages (the README shows model02's training only)
        assert res.returncode == 0, res.stderr[-2000:]
    counter = iter(range(1000))

    def fresh() -> Workspace:
        return make_workspace(base / f"fresh{next(counter)}" / "ws")

    return Session(main, fresh, home, env)


def passengers_zip(path: Path, n_train: int = 400, n_test: int = 100) -> Path:
    """What `kaggle competitions download -c titanic` leaves, generated: train.csv (PassengerId, Survived, Pclass,
    Name, Sex, Age, SibSp, Parch, Ticket, Fare, Cabin, Embarked; text columns and missing values as in the real
    list), test.csv and gender_submission.csv (PassengerId,Survived)."""
    rng = np.random.default_rng(0)
    n = n_train + n_test
    pclass = rng.choice([1, 2, 3], n, p=[0.25, 0.2, 0.55])
    sex = rng.choice(["male", "female"], n, p=[0.65, 0.35])
    age = rng.gamma(4, 7.5, n).round(0)
    age[rng.random(n) < 0.2] = np.nan
    fare = (rng.gamma(2, 8, n) * (4 - pclass) ** 1.5).round(4)
    embarked = rng.choice(["S", "C", "Q"], n, p=[0.72, 0.19, 0.09]).astype(object)
    embarked[rng.choice(n, 2, replace=False)] = None
    cabin = np.where((pclass == 1) & (rng.random(n) < 0.8), [f"C{k}" for k in rng.integers(1, 120, n)], None)
    logit = 1.2 * (sex == "female") * 2 - 1.0 * (pclass - 2) - 0.02 * np.nan_to_num(age - 30) - 0.9
    survived = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    frame = pd.DataFrame({
        "PassengerId": np.arange(1, n + 1), "Survived": survived, "Pclass": pclass,
        "Name": [f"Passenger{k}, Mr. A" for k in range(n)], "Sex": sex, "Age": age,
        "SibSp": rng.poisson(0.5, n), "Parch": rng.poisson(0.4, n),
        "Ticket": [f"T{k}" for k in rng.integers(10_000, 100_000, n)],
        "Fare": fare, "Cabin": cabin, "Embarked": embarked})
    test = frame.iloc[n_train:].drop(columns="Survived")
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("train.csv", frame.iloc[:n_train].to_csv(index=False))
        z.writestr("test.csv", test.to_csv(index=False))
        z.writestr("gender_submission.csv", test[["PassengerId"]].assign(
            Survived=(test["Sex"] == "female").astype(int)).to_csv(index=False))
    return path


def yaml_after(doc: str, line: int) -> str:
    """The first ```yaml block after a line of `doc`, unindented."""
    lines = (REPO / doc).read_text(encoding="utf-8").splitlines()
    begin = next(i for i in range(line, len(lines)) if lines[i].strip() == "```yaml")
    end = next(i for i in range(begin + 1, len(lines)) if lines[i].strip() == "```")
    return textwrap.dedent("\n".join(lines[begin + 1 : end])) + "\n"


def walkthrough_step(s: Session, command: Command, prepared_template: Workspace, base: Path) -> Workspace:
    """The workspace of the walkthrough, with the edits its text asks for made before the command that needs them."""
    if s.walk is None:
        s.walk = copy_prepared(prepared_template, base / "walk" / "ws")
        passengers_zip(s.walk.root / "titanic.zip")  # step 2's download
    ws = s.walk
    s.walk_edited = s.walk_edited or set()
    if any(f"/{folder}/" in command.text for folder in ("model07", "ensemble03")) and "5" not in s.walk_edited:
        edit_walk(ws, {"model/model07/config.yaml": [(r"^competition: \S+", "competition: titanic"),
                                                     (r"^feature_dir: \S+", "feature_dir: _data/feature/feature04n")],
                       "ensemble/ensemble03/config.yaml": [(r"^competition: \S+", "competition: titanic")]})
        s.walk_edited.add("5")  # step 5: the network's copy and the ensemble's point at the competition
    if "/dataset04/" in command.text and "3" not in s.walk_edited:  # step 3: point the copies at the competition
        edits = {  # file -> (the line as copied, the line as the walkthrough writes it)
            "dataset/dataset04/config.yaml": [(r"^competition: \S+", "competition: titanic"),
                                              (r"^  drop: \[\]", "  drop: [Name, Ticket]"),
                                              (r"^    _target_: sklearn.model_selection.KFold",
                                               "    _target_: sklearn.model_selection.StratifiedKFold"),
                                              (r"^  stratify: null", "  stratify: Survived")],
            "feature/feature04/config.yaml": [(r"^competition: \S+", "competition: titanic"),
                                              (r"^dataset_dir: \S+", "dataset_dir: _data/data/dataset04")],
            "model/model06/config.yaml": [(r"^competition: \S+", "competition: titanic"),
                                          (r"^feature_dir: \S+", "feature_dir: _data/feature/feature04")],
            "model/model06/estimator/lightgbm.yaml": [(r"^monitor: \S+", "monitor: val_binary_logloss"),
                                                      (r"^  _target_: \S+", "  _target_: lightgbm.LGBMClassifier"),
                                                      (r"^  objective: \S+", "  objective: binary"),
                                                      (r"^  metric: \S+", "  metric: binary_logloss")]}
        edit_walk(ws, edits)
        s.walk_edited.add("3")
    return ws


def edit_walk(ws: Workspace, edits: dict[str, list[tuple[str, str]]]) -> None:
    """Each file of config/ -> (the line as copied, the line as the walkthrough writes it)."""
    for rel, lines in edits.items():
        path = ws.root / "config" / rel
        text = path.read_text()
        for pattern, line in lines:
            text, n = re.subn(pattern, line, text, count=1, flags=re.M)
            assert n == 1, f"{path} has no line {pattern}"
        path.write_text(text)


def model01_runs(ws: Workspace) -> int:
    db = ws.root / "logs/mlruns/mlflow.db"
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as con:
        return con.execute("SELECT COUNT(*) FROM runs JOIN experiments USING (experiment_id) "
                           "WHERE experiments.name = 'model01'").fetchone()[0]


def check_cv_run(ws: Workspace, res: subprocess.CompletedProcess, model01_before: int) -> None:
    """fold=all: one run with every fold's model, the CV mean as objective, OOF rows scored, test predictions."""
    run_id = res.stdout.split("run_id=")[1].split()[0]
    client = ws.client()
    run = client.get_run(run_id)
    assert "mlflow.parentRunId" not in run.data.tags and run.info.status == "FINISHED"
    m = run.data.metrics
    folds = [m[f"fold{k}_best_val_acc"] for k in range(5)]
    assert m["cv_val_acc"] == pytest.approx(np.mean(folds)) == pytest.approx(m["objective"])
    assert len(client.get_metric_history(run_id, "fold3-val_acc")) == 1
    oof = pd.read_csv(client.download_artifacts(run_id, "oof_predictions.csv"))
    assert len(oof) == 1437 and sorted(oof["fold"].unique()) == [0, 1, 2, 3, 4]
    assert m["oof_accuracy"] == pytest.approx((oof["pred_Label"] == oof["Label"]).mean())
    assert {f"prob_{k}" for k in range(10)} <= set(oof.columns)
    test = pd.read_csv(client.download_artifacts(run_id, "test_predictions.csv"))  # the fold models on test.csv
    assert len(test) == 360 and list(test.columns[:2]) == ["ImageId", "pred_Label"]
    assert list((ws.root / "logs/lightning/model01" / run_id).glob("fold4/*.ckpt"))
    assert model01_runs(ws) == model01_before + 1


def check_debug_run(ws: Workspace, res: subprocess.CompletedProcess, model01_before: int) -> None:
    """debug=true: a fast_dev_run recorded in __debug__, never in model01."""
    assert "experiment=__debug__" in res.stdout and model01_runs(ws) == model01_before


CHECKS = {  # what a user looks for after these commands, beyond a clean exit
    "poetry run python src/model/model01/train.py fold=all": check_cv_run,
    "poetry run python src/model/model01/train.py debug=true": check_debug_run,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def running_runs(ws: Workspace) -> list[str]:
    db = ws.root / "logs/mlruns/mlflow.db"
    if not db.is_file():
        return []
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as con:
        return [f"{r[0]} ({r[1]})" for r in con.execute("SELECT run_uuid, name FROM runs WHERE status = 'RUNNING'")]


def shell(ws: Workspace, env: dict[str, str], line: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", line], cwd=ws.root, env=env, capture_output=True, text=True,
                          timeout=timeout)


def concrete(text: str, s: Session) -> str:
    """The documented command with its placeholders filled the way a user fills them."""
    if "<run_id>" in text:
        assert s.run_id, "no run_id yet: the first documented training command must run first"
        text = text.replace("<run_id>", s.run_id)
    if "<sweep run_id>" in text:  # the fold=all sweep documented before it, of the ensemble's competition
        folder = re.search(r"src/ensemble/(ensemble\d+)/", text).group(1)
        sweep = (s.sweeps or {}).get(competition_of("ensemble", folder))
        assert sweep, f"no documented fold=all sweep of {folder}'s competition ran before: {text}"
        text = text.replace("<sweep run_id>", sweep)
    if "<ensemble run_id>" in text:
        assert s.ensemble_run_id, "no ensemble run yet: a documented blend.py command must run first"
        text = text.replace("<ensemble run_id>", s.ensemble_run_id)
    text = text.replace("--competition NAME --kaggle DIR_OR_ZIP",
                        "--competition digit-recognizer --kaggle ~/Downloads/digit-recognizer.zip")
    text = text.replace("--mnist DIR", "--mnist ~/mnist")
    return re.sub(r"\s*\[YYYY-MM-DD\].*$", "", text)


def competition_of(stage: str, folder: str) -> str:
    return re.search(r"^competition: (\S+)", (REPO / "config" / stage / folder / "config.yaml").read_text(),
                     re.M).group(1)


def answered(port: int) -> bool:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5)
    except urllib.error.HTTPError:
        return True  # it answers (Jupyter without its token: 403)
    except OSError:
        return False
    return True


def run_ui(ws: Workspace, env: dict[str, str], line: str) -> str:
    port = free_port()
    proc = subprocess.Popen(["bash", "-c", f"{line} {port}"], cwd=ws.root, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not answered(port):
            assert proc.poll() is None, f"{line} {port} exited {proc.returncode}: {proc.stdout.read()[-3000:]}"
            assert time.monotonic() < deadline, f"{line} {port}: no answer on port {port} in 120 s"
            time.sleep(0.5)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
    return out


def run_background(ws: Workspace, env: dict[str, str], line: str) -> str:
    res = shell(ws, env, line)
    assert res.returncode == 0, res.stdout + res.stderr
    log = Path(re.search(r"^log:\s+(\S+)", res.stdout, re.M).group(1))
    pid = int(Path(f"{log}.pid").read_text())
    deadline = time.monotonic() + 600
    while Path(f"/proc/{pid}").exists() and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z":
        assert time.monotonic() < deadline, f"{line}: still running after 600 s; log:\n{log.read_text()[-3000:]}"
        time.sleep(1)
    text = log.read_text()
    assert "Traceback" not in text and "error:" not in text, text[-3000:]
    return text


# run in modules of their own, on another worker of the suite: the benchmark's (tests/test_documented_bench.py), the
# ones in workspaces of their own, the walkthrough, the data and the demo (tests/test_documented_fresh.py), and the
# reference pages' and the tools' --help (tests/test_documented_pages.py); this module runs the READMEs' others
ELSEWHERE_KINDS = {"bench": "bench", "walkthrough": "fresh", "data": "fresh", "demo": "fresh"}


def module_of(command: Command) -> str:
    if kind(command.text) in ELSEWHERE_KINDS:
        return ELSEWHERE_KINDS[kind(command.text)]
    return "readme" if command.places[0].startswith(("README.md:", "README.ja.md:")) else "pages"


HERE = [c for c in COMMANDS if module_of(c) == "readme"]


@pytest.mark.slow
@pytest.mark.parametrize("command", HERE, ids=[c.text[:90] for c in HERE])
def test_documented_command_runs_as_written(command: Command, session: Session, prepared_template: Workspace,
                                            tmp_path_factory, tmp_path: Path) -> None:
    run_documented(command, session, prepared_template, tmp_path_factory)


def run_documented(command: Command, session: Session, prepared_template: Workspace, tmp_path_factory) -> None:
    """One documented command, run as written in the session's workspace (or the one its kind needs), checked."""
    how = kind(command.text)
    if how in ("not here", "elsewhere"):
        pytest.skip(reason_not_run(command.text))
    if how == "gpu":
        import torch

        have, need = torch.cuda.device_count(), gpus_needed(command.text)
        if have < need:
            pytest.skip(f"needs {need} CUDA GPU(s); this machine has {have}")
    text = concrete(command.text, session)
    ws, env = session.main, dict(session.env)
    if how == "walkthrough":
        ws = walkthrough_step(session, command, prepared_template, tmp_path_factory.getbasetemp())
        env = {**env, "PYTHONPATH": str(ws.root)}
    if how in ("data", "demo"):
        ws = session.fresh()
        env = {**env, "PYTHONPATH": str(ws.root)}
        # what `kaggle competitions download -c digit-recognizer` leaves in the current folder
        shutil.copy(session.home / "Downloads" / "digit-recognizer.zip", ws.root)
    # the walkthrough's network trains as written: its OOF score must beat the trivial baseline (below)
    tiny = {"train": TINY_RUN, "walkthrough": TINY_RUN if "/train.py" in text and "/model07/" not in text else [],
            "sweep": TINY_SWEEP, "background": TINY_SWEEP, "demo": TINY_SWEEP,
            "bench": TINY_BENCH}.get(how, [])
    if how == "train" and "ckpt_path=" in text:
        tiny = TINY_RESUME
    if any((ws.root / "config/model" / folder / "estimator").is_dir()  # a tree's rounds, not a network's epochs
           for folder in re.findall(r"src/model/(model\d+)/", text)):
        tiny = [t.replace("max_epochs=1", "n_estimators=20") for t in tiny]
    line = " ".join([text, *map(shlex.quote, tiny)])
    where = f"{command.text}  ({', '.join(command.places)}; run as: {line})"
    rest = ""
    if how == "bench":  # the tiny options replace --size/--trials/--epochs: the same options left, the same run
        rest = re.sub(r"--(size|trials|epochs|n-train|pruners) \S+", "", text.removeprefix("bash scripts/bench.sh"))
        rest = " ".join(rest.replace("--experiment model01", "").split())  # model01 is the default
        session.benched = session.benched or {}
        if (mode := bench_mode(text)) in session.benched:  # its options checked by the benchmark's own parser
            check_bench_options(ws, env, text, f"{where}; the benchmark of `{session.benched[mode]}`, run above")
            return
        session.benched[mode] = line
        if rest:  # the default options get two trials (both sides must propose the same); the others one
            line = line.replace("--trials 2", "--trials 1")
        if "--replay" in text:  # a pool of six, replayed in five orders: every step of the replay, in seconds
            line += " --pool 6 --orders 5"
        elif "--confirm" in text:  # one sampler seed: each side's sweep is the same code for every seed
            line += " --sampler-seeds 42"
        elif "--pruning" in text:  # the default pruner against none: the candidates' own sweeps are the same code
            line += " --pruners auto"
        if "--ensemble" in text:  # three members: every method's code path, a fraction of the time
            line += " --members 3"

    if how == "ui":
        out = run_ui(ws, env, line)
        assert "Traceback" not in out and "error:" not in out, f"{where}\n{out[-3000:]}"
    elif how == "background":
        run_background(ws, env, line)
    elif how in ("train", "sweep") and not command.output and command.text not in CHECKS \
            and (page_path := (page_of(command), *path_of(text))) in (session.paths_run or {}):
        check_composed(ws, env, text, f"{where}; on the path of `{session.paths_run[page_path]}`, run above")
    else:
        if how in ("train", "sweep") and not command.output:  # a command that shows an error runs no path
            session.paths_run = {**(session.paths_run or {}), (page_of(command), *path_of(text)): command.text}
        copies_before = set((ws.root / "outputs/bench").glob("work-*"))
        model01_before = model01_runs(ws) if command.text in CHECKS else 0
        res = shell(ws, env, line)
        out = res.stdout + res.stderr
        if command.output:  # a prompt with what it prints: the same lines, and a failure for an error
            for expected in command.output:
                assert expected.strip() in out, f"{where}\nexpected: {expected}\ngot:\n{out[-3000:]}"
            if command.output[0].startswith("error:"):
                assert res.returncode != 0 and "Traceback" not in out, f"{where}\n{out[-3000:]}"
        else:
            assert res.returncode == 0, f"{where}\nexit {res.returncode}\n{out[-5000:]}"
        if command.text in CHECKS:
            CHECKS[command.text](ws, res, model01_before)
        if how == "walkthrough" and text.startswith("cp config/competition/"):  # "... and edit it" as shown
            dest = Path(ws.root / text.split()[-1])
            dest.write_text(yaml_after("README.md", int(command.places[0].split(":")[1])))
        if how == "walkthrough" and "/predict.py" in text:  # a submission, checked against the sample
            assert "submission" in out and res.returncode == 0, out[-3000:]
        if how == "walkthrough" and "/model07/train.py" in text:  # the copied network: BCE, above the baseline
            oof, baseline = (float(re.search(rf" {k}=([\d.]+)", res.stdout).group(1))
                             for k in ("oof_accuracy", "baseline_oof_accuracy"))
            assert oof > baseline and "does not beat the trivial baseline" not in out, out[-3000:]
        if how == "bench" and "--profile" in text:  # a trial's time outside training, and the profile written
            assert re.search(r"^1 profiled trial\(s\): [\d.]+ s each .* Trainer\.fit [\d.]+ s", out, re.M), out
            assert "utils/run/harness.py" in out and "utils/run/records.py" in out, out
            assert pstats.Stats(re.search(r"^profile: (\S+\.prof)$", out, re.M).group(1)).total_tt > 0
        elif how == "bench":  # a report with every figure, written where the benchmark says
            report = json.loads(Path(re.search(r"^report: (\S+\.json)$", out, re.M).group(1)).read_text())
            if "--replay" in text:  # per option and sweep kind: the table, the plot, the recommendation
                check_replay_report(report, out)
            elif "--confirm" in text:  # per seed and size: both sides' bests, the same trial or not, the work
                check_confirm_report(report, out)
            elif "--pruning" in text:  # per pruner, beside pruner=none: its figures, the table and the plot
                check_pruning_report(report, out)
            elif "--ensemble" in text:  # each method's time, phases and scores, and the table
                check_ensemble_report(report, out)
            else:
                figures = report["figures"]
                assert figures and all(isinstance(v, float) and math.isfinite(v) for v in figures.values()), report
            if text.startswith("bash scripts/bench.sh") and not rest:  # the default: every field, both sides alike
                check_report(report, res.stdout)
            if "--keep" not in text:  # the throw-away copy is removed unless --keep is given
                assert set((ws.root / "outputs/bench").glob("work-*")) == copies_before, where
        if how == "train" and session.run_id is None and "run_id=" in res.stdout:
            session.run_id = re.search(r"run_id=(\w+)", res.stdout).group(1)
        if how == "sweep" and " fold=all" in text and (done := re.search(r"sweep done: parent run (\w+)", res.stdout)):
            session.sweeps = {**(session.sweeps or {}),
                              competition_of("model", re.search(r"src/model/(model\d+)/", text).group(1)): done[1]}
        if "src/ensemble/" in text and res.returncode == 0:  # its run, its members listed, the scores side by side
            session.ensemble_run_id = re.search(r"run_id=(\w+)", res.stdout).group(1)
            assert re.search(r"nested_oof_\w+=[\d.]+ best_member_oof_\w+=[\d.]+", res.stdout), out[-3000:]
    assert not running_runs(ws), f"{where}: left RUNNING runs {running_runs(ws)}"

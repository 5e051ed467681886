"""src.utils.competition: loading config/competition/*.yaml (read-only here), a logged competition, the checks."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from src.utils.competition import spec
from src.utils.competition.spec import COMPETITION_DIR, Competition, check_named, from_yaml, load, names
from src.utils.core.errors import WorkspaceError
from src.utils.core.paths import ROOT

DIABETES = (COMPETITION_DIR / "diabetes-sample.yaml").read_text()


def test_names_are_the_files_of_config_competition() -> None:
    assert names() == sorted(p.stem for p in COMPETITION_DIR.glob("*.yaml"))
    assert {"digit-recognizer", "diabetes-sample"} <= set(names())


def test_loading_an_unknown_name_is_one_line_listing_the_known_ones() -> None:
    with pytest.raises(WorkspaceError) as exc:
        load("no-such-competition")
    message = str(exc.value)
    assert "\n" not in message
    assert message.startswith("competition=no-such-competition: there is no config/competition/"
                              "no-such-competition.yaml (known: ")
    known = re.search(r"\(known: ([^)]*)\)", message)[1]
    assert known.split(", ") == names()


def test_load_reads_the_digit_recognizer_file() -> None:
    c = load("digit-recognizer")
    assert (c.name, c.slug, c.ids, c.targets, c.values, c.fold_models) == (
        "digit-recognizer", "digit-recognizer", ["ImageId"], ["Label"], "label", "mean")
    assert c.where == "config/competition/digit-recognizer.yaml"
    assert c.raw_dir == ROOT / "_data" / "data" / "raw"
    assert c.raw_file("train") == ROOT / "_data" / "data" / "raw" / "train.csv"
    assert [m.name for m in c.metrics] == ["accuracy", "log_loss"]
    assert c.metric.name == "accuracy" and c.metric.direction == "max" and c.metric.input == "label"
    assert c.task.width == 10


def test_load_keeps_a_loaded_file_until_it_changes() -> None:
    assert load("digit-recognizer") is load("digit-recognizer")


def test_from_yaml_is_the_logged_competition_and_scores_with_its_metrics() -> None:
    c = from_yaml("diabetes-sample", DIABETES)
    assert c.file is None and c.where == "competition diabetes-sample"
    assert (c.ids, c.targets, c.values) == (["id"], ["target"], "score")
    assert [m.name for m in c.metrics] == ["rmse", "mae", "r2"]
    y, scores = np.array([[1.0], [2.0], [3.0]]), np.array([[1.0], [2.0], [4.0]])
    got = c.score(y, scores)
    assert got["rmse"] == pytest.approx(np.sqrt(1 / 3))
    assert got["mae"] == pytest.approx(1 / 3)
    assert got["r2"] == pytest.approx(0.5)


def test_score_of_the_multiclass_competition_uses_labels_and_probabilities() -> None:
    c = load("digit-recognizer")
    scores = np.full((4, 10), 0.01)
    scores[np.arange(4), [0, 1, 2, 9]] = 0.91  # the last row is wrong
    got = c.score(np.array([0, 1, 2, 3]), scores)
    assert got["accuracy"] == pytest.approx(0.75)
    assert got["log_loss"] > 0


def test_submission_is_the_ids_then_the_targets() -> None:
    c = from_yaml("diabetes-sample", DIABETES)
    frame = c.submission(pd.DataFrame({"id": [7, 8]}, index=[5, 6]), np.array([[1.5], [2.5]]))
    assert list(frame.columns) == ["id", "target"]
    assert frame["id"].tolist() == [7, 8] and frame["target"].tolist() == [1.5, 2.5]


def sample(tmp_path: Path, ids: list[int]) -> Competition:
    c = from_yaml("diabetes-sample", DIABETES)
    c.cfg.raw_dir = str(tmp_path)
    pd.DataFrame({"id": ids, "target": 0.0}).to_csv(tmp_path / "sample_submission.csv", index=False)
    return c


def test_check_submission_against_the_sample(tmp_path: Path) -> None:
    c = sample(tmp_path, [1, 2, 3])
    c.check_submission(pd.DataFrame({"id": [3, 1, 2], "target": [0.1, 0.2, 0.3]}))  # ids in any order
    with pytest.raises(WorkspaceError, match=r"has columns \['id', 'value'\] but"):
        c.check_submission(pd.DataFrame({"id": [1, 2, 3], "value": 0.0}))
    with pytest.raises(WorkspaceError, match="has 2 rows but"):
        c.check_submission(pd.DataFrame({"id": [1, 2], "target": 0.0}))
    with pytest.raises(WorkspaceError, match=r"id values differ .*\(e\.g\. \['3', '4'\]\)"):
        c.check_submission(pd.DataFrame({"id": [1, 2, 4], "target": 0.0}))


def test_check_submission_without_a_sample_names_the_command(tmp_path: Path) -> None:
    c = from_yaml("diabetes-sample", DIABETES)
    c.cfg.raw_dir = str(tmp_path / "empty")
    with pytest.raises(WorkspaceError, match="prepare_data.sh --competition diabetes-sample"):
        c.check_submission(pd.DataFrame({"id": [1], "target": [0.0]}))


@pytest.mark.parametrize(("edit", "message"), [
    ({"slug": None}, "key 'slug' is missing"),
    ({"files": {"train": "t.csv", "test": "x.csv"}}, "files.sample_submission is missing"),
    ({"submission": {"values": "proba"}}, "submission.values=proba is not allowed: label or score"),
    ({"submission": {"values": "score", "fold_models": "max"}}, "submission.fold_models=max is not allowed"),
])
def test_a_bad_competition_file_is_one_error_line(edit: dict, message: str) -> None:
    cfg = OmegaConf.create(DIABETES)
    for key, value in edit.items():
        cfg[key] = value
    with pytest.raises(WorkspaceError, match=re.escape(message)):
        Competition("bad", cfg)


@pytest.mark.parametrize(("metrics", "message"), [
    ({}, "metrics is empty"),
    ({"m": 3}, "metrics.m needs fn"),
    ({"m": {"fn": {"_target_": "sklearn.metrics.r2_score", "_partial_": True}, "direction": "up"}},
     "metrics.m.direction=up is not allowed"),
    ({"m": {"fn": {"_target_": "sklearn.metrics.r2_score", "_partial_": True}, "input": "prob"}},
     "metrics.m.input=prob is not allowed"),
    ({"m": {"fn": {"_target_": "os.system", "_partial_": True}}}, "metrics.m.fn cannot be built"),
])
def test_bad_metrics_are_one_error_line(metrics: dict, message: str) -> None:
    cfg = OmegaConf.create(DIABETES)
    cfg.metrics = metrics or {}
    if not metrics:  # an empty mapping still counts as present
        cfg.metrics = OmegaConf.create({})
    with pytest.raises(WorkspaceError, match=re.escape(message)):
        _ = Competition("bad", cfg).metrics


def test_a_task_that_cannot_be_built_is_one_error_line() -> None:
    cfg = OmegaConf.create(DIABETES)
    cfg.task = {"_target_": "src.tasks.NoSuchTask"}
    with pytest.raises(WorkspaceError, match=r"task cannot be built .*src\.tasks\.Regression"):
        _ = Competition("bad", cfg).task
    cfg.task = {"_target_": "sklearn.model_selection.KFold", "_partial_": True}  # builds, but no Task
    with pytest.raises(WorkspaceError, match="task._target_ must be a src.tasks.Task"):
        _ = Competition("bad", cfg).task


def test_check_named() -> None:
    class Config:
        competition: str | None = None

    check_named(Config())  # no competition named: nothing to check
    check_named(object())
    Config.competition = "digit-recognizer"
    check_named(Config())
    Config.competition = "nope"
    with pytest.raises(WorkspaceError, match=r"^competition=nope: there is no"):
        check_named(Config())


def test_reason_is_the_root_causes_first_line() -> None:
    try:
        try:
            raise ValueError("root cause\nmore")
        except ValueError as inner:
            raise RuntimeError("wrapper") from inner
    except RuntimeError as outer:
        assert spec._reason(outer) == "root cause"
    assert spec._reason(KeyError()) == "KeyError"


BINARY = """slug: passengers
raw_dir: {raw}
files: {{train: train.csv, test: test.csv, sample_submission: sample_submission.csv}}
id: [PassengerId]
target: [Survived]
task: {{_target_: src.tasks.Binary}}
metrics: {{{metric}: {{fn: {{_target_: {fn}, _partial_: true}}, input: {input}, direction: max}}}}
submission: {{values: {values}}}
"""


def binary(tmp_path: Path, fn: str = "sklearn.metrics.roc_auc_score", input: str = "score", values: str = "score",
           metric: str = "auc") -> Competition:
    return from_yaml("passengers", BINARY.format(raw=tmp_path, fn=fn, input=input, values=values, metric=metric))


@pytest.mark.parametrize(("fn", "declared", "wanted"), [
    ("sklearn.metrics.roc_auc_score", "label", "score"),      # scikit-learn's scorer asks for predict_proba
    ("sklearn.metrics.accuracy_score", "score", "label"),     # ... for predict
    ("sklearn.metrics.log_loss", "label", "score"),
    ("sklearn.metrics.hamming_loss", "score", "label"),       # no scorer: tried on the task's tiny example
    ("torchmetrics.functional.classification.binary_auroc", "label", "score"),
])
def test_a_metric_given_the_wrong_kind_is_one_line_naming_the_input_to_write(tmp_path: Path, fn: str, declared: str,
                                                                            wanted: str) -> None:
    with pytest.raises(WorkspaceError) as raised:
        _ = binary(tmp_path, fn=fn, input=declared).metrics
    assert str(raised.value) == (
        f"competition passengers: metrics.auc.input={declared}: {fn} takes "
        f"{'class labels' if wanted == 'label' else 'scores (probabilities or values)'}, not "
        f"{'class labels' if declared == 'label' else 'scores (probabilities or values)'}; write input: {wanted} "
        f"under metrics.auc")
    assert binary(tmp_path, fn=fn, input=wanted).metrics[0].input == wanted


def test_the_kinds_come_from_scikit_learns_scorers_and_regression_takes_either() -> None:
    import sklearn.metrics as m

    from src.utils.competition.kinds import scorer_kind

    assert [scorer_kind(f) for f in (m.roc_auc_score, m.accuracy_score, m.average_precision_score, m.f1_score)] == [
        "score", "label", "score", "label"]
    assert scorer_kind(lambda y, p: 0.0) is None
    for kind in ("label", "score"):  # a regression's labels are its values: both kinds are the same numbers
        cfg = OmegaConf.create(DIABETES)
        cfg.metrics.rmse.input = kind
        assert Competition("diabetes", cfg).metrics[0].input == kind


@pytest.mark.parametrize(("sample", "values", "message"), [
    ([0.5, 0.5, 0.25], "label", "holds probabilities in Survived (e.g. 0.5); write values: score under submission"),
    (["yes", "no", "no"], "score", "holds class labels in Survived (e.g. 'yes'); write values: label under submission"),
    ([0, 1, 0], "label", None),   # 0/1 is a label or a placeholder probability: either is right
    ([0, 1, 0], "score", None),
    ([0.1, 0.9, 0.3], "score", None),
])
def test_the_submission_values_are_what_the_sample_submission_holds(tmp_path: Path, sample: list, values: str,
                                                                    message: str | None) -> None:
    from src.utils.competition.kinds import check_submission_values

    pd.DataFrame({"PassengerId": [1, 2, 3], "Survived": sample}).to_csv(tmp_path / "sample_submission.csv",
                                                                        index=False)
    competition = binary(tmp_path, values=values)
    if message is None:
        check_submission_values(competition, tmp_path / "sample_submission.csv")
        return
    with pytest.raises(WorkspaceError) as raised:
        check_submission_values(competition, tmp_path / "sample_submission.csv")
    assert str(raised.value).startswith(f"competition passengers: submission.values={values}, but ")
    assert str(raised.value).endswith(message)
    check_submission_values(competition, tmp_path / "missing.csv")  # no sample yet: nothing to check against


def test_load_checks_the_submission_values_against_the_sample(tmp_path: Path, monkeypatch) -> None:
    folder = tmp_path / "competition"
    folder.mkdir()
    (folder / "passengers.yaml").write_text(BINARY.format(raw=tmp_path, fn="sklearn.metrics.roc_auc_score",
                                                          input="score", values="label", metric="auc"))
    pd.DataFrame({"PassengerId": [1, 2], "Survived": [0.5, 0.5]}).to_csv(tmp_path / "sample_submission.csv",
                                                                         index=False)
    monkeypatch.setattr(spec, "COMPETITION_DIR", folder)
    with pytest.raises(WorkspaceError, match=r"passengers.yaml: submission.values=label, but .* write values: score"):
        load("passengers")


def test_a_run_whose_competition_file_changed_since_says_which_copy_is_used(tmp_path: Path, monkeypatch,
                                                                            capsys) -> None:
    folder = tmp_path / "competition"
    folder.mkdir()
    text = BINARY.format(raw=tmp_path, fn="sklearn.metrics.roc_auc_score", input="score", values="label", metric="auc")
    (folder / "passengers.yaml").write_text(text)
    monkeypatch.setattr(spec, "COMPETITION_DIR", folder)
    assert spec.logged("passengers", text, "abcdef0123", "predict.py").values == "label"
    assert capsys.readouterr().err == ""  # the same file: nothing to say
    (folder / "passengers.yaml").write_text(text.replace("values: label", "values: score").replace(
        "[Survived]", "[Alive]"))
    assert spec.logged("passengers", text, "abcdef0123", "rerun.sh").values == "label"  # the run's copy
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == (f"warning: {folder / 'passengers.yaml'} has changed since run abcdef01 was trained (submission."
                    f"values: label -> score; target: ['Survived'] -> ['Alive']); rerun.sh uses the run's own copy "
                    f"(its competition.yaml); train a new run to use today's file")


def test_the_digest_is_what_the_data_stages_read_of_the_file() -> None:
    base = Competition("d", OmegaConf.create(DIABETES)).digest
    for key, value in (("target", ["progression"]), ("id", ["row"]), ("files", {"train": "t.csv", "test": "x.csv",
                       "sample_submission": "s.csv"}), ("task", {"_target_": "src.tasks.Binary"})):
        cfg = OmegaConf.create(DIABETES)
        cfg[key] = value
        assert Competition("d", cfg).digest != base, key
    cfg = OmegaConf.create(DIABETES)
    cfg.submission.values, cfg.title, cfg.id = "label", "another title", "id"  # not read by a stage; id == [id]
    del cfg.metrics.mae
    assert Competition("d", cfg).digest == base

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

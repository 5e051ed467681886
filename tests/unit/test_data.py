"""src.utils.data: fold assignment by configured splitters, the folds hash, training rows, the manifest, features."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from src.utils.core.errors import WorkspaceError
from src.utils.core.io import write_json
from src.utils.data.cv import Folds, assign_folds, folds_hash, train_rows
from src.utils.data.features import Features, load_features
from src.utils.data.manifest import first_change, seal
from src.utils.data.stage import check_input

N = 60


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    label = np.repeat([0, 1, 2], [30, 20, 10])
    rng.shuffle(label)
    groups = np.repeat(np.arange(12), 5)
    rng.shuffle(groups)
    return pd.DataFrame({"label": label, "patient": groups, "x": rng.normal(size=N)})


def cv(target: str, stratify: str | None = None, groups: str | None = None, **kw) -> object:
    return OmegaConf.create({"splitter": {"_target_": f"sklearn.model_selection.{target}", **kw},
                             "stratify": stratify, "groups": groups})


def check_every_row_once(folds: Folds, k: int) -> None:
    assert folds.folds.dtype == np.int64 and folds.folds.shape == (N,)
    assert folds.n_folds == k
    assert set(folds.folds.tolist()) == set(range(k))  # every row in one of the k folds, none left out


def test_kfold_gives_every_row_one_fold_and_balanced_folds(frame) -> None:
    folds = assign_folds(cv("KFold", n_splits=5, shuffle=True, random_state=0), frame)
    check_every_row_once(folds, 5)
    assert np.bincount(folds.folds).tolist() == [12] * 5
    assert not folds.ordered and folds.splitter == "sklearn.model_selection._split.KFold"


def test_stratified_kfold_keeps_the_class_shares_in_every_fold(frame) -> None:
    folds = assign_folds(cv("StratifiedKFold", "label", n_splits=5, shuffle=True, random_state=1), frame)
    check_every_row_once(folds, 5)
    for k in range(5):
        counts = np.bincount(frame.label[folds.folds == k], minlength=3)
        assert counts.tolist() == [6, 4, 2]


def test_group_kfold_never_splits_a_group(frame) -> None:
    folds = assign_folds(cv("GroupKFold", groups="patient", n_splits=4), frame)
    check_every_row_once(folds, 4)
    per_group = pd.Series(folds.folds).groupby(frame.patient.to_numpy()).nunique()
    assert (per_group == 1).all()
    assert np.bincount(folds.folds).tolist() == [15] * 4  # 12 groups of 5 rows in 4 folds


def test_the_same_config_gives_the_same_folds(frame) -> None:
    config = cv("StratifiedKFold", "label", n_splits=3, shuffle=True, random_state=7)
    a, b = assign_folds(config, frame), assign_folds(config, frame)
    assert np.array_equal(a.folds, b.folds) and a.hash == b.hash
    other = assign_folds(cv("StratifiedKFold", "label", n_splits=3, shuffle=True, random_state=8), frame)
    assert other.hash != a.hash


def test_a_time_series_split_is_ordered_and_leaves_the_first_block_unvalidated(frame) -> None:
    folds = assign_folds(cv("TimeSeriesSplit", n_splits=4), frame)
    assert folds.ordered and folds.n_folds == 4
    assert folds.folds[:12].tolist() == [-1] * 12
    assert np.all(np.diff(folds.folds) >= 0)  # in time order
    facts = folds.facts()
    assert facts["n_folds"] == 4
    assert facts["cv"]["unvalidated_rows"] == 12 and facts["cv"]["ordered"] is True
    assert facts["cv"]["per_fold"] == {"0": 12, "1": 12, "2": 12, "3": 12}
    assert facts["cv"]["folds_hash"] == folds_hash(folds.folds, True)


@pytest.mark.parametrize(("config", "message"), [
    (cv("StratifiedKFold", n_splits=3), "cv.splitter is StratifiedKFold but cv.stratify is null"),
    (cv("GroupKFold", n_splits=3), "cv.splitter is GroupKFold but cv.groups is null"),
    (cv("KFold", "nope", n_splits=3), "cv.stratify=nope: the training data has no column 'nope'"),
    (cv("KFold", groups="nope", n_splits=3), "cv.groups=nope: the training data has no column 'nope'"),
    (cv("StratifiedKFold", "label", n_splits=11), "with n_splits=11, but class"),
    (cv("KFold", n_splits=100), "cv: KFold cannot split 60 rows"),
    (cv("ShuffleSplit", n_splits=4, test_size=0.5, random_state=0), "puts rows in several validation folds"),
    (cv("NoSuchSplitter"), "cv.splitter cannot be built"),
])
def test_a_setting_that_cannot_be_is_one_error_line(frame, config, message: str) -> None:
    with pytest.raises(WorkspaceError) as exc:
        assign_folds(config, frame)
    assert message in str(exc.value)
    assert "\n" not in str(exc.value)


def test_the_error_names_the_node_it_was_given(frame) -> None:
    with pytest.raises(WorkspaceError, match=r"^dataset\.cv\.splitter is GroupKFold"):
        assign_folds(cv("GroupKFold"), frame, where="dataset.cv")


def test_a_splitter_outside_the_allow_list_is_refused(frame) -> None:
    with pytest.raises(WorkspaceError, match="cv.splitter cannot be built"):
        assign_folds(OmegaConf.create({"splitter": {"_target_": "os.system", "_args_": ["true"]}}), frame)


def test_folds_hash_depends_on_rows_folds_and_the_rule() -> None:
    folds = np.array([0, 1, 2, 0, 1, 2])
    h = folds_hash(folds)
    assert h == folds_hash(folds.astype(np.int32))  # the values, not the dtype
    assert h == folds_hash(list(folds))
    assert h != folds_hash(np.array([0, 1, 2, 0, 2, 1]))
    assert h != folds_hash(folds, ordered=True)
    assert h == folds_hash(folds[::-1][::-1].copy())
    assert h == folds_hash(np.stack([folds, folds])[0])  # a non-contiguous view reads as its values


def test_train_rows_are_the_other_folds_or_the_earlier_ones() -> None:
    folds = np.array([-1, -1, 0, 0, 1, 1, 2, 2])
    assert train_rows(folds, 1, ordered=False).tolist() == [2, 3, 6, 7]  # never the unvalidated rows
    assert train_rows(folds, 1, ordered=True).tolist() == [0, 1, 2, 3]  # earlier folds and the first block
    assert train_rows(folds, 0, ordered=True).tolist() == [0, 1]
    kfold = np.array([0, 1, 2, 0, 1, 2])
    for k in range(3):
        rows = train_rows(kfold, k, ordered=False)
        assert set(rows) | set(np.flatnonzero(kfold == k)) == set(range(6))
        assert not set(rows) & set(np.flatnonzero(kfold == k))


# --- manifest ---------------------------------------------------------------------------------------------------------
def sealed(folder: Path) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "a.txt").write_text("alpha")
    np.save(folder / "b.npy", np.arange(5))
    return seal(folder, "feature01", {"n_folds": 3}, extra_fact="x")


def test_seal_writes_the_manifest_of_the_folders_files(tmp_path: Path) -> None:
    manifest = sealed(tmp_path / "out")
    assert manifest["stage"] == "feature01" and manifest["n_folds"] == 3 and manifest["extra_fact"] == "x"
    assert sorted(manifest["files"]) == ["a.txt", "b.npy"]
    assert manifest["files"]["a.txt"]["bytes"] == 5
    from src.utils.core.io import read_json

    assert read_json(tmp_path / "out" / "manifest.json") == manifest
    again = seal(tmp_path / "out", "feature01", {"n_folds": 3}, extra_fact="x")  # the manifest is not a file of it
    assert again["content_hash"] == manifest["content_hash"] and "manifest.json" not in again["files"]


def test_first_change_finds_a_missing_a_truncated_and_an_edited_file(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    manifest = sealed(folder)
    assert first_change(folder, manifest) is None
    (folder / "a.txt").write_text("alphA")  # same size, other bytes, written after the manifest
    later = (folder / "manifest.json").stat().st_mtime + 10
    os.utime(folder / "a.txt", (later, later))
    path, what = first_change(folder, manifest)
    assert path == folder / "a.txt" and "edited after it was built" in what
    (folder / "a.txt").write_text("alp")
    assert first_change(folder, manifest) == (folder / "a.txt", "has 3 bytes, the manifest says 5 (a truncated or "
                                                                "edited file)")
    (folder / "a.txt").unlink()
    assert first_change(folder, manifest) == (folder / "a.txt", "is missing from its folder")
    assert first_change(folder, {"files": {}}) is None  # a manifest that lists nothing is taken at its word


def test_a_file_touched_but_unchanged_is_no_change(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    manifest = sealed(folder)
    later = (folder / "manifest.json").stat().st_mtime + 10
    os.utime(folder / "a.txt", (later, later))
    assert first_change(folder, manifest) is None


def test_check_input_names_the_rebuild(tmp_path: Path) -> None:
    folder = tmp_path / "dataset01"
    sealed(folder)
    check_input(folder)
    (folder / "a.txt").write_text("a")
    with pytest.raises(WorkspaceError, match=r"has 1 bytes, the manifest says 5 .*rebuild dataset01: poetry run "
                                             r"python src/dataset/dataset01/make_dataset.py force=true"):
        check_input(folder)
    check_input(tmp_path / "raw")  # no manifest (raw data): not checked


# --- features ---------------------------------------------------------------------------------------------------------
def feature_folder(folder: Path, folds: np.ndarray, ordered: bool = False) -> Path:
    folder.mkdir(parents=True)
    np.save(folder / "train_y.npy", np.arange(len(folds)) % 2)
    np.save(folder / "folds.npy", folds)
    np.save(folder / "train_x.npy", np.arange(len(folds) * 2, dtype=np.float32).reshape(-1, 2))
    np.save(folder / "test_ids.npy", np.array([10, 11, 12]))
    seal(folder, "feature01", {"n_folds": int(folds.max()) + 1, "cv": {"ordered": ordered}},
         competition="digit-recognizer")
    return folder


def test_features_split_and_properties(tmp_path: Path) -> None:
    folds = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    features = load_features(feature_folder(tmp_path / "feature09", folds))
    assert features.name == "feature09" and features.n_folds == 3 and features.competition == "digit-recognizer"
    assert not features.ordered
    train, valid = features.split(1)
    assert valid.tolist() == [1, 4, 7] and train.tolist() == [0, 2, 3, 5, 6]
    assert features.split(1) is features.split(1)  # computed once
    assert features.train_x.shape == (8, 2)
    assert features.test_ids(["ImageId"])["ImageId"].tolist() == [10, 11, 12]
    with pytest.raises(WorkspaceError, match="write test_ids.parquet"):
        features.test_ids(["a", "b"])
    assert load_features(tmp_path / "feature09") is features  # same content hash: kept


def test_features_refuse_a_damaged_file_naming_the_rebuild(tmp_path: Path) -> None:
    folder = feature_folder(tmp_path / "feature09", np.array([0, 1, 0, 1]))
    with open(folder / "folds.npy", "ab") as f:
        f.write(b"x")
    # the stage that wrote it (feature01, into another folder): its script, with the folder it wrote
    with pytest.raises(WorkspaceError, match=r"folds.npy has .* bytes, the manifest says .*rebuild it: poetry run "
                                             r"python src/feature/feature01/build_features.py output_dir=\S+"
                                             r"feature09 force=true"):
        Features(folder, __import__("json").loads((folder / "manifest.json").read_text()))


def test_load_features_without_a_manifest_names_the_command(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match=r"no features in .*feature42; build them with .*feature42/"):
        load_features(tmp_path / "feature42")


def test_features_lineage_checks_the_dataset(tmp_path: Path) -> None:
    dataset = tmp_path / "dataset01"
    dataset.mkdir()
    write_json(dataset / "manifest.json", {"content_hash": "d" * 64})
    folder = tmp_path / "feature09"
    folder.mkdir()
    np.save(folder / "train_y.npy", np.zeros(4))
    np.save(folder / "folds.npy", np.array([0, 1, 0, 1]))
    manifest = seal(folder, "feature01", {"n_folds": 2}, mlflow_run_id="run-f", source={"source": "sample",
                    "is_sample": True}, dataset={"name": "dataset01", "dir": str(dataset), "hash": "d" * 64,
                                                 "run_id": "run-d"})
    tags = Features(folder, manifest).lineage()
    assert tags == {"feature09_hash": manifest["content_hash"], "feature09_run_id": "run-f",
                    "dataset01_hash": "d" * 64, "dataset01_run_id": "run-d", "data_source": "sample",
                    "is_sample_data": "true", "folds_hash": folds_hash(np.array([0, 1, 0, 1]))}
    write_json(dataset / "manifest.json", {"content_hash": "e" * 64})
    with pytest.raises(WorkspaceError, match=r"was built from dataset01 d{12} but dataset01 is now e{12}"):
        Features(folder, manifest).lineage()


def test_the_next_step_is_the_folders_that_read_the_output(tmp_path: Path, monkeypatch) -> None:
    """A copied stage names its own readers (found in config/), not the readers of the folder it was copied from."""
    from src.utils.core.paths import ROOT
    from src.utils.data import stage

    for folder, value in (("feature07", "_data/data/dataset04"), ("feature08", "_data/data/dataset03"),
                          ("feature09", "${root:}/_data/data/dataset04")):
        (tmp_path / "config/feature" / folder).mkdir(parents=True)
        (tmp_path / "config/feature" / folder / "config.yaml").write_text(f"dataset_dir: {value}\n")
    monkeypatch.setattr(stage, "ROOT", tmp_path)
    assert stage.next_step_of("dataset", ROOT / "_data/data/dataset04", "titanic") == (
        "poetry run python src/feature/feature07/build_features.py")
    assert stage.next_step_of("dataset", ROOT / "_data/data/dataset05", "titanic") == (
        "no feature folder reads _data/data/dataset05 yet: copy one of titanic (bash scripts/new_experiment.sh "
        "feature <folder>) and set dataset_dir: _data/data/dataset05 in its config.yaml")
    assert stage.next_step_of("model", ROOT / "x", None) == ""

"""Every ensemble folder, in-process and fast (no `slow` mark), beside tests/test_experiments.py (whose config and
store helpers it uses, with a store and features of its own): each blends fold=all runs of its competition, two
networks and a tree, with every method option, and refuses a member it cannot blend in one line, with no run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests import test_experiments as experiments
from tests.test_experiments import FOLDERS, NETWORKS, RAW, REPO, TREES, entry, hydra_config, store_size

store, features = experiments.store, experiments.features  # this module's own temporary store and feature folders


def competition_of(stage: str, folder: str) -> str:
    from omegaconf import OmegaConf

    return str(OmegaConf.load(REPO / "config" / stage / folder / "config.yaml").competition)


def train_in_process(folder: str, feature_dir: Path, tmp_path: Path, *overrides: str) -> str:
    """A short fit of a model folder in this module's store (two training batches per epoch, or 12 boosting
    rounds); its run_id."""
    import mlflow

    short = ["n_estimators=12"] if folder in TREES else ["max_epochs=1", "+trainer.limit_train_batches=2"]
    cfg = hydra_config("model", folder, [f"feature_dir={feature_dir}", "mlflow.log_model=false", *short,
                                         *overrides], tmp_path)
    entry("model", folder).main(cfg)
    client = mlflow.MlflowClient()
    exp = client.get_experiment_by_name(str(cfg.experiment_name))
    (run,) = client.search_runs([exp.experiment_id], order_by=["attributes.start_time DESC"], max_results=1)
    return run.info.run_id


@pytest.fixture(scope="module")
def members(features: dict[str, Path], store: Path, tmp_path_factory) -> dict[str, list[str]]:
    """fold=all runs of each competition's first network folder (two per competition, other learning rates) and of
    its first tree folder (networks and trees blend together), and the runs an ensemble must refuse: a single-fold
    run, a run on other folds, a FAILED run."""
    tmp = tmp_path_factory.mktemp("members")
    out: dict[str, list[str]] = {}
    trees: dict[str, str] = {}
    for folder in TREES:
        name = competition_of("model", folder)
        if name not in trees:  # the competition's first tree folder
            feature_dir = features[Path(str(hydra_config("model", folder, [], tmp / "probe").feature_dir)).name]
            trees[name] = train_in_process(folder, feature_dir, tmp / folder, "fold=all")
    for folder in NETWORKS:
        name = competition_of("model", folder)
        if name in out:
            continue
        feature_dir = features[Path(str(hydra_config("model", folder, [], tmp / "probe").feature_dir)).name]
        out[name] = [train_in_process(folder, feature_dir, tmp / f"{folder}-{i}", "fold=all", f"lr={lr}")
                     for i, lr in enumerate((0.003, 0.01))] + ([trees[name]] if name in trees else [])
        if folder != "model01":
            continue
        out["single"] = [train_in_process(folder, feature_dir, tmp / "single", "fold=0")]
        dataset = Path(str(hydra_config("feature", "feature01", [], tmp / "probe").dataset_dir)).name
        other = tmp / "other-folds"
        cfg = hydra_config("dataset", dataset, [f"raw_dir={RAW[name]}", f"output_dir={other / dataset}", "seed=7"],
                           tmp / "out")
        entry("dataset", dataset).main(cfg)
        cfg = hydra_config("feature", "feature01", [f"dataset_dir={other / dataset}",
                                                    f"output_dir={other / 'feature01'}"], tmp / "out")
        entry("feature", "feature01").main(cfg)
        out["other folds"] = [train_in_process(folder, other / "feature01", tmp / "other", "fold=all")]
        with pytest.raises(RuntimeError):  # the model cannot be built, after the run started: it ends FAILED
            train_in_process(folder, feature_dir, tmp / "failed", "fold=all", "model.hidden=-1")
        import mlflow

        client = mlflow.MlflowClient()
        exp = client.get_experiment_by_name("model01")
        (failed,) = client.search_runs([exp.experiment_id], "attributes.status = 'FAILED'",
                                       order_by=["attributes.start_time DESC"], max_results=1)
        assert failed.data.params.get("model.hidden") == "-1"  # the run just made, not an earlier test's
        out["failed"] = [failed.info.run_id]
    return out


@pytest.fixture
def raw_dir_of(members: dict[str, list[str]], monkeypatch):
    """The competitions' raw folders are the offline samples written here (for the submission's check)."""
    from src.utils.competition.spec import Competition
    from src.utils.core.paths import resolve

    monkeypatch.setattr(Competition, "raw_dir", property(lambda c: RAW.get(c.name) or resolve(str(c.cfg.raw_dir))))
    return RAW


METHODS = [(folder, method.stem) for folder in FOLDERS["ensemble"]
           for method in sorted((REPO / "config/ensemble" / folder / "method").glob("*.yaml"))]


@pytest.mark.parametrize("folder,method", METHODS, ids=[f"{f}-method={m}" for f, m in METHODS])
def test_ensemble_folder_blends_runs_of_its_competition(folder: str, method: str, members: dict[str, list[str]],
                                                        raw_dir_of, store: Path, tmp_path: Path, capsys) -> None:
    import mlflow
    import pandas as pd
    from omegaconf import OmegaConf

    ids = members[competition_of("ensemble", folder)]
    cfg = hydra_config("ensemble", folder, [f"members.runs=[{','.join(ids)}]", f"method={method}"], tmp_path)
    nested = entry("ensemble", folder).main(cfg)
    out = capsys.readouterr().out
    client = mlflow.MlflowClient()
    run_id = out.split("run_id=")[1].split()[0]
    run = client.get_run(run_id)
    name = run.data.tags["competition_metric"]
    assert run.info.status == "FINISHED" and run.data.tags["stage"] == "ensemble"
    assert [run.data.tags[f"member.{i}"] for i in range(len(ids))] == ids
    assert run.data.tags["ensemble_members"].split(",") == ids
    m = run.data.metrics
    assert m[f"nested_oof_{name}"] == pytest.approx(nested) and np.isfinite(m[f"oof_{name}"])
    assert f"best_member_oof_{name}" in m and all(f"member{i}_oof_{name}" in m for i in range(len(ids)))
    files = {a.path for a in client.list_artifacts(run_id)}
    assert {"members.csv", "blend", "predictions", "oof_predictions.csv", "test_predictions.csv", "submission.csv",
            "members_vs_blend.png", "oof_correlation.png", "config.yaml", "competition.yaml", "code"} <= files
    # the config as it ran: the members resolved to run_ids, so a rerun blends the same runs
    logged = OmegaConf.load(client.download_artifacts(run_id, "config.yaml", str(tmp_path)))
    assert list(logged.members.runs) == ids and not logged.members.sweeps
    table = pd.read_csv(client.download_artifacts(run_id, "members.csv", str(tmp_path)))
    assert table["run_id"].tolist() == ids
    member_oof = [client.get_run(i).data.metrics[f"oof_{name}"] for i in ids]
    assert table[f"oof_{name}"].to_numpy() == pytest.approx(member_oof)  # each member scored as its own run did
    tests = [np.load(client.download_artifacts(i, "predictions/test_scores.npy", str(tmp_path / i))) for i in ids]
    blended = np.load(client.download_artifacts(run_id, "predictions/test_scores.npy", str(tmp_path)))
    if method in ("mean", "hill_climbing"):  # weights that sum to one, applied to the members' logged test scores
        assert table["weight"].sum() == pytest.approx(1.0)
        expected = sum(w * t for w, t in zip(table["weight"], tests, strict=True))
        assert blended == pytest.approx(expected)
    if method == "mean":
        assert m[f"nested_oof_{name}"] == m[f"oof_{name}"]  # nothing is fitted: nested and in-sample agree
    submission = pd.read_csv(client.download_artifacts(run_id, "submission.csv", str(tmp_path)))
    sample = pd.read_csv(raw_dir_of[competition_of("ensemble", folder)] / "sample_submission.csv")
    assert list(submission.columns) == list(sample.columns) and len(submission) == len(sample)


def test_every_ensemble_folder_names_a_competition_with_model_folders() -> None:
    models = {competition_of("model", f) for f in FOLDERS["model"]}
    assert FOLDERS["ensemble"] and {competition_of("ensemble", f) for f in FOLDERS["ensemble"]} <= models


BAD_MEMBERS = [  # (which runs, what the one error line says)
    (["good", "0123456789abcdef0123456789abcdef"], "member 0123456789abcdef0123456789abcdef: no such run"),
    (["good", "single"], "was trained on fold 0 only: a member needs OOF predictions on every row; train it again "
                         "with fold=all"),
    (["good", "failed"], "ended FAILED; only FINISHED runs can be members"),
    (["good", "other folds"], "was trained on other folds (folds_hash"),
    (["good", "other competition"], "belongs to competition diabetes-sample, this ensemble to digit-recognizer"),
    (["good", "good"], "is listed twice (also from run); name each run once"),
    (["good"], "an ensemble needs two members or more, and 1 was named"),
]


@pytest.mark.parametrize("which,message", BAD_MEMBERS, ids=[" ".join(w) for w, _ in BAD_MEMBERS])
def test_a_bad_member_is_one_error_line_and_no_run(which: list[str], message: str, members: dict[str, list[str]],
                                                   raw_dir_of, store: Path, tmp_path: Path, capsys) -> None:
    named = {"good": members["digit-recognizer"][0], "other competition": members["diabetes-sample"][0],
             **{k: v[0] for k, v in members.items() if k in ("single", "failed", "other folds")}}
    ids = [named.get(w, w) for w in which]
    cfg = hydra_config("ensemble", "ensemble01", [f"members.runs=[{','.join(ids)}]", "experiment_name=never-created"],
                       tmp_path)
    before = store_size(store)
    with pytest.raises(SystemExit) as exit_:
        entry("ensemble", "ensemble01").main(cfg)
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert store_size(store) == before  # no run, no experiment

"""src.utils.run: which folds a run trains, the checkpoint it resumes from, DDP workers, fold labels, the OOF CSV
writer and the summary line."""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from src.utils.core.errors import WorkspaceError
from src.utils.run import ddp
from src.utils.run.checks import checked_ckpt, folds_to_run
from src.utils.run.ddp import ddp_worker
from src.utils.run.learner import Fold
from src.utils.run.records import Summary, write_csv


# --- folds_to_run -----------------------------------------------------------------------------------------------------
def test_folds_to_run() -> None:
    assert folds_to_run("all", 5) == [0, 1, 2, 3, 4]
    assert folds_to_run(0, 5) == [0]
    assert folds_to_run(4, 5) == [4]
    assert folds_to_run("2", 5) == [2]


@pytest.mark.parametrize("fold", [5, 7, -1])
def test_a_fold_that_does_not_exist_is_one_error_line(fold: int) -> None:
    with pytest.raises(WorkspaceError) as exc:
        folds_to_run(fold, 5)
    assert str(exc.value) == (f"fold={fold} does not exist: the features have 5 folds (use fold=0..4 or fold=all)")


# --- checked_ckpt -----------------------------------------------------------------------------------------------------
def test_no_checkpoint_is_none() -> None:
    assert checked_ckpt(None) is None
    assert checked_ckpt("") is None


def test_a_missing_checkpoint_is_one_error_line(tmp_path: Path) -> None:
    path = tmp_path / "nope.ckpt"
    with pytest.raises(WorkspaceError, match=rf"^ckpt_path={path}: no such file; pick one under logs/lightning/$"):
        checked_ckpt(str(path))


def test_a_file_that_is_not_a_lightning_checkpoint_is_one_error_line(tmp_path: Path) -> None:
    import torch

    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(WorkspaceError, match=rf"^ckpt_path={garbage} is not a readable Lightning checkpoint \("):
        checked_ckpt(str(garbage))
    plain = tmp_path / "plain.ckpt"
    torch.save({"weights": 1}, plain)  # readable, but no state_dict
    with pytest.raises(WorkspaceError, match=r"is not a readable Lightning checkpoint \(AssertionError\)"):
        checked_ckpt(str(plain))


def lightning_ckpt(path: Path, epochs_done: int | None) -> Path:
    import torch

    ckpt: dict = {"state_dict": {}}
    if epochs_done is not None:
        ckpt["loops"] = {"fit_loop": {"epoch_progress": {"current": {"processed": epochs_done}}}}
    torch.save(ckpt, path)
    return path


def test_a_checkpoint_with_epochs_left_is_its_absolute_path(tmp_path: Path) -> None:
    path = lightning_ckpt(tmp_path / "last.ckpt", 3)
    assert checked_ckpt(str(path), max_epochs=5) == str(path)
    assert checked_ckpt(str(path)) == str(path)  # no max_epochs: nothing to compare
    assert checked_ckpt(str(lightning_ckpt(tmp_path / "old.ckpt", None)), max_epochs=1) == str(tmp_path / "old.ckpt")


def test_a_checkpoint_that_has_trained_max_epochs_already_is_refused(tmp_path: Path) -> None:
    path = lightning_ckpt(tmp_path / "last.ckpt", 3)
    with pytest.raises(WorkspaceError) as exc:
        checked_ckpt(str(path), max_epochs=3)
    assert str(exc.value) == (f"ckpt_path={path} has already trained 3 epoch(s), and max_epochs=3: nothing is left to "
                              f"train; resume with a larger max_epochs (e.g. max_epochs=6)")


def test_a_relative_checkpoint_path_is_relative_to_the_project_root(tmp_path: Path, monkeypatch) -> None:
    from src.utils.run import checks

    monkeypatch.setattr(checks, "resolve", lambda p: tmp_path / p)
    lightning_ckpt(tmp_path / "last.ckpt", 1)
    assert checked_ckpt("last.ckpt", max_epochs=2) == str(tmp_path / "last.ckpt")


# --- ddp --------------------------------------------------------------------------------------------------------------
@pytest.fixture
def clean_env(monkeypatch):
    for name in ("LOCAL_RANK", "NODE_RANK", "SLURM_NTASKS", "SLURM_PROCID"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


DDP = OmegaConf.create({"trainer": {"strategy": "ddp"}})


def test_the_main_process_is_not_a_worker(clean_env) -> None:
    assert ddp_worker() is False
    assert ddp_worker(DDP) is False
    clean_env.setenv("LOCAL_RANK", "0")
    clean_env.setenv("NODE_RANK", "")
    assert ddp_worker(DDP) is False


@pytest.mark.parametrize(("name", "value"), [("LOCAL_RANK", "1"), ("NODE_RANK", "2")])
def test_a_process_lightning_started_is_a_worker(clean_env, name: str, value: str) -> None:
    clean_env.setenv(name, value)
    assert ddp_worker() is True
    assert ddp_worker(OmegaConf.create({"trainer": {"strategy": "auto"}})) is True


def test_an_srun_task_is_a_worker_only_with_a_ddp_strategy(clean_env) -> None:
    clean_env.setenv("SLURM_NTASKS", "2")
    clean_env.setenv("SLURM_PROCID", "1")
    assert ddp_worker(DDP) is True
    assert ddp_worker(OmegaConf.create({"trainer": {"strategy": "ddp_find_unused_parameters_true"}})) is True
    assert ddp_worker(OmegaConf.create({"trainer": {"strategy": "auto"}})) is False
    assert ddp_worker(OmegaConf.create({"trainer": {}})) is False
    assert ddp_worker(OmegaConf.create({})) is False
    assert ddp_worker() is False
    clean_env.setenv("SLURM_PROCID", "0")
    assert ddp_worker(DDP) is False  # the first task is rank 0
    clean_env.setenv("SLURM_PROCID", "1")
    clean_env.setenv("SLURM_NTASKS", "1")
    assert ddp_worker(DDP) is False


def test_from_module_keeps_what_was_not_pickled_by_value() -> None:
    def build(cfg, features, fold):  # defined in this module, not __main__
        return None

    class Config:
        pass

    assert ddp.from_module(build, Config) == (build, Config)


# --- learner ----------------------------------------------------------------------------------------------------------
def fold(k: int, cv: bool, link_number: int | None) -> Fold:
    link = SimpleNamespace(number=link_number) if link_number is not None else None
    return Fold(cfg=OmegaConf.create({}), features=SimpleNamespace(n_folds=5), competition=None, fold=k,
                ckpt_dir=Path("/tmp"), cv=cv, link=link)


def test_fold_label() -> None:
    assert fold(2, cv=False, link_number=None).label == ""
    assert fold(2, cv=True, link_number=None).label == "fold 2/4 "
    assert fold(2, cv=True, link_number=4).label == "trial 4 fold 2/4 "
    assert fold(0, cv=False, link_number=11).label == "trial 11 "



# --- records ----------------------------------------------------------------------------------------------------------
def oof_frame(n: int = 50) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    p = rng.dirichlet(np.ones(3), size=n)
    return pd.DataFrame({"row": np.arange(n), "fold": rng.integers(0, 5, n), "label": rng.integers(0, 3, n),
                         "pred_label": p.argmax(1), "prob_0": p[:, 0], "prob_1": p[:, 1], "prob_2": p[:, 2],
                         "neg": -rng.random(n)})


def test_write_csv_writes_what_pandas_writes_for_an_oof_frame(tmp_path: Path) -> None:
    frame = oof_frame()
    write_csv(frame, tmp_path / "oof.csv")
    ours = (tmp_path / "oof.csv").read_text()
    assert ours == frame.to_csv(index=False)  # byte for byte: ints and fractional floats, shortest round trip
    back = pd.read_csv(tmp_path / "oof.csv")
    pd.testing.assert_frame_equal(back, frame)  # exact floats


def test_write_csv_header_is_as_pandas_writes_it(tmp_path: Path) -> None:
    frame = pd.DataFrame({"plain": [1], "with space": [2], "a,b": [3], 'q"uote': [4], 5: [6]})
    write_csv(frame, tmp_path / "h.csv")
    assert (tmp_path / "h.csv").read_text().splitlines()[0] == frame.to_csv(index=False).splitlines()[0]


def test_write_csv_reads_back_as_pandas_output_does(tmp_path: Path) -> None:
    frame = pd.DataFrame({"id": [1, 2, 3], "y": [0.5, 1.0, 2.25], "name": ["a b", "c,d", 'e"f'],
                          "missing": [np.nan, 1.5, 2.5], "small": [6.4e-07, 1e-10, 0.1 / 3],
                          "big": [1e16, 2.5e20, 3.0]})
    write_csv(frame, tmp_path / "w.csv")
    ours, theirs = pd.read_csv(tmp_path / "w.csv"), pd.read_csv(io.StringIO(frame.to_csv(index=False)))
    pd.testing.assert_frame_equal(ours, theirs)


def test_write_csv_differs_from_pandas_in_spelling_where_its_docstring_says(tmp_path: Path) -> None:
    # what the code does (Arrow's writer): a whole float without ".0", every string quoted, exponents unpadded
    frame = pd.DataFrame({"x": [1.0, 0.5, 6.4e-07], "s": ["a b", "c", "d"]})
    write_csv(frame, tmp_path / "d.csv")
    assert (tmp_path / "d.csv").read_text() == 'x,s\n1,"a b"\n0.5,"c"\n6.4e-7,"d"\n'
    assert frame.to_csv(index=False) == "x,s\n1.0,a b\n0.5,c\n6.4e-07,d\n"


def test_write_csv_of_an_all_whole_float_column_reads_back_as_integers(tmp_path: Path) -> None:
    # what the code does: a regression target such as 151.0, 75.0 is read back as int64 (pandas' own file: float64)
    frame = pd.DataFrame({"target": [151.0, 75.0]})
    write_csv(frame, tmp_path / "t.csv")
    assert pd.read_csv(tmp_path / "t.csv")["target"].dtype == np.int64
    assert pd.read_csv(io.StringIO(frame.to_csv(index=False)))["target"].dtype == np.float64


def test_summary_line() -> None:
    summary = Summary(monitored=0.912345, metrics={"oof_accuracy": 0.9, "oof_log_loss": 0.31}, objective=0.912345)
    assert summary.line("val_acc", 5, "accuracy") == "best_val_acc=0.9123 (CV mean of 5 folds), OOF accuracy=0.9000"
    assert summary.line("val_loss", 1, "log_loss") == "best_val_loss=0.9123, OOF log_loss=0.3100"
    with pytest.raises(KeyError):
        summary.line("val_acc", 1, "rmse")


# --- the estimator learner ------------------------------------------------------------------------------------------
class TinyFeatures:
    """What the estimator learner reads of a feature folder: arrays, folds and the test rows, in memory."""

    def __init__(self, x: np.ndarray, y: np.ndarray, test_x: np.ndarray, n_folds: int = 3) -> None:
        self.train_x, self.train_y, self._test = x, y, test_x
        self.folds = np.arange(len(x)) % n_folds
        self.n_folds, self.manifest = n_folds, {}

    def split(self, fold: int) -> tuple[np.ndarray, np.ndarray]:
        return np.flatnonzero(self.folds != fold), np.flatnonzero(self.folds == fold)

    def load(self, name: str) -> np.ndarray:
        assert name == "test_x"
        return self._test


def blobs(task: str, n: int = 240, seed: int = 0) -> TinyFeatures:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n + 30, 6)).astype(np.float32)
    if task == "multiclass":
        y = (x[:, 0] > 0).astype(np.int64) + 2 * (x[:, 1] > 0)
    else:
        y = (3 * x[:, 0] - 2 * x[:, 1] + rng.normal(scale=0.1, size=len(x))).astype(np.float32)
    return TinyFeatures(x[:n], y[:n], x[n:])


ESTIMATORS = {
    "lightgbm": ("lightgbm.LGBMClassifier", "lightgbm.LGBMRegressor", "multi_logloss", "l2",
                 {"n_jobs": 1, "verbose": -1, "min_child_samples": 5}),
    "xgboost": ("xgboost.XGBClassifier", "xgboost.XGBRegressor", "mlogloss", "rmse", {"n_jobs": 1}),
    "catboost": ("catboost.CatBoostClassifier", "catboost.CatBoostRegressor", "MultiClass", "RMSE",
                 {"thread_count": 1, "allow_writing_files": False}),
}


def estimator_fold(task: str, target: str, monitor: str, tmp_path: Path, link=None, **cfg) -> tuple:
    import copy

    from src.utils.competition.spec import load as load_competition
    from src.utils.config.targets import instantiate

    competition = load_competition("digit-recognizer" if task == "multiclass" else "diabetes-sample")
    if task == "multiclass":  # the blobs have four classes; a copy, for load() hands every caller the same object
        competition = copy.deepcopy(competition)
        competition.task.classes = [0, 1, 2, 3]
    config = OmegaConf.create({"monitor": monitor, "early_stopping_rounds": 5, "log_every": 5, "report_every": 2,
                               **cfg})
    features = blobs(task)
    fold = Fold(config, features, competition, 0, tmp_path, link=link, predict_test=True)
    return fold, instantiate({"_target_": target, **cfg.get("params", {})})


@pytest.mark.parametrize("lib", sorted(ESTIMATORS))
@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_each_library_fits_a_fold_with_early_stopping_and_scores_it(lib: str, task: str, tmp_path: Path) -> None:
    from src.utils.run.estimators import EstimatorLearner
    from src.utils.run.learners import learner_for

    classifier, regressor, class_metric, value_metric, params = ESTIMATORS[lib]
    rounds = {"iterations": 300} if lib == "catboost" else {"n_estimators": 300}
    fold, est = estimator_fold(task, classifier if task == "multiclass" else regressor,
                               f"val_{class_metric if task == 'multiclass' else value_metric}", tmp_path,
                               params={**params, **rounds, "learning_rate": 0.3})
    learner = learner_for(est)
    assert isinstance(learner, EstimatorLearner) and learner.lib == lib
    result = learner.fit(fold)
    width = 4 if task == "multiclass" else 1
    assert result.scores.shape == (80, width) and result.test_scores.shape == (30, width)
    assert result.valid_idx.tolist() == list(range(0, 240, 3)) and not result.pruned
    if task == "multiclass":
        assert np.allclose(result.scores.sum(1), 1) and (result.scores.argmax(1) == fold.features.train_y[
            result.valid_idx]).mean() > 0.8
    else:
        assert np.corrcoef(result.scores[:, 0], fold.features.train_y[result.valid_idx])[0, 1] > 0.9
    assert np.isfinite(result.best_score)


def test_a_competition_metric_can_be_the_monitor(tmp_path: Path) -> None:
    from src.utils.run.estimators import EstimatorLearner

    fold, est = estimator_fold("multiclass", "sklearn.linear_model.LogisticRegression", "val_accuracy", tmp_path)
    result = EstimatorLearner(est).fit(fold)
    assert result.best_score == pytest.approx((result.scores.argmax(1) == fold.features.train_y[result.valid_idx])
                                              .mean())


def test_a_monitor_nothing_evaluates_is_one_error_line_naming_what_is(tmp_path: Path) -> None:
    from src.utils.run.estimators import EstimatorLearner

    fold, est = estimator_fold("multiclass", "lightgbm.LGBMClassifier", "val_auc", tmp_path,
                               params={"n_estimators": 5, "verbose": -1, "n_jobs": 1})
    with pytest.raises(WorkspaceError) as exc:
        EstimatorLearner(est).fit(fold)
    assert str(exc.value) == ("monitor=val_auc is neither a metric lightgbm evaluates on the validation rows nor one "
                              "of the competition's; set monitor to one of: val_multi_logloss, val_accuracy, "
                              "val_log_loss")


@pytest.mark.parametrize("lib", sorted(ESTIMATORS))
def test_a_pruned_trial_stops_the_fit_at_the_round_it_was_told(lib: str, tmp_path: Path) -> None:
    from src.utils.run.estimators import EstimatorLearner

    classifier, _, metric, _, params = ESTIMATORS[lib]
    rounds = {"iterations": 200} if lib == "catboost" else {"n_estimators": 200}
    steps: list[int] = []

    def report(value: float, step: int) -> bool:
        steps.append(step)
        return step >= 5  # the pruner says stop at the third report

    link = SimpleNamespace(report=report, number=3)
    fold, est = estimator_fold("multiclass", classifier, f"val_{metric}", tmp_path, link=link,
                               params={**params, **rounds, "learning_rate": 0.01}, early_stopping_rounds=None)
    result = EstimatorLearner(est).fit(fold)
    assert steps == [1, 3, 5] and result.pruned  # every report_every=2 rounds
    n_trees = {"lightgbm": lambda e: e.booster_.current_iteration(), "xgboost": lambda e: e.get_booster()
               .num_boosted_rounds(), "catboost": lambda e: e.tree_count_}[lib](est)
    assert n_trees <= 7  # stopped where it was told, not after 200 rounds


def test_learner_for_takes_an_estimator_or_a_module_and_data_module_and_nothing_else() -> None:
    from sklearn.linear_model import LinearRegression

    from src.utils.run.learners import learner_for

    assert type(learner_for(LinearRegression())).__name__ == "EstimatorLearner"
    with pytest.raises(WorkspaceError, match=r"^build\(\) returned dict, which no learner takes: return the fold's "
                                             r"\(LightningModule, LightningDataModule\), or a scikit-learn-API"):
        learner_for({})


def test_estimator_scores_give_a_class_the_fold_never_saw_a_zero_column() -> None:
    from sklearn.linear_model import LogisticRegression

    from src.tasks import Multiclass

    x = np.arange(12, dtype=float).reshape(-1, 1)
    est = LogisticRegression().fit(x, np.array([0, 2] * 6))  # class 1 missing in this fold's training rows
    scores = Multiclass(["y"], 3).estimator_scores(est, x)
    assert scores.shape == (12, 3) and (scores[:, 1] == 0).all() and np.allclose(scores.sum(1), 1)


# --- the trivial baseline ---------------------------------------------------------------------------------------------
def test_the_baseline_of_classes_is_the_majority_and_of_values_the_training_mean(caplog) -> None:
    from src.utils.competition import load
    from src.utils.run.baseline import baseline_metrics, check_against

    folds = np.arange(40) % 4
    digits = load("digit-recognizer")  # accuracy first
    y = np.where(np.arange(40) % 5 == 0, 3, 7)  # class 7 in 4 rows of 5
    m = baseline_metrics(digits, y, folds, [0, 1, 2, 3])
    assert m["baseline_oof_accuracy"] == pytest.approx(0.8)
    assert check_against({"oof_accuracy": 0.9, **m}, digits)
    assert not check_against({"oof_accuracy": 0.8, **m}, digits)  # a tie does not beat it
    assert "OOF accuracy 0.8000 does not beat the trivial baseline's 0.8000 (the class shares: always the majority " \
           "class); usually the loss or output head does not fit" in caplog.text
    diabetes = load("diabetes-sample")  # rmse first, lower is better
    values = np.arange(40, dtype=np.float32)
    m = baseline_metrics(diabetes, values, folds, [1])  # one fold: its rows, predicted by the other folds' mean
    rows = folds == 1
    assert m["baseline_oof_rmse"] == pytest.approx(np.sqrt(np.mean((values[rows] - values[~rows].mean()) ** 2)))
    assert check_against({"oof_rmse": m["baseline_oof_rmse"] - 1, **m}, diabetes)


def test_the_summary_line_shows_the_baseline() -> None:
    summary = Summary(0.9, {"oof_accuracy": 0.91, "baseline_oof_accuracy": 0.11}, 0.9)
    assert summary.line("val_acc", 5, "accuracy") == ("best_val_acc=0.9000 (CV mean of 5 folds), OOF accuracy=0.9100 "
                                                      "(trivial baseline 0.1100)")


HEAD_TASKS = [({"_target_": "src.tasks.Multiclass", "classes": [3, 5, 7]}, ["y"], "multiclass", 3),
              ({"_target_": "src.tasks.Binary"}, ["y"], "binary", 1),
              ({"_target_": "src.tasks.MultiLabel"}, ["a", "b"], "multilabel", 2),
              ({"_target_": "src.tasks.Regression"}, ["y"], "regression", 1)]


@pytest.mark.parametrize("node,targets,kind,width", HEAD_TASKS, ids=[k for _, _, k, _ in HEAD_TASKS])
def test_the_head_is_the_tasks(node: dict, targets: list[str], kind: str, width: int) -> None:
    import torch
    from torch.nn import functional as F

    from src.utils.config.targets import instantiate
    from src.utils.run import heads

    task = instantiate(OmegaConf.create(node), targets=targets)
    y = np.array([[0.0, 1.0], [1.0, 1.0], [2.0, 0.0], [1.0, 0.0]])[:, :width] if kind == "multilabel" else \
        np.array([0, 1, 2, 1] if kind == "multiclass" else [0, 1, 1, 0] if kind == "binary" else [3.0, 5.0, 9.0, 7.0])
    head = heads.head_of(task, y)
    assert (head["task"], head["n_outputs"]) == (kind, width)
    assert (head["target_mean"], head["target_std"]) == ((6.0, float(np.std([3, 5, 9, 7]))) if kind == "regression"
                                                         else (0.0, 1.0))
    out, target = torch.randn(4, width), torch.as_tensor(y)
    expected = {"multiclass": lambda: F.cross_entropy(out, target.long()),
                "binary": lambda: F.binary_cross_entropy_with_logits(out, target.float().view(-1, 1)),
                "multilabel": lambda: F.binary_cross_entropy_with_logits(out, target.float()),
                "regression": lambda: F.mse_loss((out - 6.0) / 2.0, (target.float().view(-1, 1) - 6.0) / 2.0)}[kind]()
    assert torch.isclose(heads.loss(kind, out, target, 6.0, 2.0), expected)
    assert torch.isfinite(heads.error(kind, out, target))


def test_a_task_the_head_does_not_know_is_one_line() -> None:
    from src.utils.run.heads import head_of

    with pytest.raises(WorkspaceError, match="the network's head knows the tasks multiclass, binary, multilabel, "
                                             "regression, not .*; give the model a loss of its own"):
        head_of(SimpleNamespace(kind="ranking", width=1), np.zeros(3))


def test_the_tabular_network_on_a_binary_table_learns_its_logit_with_cross_entropy() -> None:
    """model02's network, built for a binary task (a copy of the folder on another competition, unedited): one logit,
    binary cross-entropy, accuracy well above the majority class on rows it did not train on."""
    import pytorch_lightning as pl
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from src.model.model02.model import TabularMLP
    from src.tasks import Binary
    from src.utils.run.heads import head_of

    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 5)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0.8).astype(np.int64)  # about a quarter are ones: the majority class is 0
    pl.seed_everything(0, verbose=False)
    net = TabularMLP(optimizer=lambda params: torch.optim.Adam(params, lr=0.01), n_inputs=5, hidden=[16],
                     dropout=0.0, **head_of(Binary(["y"]), y[:400]))
    assert net.hparams.task == "binary" and net.net[-1].out_features == 1
    loader = DataLoader(TensorDataset(torch.from_numpy(x[:400]), torch.from_numpy(y[:400])), batch_size=32,
                        shuffle=True)
    pl.Trainer(max_epochs=15, logger=False, enable_checkpointing=False, enable_progress_bar=False,
               enable_model_summary=False).fit(net, loader)
    with torch.inference_mode():
        logits = net(torch.from_numpy(x[400:]))
    accuracy = float(((logits[:, 0] >= 0).numpy() == y[400:]).mean())
    majority = max(float(y[400:].mean()), 1 - float(y[400:].mean()))
    assert accuracy > majority + 0.1, (accuracy, majority)


def test_the_run_logger_writes_every_point_in_batches_and_all_of_them_when_the_fit_ends(tmp_path: Path) -> None:
    import mlflow

    from src.utils.run.lightning import RunLogger

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri)
    run = client.create_run(client.create_experiment("e"))
    logger = RunLogger(tracking_uri=uri, run_id=run.info.run_id, prefix="fold2")
    logger.flush_every_s = 3600.0
    calls = []
    log_batch = logger.experiment.log_batch
    logger.experiment.log_batch = lambda **kw: (calls.append(len(kw["metrics"])), log_batch(**kw))[1]
    for epoch in range(40):
        logger.log_metrics({"val_acc": epoch / 40, "train_loss": 1.0 - epoch / 40, "note": "skipped"}, step=epoch)
    assert calls == [] and client.get_metric_history(run.info.run_id, "fold2-val_acc") == []
    logger.finalize("failed")  # Lightning's call on an error or an interrupt as on success
    assert calls == [80]
    history = client.get_metric_history(run.info.run_id, "fold2-val_acc")
    assert [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)] == [(e, e / 40) for e in range(40)]
    logger.flush_every_s = 0.0  # due: each call writes what is pending
    logger.log_metrics({"val_acc": 1.0}, step=40)
    assert calls == [80, 1]

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

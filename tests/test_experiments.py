"""Every experiment folder, in-process and fast (no `slow` mark): the real config composed by Hydra, checked by
the folder's typed schema, and run through the real entry point on tiny generated data.

The folders are found, not listed: a folder made by `bash scripts/new_experiment.sh model model01` is tested
here without editing this file. The chain is dataset folders -> feature folders -> model folders, each model
folder trained through the shared harness (a network for one short epoch: MLflow run, checkpoint, OOF, model,
code, and once with debug=true; a tree folder with each of its estimators), all in a temporary MLflow store. The
ensemble folders: tests/test_ensemble_folders.py.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, open_dict

from src.tools.new_experiment import ENTRY_SCRIPTS
from src.utils.cli.preflight import check_command, preflight
from src.utils.core import paths
from tests.conftest import REPO

STAGES = ("dataset", "feature", "model", "ensemble")
RAW: dict[str, Path] = {}  # competition -> its offline sample's raw folder, written by the `features` fixture
FOLDERS = {stage: sorted(p.parent.name for p in (REPO / "config" / stage).glob("*/config.yaml")) for stage in STAGES}
# the model folders by learner: an `estimator` config group (its build returns an estimator), else a network
TREES = [f for f in FOLDERS["model"] if (REPO / "config/model" / f / "estimator").is_dir()]
NETWORKS = [f for f in FOLDERS["model"] if f not in TREES]


def entry(stage: str, folder: str):
    return importlib.import_module(f"src.{stage}.{folder}.{ENTRY_SCRIPTS[stage].removesuffix('.py')}")


def hydra_config(stage: str, folder: str, overrides: list[str], output_dir: Path,
                 mode: RunMode = RunMode.RUN) -> DictConfig:
    """The config Hydra composes for `train.py <overrides>`, with Hydra's runtime set as in a real run (or job)."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(REPO / "config" / stage / folder)):
        cfg = compose("config", overrides, return_hydra_config=True)
    output_dir.mkdir(parents=True, exist_ok=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(output_dir)
        cfg.hydra.mode = mode
        cfg.hydra.job.name = ENTRY_SCRIPTS[stage].removesuffix(".py")
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg.hydra
    return cfg


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A temporary MLflow store and checkpoint folder for this module's in-process runs."""
    root = tmp_path_factory.mktemp("store")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        mp.setenv("MLFLOW_ARTIFACT_ROOT", (root / "artifacts").as_uri())
        mp.setattr(paths, "LIGHTNING_DIR", root / "lightning")
        mp.setattr(paths, "TENSORBOARD_DIR", root / "tensorboard")
        yield root
    GlobalHydra.instance().clear()
    HydraConfig.instance().cfg = None  # the runtime config set for this module's runs (a multirun's, too) goes with it


@pytest.fixture(scope="module")
def features(store: Path, tmp_path_factory) -> dict[str, Path]:
    """Every feature folder's output, built from the dataset folder its config names, built in turn from its
    competition's offline sample (the competition's `sources.sample`, written into a temporary raw folder)."""
    from omegaconf import OmegaConf

    from src.utils.competition import spec as competitions
    base = tmp_path_factory.mktemp("data")
    raw: dict[str, Path] = {}
    datasets: dict[str, Path] = {}
    for dataset in FOLDERS["dataset"]:
        name = str(OmegaConf.load(REPO / "config/dataset" / dataset / "config.yaml").competition)
        if name not in raw:
            competition = competitions.load(name)
            raw[name] = RAW[name] = base / "raw" / name
            competitions.instantiate(competition.cfg.sources.sample)(raw[name])
        cfg = hydra_config("dataset", dataset, [f"raw_dir={raw[name]}", f"output_dir={base / dataset}"], base / "out")
        assert len(entry("dataset", dataset).main(cfg)) == 64
        datasets[dataset] = base / dataset
    built = {}
    for feature in FOLDERS["feature"]:
        wanted = Path(str(OmegaConf.load(REPO / "config/feature" / feature / "config.yaml").dataset_dir)).name
        out = base / feature
        cfg = hydra_config("feature", feature, [f"dataset_dir={datasets[wanted]}", f"output_dir={out}"],
                           base / "out")
        assert len(entry("feature", feature).main(cfg)) == 64
        assert len(np.load(out / "folds.npy")) == len(np.load(out / "train_y.npy"))
        built[feature] = out
    return built


@pytest.mark.parametrize("stage,folder", [(s, f) for s in STAGES for f in FOLDERS[s]])
def test_config_composes_and_passes_its_schema(stage: str, folder: str) -> None:
    module = entry(stage, folder)
    assert check_command(module.__file__, module.Config, "config", []) == 1
    searches = sorted((REPO / "config" / stage / folder / "hparams_search").glob("*.yaml"))
    for search in searches:  # every value a versioned search space can hand a trial
        assert check_command(module.__file__, module.Config, "config", ["-m", f"hparams_search={search.stem}"]) > 1


OPTIONS = [(folder, group.name, option.stem) for folder in FOLDERS["model"]
           for group in sorted((REPO / "config/model" / folder).iterdir()) if group.is_dir() and group.name != "hydra"
           and group.name != "hparams_search" for option in sorted(group.glob("*.yaml"))]


@pytest.mark.parametrize("folder,group,option", OPTIONS, ids=[f"{f}-{g}={o}" for f, g, o in OPTIONS])
def test_every_config_option_reaches_the_model(folder: str, group: str, option: str, tmp_path: Path) -> None:
    """`optimizer=sgd`, `scheduler=none`, `estimator=xgboost`, ...: each option of a model's config groups composes,
    the network it configures builds its optimizer (and schedule) from it, the estimator it names builds with the
    folder's hyper-parameters and brings its monitor."""
    from src.utils.config.targets import instantiate

    cfg = hydra_config("model", folder, [f"{group}={option}"], tmp_path)
    chosen = cfg.get(group)
    if "estimator" in cfg:
        estimator = instantiate(cfg.estimator)
        assert type(estimator).__name__ == str(cfg.estimator._target_).rsplit(".", 1)[1]
        assert str(cfg.monitor).startswith("val_") and estimator.get_params()["learning_rate"] == cfg.learning_rate
        setup = None
    else:
        setup = instantiate(cfg.model).configure_optimizers()
    if group == "scheduler":
        assert isinstance(setup, dict) == (chosen is not None), (option, chosen, setup)
    if group == "optimizer":
        optimizer = setup["optimizer"] if isinstance(setup, dict) else setup
        assert type(optimizer).__name__ == str(chosen._target_).rsplit(".", 1)[1]
    if group == "pruner":  # the pruner the sweep's jobs build, with its settings checked before any trial
        from src.utils.tune.checks import check_pruner
        from src.utils.tune.pruners import job_pruner

        if chosen is None:
            assert option == "none"
        elif str(chosen._target_).endswith(".by_steps"):  # one pruner for epochs as steps, another for folds
            check_pruner(chosen)
            for fold, node in (("0", chosen.epochs), ("all", chosen.folds)):
                composed = hydra_config("model", folder, [f"{group}={option}", f"fold={fold}"], tmp_path)
                built = job_pruner(composed.pruner)
                assert type(built).__name__ == str(node._target_).rsplit(".", 1)[1]
        else:
            check_pruner(chosen)
            assert type(job_pruner(chosen)).__name__ == str(chosen._target_).rsplit(".", 1)[1]


def test_a_checkpoint_with_no_epochs_left_is_refused_before_the_run(tmp_path: Path) -> None:
    import torch

    from src.utils.core.errors import WorkspaceError
    from src.utils.run.checks import checked_ckpt

    ckpt = tmp_path / "last.ckpt"  # what ModelCheckpoint writes after a 1-epoch run
    progress = {"ready": 1, "started": 1, "processed": 1, "completed": 0}
    torch.save({"state_dict": {}, "epoch": 0,
                "loops": {"fit_loop": {"epoch_progress": {"total": progress, "current": progress}}}}, ckpt)
    with pytest.raises(WorkspaceError, match=r"already trained 1 epoch\(s\), and max_epochs=1: nothing is left"):
        checked_ckpt(str(ckpt), 1)
    assert checked_ckpt(str(ckpt), 2) == str(ckpt)


@pytest.mark.parametrize("folder", NETWORKS)
def test_model_folder_trains_through_the_harness(folder: str, features: dict[str, Path], store: Path,
                                                 tmp_path: Path) -> None:
    import mlflow
    import torch

    from src.utils.data.features import load_features
    from src.utils.predict.reload import load_run

    module = entry("model", folder)
    probe = hydra_config("model", folder, [], tmp_path / "probe")
    feature_dir = features[Path(probe.feature_dir).name]
    client = mlflow.MlflowClient()

    cfg = hydra_config("model", folder, [f"feature_dir={feature_dir}", "max_epochs=1", "batch_size=32",
                                         "note='smaller batches, one epoch'", "tensorboard=true"], tmp_path / "run")
    objective = module.main(cfg)
    exp = client.get_experiment_by_name(str(cfg.experiment_name))
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    (run,) = client.search_runs([exp.experiment_id])
    assert run.info.status == "FINISHED" and np.isfinite(objective)
    assert run.data.tags["mlflow.note.content"] == "smaller batches, one epoch"  # the run's description
    # tensorboard=true: Lightning's TensorBoardLogger beside MLflow, one folder per run
    assert list((store / "tensorboard" / str(cfg.experiment_name) / run.info.run_id).glob("events.out.tfevents*"))
    assert run.data.metrics[f"best_{cfg.monitor}"] == pytest.approx(objective)
    competition = run.data.tags["competition"]
    metric = run.data.tags["competition_metric"]
    assert {"train_loss", "val_loss", str(cfg.monitor), "epoch_time_s", f"oof_{metric}"} <= set(run.data.metrics)
    files = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "competition.yaml", "code", "oof_predictions.csv", "checkpoints", "logs"} <= files
    assert any(f.endswith(".png") for f in files)  # the task's plot (confusion matrix, prediction error, ...)
    assert competition == str(probe.competition)
    code = {a.path for a in client.list_artifacts(run.info.run_id, "code/src/model")}
    assert code == {"code/src/model/__init__.py", f"code/src/model/{folder}"}
    assert {"code/src/tasks", "code/src/utils"} <= {a.path for a in client.list_artifacts(run.info.run_id, "code/src")}
    (dataset_input,) = run.inputs.dataset_inputs
    assert dataset_input.dataset.name == feature_dir.name
    assert dataset_input.dataset.digest == load_features(feature_dir).content_hash[:20]
    reloaded = load_run(run.info.run_id)  # the model, unpickled with the code logged with the run
    x = torch.from_numpy(np.load(feature_dir / "train_x.npy")[:8])
    with torch.inference_mode():
        assert reloaded.model(x).shape[0] == 8

    cfg = hydra_config("model", folder, [f"feature_dir={feature_dir}", "debug=true"], tmp_path / "debug")
    module.main(cfg)
    (debug_run,) = client.search_runs([client.get_experiment_by_name("__debug__").experiment_id],
                                      f"tags.experiment_folder = 'src/model/{folder}'")
    assert debug_run.info.status == "FINISHED"


TREE_RUNS = [(f, e.stem) for f in TREES for e in sorted((REPO / "config/model" / f / "estimator").glob("*.yaml"))]


@pytest.mark.parametrize("folder,estimator", TREE_RUNS, ids=[f"{f}-estimator={e}" for f, e in TREE_RUNS])
def test_tree_folder_trains_through_the_harness(folder: str, estimator: str, features: dict[str, Path], store: Path,
                                                tmp_path: Path) -> None:
    """Each estimator of a tree folder (the folder's default with fold=all, the others on one fold): the library's
    curve, importance, OOF, test predictions, and the model in its library's flavour reloaded by load_run,
    predicting what the run logged."""
    import mlflow
    import pandas as pd

    from src.utils.predict.reload import load_run
    from src.utils.predict.submission import run_features, test_scores
    from src.utils.run.boosting import as_input, library
    from src.utils.run.estimators import fold_arrays

    module = entry("model", folder)
    probe = hydra_config("model", folder, [f"estimator={estimator}"], tmp_path / "probe")
    feature_dir = features[Path(probe.feature_dir).name]
    default = estimator == hydra_config("model", folder, [], tmp_path / "default").estimator._target_.split(".")[0]
    fold = "all" if default else "0"
    cfg = hydra_config("model", folder, [f"feature_dir={feature_dir}", f"estimator={estimator}", f"fold={fold}",
                                         "n_estimators=12", "log_every=5", f"experiment_name=trees-{folder}"],
                       tmp_path / "run")
    objective = module.main(cfg)
    client = mlflow.MlflowClient()
    (run,) = client.search_runs([client.get_experiment_by_name(f"trees-{folder}").experiment_id],
                                f"params.estimator._target_ = '{cfg.estimator._target_}'")
    assert run.info.status == "FINISHED" and run.data.metrics[f"best_{cfg.monitor}"] == pytest.approx(objective)
    prefix, folds = ("fold0-", range(5)) if default else ("", [0])
    curve = client.get_metric_history(run.info.run_id, f"{prefix}{cfg.monitor}")
    assert [m.step for m in curve][:2] == [4, 9] and all(np.isfinite(m.value) for m in curve)  # every 5 rounds
    metric = run.data.tags["competition_metric"]
    assert {f"{prefix}val_{metric}", f"oof_{metric}", f"best_{cfg.monitor}"} <= set(run.data.metrics)
    files = {a.path for a in client.list_artifacts(run.info.run_id, "feature_importance")}
    assert {f"feature_importance/fold{k}.{ext}" for k in folds for ext in ("csv", "png")} <= files
    reloaded = load_run(run.info.run_id, model_name="model_fold0" if default else "model")
    assert type(reloaded.model).__name__ == str(cfg.estimator._target_).rsplit(".", 1)[1]
    feats = run_features(reloaded)
    oof = pd.read_csv(client.download_artifacts(run.info.run_id, "oof_predictions.csv", str(tmp_path)))
    rows = feats.split(0)[1]
    (_, (valid_x, _)) = fold_arrays(feats, 0)  # the table's rows, or the arrays' rows
    again = reloaded.competition().task.estimator_scores(reloaded.model, as_input(library(reloaded.model), valid_x))
    logged = oof.set_index("row").loc[rows]
    columns = [c for c in logged.columns if c.startswith("prob_")] or [c for c in logged.columns
                                                                       if c.startswith("pred_")]
    assert np.allclose(logged[columns].to_numpy(float), again, atol=1e-6)
    if default:  # a fold=all run's test predictions: predict.py's scores are the run's
        logged_test = np.load(client.download_artifacts(run.info.run_id, "predictions/test_scores.npy",
                                                        str(tmp_path)))
        assert np.allclose(test_scores(load_run(run.info.run_id), feats), logged_test, atol=1e-6)


def store_size(store: Path) -> tuple[int, int]:
    """(experiments, runs) in the module's MLflow store, deleted ones included."""
    import mlflow
    from mlflow.entities import ViewType

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}")
    experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    return len(experiments), len(client.search_runs(experiments, run_view_type=ViewType.ALL, max_results=50000))


BEFORE_THE_RUN = [  # (overrides, what the one error line must say): mistakes the harness finds before any run
    (["fold=7"], "fold=7 does not exist: the features have 5 folds (use fold=0..4 or fold=all)"),
    (["ckpt_path=logs/lightning/nothing.ckpt"], "ckpt_path=logs/lightning/nothing.ckpt: no such file"),
    (["feature_dir=_data/feature/nothing"], "no features in _data/feature/nothing"),
    (["competition=nope-sample"], "there is no config/competition/nope-sample.yaml"),
]


BEFORE = [(f, o, m) for f in FOLDERS["model"] for o, m in BEFORE_THE_RUN if f in NETWORKS or "ckpt_path" not in o[0]]


@pytest.mark.parametrize("folder,overrides,message", BEFORE, ids=[f"{f}-{' '.join(o)}" for f, o, _ in BEFORE])
def test_a_mistake_found_before_the_run_leaves_the_store_as_it_was(folder: str, overrides: list[str], message: str,
                                                                   features: dict[str, Path], store: Path,
                                                                   tmp_path: Path, capsys) -> None:
    from src.utils.core.errors import WorkspaceError

    module = entry("model", folder)
    probe = hydra_config("model", folder, [], tmp_path / "probe")
    args = [f"feature_dir={features[Path(probe.feature_dir).name]}", "experiment_name=never-created", *overrides]
    before = store_size(store)
    with pytest.raises(SystemExit) as exit_:
        module.main(hydra_config("model", folder, args, tmp_path / "run"))
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    # in a sweep the same mistake is the trial's exception, for the sweeper to record as a failed trial
    with pytest.raises(WorkspaceError) as raised:
        module.main(hydra_config("model", folder, args, tmp_path / "job", RunMode.MULTIRUN))
    assert message in str(raised.value)
    assert store_size(store) == before  # no run, no experiment


@pytest.mark.parametrize("folder", NETWORKS)
def test_a_monitor_the_model_does_not_log_is_one_line_and_leaves_no_run(folder: str, features: dict[str, Path],
                                                                        store: Path, tmp_path: Path, capsys) -> None:
    """Known only once the model has validated (its first validation): one line naming what it logs, and the run
    that had started deleted, so `run_id=best`, the diary and the UI never see it."""
    import mlflow

    module = entry("model", folder)
    probe = hydra_config("model", folder, [], tmp_path / "probe")
    args = [f"feature_dir={features[Path(probe.feature_dir).name]}", "experiment_name=typo", "monitor=val_auc",
            "max_epochs=1", "+trainer.limit_train_batches=2", "+trainer.limit_val_batches=2"]
    with pytest.raises(SystemExit) as exit_:
        module.main(hydra_config("model", folder, args, tmp_path / "run"))
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: monitor=val_auc is not a metric the model logs; it logs "), err
    assert "val_loss" in err[0] and "Traceback" not in err[0]
    client = mlflow.MlflowClient()
    assert client.search_runs([client.get_experiment_by_name("typo").experiment_id]) == []  # no run left


CONFIG_ERRORS = [  # (overrides, what the one error line must say)
    (["lrr=0.1"], "unknown config key 'lrr' (did you mean lr?)"),
    (["trainer.max_epoch=3"], "unknown config key 'trainer.max_epoch'"),
    (["lr=abc"], "lr='abc' is not a number"),
    (["batch_size=2.5"], "batch_size=2.5 is not a whole number"),
    (["debug=maybe"], "debug='maybe' is not true or false"),
    (["lr=0"], "lr=0.0 is not allowed: a number > 0"),
    (["lr=-1"], "lr=-1.0 is not allowed: a number > 0"),
    (["batch_size=0"], "batch_size=0 is not allowed: a whole number >= 1"),
    (["max_epochs=2.5"], "max_epochs=2.5 is not a whole number"),
    (["-m", "dropout=choice(0.1,1.5)"], "dropout=1.5 is not allowed"),
    (["fold=-1"], "fold=-1 is not allowed"),
    (["fold=all", "ckpt_path=x.ckpt"], "ckpt_path=x.ckpt is not allowed: it resumes a single fold"),
    (["optimizer=rmsprop"], "optimizer=rmsprop is not an option of config group 'optimizer'; choose one of"),
    (["lr=interval(0.1,1)"], "is a sweep: add -m"),
    (["-m", "lr=interval(-1,1)"], "lr=-1.0 is not allowed"),
    (["-m", "batch_size=choice(32,abc)"], "batch_size='abc' is not a whole number"),
    (["-m", "hparams_search=nope"], "hparams_search=nope is not an option of config group 'hparams_search'"),
    (["lr=(("], "cannot read the override(s) lr=(("),
    (["-m", "hydra.sweeper.n_trials=0"], "hydra.sweeper.n_trials=0 is not allowed: a whole number >= 1"),
    (["-m", "lr=interval(0.1,0.1)"], "lr=interval(0.1,0.1): the interval is empty"),
    (["-m", "lr=interval(0.1,0.01)"], "cannot be run"),
    (["-m", "hydra/sweeper/sampler=nope", "lr=interval(0.01,0.1)"], "hydra/sweeper/sampler=nope is not an option"),
    (["-m", "pruner._target_=optuna.pruners.Nope"], "pruner._target_=optuna.pruners.Nope cannot be built"),
    (["pruner=3"], "pruner=3 is not an option of config group 'pruner'; choose one of"),
    (["-m", "pruner=null"], "pruner=null: a config group's choice cannot be null; write pruner=none, or remove it"),
    (["-m", "pruner={_target_:optuna.pruners.ThresholdPruner,lower:0.9}"], "cannot replace a config group's choice"),
    (["-m", "pruner.lower=0.9"], "pruner.lower: the chosen pruner has no key 'lower'"),
    (["-m", "pruner=hyperband", "pruner.reduction_factor=1"], "pruner.reduction_factor=1 is not allowed"),
    (["-m", "pruner=successive_halving", "pruner.min_resource=0"], "pruner.min_resource=0 is not allowed"),
    (["-m", "pruner=hyperband", "pruner.min_resource=99"], "pruner.min_resource=99 and pruner.max_resource="),
    (["-m", "pruner=threshold", "pruner.lower=null", "pruner.upper=null"],
     "ThresholdPruner cannot be built: Either lower or upper must be specified"),
    (["-m", "pruner=median", "pruner.n_warmup_steps=-1"], "MedianPruner cannot be built"),
    (["-m", "~pruner", "+pruner={lower:0.9}"], "is not allowed: a node with the _target_ of an Optuna pruner"),
]


TREE_CONFIG_ERRORS = [  # the same for an estimator's folder: its own keys
    (["learning_rate=abc"], "learning_rate='abc' is not a number"),
    (["learning_rate=0"], "learning_rate=0.0 is not allowed: a number > 0"),
    (["n_estimators=2.5"], "n_estimators=2.5 is not a whole number"),
    (["subsample=1.5"], "subsample=1.5 is not allowed: a number in (0, 1]"),
    (["early_stopping_rounds=0"], "early_stopping_rounds=0 is not allowed: a whole number >= 1, or null"),
    (["estimator=nope"], "estimator=nope is not an option of config group 'estimator'; choose one of"),
    (["fold=-1"], "fold=-1 is not allowed"),
    (["-m", "max_depth=choice(3,abc)"], "max_depth='abc' is not a whole number"),
    (["-m", "learning_rate=interval(-1,1)"], "learning_rate=-1.0 is not allowed"),
    (["-m", "pruner=hyperband", "pruner.reduction_factor=1"], "pruner.reduction_factor=1 is not allowed"),
]
COMMAND_LINES = [(f, o, m) for f in NETWORKS for o, m in CONFIG_ERRORS] + [
    (f, o, m) for f in TREES for o, m in TREE_CONFIG_ERRORS]


@pytest.mark.parametrize("folder,overrides,message", COMMAND_LINES,
                         ids=[f"{f}-{' '.join(o)}" for f, o, _ in COMMAND_LINES])
def test_a_bad_command_line_is_one_error_line(folder: str, overrides: list[str], message: str, capsys) -> None:
    module = entry("model", folder)
    with pytest.raises(SystemExit) as exit_:
        preflight(module.__file__, module.Config, argv=overrides)
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err


def test_vscode_debug_configurations_run_as_given(capsys) -> None:
    """.vscode/launch.json: every train.py it starts (and `debug=true` on the open file) passes the config check."""
    import json

    launch = json.loads((REPO / ".vscode" / "launch.json").read_text())
    configs = [c for c in launch["configurations"] if c.get("program", "").endswith(("train.py", "${file}"))]
    assert configs and all(c["python"] == "${workspaceFolder}/.venv/bin/python" for c in configs)
    for c in configs:
        programs = ([REPO / c["program"].replace("${workspaceFolder}/", "")] if "${file}" not in c["program"]
                    else [REPO / "src" / "model" / f / "train.py" for f in FOLDERS["model"]])
        for program in programs:
            module = entry("model", program.parent.name)
            assert check_command(module.__file__, module.Config, "config", c["args"]) >= 1, (c["name"], program)


SAMPLERS = ["tpe", "random", "cmaes", "nsgaii", "nsgaiii", "gp", "qmc", "grid"]


@pytest.mark.parametrize("folder", FOLDERS["model"])
@pytest.mark.parametrize("sampler", SAMPLERS)
def test_every_sampler_option_builds_with_its_settings(folder: str, sampler: str) -> None:
    """`hydra/sweeper/sampler=<name>` composes, its seed is a setting like any other, and the sweeper builds the
    Optuna sampler from it (grid: from the search space)."""
    import optuna
    from hydra.utils import instantiate

    from src.utils.config.targets import SAMPLERS

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(REPO / "config/model" / folder)):
        cfg = compose("config", [f"hydra/sweeper/sampler={sampler}", "hydra.sweeper.sampler.seed=7"],
                      return_hydra_config=True)
    built = instantiate(cfg.hydra.sweeper.sampler, _execution_whitelist_=SAMPLERS)
    if sampler == "grid":
        built = built({"lr": [0.001, 0.01]})
    assert isinstance(built, optuna.samplers.BaseSampler)
    names = {"tpe": "TPESampler", "random": "RandomSampler", "cmaes": "CmaEsSampler", "nsgaii": "NSGAIISampler",
             "nsgaiii": "NSGAIIISampler", "gp": "GPSampler", "qmc": "QMCSampler", "grid": "GridSampler"}
    assert type(built).__name__ == names[sampler]


def test_another_sampler_takes_the_place_of_an_option_with_its_keys() -> None:
    """README: `hydra/sweeper/sampler=random hydra.sweeper.sampler._target_=optuna.samplers.BruteForceSampler`."""
    from hydra.utils import instantiate

    from src.utils.config.targets import SAMPLERS

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(REPO / "config/model/model01")):
        cfg = compose("config", ["hydra/sweeper/sampler=random",
                                 "hydra.sweeper.sampler._target_=optuna.samplers.BruteForceSampler"],
                      return_hydra_config=True)
    built = instantiate(cfg.hydra.sweeper.sampler, seed=3, _execution_whitelist_=SAMPLERS)
    assert type(built).__name__ == "BruteForceSampler"


# --- ensembles ---------------------------------------------------------------------------------------------------


WRONG_KINDS = [  # (a line of the competition file -> its wrong version, what the one error line says)
    ("    input: label                # label", "    input: score                # label",
     "metrics.accuracy.input=score: sklearn.metrics.accuracy_score takes class labels"),
    ("    input: score\n    direction: min", "    input: label\n    direction: min",
     "metrics.log_loss.input=label: sklearn.metrics.log_loss takes scores"),
]


@pytest.mark.parametrize("line,wrong,message", WRONG_KINDS, ids=["accuracy-on-scores", "log_loss-on-labels"])
def test_a_metric_given_the_wrong_kind_is_one_line_before_the_run(line: str, wrong: str, message: str, tmp_path: Path,
                                                                  monkeypatch, capsys) -> None:
    """The competition file's `input:` contradicts the metric: the training command's check says so, naming the
    key to write, before any run (the file is a copy of the sample's with the one line changed)."""
    from src.utils.competition import spec

    text = (REPO / "config/competition/digit-recognizer.yaml").read_text()
    assert line in text
    (tmp_path / "digit-recognizer.yaml").write_text(text.replace(line, wrong, 1))
    monkeypatch.setattr(spec, "COMPETITION_DIR", tmp_path)
    module = entry("model", "model01")
    with pytest.raises(SystemExit) as exit_:
        preflight(module.__file__, module.Config, argv=[])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err

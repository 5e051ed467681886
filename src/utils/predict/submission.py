"""A trained run's model(s) on the test rows -> the competition's submission.csv.

The model folders' predict.py hand their predict.yaml to `write_submission`. The models (each fold's for a
`fold=all` run, combined as the competition's `submission.fold_models` says) predict through Lightning with the
run's own data module (`predict_dataloader`), both loaded with the code logged with the run; the competition's task
turns the outputs into the submission's values (labels, probabilities or values) next to the test ids, and the file
is checked against the competition's sample_submission.csv (same columns, ids and row count) before it is written
into the call's Hydra output folder and attached to the run (artifacts: submissions/<time>/submission.csv).
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

import mlflow
import numpy as np
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from src.utils.config.schema import PredictConfig, validate
from src.utils.core.errors import WorkspaceError, exit_on_user_error
from src.utils.core.io import atomic_file
from src.utils.core.paths import shown
from src.utils.data.features import Features, load_features
from src.utils.predict.reload import LoadedRun, best_run_id, load_run
from src.utils.track.formats import older_run

log = logging.getLogger(__name__)


def run_features(run: LoadedRun) -> Features:
    """The features the run was trained on, as they are today: refused when they have changed since."""
    features = load_features(run.config.feature_dir)
    trained_on = run.tags.get(f"{features.name}_hash")
    if not trained_on:
        raise older_run(run.run_id, f"tag {features.name}_hash")
    if trained_on != features.content_hash:
        raise WorkspaceError(f"run {run.run_id[:8]} was trained on {features.name} {trained_on[:12]} but "
                             f"{shown(features.dir)} now holds {features.content_hash[:12]}; rebuild the features "
                             f"the run used (same dataset and config) or predict with a newer run")
    return features


def test_scores(run: LoadedRun, features: Features, batch_size: int | None = None) -> np.ndarray:
    """The run's scores on the test rows: a network's models through its data module's predict_dataloader, an
    estimator's on the features' test rows."""
    from src.utils.run.predictions import predict_scores, predict_trainer, test_loader

    competition = run.competition()
    models = run.fold_models()
    log.info("predicting the test rows with %d model(s) of run %s", len(models), run.run_id)
    if "data" not in run.config:  # an estimator: no data module
        from src.utils.run.estimators import estimator_test_scores

        return estimator_test_scores(models, features, competition.task, competition.fold_models)
    overrides = {"batch_size": batch_size} if batch_size else {}
    loader = test_loader(run.datamodule(features, 0, **overrides))
    accelerator = str(run.config.get("trainer", {}).get("accelerator", "cpu"))
    return predict_scores(models, loader, competition.task, competition.fold_models, predict_trainer(accelerator))


@exit_on_user_error
def write_submission(cfg: DictConfig) -> str:
    from src.utils.core.logs import quiet_libraries

    quiet_libraries()
    validate(cfg, PredictConfig)
    run_id = best_run_id(cfg.experiment_name, cfg.metric, cfg.mode) if cfg.run_id == "best" else str(cfg.run_id)
    run = load_run(run_id)
    competition = run.competition(used_by="predict.py")
    features = run_features(run)
    scores = test_scores(run, features, cfg.get("batch_size"))
    submission = competition.submission(features.test_ids(competition.ids), scores)
    competition.check_submission(submission)
    out = Path(HydraConfig.get().runtime.output_dir) / "submission.csv"
    with atomic_file(out) as f:
        submission.to_csv(f, index=False)
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    client = mlflow.MlflowClient()
    client.log_artifact(run_id, str(out), artifact_path=f"submissions/{stamp}")
    client.set_tag(run_id, "last_submission", f"submissions/{stamp}/submission.csv")
    log.info("wrote %s (%d rows) and attached it to run %s", out, len(submission), run_id)
    print(f"submission: {out}\nsubmit:     kaggle competitions submit -c {competition.slug} -f {out} "
          f"-m \"{run.experiment} {run_id[:8]}\"", flush=True)
    return str(out)

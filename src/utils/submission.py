"""A trained run's model(s) on the test features -> Kaggle submission.csv (ImageId,Label; 1-based ids).

The model folders' predict.py hand their predict.yaml to `write_submission`. A `fold=all` run averages the class
probabilities of its fold models. The file is written into the call's Hydra output folder and attached to the
training run in MLflow (artifacts: submissions/<time>/submission.csv).
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from src.utils.errors import WorkspaceError, exit_on_user_error
from src.utils.harness import predict_proba
from src.utils.io import atomic_file, read_json
from src.utils.paths import resolve
from src.utils.reload import best_run_id, load_run
from src.utils.schema import PredictConfig, validate

log = logging.getLogger(__name__)


@exit_on_user_error
def write_submission(cfg: DictConfig) -> str:
    validate(cfg, PredictConfig)
    run_id = best_run_id(cfg.experiment_name, cfg.metric, cfg.mode) if cfg.run_id == "best" else str(cfg.run_id)
    run = load_run(run_id)
    feature_dir = resolve(run.config.get("feature_dir", "_data/feature/feature01"))
    if not (feature_dir / "manifest.json").is_file():
        raise WorkspaceError(f"no features in {feature_dir}; build them: "
                             f"poetry run python src/feature/{feature_dir.name}/build_features.py")
    manifest = read_json(feature_dir / "manifest.json")
    trained_on = run.tags.get(f"{feature_dir.name}_hash")
    if trained_on and trained_on != manifest["content_hash"]:
        raise WorkspaceError(f"run {run_id[:8]} was trained on {feature_dir.name} {trained_on[:12]} but "
                             f"{feature_dir} now holds {manifest['content_hash'][:12]}; rebuild the features "
                             f"the run used (same dataset and config) or predict with a newer run")
    test_x, test_ids = np.load(feature_dir / "test_x.npy"), np.load(feature_dir / "test_ids.npy")

    if str(run.params.get("fold")) == "all":
        models = [load_run(run_id, model_name=f"model_fold{k}").model for k in range(int(manifest["n_folds"]))]
        log.info("averaging %d fold models of run %s", len(models), run_id)
    else:
        models = [run.model]
    probs = np.mean([predict_proba(m, test_x, int(cfg.batch_size)) for m in models], axis=0)

    submission = pd.DataFrame({"ImageId": test_ids.astype(np.int64), "Label": probs.argmax(1).astype(np.int64)})
    out = Path(HydraConfig.get().runtime.output_dir) / "submission.csv"
    with atomic_file(out) as f:
        submission.to_csv(f, index=False)
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    client = mlflow.MlflowClient()
    client.log_artifact(run_id, str(out), artifact_path=f"submissions/{stamp}")
    client.set_tag(run_id, "last_submission", f"submissions/{stamp}/submission.csv")
    log.info("wrote %s (%d rows) and attached it to run %s", out, len(submission), run_id)
    print(f"submission: {out}\nsubmit:     kaggle competitions submit -c digit-recognizer -f {out} "
          f"-m \"{run.experiment} {run_id[:8]}\"", flush=True)
    return str(out)

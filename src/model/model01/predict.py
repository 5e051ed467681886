"""model01 inference: a trained run's model(s) on the test features -> Kaggle submission.csv.

    poetry run python src/model/model01/predict.py run_id=<run_id>     # run_id=best: best run of model01

Writes `submission.csv` (ImageId,Label; 1-based ids) into this call's outputs/ folder and attaches it to
the training run in MLflow (artifacts: submissions/<time>/submission.csv). A `fold=all` run averages the
class probabilities of its fold models. Submit with:
    kaggle competitions submit -c digit-recognizer -f <path>/submission.csv -m "model01 <run_id>"
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

import hydra
import mlflow
import numpy as np
import pandas as pd
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from src.utils.cli import check_overrides
from src.utils.errors import WorkspaceError, exit_on_user_error
from src.utils.io import atomic_file, read_json
from src.utils.paths import config_dir, resolve
from src.utils.reload import best_run_id, load_run

STAGE, FOLDER = "model", "model01"
log = logging.getLogger(f"{FOLDER}.predict")


def predict_proba(model: torch.nn.Module, x: np.ndarray, batch_size: int) -> np.ndarray:
    tensor = torch.from_numpy(x)
    with torch.inference_mode():
        return torch.cat([torch.softmax(model(b), 1) for b in tensor.split(batch_size)]).numpy()


@hydra.main(version_base="1.3", config_path=config_dir(STAGE, FOLDER), config_name="predict")
@exit_on_user_error
def main(cfg: DictConfig) -> str:
    run_id = best_run_id(cfg.experiment_name, cfg.metric, cfg.mode) if cfg.run_id == "best" else str(cfg.run_id)
    run = load_run(run_id)
    feature_dir = resolve(run.config.get("feature_dir", "_data/feature/feature01"))
    manifest = read_json(feature_dir / "manifest.json") if (feature_dir / "manifest.json").is_file() else None
    if manifest is None:
        raise WorkspaceError(f"no features in {feature_dir}; build them: "
                             f"poetry run python src/feature/{feature_dir.name}/build_features.py")
    trained_on = run.tags.get(f"{feature_dir.name}_hash")
    if trained_on and trained_on != manifest["content_hash"]:
        raise WorkspaceError(f"run {run_id[:8]} was trained on {feature_dir.name} {trained_on[:12]} but "
                             f"{feature_dir} now holds {manifest['content_hash'][:12]}; rebuild the features "
                             f"the run used (same dataset and config) or predict with a newer run")
    test_x = np.load(feature_dir / "test_x.npy")
    test_ids = np.load(feature_dir / "test_ids.npy")

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
          f"-m \"{FOLDER} {run_id[:8]}\"")
    return str(out)


if __name__ == "__main__":
    check_overrides(STAGE, FOLDER, "predict")
    main()

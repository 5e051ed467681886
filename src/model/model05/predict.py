"""model05 inference: a trained run's model(s) on the test features -> Kaggle submission.csv.

    poetry run python src/model/model05/predict.py run_id=<run_id>     # run_id=best: best run of model05

Nothing here differs from the shared prediction (src/utils/predict/submission.py); a copy whose prediction differs
(test-time augmentation, another output format) writes its own here.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from src.utils.cli.preflight import preflight
from src.utils.config.schema import PredictConfig
from src.utils.core.paths import config_dir


@hydra.main(config_path=config_dir(__file__), config_name="predict")
def main(cfg: DictConfig) -> str:
    from src.utils.predict.submission import write_submission  # MLflow loads once the command line is checked

    return write_submission(cfg)


if __name__ == "__main__":
    preflight(__file__, PredictConfig, "predict")
    main()

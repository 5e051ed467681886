"""The frozen contract: import paths that experiment folders, their configs' `_target_`s, the notebooks, packed
Kaggle notebooks and the code logged with earlier runs use, and the names each must keep.

Each old path is a thin module of src/utils that re-exports exactly these names from the package where the code
lives now (`src.utils.competition` and `src.utils.ensemble` are those packages themselves); tests/unit/test_contract.py
imports every name listed. New shared code imports the packages, never these paths. A path or name is added here
when a frozen folder starts using it, and never removed while a folder or a logged run uses it.
"""

from __future__ import annotations

CONTRACT: dict[str, dict[str, tuple[str, ...]]] = {
    # old path: {module where the names live now: names}
    "src.utils.harness": {"src.utils.run.harness": ("fit",)},
    "src.utils.schema": {"src.utils.config.schema": ("EnsembleConfig", "PredictConfig", "StageConfig", "TrainConfig",
                                                     "require", "validate"),
                         "src.utils.config.targets": ("instantiate",),
                         "src.utils.cli.preflight": ("preflight",)},
    "src.utils.paths": {"src.utils.core.paths": ("CONFIG_DIR", "RAW_DIR", "ROOT", "config_dir", "resolve", "shown")},
    "src.utils.io": {"src.utils.core.io": ("atomic_file", "read_json", "write_json")},
    "src.utils.errors": {"src.utils.core.errors": ("WorkspaceError", "exit_on_user_error")},
    "src.utils.hashing": {"src.utils.core.hashing": ("file_sha256", "files_sha256")},
    "src.utils.logs": {"src.utils.core.logs": ("quiet_libraries",)},
    "src.utils.competition": {"src.utils.competition.spec": ("Competition", "from_yaml", "load", "names"),
                              "src.utils.config.targets": ("instantiate",)},
    "src.utils.features": {"src.utils.data.features": ("Features", "load_features")},
    "src.utils.stage": {"src.utils.data.stage": ("build_stage",)},
    "src.utils.cv": {"src.utils.data.cv": ("assign_folds",)},
    "src.utils.submission": {"src.utils.predict.submission": ("run_features", "write_submission")},
    "src.utils.reload": {"src.utils.predict.reload": ("best_run_id", "load_run")},
    "src.utils.predictions": {"src.utils.run.predictions": ("predict_outputs", "predict_scores", "predict_trainer",
                                                            "test_loader")},
    "src.utils.inference": {"src.utils.predict.inference": ("blend_submission", "check_against_sample",
                                                            "pack_submission", "rebuild_features")},
    "src.utils.ensemble": {"src.utils.ensemble.run": ("blend",)},
    "src.utils.blend": {"src.utils.ensemble.methods": ("HillClimbing", "Mean", "RankMean", "Stacking")},
    "src.utils.sweep": {"src.utils.tune.parent": ("MlflowSweepCallback",)},
    "src.utils.optuna_sweeper": {"src.utils.tune.pruners": ("by_steps",)},
}
PACKAGES = ("src.utils.competition", "src.utils.ensemble")  # contract paths that are packages of the new layout


def names(path: str) -> list[str]:
    """Every name the old path `path` re-exports, sorted."""
    return sorted(n for group in CONTRACT[path].values() for n in group)

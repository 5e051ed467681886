"""The oldest run format this code reads, and the one error line for a run logged before it.

Runs logged since commit ee0232e (2026-11-30, the ensembles) record everything read here. Training runs have the
`competition`, `task` and `folds_hash` tags, the `config.yaml` and `competition.yaml` files, and their code with
each model. A fold=all run also names the folds whose models it logged (`fold_models`) and logs
`predictions/oof.npz`, `predictions/test_scores.npy` and `test_predictions.csv`. A run logged before that is refused
with an error that names commit 686a27a. That is the last commit whose code reads such runs: use it from a
checkout of its own (docs/runs.md says how). Imports src.utils.core only.
"""

from __future__ import annotations

from src.utils.core.errors import WorkspaceError

OLDEST = "ee0232e"  # the first commit whose runs this code reads
OLDEST_DATE = "2026-11-30"
READS_OLDER = "686a27a"  # the last commit that reads runs logged before OLDEST
TRAINING_TAGS = ("competition", "task", "folds_hash")


def older_run(run_id: str, lacks: str) -> WorkspaceError:
    """The error for a run logged before OLDEST (`lacks`: what it does not record that this code reads)."""
    return WorkspaceError(f"run {run_id[:8]} was logged by an older version of this workspace (it records no "
                          f"{lacks}); this code reads runs logged since commit {OLDEST} ({OLDEST_DATE}): read it "
                          f"with commit {READS_OLDER} (git worktree add ../workspace-{READS_OLDER} {READS_OLDER}; "
                          f"docs/runs.md)")


def check_training_run(run_id: str, tags: dict[str, str]) -> None:
    """Refuse a training run logged before OLDEST (it lacks the tags every later one has)."""
    missing = [t for t in TRAINING_TAGS if not tags.get(t)]
    if missing:
        raise older_run(run_id, "tag " + ", ".join(missing))

"""What every data stage (src/dataset/datasetNN, src/feature/featureNN) does around its own transformation.

`build_stage` first checks the config and the folder the stage reads (its files against its manifest), so a mistake
is one error line and no run; it skips the work when the output folder was built from the same inputs, config and
code (and says so); otherwise it opens the stage's MLflow run, lets the stage write its files into a temporary
folder, adds `manifest.json` (the stage's facts, the content hash of the files, the inputs fingerprint and the
run_id) and swaps the folder in at once: an output is complete or absent, never half-written.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from src.utils.competition.spec import check_named
from src.utils.competition.spec import load as load_competition
from src.utils.config.schema import validate
from src.utils.core.errors import WorkspaceError, exit_on_user_error
from src.utils.core.hashing import json_sha256, tree_sha256
from src.utils.core.io import atomic_dir, read_json
from src.utils.core.paths import ROOT, folder_of, resolve, shown
from src.utils.data.manifest import first_change, seal

log = logging.getLogger(__name__)
ENTRY_SCRIPTS = {"dataset": "make_dataset.py", "feature": "build_features.py"}


def check_input(folder: Path) -> None:
    """A stage output this stage reads: every file its manifest lists is there and unchanged (checked before the run
    starts, so a damaged input is one error line and no run). A folder without a manifest (raw data) is not checked."""
    manifest = folder / "manifest.json"
    if not manifest.is_file():
        return
    change = first_change(folder, read_json(manifest))
    if change is not None:
        stage = folder.name.rstrip("0123456789")
        script = Path("src", stage, folder.name, ENTRY_SCRIPTS.get(stage, ""))
        how = (f"poetry run python {script} force=true" if stage in ENTRY_SCRIPTS and (ROOT / script).is_file()
               else "the script that wrote it, with force=true")
        raise WorkspaceError(f"{shown(change[0])} {change[1]}; rebuild {folder.name}: {how}")


def _up_to_date(out_dir: Path, fingerprint: str) -> dict | None:
    manifest = out_dir / "manifest.json"
    if not manifest.is_file():
        return None
    info = read_json(manifest)
    if info.get("inputs_fingerprint") != fingerprint:
        return None
    change = first_change(out_dir, info)  # a file deleted, truncated or edited since: build again
    if change is not None:
        log.info("%s %s; rebuilding", shown(change[0]), change[1])
        return None
    return info


NEXT = {"dataset": ("feature", "dataset_dir"), "feature": ("model", "feature_dir")}


def next_step_of(stage: str, out_dir: Path, competition: str | None) -> str:
    """What reads this stage's output: the next stage's folders whose config points at it (found, not written in
    the folder, so a copy names its own readers), or how to point one at it."""
    if stage not in NEXT:
        return ""
    after, key = NEXT[stage]
    readers = []
    for config in sorted((ROOT / "config" / after).glob("*/config.yaml")):
        value = OmegaConf.to_container(OmegaConf.load(config), resolve=False).get(key)
        if isinstance(value, str) and "${" not in value and resolve(value) == out_dir:
            readers.append(f"poetry run python src/{after}/{config.parent.name}/{ENTRY_SCRIPTS.get(after, 'train.py')}")
    if readers:
        return "; ".join(readers)
    of = f" of {competition}" if competition else ""
    return (f"no {after} folder reads {shown(out_dir)} yet: copy one{of} (bash scripts/new_experiment.sh {after} "
            f"<folder>) and set {key}: {shown(out_dir)} in its config.yaml")


@exit_on_user_error
def build_stage(cfg: DictConfig, file: str, schema: type, inputs: dict[str, Any],
                write: Callable[[Path], dict[str, Any]], reads: tuple[str, Path, str] | None = None,
                tags: dict[str, str] | None = None, next_step: str | None = None) -> str:
    """Run the stage whose entry script is `file`; the content hash of its output.

    `inputs`: what the output depends on besides the config and this folder's code (e.g. the raw data's hash).
    `write(tmp)`: writes the output files into `tmp` and returns the facts for the manifest.
    `reads`: (name, folder, digest) of the data read, logged as the run's input.
    `next_step`: the "next:" line; by default the folders of the next stage that read this output.
    """
    validate(cfg, schema, (check_named,))
    if reads is not None:
        check_input(reads[1])
    stage, folder = folder_of(file)
    out_dir = resolve(cfg.output_dir)
    config = {k: v for k, v in OmegaConf.to_container(cfg, resolve=True).items() if k not in ("force", "hydra")}
    competition = {"competition": str(cfg.competition), "competition_digest": load_competition(cfg.competition).digest
                   } if cfg.get("competition") else {}  # what the stage reads of the competition file is an input
    fingerprint = json_sha256({**inputs, **competition, "config": config, "code": tree_sha256(Path(file).parent)})
    if not cfg.force and (done := _up_to_date(out_dir, fingerprint)):
        log.info("%s is up to date (content hash %s, built by run %s); nothing to do (force=true rebuilds)",
                 shown(out_dir), done["content_hash"][:12], done["mlflow_run_id"])
        return done["content_hash"]

    import mlflow  # the run's libraries load once the command and the inputs are checked

    from src.utils.track.runs import tracked_run
    from src.utils.track.tracking import log_data_input

    tags = {**(tags or {}), **competition}
    with tracked_run(stage, folder, cfg.experiment_name, params=OmegaConf.to_container(cfg, resolve=True),
                     tags=tags, note=cfg.get("note")) as run:
        if reads is not None:
            log_data_input(*reads, context="source")
        with tempfile.TemporaryDirectory() as logged:  # the resolved config, as packing and rerunning read it
            (Path(logged) / "config.yaml").write_text(OmegaConf.to_yaml(config))
            mlflow.log_artifact(str(Path(logged) / "config.yaml"))
        with atomic_dir(out_dir) as tmp:
            facts = write(tmp)
            manifest = seal(tmp, folder, facts, inputs_fingerprint=fingerprint, mlflow_run_id=run.info.run_id,
                            **competition)
            content_hash = manifest["content_hash"]
            mlflow.log_artifact(str(tmp / "manifest.json"))
        mlflow.set_tags({"content_hash": content_hash})
        log.info("wrote %s (content hash %s)", shown(out_dir), content_hash[:12])
        if next_step := (next_step if next_step is not None else
                         next_step_of(stage, out_dir, str(cfg.competition) if cfg.get("competition") else None)):
            log.info("next: %s", next_step)
    return content_hash

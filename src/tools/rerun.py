"""Re-run a finished training or ensemble run from what MLflow holds, and compare: `bash scripts/rerun.sh <run_id>`.

The run is executed again with the code logged with it (its `code/` artifact: the experiment folder and src/utils
as they were) and its resolved config, on today's data and features, after checking that these have the content
hashes the run names (otherwise one error line says which differ and how to rebuild them). The new run lands in
the same MLflow experiment, tagged `rerun_of=<run_id>`. The logged and the reproduced value of the run's metric
(`best_<monitor>`) are printed; the exit status is 0 only when they are equal.

An ensemble run (src/ensemble/*/blend.py) is blended again the same way, with its logged code and config, whose
members are the run_ids it blended; its metric is the nested CV score (`nested_oof_<competition metric>`), and the
new submission is compared with the logged one too.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from src.utils.core.errors import WorkspaceError
from src.utils.core.io import read_json
from src.utils.core.paths import DATA_DIR, ROOT, resolve, shown

if TYPE_CHECKING:  # MLflow is imported when a run is re-run, never for --help
    from mlflow import MlflowClient
    from mlflow.entities import Run


def check_lineage(tags: dict[str, str], config: dict) -> None:
    """Today's feature folder (and the dataset folder it was built from) hold what the run read."""
    feature_dir = resolve(str(config.get("feature_dir", "")))
    manifest = feature_dir / "manifest.json"
    name = feature_dir.name
    rebuild_features = f"poetry run python src/feature/{name}/build_features.py force=true"
    if not manifest.is_file():
        raise WorkspaceError(f"{shown(feature_dir)} has no features; build them: {rebuild_features}")
    features = read_json(manifest)
    differ = []
    want = tags.get(f"{name}_hash")
    if want and want != features["content_hash"]:
        differ.append(f"{name} (run: {want[:12]}, today: {features['content_hash'][:12]})")
    dataset = features.get("dataset", {})
    ds_name, ds_hash = dataset.get("name"), dataset.get("hash")
    ds_want = tags.get(f"{ds_name}_hash") if ds_name else None
    if ds_want and ds_want != ds_hash:
        differ.append(f"{ds_name} (run: {ds_want[:12]}, today's features built from: {str(ds_hash)[:12]})")
    if ds_name and (DATA_DIR / ds_name / "manifest.json").is_file():
        today = read_json(DATA_DIR / ds_name / "manifest.json")["content_hash"]
        if ds_want and today != ds_want and not any(d.startswith(ds_name) for d in differ):
            differ.append(f"{ds_name} (run: {ds_want[:12]}, today: {today[:12]})")
    if differ:
        steps = [f"poetry run python src/dataset/{ds_name}/make_dataset.py force=true"] if ds_name else []
        raise WorkspaceError(f"the data differ from what the run read: {'; '.join(differ)}; rebuild them as the run "
                             f"had them (same raw data and configs): {' && '.join([*steps, rebuild_features])}")


def shadow_workspace(code: Path, folder: str, config_yaml: str, competition: tuple[str, str],
                     entry: str = "train.py") -> Path:
    """The logged code as a workspace of its own (its `src`, the run's config and competition file) that reads and
    writes this workspace's data, logs and outputs; returns its entry script (train.py, blend.py)."""
    config_dir = code / "config" / Path(folder).relative_to("src")
    config_dir.mkdir(parents=True)
    (config_dir / "config.yaml").write_text(config_yaml)
    name, text = competition
    (code / "config" / "competition").mkdir(parents=True)
    (code / "config" / "competition" / f"{name}.yaml").write_text(text)
    for name in ("_data", "logs", "outputs", "multirun"):
        os.symlink(ROOT / name, code / name)
    return code / folder / entry


def is_ensemble(run: Run) -> bool:
    """An ensemble's run (src/ensemble/*/blend.py) rather than a training run (src/model/*/train.py)."""
    return run.data.tags.get("experiment_folder", "").startswith("src/ensemble/")


def finished_run(client: MlflowClient, run_id: str) -> Run:
    """The run `run_id`, if it is one that can be re-run: a FINISHED training or ensemble run (not a sweep's
    parent, which names its best trial instead)."""
    from mlflow.exceptions import MlflowException

    from src.utils.track.tracking import tracking_uri

    try:
        run = client.get_run(run_id)
    except MlflowException as exc:
        raise WorkspaceError(f"no run {run_id!r} in {tracking_uri()}; copy a run_id from the MLflow UI "
                             f"or the diary") from exc
    tags, folder = run.data.tags, run.data.tags.get("experiment_folder", "")
    if tags.get("sweep") == "parent":
        best = tags.get("best_run_id", "")
        best_trial = (f"its best trial (#{tags.get('best_trial', '?')}): bash scripts/rerun.sh {best}"
                      if len(best) == 32 else "one of its trials (no trial of it completed yet)")
        raise WorkspaceError(f"run {run_id[:8]} is a sweep's parent run, not a training run; rerun "
                             f"{best_trial}")
    if run.info.status != "FINISHED" or not (folder.startswith("src/model/") or is_ensemble(run)):
        raise WorkspaceError(f"run {run_id[:8]} is not a finished training or ensemble run (status "
                             f"{run.info.status}, folder {folder or '-'}); rerun takes what src/model/*/train.py "
                             f"or src/ensemble/*/blend.py recorded")
    return run


def logged_competition(client: MlflowClient, run_id: str, tags: dict[str, str], tmp: str) -> tuple[str, str]:
    """(name, text) of the competition file the run used: its logged copy, not today's file."""
    from mlflow.exceptions import MlflowException

    from src.utils.competition.spec import logged
    from src.utils.track.formats import older_run

    try:
        name, text = tags["competition"], Path(client.download_artifacts(run_id, "competition.yaml", tmp)).read_text()
    except (KeyError, MlflowException, OSError) as exc:
        raise older_run(run_id, "competition tag and competition.yaml") from exc
    logged(name, text, run_id, "rerun.sh")  # says so when today's file differs
    return name, text


def run_again(client: MlflowClient, run_id: str, run: Run, tmp: str) -> tuple[str, str]:
    """Execute the run again in a shadow workspace of its logged code and config (its data checked first);
    (the metric it is compared on, the new run's id)."""
    from omegaconf import OmegaConf

    from src.utils.track.tracking import tracking_uri

    tags, folder, ensemble = run.data.tags, run.data.tags.get("experiment_folder", ""), is_ensemble(run)
    config_file = client.download_artifacts(run_id, "config.yaml", tmp)
    config = OmegaConf.to_container(OmegaConf.load(config_file))
    # an ensemble: its members (resolved to run_ids in its config) are its data, checked by the blend itself
    metric = (f"nested_oof_{tags.get('competition_metric')}" if ensemble
              else f"best_{config.get('monitor') or run.data.params.get('monitor')}")
    if metric not in run.data.metrics:
        raise WorkspaceError(f"run {run_id[:8]} has no {metric} to reproduce (a pruned trial?)")
    if not ensemble:
        check_lineage(tags, config)
    code = Path(client.download_artifacts(run_id, "code", tmp))
    competition = logged_competition(client, run_id, tags, tmp)
    train_py = shadow_workspace(code, folder, Path(config_file).read_text(), competition,
                                "blend.py" if ensemble else "train.py")
    out_dir = ROOT / "outputs" / f"{Path(folder).name}-rerun" / run_id[:8] / datetime.now().strftime(
        "%Y-%m-%d_%H-%M-%S")
    print(f"re-running {run_id} with its logged code and config (log: {shown(out_dir)})", flush=True)
    env = {**os.environ, "PYTHONPATH": str(code), "MLFLOW_TRACKING_URI": tracking_uri()}
    res = subprocess.run([sys.executable, str(train_py), f"hydra.run.dir={out_dir}"], env=env,
                         capture_output=True, text=True)
    if res.returncode != 0 or "run_id=" not in res.stdout:
        sys.stderr.write(res.stderr[-4000:])
        raise WorkspaceError(f"the re-run failed (exit {res.returncode}); its log is above and in "
                             f"{shown(out_dir)}")
    return metric, res.stdout.split("run_id=")[1].split()[0]


def reproduced(client: MlflowClient, run_id: str, run: Run, metric: str, new_id: str) -> bool:
    """Tag the new run and print the logged against the reproduced metric (and, for an ensemble, submission.csv);
    whether they are equal."""
    client.set_tag(new_id, "rerun_of", run_id)
    logged, again = run.data.metrics[metric], client.get_run(new_id).data.metrics[metric]
    same = logged == again
    print(f"{metric}: logged {logged!r}, reproduced {again!r} -> {'equal' if same else 'DIFFERENT'} "
          f"(new run {new_id}, tagged rerun_of={run_id})")
    if is_ensemble(run):
        with tempfile.TemporaryDirectory(prefix="rerun-") as tmp:
            files = [Path(client.download_artifacts(r, "submission.csv", f"{tmp}/{r}")).read_bytes()
                     for r in (run_id, new_id)]
        same_file = files[0] == files[1]
        print(f"submission.csv: {'the same file, byte for byte' if same_file else 'DIFFERENT'}")
        same = same and same_file
    return same


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bash scripts/rerun.sh", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_id", help="a FINISHED training run")
    args = parser.parse_args(argv)

    import mlflow  # here, not at the top: --help answers without importing MLflow

    from src.utils.track.tracking import setup_mlflow

    try:
        setup_mlflow()
        client = mlflow.MlflowClient()
        run = finished_run(client, args.run_id)
        with tempfile.TemporaryDirectory(prefix="rerun-") as tmp:
            metric, new_id = run_again(client, args.run_id, run, tmp)
        return 0 if reproduced(client, args.run_id, run, metric, new_id) else 1
    except WorkspaceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    from src.utils.cli.setup import setup

    setup()  # the environment, resolvers and plugins, before anything else runs
    sys.exit(main())

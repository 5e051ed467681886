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

from src.utils.core.errors import WorkspaceError
from src.utils.core.io import read_json
from src.utils.core.paths import DATA_DIR, ROOT, resolve, shown


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


def shadow_workspace(code: Path, folder: str, config_yaml: str, competition: tuple[str, str] | None,
                     entry: str = "train.py") -> Path:
    """The logged code as a workspace of its own (its `src`, the run's config and competition file) that reads and
    writes this workspace's data, logs and outputs; returns its entry script (train.py, blend.py)."""
    config_dir = code / "config" / Path(folder).relative_to("src")
    config_dir.mkdir(parents=True)
    (config_dir / "config.yaml").write_text(config_yaml)
    if competition is not None:
        name, text = competition
        (code / "config" / "competition").mkdir(parents=True)
        (code / "config" / "competition" / f"{name}.yaml").write_text(text)
    for name in ("_data", "logs", "outputs", "multirun"):
        os.symlink(ROOT / name, code / name)
    return code / folder / entry


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bash scripts/rerun.sh", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_id", help="a FINISHED training run")
    args = parser.parse_args(argv)

    import mlflow
    from mlflow.exceptions import MlflowException
    from omegaconf import OmegaConf

    from src.utils.track.tracking import setup_mlflow, tracking_uri

    try:
        setup_mlflow()
        client = mlflow.MlflowClient()
        try:
            run = client.get_run(args.run_id)
        except MlflowException as exc:
            raise WorkspaceError(f"no run {args.run_id!r} in {tracking_uri()}; copy a run_id from the MLflow UI "
                                 f"or the diary") from exc
        tags, folder = run.data.tags, run.data.tags.get("experiment_folder", "")
        if tags.get("sweep") == "parent":
            best = tags.get("best_run_id", "")
            best_trial = (f"its best trial (#{tags.get('best_trial', '?')}): bash scripts/rerun.sh {best}"
                          if len(best) == 32 else "one of its trials (no trial of it completed yet)")
            raise WorkspaceError(f"run {args.run_id[:8]} is a sweep's parent run, not a training run; rerun "
                                 f"{best_trial}")
        ensemble = folder.startswith("src/ensemble/")
        if run.info.status != "FINISHED" or not (folder.startswith("src/model/") or ensemble):
            raise WorkspaceError(f"run {args.run_id[:8]} is not a finished training or ensemble run (status "
                                 f"{run.info.status}, folder {folder or '-'}); rerun takes what src/model/*/train.py "
                                 f"or src/ensemble/*/blend.py recorded")
        with tempfile.TemporaryDirectory(prefix="rerun-") as tmp:
            config_file = client.download_artifacts(args.run_id, "config.yaml", tmp)
            config = OmegaConf.to_container(OmegaConf.load(config_file))
            # an ensemble: its members (resolved to run_ids in its config) are its data, checked by the blend itself
            metric = (f"nested_oof_{tags.get('competition_metric')}" if ensemble
                      else f"best_{config.get('monitor') or run.data.params.get('monitor')}")
            if metric not in run.data.metrics:
                raise WorkspaceError(f"run {args.run_id[:8]} has no {metric} to reproduce (a pruned trial?)")
            if not ensemble:
                check_lineage(tags, config)
            code = Path(client.download_artifacts(args.run_id, "code", tmp))
            competition = None
            if config.get("competition") or tags.get("competition"):
                name = str(config.get("competition") or tags.get("competition"))
                try:
                    competition = (name, Path(client.download_artifacts(args.run_id, "competition.yaml", tmp)
                                              ).read_text())
                except (MlflowException, OSError):
                    from src.utils.core.paths import CONFIG_DIR

                    competition = (name, (CONFIG_DIR / "competition" / f"{name}.yaml").read_text())
            train_py = shadow_workspace(code, folder, Path(config_file).read_text(), competition,
                                        "blend.py" if ensemble else "train.py")
            out_dir = ROOT / "outputs" / f"{Path(folder).name}-rerun" / args.run_id[:8] / datetime.now().strftime(
                "%Y-%m-%d_%H-%M-%S")
            print(f"re-running {args.run_id} with its logged code and config (log: {shown(out_dir)})", flush=True)
            env = {**os.environ, "PYTHONPATH": str(code), "MLFLOW_TRACKING_URI": tracking_uri()}
            res = subprocess.run([sys.executable, str(train_py), f"hydra.run.dir={out_dir}"], env=env,
                                 capture_output=True, text=True)
            if res.returncode != 0 or "run_id=" not in res.stdout:
                sys.stderr.write(res.stderr[-4000:])
                raise WorkspaceError(f"the re-run failed (exit {res.returncode}); its log is above and in "
                                     f"{shown(out_dir)}")
        new_id = res.stdout.split("run_id=")[1].split()[0]
        client.set_tag(new_id, "rerun_of", args.run_id)
        logged, again = run.data.metrics[metric], client.get_run(new_id).data.metrics[metric]
        same = logged == again
        print(f"{metric}: logged {logged!r}, reproduced {again!r} -> {'equal' if same else 'DIFFERENT'} "
              f"(new run {new_id}, tagged rerun_of={args.run_id})")
        if ensemble:
            with tempfile.TemporaryDirectory(prefix="rerun-") as tmp:
                files = [Path(client.download_artifacts(r, "submission.csv", f"{tmp}/{r}")).read_bytes()
                         for r in (args.run_id, new_id)]
            same_file = files[0] == files[1]
            print(f"submission.csv: {'the same file, byte for byte' if same_file else 'DIFFERENT'}")
            same = same and same_file
        return 0 if same else 1
    except WorkspaceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    from src.utils.cli.setup import setup

    setup()  # the environment, resolvers and plugins, before anything else runs
    sys.exit(main())

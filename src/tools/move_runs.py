"""Copy this workspace's local MLflow runs (logs/mlruns) to a tracking server: `bash scripts/services.sh import`.

Every experiment, run (params, full metric histories, tags, status, times), artifact, data input and logged model
(`runs:/<id>/model` keeps loading) is copied; sweep trials stay nested under their parent. The local store is read
only: nothing is deleted there. Each copied run is tagged `imported_from_run_id`, so running the command again
copies only what is new.

    python -m src.tools.move_runs --to http://127.0.0.1:5055 [--experiment model01 ...]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

SOURCE_TAG = "imported_from_run_id"
NOT_COPIED = ("mlflow.parentRunId",)  # re-pointed at the copied parent instead


def copy_run(src, dst, run, experiment_id: str, parent_of: dict[str, str]) -> str:
    from mlflow.entities import Metric, Param

    tags = {k: v for k, v in run.data.tags.items() if k not in NOT_COPIED}
    parent = run.data.tags.get("mlflow.parentRunId")
    if parent:
        tags["mlflow.parentRunId"] = parent_of.get(parent, parent)
    tags[SOURCE_TAG] = run.info.run_id
    new = dst.create_run(experiment_id, start_time=run.info.start_time, tags=tags, run_name=run.info.run_name)
    new_id = new.info.run_id
    metrics = [Metric(m.key, m.value, m.timestamp, m.step) for key in run.data.metrics
               for m in src.get_metric_history(run.info.run_id, key)]
    params = [Param(k, v) for k, v in run.data.params.items()]
    for i in range(0, len(metrics), 1000):  # MLflow's limits per batch: 1,000 metrics, 100 params
        dst.log_batch(new_id, metrics=metrics[i:i + 1000])
    for i in range(0, len(params), 100):
        dst.log_batch(new_id, params=params[i:i + 100])
    if run.inputs and run.inputs.dataset_inputs:
        dst.log_inputs(new_id, datasets=list(run.inputs.dataset_inputs))
    with tempfile.TemporaryDirectory() as tmp:
        if src.list_artifacts(run.info.run_id):
            local = src.download_artifacts(run.info.run_id, "", tmp)
            dst.log_artifacts(new_id, local)
    copy_models(src, dst, run, experiment_id, new_id)
    dst.set_terminated(new_id, run.info.status, end_time=run.info.end_time)
    return new_id


def copy_models(src, dst, run, experiment_id: str, new_run_id: str) -> None:
    """The run's logged models (what `runs:/<id>/<name>` loads), with their files."""
    models = src.search_logged_models([run.info.experiment_id], filter_string=f"source_run_id = '{run.info.run_id}'")
    for model in models:
        copy = dst.create_logged_model(experiment_id, name=model.name, source_run_id=new_run_id,
                                       tags=model.tags, params=model.params, model_type=model.model_type)
        with tempfile.TemporaryDirectory() as tmp:
            import mlflow

            local = mlflow.artifacts.download_artifacts(artifact_uri=model.artifact_location, dst_path=tmp)
            dst.log_model_artifacts(copy.model_id, local)
        dst.finalize_logged_model(copy.model_id, "READY")


def main(argv: list[str] | None = None) -> int:
    from src.utils.track.store import DEFAULT_TRACKING_URI
    from src.utils.track.tracking import EXPERIMENT_TAGS, setup_mlflow

    parser = argparse.ArgumentParser(prog="bash scripts/services.sh import", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--to", required=True, help="the tracking server, e.g. http://127.0.0.1:5055")
    parser.add_argument("--experiment", action="append", help="only these experiments (default: all)")
    args = parser.parse_args(argv)
    from mlflow import MlflowClient

    source = setup_mlflow(DEFAULT_TRACKING_URI)
    if not Path(source.removeprefix("sqlite:///")).is_file():
        print("error: no local MLflow store (logs/mlruns/mlflow.db) to copy", file=sys.stderr)
        return 2
    src, dst = MlflowClient(source), MlflowClient(args.to)
    copied = skipped = 0
    for exp in src.search_experiments():
        if args.experiment and exp.name not in args.experiment:
            continue
        target = dst.get_experiment_by_name(exp.name)
        exp_id = target.experiment_id if target else dst.create_experiment(
            exp.name, tags={**{k: v for k, v in exp.tags.items() if not k.startswith("mlflow.")}, **EXPERIMENT_TAGS})
        done = {r.data.tags[SOURCE_TAG]: r.info.run_id
                for r in dst.search_runs([exp_id], f"tags.{SOURCE_TAG} != ''", max_results=50000)}
        runs = sorted(src.search_runs([exp.experiment_id], max_results=50000),
                      key=lambda r: ("mlflow.parentRunId" in r.data.tags, r.info.start_time))  # parents first
        for run in runs:
            if run.info.run_id in done:
                skipped += 1
                continue
            done[run.info.run_id] = copy_run(src, dst, run, exp_id, done)
            copied += 1
        print(f"{exp.name}: {len(runs)} run(s) on {args.to}", flush=True)
    print(f"copied {copied} run(s), {skipped} already there; the local store is unchanged")
    return 0


if __name__ == "__main__":
    from src.utils.cli.setup import setup

    setup()  # the environment, resolvers and plugins, before anything else runs
    sys.exit(main())

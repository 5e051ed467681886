"""A run, packed for a Kaggle code competition: `bash scripts/kaggle_pack.sh <run_id> [--push]`.

Writes outputs/kaggle/<run_id>/
  dataset/   the Kaggle dataset: code/ (the code logged with the run, the dataset and feature folders that made its
             features, their configs in stages.json, the competition file, the run's config.yaml), models/ (every
             model of the run: each fold's for a fold=all run), dataset-metadata.json
  notebook/  the offline inference notebook (inference.ipynb, internet off) and kernel-metadata.json naming the
             dataset and the competition as its sources

The notebook runs the experiment's own code (src/utils/inference.py): the packed dataset and feature stages on the
competition's files, then the run's data module and models through Lightning, into the competition's submission,
checked against its sample_submission.csv, as `predict.py` does. It reads $KAGGLE_INPUT (default /kaggle/input),
where the dataset sits at <slug>/ and the competition at <competition slug>/, and writes
$KAGGLE_WORKING/submission.csv (default /kaggle/working). The script prints the kaggle commands that upload both;
with --push it runs them when Kaggle credentials are configured (KAGGLE_USERNAME and KAGGLE_KEY, from the
environment or .env, or ~/.kaggle/kaggle.json); the credentials are never printed or written into the pack.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

from src.utils.errors import WorkspaceError
from src.utils.io import read_json
from src.utils.paths import OUTPUTS_DIR, ROOT, resolve, shown


def kaggle_username() -> str | None:
    """The configured Kaggle user (environment, .env through the scripts, or kaggle.json); never the key."""
    if os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY"):
        return os.environ["KAGGLE_USERNAME"]
    # as the kaggle CLI: KAGGLE_CONFIG_DIR when it is set, else the usual folders
    folders = [os.environ["KAGGLE_CONFIG_DIR"]] if os.environ.get("KAGGLE_CONFIG_DIR") else ["~/.kaggle",
                                                                                           "~/.config/kaggle"]
    for folder in folders:
        path = Path(folder).expanduser() / "kaggle.json"
        if path.is_file():
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if data.get("username") and data.get("key"):
                return str(data["username"])
    return None


def slug_of(text: str) -> str:
    slug = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return slug[:50] or "model"


def notebook(slug: str, competition_slug: str, run: str, n_models: int) -> nbformat.NotebookNode:
    """The inference notebook: the packed code, run on the competition's files."""
    cells = [
        nbformat.v4.new_markdown_cell(
            f"# Inference: {slug}\n\nOffline inference for `{competition_slug}` with run `{run}` ({n_models} "
            f"model(s); several are combined as the competition config says), packed in the dataset `{slug}` by "
            f"`bash scripts/kaggle_pack.sh`. The features are made again from the competition's files by the "
            f"experiment's own dataset and feature code, then predicted by its own data module and models."),
        nbformat.v4.new_code_cell(
            "import os, sys\n"
            "from pathlib import Path\n\n"
            "INPUT = Path(os.environ.get('KAGGLE_INPUT', '/kaggle/input'))\n"
            "WORKING = Path(os.environ.get('KAGGLE_WORKING', '/kaggle/working'))\n"
            f"PACK = INPUT / {slug!r}\n"
            f"COMPETITION = INPUT / {competition_slug!r}\n"
            "sys.path.insert(0, str(PACK / 'code'))  # the experiment's code, as the run was trained with it\n"
            "from src.utils.inference import check_against_sample, pack_submission, rebuild_features"),
        nbformat.v4.new_code_cell(
            "features = rebuild_features(PACK / 'code', COMPETITION, WORKING / 'features')\n"
            "same = features.content_hash == (PACK / 'code' / 'features_hash.txt').read_text().strip()\n"
            "print(features, '- the same features the run was trained on' if same else\n"
            "      '- other data than the run saw (e.g. the hidden test set)')"),
        nbformat.v4.new_code_cell(
            "submission = pack_submission(PACK, features)\n"
            "check_against_sample(submission, COMPETITION, PACK / 'code')\n"
            "WORKING.mkdir(parents=True, exist_ok=True)\n"
            "submission.to_csv(WORKING / 'submission.csv', index=False)\n"
            "print(f'{len(submission)} rows -> {WORKING / \"submission.csv\"}')\n"
            "submission.head()"),
    ]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def stage_of(manifest: dict, stage: str) -> dict:
    """A data stage that made the run's features: its folder, its resolved config (as its run logged it) and run,
    after checking that today's folder still holds the code that ran."""
    import mlflow

    from src.utils.hashing import tree_sha256

    client = mlflow.MlflowClient()
    run = client.get_run(manifest["mlflow_run_id"])
    folder = run.data.tags.get("experiment_folder", "")
    if not folder.startswith(f"src/{stage}/") or tree_sha256(ROOT / folder) != run.data.tags.get("code_hash"):
        raise WorkspaceError(f"{folder or 'the ' + stage + ' folder'} differs from the code that built the run's "
                             f"data (run {run.info.run_id[:8]}); restore it, or rebuild the data and retrain")
    from omegaconf import OmegaConf

    try:
        config = OmegaConf.to_container(OmegaConf.load(client.download_artifacts(run.info.run_id, "config.yaml")))
    except (mlflow.exceptions.MlflowException, OSError) as exc:
        raise WorkspaceError(f"the {stage} run {run.info.run_id[:8]} logged no config.yaml (made by an older version); "
                             f"rebuild it: poetry run python {folder}/{ENTRY[stage]} force=true") from exc
    return {"folder": Path(folder).name, "config": config, "run_id": run.info.run_id}


ENTRY = {"dataset": "make_dataset.py", "feature": "build_features.py"}


def pack(run_id: str, user: str | None, slug: str | None, out_root: Path = OUTPUTS_DIR / "kaggle") -> Path:
    import mlflow

    from src.utils.reload import load_run
    from src.utils.submission import run_features

    run = load_run(run_id)
    competition = run.competition()
    features = run_features(run)
    dataset_manifest = read_json(resolve(features.manifest["dataset"]["dir"]) / "manifest.json")
    stages = {"dataset": stage_of(dataset_manifest, "dataset"), "feature": stage_of(features.manifest, "feature")}
    user = user or kaggle_username() or "your-kaggle-username"
    slug = slug_of(slug or f"{run.experiment}-{run_id[:8]}")
    fold_all = str(run.params.get("fold")) == "all"
    names = [f"model_fold{k}" for k in run.tags.get("fold_models", "").split(",") if k] if fold_all else ["model"]
    if fold_all and not names:
        names = [f"model_fold{k}" for k in range(features.n_folds)]

    dest = out_root / run_id
    out_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{run_id}-", dir=out_root))
    try:
        dataset, nb_dir = tmp / "dataset", tmp / "notebook"
        (dataset / "models").mkdir(parents=True)
        nb_dir.mkdir()
        for name in names:
            local = Path(mlflow.artifacts.download_artifacts(f"runs:/{run_id}/{name}"))
            shutil.copyfile(local / "data" / "model.pth", dataset / "models" / f"{name}.pth")
        mlflow.artifacts.download_artifacts(f"runs:/{run_id}/code", dst_path=str(dataset))  # -> dataset/code
        code = dataset / "code"
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        if not (code / "src" / "utils" / "inference.py").is_file():  # a run logged before packs ran its own code
            for shared in ("utils", "tasks"):
                shutil.rmtree(code / "src" / shared, ignore_errors=True)
                shutil.copytree(ROOT / "src" / shared, code / "src" / shared, ignore=ignore)
            print(f"note: run {run_id[:8]} was logged before packed inference existed; packing today's src/utils "
                  f"with its own model folder")
        for stage, info in stages.items():  # the stage folders, and the modules of their stage they import
            shutil.copytree(ROOT / "src" / stage / info["folder"], code / "src" / stage / info["folder"],
                            ignore=ignore, dirs_exist_ok=True)
            for module in (ROOT / "src" / stage).glob("*.py"):
                shutil.copyfile(module, code / "src" / stage / module.name)
        shutil.copyfile(mlflow.artifacts.download_artifacts(f"runs:/{run_id}/config.yaml"), code / "config.yaml")
        (code / "config" / "competition").mkdir(parents=True)
        from omegaconf import OmegaConf

        (code / "config" / "competition" / f"{competition.name}.yaml").write_text(OmegaConf.to_yaml(competition.cfg))
        (code / "stages.json").write_text(json.dumps(stages, indent=2))
        (code / "features_hash.txt").write_text(features.content_hash + "\n")
        (dataset / "dataset-metadata.json").write_text(json.dumps(
            {"title": f"{run.experiment} run {run_id[:8]}"[:50], "id": f"{user}/{slug}",
             "licenses": [{"name": "CC0-1.0"}]}, indent=2))
        nbformat.write(notebook(slug, competition.slug, run_id, len(names)), nb_dir / "inference.ipynb")
        (nb_dir / "kernel-metadata.json").write_text(json.dumps(
            {"id": f"{user}/{slug}-inference", "title": f"{slug}-inference", "code_file": "inference.ipynb",
             "language": "python", "kernel_type": "notebook", "is_private": True, "enable_gpu": False,
             "enable_internet": False, "dataset_sources": [f"{user}/{slug}"],
             "competition_sources": [competition.slug], "kernel_sources": []}, indent=2))
        if dest.exists():
            shutil.rmtree(dest)
        tmp.rename(dest)  # a complete pack or none: never a half-written folder that looks valid
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def push(dest: Path, dataset_id: str) -> None:
    """Upload the dataset (a new version if it exists) and push the notebook, with the kaggle CLI."""
    kaggle = [sys.executable, "-m", "kaggle"] if shutil.which("kaggle") is None else ["kaggle"]
    exists = subprocess.run([*kaggle, "datasets", "status", dataset_id], capture_output=True, text=True)
    if exists.returncode == 0:
        cmd = [*kaggle, "datasets", "version", "-p", str(dest / "dataset"), "-m", "new run", "--dir-mode", "zip"]
    else:
        cmd = [*kaggle, "datasets", "create", "-p", str(dest / "dataset"), "--dir-mode", "zip"]
    subprocess.run(cmd, check=True)
    subprocess.run([*kaggle, "kernels", "push", "-p", str(dest / "notebook")], check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bash scripts/kaggle_pack.sh", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_id", help="a FINISHED training run (or `best`: the best run of --experiment)")
    parser.add_argument("--experiment", help="the model folder's experiment for run_id=best, e.g. model01")
    parser.add_argument("--user", help="your Kaggle username (default: from the Kaggle credentials)")
    parser.add_argument("--slug", help="the dataset's name on Kaggle (default: <experiment>-<run_id[:8]>)")
    parser.add_argument("--push", action="store_true", help="upload the dataset and push the notebook")
    args = parser.parse_args(argv)
    try:
        from src.utils.reload import best_run_id

        if args.run_id == "best" and not args.experiment:
            raise WorkspaceError("run_id=best needs --experiment NAME (the model folder's experiment, e.g. model01)")
        run_id = best_run_id(args.experiment) if args.run_id == "best" else args.run_id
        dest = pack(run_id, args.user, args.slug)
        meta = json.loads((dest / "dataset" / "dataset-metadata.json").read_text())
        size = sum(f.stat().st_size for f in (dest / "dataset").rglob("*") if f.is_file())
        print(f"packed run {run_id} -> {shown(dest)} (dataset {size / 1e6:.1f} MB, id {meta['id']})")
        print("upload it with the kaggle CLI (credentials: KAGGLE_USERNAME/KAGGLE_KEY or ~/.kaggle/kaggle.json):")
        print(f"  kaggle datasets create -p {shown(dest / 'dataset')} --dir-mode zip      "
              f"# later: kaggle datasets version -p ... -m '...' --dir-mode zip")
        print(f"  kaggle kernels push -p {shown(dest / 'notebook')}")
        if args.push:
            if kaggle_username() is None:
                raise WorkspaceError("--push needs Kaggle credentials: set KAGGLE_USERNAME and KAGGLE_KEY (in .env, "
                                     "see .env.example) or put kaggle.json in ~/.kaggle/")
            if meta["id"].startswith("your-kaggle-username/"):
                raise WorkspaceError("--push needs your Kaggle username in the pack: pass --user NAME")
            push(dest, meta["id"])
    except WorkspaceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as exc:
        print(f"error: the kaggle CLI failed ({' '.join(exc.cmd[:4])} ...: exit {exc.returncode}); "
              f"its own message is above", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())

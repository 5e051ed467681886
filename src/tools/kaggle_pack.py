"""A run, packed for a Kaggle code competition: `bash scripts/kaggle_pack.sh <run_id> [--push]`.

Writes outputs/kaggle/<run_id>/
  dataset/   the Kaggle dataset: code/ (the code logged with the run, the dataset and feature folders that made its
             features, their configs in stages.json, the competition file, the run's config.yaml), models/ (every
             model of the run: each fold's for a fold=all run), dataset-metadata.json
  notebook/  the offline inference notebook (inference.ipynb, internet off) and kernel-metadata.json naming the
             dataset and the competition as its sources

An ensemble run (src/ensemble/*/blend.py) packs every member as above under dataset/members/<k>/ and its own logged
code, config and fitted method under dataset/ensemble/; its notebook runs each member's packed code in a process of
its own (members may come from different model folders) and blends their test scores with the fitted method: the
submission the ensemble run wrote.

The notebook runs the experiment's own code (predict/inference.py): the packed dataset and feature stages on the
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

from src.utils.core.errors import WorkspaceError
from src.utils.core.io import read_json
from src.utils.core.paths import OUTPUTS_DIR, ROOT, resolve, shown


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


# The last lines of both notebooks: the checked submission where Kaggle takes it.
WRITE_SUBMISSION = ("WORKING.mkdir(parents=True, exist_ok=True)\n"
                    "submission.to_csv(WORKING / 'submission.csv', index=False)\n"
                    "print(f'{len(submission)} rows -> {WORKING / \"submission.csv\"}')\n"
                    "submission.head()")


def as_notebook(cells: list) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


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
            "check_against_sample(submission, COMPETITION, PACK / 'code')\n" + WRITE_SUBMISSION),
    ]
    return as_notebook(cells)


# Run by the ensemble notebook once per member, in a process of its own with that member's packed code as `src`
# (members may come from different model folders and code versions): its features made again from the
# competition's files, its models' test scores and the test ids, written as files for the notebook to blend.
MEMBER_SCRIPT = '''"""A packed member's test scores: python member_scores.py <member pack> <competition files> <out>."""
import sys
from pathlib import Path

pack, competition_dir, out = (Path(a) for a in sys.argv[1:4])
sys.path.insert(0, str(pack / "code"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from src.utils.competition import load as load_competition  # noqa: E402
from src.utils.inference import rebuild_features  # noqa: E402
from src.utils.logs import quiet_libraries  # noqa: E402
from src.utils.predictions import predict_scores, predict_trainer, test_loader  # noqa: E402
from src.utils.schema import instantiate  # noqa: E402

quiet_libraries()
features = rebuild_features(pack / "code", competition_dir, out / "features")
config = OmegaConf.load(pack / "code" / "config.yaml")
competition = load_competition(str(config.competition))
if sorted((pack / "models").glob("*.pkl")):  # an estimator's member: its pickled estimators
    from src.utils.predict.inference import packed_scores  # estimator runs are newer than the package layout

    scores = packed_scores(pack, features, competition)
    models = sorted((pack / "models").glob("*.pkl"))
else:
    models = [torch.load(p, map_location="cpu", weights_only=False) for p in sorted((pack / "models").glob("*.pth"))]
    datamodule = instantiate(config.data, features=features, fold=0)
    scores = predict_scores(models, test_loader(datamodule, features), competition.task, competition.fold_models,
                            predict_trainer("cpu"))
np.save(out / "test_scores.npy", scores)
features.test_ids(competition.ids).to_csv(out / "test_ids.csv", index=False)
same = features.content_hash == (pack / "code" / "features_hash.txt").read_text().strip()
print(f"member {pack.name}: {len(models)} model(s), {len(scores)} test rows"
      f"{'' if same else ' (other data than the member saw)'}")
'''


def ensemble_notebook(slug: str, competition_slug: str, run: str, n_members: int) -> nbformat.NotebookNode:
    """The ensemble's inference notebook: every member's packed code on the competition's files, then the
    ensemble's fitted method on their test scores."""
    cells = [
        nbformat.v4.new_markdown_cell(
            f"# Inference: {slug}\n\nOffline inference for `{competition_slug}` with ensemble run `{run}` "
            f"({n_members} members), packed in the dataset `{slug}` by `bash scripts/kaggle_pack.sh`. Each member "
            f"makes its features again from the competition's files and predicts the test rows with its own packed "
            f"code and models (a process per member); the ensemble's fitted method blends their scores."),
        nbformat.v4.new_code_cell(
            "import json, os, subprocess, sys\n"
            "from pathlib import Path\n\n"
            "import numpy as np\n"
            "import pandas as pd\n\n"
            "INPUT = Path(os.environ.get('KAGGLE_INPUT', '/kaggle/input'))\n"
            "WORKING = Path(os.environ.get('KAGGLE_WORKING', '/kaggle/working'))\n"
            f"PACK = INPUT / {slug!r}\n"
            f"COMPETITION = INPUT / {competition_slug!r}\n"
            "MEMBERS = json.loads((PACK / 'ensemble' / 'members.json').read_text())"),
        nbformat.v4.new_code_cell(
            "scores = []\n"
            "for k in range(len(MEMBERS)):\n"
            "    out = WORKING / 'members' / str(k)\n"
            "    out.mkdir(parents=True, exist_ok=True)\n"
            "    subprocess.run([sys.executable, str(PACK / 'ensemble' / 'member_scores.py'),\n"
            "                    str(PACK / 'members' / str(k)), str(COMPETITION), str(out)], check=True)\n"
            "    scores.append(np.load(out / 'test_scores.npy'))\n"
            "ids = pd.read_csv(WORKING / 'members' / '0' / 'test_ids.csv')"),
        nbformat.v4.new_code_cell(
            "sys.path.insert(0, str(PACK / 'ensemble' / 'code'))  # the ensemble's code, as the run blended with it\n"
            "from src.utils.inference import blend_submission\n\n"
            "submission = blend_submission(PACK / 'ensemble', scores, ids, COMPETITION)\n" + WRITE_SUBMISSION),
    ]
    return as_notebook(cells)


def stage_of(manifest: dict, stage: str) -> dict:
    """A data stage that made the run's features: its folder, its resolved config (as its run logged it) and run,
    after checking that today's folder still holds the code that ran."""
    import mlflow

    from src.utils.core.hashing import tree_sha256

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


def pack_run(run_id: str, dataset: Path) -> dict:
    """One training run into `dataset`: code/ (its logged code, the stages that made its features, its config and
    competition) and models/; what the notebook needs to know of it."""
    import mlflow

    from src.utils.predict.reload import load_run
    from src.utils.predict.submission import run_features

    run = load_run(run_id)
    competition = run.competition(used_by="kaggle_pack.sh")
    features = run_features(run)
    dataset_manifest = read_json(resolve(features.manifest["dataset"]["dir"]) / "manifest.json")
    stages = {"dataset": stage_of(dataset_manifest, "dataset"), "feature": stage_of(features.manifest, "feature")}
    names = [f"model_fold{k}" for k in run.folds] if str(run.params.get("fold")) == "all" else ["model"]
    (dataset / "models").mkdir(parents=True)
    for name in names:
        local = Path(mlflow.artifacts.download_artifacts(f"runs:/{run_id}/{name}"))
        if (local / "data" / "model.pth").is_file():  # a network: its pickled LightningModule
            shutil.copyfile(local / "data" / "model.pth", dataset / "models" / f"{name}.pth")
        else:  # an estimator: its library's object, pickled (the notebook needs the library, not MLflow)
            import pickle

            with open(dataset / "models" / f"{name}.pkl", "wb") as f:
                pickle.dump(load_run(run_id, model_name=name).model, f)
    mlflow.artifacts.download_artifacts(f"runs:/{run_id}/code", dst_path=str(dataset))  # -> dataset/code
    code = dataset / "code"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
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
    return {"experiment": run.experiment, "competition": competition, "n_models": len(names)}


def pack_ensemble(run, dataset: Path) -> dict:
    """An ensemble run into `dataset`: members/<k>/ (each member packed as a run is) and ensemble/ (the ensemble's
    logged code, config and competition, and its fitted method)."""
    import mlflow

    from src.utils.competition.spec import logged

    run_id = run.info.run_id
    member_ids = run.data.tags["ensemble_members"].split(",")
    n_models = 0
    for k, member in enumerate(member_ids):
        try:
            n_models += pack_run(member, dataset / "members" / str(k))["n_models"]
        except WorkspaceError as exc:
            raise WorkspaceError(f"member {k} ({member[:8]}) of ensemble {run_id[:8]} cannot be packed: {exc}") from exc
    ens = dataset / "ensemble"
    mlflow.artifacts.download_artifacts(f"runs:/{run_id}/code", dst_path=str(ens))  # -> ensemble/code
    for name in ("config.yaml", "competition.yaml", "blend/method.pkl"):
        shutil.copyfile(mlflow.artifacts.download_artifacts(f"runs:/{run_id}/{name}"), ens / Path(name).name)
    text = (ens / "competition.yaml").read_text()
    competition = logged(run.data.tags["competition"], text, run_id, "kaggle_pack.sh")
    (ens / "code" / "config" / "competition").mkdir(parents=True)
    (ens / "code" / "config" / "competition" / f"{competition.name}.yaml").write_text(text)
    (ens / "members.json").write_text(json.dumps(member_ids, indent=2))
    (ens / "member_scores.py").write_text(MEMBER_SCRIPT)
    return {"experiment": mlflow.MlflowClient().get_experiment(run.info.experiment_id).name,
            "competition": competition, "n_models": n_models, "members": len(member_ids)}


def pack(run_id: str, user: str | None, slug: str | None, out_root: Path = OUTPUTS_DIR / "kaggle") -> Path:
    import mlflow

    from src.utils.track.tracking import setup_mlflow

    setup_mlflow()
    try:
        record = mlflow.MlflowClient().get_run(run_id)
    except mlflow.exceptions.MlflowException as exc:
        raise WorkspaceError(f"run_id {run_id!r} is not in the MLflow store; copy a run_id from the MLflow UI or "
                             f"the diary") from exc
    ensemble = record.data.tags.get("stage") == "ensemble"
    if ensemble and record.info.status != "FINISHED":
        raise WorkspaceError(f"ensemble run {run_id[:8]} ended {record.info.status}; pack a FINISHED one")
    user = user or kaggle_username() or "your-kaggle-username"
    dest = out_root / run_id
    out_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{run_id}-", dir=out_root))
    try:
        dataset, nb_dir = tmp / "dataset", tmp / "notebook"
        dataset.mkdir()
        nb_dir.mkdir()
        info = pack_ensemble(record, dataset) if ensemble else pack_run(run_id, dataset)
        competition = info["competition"]
        slug = slug_of(slug or f"{info['experiment']}-{run_id[:8]}")
        (dataset / "dataset-metadata.json").write_text(json.dumps(
            {"title": f"{info['experiment']} run {run_id[:8]}"[:50], "id": f"{user}/{slug}",
             "licenses": [{"name": "CC0-1.0"}]}, indent=2))
        nb = (ensemble_notebook(slug, competition.slug, run_id, info["members"]) if ensemble
              else notebook(slug, competition.slug, run_id, info["n_models"]))
        nbformat.write(nb, nb_dir / "inference.ipynb")
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
    parser.add_argument("run_id", help="a FINISHED training or ensemble run (or `best`: the best run of --experiment)")
    parser.add_argument("--experiment", help="the model folder's experiment for run_id=best, e.g. model01")
    parser.add_argument("--user", help="your Kaggle username (default: from the Kaggle credentials)")
    parser.add_argument("--slug", help="the dataset's name on Kaggle (default: <experiment>-<run_id[:8]>)")
    parser.add_argument("--push", action="store_true", help="upload the dataset and push the notebook")
    args = parser.parse_args(argv)
    try:
        from src.utils.predict.reload import best_run_id

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
    from src.utils.cli.setup import setup

    setup()  # the environment, resolvers and plugins, before anything else runs
    os.chdir(ROOT)
    sys.exit(main())

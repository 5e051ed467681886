"""A run, packed for a Kaggle code competition: `bash scripts/kaggle_pack.sh <run_id> [--push]`.

Writes outputs/kaggle/<run_id>/
  dataset/   the Kaggle dataset: code/ (the code logged with the run), models/ (every model of the run: each fold's
             for a fold=all run), config.yaml (resolved), preprocess.json (how the features were made from the
             competition's images), dataset-metadata.json
  notebook/  the offline inference notebook (inference.ipynb, internet off) and kernel-metadata.json naming the
             dataset and the competition as its sources

The notebook imports only the packed code and torch; it reads $KAGGLE_INPUT (default /kaggle/input), where the
dataset sits at <slug>/ and the competition at digit-recognizer/, and writes $KAGGLE_WORKING/submission.csv
(default /kaggle/working). The script prints the kaggle commands that upload both; with --push it runs them when
Kaggle credentials are configured (KAGGLE_USERNAME and KAGGLE_KEY, from the environment or .env, or
~/.kaggle/kaggle.json); the credentials are never printed or written into the pack.
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

COMPETITION = "digit-recognizer"


def kaggle_username() -> str | None:
    """The configured Kaggle user (environment, .env through the scripts, or kaggle.json); never the key."""
    if os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY"):
        return os.environ["KAGGLE_USERNAME"]
    for folder in (os.environ.get("KAGGLE_CONFIG_DIR"), "~/.kaggle", "~/.config/kaggle"):
        path = Path(folder).expanduser() / "kaggle.json" if folder else None
        if path and path.is_file():
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


def notebook(slug: str, n_models: int) -> nbformat.NotebookNode:
    """The inference notebook: only the packed code, torch, numpy and pandas."""
    cells = [
        nbformat.v4.new_markdown_cell(
            f"# Inference: {slug}\n\nOffline inference for the Digit Recognizer competition with the model(s) packed "
            f"in the dataset `{slug}` ({n_models} model(s); several are averaged). "
            f"Made by `bash scripts/kaggle_pack.sh`."),
        nbformat.v4.new_code_cell(
            "import json, os, sys\n"
            "from pathlib import Path\n\n"
            "import numpy as np\nimport pandas as pd\nimport torch\n\n"
            "INPUT = Path(os.environ.get('KAGGLE_INPUT', '/kaggle/input'))\n"
            "WORKING = Path(os.environ.get('KAGGLE_WORKING', '/kaggle/working'))\n"
            f"PACK = INPUT / {slug!r}\n"
            f"COMPETITION = INPUT / {COMPETITION!r}\n"
            "sys.path.insert(0, str(PACK / 'code'))  # the code the run was trained with: its model class"),
        nbformat.v4.new_code_cell(
            "prep = json.loads((PACK / 'preprocess.json').read_text())\n"
            "test = pd.read_csv(COMPETITION / 'test.csv')\n"
            "pixels = [c for c in test.columns if c.startswith('pixel')]\n"
            "x = test[pixels].to_numpy(np.uint8).reshape(-1, *prep['image_shape']).astype(np.float32)\n"
            "norm = prep['normalization']  # as the feature folder made the training features\n"
            "if norm['method'] != 'none':\n"
            "    x /= 255.0\n"
            "if norm['method'] == 'standardize':\n"
            "    x -= norm['mean']\n"
            "    x /= norm['std']\n"
            "x.shape"),
        nbformat.v4.new_code_cell(
            "def predict(model, x, batch_size=1024):\n"
            "    model.eval()\n"
            "    with torch.inference_mode():\n"
            "        batches = torch.from_numpy(x).split(batch_size)\n"
            "        return torch.cat([model.predict_step(b, i) for i, b in enumerate(batches)]).numpy()\n\n"
            "paths = sorted((PACK / 'models').glob('*.pth'))\n"
            "models = [torch.load(p, map_location='cpu', weights_only=False) for p in paths]\n"
            "probs = np.mean([predict(m, x) for m in models], axis=0)\n"
            "submission = pd.DataFrame({'ImageId': np.arange(1, len(x) + 1), 'Label': probs.argmax(1)})\n"
            "WORKING.mkdir(parents=True, exist_ok=True)\n"
            "submission.to_csv(WORKING / 'submission.csv', index=False)\n"
            "print(f'{len(paths)} model(s), {len(submission)} rows -> {WORKING / \"submission.csv\"}')"),
    ]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def pack(run_id: str, user: str | None, slug: str | None, out_root: Path = OUTPUTS_DIR / "kaggle") -> Path:
    import mlflow

    from src.utils.reload import load_run

    run = load_run(run_id)
    fold_all = str(run.params.get("fold")) == "all"
    feature_dir = resolve(run.config.get("feature_dir", "_data/feature/feature01"))
    manifest = read_json(feature_dir / "manifest.json") if (feature_dir / "manifest.json").is_file() else None
    trained_on = run.tags.get(f"{feature_dir.name}_hash")
    if manifest is None or (trained_on and trained_on != manifest["content_hash"]):
        raise WorkspaceError(f"{shown(feature_dir)} no longer holds the features run {run_id[:8]} was trained on "
                             f"(its preprocessing goes into the pack); rebuild them: "
                             f"poetry run python src/feature/{feature_dir.name}/build_features.py")
    user = user or kaggle_username() or "your-kaggle-username"
    slug = slug_of(slug or f"{run.experiment}-{run_id[:8]}")
    names = [f"model_fold{k}" for k in range(int(manifest["n_folds"]))] if fold_all else ["model"]

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
        shutil.copyfile(mlflow.artifacts.download_artifacts(f"runs:/{run_id}/config.yaml"), dataset / "config.yaml")
        prep = {"feature_folder": feature_dir.name, "feature_hash": manifest["content_hash"],
                "normalization": manifest["normalization"], "image_shape": manifest["shapes"]["test_x"][1:]}
        (dataset / "preprocess.json").write_text(json.dumps(prep, indent=2))
        (dataset / "dataset-metadata.json").write_text(json.dumps(
            {"title": f"{run.experiment} run {run_id[:8]}"[:50], "id": f"{user}/{slug}",
             "licenses": [{"name": "CC0-1.0"}]}, indent=2))
        nbformat.write(notebook(slug, len(names)), nb_dir / "inference.ipynb")
        (nb_dir / "kernel-metadata.json").write_text(json.dumps(
            {"id": f"{user}/{slug}-inference", "title": f"{slug}-inference", "code_file": "inference.ipynb",
             "language": "python", "kernel_type": "notebook", "is_private": True, "enable_gpu": False,
             "enable_internet": False, "dataset_sources": [f"{user}/{slug}"],
             "competition_sources": [COMPETITION], "kernel_sources": []}, indent=2))
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
    parser.add_argument("--experiment", default="model01", help="for run_id=best (default model01)")
    parser.add_argument("--user", help="your Kaggle username (default: from the Kaggle credentials)")
    parser.add_argument("--slug", help="the dataset's name on Kaggle (default: <experiment>-<run_id[:8]>)")
    parser.add_argument("--push", action="store_true", help="upload the dataset and push the notebook")
    args = parser.parse_args(argv)
    try:
        from src.utils.reload import best_run_id

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

"""The floor for scripts/bench.sh: model01's Optuna sweep as a bare PyTorch loop in one process.

Same features, fold split, network (DigitCNN called as a plain nn.Module), optimizer, cosine schedule, batch
size, epochs, seeds and TPE sampler as `train.py -m 'lr=tag(log,interval(LOW,HIGH))'`, and nothing else: no
Hydra, no Lightning loop, no MLflow, no checkpoints, no early stopping. It even draws the shuffling seeds
from torch's global generator the way DataLoader does, so both sides train on the same batches and report
the same accuracies. It writes one JSON timeline (the same events as src.tools.bench.timeline_callback) for
src/tools/bench.py.

    python -m src.tools.bench_floor --feature-dir DIR --config FILE --trials N --epochs E --out FILE
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np
import optuna
import torch
import yaml
from torch.nn import functional as F

from src.model.model01.model import DigitCNN


def _draw_seed() -> int:
    return int(torch.empty((), dtype=torch.int64).random_().item())


def run_trial(hp: dict, lr: float, epochs: int, data: dict[str, torch.Tensor], events: list[dict]) -> float:
    """Train one trial for exactly `epochs` epochs; the best validation accuracy (the sweep's objective)."""
    seed = int(hp["seed"])
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    model = DigitCNN(channels=list(hp["model"]["channels"]), hidden=int(hp["model"]["hidden"]),
                     dropout=float(hp["dropout"]), lr=lr, weight_decay=float(hp["weight_decay"]),
                     optimizer=str(hp["optimizer"]), scheduler=str(hp["scheduler"]), max_epochs=epochs)
    # what DigitCNN.configure_optimizers builds, written out
    opt_cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}[hp["optimizer"]]
    kwargs = {"lr": lr, "weight_decay": float(hp["weight_decay"])}
    if hp["optimizer"] == "sgd":
        kwargs["momentum"] = 0.9
    opt = opt_cls(model.parameters(), **kwargs)
    sched = None
    if hp["scheduler"] == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs))
    x, y, xv, yv = data["x"], data["y"], data["xv"], data["yv"]
    bs, best = int(hp["batch_size"]), float("-inf")
    for _ in range(epochs):
        events.append({"event": "epoch_start", "t": time.time()})
        model.train()
        _draw_seed()  # DataLoader's per-iterator base seed
        g = torch.Generator()
        g.manual_seed(_draw_seed())  # RandomSampler's seed
        perm = torch.randperm(len(x), generator=g)
        for i, start in enumerate(range(0, len(x), bs)):
            if i == 0 and not any(e["event"] == "first_step" for e in events):
                events.append({"event": "first_step", "t": time.time()})
            idx = perm[start:start + bs]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        events.append({"event": "train_end", "t": time.time(), "samples": len(x)})
        model.eval()
        _draw_seed()  # the validation DataLoader's base seed
        correct = 0
        with torch.inference_mode():
            for start in range(0, len(xv), bs):
                logits = model(xv[start:start + bs])
                F.cross_entropy(logits, yv[start:start + bs])  # Lightning logs val_loss; same work here
                correct += int((logits.argmax(1) == yv[start:start + bs]).sum())
        best = max(best, correct / len(xv))
        if sched is not None:
            sched.step()
        events.append({"event": "epoch_end", "t": time.time()})
    return best


def main(argv: list[str] | None = None) -> int:
    t_main = time.time()
    parser = argparse.ArgumentParser(prog="python -m src.tools.bench_floor", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--feature-dir", type=Path, required=True)
    parser.add_argument("--config", type=Path, required=True, help="config/model/model01/config.yaml")
    parser.add_argument("--trials", type=int, required=True)
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--lr-low", type=float, default=1e-4)
    parser.add_argument("--lr-high", type=float, default=1e-2)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)

    hp = yaml.safe_load(args.config.read_text())
    fold = int(hp["fold"])
    arrays = {name: np.load(args.feature_dir / f"{name}.npy") for name in ("train_x", "train_y", "folds")}
    train, valid = arrays["folds"] != fold, arrays["folds"] == fold
    data = {"x": torch.from_numpy(arrays["train_x"][train]), "y": torch.from_numpy(arrays["train_y"][train]),
            "xv": torch.from_numpy(arrays["train_x"][valid]), "yv": torch.from_numpy(arrays["train_y"][valid])}
    torch.use_deterministic_algorithms(True)  # what Trainer(deterministic=True) does

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler_seed = hp["hydra"]["sweeper"]["sampler"]["seed"]
    study = optuna.create_study(direction="maximize" if hp["monitor_mode"] == "max" else "minimize",
                                sampler=optuna.samplers.TPESampler(seed=sampler_seed))
    events: list[dict] = []
    for _ in range(args.trials):
        trial = study.ask()
        lr = trial.suggest_float("lr", args.lr_low, args.lr_high, log=True)
        events.append({"event": "fit_start", "t": time.time()})
        value = run_trial(hp, lr, args.epochs, data, events)
        events.append({"event": "fit_end", "t": time.time()})
        study.tell(trial, value)
    # trial windows as Optuna records them (ask -> tell), exactly as they are read for the workspace's sweep
    trials = [{"number": t.number, "params": t.params, "value": t.value, "start": t.datetime_start.timestamp(),
               "end": t.datetime_complete.timestamp()} for t in study.trials]
    out = {"main_start": t_main, "events": events, "trials": trials,
           "n_train": len(data["x"]), "n_valid": len(data["xv"]), "torch_threads": torch.get_num_threads()}
    args.out.write_text(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

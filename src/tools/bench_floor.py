"""The floor for scripts/bench.sh: an experiment's Optuna sweep as a bare PyTorch loop in one process.

The model, its optimizer and its learning-rate schedule are the experiment's own: the config in
config/model/<experiment>/ is composed with Hydra's compose API (the same defaults, optimizer and scheduler
groups as `train.py`, plus `lr=<trial value> max_epochs=<epochs>` as overrides), the folder's own
`build(cfg, features, fold)` makes the model (with what it derives from the data: the head, a regression's
target scale) and `configure_optimizers()` builds the optimizer and scheduler.
Then the same features (the config's feature_dir), fold split, batch size, epochs, seeds and TPE sampler as
`train.py -m 'lr=tag(log,interval(LOW,HIGH))'`, and nothing else: no Lightning loop (the LightningModule's own
`training_step` and `validation_step` are called in a plain loop, their `self.log` calls caught and averaged over
the epoch weighted by batch size, as Lightning does), no MLflow, no checkpoints, no early stopping. It even
draws the shuffling seeds from torch's global generator the way DataLoader does, so both sides train on the
same batches and report the same values. It writes one JSON timeline (the same events as
src.tools.bench.timeline_callback) for src/tools/bench.py.

    python -m src.tools.bench_floor --config-dir config/model/<experiment> --trials N --epochs E --out FILE
        [--feature-dir DIR] [--lr-low 1e-4 --lr-high 1e-2]

Composing one config per trial costs ~0.1 s inside the floor's trial window (the workspace's sweeper composes
one per trial too); the time is in the JSON as each trial's `compose_s`.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import optuna
import torch
from omegaconf import DictConfig

from src.utils.core.paths import resolve
from src.utils.data.features import (
    load_features,  # src.utils.core.paths with it: the ${root:} resolver the config needs
)


class CaughtLogs:
    """Stands in for LightningModule.log: the epoch mean of each logged value, weighted by batch size."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.batch = 0

    def __call__(self, name: str, value: Any, *args: Any, **kwargs: Any) -> None:
        n = int(kwargs.get("batch_size") or self.batch or 1)
        self.sums[name] = self.sums.get(name, 0.0) + float(value) * n
        self.counts[name] = self.counts.get(name, 0) + n

    def mean(self, name: str) -> float:
        if name not in self.sums:
            raise SystemExit(f"error: the model's validation_step logs no {name!r} (the config's monitor)")
        return self.sums[name] / self.counts[name]


def _draw_seed() -> int:
    return int(torch.empty((), dtype=torch.int64).random_().item())


def compose(config_dir: Path, overrides: list[str], hydra_config: bool = False) -> DictConfig:
    """The experiment's config as train.py gets it, with `overrides` (`hydra.*` only with hydra_config)."""
    import src.utils.tune.plugin  # noqa: F401  (registers hydra/sweeper=workspace_optuna)

    with hydra.initialize_config_dir(config_dir=str(config_dir)):
        return hydra.compose("config", overrides=overrides, return_hydra_config=hydra_config)


def optimizers(model: Any) -> tuple[torch.optim.Optimizer, Any, str, int]:
    """(optimizer, scheduler or None, its interval, its frequency) from the model's `configure_optimizers()`."""
    conf = model.configure_optimizers()
    if isinstance(conf, torch.optim.Optimizer):
        return conf, None, "epoch", 1
    if isinstance(conf, dict) and isinstance(conf.get("optimizer"), torch.optim.Optimizer):
        sched = conf.get("lr_scheduler")
        if sched is None:
            return conf["optimizer"], None, "epoch", 1
        if not isinstance(sched, dict):
            sched = {"scheduler": sched}
        return conf["optimizer"], sched["scheduler"], sched.get("interval", "epoch"), int(sched.get("frequency", 1))
    raise SystemExit(f"error: {type(model).__name__}.configure_optimizers() returned {type(conf).__name__}; the "
                     f"floor takes an optimizer or {{'optimizer': opt, 'lr_scheduler': ...}}")


def builder(config_dir: Path) -> Any:
    """The experiment's own `build(cfg, features, fold)` (src/model/<name>/train.py): the model it returns is the
    one the workspace trains, with whatever it derives from the data (a regression's target scale, the head)."""
    import importlib

    return importlib.import_module(f"src.model.{config_dir.name}.train").build


def run_trial(cfg: DictConfig, epochs: int, data: dict[str, Any], events: list[dict]) -> float:
    """Train one trial for exactly `epochs` epochs; the best validation `monitor` (the sweep's objective).
    `data`: the fold's tensors, and `build`, `features` and `fold` to make the model as train.py does."""
    seed = int(cfg.seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    model, _ = data["build"](cfg, data["features"], data["fold"])  # with its optimizer factories
    model.log = caught = CaughtLogs()  # the model's self.log(...) calls, without a Trainer
    opt, sched, interval, frequency = optimizers(model)
    x, y, xv, yv = data["x"], data["y"], data["xv"], data["yv"]
    bs = int(cfg.batch_size)
    maximize = cfg.monitor_mode == "max"
    best = float("-inf") if maximize else float("inf")
    steps = 0
    for epoch in range(epochs):
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
            caught.batch = len(idx)
            loss = model.training_step((x[idx], y[idx]), i)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            steps += 1
            if sched is not None and interval == "step" and steps % frequency == 0:
                sched.step()
        events.append({"event": "train_end", "t": time.time(), "samples": len(x)})
        model.eval()
        _draw_seed()  # the validation DataLoader's base seed
        caught.sums.clear()
        caught.counts.clear()
        with torch.inference_mode():
            for i, start in enumerate(range(0, len(xv), bs)):
                caught.batch = len(xv[start:start + bs])
                model.validation_step((xv[start:start + bs], yv[start:start + bs]), i)
        value = caught.mean(str(cfg.monitor))
        best = max(best, value) if maximize else min(best, value)
        if sched is not None and interval == "epoch" and (epoch + 1) % frequency == 0:
            sched.step()
        events.append({"event": "epoch_end", "t": time.time()})
    return best


def fold_all(config_dir: Path, features: Any, fold_epochs: list[int], out: Path, t_main: float) -> int:
    """A fold=all run of the config as it is: each fold's tensors, model, optimizer and `fold_epochs[k]` epochs."""
    cfg = compose(config_dir, [])
    events: list[dict] = []
    best = []
    for k, epochs in enumerate(fold_epochs):
        (x, y), (xv, yv) = features.fold_tensors(k)
        best.append(run_trial(cfg, epochs, {"x": x, "y": y, "xv": xv, "yv": yv, "build": builder(config_dir),
                                            "features": features, "fold": k}, events))
    out.write_text(json.dumps({"main_start": t_main, "fold_best": best, "events": events,
                               "torch_threads": torch.get_num_threads()}))
    return 0


def main(argv: list[str] | None = None) -> int:
    t_main = time.time()
    parser = argparse.ArgumentParser(prog="python -m src.tools.bench_floor", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-dir", type=Path, required=True,
                        help="the experiment's config folder, config/model/<experiment> (holds config.yaml)")
    parser.add_argument("--feature-dir", type=Path, default=None,
                        help="features to train on (default: the config's feature_dir)")
    parser.add_argument("--trials", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--fold-epochs", type=lambda s: [int(e) for e in s.split(",")], metavar="E0,E1,...",
                        help="instead of a sweep: a fold=all run, fold k trained for E_k epochs (the epochs the "
                             "workspace's run trained before its early stopping), at the config's own lr")
    parser.add_argument("--lr-low", type=float, default=1e-4)
    parser.add_argument("--lr-high", type=float, default=1e-2)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    config_dir = args.config_dir.resolve()

    # hyper-parameters as train.py composes them (sampler seed in the hydra node, which only this call keeps)
    base = compose(config_dir, [f"max_epochs={args.epochs}"], hydra_config=True)
    if str(base.fold) == "all":
        raise SystemExit("error: the floor runs one validation fold; the config has fold=all")
    features = load_features(args.feature_dir or resolve(base.feature_dir))
    (x, y), (xv, yv) = features.fold_tensors(int(base.fold))  # the same tensors the data module gets
    data = {"x": x, "y": y, "xv": xv, "yv": yv, "build": builder(config_dir), "features": features,
            "fold": int(base.fold)}
    torch.use_deterministic_algorithms(True)  # what Trainer(deterministic=True) does
    if args.fold_epochs:
        return fold_all(config_dir, features, args.fold_epochs, args.out, t_main)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler_seed = base.hydra.sweeper.sampler.seed
    study = optuna.create_study(direction="maximize" if base.monitor_mode == "max" else "minimize")
    events: list[dict] = []
    compose_s: list[float] = []
    for number in range(args.trials):
        study.sampler = optuna.samplers.TPESampler(seed=sampler_seed + number)  # per trial, as the sweeper seeds
        trial = study.ask()
        lr = trial.suggest_float("lr", args.lr_low, args.lr_high, log=True)
        t0 = time.perf_counter()
        cfg = compose(config_dir, [f"lr={lr!r}", f"max_epochs={args.epochs}"])
        compose_s.append(time.perf_counter() - t0)
        events.append({"event": "fit_start", "t": time.time()})
        value = run_trial(cfg, args.epochs, data, events)
        events.append({"event": "fit_end", "t": time.time()})
        study.tell(trial, value)
    # trial windows as Optuna records them (ask -> tell), exactly as they are read for the workspace's sweep
    trials = [{"number": t.number, "params": t.params, "value": t.value, "start": t.datetime_start.timestamp(),
               "end": t.datetime_complete.timestamp(), "compose_s": c}
              for t, c in zip(study.trials, compose_s, strict=True)]
    out = {"main_start": t_main, "events": events, "trials": trials, "config_dir": str(config_dir),
           "feature_dir": str(features.dir), "n_train": len(x), "n_valid": len(xv),
           "torch_threads": torch.get_num_threads()}
    args.out.write_text(json.dumps(out))
    return 0


if __name__ == "__main__":
    from src.utils.cli.setup import setup

    setup()  # the environment, resolvers and plugins, before anything else runs
    raise SystemExit(main())

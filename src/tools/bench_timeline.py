"""The timeline both sides of scripts/bench.sh record, and what it says per epoch and per trial.

The workspace side (A) records it with a Lightning callback that `src/tools/bench.py` adds to the sweep through
Hydra (`+callbacks.bench_timeline._target_=TIMELINE_TARGET`); the floor (src/tools/bench_floor.py) writes the same
events from its own loop. Both are JSON events (fit, epoch, the training part of the epoch, the first step) with a
wall-clock time, which `epoch_stats` and `trial_stats` turn into epoch times, throughput and each trial's time
outside its epochs.
"""

from __future__ import annotations

import json
import statistics
import time
from typing import Any

# Hydra resolves the callback through src.tools.bench, which re-exports timeline_callback: the name the sweeps'
# overrides (and so their logged configs) have always carried.
TIMELINE_TARGET = "src.tools.bench.timeline_callback"


def timeline_callback(path: str) -> Any:
    """Hydra target: a Lightning callback appending the events bench_floor.py records to `path` (JSON lines)."""
    import pytorch_lightning as pl

    class Timeline(pl.Callback):
        def __init__(self) -> None:
            self.samples, self.first, self.train_end_written = 0, True, False

        def _write(self, event: str, **extra: Any) -> None:
            with open(path, "a", encoding="utf-8") as f:
                f.write(json.dumps({"event": event, "t": time.time(), **extra}) + "\n")

        def on_fit_start(self, trainer, pl_module) -> None:
            self._write("fit_start")

        def on_train_epoch_start(self, trainer, pl_module) -> None:
            self.samples, self.train_end_written = 0, False
            self._write("epoch_start")

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            if self.first:
                self.first = False
                self._write("first_step")

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            self.samples += len(batch[0])

        def on_validation_epoch_start(self, trainer, pl_module) -> None:
            if not trainer.sanity_checking and not self.train_end_written:
                self.train_end_written = True
                self._write("train_end", samples=self.samples)

        def on_train_epoch_end(self, trainer, pl_module) -> None:
            if not self.train_end_written:
                self._write("train_end", samples=self.samples)
            self._write("epoch_end")

        def on_fit_end(self, trainer, pl_module) -> None:
            self._write("fit_end")

    return Timeline()


def epoch_stats(events: list[dict]) -> dict[str, float]:
    """Whole epochs (training + validation) and their training parts, from a timeline."""
    epochs_s = train_s = samples = 0.0
    start = None
    for e in events:
        if e["event"] == "epoch_start":
            start = e["t"]
        elif e["event"] == "train_end" and start is not None:
            train_s += e["t"] - start
            samples += e["samples"]
        elif e["event"] == "epoch_end" and start is not None:
            epochs_s += e["t"] - start
            start = None
    first = [e["t"] for e in events if e["event"] == "first_step"]
    return {"epochs_s": epochs_s, "train_s": train_s, "samples": samples, "first_step": min(first, default=None)}


def trial_stats(trials: list[dict], events: list[dict]) -> dict[str, Any]:
    """Per-trial windows (Optuna ask -> tell) with the epochs that fall inside each."""
    rows = []
    for t in trials:
        inside = [e for e in events if t["start"] <= e["t"] <= t["end"]]
        stats, wall = epoch_stats(inside), t["end"] - t["start"]
        rows.append({**t, **stats, "wall_s": wall, "fixed_s": wall - stats["epochs_s"]})
    return {"trials": rows, "trial_s": statistics.mean(r["wall_s"] for r in rows),
            "epochs_s": statistics.mean(r["epochs_s"] for r in rows),
            "samples_per_s": sum(r["samples"] for r in rows) / max(1e-9, sum(r["train_s"] for r in rows))}

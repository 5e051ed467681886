"""The task's plots of a finished run (the confusion matrix of a classification, calibration, prediction error),
drawn from what the run logged (`predictions/oof.npz`, the competition file it ran with, its OOF metric) and logged
into it. A sweep's trial logs its arrays but not its plots, which cost more than half a second a trial at MNIST
size and are looked at for the best trial only: the sweep draws them for its best trial when it ends
(src/utils/tune/parent.py); `draw_task_plots(client, run_id)` draws them for any other run when asked."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

# the tag a trial's run carries until its plots are drawn, and its value
PLOTS_TAG, DEFERRED = "task_plots", "deferred: drawn for the best trial when the sweep ends"


def oof_title(metric: str, value: float) -> str:
    """The plots' title, the same whether a run draws them itself or has them drawn later."""
    return f"validation (OOF) {metric} {value:.4f}"


def draw_task_plots(client: Any, run_id: str) -> list[str]:
    """Draw a run's task plots from its logged OOF arrays and competition file, log them into it; their names."""
    from src.utils.competition.spec import from_yaml

    run = client.get_run(run_id)
    name = run.data.tags["competition"]
    with tempfile.TemporaryDirectory() as tmp:
        competition = from_yaml(name, Path(client.download_artifacts(run_id, "competition.yaml", tmp)).read_text())
        arrays = np.load(client.download_artifacts(run_id, "predictions/oof.npz", tmp))
        metric = competition.metric.name
        title = oof_title(metric, run.data.metrics[f"oof_{metric}"])
        out = Path(tmp) / "plots"
        out.mkdir()
        drawn = competition.task.plots(arrays["y"], arrays["scores"], out, title)
        for path in drawn:
            client.log_artifact(run_id, str(path))
    client.set_tag(run_id, PLOTS_TAG, "drawn")
    return [p.name for p in drawn]

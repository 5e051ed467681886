"""The launch line of a sweep job, as the trial it runs: `#4 : lr=0.003728 dropout=0.32`."""

from __future__ import annotations

import logging
import re

# Hydra's launchers log each job as `#<job number> : <its overrides>`, the overrides that hand a job its trial
# (hydra.job.env_set...) and the sweep's fixed ones included. The jobs are numbered by their trials here, and the
# line keeps the trial's sampled parameters only: `#4 : lr=0.003728 dropout=0.32`.
LAUNCHER_LOGGERS = ("hydra._internal.core_plugins.basic_launcher", "hydra_plugins.hydra_joblib_launcher._core",
                    "hydra_plugins.hydra_submitit_launcher.submitit_launcher", "src.utils.tune.launchers")


_LAUNCH_LINE = re.compile(r"^(\s*)#(\d+) : ")


class LaunchLine(logging.Filter):
    """Rewrites a launcher's `#<n> : <overrides>` line to `#<n> : <sampled parameters>` for the trials it knows."""

    def __init__(self) -> None:
        super().__init__()
        self.titles: dict[int, str] = {}  # trial number -> its sampled parameters, as shown

    def filter(self, record: logging.LogRecord) -> bool:
        match = _LAUNCH_LINE.match(str(record.msg)) if isinstance(record.msg, str) and not record.args else None
        if match and int(match[2]) in self.titles:
            record.msg = f"{match[1]}#{match[2]} : {self.titles[int(match[2])]}"
        return True


LAUNCH_LINE = LaunchLine()


def show_launch_lines() -> None:
    for name in LAUNCHER_LOGGERS:
        if LAUNCH_LINE not in logging.getLogger(name).filters:
            logging.getLogger(name).addFilter(LAUNCH_LINE)

"""`hydra/launcher=submitit_slurm` and `submitit_local`: Hydra's submitit launcher, with jobs that may die.

The official launcher waits for its jobs one after the other and raises on the first one that left no result (a
job cancelled with `scancel`, killed at its time limit or out of memory), losing the others; Ctrl-C on the sweep
leaves the jobs running. This one, registered under the same names (so the documented command lines are
unchanged):

* returns one result per job: a job that ended without one is a `LostJob` naming its SLURM state, which the sweeper
  fails and asks again (src/utils/tune/sweeper.py), so the sweep still reaches `n_trials`;
* cancels its jobs when the sweep process is interrupted, and waits until they have left the queue;
* in the job, turns SIGTERM (scancel, the time limit) into an interrupt, so the run ends KILLED with its log and
  checkpoints instead of dying on SIGKILL; submitit's own handler only logs SIGTERM;
* hands each job's SLURM id, state and stdout/stderr files to the sweeper, which attaches them to the trial's run.

The one-node defaults (1 CPU and 4 GB per trial, 60 min) fit a laptop-sized cluster such as
`bash scripts/services.sh slurm up`; on a lab cluster set `hydra.launcher.partition`, `timeout_min`, `mem_gb`,
`cpus_per_task`, `gres` (or `gpus_per_node`) and `array_parallelism` on the command line.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, JobStatus
from hydra_plugins.hydra_submitit_launcher import config as submitit_config  # registers the official nodes first
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import LocalLauncher, SlurmLauncher

log = logging.getLogger(__name__)
# the states of a job that ended without a result, and what they mean for its run
KILLED_STATES = ("CANCELLED", "TIMEOUT", "PREEMPTED", "DEADLINE")
STATE_REASONS = {
    "CANCELLED": "cancelled (scancel)",
    "TIMEOUT": "killed at its time limit (hydra.launcher.timeout_min)",
    "OUT_OF_MEMORY": "killed for using more memory than it asked for (hydra.launcher.mem_gb)",
    "NODE_FAIL": "lost with its node",
    "PREEMPTED": "preempted",
    "DEADLINE": "killed at its deadline",
    "BOOT_FAIL": "its node failed to boot",
}
POLL_S = 1.0  # how often the sweep looks at its jobs' result files
FORCE_CHECK_S = 10.0  # how often it asks the scheduler (sacct) about the jobs that have none yet


class LostJob(RuntimeError):
    """A job that ended without a result: cancelled, killed at its time limit, out of memory, lost with its node."""

    def __init__(self, job_id: str, state: str) -> None:
        self.job_id, self.state = job_id, state
        super().__init__(f"job {job_id} ended {state}: {reason(state)}")

    @property
    def killed(self) -> bool:
        return bool(self.state.split()) and self.state.split()[0].upper() in KILLED_STATES


def reason(state: str) -> str:
    """What a SLURM state (`CANCELLED by 0`, `TIMEOUT`, ...) means, in words."""
    word = state.split()[0].upper() if state else "UNKNOWN"
    return STATE_REASONS.get(word, "ended without a result")


def job_info(job: Any) -> dict[str, str]:
    """A job's id, state and output files, for its run."""
    state = ""
    # the result file shows up a moment before the scheduler has the job COMPLETED: ask until it has (10 s at most)
    for _ in range(20):
        with contextlib.suppress(Exception):
            state = str(job.get_info(mode="force").get("State") or "")
        if state.split(" ")[0] not in ("RUNNING", "COMPLETING"):
            break
        time.sleep(0.5)
    if not state:
        try:
            state = str(job.state)
        except Exception:  # the scheduler did not answer: the state is not known, the files are
            state = "UNKNOWN"
    return {"job_id": str(job.job_id), "state": state, "stdout": str(job.paths.stdout),
            "stderr": str(job.paths.stderr)}


def record_job(run_id: str | None, job: dict[str, str], lost: LostJob | None) -> None:
    """On the trial's run: the job's id and state (tags) and its stdout/stderr (artifacts under logs/job/); a run
    whose job ended without a result is ended KILLED (cancelled, time limit) or FAILED, with the reason in
    `ended_by`, unless the job ended it itself."""
    if not run_id:
        return
    from mlflow import MlflowClient

    client = MlflowClient()
    tags = {"job_id": job["job_id"], "job_state": job["state"]}
    if lost is not None:
        tags["ended_by"] = f"scheduler: job {job['job_id']} {lost.state}: {reason(lost.state)}"
    for key, value in tags.items():
        client.set_tag(run_id, key, value)
    for name in ("stdout", "stderr"):
        path = Path(job[name])
        if path.is_file() and path.stat().st_size:
            with contextlib.suppress(Exception):  # the evidence is a bonus; the status is the point
                client.log_artifact(run_id, str(path), "logs/job")
    if lost is not None and client.get_run(run_id).info.status == "RUNNING":  # its process never ended it
        client.set_terminated(run_id, "KILLED" if lost.killed else "FAILED")


def _near_limit(signum: int, frame: Any) -> None:
    log.warning("the job's time limit is near (signal %s); it ends KILLED at the limit unless it finishes first",
                signal.Signals(signum).name)


class JobsMixin:
    """What this workspace changes in the submitit launchers (see the module's docstring)."""

    params: dict[str, Any]
    _EXECUTOR: str

    def __call__(self, *args: Any, **kwargs: Any) -> JobReturn:
        """In the job: submitit has installed its signal handlers; SIGTERM becomes an interrupt instead."""
        if os.environ.get("SLURM_JOB_ID"):
            from src.utils.track.runs import _raise_interrupt  # what SIGTERM does in any run of this workspace

            signal.signal(signal.SIGTERM, _raise_interrupt)
            if not int(self.params.get("max_num_timeout") or 0):  # no requeue: the job simply ends at its limit
                with contextlib.suppress(ValueError, AttributeError):
                    signal.signal(getattr(signal, "SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2")),
                                  _near_limit)
        return super().__call__(*args, **kwargs)  # type: ignore[misc]

    def _executor(self) -> Any:
        """The submitit executor, as the official launcher builds it."""
        import submitit

        params = self.params
        init_keys = {"max_num_timeout", "python"}
        executor = submitit.AutoExecutor(
            cluster=self._EXECUTOR, folder=params["submitit_folder"],
            **{f"{self._EXECUTOR}_{k}": v for k, v in params.items() if k in init_keys})
        base = set(submitit_config.BaseQueueConf.__dataclass_fields__)
        executor.update_parameters(**{k if k in base else f"{self._EXECUTOR}_{k}": v for k, v in params.items()
                                      if k not in init_keys | {"submitit_folder"}})
        return executor

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from hydra.core.singleton import Singleton
        from hydra.core.utils import filter_overrides

        config = self.config  # type: ignore[attr-defined]
        assert config is not None and len(job_overrides) > 0
        executor = self._executor()
        log.info(f"Submitit '{self._EXECUTOR}' sweep output dir : {config.hydra.sweep.dir}")
        sweep_dir = Path(str(config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        if "mode" in config.hydra.sweep:
            os.chmod(sweep_dir, mode=int(str(config.hydra.sweep.mode), 8))
        job_params = []
        for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
            log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
            job_params.append((list(overrides), "hydra.sweep.dir", idx, f"job_id_for_{idx}", Singleton.get_state()))
        try:
            jobs = executor.map_array(self, *zip(*job_params, strict=True))
        except Exception as exc:  # sbatch refused them: a partition, memory, GPU or time limit the cluster lacks
            from src.utils.core.errors import WorkspaceError

            lines = [line for line in str(exc).splitlines() if line.strip()]
            raise WorkspaceError(f"the scheduler refused the trials' jobs: {lines[-1] if lines else exc}; change "
                                 f"hydra.launcher.* (partition, timeout_min, cpus_per_task, mem_gb, gres) to what "
                                 f"the cluster offers (sinfo lists it)") from exc
        try:
            wait(jobs)
        except BaseException:  # Ctrl-C or SIGTERM on the sweep: no job of it may go on running
            cancel(jobs)
            raise
        return [result(job, overrides) for job, overrides in zip(jobs, job_overrides, strict=True)]


def wait(jobs: list) -> None:
    """Until every job has a result or has left the scheduler."""
    last_force = time.monotonic()
    while True:
        force = time.monotonic() - last_force > FORCE_CHECK_S
        if all(job.done(force_check=force) for job in jobs):
            return
        if force:
            last_force = time.monotonic()
        time.sleep(POLL_S)


def cancel(jobs: list) -> None:
    """Cancel the jobs and wait (up to 2 minutes) until they have left the queue: their processes are gone."""
    pending = [job for job in jobs if not job.paths.result_pickle.exists()]
    for job in pending:
        with contextlib.suppress(Exception):
            job.cancel(check=False)
    if not pending:
        return
    log.warning("cancelled %d job(s): %s", len(pending), " ".join(str(j.job_id) for j in pending))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if all(job.done(force_check=True) for job in pending) and not in_queue(pending):
                return
        time.sleep(1)
    log.warning("job(s) still in the queue after 2 minutes: %s (see squeue)", " ".join(map(str, in_queue(pending))))


def in_queue(jobs: list) -> list[str]:
    """The SLURM jobs among `jobs` that squeue still lists (completing ones included); [] for local jobs."""
    import subprocess

    from submitit.slurm.slurm import SlurmJob

    ids = [str(job.job_id) for job in jobs if isinstance(job, SlurmJob)]
    if not ids:
        return []
    out = subprocess.run(["squeue", "-h", "-o", "%i", "-j", ",".join(ids)], capture_output=True, text=True,
                         timeout=60)
    if out.returncode != 0:  # a job the controller has forgotten already is not running
        return []
    return [i for i in out.stdout.split() if i in ids]


def end_interrupted(run_ids: list[str]) -> None:
    """The runs of jobs cancelled with their sweep that did not end themselves (killed before they could)."""
    from mlflow import MlflowClient

    client = MlflowClient()
    for run_id in run_ids:
        with contextlib.suppress(Exception):
            if client.get_run(run_id).info.status == "RUNNING":
                client.set_tag(run_id, "ended_by", "scheduler: job cancelled with its interrupted sweep")
                client.set_terminated(run_id, "KILLED")


def result(job: Any, overrides: Sequence[str]) -> JobReturn:
    """The job's JobReturn (rank 0's), or a failed one holding a LostJob; `job` holds its id, state and files."""
    try:
        ret = job.results()[0]
    except Exception as exc:  # no result file: the scheduler ended it (the state says how), or it crashed
        state = str(job.state)
        ret = JobReturn(overrides=list(overrides), status=JobStatus.FAILED,
                        _return_value=LostJob(str(job.job_id), state if state != "UNKNOWN" else type(exc).__name__))
    ret.job = job_info(job)  # type: ignore[attr-defined]
    return ret


class WorkspaceSlurmLauncher(JobsMixin, SlurmLauncher):
    """`hydra/launcher=submitit_slurm`."""


class WorkspaceLocalLauncher(JobsMixin, LocalLauncher):
    """`hydra/launcher=submitit_local`."""


@dataclass
class WorkspaceSlurmConf(submitit_config.SlurmQueueConf):
    _target_: str = f"{__name__}.WorkspaceSlurmLauncher"
    timeout_min: int = 60  # the time limit of each trial's job (minutes)
    cpus_per_task: int | None = 1
    mem_gb: int | None = 4
    array_parallelism: int = 256  # at most this many jobs of one batch at once (hydra.sweeper.n_jobs per batch)
    # the job's threads follow the CPUs it was given (torch would use every core of the node)
    setup: list[str] | None = field(default_factory=lambda: [
        'if [ -n "$SLURM_CPUS_PER_TASK" ]; then export OMP_NUM_THREADS=$SLURM_CPUS_PER_TASK; fi'])


@dataclass
class WorkspaceLocalConf(submitit_config.LocalQueueConf):
    _target_: str = f"{__name__}.WorkspaceLocalLauncher"


def register() -> None:
    """Register the launchers with Hydra under the official names (called by the entry points' set-up)."""
    for name, node in (("submitit_slurm", WorkspaceSlurmConf), ("submitit_local", WorkspaceLocalConf)):
        ConfigStore.instance().store(group="hydra/launcher", name=name, node=node, replace=True,
                                     provider="kaggle_workspace")
    Plugins.instance().register(WorkspaceSlurmLauncher)
    Plugins.instance().register(WorkspaceLocalLauncher)

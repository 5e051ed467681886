"""Sweeps: the Optuna sweeper plugin (hydra/sweeper=workspace_optuna), the study (storage, lock, budget,
heartbeats), the trial loop, sweep checks, pruners, the job side (trial link, launch lines), the sweep's parent run and
the submitit/SLURM launchers. Imports src.utils.core, config and track; never src.utils.run."""

#!/usr/bin/env bash
# One run of any entry script as one SLURM job; each of its tasks (srun) is one process of the run. Submit it from
# the workspace (the job starts there), with the resources as sbatch options:
#
#   sbatch --ntasks-per-node=2 --cpus-per-task=1 --mem=4G scripts/slurm_job.sh \
#       src/model/model01/train.py trainer.strategy=ddp trainer.devices=2
#
# DDP: --ntasks-per-node must equal trainer.devices (and --nodes trainer.num_nodes); Lightning reads its ranks from
# SLURM (SLURM_PROCID), rank 0 records the run, the other tasks train and record nothing. Its output goes to
# logs/jobs/<job id>.out (a task's lines start with its rank), and the run is tagged with job_id.
#SBATCH --job-name=workspace-run
#SBATCH --output=logs/jobs/%j.out
#SBATCH --ntasks-per-node=1
set -euo pipefail
cd "${SLURM_SUBMIT_DIR:-$(pwd)}"
if [[ ! -x .venv/bin/python ]]; then
  echo "error: submit from the workspace root (no .venv/bin/python in $(pwd)); run: cd <workspace> && sbatch scripts/slurm_job.sh ..." >&2
  exit 2
fi
if [[ $# -lt 1 ]]; then
  echo "error: name the entry script to run, e.g. sbatch scripts/slurm_job.sh src/model/model01/train.py trainer.strategy=ddp trainer.devices=2" >&2
  exit 2
fi
exec srun --label .venv/bin/python "$@"

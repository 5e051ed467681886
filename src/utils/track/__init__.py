"""Tracking: MLflow set-up and the store (SQLite by default, a server or PostgreSQL when set), the tracked run
with its interrupts, liveness (no run left RUNNING by a dead process) and what runs log besides metrics (their code
snapshot, their data input). Imports src.utils.core and src.utils.config."""

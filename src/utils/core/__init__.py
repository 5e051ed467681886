"""The bottom layer: project paths, the environment and .env, errors, small file helpers (atomic writes, JSON),
hashing, the cyclic collector, plot helpers and log quieting. Imports nothing else of src."""

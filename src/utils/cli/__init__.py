"""Entry points' plumbing: the one set-up every process runs first, and the command-line preflight (the only code
that touches Hydra's internals). The top layer: may import every other package."""

#!/usr/bin/env bash
# JupyterLab on 127.0.0.1, rooted at the project root, kernel = the project's .venv, always behind a token.
#   bash scripts/jupyter.sh                      http://127.0.0.1:8888/lab?token=<random>
#   bash scripts/jupyter.sh 8890                 another port
#   JUPYTER_TOKEN=... bash scripts/jupyter.sh    your own token (an empty one is refused)
# Ctrl-C stops it. From a laptop: ssh -L 8888:127.0.0.1:8888 host, then open the printed URL.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
require_venv

usage="usage: bash scripts/jupyter.sh [PORT]"
HOST=127.0.0.1
PORT=8888
port_argument "$usage" "$PORT" "$@"

if [[ -n "${JUPYTER_TOKEN+set}" && -z "${JUPYTER_TOKEN//[[:space:]]/}" ]]; then
  echo "error: JUPYTER_TOKEN is set but empty, which would leave JupyterLab open to anyone on this machine;" \
    "unset it for a random token (unset JUPYTER_TOKEN) or set a real one" >&2
  exit 2
fi

require_free_port "$HOST" "$PORT" "Jupyter" jupyter.sh

# A named kernelspec inside the venv (not ~/.local): a user-level "python3" kernelspec, which Jupyter would
# prefer to the venv's, cannot shadow it. argv[0] "python" is replaced by the server's own interpreter
# (this .venv), so the file holds no absolute path and stays valid when the project folder moves.
KERNEL=kaggle-workspace
kdir="$ROOT/.venv/share/jupyter/kernels/$KERNEL"
kspec='{
 "argv": ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
 "display_name": "Python (kaggle-workspace .venv)",
 "language": "python",
 "metadata": {"debugger": true}
}'
if [[ ! -f "$kdir/kernel.json" || "$(cat "$kdir/kernel.json")" != "$kspec" ]]; then
  mkdir -p "$kdir"
  printf '%s' "$kspec" > "$kdir/kernel.json"
  cp -n "$ROOT/.venv/share/jupyter/kernels/python3/"logo-* "$kdir/" 2>/dev/null || true
fi

export JUPYTER_TOKEN="${JUPYTER_TOKEN:-$(token)}"
echo "JupyterLab: http://$HOST:$PORT/lab?token=$JUPYTER_TOKEN  (root: $ROOT, kernel: $KERNEL; Ctrl-C to stop)"

# Containers (Docker, Kaggle/Colab-style images) often run everything as root; Jupyter refuses that unless
# told. With 127.0.0.1 and a token the usual reason for refusing does not apply.
extra=()
[[ $EUID -eq 0 ]] && extra+=(--allow-root)

cd "$ROOT"
# The token goes in as a command-line trait, which beats any `c.IdentityProvider.token = ""` in the user's
# Jupyter config, yet it is set inside the process, so it never shows in `ps` the way `--...token=` would.
# --port-retries=0: a busy port is an error, not a silent move to another port the printed URL does not name.
exec "$PY" -c '
import os, sys
from jupyterlab.labapp import main
token = os.environ.pop("JUPYTER_TOKEN")  # kernels and terminals need not inherit it
sys.argv = ["jupyter-lab", "--IdentityProvider.token=" + token, *sys.argv[1:]]
sys.exit(main())
' --no-browser --ip="$HOST" --port="$PORT" --port-retries=0 --ServerApp.root_dir="$ROOT" \
  --MultiKernelManager.default_kernel_name="$KERNEL" ${extra[@]+"${extra[@]}"}

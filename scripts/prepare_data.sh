#!/usr/bin/env bash
# Fill _data/data/raw/ (Kaggle "Digit Recognizer" layout). Never downloads anything.
#   bash scripts/prepare_data.sh                      offline sample (default)
#   bash scripts/prepare_data.sh --mnist DIR          MNIST IDX files (.gz or plain) in DIR
#   bash scripts/prepare_data.sh --kaggle DIR_OR_ZIP  the competition files you downloaded
#   add --force to replace raw data that came from another source
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
require_venv
cd "$ROOT"
exec "$PY" -m src.dataset.prepare_data "$@"

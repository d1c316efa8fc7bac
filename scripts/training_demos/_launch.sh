#!/usr/bin/env bash
# One seed demo (Carver's scripts/training_demos/<demo>.sh) on gan3d. Every <demo>.sh here is a link to
# this file; its name selects the demo in tools/seed_demos.py, which prints the usage, answers --help,
# and runs: torchrun --nproc_per_node NUM_GPUS tools/run.py train --method ... --dataset DATA [OPTIONS]
#
# Usage: ./scripts/training_demos/<demo>.sh NUM_GPUS PATH_TO_DATA [OPTIONS]
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DEMO="$(basename "$0" .sh)"
# Carver's dist_train.sh prefers python3 (`python` may be Python 2); $PYTHON chooses another.
if [[ -z "${PYTHON:-}" ]]; then
    if command -v python3 >/dev/null 2>&1; then PYTHON=python3; else PYTHON=python; fi
fi
exec "$PYTHON" "$HERE/../../tools/seed_demos.py" "$DEMO" "$@"

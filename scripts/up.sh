#!/usr/bin/env bash
# The run command: create .venv, install everything that is missing, start the platform.
# Arguments go to `nemo up` (e.g. --only gateway,llm).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh all
exec .venv/bin/nemo up "$@"

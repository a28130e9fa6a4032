#!/usr/bin/env bash
# The test command: install the test needs, make sure PostgreSQL and Redis run, then lint,
# check import contracts and run the whole test suite. Arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh all,dev
bash scripts/services.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
echo "== ruff" >&2
.venv/bin/ruff check src tests benchmarks
echo "== import contracts" >&2
.venv/bin/lint-imports
echo "== pytest" >&2
exec .venv/bin/python -m pytest -q "$@"

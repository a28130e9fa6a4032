#!/usr/bin/env bash
# The test command: install the test needs, make sure PostgreSQL and Redis run, then lint,
# check import contracts and run the whole test suite. Arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh all,dev
bash scripts/services.sh
# The tests speak their own audio with espeak-ng and sox (Debian packages).
if ! command -v espeak-ng >/dev/null 2>&1 || ! command -v sox >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing espeak-ng and sox" >&2
    (apt-get update -qq && apt-get install -y -qq espeak-ng sox) >/dev/null 2>&1 \
      || echo "could not install espeak-ng/sox: speech tests will skip" >&2
  else
    echo "espeak-ng/sox missing: speech tests will skip (apt-get install espeak-ng sox)" >&2
  fi
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
echo "== ruff" >&2
.venv/bin/ruff check src tests benchmarks
echo "== import contracts" >&2
.venv/bin/lint-imports
echo "== pytest" >&2
exec .venv/bin/python -m pytest -q "$@"

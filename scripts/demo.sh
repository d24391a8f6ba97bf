#!/usr/bin/env bash
# `make demo` (after scripts/install.sh): the whole system on this machine with a real local model.
# Starts the dev services it needs, runs gateway + dataflow + sender, drives ~50 simulated users for
# about a minute, prints latency, sample conversations and a DuckDB query over the Parquet events,
# then stops what it started. Extra arguments go to `tgstream demo` (see `tgstream demo --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
# `tgstream demo` stops its processes and the services it started on exit, Ctrl-C or SIGTERM;
# the trap only forwards a TERM sent to this script to it.
.venv/bin/tgstream demo "$@" &
demo_pid=$!
trap 'kill -TERM "$demo_pid" 2>/dev/null || true; wait "$demo_pid"' INT TERM
wait "$demo_pid"

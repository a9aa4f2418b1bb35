#!/usr/bin/env bash
# The main job: bring the sample stack up on the default backend, show it serving, take it
# down. Run from the repository root as `make demo`.
set -euo pipefail
cd "$(dirname "$0")"
PYCOMPOSE=${PYCOMPOSE:-../../.venv/bin/pycompose}
export HELLO_PORT=${HELLO_PORT:-8080}
cp -f "$(command -v busybox || echo /bin/busybox)" busybox
trap '"$PYCOMPOSE" down -v -t 1 >/dev/null 2>&1 || true; rm -f busybox' EXIT
"$PYCOMPOSE" version
"$PYCOMPOSE" config --services
"$PYCOMPOSE" up -d --wait --wait-timeout 120
"$PYCOMPOSE" ps
echo "--- six requests to 127.0.0.1:$HELLO_PORT/host.txt (one port, two replicas):"
for _ in 1 2 3 4 5 6; do curl -fsS "http://127.0.0.1:$HELLO_PORT/host.txt"; done
"$PYCOMPOSE" port web 80
"$PYCOMPOSE" down -v -t 1
echo "demo: done"

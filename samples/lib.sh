# Shared by the samples' check.sh scripts. Expects PYCOMPOSE and BACKEND in the environment.
# shellcheck shell=bash
set -euo pipefail
PYCOMPOSE=${PYCOMPOSE:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.venv/bin/pycompose}
BACKEND=${BACKEND:-docker}
pc() { "$PYCOMPOSE" --backend "$BACKEND" --progress plain "$@"; }
step() { printf '\n=== %s [%s]: %s\n' "${SAMPLE:-sample}" "$BACKEND" "$*"; }
fail() { echo "FAIL: $*" >&2; pc ps -a >&2 || true; pc logs --tail 30 >&2 || true; exit 1; }
# a free TCP port on 127.0.0.1
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# retry a command for up to N seconds
retry() { local n=$1; shift; local end=$((SECONDS + n)); until "$@"; do
  [ "$SECONDS" -lt "$end" ] || return 1; sleep 1; done; }
# the host pid of a service's first container (from `top`): to kill it like a crash would
main_pid() { pc top "$1" | awk '$2 == "PID" {for (i=1;i<=NF;i++) if ($i == "PID") col=i; next}
  col && $col ~ /^[0-9]+$/ {print $col; exit}'; }

#!/usr/bin/env bash
# PING; a key written; the server killed as a crash would (SIGKILL from the host); `restart:
# always` brings it back and the key is still there (appendonly on the data volume).
SAMPLE=redis
source "$(dirname "$0")/../lib.sh"
cd "$(dirname "$0")"
export REDIS_PORT=${REDIS_PORT:-$(free_port)}
trap 'pc down -v -t 2 >/dev/null 2>&1 || true' EXIT
step "up --wait"
pc up -d --wait --wait-timeout 300
step "PING on the published port 127.0.0.1:$REDIS_PORT"
reply=$(python3 - "$REDIS_PORT" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"PING\r\n"); print(s.recv(64).decode().strip())
PY
)
[ "$reply" = "+PONG" ] || fail "PING answered '$reply'"
step "a key written, the server killed"
[ "$(pc exec redis redis-cli set sample:key kept-across-crash)" = "OK" ] || fail "SET failed"
pid=$(main_pid redis); [ -n "$pid" ] || fail "no pid for redis"
kill -9 "$pid"
step "restart: always brings it back, and the key is still there"
retry 60 bash -c '[ "$("$0" --backend "$1" exec redis redis-cli ping 2>/dev/null)" = PONG ]' "$PYCOMPOSE" "$BACKEND" \
  || fail "redis did not come back after the kill"
value=$(pc exec redis redis-cli get sample:key)
[ "$value" = "kept-across-crash" ] || fail "the key was lost: '$value'"
echo "redis: ok"

#!/usr/bin/env bash
# Votes posted to `vote` appear in `result`; a new version of `vote` rolls out
# (start-first, one at a time) while a request loop on the published port sees no failure.
SAMPLE=voting
source "$(dirname "$0")/../lib.sh"
cd "$(dirname "$0")"
export VOTE_PORT=${VOTE_PORT:-$(free_port)} RESULT_PORT=${RESULT_PORT:-$(free_port)}
trap 'pc down -v -t 2 >/dev/null 2>&1 || true' EXIT
step "up --wait"
pc up -d --wait --wait-timeout 300
step "three votes through 127.0.0.1:$VOTE_PORT"
for ballot in "a voter1" "b voter2" "a voter3"; do
  set -- $ballot
  curl -fsS -d "vote=$1&voter=$2" "http://127.0.0.1:$VOTE_PORT/vote" >/dev/null || fail "vote $2"
done
step "the votes appear in result (127.0.0.1:$RESULT_PORT)"
retry 60 bash -c '[ "$(curl -fsS "http://127.0.0.1:$0/")" = "{\"a\": 2, \"b\": 1}" ]' "$RESULT_PORT" \
  || fail "result shows $(curl -sS "http://127.0.0.1:$RESULT_PORT/")"
step "rolling update of vote to version 2 under a request loop"
log=$(mktemp)
python3 - "$VOTE_PORT" "$log" <<'PY' &
import sys, time, urllib.request
port, out = sys.argv[1], sys.argv[2]
ok = failed = 0
deadline = time.time() + 600
while time.time() < deadline:
    try:
        with open(out + ".stop") as _:
            break
    except OSError:
        pass
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read()
        ok += 1
    except Exception as exc:
        failed += 1
        print("failed:", exc, file=sys.stderr)
    time.sleep(0.02)
open(out, "w").write(f"{ok} {failed}\n")
PY
loop=$!
sleep 1
VOTE_VERSION=2 pc up -d --wait --wait-timeout 300 vote
sleep 1
touch "$log.stop"; wait "$loop"
read -r ok failed < "$log"; rm -f "$log" "$log.stop"
echo "requests during the update: $ok ok, $failed failed"
[ "$failed" -eq 0 ] || fail "$failed requests failed during the rolling update"
[ "$ok" -gt 20 ] || fail "too few requests during the update ($ok)"
for _ in 1 2 3 4; do
  curl -fsS "http://127.0.0.1:$VOTE_PORT/" | grep -q '"version": "2"' || fail "an old replica still answers"
done
echo "voting: ok"

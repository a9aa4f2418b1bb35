#!/usr/bin/env bash
# The master reports two ALIVE workers; `run --rm submit spark-submit` computes pi on them and
# prints the known answer; a rolling update of the workers (stop-first, one at a time) runs
# while a job is in flight, the job still finishes with the right answer, and jobs run after.
SAMPLE=spark
source "$(dirname "$0")/../lib.sh"
cd "$(dirname "$0")"
export SPARK_UI_PORT=${SPARK_UI_PORT:-$(free_port)}
PI="Pi is roughly 3.1415926536"
job_out=$(mktemp)
trap 'pc down -v -t 2 >/dev/null 2>&1 || true; rm -f "$job_out"' EXIT

# master_says PYTHON-EXPRESSION: true when the expression holds for the master's JSON (`m`)
master_says() {
  curl -fsS "http://127.0.0.1:$SPARK_UI_PORT/json/" 2>/dev/null | python3 -c '
import json, sys
m = json.load(sys.stdin)
alive = [w for w in m["workers"] if w["state"] == "ALIVE"]
sys.exit(0 if eval(sys.argv[1]) else 1)' "$1"
}
workers() {
  curl -fsS "http://127.0.0.1:$SPARK_UI_PORT/json/" | python3 -c '
import json, sys
for w in json.load(sys.stdin)["workers"]:
    print("  %(id)s  %(state)s  cores=%(cores)s  memory=%(memory)sM" % w)'
}
# submit [ARGS...]: the SparkPi job as a one-off container; its stdout
submit() { pc run --rm submit spark-submit --master spark://master:7077 /app/pi.py "$@"; }

step "build (from the layer cache when the Dockerfile is unchanged)"
start=$SECONDS
pc build
echo "build took $((SECONDS - start))s"

step "up --wait"
start=$SECONDS
pc up -d --wait --wait-timeout 300
echo "up took $((SECONDS - start))s"

step "the master (127.0.0.1:$SPARK_UI_PORT/json/) reports two ALIVE workers"
retry 60 master_says 'len(alive) == 2 and m["aliveworkers"] == 2' || fail "the master does not report 2 alive workers"
workers

step "run --rm submit spark-submit: pi on the workers"
out=$(submit) || fail "spark-submit exited with $?"
echo "$out"
grep -qxF "$PI" <<<"$out" || fail "the job did not print '$PI'"
grep -q "on executors at: " <<<"$out" || fail "the job did not report its executors"

step "rolling update of the workers (SPARK_WORKER_MEMORY 768m -> 1g) while a job runs"
submit 48 1 >"$job_out" 2>&1 &
job=$!
retry 120 master_says 'any(a["state"] == "RUNNING" for a in m["activeapps"])' \
  || fail "the job never started running: $(cat "$job_out")"
start=$SECONDS
SPARK_WORKER_MEMORY=1g pc up -d --wait --wait-timeout 300 worker
echo "the update took $((SECONDS - start))s"
if master_says 'm["activeapps"]'; then echo "the job outlived the update"; fi
wait "$job" || fail "the job submitted before the update failed: $(cat "$job_out")"
grep -v -e ' WARN ' -e ' INFO ' "$job_out" || true
grep -qxF "$PI" "$job_out" || fail "the job run across the update did not print '$PI'"

step "after the update: two ALIVE workers, both with the new memory"
retry 60 master_says 'len(alive) == 2 and all(w["memory"] == 1024 for w in alive)' \
  || fail "the master does not report 2 alive updated workers: $(workers)"
workers

step "a job after the update"
out=$(submit) || fail "spark-submit after the update exited with $?"
echo "$out"
grep -qxF "$PI" <<<"$out" || fail "the job after the update did not print '$PI'"

step "down -v"
pc down -v -t 2
[ -z "$(pc ps -a -q)" ] || fail "containers are left after down"
echo "spark: ok"

#!/usr/bin/env bash
# Every node resolves the others by hostname; the metastore answers SQL at its static
# address; the published web ports answer. Runs the stand-in image unless HADOOP_IMAGE is set.
SAMPLE=hadoop
source "$(dirname "$0")/../lib.sh"
cd "$(dirname "$0")"
if [ -z "${HADOOP_IMAGE:-}" ]; then
  step "building the stand-in image (HADOOP_IMAGE is not set)"
  pc -f standin/compose.yaml build
  export HADOOP_IMAGE=pycompose-samples/hadoop-standin:1
fi
export NAMENODE_PORT=${NAMENODE_PORT:-$(free_port)} RESOURCEMANAGER_PORT=${RESOURCEMANAGER_PORT:-$(free_port)}
trap 'pc down -v -t 2 >/dev/null 2>&1 || true' EXIT
step "up --wait"
pc up -d --wait --wait-timeout 300
step "every node resolves the others by hostname"
for node in Master Slave1 Slave2; do
  for other in Master Slave1 Slave2 metastore; do
    addr=$(pc exec "$node" getent hosts "$other" | awk '{print $1; exit}')
    [ -n "$addr" ] || fail "$node cannot resolve $other"
    echo "$node: $other -> $addr"
  done
done
[ "$(pc exec Master getent hosts metastore | awk '{print $1; exit}')" = "172.19.0.5" ] \
  || fail "metastore is not at its static address 172.19.0.5"
step "the metastore answers SQL at 172.19.0.5"
retry 60 bash -c '"$0" --backend "$1" exec Master mariadb --skip-ssl -h 172.19.0.5 -uhive -p"${METASTORE_PASSWORD:-hive}" \
  -N -e "SELECT 6*7" metastore | grep -qx 42' "$PYCOMPOSE" "$BACKEND" || fail "no SQL answer from 172.19.0.5"
step "the published web ports answer"
retry 60 curl -fsS "http://127.0.0.1:$NAMENODE_PORT/" || fail "port 9870 (namenode UI) does not answer"
echo
retry 60 curl -fsS "http://127.0.0.1:$RESOURCEMANAGER_PORT/" || fail "port 8088 (resourcemanager UI) does not answer"
echo
echo "hadoop: ok"

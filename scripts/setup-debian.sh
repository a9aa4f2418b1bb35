#!/usr/bin/env bash
# Installs and starts what pycompose and its tests need on a fresh Debian 12 machine (as root):
# the Docker engine (started here, since no init system runs it in CI), Debian's static
# busybox (the test images are built from it: nothing can be pulled), Python's venv,
# nftables (the namespace backend's firewall), docker-registry (a real registry for the
# push/pull tests, started by the tests themselves) and mmdebstrap (the samples' base image).
# Idempotent: safe to run again.
set -euo pipefail

need=()
for pkg in docker.io busybox-static python3-venv iproute2 curl gcc libc6-dev nftables iptables \
  docker-registry mmdebstrap; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ "${#need[@]}" -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  echo "setup: starting dockerd"
  mkdir -p /var/log
  # a stale pid file from an earlier run (killed with its session) stops dockerd from starting
  if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
    rm -f /var/run/docker.pid
  fi
  (setsid nohup dockerd >/var/log/pycompose-dockerd.log 2>&1 &)
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 0.5
  done
  docker info >/dev/null 2>&1 || { echo "setup: dockerd did not start:"; tail -20 /var/log/pycompose-dockerd.log; exit 1; }
fi
echo "setup: docker $(docker version --format '{{.Server.Version}}') is running"

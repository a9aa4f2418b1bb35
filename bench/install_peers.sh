#!/usr/bin/env bash
# Installs the peers the benchmarks compare against, as ../shared/PEERS.md says:
# docker-compose 1.29.2 in its own venv under /opt/peers/dc129.
set -euo pipefail
if [ ! -x /opt/peers/dc129/bin/docker-compose ]; then
  mkdir -p /opt/peers
  python3 -m venv /opt/peers/dc129
  /opt/peers/dc129/bin/pip install -q "cython<3.0.0" wheel setuptools
  /opt/peers/dc129/bin/pip install -q --no-build-isolation pyyaml==5.4.1
  /opt/peers/dc129/bin/pip install -q docker-compose==1.29.2
  /opt/peers/dc129/bin/pip install -q "docker[ssh]==6.1.3" "requests==2.31.0" "urllib3<2"
fi
/opt/peers/dc129/bin/docker-compose version --short

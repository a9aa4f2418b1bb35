#!/usr/bin/env bash
# Private Docker Swarm daemons for the swarm tests: each dockerd lives in its own network
# namespace (entered with `nsenter --net=`), its own UTS namespace (so node.hostname tells
# the nodes apart), its own data root, exec root, pidfile and socket. Nothing touches the
# machine's own dockerd, its bridge or its iptables rules.
#
#   scripts/swarm-daemons.sh start      node1: a single-node swarm advertised on 127.0.0.1
#   scripts/swarm-daemons.sh add-node   node2 joined over a veth pair (10.77.0.1 <-> .2);
#                                       node1's swarm is re-initialised on 10.77.0.1 first,
#                                       since a worker cannot reach a manager on 127.0.0.1
#   scripts/swarm-daemons.sh stop       stop both daemons, remove namespaces, veth, dirs
#   scripts/swarm-daemons.sh status     which nodes answer
#
# Images named in PYCOMPOSE_SWARM_IMAGES (space separated) are copied from the main daemon
# into each private one (docker save | docker -H ... load): nothing can be pulled here.
# Sockets: unix:///run/pycompose-swarm/node1.sock and node2.sock.
set -euo pipefail

RUN=${PYCOMPOSE_SWARM_RUN:-/run/pycompose-swarm}
DATA=${PYCOMPOSE_SWARM_DATA:-/var/lib/pycompose-swarm}
IMAGES=${PYCOMPOSE_SWARM_IMAGES:-}
NETNS_PREFIX=pycompose-swarm
VETH1=pcsw-veth1
VETH2=pcsw-veth2
ADDR1=10.77.0.1
ADDR2=10.77.0.2

log() { echo "swarm-daemons: $*" >&2; }

sock() { echo "unix://$RUN/node$1.sock"; }

dk() { # dk N ARGS...: the docker CLI against node N
    local n=$1
    shift
    docker -H "$(sock "$n")" "$@"
}

answers() { dk "$1" version --format '{{.Server.Version}}' >/dev/null 2>&1; }

start_daemon() { # start_daemon N: netns, dockerd, wait until it answers, load images
    local n=$1 ns="$NETNS_PREFIX$1"
    if answers "$n"; then
        log "node$n already answers"
        return 0
    fi
    mkdir -p "$RUN" "$DATA/node$n" "$RUN/node$n"
    if [ ! -d /run/netns ]; then
        mkdir -p "$RUN" && touch "$RUN/created-run-netns"  # so that stop removes it again
    fi
    if [ ! -e "/run/netns/$ns" ]; then
        ip netns add "$ns"
    fi
    nsenter --net="/run/netns/$ns" ip link set lo up
    # DOCKER_SERVICE_PREFER_OFFLINE_IMAGE: swarm tasks use the local image instead of trying
    # (and failing, slowly) to pull it from a registry this machine cannot reach.
    DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1 nsenter --net="/run/netns/$ns" \
        unshare --uts sh -c "hostname pcsw-node$n && exec dockerd \
            --data-root '$DATA/node$n' \
            --exec-root '$RUN/node$n' \
            --pidfile '$RUN/node$n.pid' \
            -H '$(sock "$n")' \
            --bridge=none --iptables=false --ip6tables=false \
            --containerd-namespace 'pycompose-swarm$n' \
            --containerd-plugins-namespace 'pycompose-swarm$n-plugins'" \
        >"$RUN/node$n.log" 2>&1 </dev/null &
    local i
    for i in $(seq 1 150); do
        if answers "$n"; then
            break
        fi
        if ! kill -0 $! 2>/dev/null; then
            log "dockerd node$n exited; its log:"
            tail -n 30 "$RUN/node$n.log" >&2
            return 1
        fi
        sleep 0.2
    done
    if ! answers "$n"; then
        log "dockerd node$n did not answer within 30 s"
        return 1
    fi
    local image
    for image in $IMAGES; do
        docker save "$image" | dk "$n" load -q >/dev/null
    done
}

stop_daemon() { # stop_daemon N: dockerd (and the containerd it supervises), then its files
    local n=$1 ns="$NETNS_PREFIX$1" pid=""
    if [ -f "$RUN/node$n.pid" ]; then
        pid=$(cat "$RUN/node$n.pid")
    fi
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        # task containers go first (killed, not stopped: nothing in them needs a grace
        # period), then the node leaves the swarm while its daemon still runs
        local c
        for c in $(timeout 10 docker -H "$(sock "$n")" ps -aq 2>/dev/null); do
            timeout 10 docker -H "$(sock "$n")" rm -f "$c" >/dev/null 2>&1 || true
        done
        timeout 20 docker -H "$(sock "$n")" swarm leave --force >/dev/null 2>&1 || true
        kill -TERM "$pid" 2>/dev/null || true
        local i
        for i in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    # the containerd a killed dockerd supervised would outlive it
    local cpid
    for cpid in $(cat "$RUN/node$n/containerd/containerd.pid" 2>/dev/null); do
        kill -TERM "$cpid" 2>/dev/null || true
    done
    # anything still mounted under the exec or data root (netns files, shm, overlay layers)
    local m
    for m in $(awk '{print $2}' /proc/mounts | grep -E "^($RUN/node$n|$DATA/node$n)(/|$)" | sort -r); do
        umount -l "$m" 2>/dev/null || true
    done
    if [ -e "/run/netns/$ns" ]; then
        ip netns del "$ns" 2>/dev/null || true
    fi
    rm -rf "${RUN:?}/node$n" "$RUN/node$n.pid" "$RUN/node$n.sock" "$RUN/node$n.log" "${DATA:?}/node$n"
}

swarm_state() { dk "$1" info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null || true; }

cmd_start() {
    start_daemon 1
    if [ "$(swarm_state 1)" != "active" ]; then
        dk 1 swarm init --advertise-addr 127.0.0.1 >/dev/null
    fi
    dk 1 node update --label-add pycompose.node=node1 "$(dk 1 info --format '{{.Swarm.NodeID}}')" >/dev/null
    log "node1 up: $(sock 1)"
}

cmd_add_node() {
    cmd_start
    local ns1="/run/netns/${NETNS_PREFIX}1"
    if ! nsenter --net="$ns1" ip link show "$VETH1" >/dev/null 2>&1; then
        if [ ! -e "/run/netns/${NETNS_PREFIX}2" ]; then
            ip netns add "${NETNS_PREFIX}2"
        fi
        ip link add "$VETH1" netns "${NETNS_PREFIX}1" type veth peer name "$VETH2" netns "${NETNS_PREFIX}2"
        nsenter --net="$ns1" ip addr add "$ADDR1/24" dev "$VETH1"
        nsenter --net="$ns1" ip link set "$VETH1" up
        nsenter --net="/run/netns/${NETNS_PREFIX}2" ip addr add "$ADDR2/24" dev "$VETH2"
        nsenter --net="/run/netns/${NETNS_PREFIX}2" ip link set "$VETH2" up
    fi
    start_daemon 2
    if [ "$(dk 1 info --format '{{.Swarm.NodeAddr}}')" != "$ADDR1" ]; then
        # a worker learns the manager's advertised address: 127.0.0.1 would be its own lo
        dk 1 swarm leave --force >/dev/null
        dk 1 swarm init --advertise-addr "$ADDR1" >/dev/null
        dk 1 node update --label-add pycompose.node=node1 "$(dk 1 info --format '{{.Swarm.NodeID}}')" >/dev/null
    fi
    if [ "$(swarm_state 2)" != "active" ]; then
        local token
        token=$(dk 1 swarm join-token -q worker)
        dk 2 swarm join --token "$token" --advertise-addr "$ADDR2" "$ADDR1:2377" >/dev/null
    fi
    local id2 i
    id2=$(dk 2 info --format '{{.Swarm.NodeID}}')
    for i in $(seq 1 100); do
        if [ "$(dk 1 node inspect "$id2" --format '{{.Status.State}}' 2>/dev/null)" = "ready" ]; then
            break
        fi
        sleep 0.2
    done
    dk 1 node update --label-add pycompose.node=node2 "$id2" >/dev/null
    log "node2 joined: $(sock 2)"
}

cmd_stop() {
    stop_daemon 2
    stop_daemon 1
    if [ -f "$RUN/created-run-netns" ]; then
        rm -f "$RUN/created-run-netns"
        # `ip netns add` made /run/netns a mount point; undo it only if no namespace is left
        if [ -z "$(ls -A /run/netns 2>/dev/null)" ]; then
            umount /run/netns 2>/dev/null || true
            rmdir /run/netns 2>/dev/null || true
        fi
    fi
    rmdir "$RUN" "$DATA" 2>/dev/null || true
}

cmd_status() {
    local n
    for n in 1 2; do
        if answers "$n"; then
            echo "node$n $(sock "$n") $(swarm_state "$n")"
        fi
    done
}

case "${1:-}" in
start) cmd_start ;;
add-node) cmd_add_node ;;
stop) cmd_stop ;;
status) cmd_status ;;
*)
    echo "usage: $0 start|add-node|stop|status" >&2
    exit 2
    ;;
esac

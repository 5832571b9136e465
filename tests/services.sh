#!/usr/bin/env bash
# Starts (or stops) the store servers the tests use, on loopback high ports.
# `start` writes .run/services.env with their addresses for tests to source.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=$PWD/.run
mkdir -p "$RUN"

REDIS_PORT=${RSESSION_REDIS_PORT:-16379}
MEMCACHED_PORTS=(${RSESSION_MEMCACHED_PORTS:-21211 21212})
# Redis Cluster: 3 masters, 3 replicas (each also uses port+10000, its bus).
CLUSTER_PORTS=(${RSESSION_CLUSTER_PORTS:-17001 17002 17003 17004 17005 17006})
# Sentinel: a master and its replica, watched by three sentinels.
SENTINEL_DATA_PORTS=(${RSESSION_SENTINEL_DATA_PORTS:-17101 17102})
SENTINEL_PORTS=(${RSESSION_SENTINEL_PORTS:-17201 17202 17203})
SENTINEL_MASTER=rsession
# Both want a password, so that every test on them speaks AUTH to both.
SENTINEL_DATA_PASSWORD=rsession-data
SENTINEL_PASSWORD=rsession-sentinel
# Short timeouts, so that the failover tests wait seconds, not minutes.
CLUSTER_NODE_TIMEOUT_MS=${RSESSION_CLUSTER_NODE_TIMEOUT_MS:-1500}
SENTINEL_DOWN_AFTER_MS=${RSESSION_SENTINEL_DOWN_AFTER_MS:-1000}

wait_port() { # host port
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "rsession: nothing listens on $1:$2" >&2
  return 1
}

# The nodes of the cluster, each in .run/cluster/PORT, created afresh.
start_cluster() {
  local p hosts=() i ok
  rm -rf "$RUN/cluster"
  for p in "${CLUSTER_PORTS[@]}"; do
    mkdir -p "$RUN/cluster/$p"
    # Kept as a script: failover tests start a node they killed again.
    cat > "$RUN/cluster/$p/start.sh" <<SH
exec redis-server --port $p --bind 127.0.0.1 --cluster-enabled yes --cluster-config-file nodes.conf \\
  --cluster-node-timeout $CLUSTER_NODE_TIMEOUT_MS --dir $RUN/cluster/$p --save '' --appendonly no --repl-diskless-sync-delay 0 \\
  --daemonize yes --pidfile $RUN/cluster/$p.pid --logfile $RUN/cluster/$p.log
SH
    sh "$RUN/cluster/$p/start.sh"
    hosts+=("127.0.0.1:$p")
  done
  for p in "${CLUSTER_PORTS[@]}"; do wait_port 127.0.0.1 "$p"; done
  redis-cli --cluster create "${hosts[@]}" --cluster-replicas 1 --cluster-yes > "$RUN/cluster/create.log" 2>&1 \
    || { cat "$RUN/cluster/create.log" >&2; return 1; }
  # Every node must see the whole cluster, and every replica its master.
  for _ in $(seq 1 200); do
    ok=1
    for p in "${CLUSTER_PORTS[@]}"; do
      i=$(redis-cli -p "$p" cluster info 2>/dev/null; redis-cli -p "$p" info replication 2>/dev/null)
      grep -q 'cluster_state:ok' <<<"$i" || ok=0
      grep -q 'role:slave' <<<"$i" && ! grep -q 'master_link_status:up' <<<"$i" && ok=0
    done
    [ $ok = 1 ] && return 0
    sleep 0.05
  done
  echo "rsession: the test cluster did not come up" >&2
  return 1
}

# A master, its replica and three sentinels, in .run/sentinel.
start_sentinel() {
  local m=${SENTINEL_DATA_PORTS[0]} r=${SENTINEL_DATA_PORTS[1]} p
  rm -rf "$RUN/sentinel"; mkdir -p "$RUN/sentinel"
  for p in "$m" "$r"; do
    local replica=""
    [ "$p" = "$r" ] && replica="--replicaof 127.0.0.1 $m"
    mkdir -p "$RUN/sentinel/$p"
    # Kept as a script: a failover test starts a master it killed again,
    # adding "--replicaof host port" of the node the sentinels promoted.
    cat > "$RUN/sentinel/$p/start.sh" <<SH
exec redis-server --port $p --bind 127.0.0.1 --save '' --appendonly no --repl-diskless-sync-delay 0 --dir $RUN/sentinel/$p \\
  --requirepass $SENTINEL_DATA_PASSWORD --masterauth $SENTINEL_DATA_PASSWORD \\
  --daemonize yes --pidfile $RUN/sentinel/$p.pid --logfile $RUN/sentinel/$p.log $replica "\$@"
SH
    sh "$RUN/sentinel/$p/start.sh"
  done
  for p in "${SENTINEL_PORTS[@]}"; do
    # Sentinel rewrites its config: each one gets a writable file of its own.
    cat > "$RUN/sentinel/sentinel-$p.conf" <<CONF
port $p
bind 127.0.0.1
daemonize yes
pidfile $RUN/sentinel/$p.pid
logfile $RUN/sentinel/$p.log
dir $RUN/sentinel
sentinel monitor $SENTINEL_MASTER 127.0.0.1 $m 2
sentinel down-after-milliseconds $SENTINEL_MASTER $SENTINEL_DOWN_AFTER_MS
sentinel failover-timeout $SENTINEL_MASTER 4000
sentinel parallel-syncs $SENTINEL_MASTER 1
sentinel auth-pass $SENTINEL_MASTER $SENTINEL_DATA_PASSWORD
requirepass $SENTINEL_PASSWORD
sentinel sentinel-pass $SENTINEL_PASSWORD
CONF
    redis-server "$RUN/sentinel/sentinel-$p.conf" --sentinel
  done
  for p in "$m" "$r" "${SENTINEL_PORTS[@]}"; do wait_port 127.0.0.1 "$p"; done
  for _ in $(seq 1 200); do
    redis-cli -p "$r" -a "$SENTINEL_DATA_PASSWORD" --no-auth-warning info replication 2>/dev/null |
      grep -q 'master_link_status:up' && return 0
    sleep 0.05
  done
  echo "rsession: the Sentinel test set did not come up" >&2
  return 1
}

start() {
  stop quiet
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --daemonize yes --pidfile "$RUN/redis.pid" --logfile "$RUN/redis.log" \
    --unixsocket "$RUN/redis.sock" --unixsocketperm 700
  wait_port 127.0.0.1 "$REDIS_PORT"
  for p in "${MEMCACHED_PORTS[@]}"; do
    memcached -d -u root -l 127.0.0.1 -p "$p" -U 0 -m 64 -P "$RUN/memcached-$p.pid"
    wait_port 127.0.0.1 "$p"
  done
  start_cluster
  start_sentinel
  local seeds sentinels
  seeds=$(printf '127.0.0.1:%s,' "${CLUSTER_PORTS[@]:0:3}"); seeds=${seeds%,}
  sentinels=$(printf '127.0.0.1:%s,' "${SENTINEL_PORTS[@]}"); sentinels=${sentinels%,}
  cat > "$RUN/services.env" <<ENV
export RSESSION_TEST_REDIS=redis://127.0.0.1:$REDIS_PORT
export RSESSION_TEST_REDIS_SOCK=$RUN/redis.sock
export RSESSION_TEST_MEMCACHED=memcached://127.0.0.1:${MEMCACHED_PORTS[0]}
export RSESSION_TEST_MEMCACHED_2=memcached://127.0.0.1:${MEMCACHED_PORTS[1]}
export RSESSION_TEST_REDIS_CLUSTER=redis-cluster://$seeds
export RSESSION_TEST_REDIS_CLUSTER_PORTS="${CLUSTER_PORTS[*]}"
export RSESSION_TEST_REDIS_CLUSTER_DIR=$RUN/cluster
export RSESSION_TEST_REDIS_SENTINEL="redis-sentinel://:$SENTINEL_DATA_PASSWORD@$sentinels/$SENTINEL_MASTER?sentinel_password=$SENTINEL_PASSWORD"
export RSESSION_TEST_REDIS_SENTINEL_DATA_PORTS="${SENTINEL_DATA_PORTS[*]}"
export RSESSION_TEST_REDIS_SENTINEL_PORTS="${SENTINEL_PORTS[*]}"
export RSESSION_TEST_REDIS_SENTINEL_DIR=$RUN/sentinel
ENV
}

stop() {
  local f pid pids=()
  for f in "$RUN"/redis.pid "$RUN"/memcached-*.pid "$RUN"/cluster/*.pid "$RUN"/sentinel/*.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    kill "$pid" 2>/dev/null && pids+=("$pid")
    rm -f "$f"
  done
  # Wait for them to be gone: a server started right after must not find
  # the port still held (memcached -d would then die after forking, while
  # wait_port saw the old one answer).
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  done
  [ "${1:-}" = quiet ] || echo "services stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac

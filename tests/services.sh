#!/usr/bin/env bash
# Starts (or stops) the store servers the tests use, on loopback high ports.
# `start` writes .run/services.env with their addresses for tests to source.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=$PWD/.run
mkdir -p "$RUN"

REDIS_PORT=${RSESSION_REDIS_PORT:-16379}
MEMCACHED_PORTS=(${RSESSION_MEMCACHED_PORTS:-21211 21212})
# A memcached that takes items of at most 1 KiB (its minimum), below any
# max_item_size: tests of commands the server refuses.
MEMCACHED_SMALL_PORT=${RSESSION_MEMCACHED_SMALL_PORT:-21213}

wait_port() { # host port
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "rsession: nothing listens on $1:$2" >&2
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
  memcached -d -u root -l 127.0.0.1 -p "$MEMCACHED_SMALL_PORT" -U 0 -m 64 -I 1k -o slab_chunk_max=512 \
    -P "$RUN/memcached-$MEMCACHED_SMALL_PORT.pid"
  wait_port 127.0.0.1 "$MEMCACHED_SMALL_PORT"
  cat > "$RUN/services.env" <<ENV
export RSESSION_TEST_REDIS=redis://127.0.0.1:$REDIS_PORT
export RSESSION_TEST_REDIS_SOCK=$RUN/redis.sock
export RSESSION_TEST_MEMCACHED=memcached://127.0.0.1:${MEMCACHED_PORTS[0]}
export RSESSION_TEST_MEMCACHED_2=memcached://127.0.0.1:${MEMCACHED_PORTS[1]}
export RSESSION_TEST_MEMCACHED_SMALL=memcached://127.0.0.1:$MEMCACHED_SMALL_PORT
ENV
}

stop() {
  local f pid
  for f in "$RUN"/redis.pid "$RUN"/memcached-*.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    kill "$pid" 2>/dev/null || true
    # Wait for it to be gone: a server started right after must not find
    # the port still held (memcached -d would then die after forking,
    # while wait_port saw the old one answer).
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    rm -f "$f"
  done
  [ "${1:-}" = quiet ] || echo "services stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac

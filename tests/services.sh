#!/usr/bin/env bash
# Starts (or stops) the store servers the tests use, on loopback high ports.
# `start` writes .run/services.env with their addresses for tests to source.
set -euo pipefail
cd "$(dirname "$0")/.."
# RSESSION_RUN_DIR: where data, sockets and logs go (make soak keeps its
# own servers under .run/e2e/services).
RUN=${RSESSION_RUN_DIR:-$PWD/.run}
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
# A memcached that takes items of at most 1 KiB (its minimum), below any
# max_item_size: tests of commands the server refuses.
MEMCACHED_SMALL_PORT=${RSESSION_MEMCACHED_SMALL_PORT:-21213}
PG_PORT=${RSESSION_PG_PORT:-15432}
MYSQL_PORT=${RSESSION_MYSQL_PORT:-13306}
# The test databases' users (loopback only, throwaway data).
SQL_USER=rs_app SQL_PASSWORD=rs-app-pw SQL_DB=rsession_test
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)

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
  memcached -d -u root -l 127.0.0.1 -p "$MEMCACHED_SMALL_PORT" -U 0 -m 64 -I 1k -o slab_chunk_max=512 \
    -P "$RUN/memcached-$MEMCACHED_SMALL_PORT.pid"
  wait_port 127.0.0.1 "$MEMCACHED_SMALL_PORT"
  start_pgsql
  start_mysql
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
export RSESSION_TEST_MEMCACHED_SMALL=memcached://127.0.0.1:$MEMCACHED_SMALL_PORT
export RSESSION_TEST_PGSQL=pgsql://$SQL_USER:$SQL_PASSWORD@127.0.0.1:$PG_PORT/$SQL_DB
export RSESSION_TEST_MYSQL=mysql://$SQL_USER:$SQL_PASSWORD@127.0.0.1:$MYSQL_PORT/$SQL_DB
export RSESSION_TEST_MYSQL_SOCK=$RUN/mysql.sock
export RSESSION_TEST_PGSQL_ADMIN="runuser -u postgres -- $PG_BIN/psql -X -q -At -h $RUN/pgsock -p $PG_PORT -U postgres -d $SQL_DB"
export RSESSION_TEST_MYSQL_ADMIN="mariadb --no-defaults -N -B -S $RUN/mysql.sock -u root $SQL_DB"
export RSESSION_TEST_PGSQL_CTL="$PWD/tests/services.sh"
ENV
}

# PostgreSQL refuses to run as root: it runs as the postgres user, from a
# cluster initdb made once in .run/pgsql; unix socket in .run, TCP on
# loopback, password (SCRAM) over TCP.
pg_as() { runuser -u postgres -- "$@"; }
start_pgsql() {
  local data=$RUN/pgsql
  if [ ! -f "$data/PG_VERSION" ]; then
    rm -rf "$data"; mkdir -p "$data"; chown postgres: "$data"
    echo postgres > "$RUN/pgsql.pw"; chown postgres: "$RUN/pgsql.pw"
    pg_as "$PG_BIN/initdb" -D "$data" --auth-local=trust --auth-host=scram-sha-256 \
      --pwfile="$RUN/pgsql.pw" -E UTF8 --no-instructions >"$RUN/pgsql-init.log" 2>&1
  fi
  mkdir -p "$RUN/pgsock"; touch "$RUN/pgsql.log"; chown postgres: "$RUN/pgsql.log" "$RUN/pgsock"
  # fsync off: throwaway data; the figures should show round trips, not
  # this VM's disk.
  pg_as "$PG_BIN/pg_ctl" -D "$data" -l "$RUN/pgsql.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $RUN/pgsock -c fsync=off -c max_connections=300" start >/dev/null
  local psql=("$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$RUN/pgsock" -p "$PG_PORT" -U postgres)
  pg_as "${psql[@]}" -d postgres >/dev/null <<SQL
SELECT 'CREATE ROLE $SQL_USER LOGIN PASSWORD ''$SQL_PASSWORD''' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$SQL_USER')\gexec
SELECT 'CREATE ROLE rs_readonly LOGIN PASSWORD ''readonly''' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'rs_readonly')\gexec
SELECT 'CREATE DATABASE $SQL_DB OWNER $SQL_USER' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$SQL_DB')\gexec
SQL
  # rs_readonly may read what rsession creates, never write it.
  pg_as "${psql[@]}" -d "$SQL_DB" \
    -c "ALTER DEFAULT PRIVILEGES FOR ROLE $SQL_USER IN SCHEMA public GRANT SELECT ON TABLES TO rs_readonly" >/dev/null
}

# MariaDB: mariadb-install-db into .run/mysql once; as root mariadbd needs
# --user=root; --no-defaults keeps /etc/mysql out of it.
start_mysql() {
  local data=$RUN/mysql
  if [ ! -d "$data/mysql" ]; then
    rm -rf "$data"
    mariadb-install-db --no-defaults --datadir="$data" --auth-root-authentication-method=normal \
      --skip-test-db --user=root >"$RUN/mysql-init.log" 2>&1
  fi
  rm -f "$RUN/mysql.sock"
  # max_allowed_packet 8 MB: the oversized-data tests go past it.
  setsid mariadbd --no-defaults --datadir="$data" --socket="$RUN/mysql.sock" --port="$MYSQL_PORT" \
    --bind-address=127.0.0.1 --skip-networking=0 --user=root --pid-file="$RUN/mysql.pid" \
    --log-error="$RUN/mysql.log" --innodb-flush-log-at-trx-commit=2 --max-allowed-packet=8M \
    --innodb-buffer-pool-size=64M --max-connections=300 --skip-name-resolve \
    </dev/null >/dev/null 2>&1 &
  for _ in $(seq 1 400); do [ -S "$RUN/mysql.sock" ] && break; sleep 0.05; done
  wait_port 127.0.0.1 "$MYSQL_PORT"
  mariadb --no-defaults -S "$RUN/mysql.sock" -u root <<SQL
CREATE DATABASE IF NOT EXISTS $SQL_DB;
CREATE USER IF NOT EXISTS '$SQL_USER'@'%' IDENTIFIED BY '$SQL_PASSWORD';
GRANT ALL ON $SQL_DB.* TO '$SQL_USER'@'%';
CREATE USER IF NOT EXISTS 'rs_readonly'@'%' IDENTIFIED BY 'readonly';
GRANT SELECT ON $SQL_DB.* TO 'rs_readonly'@'%';
-- An app user whose DBA made the tables: rows only, no CREATE ROUTINE or EXECUTE.
CREATE USER IF NOT EXISTS 'rs_dml'@'%' IDENTIFIED BY 'dml-pw';
GRANT SELECT, INSERT, UPDATE, DELETE ON $SQL_DB.* TO 'rs_dml'@'%';
SQL
}

stop_pgsql() {
  [ -f "$RUN/pgsql/postmaster.pid" ] || return 0
  pg_as "$PG_BIN/pg_ctl" -D "$RUN/pgsql" -m fast -w stop >/dev/null 2>&1 || true
}

stop_mysql() {
  [ -f "$RUN/mysql.pid" ] || return 0
  local pid
  pid=$(cat "$RUN/mysql.pid")
  kill "$pid" 2>/dev/null || true
  # A shutdown with many clients can take a while; the port must be free
  # before anything starts on it again.
  for _ in $(seq 1 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  kill -9 "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  rm -f "$RUN/mysql.pid"
}

# Stops the servers of these pid files and waits for them to be gone: a
# server started right after must not find the port still held (memcached
# -d would then die after forking, while wait_port saw the old one answer).
stop_pidfiles() {
  local f pid pids=()
  for f in "$@"; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    kill "$pid" 2>/dev/null && pids+=("$pid")
    rm -f "$f"
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  done
}

stop() {
  stop_pgsql
  stop_mysql
  stop_pidfiles "$RUN"/redis.pid "$RUN"/memcached-*.pid "$RUN"/cluster/*.pid "$RUN"/sentinel/*.pid
  [ "${1:-}" = quiet ] || echo "services stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  # The restart tests: one SQL server down (stop-pgsql, stop-mysql) and up
  # again (start-pgsql, start-mysql), on the same ports and data.
  stop-pgsql) stop_pgsql ;;
  start-pgsql) start_pgsql ;;
  stop-mysql) stop_mysql ;;
  start-mysql) start_mysql ;;
  # A cluster or a Sentinel set alone (make soak, make bench: on their own
  # ports, RSESSION_CLUSTER_PORTS etc., under their own RSESSION_RUN_DIR).
  start-cluster) start_cluster ;;
  start-sentinel) start_sentinel ;;
  stop-cluster | stop-sentinel) stop_pidfiles "$RUN/${1#stop-}"/*.pid ;;
  *) echo "usage: $0 start|stop|stop-pgsql|start-pgsql|stop-mysql|start-mysql|start-cluster|stop-cluster|start-sentinel|stop-sentinel" >&2; exit 2 ;;
esac

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
  cat > "$RUN/services.env" <<ENV
export RSESSION_TEST_REDIS=redis://127.0.0.1:$REDIS_PORT
export RSESSION_TEST_REDIS_SOCK=$RUN/redis.sock
export RSESSION_TEST_MEMCACHED=memcached://127.0.0.1:${MEMCACHED_PORTS[0]}
export RSESSION_TEST_MEMCACHED_2=memcached://127.0.0.1:${MEMCACHED_PORTS[1]}
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

stop() {
  local f pid
  stop_pgsql
  stop_mysql
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
  # The restart tests: one SQL server down (stop-pgsql, stop-mysql) and up
  # again (start-pgsql, start-mysql), on the same ports and data.
  stop-pgsql) stop_pgsql ;;
  start-pgsql) start_pgsql ;;
  stop-mysql) stop_mysql ;;
  start-mysql) start_mysql ;;
  *) echo "usage: $0 start|stop|stop-pgsql|start-pgsql|stop-mysql|start-mysql" >&2; exit 2 ;;
esac

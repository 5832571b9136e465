# Helpers of the end-to-end harness; sourced by soak.sh.
# Everything runs on loopback, with private configs under $RUN (.run/e2e).

E2E_PORT=${E2E_PORT:-18380}                 # nginx
E2E_REDIS_PORT=${E2E_REDIS_PORT:-26379}     # private redis-server
E2E_MEMCACHED_PORTS=(${E2E_MEMCACHED_PORTS:-31211 31212})
E2E_PG_PORT=${E2E_PG_PORT:-35432}           # private PostgreSQL
E2E_MYSQL_PORT=${E2E_MYSQL_PORT:-33306}     # private MariaDB
# Private Redis Cluster (3 masters + 3 replicas; each also uses port+10000)
# and Sentinel set (master, replica; three sentinels), by tests/services.sh.
E2E_CLUSTER_PORTS=${E2E_CLUSTER_PORTS:-27001 27002 27003 27004 27005 27006}
E2E_SENTINEL_DATA_PORTS=${E2E_SENTINEL_DATA_PORTS:-27101 27102}
E2E_SENTINEL_PORTS=${E2E_SENTINEL_PORTS:-27201 27202 27203}
E2E_WORKERS=${E2E_WORKERS:-12}              # php-fpm pm.max_children (static)
E2E_LOCK_WAIT_MS=${E2E_LOCK_WAIT_MS:-10000} # lock wait granted to every handler
PHP_FPM=${PHP_FPM:-php-fpm8.2}
PHP=${PHP:-php}
PY=${PY:-python3}

log() { printf '[e2e %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 2; }

wait_port() { # host port [tries]
  local i
  for ((i = 0; i < ${3:-100}; i++)); do
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0
    sleep 0.05
  done
  return 1
}

wait_file() { # path: until it exists and is not empty (~5 s)
  local i
  for ((i = 0; i < 100; i++)); do [ -s "$1" ] && return 0; sleep 0.05; done
  die "$1 did not appear"
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Alive and not a zombie (PID 1 of a container may reap late).
pid_alive() {
  [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null || return 1
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

# Stops the process whose pid is in file $1 (TERM, then KILL after ~5 s).
stop_pidfile() {
  local f=$1 sig=${2:-TERM} pid i
  [ -f "$f" ] || return 0
  pid=$(cat "$f" 2>/dev/null || true)
  if pid_alive "$pid"; then
    kill -"$sig" "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do pid_alive "$pid" || break; sleep 0.05; done
    pid_alive "$pid" && kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

# ---------------------------------------------------------------- services
# Private redis-server and memcached instances (their own ports and pid
# files), so the harness can stop and restart them in fault scenarios
# without disturbing `make test` running next to it.
services_start() {
  mkdir -p "$RUN/services"
  services_stop
  service_up redis
  service_up memcached
  local db
  for db in ${E2E_NEED_SQL:-} ${E2E_NEED_REDIS_SETS:-}; do service_up "$db"; done
  cat > "$RUN/services.env" <<ENV
export RSESSION_TEST_REDIS=redis://127.0.0.1:$E2E_REDIS_PORT
export RSESSION_TEST_MEMCACHED=memcached://127.0.0.1:${E2E_MEMCACHED_PORTS[0]}
export RSESSION_TEST_MEMCACHED_2=memcached://127.0.0.1:${E2E_MEMCACHED_PORTS[1]}
ENV
  log "services: redis :$E2E_REDIS_PORT, memcached :${E2E_MEMCACHED_PORTS[*]}"
}

# The SQL servers are started by tests/services.sh (initdb / install-db
# once, then the server), with their data under .run/e2e/services.
sql_service() { # start|stop pgsql|mysql
  RSESSION_RUN_DIR=$RUN/services RSESSION_PG_PORT=$E2E_PG_PORT RSESSION_MYSQL_PORT=$E2E_MYSQL_PORT \
    "$ROOT/tests/services.sh" "$1-$2" >> "$RUN/services/$2.out" 2>&1
}

# The cluster and the Sentinel set, by tests/services.sh on our ports.
redis_set_service() { # start|stop cluster|sentinel
  RSESSION_RUN_DIR=$RUN/services RSESSION_CLUSTER_PORTS="$E2E_CLUSTER_PORTS" \
    RSESSION_SENTINEL_DATA_PORTS="$E2E_SENTINEL_DATA_PORTS" RSESSION_SENTINEL_PORTS="$E2E_SENTINEL_PORTS" \
    "$ROOT/tests/services.sh" "$1-$2" >> "$RUN/services/$2.out" 2>&1
}

# service_up redis|memcached|pgsql|mysql|cluster|sentinel: starts our private instance(s).
service_up() {
  local p
  case $1 in
    cluster | sentinel)
      for p in $([ "$1" = cluster ] && echo "$E2E_CLUSTER_PORTS" || echo "$E2E_SENTINEL_DATA_PORTS $E2E_SENTINEL_PORTS"); do
        port_free "$p" || die "port $p of the $1 is taken (set E2E_CLUSTER_PORTS / E2E_SENTINEL_DATA_PORTS / E2E_SENTINEL_PORTS)"
      done
      redis_set_service start "$1" || die "the $1 did not start (see $RUN/services/$1.out)"
      ;;
    pgsql | mysql)
      port_free "$([ "$1" = pgsql ] && echo "$E2E_PG_PORT" || echo "$E2E_MYSQL_PORT")" ||
        die "port of $1 is taken (set E2E_PG_PORT / E2E_MYSQL_PORT)"
      sql_service start "$1" || die "$1 did not start (see $RUN/services/$1.out)"
      ;;
    redis)
      port_free "$E2E_REDIS_PORT" || die "port $E2E_REDIS_PORT is taken (set E2E_REDIS_PORT)"
      redis-server --port "$E2E_REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
        --daemonize yes --pidfile "$RUN/services/redis.pid" --logfile "$RUN/services/redis.log" \
        --dir "$RUN/services"
      wait_port 127.0.0.1 "$E2E_REDIS_PORT" || die "redis-server did not start"
      wait_file "$RUN/services/redis.pid"
      ;;
    memcached)
      for p in "${E2E_MEMCACHED_PORTS[@]}"; do
        port_free "$p" || die "port $p is taken (set E2E_MEMCACHED_PORTS)"
        memcached -d -u root -l 127.0.0.1 -p "$p" -U 0 -m 64 -P "$RUN/services/memcached-$p.pid"
        wait_port 127.0.0.1 "$p" || die "memcached did not start on $p"
        wait_file "$RUN/services/memcached-$p.pid"
      done
      ;;
  esac
}

# service_down redis|memcached: stops our private instance(s) and waits
# until their ports are closed.
service_down() {
  local f p
  case $1 in
    pgsql | mysql) sql_service stop "$1" ;;
    cluster | sentinel) redis_set_service stop "$1" ;;
    redis) stop_pidfile "$RUN/services/redis.pid"
      for ((p = 0; p < 100; p++)); do port_free "$E2E_REDIS_PORT" && break; sleep 0.05; done ;;
    memcached)
      for p in "${E2E_MEMCACHED_PORTS[@]}"; do
        f=$RUN/services/memcached-$p.pid
        stop_pidfile "$f"
      done ;;
  esac
}

services_stop() {
  local f
  for f in "$RUN"/services/redis.pid "$RUN"/services/memcached-*.pid; do
    [ -f "$f" ] && stop_pidfile "$f"
  done
  [ -f "$RUN/services/pgsql/postmaster.pid" ] && sql_service stop pgsql
  [ -f "$RUN/services/mysql.pid" ] && sql_service stop mysql
  [ -d "$RUN/services/cluster" ] && redis_set_service stop cluster
  [ -d "$RUN/services/sentinel" ] && redis_set_service stop sentinel
  return 0
}

# ------------------------------------------------------------------- nginx
nginx_start() {
  local d=$RUN/nginx
  mkdir -p "$d/tmp"
  port_free "$E2E_PORT" || die "port $E2E_PORT is taken (set E2E_PORT)"
  cat > "$d/nginx.conf" <<CONF
user root;
worker_processes 1;
daemon on;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $d/tmp/body;
  fastcgi_temp_path $d/tmp/fastcgi;
  proxy_temp_path $d/tmp/proxy;
  uwsgi_temp_path $d/tmp/uwsgi;
  scgi_temp_path $d/tmp/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 65;
  server {
    listen 127.0.0.1:$E2E_PORT;
    root $E2E/app;
    location ~ ^/[a-z0-9_]+\.php\$ {
      fastcgi_pass unix:$RUN/fpm.sock;
      fastcgi_read_timeout 60s;
      fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;
      fastcgi_param SCRIPT_NAME     \$fastcgi_script_name;
      fastcgi_param QUERY_STRING    \$query_string;
      fastcgi_param REQUEST_METHOD  \$request_method;
      fastcgi_param REQUEST_URI     \$request_uri;
      fastcgi_param DOCUMENT_ROOT   \$document_root;
      fastcgi_param SERVER_PROTOCOL \$server_protocol;
      fastcgi_param REMOTE_ADDR     \$remote_addr;
      fastcgi_param REMOTE_PORT     \$remote_port;
      fastcgi_param SERVER_ADDR     \$server_addr;
      fastcgi_param SERVER_PORT     \$server_port;
      fastcgi_param SERVER_NAME     \$server_name;
      fastcgi_param GATEWAY_INTERFACE CGI/1.1;
    }
    location / { return 404; }
  }
}
CONF
  nginx -p "$d" -c "$d/nginx.conf" -g "error_log $d/error.log warn;" 2>>"$d/error.log" \
    || die "nginx did not start: $(tail -3 "$d/error.log")"
  wait_port 127.0.0.1 "$E2E_PORT" || die "nginx does not listen on $E2E_PORT"
  log "nginx on http://127.0.0.1:$E2E_PORT"
}

nginx_stop() { stop_pidfile "$RUN/nginx/nginx.pid" QUIT; }

# ----------------------------------------------------------------- php-fpm
# fpm_start DIR INI_LINES: php-fpm with DIR/php.ini (only that file: no
# scan dir) made of the common settings plus INI_LINES; logs in DIR.
fpm_start() {
  local dir=$1 extra=$2
  mkdir -p "$dir" "$RUN/tmp"
  {
    echo "; generated by tests/e2e/soak.sh"
    echo "extension=$SO"
    cat <<INI
error_reporting = E_ALL
display_errors = Off
display_startup_errors = Off
log_errors = On
html_errors = Off
error_log = $dir/php-errors.log
sys_temp_dir = $RUN/tmp
max_execution_time = 60
session.use_strict_mode = 0
session.use_cookies = 1
session.use_only_cookies = 1
session.gc_probability = 1
session.gc_divisor = 100
rsession.lock_wait_ms = $E2E_LOCK_WAIT_MS
; the handler's own settings (later lines win)
INI
    echo "$extra"
  } > "$dir/php.ini"
  cat > "$dir/fpm.conf" <<CONF
[global]
pid = $RUN/fpm.pid
error_log = $dir/fpm.log
log_level = notice
daemonize = yes
[e2e]
user = root
group = root
listen = $RUN/fpm.sock
listen.mode = 0666
listen.backlog = 1024
pm = static
pm.max_children = $E2E_WORKERS
pm.max_requests = 0
catch_workers_output = yes
decorate_workers_output = no
request_terminate_timeout = 90s
CONF
  rm -f "$RUN/fpm.sock"
  PHP_INI_SCAN_DIR= "$PHP_FPM" -R -c "$dir/php.ini" -y "$dir/fpm.conf" 2>>"$dir/fpm.log" \
    || die "php-fpm did not start: $(tail -5 "$dir/fpm.log")"
  local i
  for ((i = 0; i < 100; i++)); do [ -S "$RUN/fpm.sock" ] && break; sleep 0.05; done
  [ -S "$RUN/fpm.sock" ] || die "php-fpm socket missing: $(tail -5 "$dir/fpm.log")"
  # The workers must run on our php.ini alone.
  local info
  info=$(http_get /info.php e2einfo)
  grep -q "^200 .*ini $dir/php.ini scanned - " <<<"$(tr '\n' ' ' <<<"$info")" \
    || die "php-fpm does not use the private php.ini: $info"
}

fpm_stop() { stop_pidfile "$RUN/fpm.pid" QUIT; rm -f "$RUN/fpm.sock"; }

fpm_worker_pids() { pgrep -P "$(cat "$RUN/fpm.pid")" || true; }

# http_get PATH COOKIE [TIMEOUT] -> "<status> <seconds> <body>"
http_get() {
  "$PY" "$E2E/load.py" --port "$E2E_PORT" --timeout "${3:-15}" get "$1" --cookie "$2"
}

# A fresh session id (letters and digits only).
new_sid() { printf 'e2e%s%04x%04x%04x%04x' "${1//[^a-zA-Z0-9]/}" $RANDOM $RANDOM $RANDOM $RANDOM; }

# Lines of the fpm log that show a worker dying, minus those of pids in $1
# (space separated, killed on purpose).
crash_lines() { # dir [expected pids]
  local expected=${2:-} line pid
  { grep -hE 'SIGSEGV|SIGBUS|SIGABRT|exited on signal|child [0-9]+ exited|core dumped' "$1/fpm.log" 2>/dev/null || true; } |
    while IFS= read -r line; do
      pid=$(sed -nE 's/.*child ([0-9]+) .*/\1/p' <<<"$line")
      if [ -n "$pid" ] && [[ " $expected " == *" $pid "* ]] && [[ "$line" == *"signal 9 (SIGKILL)"* ]]; then
        continue
      fi
      echo "$line"
    done
}

rsession_warning_lines() { grep -h 'rsession:' "$1/php-errors.log" "$1/fpm.log" 2>/dev/null || true; }
php_warning_lines() { grep -hE 'PHP (Warning|Notice|Fatal error|Parse error)' "$1/php-errors.log" 2>/dev/null || true; }

# Keeps logs small (a peer failing over can log 100 MB in seconds): a log
# over 5 MB keeps its first 2000 lines and a count of the rest, by kind.
shrink_logs() {
  local f n
  for f in "$1"/php-errors.log "$1"/fpm.log; do
    [ -f "$f" ] && [ "$(stat -c %s "$f")" -gt 5000000 ] || continue
    n=$(wc -l < "$f")
    {
      head -n 2000 "$f"
      echo "... $((n - 2000)) more lines cut by the harness; all $n lines by kind:"
      sed -E 's/^\[[^]]*\] //; s/0x[0-9a-f]+/0x…/g; s/e2e[a-z0-9_]+/<sid>/g' "$f" | cut -c1-200 | sort | uniq -c | sort -rn | head -20
    } > "$f.cut"
    mv "$f.cut" "$f"
  done
}

#!/usr/bin/env bash
# make bench, part 2: what users feel. nginx + php-fpm (pm=static) driven by
# wrk, requests spread over 512 sessions (1 KB changed per request); each
# handler and its peer alternately on the same servers, medians of
# BENCH_FPM_RUNS runs of BENCH_FPM_SECONDS each, at each worker count of
# BENCH_FPM_WORKERS (more workers than cores is how fpm is usually sized);
# two baselines on the same page: no session at all (the ceiling) and PHP's
# files handler. Figures only, never assertions.
# Usage: php/bench/fpm.sh librsession.so   (servers from tests/services.sh)
# Writes .run/bench/fpm/results.tsv and bench/fpm.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
SO=${1:?usage: $0 librsession.so}
ROOT=$PWD
OUT=$ROOT/.run/bench/fpm; rm -rf "$OUT"; mkdir -p "$OUT"
WORKERS=${BENCH_FPM_WORKERS:-8 32}
RUNS=${BENCH_FPM_RUNS:-3}
SECONDS_PER_RUN=${BENCH_FPM_SECONDS:-6}
CONNECTIONS=${BENCH_FPM_CONNECTIONS:-32}
PORT=${BENCH_FPM_PORT:-18080}
FPM=$(command -v php-fpm8.2 || echo /usr/sbin/php-fpm8.2)
TICK=$(getconf CLK_TCK)

# --- nginx: one instance for the whole run, in front of whichever pool runs.
mkdir -p "$OUT/nginx/logs" "$OUT/nginx/tmp"
cat > "$OUT/nginx/nginx.conf" <<EOF
user root;
worker_processes 1;
pid $OUT/nginx/nginx.pid;
error_log $OUT/nginx/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $OUT/nginx/tmp/body;
  fastcgi_temp_path $OUT/nginx/tmp/fastcgi;
  proxy_temp_path $OUT/nginx/tmp/proxy;
  uwsgi_temp_path $OUT/nginx/tmp/uwsgi;
  scgi_temp_path $OUT/nginx/tmp/scgi;
  # No keep-alive to php-fpm: a kept connection pins its fpm worker, and
  # requests queued behind it wait seconds (p99) while other workers idle.
  upstream fpm { server unix:$OUT/fpm.sock; }
  server {
    listen 127.0.0.1:$PORT;
    root $ROOT/php/bench/fpm;
    location ~ \.php\$ {
      include /etc/nginx/fastcgi_params;
      fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;
      fastcgi_pass fpm;
    }
  }
}
EOF
nginx -p "$OUT/nginx" -c "$OUT/nginx/nginx.conf"
FPM_PID=
stop_all() {
  [ -n "$FPM_PID" ] && { kill "$FPM_PID" 2>/dev/null || true; wait "$FPM_PID" 2>/dev/null || true; }
  [ -f "$OUT/nginx/nginx.pid" ] && kill "$(cat "$OUT/nginx/nginx.pid")" 2>/dev/null || true
}
trap stop_all EXIT

host_port() { local u=${1#*://}; u=${u%%\?*}; u=${u%%/*}; echo "$u"; }
REDIS_HP=$(host_port "${RSESSION_TEST_REDIS:?start tests/services.sh first}")
MC_HP=$(host_port "${RSESSION_TEST_MEMCACHED:?}")
REDIS_PID=$(cat .run/redis.pid)
MC_PID=$(cat ".run/memcached-${MC_HP##*:}.pid")

# handler LABEL -> "store-server-pid|php ini lines". The peers get locking
# on, so that every handler gives the same guarantee (phpredis 5.3's default
# is no locking); phpredis polls for a held lock every 2 ms, up to 1500 times.
declare -A SERVER INI
add() { SERVER[$1]=$2; INI[$1]=$3; }
add "no session"          ""          ""
# The floor: the session module with a handler that does no I/O.
add "session, no store"   ""          "auto_prepend_file=$ROOT/php/bench/fpm/null_handler.php"
add "PHP files"           ""          "session.save_handler=files
session.save_path=$OUT/sess-phpfiles"
add "rsession files"      ""          "extension=$SO
session.save_handler=rsession
session.save_path=$OUT/sess-rsfiles"
add "rsession redis"      "$REDIS_PID" "extension=$SO
session.save_handler=rsession
session.save_path=\"redis://$REDIS_HP?prefix=fpm-rs:\""
add "rsession redis, spin off" "$REDIS_PID" "extension=$SO
session.save_handler=rsession
rsession.spin_us=0
session.save_path=\"redis://$REDIS_HP?prefix=fpm-rs0:\""
add "phpredis"            "$REDIS_PID" "session.save_handler=redis
redis.session.locking_enabled=1
redis.session.lock_retries=1500
session.save_path=\"tcp://$REDIS_HP?prefix=fpm-phpredis:\""
add "rsession memcached"  "$MC_PID"    "extension=$SO
session.save_handler=rsession
session.save_path=\"memcached://$MC_HP?prefix=fpm-rs:\""
add "rsession memcached, spin off" "$MC_PID" "extension=$SO
session.save_handler=rsession
rsession.spin_us=0
session.save_path=\"memcached://$MC_HP?prefix=fpm-rs0:\""
add "php-memcached"       "$MC_PID"    "session.save_handler=memcached
memcached.sess_locking=1
memcached.sess_prefix=fpm-phpmc.
session.save_path=\"$MC_HP\""
# The 200 KB session (big.php) under each compression setting, and phpredis
# beside it (5.3 has no session compression setting; 6.0 added one).
for c in none lz4 zstd; do
  add "rsession redis, 200 KB, compress=$c" "$REDIS_PID" "extension=$SO
session.save_handler=rsession
session.save_path=\"redis://$REDIS_HP?prefix=fpm-big-$c:&compress=$c\""
done
add "phpredis, 200 KB" "$REDIS_PID" "session.save_handler=redis
redis.session.locking_enabled=1
redis.session.lock_retries=1500
session.save_path=\"tcp://$REDIS_HP?prefix=fpm-big-phpredis:\""

SMALL=("no session" "session, no store" "PHP files" "rsession files" "rsession redis" "rsession redis, spin off" "phpredis"
       "rsession memcached" "rsession memcached, spin off" "php-memcached")
BIG=("rsession redis, 200 KB, compress=none" "rsession redis, 200 KB, compress=lz4"
     "rsession redis, 200 KB, compress=zstd" "phpredis, 200 KB")
# BENCH_FPM_ONLY="label|label…" narrows the run to some handlers (the
# ceiling and the floor always run); BENCH_FPM_PERF=1 records perf profiles of php-fpm and
# the store server during each measured run (.run/bench/fpm/perf-*.data).
if [ -n "${BENCH_FPM_ONLY:-}" ]; then
  keep() { local l; for l in "$@"; do [[ "|$BENCH_FPM_ONLY|no session|session, no store|" == *"|$l|"* ]] && echo "$l"; done; true; }
  mapfile -t SMALL < <(keep "${SMALL[@]}"); mapfile -t BIG < <(keep "${BIG[@]}")
fi
PHPREDIS_COMPRESSION=$(php -r 'echo ini_get("redis.session.compression") === false ? "no" : "yes";')

# cpu_ticks PID...: user + system clock ticks of those processes so far.
cpu_ticks() {
  local t=0 p
  for p in "$@"; do
    [ -r "/proc/$p/stat" ] || continue
    t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  echo "$t"
}

start_fpm() { # label workers
  local label=$1 workers=$2 ini
  mkdir -p "$OUT/sess-phpfiles" "$OUT/sess-rsfiles"
  ini=$(printf '%s\n' "${INI[$label]}" | { grep . || true; } | sed 's/^extension=\(.*\)$/php_admin_value[extension] = \1/; t; s/^\([^=]*\)=\(.*\)$/php_admin_value[\1] = \2/')
  cat > "$OUT/fpm.conf" <<EOF
[global]
pid = $OUT/fpm.pid
error_log = $OUT/fpm.log
daemonize = no
[bench]
listen = $OUT/fpm.sock
listen.mode = 0666
pm = static
pm.max_children = $workers
pm.max_requests = 0
user = root
group = root
catch_workers_output = yes
php_admin_value[session.use_strict_mode] = 0
php_admin_value[session.gc_probability] = 0
php_admin_value[error_log] = $OUT/php-errors.log
EOF
  # extension= must come before the settings that need it: load it with -d.
  local ext=()
  grep -q '^php_admin_value\[extension\]' <<<"$ini" && ext=(-d "extension=$SO")
  grep -v '^php_admin_value\[extension\]' <<<"$ini" >> "$OUT/fpm.conf" || true
  rm -f "$OUT/fpm.sock"
  "$FPM" -R -F -y "$OUT/fpm.conf" "${ext[@]}" >> "$OUT/fpm.out" 2>&1 &
  FPM_PID=$!
  for _ in $(seq 1 200); do [ -S "$OUT/fpm.sock" ] && break; sleep 0.05; done
  [ -S "$OUT/fpm.sock" ] || { echo "php-fpm did not start: $(tail -5 "$OUT/fpm.log" 2>/dev/null)"; exit 1; }
}
stop_fpm() { kill "$FPM_PID"; wait "$FPM_PID" 2>/dev/null || true; FPM_PID=; }

json() { php -n -r '$j = json_decode($argv[2], true); echo $j[$argv[1]] ?? "-";' "$1" "$2"; }
record() { printf '%s\t%s\t%s\t%s\n' "$@" >> "$OUT/results.tsv"; }

run_one() { # label workers round page
  local label=$1 workers=$2 page=$3 pids server before after sbefore safter res
  start_fpm "$label" "$workers"
  server=${SERVER[$label]}
  BENCH_PAGE=$page wrk -t2 -c"$CONNECTIONS" -d1s -s php/bench/fpm/sessions.lua "http://127.0.0.1:$PORT" > /dev/null
  pids=$(pgrep -f "php-fpm: (pool bench|master process \\($OUT/fpm.conf\\))" | tr '\n' ' ')
  before=$(cpu_ticks $pids); sbefore=$(cpu_ticks $server)
  local perf_pid=
  if [ "${BENCH_FPM_PERF:-}" = 1 ]; then
    perf record -q -g -o "$OUT/perf-${label//[^a-z0-9]/_}-$workers.data" -p "$(tr ' ' ',' <<<"${pids% } ${server}" | sed 's/,$//')" \
      -- sleep "$SECONDS_PER_RUN" > /dev/null 2>&1 & perf_pid=$!
  fi
  res=$(BENCH_PAGE=$page wrk -t2 -c"$CONNECTIONS" -d"${SECONDS_PER_RUN}s" --timeout 10s -s php/bench/fpm/sessions.lua \
          "http://127.0.0.1:$PORT" | tail -1)
  after=$(cpu_ticks $pids); safter=$(cpu_ticks $server)
  [ -n "$perf_pid" ] && wait "$perf_pid"
  stop_fpm
  local n dur; n=$(json requests "$res"); dur=$(json duration_us "$res")
  local key="$label|$workers"
  RPS[$key]+="$(awk -v n="$n" -v d="$dur" 'BEGIN {printf "%.1f", n / d * 1e6}') "
  P50[$key]+="$(json p50_us "$res") "; P99[$key]+="$(json p99_us "$res") "
  FCPU[$key]+="$(awk -v t=$((after - before)) -v k="$TICK" -v n="$n" 'BEGIN {printf "%.1f", t / k * 1e6 / n}') "
  SCPU[$key]+="$([ -n "$server" ] && awk -v t=$((safter - sbefore)) -v k="$TICK" -v n="$n" 'BEGIN {printf "%.1f", t / k * 1e6 / n}' || echo -) "
  ERR[$key]=$(( ${ERR[$key]:-0} + $(json errors "$res") + $(json non2xx "$res") ))
}
median() { tr ' ' '\n' | grep -v '^-\?$' | sort -g | awk '{a[NR]=$1} END {if (!NR) print "-"; else print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

declare -A RPS P50 P99 FCPU SCPU ERR
echo "== php-fpm under nginx, wrk: $CONNECTIONS connections, 512 sessions, 1 KB changed per request; medians of $RUNS × ${SECONDS_PER_RUN} s"
for w in $WORKERS; do
  for r in $(seq "$RUNS"); do
    for label in "${SMALL[@]}"; do
      page=/page.php; [ "$label" = "no session" ] && page=/nosession.php
      run_one "$label" "$w" "$page"
    done
  done
done
BIG_WORKERS=${WORKERS%% *}
for r in $(seq "$RUNS"); do
  for label in ${BIG[@]+"${BIG[@]}"}; do run_one "$label" "$BIG_WORKERS" /big.php; done
done

# Bytes stored for one 200 KB session under each setting (redis-cli STRLEN
# of the data field for rsession, of the key for phpredis).
declare -A STORED
rcli() { redis-cli -h "${REDIS_HP%:*}" -p "${REDIS_HP##*:}" "$@"; }
for c in none lz4 zstd; do
  STORED["rsession redis, 200 KB, compress=$c"]=$(rcli HSTRLEN "fpm-big-$c:{fpmbench1}:s" d)
done
STORED["phpredis, 200 KB"]=$(rcli STRLEN "fpm-big-phpredis:fpmbench1")

{
  echo "## php-fpm under nginx (what users feel)"
  echo
  echo "Written by \`make bench\` (php/bench/fpm.sh) on $(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) cores."
  echo "nginx (1 worker) + php-fpm (pm=static, opcache as Debian ships it) + wrk (2 threads, $CONNECTIONS connections),"
  echo "requests spread at random over 512 sessions, each request changing 1 KB; the store servers on loopback."
  echo "Medians of $RUNS runs of ${SECONDS_PER_RUN} s, handlers alternating within each round. The peers lock"
  echo "(phpredis: \`redis.session.locking_enabled=1\`, polling every 2 ms; php-memcached: its default)."
  echo "*Overhead* is the time a request costs beyond the same page without a session:"
  echo "1e6/(req/s) − 1e6/(ceiling req/s), in µs of the whole machine. CPU columns: CPU time per request of"
  echo "all php-fpm processes and of the store server. *Over the floor* subtracts the overhead of \`session, no store\`"
  echo "(php/bench/fpm/null_handler.php: PHP's session module with a userland handler that does no I/O), which no"
  echo "save handler can take away: what is left is the handler's own cost. Shared, noisy VM: ±10–20%."
  for w in $WORKERS; do
    echo
    echo "### $w workers"
    echo
    echo "| handler | req/s | overhead µs/req | over the floor µs/req | p50 ms | p99 ms | php-fpm CPU µs/req | server CPU µs/req | errors |"
    echo "|---|--:|--:|--:|--:|--:|--:|--:|--:|"
    ceil=$(median <<<"${RPS["no session|$w"]}")
    floor=$(awk -v a="$(median <<<"${RPS["session, no store|$w"]}")" -v c="$ceil" 'BEGIN {printf "%.0f", 1e6 / a - 1e6 / c}')
    for label in "${SMALL[@]}"; do
      k="$label|$w"; rps=$(median <<<"${RPS[$k]}")
      over=$(awk -v a="$rps" -v c="$ceil" 'BEGIN {printf "%.0f", 1e6 / a - 1e6 / c}')
      beyond=$(awk -v o="$over" -v f="$floor" 'BEGIN {printf "%.0f", o - f}')
      [ "$label" = "session, no store" ] && beyond="(floor)"
      [ "$label" = "no session" ] && { over="(ceiling)"; beyond=-; }
      record "fpm$w" req_per_s "$label" "$rps"; record "fpm$w" overhead_us "$label" "$over"
      printf '| %s | %.0f | %s | %s | %.2f | %.2f | %s | %s | %s |\n' "$label" "$rps" "$over" "$beyond" \
        "$(awk -v v="$(median <<<"${P50[$k]}")" 'BEGIN {print v / 1000}')" \
        "$(awk -v v="$(median <<<"${P99[$k]}")" 'BEGIN {print v / 1000}')" \
        "$(median <<<"${FCPU[$k]}")" "$(median <<<"${SCPU[$k]}")" "${ERR[$k]}"
    done
  done
  if [ ${#BIG[@]} -gt 0 ]; then
  echo
  echo "### A 200 KB session (realistic \`serialize()\` output), $BIG_WORKERS workers"
  echo
  echo "phpredis $(php -r 'echo phpversion("redis");') has session compression: $PHPREDIS_COMPRESSION."
  echo
  echo "| handler | bytes stored | req/s | p50 ms | p99 ms | php-fpm CPU µs/req | server CPU µs/req | errors |"
  echo "|---|--:|--:|--:|--:|--:|--:|--:|"
  for label in ${BIG[@]+"${BIG[@]}"}; do
    k="$label|$BIG_WORKERS"; rps=$(median <<<"${RPS[$k]}")
    record "fpm-big" req_per_s "$label" "$rps"; record "fpm-big" bytes_stored "$label" "${STORED[$label]}"
    printf '| %s | %s | %.0f | %.2f | %.2f | %s | %s | %s |\n' "$label" "${STORED[$label]}" "$rps" \
      "$(awk -v v="$(median <<<"${P50[$k]}")" 'BEGIN {print v / 1000}')" \
      "$(awk -v v="$(median <<<"${P99[$k]}")" 'BEGIN {print v / 1000}')" \
      "$(median <<<"${FCPU[$k]}")" "$(median <<<"${SCPU[$k]}")" "${ERR[$k]}"
  done
  fi
} > "$OUT/fpm.md"
cat "$OUT/fpm.md"
cp "$OUT/fpm.md" bench/fpm.md

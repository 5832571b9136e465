#!/usr/bin/env bash
# A network store: rsession beside the peer handler it replaces, on the same
# server, alternating runs, medians. Needs the services of tests/services.sh.
# Usage: php/bench/store.sh path/to/librsession.so redis|memcached|pgsql|mysql [advisory|transactional]
# (the SQL stores' peer is php/bench/pdo_session.php, Symfony's
# PdoSessionHandler algorithm, in the locking mode given).
set -euo pipefail
cd "$(dirname "$0")/../.."
SO=${1:?usage: $0 librsession.so redis|memcached|pgsql|mysql [advisory|transactional]}
STORE=${2:?usage: $0 librsession.so redis|memcached|pgsql|mysql [advisory|transactional]}
PDO_MODE=${3:-advisory}
# The report's row: the SQL stores get one per peer mode, so that each peer
# is set beside rsession's figure from the same alternating runs.
LABEL=$STORE
[[ $STORE == pgsql || $STORE == mysql ]] && LABEL="$STORE/$PDO_MODE"
export RSESSION_SO=$SO
SECONDS_PER_RUN=${BENCH_SECONDS:-3}
ROUNDS=${BENCH_ROUNDS:-3}
OUT=.run/bench; mkdir -p "$OUT"

json() { php -n -r '$j = json_decode(stream_get_contents(STDIN), true); echo $j[$argv[1]] ?? "-";' "$1"; }
record() { printf '%s\t%s\t%s\t%s\n' "$@" >> "$OUT/results.tsv"; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

case "$STORE" in
  redis)
    : "${RSESSION_TEST_REDIS:?source .run/services.env first (make bench does)}"
    OURS_PATH="$RSESSION_TEST_REDIS?prefix=bench-%s:"
    PEER=phpredis
    SERVER=${RSESSION_TEST_REDIS#redis://}
    PEER_ARGS=(-d extension=igbinary -d extension=msgpack -d extension=redis -d session.save_handler=redis
               -d redis.session.locking_enabled=1 -d redis.session.lock_retries=100000)
    PEER_PATH="tcp://${RSESSION_TEST_REDIS#redis://}?prefix=bench-peer-%s:" ;;
  memcached)
    : "${RSESSION_TEST_MEMCACHED:?source .run/services.env first (make bench does)}"
    OURS_PATH="$RSESSION_TEST_MEMCACHED?prefix=bench-%s:"
    PEER=php-memcached
    SERVER=${RSESSION_TEST_MEMCACHED#memcached://}
    PEER_ARGS=(-d extension=igbinary -d extension=msgpack -d extension=memcached -d session.save_handler=memcached
               -d memcached.sess_locking=1 -d memcached.sess_lock_retries=100000 -d memcached.sess_prefix=bench-peer.)
    PEER_PATH="${RSESSION_TEST_MEMCACHED#memcached://}" ;;
  pgsql | mysql)
    var=RSESSION_TEST_${STORE^^}
    url=${!var:?source .run/services.env first (make bench does)}
    OURS_PATH="$url?prefix=bench-%s:"
    PEER="Symfony PDO $PDO_MODE"
    [ "$STORE" = pgsql ] && SERVER=$PWD/.run/pgsql/postmaster.pid || SERVER=$PWD/.run/mysql.pid
    # The same server, database and user for the peer.
    php -n -r '$u = parse_url($argv[1]);
      printf("export BENCH_PDO_DSN=%s BENCH_PDO_USER=%s BENCH_PDO_PASSWORD=%s BENCH_PDO_MODE=%s\n",
        escapeshellarg(sprintf("%s:host=%s;port=%d;dbname=%s", $u["scheme"], $u["host"], $u["port"], ltrim($u["path"], "/"))),
        escapeshellarg($u["user"]), escapeshellarg($u["pass"]), escapeshellarg($argv[2]));' "$url" "$PDO_MODE" > "$OUT/pdo.env"
    source "$OUT/pdo.env"
    # pdo_mysql needs mysqlnd loaded before it.
    PDO_EXT=(-d extension=pdo)
    [ "$STORE" = mysql ] && PDO_EXT+=(-d extension=mysqlnd)
    PDO_EXT+=(-d extension="pdo_$STORE")
    PEER_ARGS=("${PDO_EXT[@]}" -d auto_prepend_file="$PWD/php/bench/pdo_session.php")
    BENCH_PDO_CREATE=1 php -n "${PDO_EXT[@]}" php/bench/pdo_session.php
    PEER_PATH="unused-%s" ;;
  *) echo "unknown store $STORE" >&2; exit 2 ;;
esac
OURS=(-n -d extension="$SO" -d session.save_handler=rsession -d session.use_strict_mode=0)
PEER_ARGS=(-n "${PEER_ARGS[@]}" -d session.use_strict_mode=0)
ours_path() { printf "$OURS_PATH" "$1"; }
peer_path() { printf "$PEER_PATH" "$1"; }

server() { php -n php/bench/server_stats.php "$STORE" "$SERVER"; }
# cycles LABEL php-args...: one cycles.php run; prints its per-second figure
# and appends "client CPU µs, server CPU µs" per cycle to $OUT/cost-STORE-LABEL.
cycles() {
  local label=$1; shift
  local before after res
  before=$(server); res=$(php "$@" php/bench/cycles.php "$SECONDS_PER_RUN"); after=$(server)
  php -n -r '[$b, $a, $r] = array_map(fn ($j) => json_decode($j, true), array_slice($argv, 1));
    printf("%.1f %.1f\n", $r["client_cpu_us"], ($a["cpu_s"] - $b["cpu_s"]) / $r["cycles"] * 1e6);' \
    "$before" "$after" "$res" >> "$OUT/cost-$STORE-$label"
  json per_second <<<"$res"
}
col() { awk -v c="$1" '{print $c}' "$OUT/cost-$STORE-$2" | median; }

echo "== $STORE ($PEER): locked cycles/s in one process (start → change 1 KB → write_close), median of $ROUNDS alternating runs"
ours=(); peer=(); rm -f "$OUT/cost-$STORE-"*
for r in $(seq "$ROUNDS"); do
  ours+=("$(cycles ours "${OURS[@]}" -d "session.save_path=\"$(ours_path "c$r")\"")")
  peer+=("$(cycles peer "${PEER_ARGS[@]}" -d "session.save_path=\"$(peer_path "c$r")\"")")
done
o=$(printf '%s\n' "${ours[@]}" | median); p=$(printf '%s\n' "${peer[@]}" | median)
record "$LABEL" cycles_per_s rsession "$o"; record "$LABEL" cycles_per_s "$PEER" "$p"
printf '   rsession (%s): %8.0f/s\n   %-15s: %8.0f/s\n   ratio          : %8.2f\n' "$STORE" "$o" "$PEER" "$p" \
  "$(awk -v a="$o" -v b="$p" 'BEGIN {print a / b}')"
echo "   CPU per cycle (medians): of the PHP process, and of the $STORE server"
for who in ours peer; do
  label=$([ $who = ours ] && echo rsession || echo "$PEER")
  client_us=$(col 1 $who); server_us=$(col 2 $who)
  record "$LABEL" client_cpu_us "$label" "$client_us"; record "$LABEL" server_cpu_us "$label" "$server_us"
  printf '   %-15s: client %6.1f µs, server %6.1f µs\n' "$label" "$client_us" "$server_us"
done
echo

echo "== $STORE: lock handoff delay, 8 processes x 20 turns each holding the lock 20 ms; median over $ROUNDS alternating runs"
declare -A means
for r in $(seq "$ROUNDS"); do
  for h in rsession "$PEER"; do
    if [ "$h" = rsession ]; then args=("${OURS[@]}" -d "session.save_path=\"$(ours_path "h$r")\"")
    else args=("${PEER_ARGS[@]}" -d "session.save_path=\"$(peer_path "h$r")\""); fi
    res=$(php "${args[@]}" php/bench/handoff.php 8 20 20)
    means[$h]+="$(json mean_ms <<<"$res") "
    printf '   run %d %-13s mean %7.3f ms, median %7.3f ms, p95 %7.3f ms (%s handoffs, %s/%s turns)\n' "$r" "$h" \
      "$(json mean_ms <<<"$res")" "$(json median_ms <<<"$res")" "$(json p95_ms <<<"$res")" \
      "$(json handoffs <<<"$res")" "$(json turns <<<"$res")" "$(json expected <<<"$res")"
  done
done
for h in rsession "$PEER"; do
  m=$(tr ' ' '\n' <<<"${means[$h]}" | grep . | median)
  record "$LABEL" handoff_mean_ms "$h" "$m"
  printf '   %-13s median of the runs'"'"' means: %7.3f ms\n' "$h" "$m"
done
echo

if [[ $STORE == pgsql || $STORE == mysql ]] && [ "$PDO_MODE" = advisory ]; then
  echo "== $STORE: the least any locked cycle costs the server: each statement alone, back to back (php/bench/sql_floor.php)"
  while read -r line; do
    label=$(json statement <<<"$line"); wall=$(json wall_us <<<"$line"); cpu=$(json server_us <<<"$line")
    record "$STORE" floor.wall_us "$label" "$wall"; record "$STORE" floor.server_us "$label" "$cpu"
    printf '   %-40s %7.1f µs wall, %7.1f µs server CPU\n' "$label" "$wall" "$cpu"
  done < <(php -n "${PDO_EXT[@]}" php/bench/sql_floor.php "$STORE" "$url" "$SERVER")
  echo
fi

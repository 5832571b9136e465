#!/usr/bin/env bash
# Redis: rsession beside phpredis's handler (locking on), same redis-server,
# alternating runs, medians. Needs the services of tests/services.sh.
# Usage: php/bench/redis.sh path/to/librsession.so
set -euo pipefail
cd "$(dirname "$0")/../.."
SO=${1:?usage: $0 librsession.so}
export RSESSION_SO=$SO
: "${RSESSION_TEST_REDIS:?source .run/services.env first (make bench does)}"
SECONDS_PER_RUN=${BENCH_SECONDS:-3}
ROUNDS=${BENCH_ROUNDS:-3}
HOSTPORT=${RSESSION_TEST_REDIS#redis://}

json() { php -n -r '$j = json_decode(stream_get_contents(STDIN), true); echo $j[$argv[1]] ?? "-";' "$1"; }
OUT=.run/bench; mkdir -p "$OUT"
record() { printf '%s\t%s\t%s\t%s\n' "$@" >> "$OUT/results.tsv"; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

OURS=(-n -d extension="$SO" -d session.save_handler=rsession -d session.use_strict_mode=0)
PEER=(-n -d extension=igbinary -d extension=msgpack -d extension=redis -d session.save_handler=redis
      -d session.use_strict_mode=0 -d redis.session.locking_enabled=1 -d redis.session.lock_retries=100000)

echo "== redis: locked cycles/s in one process (start → change 1 KB → write_close), median of $ROUNDS alternating runs"
ours=(); peer=()
for r in $(seq "$ROUNDS"); do
  ours+=("$(php "${OURS[@]}" -d "session.save_path=\"$RSESSION_TEST_REDIS?prefix=bench-ours-$r:\"" \
            php/bench/cycles.php "$SECONDS_PER_RUN" | json per_second)")
  peer+=("$(php "${PEER[@]}" -d "session.save_path=\"tcp://$HOSTPORT?prefix=bench-peer-$r:\"" \
            php/bench/cycles.php "$SECONDS_PER_RUN" | json per_second)")
done
o=$(printf '%s\n' "${ours[@]}" | median); p=$(printf '%s\n' "${peer[@]}" | median)
record redis cycles_per_s rsession "$o"; record redis cycles_per_s phpredis "$p"
printf '   rsession (redis): %8.0f/s\n   phpredis        : %8.0f/s\n   ratio           : %8.2f\n\n' \
  "$o" "$p" "$(awk -v a="$o" -v b="$p" 'BEGIN {print a / b}')"

echo "== redis: lock handoff delay, 8 processes x 20 turns each holding the lock 20 ms"
for h in rsession phpredis; do
  if [ "$h" = rsession ]; then args=("${OURS[@]}" -d "session.save_path=\"$RSESSION_TEST_REDIS?prefix=bench-h:\"")
  else args=("${PEER[@]}" -d "session.save_path=\"tcp://$HOSTPORT?prefix=bench-hp:\""); fi
  res=$(php "${args[@]}" php/bench/handoff.php 8 20 20)
  record redis handoff_mean_ms "$h" "$(json mean_ms <<<"$res")"
  printf '   %-9s mean %7.3f ms, median %7.3f ms, p95 %7.3f ms (%s handoffs, %s/%s turns)\n' "$h" \
    "$(json mean_ms <<<"$res")" "$(json median_ms <<<"$res")" "$(json p95_ms <<<"$res")" \
    "$(json handoffs <<<"$res")" "$(json turns <<<"$res")" "$(json expected <<<"$res")"
done
echo

#!/usr/bin/env bash
# make bench: figures, never assertions. Every rsession figure is printed next
# to the peer it replaces, measured in the same run on the same machine.
# Usage: php/bench/run.sh path/to/librsession.so
set -euo pipefail
cd "$(dirname "$0")/../.."
SO=${1:?usage: $0 librsession.so}
export RSESSION_SO=$SO
OUT=.run/bench; rm -rf "$OUT"; mkdir -p "$OUT"
SECONDS_PER_RUN=${BENCH_SECONDS:-3}
ROUNDS=${BENCH_ROUNDS:-3}

json() { php -n -r '$j = json_decode(stream_get_contents(STDIN), true); echo $j[$argv[1]] ?? "-";' "$1"; }
# record STORE METRIC HANDLER VALUE: kept for the report (bench/report.md).
record() { printf '%s\t%s\t%s\t%s\n' "$@" >> "$OUT/results.tsv"; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

MACHINE="$(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -sr), PHP $(php -n -r 'echo PHP_VERSION;')"
echo "$MACHINE" > "$OUT/machine.txt"
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -sr), PHP $(php -n -r 'echo PHP_VERSION;')"
echo

echo "== files store: locked cycles/s in one process (start → change 1 KB → write_close), median of $ROUNDS alternating runs"
ours=(); peer=()
for r in $(seq "$ROUNDS"); do
  mkdir -p "$OUT/cyc-ours-$r" "$OUT/cyc-peer-$r"
  ours+=("$(php -n -d extension="$SO" -d session.save_handler=rsession -d session.save_path="$PWD/$OUT/cyc-ours-$r" \
            php/bench/cycles.php "$SECONDS_PER_RUN" | json per_second)")
  peer+=("$(php -n -d session.save_handler=files -d session.save_path="$PWD/$OUT/cyc-peer-$r" \
            php/bench/cycles.php "$SECONDS_PER_RUN" | json per_second)")
done
o=$(printf '%s\n' "${ours[@]}" | median); p=$(printf '%s\n' "${peer[@]}" | median)
record files cycles_per_s rsession "$o"; record files cycles_per_s "PHP files" "$p"
printf '   rsession (files): %8.0f/s\n   PHP files       : %8.0f/s\n   ratio           : %8.2f\n\n' "$o" "$p" "$(awk -v a="$o" -v b="$p" 'BEGIN {print a / b}')"

echo "== files store: lock handoff delay = from the moment the holder calls session_write_close() (data written,"
echo "   then lock released) to the moment a process already blocked in session_start() gets it back (hrtime)"
for spec in "2 100 5" "8 20 20"; do
  set -- $spec
  for h in rsession files; do
    dir="$OUT/handoff-$h-$1"; mkdir -p "$dir"
    ext=(); [ "$h" = rsession ] && ext=(-d extension="$SO")
    res=$(php -n "${ext[@]}" -d session.save_handler=$h -d session.save_path="$PWD/$dir" -d session.use_strict_mode=0 \
            php/bench/handoff.php "$1" "$2" "$3")
    [ "$1" = 8 ] && record files handoff_mean_ms "$([ "$h" = files ] && echo "PHP files" || echo rsession)" "$(json mean_ms <<<"$res")"
    printf '   %-9s %d processes x %3d turns holding %2d ms: mean %6.3f ms, median %6.3f ms, p95 %6.3f ms (%s handoffs, %s/%s turns)\n' \
      "$h" "$1" "$2" "$3" "$(json mean_ms <<<"$res")" "$(json median_ms <<<"$res")" "$(json p95_ms <<<"$res")" \
      "$(json handoffs <<<"$res")" "$(json turns <<<"$res")" "$(json expected <<<"$res")"
  done
done
echo

RSS_CYCLES=${BENCH_RSS_CYCLES:-100000}
echo "== memory: RSS of one process over $RSS_CYCLES locked cycles (after 1000 warm-up cycles)"
mkdir -p "$OUT/rss"
rss_row() { # label, php args...
  local label=$1; shift
  local res; res=$(php "$@" php/bench/rss.php "$RSS_CYCLES")
  printf '   %-18s %6s kB → %6s kB (growth %s kB)\n' "$label" "$(json rss_before_kb <<<"$res")" \
    "$(json rss_after_kb <<<"$res")" "$(json growth_kb <<<"$res")"
}
rss_row "rsession (files)" -n -d extension="$SO" -d session.save_handler=rsession -d session.use_strict_mode=0 \
  -d session.save_path="$PWD/$OUT/rss"
if [ -n "${RSESSION_TEST_REDIS:-}" ]; then
  rss_row "rsession (redis)" -n -d extension="$SO" -d session.save_handler=rsession -d session.use_strict_mode=0 \
    -d "session.save_path=\"$RSESSION_TEST_REDIS?prefix=bench-rss:\""
fi
echo

for store in redis memcached; do
  var=RSESSION_TEST_${store^^}
  if [ -n "${!var:-}" ]; then php/bench/store.sh "$SO" "$store"; fi
done

php -n php/bench/report.php "$OUT" bench
echo "report: bench/report.md, chart: bench/chart.svg"

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
# BENCH_STORES narrows the run to some stores (files redis memcached pgsql
# mysql), cluster (a private Redis Cluster: php/bench/cluster.sh),
# writethrough (memcached | pgsql beside each alone and a userland
# write-through handler: php/bench/writethrough.sh) and fpm (php-fpm under
# nginx: php/bench/fpm.sh).
ALL_STORES="files redis memcached pgsql mysql cluster writethrough fpm"
BENCH_STORES=${BENCH_STORES:-$ALL_STORES}
want() { [[ " $BENCH_STORES " == *" $1 "* ]]; }
# A narrowed run keeps the other stores' figures of the last run
# (bench/results.tsv), so bench/report.md still shows every store.
if [ "$BENCH_STORES" != "$ALL_STORES" ] && [ -f bench/results.tsv ]; then
  while IFS=$'\t' read -r store rest; do
    want "${store%%/*}" || printf '%s\t%s\n' "$store" "$rest" >> "$OUT/results.tsv"
  done < bench/results.tsv
  echo "$BENCH_STORES" > "$OUT/measured.txt"
fi

json() { php -n -r '$j = json_decode(stream_get_contents(STDIN), true); echo $j[$argv[1]] ?? "-";' "$1"; }
# record STORE METRIC HANDLER VALUE: kept for the report (bench/report.md).
record() { printf '%s\t%s\t%s\t%s\n' "$@" >> "$OUT/results.tsv"; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

MACHINE="$(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -sr), PHP $(php -n -r 'echo PHP_VERSION;')"
echo "$MACHINE" > "$OUT/machine.txt"
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -sr), PHP $(php -n -r 'echo PHP_VERSION;')"
echo

if want files; then
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
declare -A means
handoff_run() { # handler procs turns hold_ms label
  local dir="$OUT/handoff-$1-$2-${5// /}" ext=() res
  mkdir -p "$dir"
  [ "$1" = rsession ] && ext=(-d extension="$SO")
  res=$(php -n "${ext[@]}" -d session.save_handler=$1 -d session.save_path="$PWD/$dir" -d session.use_strict_mode=0 \
          php/bench/handoff.php "$2" "$3" "$4")
  [ "$2" = 8 ] && means[$1]+="$(json mean_ms <<<"$res") "
  printf '   %-6s %-9s %d processes x %3d turns holding %2d ms: mean %6.3f ms, median %6.3f ms, p95 %6.3f ms (%s handoffs, %s/%s turns)\n' \
    "$5" "$1" "$2" "$3" "$4" "$(json mean_ms <<<"$res")" "$(json median_ms <<<"$res")" "$(json p95_ms <<<"$res")" \
    "$(json handoffs <<<"$res")" "$(json turns <<<"$res")" "$(json expected <<<"$res")"
}
for h in rsession files; do handoff_run "$h" 2 100 5 ""; done
for r in $(seq "$ROUNDS"); do
  for h in rsession files; do handoff_run "$h" 8 20 20 "run $r"; done
done
for h in rsession files; do
  m=$(tr ' ' '\n' <<<"${means[$h]}" | grep . | median)
  record files handoff_mean_ms "$([ "$h" = files ] && echo "PHP files" || echo rsession)" "$m"
  printf '   %-9s 8 processes, median of the runs'"'"' means: %6.3f ms\n' "$h" "$m"
done
echo
fi

RSS_CYCLES=${BENCH_RSS_CYCLES:-100000}
echo "== memory: RSS of one process over $RSS_CYCLES locked cycles (after 1000 warm-up cycles)"
mkdir -p "$OUT/rss"
rss_row() { # label, store, php args...
  local label=$1 store=$2; shift 2
  local res; res=$(php "$@" php/bench/rss.php "$RSS_CYCLES")
  record "$store" rss "$RSS_CYCLES" "$(json rss_before_kb <<<"$res") $(json rss_after_kb <<<"$res")"
  printf '   %-18s %6s kB → %6s kB (growth %s kB)\n' "$label" "$(json rss_before_kb <<<"$res")" \
    "$(json rss_after_kb <<<"$res")" "$(json growth_kb <<<"$res")"
}
want files && rss_row "rsession (files)" files -n -d extension="$SO" -d session.save_handler=rsession -d session.use_strict_mode=0 \
  -d session.save_path="$PWD/$OUT/rss"
if want redis && [ -n "${RSESSION_TEST_REDIS:-}" ]; then
  rss_row "rsession (redis)" redis -n -d extension="$SO" -d session.save_handler=rsession -d session.use_strict_mode=0 \
    -d "session.save_path=\"$RSESSION_TEST_REDIS?prefix=bench-rss:\""
fi
if want memcached && [ -n "${RSESSION_TEST_MEMCACHED:-}" ]; then
  rss_row "rsession (memcached)" memcached -n -d extension="$SO" -d session.save_handler=rsession -d session.use_strict_mode=0 \
    -d "session.save_path=\"$RSESSION_TEST_MEMCACHED?prefix=bench-rss:\""
fi
for store in pgsql mysql; do
  var=RSESSION_TEST_${store^^}
  if want $store && [ -n "${!var:-}" ]; then
    rss_row "rsession ($store)" "$store" -n -d extension="$SO" -d session.save_handler=rsession -d session.use_strict_mode=0 \
      -d "session.save_path=\"${!var}?prefix=bench-rss:\""
  fi
done
echo

for store in redis memcached pgsql mysql; do
  var=RSESSION_TEST_${store^^}
  if want $store && [ -n "${!var:-}" ]; then php/bench/store.sh "$SO" "$store"; fi
  # Symfony's other locking mode, its default.
  if want $store && [ -n "${!var:-}" ] && [[ $store == pgsql || $store == mysql ]]; then
    php/bench/store.sh "$SO" "$store" transactional
  fi
done

REGISTRY_SIZES=${BENCH_REGISTRY_SIZES:-10000 100000}
echo "== session registry: one user's 10 sessions among N sessions of N/10 users, 500 users sampled per figure"
printf '   %-10s %7s  %-24s %-24s %12s %10s\n' store sessions "user_sessions() med/p99" "kill_user_sessions() med/p99" kill_all fill/s
for store in files redis memcached pgsql mysql; do
  want $store || continue
  case $store in
    files) base= ;;
    redis) base=${RSESSION_TEST_REDIS:-} ;;
    memcached) base=${RSESSION_TEST_MEMCACHED:-} ;;
    pgsql) base=${RSESSION_TEST_PGSQL:-} ;;
    mysql) base=${RSESSION_TEST_MYSQL:-} ;;
  esac
  [ "$store" != files ] && [ -z "$base" ] && continue
  for n in $REGISTRY_SIZES; do
    if [ "$store" = files ]; then path="$PWD/$OUT/registry-$n"; rm -rf "$path"; mkdir -p "$path"
    else path="$base?prefix=bench-reg$n:"; fi
    res=$(php -n -d extension="$SO" -d session.save_handler=rsession -d session.use_strict_mode=0 \
            -d session.gc_probability=0 -d "session.save_path=\"$path\"" php/bench/registry.php "$n" 500)
    get() { php -n -r '$j = json_decode(stream_get_contents(STDIN), true); foreach (explode(".", $argv[1]) as $k) $j = $j[$k]; echo $j;' "$1" <<<"$res"; }
    for m in user_sessions.median_ms user_sessions.p99_ms kill_user_sessions.median_ms kill_user_sessions.p99_ms kill_all_ms; do
      record "$store" "registry.$m" "$n" "$(get "$m")"
    done
    printf '   %-10s %7d  %8.3f / %8.3f ms      %8.3f / %8.3f ms      %9.3f ms %10.0f\n' "$store" "$n" \
      "$(get user_sessions.median_ms)" "$(get user_sessions.p99_ms)" "$(get kill_user_sessions.median_ms)" \
      "$(get kill_user_sessions.p99_ms)" "$(get kill_all_ms)" "$(get fill_per_second)"
    [ "$store" = files ] && rm -rf "$path"
  done
done
echo

want cluster && php/bench/cluster.sh "$SO"
if want writethrough && [ -n "${RSESSION_TEST_MEMCACHED:-}" ] && [ -n "${RSESSION_TEST_PGSQL:-}" ]; then
  php/bench/writethrough.sh "$SO"
fi
want fpm && php/bench/fpm.sh "$SO"

php -n php/bench/report.php "$OUT" bench
cp "$OUT/results.tsv" bench/results.tsv
echo "report: bench/report.md, chart: bench/chart.svg"

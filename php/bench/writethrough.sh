#!/usr/bin/env bash
# Write-through (`memcached | pgsql`): locked cycles/s beside each member
# alone and beside the hand-written userland handler of the blog posts
# (php/bench/userland_wt.php); the writes PostgreSQL itself counted for
# read-mostly traffic; the increments each loses with 8 processes at once.
# Same servers (tests/services.sh), same run, alternating, medians.
# Usage: php/bench/writethrough.sh path/to/librsession.so
set -euo pipefail
cd "$(dirname "$0")/../.."
SO=${1:?usage: $0 librsession.so}
SECONDS_PER_RUN=${BENCH_SECONDS:-3}
ROUNDS=${BENCH_ROUNDS:-3}
SESSIONS=${BENCH_WT_SESSIONS:-50}
CHANGE_EVERY=${BENCH_WT_CHANGE_EVERY:-20}
OUT=.run/bench; mkdir -p "$OUT"
# In every session id: the database outlives a run, and an old counter must
# not be counted again.
RUN=$(date +%s)
MC=${RSESSION_TEST_MEMCACHED:?source .run/services.env first (make bench does)}
PG=${RSESSION_TEST_PGSQL:?source .run/services.env first (make bench does)}

json() { php -n -r '$j = json_decode(stream_get_contents(STDIN), true); echo $j[$argv[1]] ?? "-";' "$1"; }
record() { printf '%s\t%s\t%s\t%s\n' "$@" >> "$OUT/results.tsv"; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

# The userland handler and the statistics reader reach the same database
# as rsession, through PDO.
php -n -r '$u = parse_url($argv[1]);
  printf("export BENCH_PDO_DSN=%s BENCH_PDO_USER=%s BENCH_PDO_PASSWORD=%s\n",
    escapeshellarg(sprintf("pgsql:host=%s;port=%d;dbname=%s", $u["host"], $u["port"], ltrim($u["path"], "/"))),
    escapeshellarg($u["user"]), escapeshellarg($u["pass"]));' "$PG" > "$OUT/pdo-wt.env"
source "$OUT/pdo-wt.env"
export BENCH_MEMCACHED=${MC#memcached://} BENCH_WT_TABLE=bench_userland
PDO=(-n -d extension=pdo -d extension=pdo_pgsql)
USERLAND_EXT=("${PDO[@]}" -d extension=igbinary -d extension=msgpack -d extension=memcached)
USERLAND=("${USERLAND_EXT[@]}" -d auto_prepend_file="$PWD/php/bench/userland_wt.php" -d session.use_strict_mode=0
          -d session.gc_probability=0)
OURS=(-n -d extension="$SO" -d session.save_handler=rsession -d session.use_strict_mode=0 -d session.gc_probability=0)
# Its table: the handler file run once by itself, to create it.
BENCH_WT_CREATE=1 php "${USERLAND_EXT[@]}" php/bench/userland_wt.php

# Each variant's tables: its own, so that PostgreSQL's counters are its alone.
# path_of VARIANT TAG LAZY_TOUCH_S
path_of() {
  case $1 in
    wt) echo "$MC?prefix=bench-wt-$2: | $PG?prefix=bench-wt-$2:&table=bench_wt&lazy_touch_s=$3" ;;
    wt-store) echo "$PG?prefix=bench-wt-$2:&table=bench_wt&lazy_touch_s=$3" ;;
    pgsql) echo "$PG?prefix=bench-wtpg-$2:&table=bench_wtpg&lazy_touch_s=$3" ;;
    memcached) echo "$MC?prefix=bench-wtmc-$2:" ;;
  esac
}
# run VARIANT TAG LAZY_TOUCH_S script args...: one PHP process of that variant.
run() {
  local v=$1 tag=$2 lazy=$3; shift 3
  if [ "$v" = userland ]; then php "${USERLAND[@]}" "$@"
  else php "${OURS[@]}" -d "session.save_path=\"$(path_of "$v" "$tag" "$lazy")\"" "$@"; fi
}
tables_of() {
  case $1 in
    wt) echo "bench_wt bench_wt_holders" ;;
    pgsql) echo "bench_wtpg bench_wtpg_holders" ;;
    userland) echo "bench_userland -" ;;
  esac
}
declare -A LABEL=([wt]="rsession memcached + pgsql" [pgsql]="rsession pgsql alone" [memcached]="rsession memcached alone"
                  [userland]="userland write-through (no lock)")

echo "== write-through: locked cycles/s in one process (start → change 1 KB → write_close), median of $ROUNDS alternating runs"
declare -A runs med
VARIANTS="wt pgsql memcached userland"
for r in $(seq "$ROUNDS"); do
  for v in $VARIANTS; do
    res=$(run "$v" "c$r" 60 php/bench/cycles.php "$SECONDS_PER_RUN")
    x=$(json per_second <<<"$res" 2>/dev/null || true)
    [[ $x =~ ^[0-9.]+$ ]] || { echo "writethrough.sh: ${LABEL[$v]}: cycles.php failed: $res" >&2; exit 1; }
    runs[$v]+="$x "
  done
done
for v in $VARIANTS; do
  med[$v]=$(tr ' ' '\n' <<<"${runs[$v]}" | grep . | median)
  # The composed store is the report's "rsession" column; the others its peers.
  record writethrough cycles_per_s "$([ "$v" = wt ] && echo rsession || echo "${LABEL[$v]}")" "${med[$v]}"
  printf '   %-34s: %8.0f/s\n' "${LABEL[$v]}" "${med[$v]}"
done
echo "   (the userland handler takes no lock: its cycles are not locked ones)"
echo

echo "== write-through: rows PostgreSQL wrote (pg_stat_user_tables) for read-mostly traffic: $SESSIONS sessions in turn,"
echo "   1 request in $CHANGE_EVERY changing the data, the sessions created beforehand (not counted); goal for the data table:"
echo "   ≤ the requests that changed data + 1 per lazy window per session"
printf '   %-34s %-18s %7s %7s %7s %11s %13s %11s %9s\n' variant "" requests changed seconds "data writes" "holder writes" "data scans" goal
# writes REQUESTS LAZY_TOUCH_S
writes() {
  local n=$1 lazy=$2 v tag data holders before after res
  for v in wt pgsql userland; do
    tag="$RUN-$n-$lazy-$v"
    read -r data holders < <(tables_of "$v")
    run "$v" "$tag" "$lazy" php/bench/read_mostly.php create "$tag" "$SESSIONS" >/dev/null
    before=$(php "${PDO[@]}" php/bench/pg_table_writes.php "$data" "$holders")
    res=$(run "$v" "$tag" "$lazy" php/bench/read_mostly.php run "$tag" "$SESSIONS" "$n" "$CHANGE_EVERY")
    after=$(php "${PDO[@]}" php/bench/pg_table_writes.php "$data" "$holders")
    # The goal: a lazy window is lazy_touch_s (under half the 1440 s
    # timeout); the userland handler never records an unchanged access.
    php -n -r '[$b, $a, $r] = array_map(fn ($j) => json_decode($j, true), array_slice($argv, 1, 3));
      [, , , , $data, $holders, $lazy, $sessions, $userland] = $argv;
      $d = fn (string $t, string $k) => $a[$t][$k] - $b[$t][$k];
      $goal = $userland ? $r["changed"] : $r["changed"] + $sessions * (floor($r["seconds"] / $lazy) + 1);
      printf("%d %d %.3f %d %d %d %d\n", $r["requests"], $r["changed"], $r["seconds"], $d($data, "writes"),
        $d($holders, "writes"), $d($data, "scans"), $goal);' \
      "$before" "$after" "$res" "$data" "$holders" "$lazy" "$SESSIONS" "$([ "$v" = userland ] && echo 1 || echo 0)" \
      > "$OUT/wt-writes"
    read -r req chg sec dw hw sc goal < "$OUT/wt-writes"
    local label="${LABEL[$v]}, lazy_touch_s=$lazy"
    [ "$v" = userland ] && label="${LABEL[$v]}"
    for k in requests:$req changed:$chg seconds:$sec data_writes:$dw holder_writes:$hw data_scans:$sc goal:$goal; do
      record writethrough "wtwrites.${k%%:*}" "$label, $n requests" "${k#*:}"
    done
    printf '   %-34s %-18s %7d %7d %7.2f %11d %13s %11d %9s\n' "${LABEL[$v]}" \
      "$([ "$v" = userland ] && echo "" || echo "lazy_touch_s=$lazy")" "$req" "$chg" "$sec" "$dw" \
      "$([ "$holders" = - ] && echo - || echo "$hw")" "$sc" "$([ "$v" = userland ] && echo - || echo "≤ $goal")"
  done
}
writes 1000 60
writes "${BENCH_WT_SHORT_REQUESTS:-10000}" 1
echo

LOOPS=40 PROCS=8 PAUSE_US=1000
echo "== write-through: $PROCS processes at once x $LOOPS increments of one session's counter (each holding it ${PAUSE_US} µs),"
echo "   the counter then read from PostgreSQL; $ROUNDS alternating runs"
declare -A lost
for r in $(seq "$ROUNDS"); do
  for v in wt userland; do
    id="benchinc$RUN$v$r"
    pids=()
    for c in $(seq "$PROCS"); do
      run "$v" inc 60 php/bench/increment.php "$id" "$LOOPS" "$PAUSE_US" > "$OUT/wt-inc-$c" 2>> "$OUT/wt-inc-warnings" &
      pids+=($!)
    done
    wait "${pids[@]}"
    read -r written failed < <(cat "$OUT"/wt-inc-[0-9]* | awk '{ok += $2; fail += $4} END {print ok + 0, fail + 0}')
    if [ "$v" = wt ]; then
      stored=$(php "${OURS[@]}" -d "session.save_path=\"$(path_of wt-store inc 60)\"" \
                 -r "session_id('$id'); session_start(); echo \$_SESSION['n'] ?? 0; session_abort();")
    else
      stored=$(php "${PDO[@]}" -r '$p = new PDO(getenv("BENCH_PDO_DSN"), getenv("BENCH_PDO_USER"), getenv("BENCH_PDO_PASSWORD"));
        $s = $p->prepare("SELECT data FROM bench_userland WHERE id = ?"); $s->execute([$argv[1]]); $d = $s->fetchColumn();
        echo preg_match("/n\\|i:(\\d+);/", is_resource($d) ? stream_get_contents($d) : (string) $d, $m) ? $m[1] : 0;' "$id")
    fi
    lost[$v]+="$((PROCS * LOOPS - stored)) "
    printf '   run %d %-34s %3d stored of %d (%d lost; the processes reported %d written, %d failed)\n' "$r" "${LABEL[$v]}" \
      "$stored" "$((PROCS * LOOPS))" "$((PROCS * LOOPS - stored))" "$written" "$failed"
  done
done
for v in wt userland; do
  l=$(tr ' ' '\n' <<<"${lost[$v]}" | grep .)
  record writethrough wtinc.lost_median "${LABEL[$v]}" "$(median <<<"$l")"
  record writethrough wtinc.lost_min "${LABEL[$v]}" "$(sort -g <<<"$l" | head -n1)"
  record writethrough wtinc.lost_max "${LABEL[$v]}" "$(sort -g <<<"$l" | tail -n1)"
  printf '   %-34s lost of %d: median %s (runs: %s)\n' "${LABEL[$v]}" "$((PROCS * LOOPS))" "$(median <<<"$l")" "$(echo $l)"
done
record writethrough wtinc.expected "$PROCS processes x $LOOPS increments" "$((PROCS * LOOPS))"
echo

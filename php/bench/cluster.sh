#!/usr/bin/env bash
# Redis Cluster: rsession on a private 3-master + 3-replica cluster beside
# phpredis's `rediscluster` session handler on the same cluster, rsession
# on one node (a private redis-server), and rsession with wait_replicas=1;
# the lock handoff delay and the registry on the cluster. The cluster is
# started by tests/services.sh (start-cluster) on BENCH_CLUSTER_PORTS under
# .run/bench/services, and stopped at the end.
# Usage: php/bench/cluster.sh path/to/librsession.so
set -euo pipefail
cd "$(dirname "$0")/../.."
SO=${1:?usage: $0 librsession.so}
SECONDS_PER_RUN=${BENCH_SECONDS:-3}
ROUNDS=${BENCH_ROUNDS:-3}
OUT=.run/bench; mkdir -p "$OUT"
CLUSTER_PORTS=${BENCH_CLUSTER_PORTS:-29001 29002 29003 29004 29005 29006}
SINGLE_PORT=${BENCH_CLUSTER_SINGLE_PORT:-29000}
SIZES=${BENCH_CLUSTER_REGISTRY_SIZES:-100000}
SVC=$PWD/$OUT/services

json() { php -n -r '$j = json_decode(stream_get_contents(STDIN), true); echo $j[$argv[1]] ?? "-";' "$1"; }
record() { printf '%s\t%s\t%s\t%s\n' "$@" >> "$OUT/results.tsv"; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

cluster() { RSESSION_RUN_DIR=$SVC RSESSION_CLUSTER_PORTS="$CLUSTER_PORTS" tests/services.sh "$1-cluster"; }
stop_all() {
  cluster stop >/dev/null 2>&1 || true
  [ -f "$SVC/single.pid" ] && kill "$(cat "$SVC/single.pid")" 2>/dev/null || true
}
trap stop_all EXIT
mkdir -p "$SVC"
cluster start
redis-server --port "$SINGLE_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
  --pidfile "$SVC/single.pid" --logfile "$SVC/single.log" --dir "$SVC"
for _ in $(seq 1 100); do redis-cli -p "$SINGLE_PORT" ping >/dev/null 2>&1 && break; sleep 0.05; done

seeds=$(printf '127.0.0.1:%s,' $CLUSTER_PORTS); seeds=${seeds%,}
peer_seeds=$(printf 'seed[]=127.0.0.1:%s&' $CLUSTER_PORTS); peer_seeds=${peer_seeds%&}
OURS=(-n -d extension="$SO" -d session.save_handler=rsession -d session.use_strict_mode=0)
# phpredis 5.3.7's rediscluster handler has no lock (its functions never
# read redis.session.locking_enabled): the setting is given all the same,
# and the figure is that of unlocked cycles.
PEER=(-n -d extension=igbinary -d extension=msgpack -d extension=redis -d session.save_handler=rediscluster
      -d redis.session.locking_enabled=1 -d redis.session.lock_retries=100000 -d session.use_strict_mode=0)
path_of() { # variant tag
  case $1 in
    cluster) echo "redis-cluster://$seeds?prefix=bench-$2:" ;;
    wait1) echo "redis-cluster://$seeds?prefix=bench-$2:&wait_replicas=1" ;;
    single) echo "redis://127.0.0.1:$SINGLE_PORT?prefix=bench-$2:" ;;
    peer) echo "$peer_seeds&prefix=bench-peer-$2:" ;;
  esac
}
args_of() { [ "$1" = peer ] && printf '%s\n' "${PEER[@]}" || printf '%s\n' "${OURS[@]}"; }

echo "== Redis Cluster (3 masters + 3 replicas): locked cycles/s in one process (start → change 1 KB → write_close), median of $ROUNDS alternating runs"
declare -A runs
VARIANTS="cluster peer single wait1"
for r in $(seq "$ROUNDS"); do
  for v in $VARIANTS; do
    mapfile -t a < <(args_of "$v")
    runs[$v]+="$(php "${a[@]}" -d "session.save_path=\"$(path_of "$v" "c$r")\"" php/bench/cycles.php "$SECONDS_PER_RUN" | json per_second) "
  done
done
declare -A med
for v in $VARIANTS; do med[$v]=$(tr ' ' '\n' <<<"${runs[$v]}" | grep . | median); done
record cluster cycles_per_s rsession "${med[cluster]}"
record cluster cycles_per_s "phpredis rediscluster (no lock)" "${med[peer]}"
record cluster cycles_per_s "rsession, one node" "${med[single]}"
record cluster cycles_per_s "rsession, wait_replicas=1" "${med[wait1]}"
printf '   rsession (cluster)               : %8.0f/s\n' "${med[cluster]}"
printf '   phpredis rediscluster (no lock)  : %8.0f/s\n' "${med[peer]}"
printf '   rsession (one node)              : %8.0f/s\n' "${med[single]}"
printf '   rsession (cluster, wait_replicas=1): %6.0f/s\n\n' "${med[wait1]}"

echo "== Redis Cluster: lock handoff delay, 8 processes x 20 turns each holding the lock 20 ms; median over $ROUNDS alternating runs"
# Beside one node: the rediscluster handler does not lock, so it has no handoff.
declare -A means
for r in $(seq "$ROUNDS"); do
  for v in cluster single; do
    res=$(php "${OURS[@]}" -d "session.save_path=\"$(path_of "$v" "h$r")\"" php/bench/handoff.php 8 20 20)
    means[$v]+="$(json mean_ms <<<"$res") "
    printf '   run %d %-8s mean %7.3f ms, median %7.3f ms, p95 %7.3f ms (%s handoffs, %s/%s turns)\n' "$r" "$v" \
      "$(json mean_ms <<<"$res")" "$(json median_ms <<<"$res")" "$(json p95_ms <<<"$res")" \
      "$(json handoffs <<<"$res")" "$(json turns <<<"$res")" "$(json expected <<<"$res")"
  done
done
for v in cluster single; do
  m=$(tr ' ' '\n' <<<"${means[$v]}" | grep . | median)
  record cluster handoff_mean_ms "$([ $v = cluster ] && echo rsession || echo "rsession, one node")" "$m"
  printf '   %-8s median of the runs'"'"' means: %7.3f ms\n' "$v" "$m"
done
echo

echo "== Redis Cluster: session registry, one user's 10 sessions among N sessions of N/10 users, 500 users sampled"
for n in $SIZES; do
  res=$(php "${OURS[@]}" -d session.gc_probability=0 -d "session.save_path=\"$(path_of cluster "reg$n")\"" \
          php/bench/registry.php "$n" 500)
  get() { php -n -r '$j = json_decode(stream_get_contents(STDIN), true); foreach (explode(".", $argv[1]) as $k) $j = $j[$k]; echo $j;' "$1" <<<"$res"; }
  for k in user_sessions.median_ms user_sessions.p99_ms kill_user_sessions.median_ms kill_user_sessions.p99_ms kill_all_ms; do
    record cluster "registry.$k" "$n" "$(get "$k")"
  done
  printf '   cluster %7d  user_sessions() %8.3f / %8.3f ms, kill_user_sessions() %8.3f / %8.3f ms, kill_all %9.3f ms, fill %6.0f/s\n' \
    "$n" "$(get user_sessions.median_ms)" "$(get user_sessions.p99_ms)" "$(get kill_user_sessions.median_ms)" \
    "$(get kill_user_sessions.p99_ms)" "$(get kill_all_ms)" "$(get fill_per_second)"
done
echo

#!/usr/bin/env bash
# Runs the phpt suites against the built extension with PHP's run-tests.php.
#
#   tests/phpt/session   session-function behaviour every handler must share:
#                        run on rsession (each store) AND on PHP's stock
#                        `files`, with the same expected output.
#   tests/phpt/rsession  rsession's own behaviour (locks, INI, class, ...).
#   tests/phpt/registry  users, timeouts, kills, read-only: on every store.
#                        (with the php/bin/rsession admin tool).
#   tests/phpt/redis     the Redis store: on one server, on the cluster and
#                        behind Sentinel (RSESSION_REDIS_URL).
#   tests/phpt/redis-failover  masters killed under load (cluster, Sentinel):
#                        last, as it changes which servers are masters.
#
# -n keeps the machine's php.ini out; extensions are given explicitly.
# Usage: tests/run-phpt.sh path/to/librsession.so [suite-filter]
set -uo pipefail
cd "$(dirname "$0")/.."
SO=${1:?usage: $0 librsession.so}
FILTER=${2:-}
PHP_BIN=$(command -v php)
RUN_TESTS=$(ls /usr/lib/php/*/build/run-tests.php | head -n1)
OUT=$PWD/.run/phpt
rm -rf "$OUT"; mkdir -p "$OUT"
export RSESSION_EXT=$SO
total_pass=0; total_fail=0; total_skip=0; failed_suites=()

# suite LABEL DIR [php -d settings...]; RSESSION_SAVE_PATH_TEMPLATE from env.
suite() {
  local label=$1 dir=$2; shift 2
  [ -n "$FILTER" ] && [[ "$label" != *"$FILTER"* ]] && return 0
  echo "== $label"
  local results="$OUT/${label//[^a-z0-9]/_}.txt"
  NO_INTERACTION=1 TEST_PHP_EXECUTABLE=$PHP_BIN "$PHP_BIN" -n "$RUN_TESTS" -q -n -p "$PHP_BIN" \
    -j2 --show-diff "${VG[@]}" -W "$results" "$@" "$dir" > "$OUT/${label//[^a-z0-9]/_}.log" 2>&1
  local pass fail skip
  pass=$(grep -c '^PASS' "$results" || true)
  fail=$(grep -cE '^(FAIL|BORK|LEAK)' "$results" || true)
  skip=$(grep -c '^SKIP' "$results" || true)
  echo "   $pass passed, $fail failed, $skip skipped"
  if [ "$fail" -gt 0 ] || [ "$pass" -eq 0 ]; then
    failed_suites+=("$label")
    grep -E '^(FAIL|BORK|LEAK)' "$results" | sed 's/^/   /'
    sed -n '/^=====.*DIFF/,/^=====/p;/^--$/,/^--$/p' "$OUT/${label//[^a-z0-9]/_}.log" | head -200
  fi
  total_pass=$((total_pass + pass)); total_fail=$((total_fail + fail)); total_skip=$((total_skip + skip))
}

EXT=(-d "extension=$SO")
# RSESSION_VALGRIND=1 (make test-valgrind): every PHP process under memcheck;
# invalid accesses and definite leaks make a test fail (LEAK).
VG=()
if [ "${RSESSION_VALGRIND:-}" = 1 ]; then
  VG=(-m -d pcre.jit=0)   # PCRE's JIT code is opaque to memcheck: false alarms
  export USE_ZEND_ALLOC=0 ZEND_DONT_UNLOAD_MODULES=1
  # Servers the tests start are not ours to check, nor is the demo's
  # `php -S` (stopped by a signal, it never runs PHP's shutdown, so all its
  # startup allocations would show as leaks).
  export VALGRIND_OPTS="--leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite --trace-children-skip=*/memcached,*/redis-server,*/sh,*/kill,*/openssl --trace-children-skip-by-arg=-S --suppressions=$PWD/tests/valgrind.supp"
fi

RSESSION_SAVE_PATH_TEMPLATE= suite "session on rsession/files" tests/phpt/session "${EXT[@]}" -d session.save_handler=rsession
RSESSION_SAVE_PATH_TEMPLATE= suite "session on stock files" tests/phpt/session -d session.save_handler=files
RSESSION_SAVE_PATH_TEMPLATE= suite "rsession on files" tests/phpt/rsession "${EXT[@]}" -d session.save_handler=rsession
RSESSION_SAVE_PATH_TEMPLATE= suite "registry on files" tests/phpt/registry "${EXT[@]}" -d session.save_handler=rsession
# network_store NAME [QUERY]: the shared session suite and tests/phpt/NAME on
# the server whose address tests/services.sh put in RSESSION_TEST_<NAME> (and
# for a Redis cluster or Sentinel set, tests/phpt/redis on it too); QUERY is
# added to the shared suites' save path.
network_store() {
  local var="RSESSION_TEST_${1^^}" extra=${2:-}
  var=${var//-/_}
  if [ -z "${!var:-}" ]; then
    echo "$var is not set: run via make test (it starts the servers)"; failed_suites+=("$1 (no server)")
    return
  fi
  local template="${!var}?prefix=phpt:{test}:$extra"
  [[ ${!var} == *'?'* ]] && template="${!var}&prefix=phpt:{test}:$extra"
  RSESSION_SAVE_PATH_TEMPLATE=$template \
    suite "session on rsession/$1" tests/phpt/session "${EXT[@]}" -d session.save_handler=rsession
  suite "rsession on $1" "tests/phpt/$1" "${EXT[@]}" -d session.save_handler=rsession
  RSESSION_SAVE_PATH_TEMPLATE=$template \
    suite "registry on $1" tests/phpt/registry "${EXT[@]}" -d session.save_handler=rsession
  if [[ $1 == redis-* ]]; then
    RSESSION_REDIS_URL=${!var} suite "redis on $1" tests/phpt/redis "${EXT[@]}" -d session.save_handler=rsession
  fi
}
network_store redis
network_store redis-cluster
network_store redis-sentinel
network_store memcached
# The shared suites time sessions out within seconds; the SQL stores' lazy
# window (60 s by default, see README) would stretch those timeouts, so
# they run with a 1 s window. tests/phpt/pgsql and mysql run the default.
network_store pgsql "&lazy_touch_s=1"
network_store mysql "&lazy_touch_s=1"
# write_through LABEL CACHE STORE_TEMPLATE [SUITES]: the shared suites
# (default: session and registry) on `CACHE | STORE` (the cache from
# RSESSION_TEST_<CACHE>, with the test's prefix; STORE_TEMPLATE names the
# durable store, `{test}` replaced).
write_through() {
  local label=$1 var="RSESSION_TEST_${2^^}" store=$3 suites=${4:-session registry}
  var=${var//-/_}
  if [ -z "${!var:-}" ]; then
    echo "$var is not set: run via make test (it starts the servers)"; failed_suites+=("$label (no server)")
    return
  fi
  local cache="${!var}?prefix=phpt:{test}:"
  [[ ${!var} == *'?'* ]] && cache="${!var}&prefix=phpt:{test}:"
  [[ " $suites " == *" session "* ]] && RSESSION_SAVE_PATH_TEMPLATE="$cache | $store" \
    suite "session on rsession/$label" tests/phpt/session "${EXT[@]}" -d session.save_handler=rsession
  [[ " $suites " == *" registry "* ]] && RSESSION_SAVE_PATH_TEMPLATE="$cache | $store" \
    suite "registry on $label" tests/phpt/registry "${EXT[@]}" -d session.save_handler=rsession
  return 0
}
# lazy_touch_s=1 for the shared suites' second-long timeouts, as above.
write_through "memcached|pgsql" memcached "${RSESSION_TEST_PGSQL:-}?prefix=phpt:{test}:&lazy_touch_s=1"
write_through "redis|mysql" redis "${RSESSION_TEST_MYSQL:-}?prefix=phpt:{test}:&lazy_touch_s=1"
# (A query on the directory, so that a test's added keys go to it.)
write_through "redis|files" redis "${TMPDIR:-/tmp}/rsession-phpt/wt-{test}?compress=none"
write_through "memcached|files" memcached "${TMPDIR:-/tmp}/rsession-phpt/wt-{test}?compress=none"
# A cluster cache: its keys spread over the masters, the lock in the slot's.
write_through "redis-cluster|pgsql" redis-cluster "${RSESSION_TEST_PGSQL:-}?prefix=phpt:{test}:&lazy_touch_s=1" session
# tests/phpt/write-through: consistency under faults (its own servers).
suite "write-through" tests/phpt/write-through "${EXT[@]}" -d session.save_handler=rsession
# tests/phpt/sql: what both SQL stores share, once on each.
for db in pgsql mysql; do
  RSESSION_SQL=$db suite "sql on $db" tests/phpt/sql "${EXT[@]}" -d session.save_handler=rsession
done
# Last and alone: these kill servers.
suite "redis-failover" tests/phpt/redis-failover "${EXT[@]}" -d session.save_handler=rsession

echo
echo "phpt: $total_pass passed, $total_fail failed, $total_skip skipped"
[ ${#failed_suites[@]} -eq 0 ] || { echo "failed suites: ${failed_suites[*]}"; exit 1; }

#!/usr/bin/env bash
# End-to-end soak of rsession under nginx + php-fpm (issue 6).
#
#   tests/e2e/soak.sh            run every handler, then the fault scenarios
#   tests/e2e/soak.sh serve NAME start nginx + php-fpm for handler NAME and
#                                wait (Ctrl-C stops them); poke it with curl
#
# Environment: E2E_HANDLERS (space separated, default: all known),
# E2E_FAULTS (default: all), E2E_DURATION (s per handler, default 12),
# E2E_CONNS (default 32), E2E_SESSIONS (default 4), E2E_PORT (18380),
# E2E_REDIS_PORT (26379), E2E_MEMCACHED_PORTS ("31211 31212").
#
# Writes .run/e2e/report.md (also printed). Exit status: 0 when every
# rsession handler kept every increment, no worker crashed and no rsession
# warning appeared that the scenario did not provoke; 1 otherwise; 2 when
# the harness itself could not run.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
E2E=$ROOT/tests/e2e
RUN=$ROOT/.run/e2e
# shellcheck source=tests/e2e/lib.sh
source "$E2E/lib.sh"
# shellcheck source=tests/e2e/handlers.sh
source "$E2E/handlers.sh"
# shellcheck source=tests/e2e/faults.sh
source "$E2E/faults.sh"

E2E_HANDLERS=${E2E_HANDLERS-$E2E_HANDLERS_DEFAULT}
E2E_FAULTS=${E2E_FAULTS-$E2E_FAULTS_DEFAULT}
E2E_DURATION=${E2E_DURATION:-12}
E2E_CONNS=${E2E_CONNS:-32}
E2E_SESSIONS=${E2E_SESSIONS:-4}
E2E_MIX=${E2E_MIX:-inc:83,slow:2,ro:15}
export E2E_HANDLERS E2E_FAULTS E2E_DURATION E2E_CONNS E2E_SESSIONS E2E_MIX E2E_WORKERS E2E_LOCK_WAIT_MS

# ------------------------------------------------------------ preparation
prepare() {
  # Packages: what the harness itself runs. The system services these
  # packages may start are stopped again; we run private instances.
  local pkgs=(php8.2-cli php8.2-fpm nginx-light python3 redis-server memcached
              php8.2-redis php8.2-memcached php8.2-igbinary php8.2-msgpack
              postgresql mariadb-server) fresh=() p
  for p in php8.2-fpm nginx-light; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || fresh+=("$p")
  done
  ./tests/deps.sh "${pkgs[@]}"
  for p in "${fresh[@]}"; do
    case $p in
      php8.2-fpm) service php8.2-fpm stop >/dev/null 2>&1 || true ;;
      nginx-light) service nginx stop >/dev/null 2>&1 || true ;;
    esac
  done
  command -v "$PHP_FPM" >/dev/null || die "$PHP_FPM not found"

  [ -f target/release/librsession.so ] || cargo build --release
  # Leftovers of an interrupted run: its servers and mounts.
  fpm_stop; nginx_stop; services_stop; faults_cleanup
  rm -rf "$RUN"
  mkdir -p "$RUN/tmp" "$RUN/results"
  # A private copy: a rebuild during the soak must not swap the library
  # under running workers.
  SO=$RUN/librsession.so
  cp target/release/librsession.so "$SO"
  STORES=$("$PHP" -n -d "extension=$SO" -r 'phpinfo(INFO_MODULES);' | sed -n 's/^stores => //p' | tr -d ' ')
  [ -n "$STORES" ] || die "cannot read the stores row of rsession's phpinfo"
  log "rsession $(sha256sum "$SO" | cut -c1-12), stores: $STORES"
  printf '%s\n' "$STORES" > "$RUN/stores"
}

has_store() { [[ ",$STORES," == *",$1,"* ]]; }

# Why handler $1 cannot run here, or nothing.
skip_reason() {
  local need
  for need in $(handler_needs "$1"); do
    case $need in
      store:*) has_store "${need#store:}" || { echo "rsession store '${need#store:}' not compiled in (stores: $STORES)"; return; } ;;
    esac
  done
}

needs_service() { # handler service
  [[ " $(handler_needs "$1") " == *" service:$2 "* ]]
}

write_skip() { # file name kind reason
  "$PY" - "$@" <<'PY'
import json, sys
f, name, kind, reason = sys.argv[1:5]
json.dump({"name": name, "kind": kind, "status": "skipped", "reason": reason}, open(f, "w"))
PY
}

# --------------------------------------------------------- one handler run
run_handler() {
  local name=$1 kind dir reason sids=() i sid line
  kind=$(handler_kind "$name")
  dir=$RUN/$name
  reason=$(skip_reason "$name")
  if [ -n "$reason" ]; then
    log "$name: skipped: $reason"
    write_skip "$RUN/results/handler-$name.json" "$name" "$kind" "$reason"
    return 0
  fi
  rm -rf "$dir"
  mkdir -p "$dir"
  fpm_start "$dir" "$(handler_ini "$name" "$dir")"
  for ((i = 0; i < E2E_SESSIONS; i++)); do sids+=("$(new_sid "$name")"); done
  log "$name: ${E2E_DURATION}s, $E2E_CONNS connections on ${#sids[@]} sessions, mix $E2E_MIX"
  "$PY" "$E2E/load.py" --port "$E2E_PORT" --timeout 30 run \
    --sessions "$(IFS=,; echo "${sids[*]}")" --conns "$E2E_CONNS" \
    --duration "$E2E_DURATION" --mix "$E2E_MIX" --out "$dir/load.json"
  : > "$dir/counts.txt"
  for sid in "${sids[@]}"; do
    line=$(http_get /count.php "$sid")
    echo "$sid $line" >> "$dir/counts.txt"
  done
  # Logs are judged while the workers still run (a shutdown logs its own
  # child exits).
  sleep 0.2
  crash_lines "$dir" > "$dir/crashes.txt"
  local expected
  expected=$(handler_expected_warnings "$name")
  rsession_warning_lines "$dir" > "$dir/rsession-warnings-all.txt"
  if [ -n "$expected" ]; then
    grep -Ec "$expected" "$dir/rsession-warnings-all.txt" > "$dir/rsession-warnings-expected.txt" || true
    grep -Ev "$expected" "$dir/rsession-warnings-all.txt" > "$dir/rsession-warnings.txt" || true
  else
    cp "$dir/rsession-warnings-all.txt" "$dir/rsession-warnings.txt"
  fi
  php_warning_lines "$dir" > "$dir/php-warnings.txt"
  fpm_stop
  shrink_logs "$dir"
  "$PY" "$E2E/report.py" handler "$dir" "$name" "$kind" "$(handler_note "$name")" \
    > "$RUN/results/handler-$name.json"
}

cleanup() {
  local rc=$?
  set +e
  [ -n "${SLEEPER:-}" ] && kill "$SLEEPER" 2>/dev/null
  faults_cleanup
  fpm_stop
  nginx_stop
  services_stop
  exit "$rc"
}

main() {
  prepare
  trap cleanup EXIT
  trap 'exit 130' INT TERM
  local h need_redis=0 need_mc=0
  E2E_NEED_SQL="" E2E_NEED_REDIS_SETS=""
  for h in $E2E_HANDLERS $(faults_handlers); do
    [ -n "$(skip_reason "$h")" ] && continue
    needs_service "$h" redis && need_redis=1
    needs_service "$h" memcached && need_mc=1
    needs_service "$h" pgsql && [[ $E2E_NEED_SQL != *pgsql* ]] && E2E_NEED_SQL+=" pgsql"
    needs_service "$h" mysql && [[ $E2E_NEED_SQL != *mysql* ]] && E2E_NEED_SQL+=" mysql"
    needs_service "$h" cluster && [[ $E2E_NEED_REDIS_SETS != *cluster* ]] && E2E_NEED_REDIS_SETS+=" cluster"
    needs_service "$h" sentinel && [[ $E2E_NEED_REDIS_SETS != *sentinel* ]] && E2E_NEED_REDIS_SETS+=" sentinel"
  done
  if [ $need_redis = 1 ] || [ $need_mc = 1 ] || [ -n "$E2E_NEED_SQL$E2E_NEED_REDIS_SETS" ]; then services_start; fi
  nginx_start
  local t0=$SECONDS
  for h in $E2E_HANDLERS; do run_handler "$h"; done
  run_faults
  log "done in $((SECONDS - t0)) s"
  local rc=0
  "$PY" "$E2E/report.py" report "$RUN" > "$RUN/report.md" || rc=$?
  cat "$RUN/report.md"
  # A full run (every handler, every scenario) is the one worth keeping.
  if [ "$(echo $E2E_HANDLERS)" = "$(echo $E2E_HANDLERS_DEFAULT)" ] && [ "$(echo $E2E_FAULTS)" = "$(echo $E2E_FAULTS_DEFAULT)" ]; then
    cp "$RUN/report.md" "$ROOT/bench/soak-report.md"
    log "report kept in bench/soak-report.md"
  fi
  return $rc
}

serve() {
  local name=${1:?usage: soak.sh serve HANDLER}
  prepare
  trap cleanup EXIT
  trap 'exit 0' INT TERM
  [ -z "$(skip_reason "$name")" ] || die "$name: $(skip_reason "$name")"
  E2E_NEED_SQL=""
  needs_service "$name" pgsql && E2E_NEED_SQL=pgsql
  needs_service "$name" mysql && E2E_NEED_SQL=mysql
  E2E_NEED_REDIS_SETS=""
  needs_service "$name" cluster && E2E_NEED_REDIS_SETS=cluster
  needs_service "$name" sentinel && E2E_NEED_REDIS_SETS=sentinel
  if needs_service "$name" redis || needs_service "$name" memcached || [ -n "$E2E_NEED_SQL$E2E_NEED_REDIS_SETS" ]; then services_start; fi
  nginx_start
  fpm_start "$RUN/$name" "$(handler_ini "$name" "$RUN/$name")"
  log "serving $name on http://127.0.0.1:$E2E_PORT/{inc,slow,ro,count}.php (Ctrl-C stops)"
  sleep infinity &
  SLEEPER=$!
  wait "$SLEEPER"
}

case ${1:-soak} in
  soak) main ;;
  serve) serve "${2:-}" ;;
  *) echo "usage: $0 [soak | serve HANDLER]" >&2; exit 2 ;;
esac

# Fault scenarios of the end-to-end harness; sourced by soak.sh.
#
# Scenarios: kill9 (SIGKILL the worker holding a session's lock), killload
# (SIGKILL random workers under load), fulldisk (files store on a full
# tmpfs), restart (stop and restart the network server mid-load), evict
# (memcached full, evicting sessions under load).
# Each scenario is `fault_<kind> HANDLER` and writes one JSON result to
# $RUN/results/fault-<kind>-<handler>.json through `fault_result`:
#   verdict pass | fail | skipped | reported (a peer's known weakness)
# E2E_FAULTS lists "<kind>:<handler>" pairs. A scenario on an rsession
# store that is not compiled in is skipped, so the redis/memcached cases
# run as soon as those stores land.

E2E_FAULTS_DEFAULT="kill9:rsession-files kill9:files killload:rsession-files killload:files
  fulldisk:rsession-files fulldisk:files
  kill9:rsession-redis killload:rsession-redis restart:rsession-redis restart:phpredis
  kill9:rsession-memcached killload:rsession-memcached restart:rsession-memcached restart:php-memcached
  evict:rsession-memcached evict:php-memcached
  kill9:rsession-pgsql killload:rsession-pgsql restart:rsession-pgsql
  kill9:rsession-mysql killload:rsession-mysql restart:rsession-mysql"
# A master SIGKILLed under load, its replica promoted (by the cluster or by
# Sentinel), the killed node started again as a replica.
E2E_FAULTS_DEFAULT+=" failover:rsession-redis-cluster failover:rsession-redis-sentinel"
# Write-through (memcached | pgsql): the cache stopped and started again, or
# flushed under load, must cost nothing (the store is the truth).
E2E_FAULTS_DEFAULT+=" kill9:rsession-writethrough killload:rsession-writethrough restart:rsession-writethrough evict:rsession-writethrough"
# Lease used by the kill -9 scenario on network stores (files: the kernel
# frees the lock at once).
E2E_FAULT_LOCK_TTL_MS=${E2E_FAULT_LOCK_TTL_MS:-2000}

faults_handlers() { local f; for f in $E2E_FAULTS; do echo "${f#*:}"; done; }

run_faults() {
  local f kind name
  for f in $E2E_FAULTS; do
    kind=${f%%:*} name=${f#*:}
    declare -F "fault_$kind" >/dev/null || die "unknown fault scenario $kind"
    local reason
    reason=$(skip_reason "$name")
    if [ -n "$reason" ]; then
      log "fault $kind on $name: skipped: $reason"
      fault_result "$kind" "$name" skipped "$reason" "" ""
      continue
    fi
    "fault_$kind" "$name"
  done
}

# fault_result KIND HANDLER VERDICT DETAIL CRASH_FILE RSESSION_WARNINGS_FILE
fault_result() {
  "$PY" - "$RUN/results/fault-$1-$2.json" "$@" <<'PY'
import json, sys
out, kind, name, verdict, detail, crashes, warns = sys.argv[1:8]
def lines(p):
    try:
        return [l.rstrip("\n") for l in open(p) if l.strip()] if p else []
    except OSError:
        return []
json.dump({"kind": kind, "name": name, "verdict": verdict, "detail": detail,
           "crashes": lines(crashes), "unexpected_warnings": lines(warns)}, open(out, "w"))
PY
}

# fault_setup KIND NAME: sets the caller's $kind (of handler NAME) and an
# empty $dir for the scenario's files.
fault_setup() {
  kind=$(handler_kind "$2")
  dir=$RUN/fault-$1-$2
  rm -rf "$dir"; mkdir -p "$dir"
  log "fault $1 on $2"
}

# fault_judge KIND NAME DIR VERDICT DETAIL: the verdict as recorded. A
# peer's failure is reported, not judged; a crash (DIR/crashes.txt) or an
# rsession warning the scenario did not provoke (DIR/unexpected-warnings.txt)
# fails any handler.
fault_judge() {
  local verdict=$4
  [ "$(handler_kind "$2")" != rsession ] && [ "$verdict" = fail ] && verdict=reported
  [ -s "$3/crashes.txt" ] && verdict=fail
  [ -s "$3/unexpected-warnings.txt" ] && verdict=fail
  log "fault $1 on $2: $verdict: $5"
  fault_result "$1" "$2" "$verdict" "$5" "$3/crashes.txt" "$3/unexpected-warnings.txt"
}

# A scenario that could not get going: recorded as failed, workers stopped.
fault_abort() { # kind name dir detail
  log "fault $1 on $2: fail: $4"
  sleep 0.2
  crash_lines "$3" > "$3/crashes.txt"
  rsession_warning_lines "$3" > "$3/unexpected-warnings.txt"
  fpm_stop
  shrink_logs "$3"
  fault_result "$1" "$2" fail "$4" "$3/crashes.txt" "$3/unexpected-warnings.txt"
}

# The sessions' final counters, read into DIR/counts.txt (before fpm_stop).
read_counts() { # dir sid...
  local dir=$1 sid
  shift
  : > "$dir/counts.txt"
  for sid in "$@"; do echo "$sid $(http_get /count.php "$sid")" >> "$dir/counts.txt"; done
}

# A run judged by its counters: DIR/load.json and counts.txt through
# report.py into DIR/result.json; prints "pass|…" or "fail|…": every
# increment answered OK is in the counter, nothing more is than the
# requests of unknown fate (UNKNOWN says why there are any), no duplicate
# value, no client timeout.
counts_line() { # dir name kind unknown
  "$PY" "$E2E/report.py" handler "$1" "$2" "$3" "" > "$1/result.json"
  "$PY" - "$1/result.json" "$4" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
timeouts = r["error_kinds"].get("timeout", 0)
ok = not (r["lost"] or r["phantom"] or r["duplicates"] or r["count_errors"] or timeouts)
print(("pass" if ok else "fail") + "|" +
      f"{r['writes_ok']} increments OK, {r['unknown']} of unknown fate ({sys.argv[2]}), {r['errors']} errors; "
      f"lost {r['lost']}, phantom {r['phantom']}, duplicate values {r['duplicates']}; "
      f"client timeouts {timeouts}; write p99 {r['write_p99_ms']} ms")
PY
}

lock_info_json() { # dir sid -> JSON of RSession\lock_info() with that handler's php.ini
  PHP_INI_SCAN_DIR= "$PHP" -c "$1/php.ini" -d error_log= -d log_errors=0 -d display_errors=stderr \
    -r 'echo json_encode(RSession\lock_info($argv[1])), "\n";' "$2" 2>&1 | tail -1
}

# ------------------------------------------------------------------ kill -9
# A worker holding the session's lock (in /hold.php) is killed with
# SIGKILL; the next request on that session must proceed promptly: files
# at once (the kernel frees the flock), network stores within the lease.
fault_kill9() {
  local name=$1 kind dir sid marker pidf pid i r status secs body bound verdict detail li
  fault_setup kill9 "$name"
  fpm_start "$dir" "$(handler_ini "$name" "$dir")
rsession.lock_ttl_ms = $E2E_FAULT_LOCK_TTL_MS"
  sid=$(new_sid k9)
  marker=k9$RANDOM$RANDOM
  pidf=$RUN/tmp/rsession-e2e-$marker.pid
  r=$(http_get /inc.php "$sid")
  if [[ $r != "200 "*" OK $sid 1" ]]; then fault_abort kill9 "$name" "$dir" "first increment failed: $r"; return; fi
  http_get "/hold.php?marker=$marker&ms=30000" "$sid" 40 > "$dir/hold.out" 2>&1 &
  local client=$!
  for ((i = 0; i < 100; i++)); do [ -s "$pidf" ] && break; sleep 0.05; done
  if [ ! -s "$pidf" ]; then
    kill "$client" 2>/dev/null; fault_abort kill9 "$name" "$dir" "/hold.php never took the session"; return
  fi
  pid=$(tr -d '\n' < "$pidf")
  li=""
  if [ "$kind" = rsession ]; then
    li=$(lock_info_json "$dir" "$sid")
    echo "lock_info before kill: $li" >> "$dir/detail.txt"
  fi
  kill -KILL "$pid"
  r=$(http_get /inc.php "$sid" 30)
  echo "next request: $r" >> "$dir/detail.txt"
  wait "$client" || true
  echo "held request: $(cat "$dir/hold.out")" >> "$dir/detail.txt"
  read -r status secs body <<<"$r"
  case $name in
    # files: the kernel frees the flock; SQL: the server frees the lock
    # when the connection drops.
    rsession-files | files | rsession-pgsql | rsession-mysql) bound=1.0 ;;
    *) bound=$(awk -v t="$E2E_FAULT_LOCK_TTL_MS" 'BEGIN { print t / 1000 + 1.5 }') ;;
  esac
  verdict=pass
  detail="killed worker $pid holding the lock; next request: HTTP $status in ${secs}s (bound ${bound}s), body '$body'"
  if [ "$status" != 200 ] || [ "$body" != "OK $sid 2" ]; then
    verdict=fail; detail+="; expected 'OK $sid 2' (the killed request never wrote)"
  elif awk -v s="$secs" -v b="$bound" 'BEGIN { exit !(s > b) }'; then
    verdict=fail; detail+="; too slow"
  fi
  if [ "$kind" = rsession ]; then
    if [[ $li != *"\"pid\":$pid"* ]]; then
      verdict=fail; detail+="; lock_info() before the kill did not name pid $pid: $li"
    fi
    li=$(lock_info_json "$dir" "$sid")
    if [ "$li" != null ]; then
      verdict=fail; detail+="; lock_info() after the next request: $li (expected null)"
    fi
  fi
  sleep 0.2
  crash_lines "$dir" "$pid" > "$dir/crashes.txt"
  grep -q "child $pid exited on signal 9" "$dir/fpm.log" || detail+="; (fpm log does not show the kill of $pid)"
  rsession_warning_lines "$dir" > "$dir/unexpected-warnings.txt"
  fpm_stop
  shrink_logs "$dir"
  fault_judge kill9 "$name" "$dir" "$verdict" "$detail"
}

# ---------------------------------------------------------------- full disk
# The files store on a 1 MB tmpfs: fill it, then a write must fail with a
# clear rsession: warning and leave the old data intact; after space is
# freed, writes work again and no temporary file is left behind.
FAULT_MOUNTS=()

faults_cleanup() {
  local m
  for m in "${FAULT_MOUNTS[@]}"; do
    mountpoint -q "$m" 2>/dev/null && umount "$m" 2>/dev/null
  done
  # Mounts left by an interrupted earlier run.
  if [ -d "$RUN" ]; then
    awk -v r="$RUN/" 'index($2, r) == 1 { print $2 }' /proc/mounts | while read -r m; do umount "$m" 2>/dev/null || true; done
  fi
  return 0
}

fault_fulldisk() {
  local name=$1 kind dir mnt sid r r1 r2 r3 r4 verdict detail expected
  kind=$(handler_kind "$name")
  case $name in
    rsession-files | files) ;;
    *) fault_result fulldisk "$name" skipped "a files-store scenario" "" ""; return ;;
  esac
  dir=$RUN/fault-fulldisk-$name
  mnt=$dir/mnt
  rm -rf "$dir"; mkdir -p "$mnt"
  log "fault fulldisk on $name"
  if ! mount -t tmpfs -o size=1m,mode=0700 "e2e-fulldisk" "$mnt" 2>"$dir/mount.err"; then
    fault_result fulldisk "$name" skipped "cannot mount a tmpfs: $(cat "$dir/mount.err")" "" ""
    return
  fi
  FAULT_MOUNTS+=("$mnt")
  mkdir -p "$mnt/sessions"
  fpm_start "$dir" "$(handler_ini "$name" "$dir")
session.save_path = \"$mnt/sessions\"
session.gc_probability = 0"
  sid=$(new_sid fd)
  r=$(http_get "/inc.php?pad=3000" "$sid"); r=$(http_get "/inc.php?pad=3000" "$sid")
  if [[ $r != "200 "*" OK $sid 2" ]]; then
    fault_abort fulldisk "$name" "$dir" "setup increments failed: $r"; umount "$mnt" 2>/dev/null; return
  fi
  # Fill every free block.
  dd if=/dev/zero of="$mnt/filler" bs=4k 2>/dev/null || true
  echo "df after fill: $(df -k "$mnt" | tail -1)" >> "$dir/detail.txt"
  r1=$(http_get "/inc.php?pad=9000" "$sid")         # must fail: no space
  r2=$(http_get /count.php "$sid")                  # old data, disk still full
  rm -f "$mnt/filler"
  r3=$(http_get /count.php "$sid")                  # old data, space back
  r4=$(http_get /inc.php "$sid")                    # writes work again
  printf 'write on full disk: %s\ncount while full: %s\ncount after freeing: %s\nwrite after freeing: %s\n' \
    "$r1" "$r2" "$r3" "$r4" >> "$dir/detail.txt"
  ls -A "$mnt/sessions" > "$dir/leftovers.txt"
  sleep 0.2
  crash_lines "$dir" > "$dir/crashes.txt"
  rsession_warning_lines "$dir" > "$dir/rsession-warnings.txt"
  fpm_stop
  umount "$mnt" 2>/dev/null || true
  # Provoked: the failed write's warning (one, naming the lack of space).
  expected='rsession: .*(No space left|ENOSPC|disk full)'
  grep -Ev "$expected" "$dir/rsession-warnings.txt" > "$dir/unexpected-warnings.txt" || true
  local wline
  wline=$(grep -Em1 "$expected" "$dir/rsession-warnings.txt" || true)
  verdict=pass
  detail="write on full disk: '${r1#* * }' (HTTP ${r1%% *}); count while full: '${r2#* * }', after freeing: '${r3#* * }'; next write: '${r4#* * }'"
  [[ $r2 == "200 "*" COUNT $sid 2" && $r3 == "200 "*" COUNT $sid 2" ]] || { verdict=fail; detail+="; OLD DATA NOT INTACT"; }
  if [[ $r4 != "200 "*" OK $sid "* ]]; then
    verdict=fail; detail+="; no recovery after freeing space"
  elif [[ $r4 != "200 "*" OK $sid 3" ]]; then
    verdict=fail; detail+="; the next write did not build on the old data"
  fi
  if [ "$kind" = rsession ]; then
    [[ $r1 == "500 "*"FAIL write" ]] || { verdict=fail; detail+="; the write did not fail loudly"; }
    if [ -n "$wline" ]; then
      wline=${wline#*\] }
      detail+="; warning: ${wline% in /*}"
    else
      verdict=fail; detail+="; no rsession: warning naming the lack of space"
    fi
    [ -s "$dir/unexpected-warnings.txt" ] && verdict=fail
    grep -q '^\.tmp_' "$dir/leftovers.txt" && { verdict=fail; detail+="; temporary files left: $(tr '\n' ' ' < "$dir/leftovers.txt")"; }
  else
    local pw
    pw=$(grep -hm1 'PHP Warning' "$dir/php-errors.log" 2>/dev/null | sed -E 's/^\[[^]]*\] //; s/ in \/.*//' || true)
    detail+="; PHP warning: ${pw:-none}"
  fi
  shrink_logs "$dir"
  fault_judge fulldisk "$name" "$dir" "$verdict" "$detail"
}

# ----------------------------------------------------------- server restart
# Load on a network handler; its server is stopped after 3 s and started
# again 3 s later (empty: no persistence). Expected: requests fail (fast)
# while it is down, the load recovers by itself once it is back, no worker
# hangs or crashes; the only rsession warnings are about the store being
# unreachable. On write-through the server restarted is the cache (the
# store is the truth): the load goes on from the store while it is down,
# and the counters must hold every increment answered OK.
E2E_RESTART_PHASE_S=${E2E_RESTART_PHASE_S:-3}
# Time the handler may take to recover once the server is back.
E2E_RESTART_GRACE_S=${E2E_RESTART_GRACE_S:-1}

fault_restart() {
  local name=$1 kind dir svc sids=() i loadpid verdict detail ph=$E2E_RESTART_PHASE_S
  kind=$(handler_kind "$name")
  case " $(handler_needs "$name") " in
    *" service:redis "*) svc=redis ;;
    *" service:memcached "*) svc=memcached ;;
    *" service:pgsql "*) svc=pgsql ;;
    *" service:mysql "*) svc=mysql ;;
    *) fault_result restart "$name" skipped "not a network handler" "" ""; return ;;
  esac
  dir=$RUN/fault-restart-$name
  rm -rf "$dir"; mkdir -p "$dir"
  log "fault restart ($svc) on $name"
  fpm_start "$dir" "$(handler_ini "$name" "$dir")"
  for ((i = 0; i < E2E_SESSIONS; i++)); do sids+=("$(new_sid rs)"); done
  # A database server takes seconds to stop and start: give the load
  # after it time enough to show the recovery.
  local extra=0
  [[ $svc == pgsql || $svc == mysql ]] && extra=4
  "$PY" "$E2E/load.py" --port "$E2E_PORT" --timeout 15 run \
    --sessions "$(IFS=,; echo "${sids[*]}")" --conns 16 --duration $((3 * ph + E2E_RESTART_GRACE_S + extra)) \
    --mix inc:90,ro:10 --out "$dir/load.json" &
  loadpid=$!
  local t_down t_up
  sleep "$ph"
  t_down=$(date +%s.%N)
  service_down "$svc"
  sleep "$ph"
  service_up "$svc"
  t_up=$(date +%s.%N)
  echo "$svc stopped at $t_down, back at $t_up" >> "$dir/detail.txt"
  if ! wait "$loadpid"; then fault_abort restart "$name" "$dir" "the load generator failed"; return; fi
  local wt=0 counts=""
  [[ " $(handler_needs "$name") " == *" store:write-through "* ]] && wt=1
  [ "$wt" = 1 ] && read_counts "$dir" "${sids[@]}"
  # Every worker must still answer: as many parallel requests as workers,
  # each on a session of its own.
  local probe=() r slow=0 bad=0
  for ((i = 0; i < E2E_WORKERS; i++)); do
    http_get /inc.php "$(new_sid pr)" 5 > "$dir/probe-$i.out" &
    probe+=($!)
  done
  wait "${probe[@]}" || true
  for ((i = 0; i < E2E_WORKERS; i++)); do
    r=$(cat "$dir/probe-$i.out")
    [[ $r == "200 "*" OK "*" 1" ]] || bad=$((bad + 1))
    awk -v s="$(cut -d' ' -f2 <<<"$r")" 'BEGIN { exit !(s > 2) }' && slow=$((slow + 1))
  done
  sleep 0.2
  crash_lines "$dir" > "$dir/crashes.txt"
  rsession_warning_lines "$dir" > "$dir/rsession-warnings.txt"
  local pw
  pw=$(grep -hm1 'PHP Warning' "$dir/php-errors.log" 2>/dev/null | sed -E 's/^\[[^]]*\] //; s/ in \/.*//' || true)
  fpm_stop
  # Provoked: warnings that the store cannot be reached.
  grep -Eiv 'rsession: .*(connect|refused|unreachable|reset|broken pipe|timed out|timeout|closed|unavailable|i/o|eof)' \
    "$dir/rsession-warnings.txt" > "$dir/unexpected-warnings.txt" || true
  # Write-through: a lock held in the cache is gone with it, and while some
  # workers lock in the store and others already in the cache again (up to
  # a second), two may hold a session: the version fence refuses the later
  # write, loudly (counted as errors below; the counters must stay exact).
  local fenced=0
  if [ "$wt" = 1 ]; then
    fenced=$(grep -c 'rsession: the session lock was lost' "$dir/unexpected-warnings.txt" || true)
    sed -i '/rsession: the session lock was lost/d' "$dir/unexpected-warnings.txt"
  fi
  verdict=$("$PY" - "$dir/load.json" "$t_down" "$t_up" "$E2E_RESTART_GRACE_S" "$wt" <<'PY'
import json, math, sys
load = json.load(open(sys.argv[1]))
down_at = float(sys.argv[2]) - load["start_wall"]
up_at = float(sys.argv[3]) - load["start_wall"]
grace = float(sys.argv[4])
cache_only = sys.argv[5] == "1"
t = load["timeline"]
def tot(a, b):
    seg = t[max(0, a):max(0, b)]
    return sum(x[0] for x in seg), sum(x[1] for x in seg)
# Whole seconds (by completion time) before the stop, while down, and
# after the restart plus the grace period, up to the end of the load.
before = tot(0, math.floor(down_at))
down = tot(math.ceil(down_at), math.floor(up_at))
after = tot(math.ceil(up_at + grace), math.floor(load["elapsed_s"]))
timeouts = sum(s["errors"].get("timeout", 0) for s in load["sessions"].values())
ok = before[1] == 0 and after[0] > 0 and after[1] == 0 and timeouts == 0
# A cache outage: the store serves the requests meanwhile.
if cache_only:
    ok = ok and down[0] > 0
print(("pass" if ok else "fail") + f"|before: {before[0]} ok/{before[1]} err; while down: {down[0]} ok/{down[1]} err; "
      f"from {grace:g} s after the restart: {after[0]} ok/{after[1]} err; timeouts: {timeouts}; "
      f"write p99 {load['write_p99_ms']} ms")
PY
)
  detail=${verdict#*|}; verdict=${verdict%%|*}
  if [ "$wt" = 1 ]; then
    counts=$(counts_line "$dir" "$name" "$kind" "none")
    [ "${counts%%|*}" = pass ] || verdict=fail
    detail+="; counters: ${counts#*|}; $fenced writes refused by the fence (lock lost with the cache)"
  fi
  detail+="; after: $((E2E_WORKERS - bad))/$E2E_WORKERS workers answered a fresh session ($slow slower than 2 s)"
  [ "$bad" = 0 ] && [ "$slow" = 0 ] || verdict=fail
  [ -n "$pw" ] && detail+="; first PHP warning: ${pw:0:160}"
  shrink_logs "$dir"
  fault_judge restart "$name" "$dir" "$verdict" "$detail"
}

# ------------------------------------------------------- kill -9 under load
# The soak's load on one handler while a random worker is SIGKILLed every
# 0.5 s (many of them hold a lock). Killed requests are of unknown fate;
# every increment answered OK must be in the counter, nothing may hang
# (no client timeout, the next requests proceed), no other worker dies.
fault_killload() {
  local name=$1 kind dir sids=() i loadpid killed=() pids pid line
  fault_setup killload "$name"
  fpm_start "$dir" "$(handler_ini "$name" "$dir")
rsession.lock_ttl_ms = $E2E_FAULT_LOCK_TTL_MS"
  for ((i = 0; i < E2E_SESSIONS; i++)); do sids+=("$(new_sid kl)"); done
  "$PY" "$E2E/load.py" --port "$E2E_PORT" --timeout 20 run \
    --sessions "$(IFS=,; echo "${sids[*]}")" --conns "$E2E_CONNS" --duration 8 \
    --mix "inc:80,slow:10,ro:10" --out "$dir/load.json" &
  loadpid=$!
  sleep 0.5
  for ((i = 0; i < 14; i++)); do
    pids=($(fpm_worker_pids))
    if [ ${#pids[@]} -gt 0 ]; then
      pid=${pids[RANDOM % ${#pids[@]}]}
      kill -KILL "$pid" 2>/dev/null && killed+=("$pid")
    fi
    sleep 0.5
  done
  if ! wait "$loadpid"; then fault_abort killload "$name" "$dir" "the load generator failed"; return; fi
  read_counts "$dir" "${sids[@]}"
  sleep 0.2
  crash_lines "$dir" "${killed[*]}" > "$dir/crashes.txt"
  rsession_warning_lines "$dir" > "$dir/rsession-warnings.txt"
  cp "$dir/rsession-warnings.txt" "$dir/unexpected-warnings.txt"
  php_warning_lines "$dir" > "$dir/php-warnings.txt"
  fpm_stop
  shrink_logs "$dir"
  line=$(counts_line "$dir" "$name" "$kind" killed)
  fault_judge killload "$name" "$dir" "${line%%|*}" "${#killed[@]} workers SIGKILLed during 8 s of load; ${line#*|}"
}

# ------------------------------------------------------------------ evict
# memcached is a cache: when it is full it evicts the least recently used
# items, sessions included. A private small memcached (E2E_EVICT_MB) takes
# load on a few sessions while a filler writes 3x its memory in junk items
# of session-like sizes; 20 idle sessions written before hold a count of 3.
# Expected: an evicted session reads as a new, empty one (count 0, no
# warning: a missing session is not an error) and works again at once; a
# survivor still holds 3 (never a partial or corrupt read); no hang, no
# crash; the only rsession warnings are about a lock the eviction took away
# (its holder's write is refused loudly rather than overwriting a newer
# holder). Increments lost on the loaded sessions are the cache's doing and
# are reported, not judged.
E2E_EVICT_PORT=${E2E_EVICT_PORT:-31219}
E2E_EVICT_MB=${E2E_EVICT_MB:-32}

fault_evict() {
  local name=$1 kind dir pidf sids=() idle=() i r loadpid verdict detail line kept=0 evicted=0 bad=0 after=""
  fault_setup evict "$name"
  # On write-through the small memcached is the cache in front of
  # PostgreSQL: an evicted session must come back from the store whole.
  local wt=0
  case $name in
    rsession-memcached | php-memcached) ;;
    rsession-writethrough) wt=1 ;;
    *) fault_result evict "$name" skipped "a memcached scenario" "" ""; return ;;
  esac
  pidf=$RUN/services/memcached-evict.pid
  port_free "$E2E_EVICT_PORT" || { fault_abort evict "$name" "$dir" "port $E2E_EVICT_PORT is taken (set E2E_EVICT_PORT)"; return; }
  memcached -d -u root -l 127.0.0.1 -p "$E2E_EVICT_PORT" -U 0 -m "$E2E_EVICT_MB" -P "$pidf"
  wait_port 127.0.0.1 "$E2E_EVICT_PORT" || { fault_abort evict "$name" "$dir" "the small memcached did not start"; return; }
  local path
  if [ "$wt" = 1 ]; then path="memcached://127.0.0.1:$E2E_EVICT_PORT?prefix=e2e_evict_wt: | $(pgsql_path evict_wt)"
  elif [ "$kind" = rsession ]; then path="memcached://127.0.0.1:$E2E_EVICT_PORT?prefix=e2e_evict:"
  else path="127.0.0.1:$E2E_EVICT_PORT"; fi
  fpm_start "$dir" "$(handler_ini "$name" "$dir")
session.save_path = \"$path\"
rsession.lock_ttl_ms = $E2E_FAULT_LOCK_TTL_MS"
  for ((i = 0; i < 20; i++)); do
    idle+=("$(new_sid ev)")
    http_get /inc.php "${idle[i]}" >/dev/null; http_get /inc.php "${idle[i]}" >/dev/null
    r=$(http_get /inc.php "${idle[i]}")
    if [[ $r != "200 "*" OK ${idle[i]} 3" ]]; then
      stop_pidfile "$pidf"; fault_abort evict "$name" "$dir" "setup increments failed: $r"; return
    fi
  done
  for ((i = 0; i < E2E_SESSIONS; i++)); do sids+=("$(new_sid el)"); done
  "$PY" "$E2E/load.py" --port "$E2E_PORT" --timeout 20 run \
    --sessions "$(IFS=,; echo "${sids[*]}")" --conns 16 --duration 14 \
    --mix "inc:80,ro:20" --out "$dir/load.json" &
  loadpid=$!
  sleep 1
  # The filler takes 7-10 s: it is done well before the load stops, so the
  # loaded sessions are read back before junk can push them out as idle.
  "$PY" - "$E2E_EVICT_PORT" "$((3 * E2E_EVICT_MB))" > "$dir/filler.txt" <<'PY'
import random, socket, sys, time
port, megabytes = int(sys.argv[1]), int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port))
rnd = random.Random(7)
def evictions():
    s.sendall(b"stats\r\n")
    buf = b""
    while not buf.endswith(b"END\r\n"):
        buf += s.recv(65536)
    return int(buf.split(b"STAT evictions ")[1].split(b"\r\n")[0])
written, n, t0 = 0, 0, time.time()
# Spread over about 5 s, in chunks, so the load runs on a full cache.
chunk = megabytes * 1024 * 1024 // 50
while written < megabytes * 1024 * 1024:
    out, size = [], 0
    while size < chunk:
        # Small items too: every slab class a session may sit in must fill.
        length = rnd.randint(1, 120) if n % 2 else rnd.randint(1, 700)
        out.append(b"set junk:%d 0 0 %d noreply\r\n%s\r\n" % (n, length, b"j" * length))
        n += 1
        size += length
    s.sendall(b"".join(out))
    written += size
    time.sleep(0.1)
print(f"{n} junk items, {written // (1024 * 1024)} MB in {time.time() - t0:.1f} s; evictions {evictions()}")
PY
  if ! wait "$loadpid"; then stop_pidfile "$pidf"; fault_abort evict "$name" "$dir" "the load generator failed"; return; fi
  read_counts "$dir" "${sids[@]}"
  local sid first_evicted="" gone=""
  # Which idle sessions the cache no longer holds (write-through: they are
  # read from the store below; the scenario proves something only if some).
  [ "$wt" = 1 ] && gone=$("$PY" - "$E2E_EVICT_PORT" e2e_evict_wt: "${idle[@]}" <<'PY'
import socket, sys
port, prefix, ids = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
s = socket.create_connection(("127.0.0.1", port))
s.sendall(b"".join(b"mg %s%s:d\r\n" % (prefix.encode(), i.encode()) for i in ids) + b"mn\r\n")
buf = b""
while not buf.endswith(b"MN\r\n"):
    buf += s.recv(65536)
print(sum(1 for line in buf.split(b"\r\n") if line == b"EN"))
PY
)
  for sid in "${idle[@]}"; do
    r=$(http_get /count.php "$sid")
    echo "idle $sid $r" >> "$dir/detail.txt"
    case $r in
      "200 "*" COUNT $sid 3") kept=$((kept + 1)) ;;
      "200 "*" COUNT $sid 0") evicted=$((evicted + 1)); [ -z "$first_evicted" ] && first_evicted=$sid ;;
      *) bad=$((bad + 1)) ;;
    esac
  done
  [ -n "$first_evicted" ] && after=$(http_get /inc.php "$first_evicted")
  echo "increment on an evicted session: $after" >> "$dir/detail.txt"
  sleep 0.2
  crash_lines "$dir" > "$dir/crashes.txt"
  rsession_warning_lines "$dir" > "$dir/rsession-warnings.txt"
  grep -Ev 'rsession: .*session lock was lost' "$dir/rsession-warnings.txt" > "$dir/unexpected-warnings.txt" || true
  php_warning_lines "$dir" > "$dir/php-warnings.txt"
  fpm_stop
  stop_pidfile "$pidf"
  shrink_logs "$dir"
  "$PY" "$E2E/report.py" handler "$dir" "$name" "$kind" "" > "$dir/result.json"
  line=$("$PY" - "$dir/result.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
timeouts = r["error_kinds"].get("timeout", 0)
print(("pass" if not timeouts else "fail") + "|" +
      f"load: {r['writes_ok']} increments OK, {r['errors']} errors, {r['lost']} lost to eviction, "
      f"client timeouts {timeouts}, write p99 {r['write_p99_ms']} ms")
PY
)
  verdict=${line%%|*}
  detail="$(cat "$dir/filler.txt"); idle sessions: $kept kept (count 3), $evicted evicted (read as new), $bad other; ${line#*|}"
  detail+="; $(grep -c 'session lock was lost' "$dir/rsession-warnings.txt" || true) lost-lock warnings"
  if [ "$bad" != 0 ]; then verdict=fail; detail+="; A READ WAS NEITHER THE OLD COUNT NOR EMPTY"; fi
  if [ "$wt" = 1 ]; then
    # The store is the truth: every idle session keeps its count, the
    # loaded ones every increment answered OK.
    detail+="; $gone of ${#idle[@]} idle sessions were gone from the cache"
    line=$(counts_line "$dir" "$name" "$kind" none)
    [ "${line%%|*}" = pass ] || verdict=fail
    detail+="; counters: ${line#*|}"
    if [ "$evicted" != 0 ]; then verdict=fail; detail+="; AN EVICTED SESSION LOST ITS DATA"; fi
    if [ "${gone:-0}" = 0 ]; then verdict=fail; detail+="; no idle session was evicted from the cache: the scenario proved nothing"; fi
  else
    if [ "$evicted" = 0 ]; then verdict=fail; detail+="; no idle session was evicted: the scenario proved nothing"; fi
    if [ -n "$first_evicted" ] && [[ $after != "200 "*" OK $first_evicted 1" ]]; then
      verdict=fail; detail+="; an evicted session did not start afresh: $after"
    fi
  fi
  fault_judge evict "$name" "$dir" "$verdict" "$detail"
}

# ---------------------------------------------------------------- failover
# The master serving the first session (cluster: its slot's master;
# Sentinel: the master) is SIGKILLed under load; once its replica is
# promoted the killed node is started again as a replica. Replication is
# asynchronous: increments acknowledged by the master in the moment before
# the kill may never have reached the replica. Each increment the client saw
# succeed and the final counter lacks is counted (per session: every
# acknowledged value above the final counter, and every value acknowledged
# twice but the last time) and explained by when it was acknowledged: within
# E2E_FAILOVER_WINDOW_MS before the kill (not replicated yet) is explained;
# any other is a failure, as is a request failing after the recovery.
E2E_FAILOVER_WINDOW_MS=${E2E_FAILOVER_WINDOW_MS:-1000}

# The port of the cluster master serving slot $1 (asked of any node that answers).
cluster_master_of() {
  local p
  for p in $E2E_CLUSTER_PORTS; do
    redis-cli -p "$p" cluster nodes 2>/dev/null | awk -v slot="$1" '
      $3 ~ /master/ && $3 !~ /fail/ { for (i = 9; i <= NF; i++) { n = split($i, r, "-"); lo = r[1]; hi = (n > 1 ? r[2] : r[1])
        if (slot + 0 >= lo + 0 && slot + 0 <= hi + 0) { sub(/@.*/, "", $2); sub(/.*:/, "", $2); print $2; exit } } }' && return 0
  done
}

sentinel_master_port() {
  local p
  for p in $E2E_SENTINEL_PORTS; do
    redis-cli -p "$p" -a rsession-sentinel --no-auth-warning sentinel get-master-addr-by-name rsession 2>/dev/null | sed -n 2p && return 0
  done
}

fault_failover() {
  local name=$1 kind dir sids=() i loadpid set slot victim now t_kill t_promoted t_up verdict detail
  case $name in
    *-cluster) set=cluster ;;
    *-sentinel) set=sentinel ;;
    *) fault_result failover "$name" skipped "not a Redis Cluster or Sentinel handler" "" ""; return ;;
  esac
  fault_setup failover "$name"
  fpm_start "$dir" "$(handler_ini "$name" "$dir")"
  for ((i = 0; i < E2E_SESSIONS; i++)); do sids+=("$(new_sid fo)"); done
  "$PY" "$E2E/load.py" --port "$E2E_PORT" --timeout 20 run --keep-values \
    --sessions "$(IFS=,; echo "${sids[*]}")" --conns 16 --duration 16 \
    --mix inc:90,ro:10 --out "$dir/load.json" &
  loadpid=$!
  sleep 3
  if [ $set = cluster ]; then
    slot=$(redis-cli -p "${E2E_CLUSTER_PORTS%% *}" cluster keyslot "${sids[0]}")
    victim=$(cluster_master_of "$slot")
  else
    victim=$(sentinel_master_port)
  fi
  if [ -z "$victim" ] || [ ! -f "$RUN/services/$set/$victim.pid" ]; then
    kill "$loadpid" 2>/dev/null; fault_abort failover "$name" "$dir" "no master found to kill (got '$victim')"; return
  fi
  t_kill=$(date +%s.%N)
  kill -KILL "$(cat "$RUN/services/$set/$victim.pid")"
  # Promotion: the cluster's node timeout, or the sentinels' down-after
  # plus their election.
  for ((i = 0; i < 300; i++)); do
    if [ $set = cluster ]; then now=$(cluster_master_of "$slot"); else now=$(sentinel_master_port); fi
    [ -n "$now" ] && [ "$now" != "$victim" ] && break
    sleep 0.05
  done
  t_promoted=$(date +%s.%N)
  if [ -z "$now" ] || [ "$now" = "$victim" ]; then
    wait "$loadpid"; fault_abort failover "$name" "$dir" "no replica was promoted within 15 s"; return
  fi
  if [ $set = cluster ]; then
    sh "$RUN/services/cluster/$victim/start.sh"
  else
    sh "$RUN/services/sentinel/$victim/start.sh" --replicaof 127.0.0.1 "$now"
  fi
  t_up=$(date +%s.%N)
  echo "master :$victim SIGKILLed at $t_kill; :$now promoted at $t_promoted; :$victim back as a replica at $t_up" >> "$dir/detail.txt"
  if ! wait "$loadpid"; then fault_abort failover "$name" "$dir" "the load generator failed"; return; fi
  : > "$dir/counts.txt"
  local sid
  for sid in "${sids[@]}"; do
    echo "$sid $(http_get /count.php "$sid")" >> "$dir/counts.txt"
  done
  sleep 0.2
  crash_lines "$dir" > "$dir/crashes.txt"
  rsession_warning_lines "$dir" > "$dir/rsession-warnings.txt"
  php_warning_lines "$dir" > "$dir/php-warnings.txt"
  fpm_stop
  # Provoked: the master unreachable, its slots or role moving, writes or
  # locks of the moment lost with it.
  grep -Eiv 'rsession: .*(connect|refused|unreachable|reset|broken pipe|timed out|timeout|closed|unavailable|i/o|eof|READONLY|CLUSTERDOWN|MOVED|master|replica|lock (was )?lost|no longer held)' \
    "$dir/rsession-warnings.txt" > "$dir/unexpected-warnings.txt" || true
  verdict=$("$PY" - "$dir/load.json" "$dir/counts.txt" "$t_kill" "$t_promoted" "$t_up" "$E2E_FAILOVER_WINDOW_MS" <<'PY'
import json, math, sys
load = json.load(open(sys.argv[1]))
t_kill, t_promoted, t_up, window = float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6]) / 1000
finals = {}
for line in open(sys.argv[2]):
    p = line.split()
    if len(p) == 6 and p[1] == "200" and p[3] == "COUNT":
        finals[p[0]] = int(p[5])
acked = lost = explained = unreadable = 0
unexplained = []
for sid, s in load["sessions"].items():
    acks = sorted(s["acked"], key=lambda a: a[1])
    acked += len(acks)
    if sid not in finals:
        unreadable += 1
        continue
    final = finals[sid]
    last = {}
    for n, t in acks:
        last[n] = t
    # Survivors: for each value up to the final counter, its last ack.
    for n, t in acks:
        if n <= final and last[n] == t:
            continue
        lost += 1
        if t_kill - window <= t <= t_kill:
            explained += 1
        else:
            unexplained.append(f"{sid[:12]}… value {n} acknowledged {t - t_kill:+.3f} s from the kill")
t = load["timeline"]
start = load["start_wall"]
def tot(a, b):
    seg = t[max(0, a):max(0, b)]
    return sum(x[0] for x in seg), sum(x[1] for x in seg)
# From 2 s after the killed node is back (requests of that moment may still
# be on their way), to the end of the load.
after = tot(math.ceil(t_up - start + 2), math.floor(load["elapsed_s"]))
down = tot(math.floor(t_kill - start), math.ceil(t_promoted - start))
timeouts = sum(s["errors"].get("timeout", 0) for s in load["sessions"].values())
ok = not unexplained and not unreadable and after[0] > 0 and after[1] == 0 and timeouts == 0
print(("pass" if ok else "fail") + f"|{acked} increments acknowledged, {lost} of them lost "
      f"({explained} acknowledged by the killed master within {window * 1000:g} ms before the SIGKILL, not yet replicated"
      + (f"; UNEXPLAINED: {'; '.join(unexplained[:5])}" if unexplained else "") + ")"
      + f"; promoted {t_promoted - t_kill:.1f} s after the kill: {down[0]} ok/{down[1]} err meanwhile"
      f"; from 2 s after the node is back: {after[0]} ok/{after[1]} err; timeouts {timeouts}"
      + (f"; {unreadable} final counter(s) unreadable" if unreadable else ""))
PY
)
  detail=${verdict#*|}; verdict=${verdict%%|*}
  shrink_logs "$dir"
  fault_judge failover "$name" "$dir" "$verdict" "$detail"
}

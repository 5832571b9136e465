# The handlers the soak runs, side by side. Sourced by soak.sh.
#
# handler_kind NAME  -> rsession | peer | peer-lossy (expected to lose
#                       increments: reported, never a failure)
# handler_needs NAME -> "store:<rsession store>" and/or "service:<redis|memcached>"
# handler_ini NAME   -> php.ini lines (after extension=librsession.so)
#
# To add a handler: one case in each function, and its name in
# E2E_HANDLERS_DEFAULT.

E2E_HANDLERS_DEFAULT="rsession-files rsession-files-timeout rsession-files-readonly files
  rsession-redis phpredis phpredis-nolock rsession-memcached php-memcached
  rsession-pgsql rsession-mysql"
# Redis Cluster and Sentinel: private sets of their own (lib.sh).
E2E_HANDLERS_DEFAULT+=" rsession-redis-cluster rsession-redis-sentinel"
# Write-through: the private memcached pair in front of the private PostgreSQL.
E2E_HANDLERS_DEFAULT+=" rsession-writethrough"

# Lock wait granted to the peers, matched to rsession.lock_wait_ms so that
# all handlers get the same patience (defaults noted in the report).
_peer_wait_ms=$E2E_LOCK_WAIT_MS

# Variants on the same store, suffixes of an rsession handler's name:
#   -timeout   rsession.lock_wait_ms=50 (lock_failure=fail): session_start()
#              fails with a warning naming the holder; nothing may be lost
#   -readonly  the same with lock_failure=readonly: the session starts
#              read-only with a notice; close must not write and says so
E2E_SHORT_WAIT_MS=${E2E_SHORT_WAIT_MS:-50}

handler_kind() {
  case $1 in
    rsession-*) echo rsession ;;
    phpredis-nolock) echo peer-lossy ;;
    files | phpredis | php-memcached) echo peer ;;
    *) die "unknown handler $1" ;;
  esac
}

handler_needs() {
  case ${1%-timeout} in
    *-readonly) handler_needs "${1%-readonly}" ;;
    rsession-files) echo "store:files" ;;
    rsession-redis) echo "store:redis service:redis" ;;
    rsession-redis-cluster) echo "store:redis-cluster service:cluster" ;;
    rsession-redis-sentinel) echo "store:redis-sentinel service:sentinel" ;;
    rsession-memcached) echo "store:memcached service:memcached" ;;
    rsession-pgsql) echo "store:pgsql service:pgsql" ;;
    rsession-mysql) echo "store:mysql service:mysql" ;;
    rsession-writethrough) echo "store:write-through service:memcached service:pgsql" ;;
    phpredis | phpredis-nolock) echo "service:redis" ;;
    php-memcached) echo "service:memcached" ;;
    files) echo "" ;;
  esac
}

# Where a handler keeps its sessions; $2 = run dir of this handler run.
handler_ini() {
  local name=$1 dir=$2 m1=${E2E_MEMCACHED_PORTS[0]} m2=${E2E_MEMCACHED_PORTS[1]}
  local tag
  tag=$(basename "$dir" | tr -c 'a-zA-Z0-9\n' '_')
  case $name in
    rsession-*-timeout | rsession-*-readonly)
      handler_ini "${name%-*}" "$dir"
      printf 'rsession.lock_wait_ms = %s\nrsession.lock_failure = %s\n' "$E2E_SHORT_WAIT_MS" \
        "$([ "${name##*-}" = readonly ] && echo readonly || echo fail)"
      ;;
    rsession-files)
      printf 'session.save_handler = rsession\nsession.save_path = "%s/sessions"\n' "$dir" ;;
    files)
      mkdir -p "$dir/sessions"
      printf 'session.save_handler = files\nsession.save_path = "%s/sessions"\n' "$dir" ;;
    rsession-redis)
      printf 'session.save_handler = rsession\nsession.save_path = "redis://127.0.0.1:%s?prefix=e2e_%s:"\n' \
        "$E2E_REDIS_PORT" "$tag" ;;
    rsession-redis-cluster)
      printf 'session.save_handler = rsession\nsession.save_path = "redis-cluster://%s?prefix=e2e_%s:"\n' \
        "$(printf '127.0.0.1:%s,' $E2E_CLUSTER_PORTS | sed 's/,$//')" "$tag" ;;
    rsession-redis-sentinel)
      # The passwords and master name tests/services.sh gives the set.
      printf 'session.save_handler = rsession\nsession.save_path = "redis-sentinel://:rsession-data@%s/rsession?sentinel_password=rsession-sentinel&prefix=e2e_%s:"\n' \
        "$(printf '127.0.0.1:%s,' $E2E_SENTINEL_PORTS | sed 's/,$//')" "$tag" ;;
    rsession-memcached)
      printf 'session.save_handler = rsession\nsession.save_path = "%s"\n' "$(memcached_path "$tag")" ;;
    rsession-pgsql)
      printf 'session.save_handler = rsession\nsession.save_path = "%s"\n' "$(pgsql_path "$tag")" ;;
    rsession-mysql)
      printf 'session.save_handler = rsession\nsession.save_path = "mysql://rs_app:rs-app-pw@127.0.0.1:%s/rsession_test?prefix=e2e_%s:"\n' \
        "$E2E_MYSQL_PORT" "$tag" ;;
    rsession-writethrough)
      printf 'session.save_handler = rsession\nsession.save_path = "%s | %s"\n' "$(memcached_path "$tag")" "$(pgsql_path "$tag")" ;;
    phpredis | phpredis-nolock)
      local locking=1
      [ "$name" = phpredis-nolock ] && locking=0
      cat <<INI
extension = igbinary
extension = redis
session.save_handler = redis
session.save_path = "tcp://127.0.0.1:$E2E_REDIS_PORT?prefix=e2e_$tag:"
redis.session.locking_enabled = $locking
redis.session.lock_wait_time = 2000
redis.session.lock_retries = $((_peer_wait_ms / 2))
redis.session.lock_expire = 60
INI
      ;;
    php-memcached)
      cat <<INI
extension = igbinary
extension = msgpack
extension = memcached
session.save_handler = memcached
session.save_path = "127.0.0.1:$m1,127.0.0.1:$m2"
memcached.sess_prefix = "e2e_$tag."
memcached.sess_locking = 1
memcached.sess_lock_wait_min = 150
memcached.sess_lock_wait_max = 150
memcached.sess_lock_retries = $((_peer_wait_ms / 150))
memcached.sess_lock_expire = 60
memcached.sess_binary_protocol = 1
INI
      ;;
  esac
}

# rsession paths of the private servers, keys prefixed with tag $1:
# memcached (both servers), PostgreSQL.
memcached_path() {
  printf 'memcached://127.0.0.1:%s,127.0.0.1:%s?prefix=e2e_%s:' "${E2E_MEMCACHED_PORTS[0]}" "${E2E_MEMCACHED_PORTS[1]}" "$1"
}
pgsql_path() {
  printf 'pgsql://rs_app:rs-app-pw@127.0.0.1:%s/rsession_test?prefix=e2e_%s:' "$E2E_PG_PORT" "$1"
}

# rsession warnings and notices a handler's run provokes on purpose (ERE).
handler_expected_warnings() {
  case $1 in
    *-timeout) echo "rsession: gave up waiting for the lock on session [^ ]+ after [0-9]+ ms; (held by|its holder)" ;;
    *-readonly) echo "rsession: (gave up waiting for the lock on session [^ ]+ after [0-9]+ ms; .*the session is read-only for this request|session [^ ]+ was opened read-only; the changes made to \\\$_SESSION were not saved)" ;;
  esac
}

# Handler-specific notes printed under the report's table.
handler_note() {
  case $1 in
    *-timeout) echo "lock wait ${E2E_SHORT_WAIT_MS} ms, lock_failure=fail: lock timeouts are expected (HTTP 503 + warning); increments must still all be there." ;;
    *-readonly) echo "lock wait ${E2E_SHORT_WAIT_MS} ms, lock_failure=readonly: timed-out requests run read-only; their increments must not be stored and close must say so (the page answers 500)." ;;
    phpredis) echo "phpredis 5.3 with redis.session.locking_enabled=1 (default 0), lock polled every 2 ms for up to ${_peer_wait_ms} ms (default 10 × 2 ms)." ;;
    phpredis-nolock) echo "phpredis with its default redis.session.locking_enabled=0: expected to lose increments (reported, not a failure)." ;;
    php-memcached) echo "php-memcached: lock retried every 150 ms for up to ${_peer_wait_ms} ms (default 5 retries, 750 ms)." ;;
    files) echo "PHP's stock files handler (flock, no wait limit)." ;;
    rsession-pgsql) echo "PostgreSQL 15 (advisory locks), private server; the connection is the lease." ;;
    rsession-mysql) echo "MariaDB 10.11 (GET_LOCK), private server; the connection is the lease." ;;
    rsession-redis-cluster) echo "Redis Cluster, 3 masters + 3 replicas (private); sessions spread over the masters." ;;
    rsession-redis-sentinel) echo "Redis Sentinel: a master, its replica, three sentinels (private)." ;;
    rsession-writethrough) echo "write-through: memcached (the private pair) in front of PostgreSQL 15 (private); the lock is memcached's." ;;
  esac
}

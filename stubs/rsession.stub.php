<?php
/**
 * IDE stubs for the rsession extension (a native PHP session save handler).
 * Not loaded by PHP; the extension defines these itself.
 *
 * INI settings (all PHP_INI_ALL; the options of RSession\Handler use the same
 * names without the "rsession." prefix and win over them):
 *
 * - rsession.locking        = 1      Take the session's lock in read, release it in close.
 * - rsession.lock_wait_ms   = 30000  Longest wait for the lock; 0 = fail at once if held.
 * - rsession.lock_ttl_ms    = 10000  Lease of a lock: renewed while its request lives; a dead
 *                                    holder's lock is free at most this long after its last
 *                                    renewal (files store: freed by the kernel at once).
 * - rsession.lock_failure   = fail   "fail": session_start() returns false with an E_WARNING
 *                                    naming the holder; "readonly": the session starts
 *                                    read-only with an E_NOTICE.
 * - rsession.read_only      = 0      When 1 at session_start(): read without the lock; nothing
 *                                    is written at close (E_NOTICE if $_SESSION changed).
 * - rsession.spin_us        = 100    Longest busy wait (µs) for a store's reply before the
 *                                    process sleeps for it (Redis, memcached, PostgreSQL); 0 = never
 *                                    spin. See stats() reply_spins / reply_spin_hits.
 *
 * session.save_path forms: /abs/dir[?query], file:///abs/dir, "" (sys_get_temp_dir()/rsession),
 * redis://[[user]:password@]host[:port][/db][?query], rediss://…, redis+unix:///path.sock[?query],
 * memcached://host[:port][,host[:port]…][?query],
 * pgsql://[user[:password]@]host[:port]/dbname[?query] (also postgresql://),
 * mysql://[user[:password]@]host[:port]/dbname[?query]. Query keys: prefix (default "rsess:"),
 * connect_timeout_ms (1000), timeout_ms (1000), compress (none|zstd|lz4), compress_min (1024);
 * memcached also max_item_size (1048576); SQL also table, sslmode, lazy_touch_s, and MySQL socket.
 *
 * Functions that act on a store (everything but stats()) use the store that
 * session.save_path names, or, inside a request that opened an RSession\Handler,
 * that handler's store. Session ids are checked before any store sees them
 * (PHP's session id characters only, at most 256 bytes).
 *
 * The session registry: every session carries metadata beside its data (user,
 * created, last access, its own idle timeout, first and last IP from
 * REMOTE_ADDR). A per-user index makes listing and killing one user's sessions
 * cost that user's sessions only; kill_all_sessions() moves a generation that
 * every session is checked against, so it costs the same for 10 sessions or
 * 10 million. On Redis it works on one server, Redis Cluster and Sentinel
 * alike; on memcached it is as durable as memcached is (items may be evicted).
 *
 * @generate-class-entries
 */

namespace RSession;

/**
 * Thrown by the RSession\ functions and the Handler constructor: a save path
 * or option that cannot be used, or a store that cannot be reached.
 */
class Exception extends \RuntimeException
{
}

/**
 * The rsession save handler as an object, for session_set_save_handler().
 * Behaves exactly as the native handler (session.save_handler = rsession)
 * does on the same store.
 *
 * ```php
 * session_set_save_handler(new RSession\Handler('redis://127.0.0.1:6379?prefix=shop:'), true);
 * ```
 */
final class Handler implements \SessionHandlerInterface, \SessionIdInterface, \SessionUpdateTimestampHandlerInterface
{
    /**
     * @param string $savePath a session.save_path form (see the file header); '' = files in
     *                         sys_get_temp_dir()/rsession
     * @param array<string, bool|int|string> $options INI settings without the "rsession." prefix,
     *                         e.g. ['lock_wait_ms' => 5000, 'lock_failure' => 'readonly']
     * @throws Exception when the save path cannot be parsed or an option is unknown or invalid
     */
    public function __construct(string $savePath = '', array $options = []) {}

    /** Opens the store (connections are reused across requests). */
    public function open(string $path, string $name): bool {}

    /** Releases the session's lock if still held. */
    public function close(): bool {}

    /**
     * Takes the session's lock (unless locking is off or the session is read-only)
     * and returns its data; '' for a new session; false on failure (with an
     * "rsession:" warning, e.g. a lock timeout naming the holder).
     */
    public function read(string $id): string|false {}

    /** Writes the data and releases the lock; refuses (warning) if the lock was lost. */
    public function write(string $id, string $data): bool {}

    /** Removes the session's data. */
    public function destroy(string $id): bool {}

    /** Removes idle sessions; returns how many. */
    public function gc(int $max_lifetime): int|false {}

    /** A new session id (PHP's generator) not in use in the store. */
    public function create_sid(): string {}

    /** Strict mode: whether the id is well-formed and known to the store. */
    public function validateId(string $id): bool {}

    /** Lazy write: refreshes the session's expiry without rewriting it; releases the lock. */
    public function updateTimestamp(string $id, string $data): bool {}

    // The registry on this handler's store: the same operations as the
    // RSession\ functions, as camelCase methods and under the functions'
    // own snake_case names (set_user(), user_sessions(), ...) alike.

    /** @see \RSession\set_user() — on the session this handler has open. */
    public function setUser(string|int $userId): void {}

    /** @see \RSession\set_timeout() */
    public function setTimeout(int $seconds): void {}

    /** @see \RSession\user_sessions() */
    public function userSessions(string|int $userId): array {}

    /** @see \RSession\kill_session() */
    public function killSession(string $id): bool {}

    /** @see \RSession\kill_user_sessions() */
    public function killUserSessions(string|int $userId, ?string $keepId = null): int {}

    /** @see \RSession\kill_all_sessions() */
    public function killAllSessions(): int {}

    /** @see \RSession\lock_info() */
    public function lockInfo(string $id): ?array {}

    /** @see \RSession\stats() */
    public function stats(): array {}

    public function set_user(string|int $userId): void {}
    public function set_timeout(int $seconds): void {}
    public function user_sessions(string|int $userId): array {}
    public function kill_session(string $id): bool {}
    public function kill_user_sessions(string|int $userId, ?string $keepId = null): int {}
    public function kill_all_sessions(): int {}
    public function lock_info(string $id): ?array {}
}

/**
 * Ties the active session to a user (call at login). Takes effect at once (an
 * administrator sees the session under that user before the request ends) and
 * follows the session through session_regenerate_id().
 * @param string|int $userId 1 to 512 bytes; ints are taken as their decimal string
 * @throws Exception when no session is active or it is read-only, the user id
 *                   is empty or too long, the session was killed meanwhile, or
 *                   the store cannot be reached
 */
function set_user(string|int $userId): void {}

/**
 * Sets the idle timeout of the active session in seconds; 0 = it never times
 * out, whatever session.gc_maxlifetime says (until killed). Takes effect at
 * once; a session idle longer than its timeout reads as empty (and is
 * removed) whatever the store's own expiry says, and gc removes it too.
 * @throws Exception when no session is active or it is read-only, $seconds is
 *                   negative, or the store cannot be reached
 */
function set_timeout(int $seconds): void {}

/**
 * That user's live sessions, oldest first. Sessions past their idle timeout,
 * killed or destroyed never appear. `timeout` is the idle timeout in force
 * (session.gc_maxlifetime where set_timeout() was never called; 0 = never);
 * `created` and `last_access` are Unix seconds; the IPs are null on the
 * command line.
 * @return list<array{id: string, user: string, created: int, last_access: int, timeout: int, first_ip: ?string, last_ip: ?string}>
 * @throws Exception when the store cannot be reached
 */
function user_sessions(string|int $userId): array {}

/**
 * Ends one session at once, even while a request holds it (that request's
 * write at close will not bring it back).
 * @return bool false if it did not exist
 * @throws Exception when the store cannot be reached
 */
function kill_session(string $id): bool {}

/**
 * Ends all of a user's sessions except $keepId.
 * @return int how many were ended
 * @throws Exception when the store cannot be reached
 */
function kill_user_sessions(string|int $userId, ?string $keepId = null): int {}

/**
 * Ends every session under this store's prefix (used during upgrades).
 * @return int how many, or -1 where the store cannot count them cheaply
 * @throws Exception when the store cannot be reached
 */
function kill_all_sessions(): int {}

/**
 * Who holds the lock of session $id.
 * @return array{host: string, pid: int, uri: string, held_ms: int}|null null when unlocked
 * @throws Exception when the store cannot be reached or the id is malformed
 */
function lock_info(string $id): ?array {}

/**
 * The SQL statements that create the tables of a pgsql:// or mysql:// save
 * path (sessions with their indexes, the kill-all generation, the lock
 * holders); each is idempotent (IF NOT EXISTS). The store runs them itself
 * on its first connection when a table is missing; operators who create
 * tables by hand take them from here (`php/bin/rsession schema`).
 * @param ?string $savePath the store's save path; null: the one the other
 *                functions use (session.save_path, or the open Handler's)
 * @param bool $apply also run them on the server (what is there stays)
 * @return string the statements, each ending with ";" and a newline
 * @throws Exception when the save path is not a SQL store, cannot be parsed,
 *                   or (with $apply) the server refuses
 */
function schema(?string $savePath = null, bool $apply = false): string {}

/**
 * This process's counters since it started (a php-fpm worker or built-in
 * server worker keeps counting across requests: to measure one request,
 * take the difference of two calls).
 *
 * - reads:          sessions read (session_start(), locked or read-only)
 * - writes:         session data written to the store
 * - writes_skipped: closes that wrote nothing: lazy write found the data
 *                   unchanged (only the expiry was refreshed), or the session
 *                   was read-only
 * - lock_acquired:  locks taken
 * - lock_wait_ms:   total milliseconds spent taking locks (including waits that
 *                   timed out)
 * - lock_timeouts:  waits that gave up after rsession.lock_wait_ms
 * - store_errors:   store operations that failed (unreachable server, I/O error,
 *                   lost lock)
 * - lease_renewal_failures: renewals of a held lock's lease that did not
 *                   reach the store (each one risks the lock running out
 *                   under a long request)
 * - cache_hits, cache_misses: write-through (CACHE | STORE) reads the cache
 *                   answered, and reads it missed (the store answered; the
 *                   cache was refilled)
 * - store_writes_skipped: write-through saves that left the durable store
 *                   alone (nothing changed, its lazy_touch_s window not passed)
 * - reply_spins:    waits for a store's reply that spun first (rsession.spin_us)
 * - reply_spin_hits: of those, the ones whose reply came within the spin (the
 *                   rest slept after spinning: a spin that cost CPU for nothing)
 * - reply_spins_busy: of those, the ones that stopped at once because another
 *                   task was waiting for the core (a loaded machine: the
 *                   spin backs off as after a miss)
 *
 * Never throws.
 * @return array{reads: int, writes: int, writes_skipped: int, lock_acquired: int, lock_wait_ms: int, lock_timeouts: int, store_errors: int, lease_renewal_failures: int, cache_hits: int, cache_misses: int, store_writes_skipped: int, reply_spins: int, reply_spin_hits: int, reply_spins_busy: int}
 */
function stats(): array {}

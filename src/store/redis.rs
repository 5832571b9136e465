//! The Redis store: sessions and their locks in one Redis server.
//!
//! Keys of one session share a hash tag, so they live in one slot (ready for
//! Redis Cluster) and a Lua script may touch them all:
//! - `<prefix>{<id>}:data`  the session bytes, expiring after the idle timeout
//!   (Redis removes idle sessions itself; a lazy write only refreshes expiry);
//! - `<prefix>{<id>}:lock`  the lock: `<32 hex token> <holder JSON>`, with a
//!   lease (PX) that a background thread renews while the lock is held;
//! - `<prefix>{<id>}:wake`  a list that a releasing holder pushes one element
//!   to; waiters block on it with BLPOP, so a handoff takes one round trip
//!   instead of a polling interval.
//!
//! Round trips per locked request: one script takes the lock and reads the
//! data ([`ACQUIRE`]); one script writes (or touches) the data and releases
//! the lock ([`SAVE`]). Both compare the 128-bit owner token inside Redis, so
//! a request whose lease ran out can neither write nor release: it gets
//! [`StoreError::LockLost`] and the next holder's data stays as it was.
//!
//! Waiting: after a failed attempt the waiter blocks on the wake list for at
//! most min(time left, the lock's remaining lease), then tries again. A
//! release wakes one waiter at once; a holder that died wakes nobody, so the
//! waiter wakes when the lease ends. No fixed-interval polling.
//!
//! Connections: one per store (the engine keeps one store per process and
//! save_path), opened lazily on first use — never at module start-up, so
//! php-fpm's forked workers never share a socket — and reused across
//! requests. An I/O error or timeout drops it; a call that failed because a
//! reused connection had been closed (a Redis restart) is retried once on a
//! new connection. Timeouts are never retried (the server may have run the
//! command). The lease renewer has a connection of its own.
//!
//! `RSESSION_TEST_NO_RENEW=1` in the environment (test-only; never set it in
//! production) turns lease renewal off, so tests can make a holder lose its
//! lock by pausing it past its lease.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use redis::{Client, Connection, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisError, Script};

use super::{Holder, LockRequest, LockToken, Locked, Result, Save, SessionId, Store};
use crate::config::{RedisAddr, RedisConfig};
use crate::error::StoreError;

const NAME: &str = "redis";
/// How long a wake element lives when no waiter takes it. Long enough for a
/// waiter between its failed attempt and its BLPOP; short so that stale
/// elements cost at most one extra attempt.
const WAKE_TTL_MS: u64 = 1000;
/// Shortest block on the wake list (BLPOP 0 would mean "forever").
const MIN_BLOCK: Duration = Duration::from_millis(1);
/// Test-only switch, see the module doc.
pub const NO_RENEW_ENV: &str = "RSESSION_TEST_NO_RENEW";

/// Takes the lock if free (or already ours: a retried call) and reads the
/// data. KEYS: lock, data. ARGV: lock value, lease ms.
/// Returns {1, data|nil, 0} or {0, lock value, lease ms left}.
static ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local v = redis.call('GET', KEYS[1])
if v == false or v == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {1, redis.call('GET', KEYS[2]), 0}
end
return {0, v, redis.call('PTTL', KEYS[1])}
",
    )
});

/// Under our lock only: writes ('w'), touches ('t') or leaves ('-') the data,
/// then optionally releases the lock and wakes one waiter.
/// KEYS: lock, data, wake. ARGV: token, op, data ttl ms (0 = none),
/// release (1/0), wake ttl ms, data. Returns 1, or 0 when the lock is not ours.
static SAVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local v = redis.call('GET', KEYS[1])
if v == false or string.sub(v, 1, 32) ~= ARGV[1] then return 0 end
if ARGV[2] == 'w' then
  if ARGV[3] == '0' then redis.call('SET', KEYS[2], ARGV[6])
  else redis.call('SET', KEYS[2], ARGV[6], 'PX', ARGV[3]) end
elseif ARGV[2] == 't' then
  if ARGV[3] == '0' then redis.call('PERSIST', KEYS[2])
  else redis.call('PEXPIRE', KEYS[2], ARGV[3]) end
end
if ARGV[4] == '1' then
  redis.call('DEL', KEYS[1], KEYS[3])
  redis.call('RPUSH', KEYS[3], '1')
  redis.call('PEXPIRE', KEYS[3], ARGV[5])
end
return 1
",
    )
});

/// Extends the lease if the lock is still ours. KEYS: lock. ARGV: token, ms.
static RENEW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local v = redis.call('GET', KEYS[1])
if v == false or string.sub(v, 1, 32) ~= ARGV[1] then return 0 end
return redis.call('PEXPIRE', KEYS[1], ARGV[2])
",
    )
});

/// The keys of one session.
struct Keys {
    data: String,
    lock: String,
    wake: String,
}

fn keys(prefix: &str, id: &SessionId) -> Keys {
    Keys {
        data: format!("{prefix}{{{id}}}:data"),
        lock: format!("{prefix}{{{id}}}:lock"),
        wake: format!("{prefix}{{{id}}}:wake"),
    }
}

fn ms(d: Duration) -> u64 {
    d.as_millis().min(u64::MAX as u128) as u64
}

/// A lease or expiry in ms for PX/PEXPIRE: at least 1.
fn px(d: Duration) -> u64 {
    ms(d).max(1)
}

/// Parses a lock value `<token hex> <holder JSON>`.
fn parse_lock_value(v: &[u8]) -> Holder {
    let json = v.get(33..).unwrap_or_default();
    serde_json::from_slice(json).unwrap_or(Holder { host: "?".into(), pid: 0, uri: "?".into(), since_ms: 0 })
}

fn connection_info(cfg: &RedisConfig) -> ConnectionInfo {
    let addr = match &cfg.addr {
        RedisAddr::Tcp { host, port, tls: false } => ConnectionAddr::Tcp(host.clone(), *port),
        RedisAddr::Tcp { host, port, tls: true } => {
            ConnectionAddr::TcpTls { host: host.clone(), port: *port, insecure: false, tls_params: None }
        }
        RedisAddr::Unix { path } => ConnectionAddr::Unix(path.clone()),
    };
    let mut redis = redis::RedisConnectionInfo::default().set_db(cfg.db).set_skip_set_lib_name();
    if let Some(u) = &cfg.username {
        redis = redis.set_username(u);
    }
    if let Some(p) = &cfg.password {
        redis = redis.set_password(p);
    }
    // Infallible for a ConnectionAddr.
    let info = addr.into_connection_info().expect("ConnectionAddr into ConnectionInfo");
    let tcp = info.tcp_settings().clone().set_nodelay(true);
    info.set_tcp_settings(tcp).set_redis_settings(redis)
}

/// Where the server is, for messages (never the password).
fn describe_addr(cfg: &RedisConfig) -> String {
    match &cfg.addr {
        RedisAddr::Tcp { host, port, tls } => {
            format!("{}://{host}:{port}/{}", if *tls { "rediss" } else { "redis" }, cfg.db)
        }
        RedisAddr::Unix { path } => format!("redis+unix://{} (db {})", path.display(), cfg.db),
    }
}

/// Whether the connection is unusable after this error.
fn breaks_connection(e: &RedisError) -> bool {
    e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_unrecoverable_error()
}

/// Opens a connection with the config's timeouts.
fn connect(client: &Client, cfg: &RedisConfig) -> std::result::Result<Connection, RedisError> {
    let conn = client.get_connection_with_timeout(cfg.net.connect_timeout)?;
    conn.set_read_timeout(Some(cfg.net.timeout))?;
    conn.set_write_timeout(Some(cfg.net.timeout))?;
    Ok(conn)
}

pub struct RedisStore {
    cfg: RedisConfig,
    client: Client,
    conn: Option<Connection>,
    renewer: Option<Renewer>,
    /// Shown in errors: where the server is.
    addr: String,
}

impl RedisStore {
    /// Prepares the store; no I/O happens until the first call.
    pub fn open(cfg: &RedisConfig) -> Result<RedisStore> {
        let addr = describe_addr(cfg);
        let client = Client::open(connection_info(cfg))
            .map_err(|e| StoreError::Backend { store: NAME, message: format!("{addr}: {e}") })?;
        Ok(RedisStore { cfg: cfg.clone(), client, conn: None, renewer: None, addr })
    }

    fn keys(&self, id: &SessionId) -> Keys {
        keys(&self.cfg.net.prefix, id)
    }

    fn error(&self, what: &str, e: RedisError) -> StoreError {
        let message = if e.is_timeout() {
            format!("{}: {what}: no answer within {} ms ({e})", self.addr, ms(self.cfg.net.timeout))
        } else {
            format!("{}: {what}: {e}", self.addr)
        };
        StoreError::Backend { store: NAME, message }
    }

    /// Runs `f` on the connection, connecting first if needed. A reused
    /// connection found closed (server restarted) is replaced and `f` retried
    /// once; any I/O error or timeout drops the connection.
    fn run<T>(&mut self, what: &str, mut f: impl FnMut(&mut Connection) -> redis::RedisResult<T>) -> Result<T> {
        let mut retried = false;
        loop {
            let reused = self.conn.is_some();
            if self.conn.is_none() {
                match connect(&self.client, &self.cfg) {
                    Ok(c) => self.conn = Some(c),
                    Err(e) => return Err(self.error("cannot connect", e)),
                }
            }
            let conn = self.conn.as_mut().expect("connected above");
            match f(conn) {
                Ok(v) => return Ok(v),
                Err(e) => {
                    if breaks_connection(&e) {
                        self.conn = None;
                    }
                    if reused && !retried && e.is_connection_dropped() && !e.is_timeout() {
                        retried = true;
                        continue;
                    }
                    return Err(self.error(what, e));
                }
            }
        }
    }

    fn renewer(&mut self) -> &Renewer {
        let client = &self.client;
        let cfg = &self.cfg;
        self.renewer.get_or_insert_with(|| Renewer::start(client.clone(), cfg.clone()))
    }

    fn stop_renewing(&mut self, k: &Keys) {
        if let Some(r) = &self.renewer {
            r.remove(&k.lock);
        }
    }

    fn save_script(&mut self, k: &Keys, token: LockToken, op: &str, data: &[u8], ttl: Duration, release: bool) -> Result<bool> {
        let ttl_ms = ms(ttl);
        let token = token.hex();
        let r: i64 = self.run("write", |c| {
            SAVE.key(&k.lock)
                .key(&k.data)
                .key(&k.wake)
                .arg(&token)
                .arg(op)
                .arg(ttl_ms)
                .arg(if release { "1" } else { "0" })
                .arg(WAKE_TTL_MS)
                .arg(data)
                .invoke(c)
        })?;
        Ok(r == 1)
    }
}

impl Drop for RedisStore {
    fn drop(&mut self) {
        if let Some(r) = &self.renewer {
            r.stop();
        }
    }
}

impl Store for RedisStore {
    fn name(&self) -> &'static str {
        NAME
    }

    fn lock_and_read(&mut self, id: &SessionId, req: &LockRequest, _ttl: Duration) -> Result<Locked> {
        // Idle expiry: the data key carries it (PX at each write/touch), so
        // Redis itself makes idle data read as missing.
        let k = self.keys(id);
        let token = LockToken::random();
        let holder = serde_json::to_string(&req.holder).unwrap_or_default();
        let value = format!("{} {holder}", token.hex());
        let lease = px(req.ttl);
        let deadline = Instant::now() + req.wait;
        loop {
            let (got, bytes, pttl): (i64, Option<Vec<u8>>, i64) = self.run("take the lock and read", |c| {
                ACQUIRE.key(&k.lock).key(&k.data).arg(&value).arg(lease).invoke(c)
            })?;
            if got == 1 {
                if std::env::var_os(NO_RENEW_ENV).is_none_or(|v| v != "1") {
                    self.renewer().add(&k.lock, token, req.ttl);
                }
                return Ok(Locked::Acquired { token, data: bytes });
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let holder = bytes.as_deref().map(parse_lock_value);
                return Ok(Locked::TimedOut { holder });
            }
            // Block until a release wakes us, the lease ends, or time is up.
            let lease_left = if pttl > 0 { Duration::from_millis(pttl as u64) } else { MIN_BLOCK };
            let block = left.min(lease_left).max(MIN_BLOCK);
            let read_timeout = block + self.cfg.net.timeout;
            let normal_timeout = self.cfg.net.timeout;
            self.run("wait for the lock", |c| {
                c.set_read_timeout(Some(read_timeout))?;
                let r: Option<(Vec<u8>, Vec<u8>)> =
                    redis::cmd("BLPOP").arg(&k.wake).arg(block.as_secs_f64()).query(c)?;
                c.set_read_timeout(Some(normal_timeout))?;
                Ok(r)
            })?;
        }
    }

    fn read(&mut self, id: &SessionId, _ttl: Duration) -> Result<Option<Vec<u8>>> {
        let k = self.keys(id);
        self.run("read", |c| redis::cmd("GET").arg(&k.data).query(c))
    }

    fn save(&mut self, id: &SessionId, what: Save<'_>, ttl: Duration, lock: Option<(LockToken, bool)>) -> Result<()> {
        let k = self.keys(id);
        let (op, data): (&str, &[u8]) = match what {
            Save::Write(d) => ("w", d),
            Save::Touch => ("t", b""),
        };
        match lock {
            Some((token, release)) => {
                let ours = self.save_script(&k, token, op, data, ttl, release);
                if release || matches!(ours, Ok(false)) {
                    self.stop_renewing(&k);
                }
                if ours? { Ok(()) } else { Err(StoreError::LockLost) }
            }
            None => {
                let ttl_ms = ms(ttl);
                let cmd = match what {
                    Save::Write(d) => {
                        let mut cmd = redis::cmd("SET");
                        cmd.arg(&k.data).arg(d);
                        if ttl_ms > 0 {
                            cmd.arg("PX").arg(ttl_ms);
                        }
                        cmd
                    }
                    Save::Touch if ttl_ms > 0 => {
                        let mut cmd = redis::cmd("PEXPIRE");
                        cmd.arg(&k.data).arg(ttl_ms);
                        cmd
                    }
                    Save::Touch => {
                        let mut cmd = redis::cmd("PERSIST");
                        cmd.arg(&k.data);
                        cmd
                    }
                };
                self.run("write", |c| cmd.query::<redis::Value>(c).map(drop))
            }
        }
    }

    fn unlock(&mut self, id: &SessionId, token: LockToken) -> Result<()> {
        let k = self.keys(id);
        self.stop_renewing(&k);
        // A lock already lost is not an error: nothing is left to free.
        self.save_script(&k, token, "-", b"", Duration::ZERO, true).map(drop)
    }

    fn destroy(&mut self, id: &SessionId) -> Result<bool> {
        let k = self.keys(id);
        let n: i64 = self.run("destroy", |c| redis::cmd("DEL").arg(&k.data).query(c))?;
        Ok(n > 0)
    }

    fn exists(&mut self, id: &SessionId) -> Result<bool> {
        let k = self.keys(id);
        let n: i64 = self.run("check", |c| redis::cmd("EXISTS").arg(&k.data).query(c))?;
        Ok(n > 0)
    }

    /// Redis expires idle sessions itself (each write or touch sets the data
    /// key's expiry to the idle timeout), so there is nothing to collect, and
    /// scanning the keyspace would cost every request that happens to run gc.
    fn gc(&mut self, _max_idle: Duration) -> Result<u64> {
        Ok(0)
    }

    fn lock_holder(&mut self, id: &SessionId) -> Result<Option<Holder>> {
        let k = self.keys(id);
        let v: Option<Vec<u8>> = self.run("read the lock", |c| redis::cmd("GET").arg(&k.lock).query(c))?;
        Ok(v.as_deref().map(parse_lock_value))
    }
}

/// Renews the leases of the locks this store holds, from a thread of its own
/// (with its own connection), every third of each lease.
struct Renewer {
    shared: Arc<(Mutex<RenewState>, Condvar)>,
}

#[derive(Default)]
struct RenewState {
    /// lock key → (token hex, lease, next renewal due)
    locks: HashMap<String, (String, Duration, Instant)>,
    stop: bool,
}

impl Renewer {
    fn start(client: Client, cfg: RedisConfig) -> Renewer {
        let shared = Arc::new((Mutex::new(RenewState::default()), Condvar::new()));
        let theirs = shared.clone();
        // If the thread cannot start, locks simply are not renewed: they
        // still work for requests shorter than the lease.
        let _ = std::thread::Builder::new()
            .name("rsession-redis-renew".into())
            .spawn(move || renew_loop(&theirs, &client, &cfg));
        Renewer { shared }
    }

    fn add(&self, lock_key: &str, token: LockToken, lease: Duration) {
        let (m, cv) = &*self.shared;
        m.lock().locks.insert(lock_key.to_string(), (token.hex(), lease, Instant::now() + lease / 3));
        cv.notify_one();
    }

    fn remove(&self, lock_key: &str) {
        self.shared.0.lock().locks.remove(lock_key);
    }

    fn stop(&self) {
        let (m, cv) = &*self.shared;
        m.lock().stop = true;
        cv.notify_one();
    }
}

fn renew_loop(shared: &(Mutex<RenewState>, Condvar), client: &Client, cfg: &RedisConfig) {
    let (m, cv) = shared;
    let mut conn: Option<Connection> = None;
    let mut st = m.lock();
    loop {
        if st.stop {
            return;
        }
        let now = Instant::now();
        let due: Vec<(String, String, Duration)> = st
            .locks
            .iter()
            .filter(|(_, (_, _, at))| *at <= now)
            .map(|(k, (t, lease, _))| (k.clone(), t.clone(), *lease))
            .collect();
        if due.is_empty() {
            match st.locks.values().map(|(_, _, at)| *at).min() {
                Some(at) => {
                    cv.wait_until(&mut st, at);
                }
                None => cv.wait(&mut st),
            }
            continue;
        }
        for (k, _, lease) in &due {
            if let Some(e) = st.locks.get_mut(k) {
                e.2 = now + *lease / 3;
            }
        }
        drop(st);
        let mut lost = Vec::new();
        for (key, token, lease) in due {
            if conn.is_none() {
                conn = connect(client, cfg).ok();
            }
            let Some(c) = conn.as_mut() else { break };
            match RENEW.key(&key).arg(&token).arg(px(lease)).invoke::<i64>(c) {
                Ok(0) => lost.push((key, token)),
                Ok(_) => {}
                Err(e) => {
                    if breaks_connection(&e) {
                        conn = None;
                    }
                }
            }
        }
        st = m.lock();
        for (key, token) in lost {
            if st.locks.get(&key).is_some_and(|(t, _, _)| *t == token) {
                st.locks.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StoreConfig;
    use crate::store::now_ms;

    fn server() -> String {
        std::env::var("RSESSION_TEST_REDIS")
            .expect("RSESSION_TEST_REDIS is not set: run via make test (it starts redis-server)")
    }

    fn cfg_with(query: &str) -> RedisConfig {
        let url = format!("{}?{query}", server());
        match StoreConfig::parse(&url, std::path::Path::new("/tmp")).unwrap() {
            StoreConfig::Redis(c) => c,
            other => panic!("{other:?}"),
        }
    }

    /// A store on a prefix of this test's own.
    fn store(test: &str) -> RedisStore {
        RedisStore::open(&cfg_with(&format!("prefix=rt:{test}:{}:", LockToken::random().hex()))).unwrap()
    }

    fn twin(s: &RedisStore) -> RedisStore {
        RedisStore::open(&s.cfg).unwrap()
    }

    fn req(pid: u32, wait_ms: u64, ttl_ms: u64) -> LockRequest {
        LockRequest {
            holder: Holder { host: "h".into(), pid, uri: "/t".into(), since_ms: now_ms() },
            wait: Duration::from_millis(wait_ms),
            ttl: Duration::from_millis(ttl_ms),
        }
    }

    fn id(s: &str) -> SessionId {
        SessionId::parse(s.as_bytes()).unwrap()
    }

    const TTL: Duration = Duration::from_secs(1440);

    fn acquire(s: &mut RedisStore, a: &SessionId, r: &LockRequest) -> (LockToken, Option<Vec<u8>>) {
        match s.lock_and_read(a, r, TTL).unwrap() {
            Locked::Acquired { token, data } => (token, data),
            Locked::TimedOut { holder } => panic!("timed out, held by {holder:?}"),
        }
    }

    #[test]
    fn lock_write_release_and_binary_round_trip() {
        let mut s = store("rt");
        let a = id("abc");
        let (token, data) = acquire(&mut s, &a, &req(1, 0, 5000));
        assert_eq!(data, None);
        assert_eq!(s.lock_holder(&a).unwrap().unwrap().pid, 1);
        let all: Vec<u8> = (0..=255u8).collect();
        s.save(&a, Save::Write(&all), TTL, Some((token, true))).unwrap();
        assert!(s.lock_holder(&a).unwrap().is_none());
        assert_eq!(s.read(&a, TTL).unwrap(), Some(all.clone()));
        assert!(s.exists(&a).unwrap());
        // Lock, then close without writing.
        let (token, data) = acquire(&mut s, &a, &req(1, 0, 5000));
        assert_eq!(data, Some(all));
        s.unlock(&a, token).unwrap();
        assert!(s.lock_holder(&a).unwrap().is_none());
        assert!(s.destroy(&a).unwrap());
        assert!(!s.destroy(&a).unwrap());
        assert!(!s.exists(&a).unwrap());
        assert_eq!(s.gc(TTL).unwrap(), 0);
    }

    #[test]
    fn data_expires_with_idle_timeout_and_touch_refreshes() {
        let mut s = store("ttl");
        let a = id("abc");
        s.save(&a, Save::Write(b"x"), Duration::from_millis(300), None).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        s.save(&a, Save::Touch, Duration::from_millis(300), None).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(s.read(&a, TTL).unwrap().as_deref(), Some(&b"x"[..]));
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(s.read(&a, TTL).unwrap(), None);
    }

    #[test]
    fn lost_lock_is_refused_and_data_kept() {
        let mut s1 = store("lost");
        let mut s2 = twin(&s1);
        let a = id("abc");
        s1.save(&a, Save::Write(b"old"), TTL, None).unwrap();
        unsafe_no_renew(|| {
            let (t1, _) = acquire(&mut s1, &a, &req(1, 0, 150));
            // s1's lease runs out; s2 takes the lock and writes.
            let (t2, data) = acquire(&mut s2, &a, &req(2, 2000, 5000));
            assert_eq!(data.as_deref(), Some(&b"old"[..]));
            s2.save(&a, Save::Write(b"theirs"), TTL, Some((t2, false))).unwrap();
            let e = s1.save(&a, Save::Write(b"mine"), TTL, Some((t1, true)));
            assert!(matches!(e, Err(StoreError::LockLost)), "{e:?}");
            assert!(matches!(s1.save(&a, Save::Touch, TTL, Some((t1, true))), Err(StoreError::LockLost)));
            // Nor can s1 free s2's lock.
            s1.unlock(&a, t1).unwrap();
            assert_eq!(s1.lock_holder(&a).unwrap().unwrap().pid, 2);
            assert_eq!(s1.read(&a, TTL).unwrap().as_deref(), Some(&b"theirs"[..]));
            s2.unlock(&a, t2).unwrap();
        });
    }

    /// Held by tests that set or depend on NO_RENEW_ENV.
    static ENV: std::sync::Mutex<()> = std::sync::Mutex::new(());

    /// Runs `f` with lease renewal off. Tests touching the variable hold a
    /// lock so they do not race each other.
    fn unsafe_no_renew(f: impl FnOnce()) {
        let _g = ENV.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: only tests change this variable, under ENV; the store
        // reads it with std::env, which is synchronised with set_var.
        unsafe { std::env::set_var(NO_RENEW_ENV, "1") };
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        unsafe { std::env::remove_var(NO_RENEW_ENV) };
        if let Err(p) = r {
            std::panic::resume_unwind(p);
        }
    }

    #[test]
    fn renewal_keeps_a_long_held_lock() {
        let mut s1 = store("renew");
        let mut s2 = twin(&s1);
        let a = id("abc");
        let _g = ENV.lock().unwrap_or_else(|e| e.into_inner());
        let (t1, _) = acquire(&mut s1, &a, &req(1, 0, 200));
        // Five leases later the lock is still ours.
        let r = s2.lock_and_read(&a, &req(2, 1000, 5000), TTL).unwrap();
        assert!(matches!(r, Locked::TimedOut { holder: Some(Holder { pid: 1, .. }) }), "{r:?}");
        s1.save(&a, Save::Write(b"kept"), TTL, Some((t1, true))).unwrap();
        assert_eq!(s2.read(&a, TTL).unwrap().as_deref(), Some(&b"kept"[..]));
    }

    #[test]
    fn handoff_wakes_waiter_quickly() {
        let mut s1 = store("handoff");
        let cfg = s1.cfg.clone();
        let a = id("abc");
        let (t1, _) = acquire(&mut s1, &a, &req(1, 0, 10_000));
        let waiter = std::thread::spawn(move || {
            let mut s2 = RedisStore::open(&cfg).unwrap();
            let (t2, data) = acquire(&mut s2, &id("abc"), &req(2, 5000, 10_000));
            let got_at = Instant::now();
            s2.unlock(&id("abc"), t2).unwrap();
            (got_at, data)
        });
        std::thread::sleep(Duration::from_millis(100));
        let released_at = Instant::now();
        s1.save(&a, Save::Write(b"first"), TTL, Some((t1, true))).unwrap();
        let (got_at, data) = waiter.join().unwrap();
        assert_eq!(data.as_deref(), Some(&b"first"[..]));
        let delay = got_at.duration_since(released_at);
        eprintln!("handoff delay: {delay:?}");
        // Generous bound: polling would take the lease (10 s) here.
        assert!(delay < Duration::from_millis(500), "{delay:?}");
    }

    #[test]
    fn timeout_names_holder() {
        let mut s1 = store("timeout");
        let mut s2 = twin(&s1);
        let a = id("abc");
        let (t1, _) = acquire(&mut s1, &a, &req(4242, 0, 10_000));
        let started = Instant::now();
        let Locked::TimedOut { holder: Some(h) } = s2.lock_and_read(&a, &req(2, 150, 10_000), TTL).unwrap() else {
            panic!("expected a timeout")
        };
        assert!(started.elapsed() >= Duration::from_millis(150));
        assert!(started.elapsed() < Duration::from_millis(1500));
        assert_eq!((h.pid, h.uri.as_str(), h.host.as_str()), (4242, "/t", "h"));
        // wait = 0 fails at once.
        let started = Instant::now();
        assert!(matches!(s2.lock_and_read(&a, &req(2, 0, 10_000), TTL).unwrap(), Locked::TimedOut { .. }));
        assert!(started.elapsed() < Duration::from_millis(100));
        s1.unlock(&a, t1).unwrap();
    }

    #[test]
    fn dead_holder_frees_within_lease() {
        let mut s1 = store("dead");
        let mut s2 = twin(&s1);
        let a = id("abc");
        unsafe_no_renew(|| {
            // A holder that never renews and never releases (as if killed).
            let _ = acquire(&mut s1, &a, &req(1, 0, 300));
        });
        let started = Instant::now();
        let (t2, _) = acquire(&mut s2, &a, &req(2, 5000, 5000));
        assert!(started.elapsed() < Duration::from_millis(1000), "{:?}", started.elapsed());
        s2.unlock(&a, t2).unwrap();
    }

    #[test]
    fn prefixes_isolate_sites() {
        let mut s1 = store("iso");
        let mut s2 = store("iso");
        let a = id("abc");
        s1.save(&a, Save::Write(b"site1"), TTL, None).unwrap();
        assert_eq!(s2.read(&a, TTL).unwrap(), None);
        assert!(!s2.exists(&a).unwrap());
        let (t1, _) = acquire(&mut s1, &a, &req(1, 0, 5000));
        let (t2, _) = acquire(&mut s2, &a, &req(2, 0, 5000));
        s1.unlock(&a, t1).unwrap();
        s2.unlock(&a, t2).unwrap();
    }

    #[test]
    fn keys_share_a_hash_tag() {
        let k = keys("p:", &id("abc"));
        assert_eq!((k.data.as_str(), k.lock.as_str(), k.wake.as_str()), ("p:{abc}:data", "p:{abc}:lock", "p:{abc}:wake"));
    }

    #[test]
    fn reconnects_after_the_connection_is_killed() {
        let mut s = store("reconnect");
        let a = id("abc");
        s.save(&a, Save::Write(b"x"), TTL, None).unwrap();
        // Kill every client connection of this store from the server side, as
        // a restart would.
        let name = format!("rsession-test-{}", LockToken::random().hex());
        let _: () = redis::cmd("CLIENT").arg("SETNAME").arg(&name).query(s.conn.as_mut().unwrap()).unwrap();
        let mut admin = twin(&s);
        let _: i64 = admin
            .run("kill", |c| redis::cmd("CLIENT").arg("KILL").arg("SKIPME").arg("yes").arg("TYPE").arg("normal").query(c))
            .unwrap();
        assert_eq!(s.read(&a, TTL).unwrap().as_deref(), Some(&b"x"[..]));
    }

    #[test]
    fn down_server_is_an_error_not_a_hang() {
        // Nothing listens on port 1.
        let url = "redis://127.0.0.1:1?connect_timeout_ms=200&timeout_ms=200";
        let StoreConfig::Redis(cfg) = StoreConfig::parse(url, std::path::Path::new("/tmp")).unwrap() else { panic!() };
        let mut s = RedisStore::open(&cfg).unwrap();
        let started = Instant::now();
        let e = s.read(&id("abc"), TTL).unwrap_err().to_string();
        assert!(e.contains("127.0.0.1:1") && e.contains("cannot connect"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn unix_socket_and_db_selection() {
        let Ok(sock) = std::env::var("RSESSION_TEST_REDIS_SOCK") else {
            panic!("RSESSION_TEST_REDIS_SOCK is not set: run via make test")
        };
        let prefix = format!("rt:db:{}:", LockToken::random().hex());
        let open = |url: String| match StoreConfig::parse(&url, std::path::Path::new("/tmp")).unwrap() {
            StoreConfig::Redis(c) => RedisStore::open(&c).unwrap(),
            _ => unreachable!(),
        };
        let mut db0 = open(format!("redis+unix://{sock}?prefix={prefix}"));
        let mut db3 = open(format!("redis+unix://{sock}?db=3&prefix={prefix}"));
        let mut db3_tcp = open(format!("{}/3?prefix={prefix}", server()));
        let a = id("abc");
        db3.save(&a, Save::Write(b"in3"), TTL, None).unwrap();
        assert_eq!(db0.read(&a, TTL).unwrap(), None);
        assert_eq!(db3_tcp.read(&a, TTL).unwrap().as_deref(), Some(&b"in3"[..]));
        db3.destroy(&a).unwrap();
    }
}

//! The Redis store.
//!
//! Keys of one session share a hash tag, so they live in one cluster slot:
//! `<prefix>{<id>}:d` (data, expiring with the idle timeout),
//! `<prefix>{<id>}:l` (the lock: `<token hex>|<holder json>`, expiring with
//! the lease) and `<prefix>{<id>}:w` (the wake list waiters block on).
//!
//! Round trips: taking the lock and reading the data is one Lua script;
//! writing (or refreshing the expiry) and releasing is another, which checks
//! the owner token first, so a request that lost its lock never overwrites
//! the next holder's data. A release pushes onto the wake list; waiters block
//! on it with BLPOP until their deadline or the lock's lease runs out, so the
//! lock passes on the instant it is freed, without polling.
//!
//! The lease: while this process holds locks, a background thread with its
//! own connection renews them every third of the lease; a holder that dies
//! stops renewing and its lock expires within the lease.
//!
//! One connection per process, opened lazily (never at MINIT, so php-fpm
//! workers don't share the master's socket) and reopened once per call after
//! a connection error, so a Redis restart costs a failed request at most.

use std::time::{Duration, Instant};

use redis::io::tcp::TcpSettings;
use redis::{Client, ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo, Script, Value};

use super::lease::LeaseKeeper;
use super::{Holder, LockRequest, LockToken, Locked, Result, Save, SessionId, Store};
use crate::config::{RedisAddr, RedisConfig};
use crate::error::StoreError;

const NAME: &str = "redis";

/// Takes the lock if free (or already ours: a retried call whose reply was
/// lost) and reads the data. Returns {1, data} or {0, lock value, pttl}.
const ACQUIRE: &str = r#"
local cur = redis.call('GET', KEYS[1])
if (not cur) or cur == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {1, redis.call('GET', KEYS[2])}
end
return {0, cur, redis.call('PTTL', KEYS[1])}
"#;

/// Frees the lock (KEYS[1]) and leaves one wake-up on the wake list
/// (KEYS[3]) for the next waiter. Shared by SAVE and RELEASE.
macro_rules! release_lua {
    () => {
        r#"
  redis.call('DEL', KEYS[1], KEYS[3])
  redis.call('RPUSH', KEYS[3], '1')
  redis.call('PEXPIRE', KEYS[3], 5000)
"#
    };
}

/// Stores or refreshes the data; with a token, only while the lock is ours,
/// then optionally releases it and wakes one waiter. Returns 1, or 0 when
/// the lock was lost (nothing changed). KEYS: lock, data, wake.
const SAVE: &str = concat!(r#"
local token = ARGV[1]
if token ~= '' then
  local cur = redis.call('GET', KEYS[1])
  if (not cur) or string.sub(cur, 1, 32) ~= token then
    -- A retry of a write whose reply was lost finds its own work done.
    if (not cur) and ARGV[2] == 'w' and redis.call('GET', KEYS[2]) == ARGV[3] then return 1 end
    return 0
  end
end
if ARGV[2] == 'w' then
  redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
else
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
end
if token ~= '' and ARGV[5] == '1' then"#,
    release_lua!(),
    r#"end
return 1
"#
);

/// Releases the lock if it is ours and wakes one waiter. KEYS: lock, data
/// (unused), wake.
const RELEASE: &str = concat!(
    r#"
local cur = redis.call('GET', KEYS[1])
if cur and string.sub(cur, 1, 32) == ARGV[1] then"#,
    release_lua!(),
    r#"  return 1
end
return 0
"#
);

/// Extends the lease if the lock is still ours.
const RENEW: &str = r#"
local cur = redis.call('GET', KEYS[1])
if cur and string.sub(cur, 1, 32) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"#;

struct Scripts {
    acquire: Script,
    save: Script,
    release: Script,
}

pub struct RedisStore {
    client: Client,
    /// For messages: where the server is.
    addr: String,
    prefix: String,
    connect_timeout: Duration,
    timeout: Duration,
    conn: Option<redis::Connection>,
    scripts: Scripts,
    renewer: Option<LeaseKeeper>,
    /// Off only in tests of lost locks (env RSESSION_TEST_NO_RENEW=1 for
    /// whole processes): a holder that stops renewing, as a hung one would.
    renew_enabled: bool,
}

fn backend(addr: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend { store: NAME, message: format!("{addr}: {e}") }
}

impl RedisStore {
    pub fn open(config: &RedisConfig) -> Result<RedisStore> {
        let (addr, shown) = match &config.addr {
            RedisAddr::Tcp { host, port, tls: false } => (ConnectionAddr::Tcp(host.clone(), *port), format!("{host}:{port}")),
            RedisAddr::Tcp { host, port, tls: true } => (
                ConnectionAddr::TcpTls { host: host.clone(), port: *port, insecure: false, tls_params: None },
                format!("tls {host}:{port}"),
            ),
            RedisAddr::Unix { path } => (ConnectionAddr::Unix(path.clone()), path.display().to_string()),
        };
        let mut redis_info = RedisConnectionInfo::default().set_db(config.db).set_skip_set_lib_name();
        if let Some(u) = &config.username {
            redis_info = redis_info.set_username(u);
        }
        if let Some(p) = &config.password {
            redis_info = redis_info.set_password(p);
        }
        // Requests are small and strictly request/response: never let Nagle
        // hold a command back.
        let info = addr
            .into_connection_info()
            .map_err(|e| backend(&shown, e))?
            .set_tcp_settings(TcpSettings::default().set_nodelay(true))
            .set_redis_settings(redis_info);
        let client = Client::open(info).map_err(|e| backend(&shown, e))?;
        Ok(RedisStore {
            client,
            addr: shown,
            prefix: config.net.prefix.clone(),
            connect_timeout: config.net.connect_timeout,
            timeout: config.net.timeout,
            conn: None,
            scripts: Scripts { acquire: Script::new(ACQUIRE), save: Script::new(SAVE), release: Script::new(RELEASE) },
            renewer: None,
            renew_enabled: std::env::var_os("RSESSION_TEST_NO_RENEW").is_none(),
        })
    }

    fn key(&self, id: &SessionId, kind: &str) -> String {
        format!("{}{{{}}}:{}", self.prefix, id, kind)
    }

    fn connect(&self) -> redis::RedisResult<redis::Connection> {
        let conn = self.client.get_connection_with_timeout(self.connect_timeout)?;
        conn.set_read_timeout(Some(self.timeout))?;
        conn.set_write_timeout(Some(self.timeout))?;
        Ok(conn)
    }

    /// Runs `f` on the connection, reconnecting once if the connection broke
    /// (a restarted server, an idle connection the server closed).
    fn call<T>(&mut self, what: &str, mut f: impl FnMut(&mut redis::Connection) -> redis::RedisResult<T>) -> Result<T> {
        for attempt in 0..2 {
            let conn = match self.conn.as_mut() {
                Some(c) => c,
                None => {
                    let c = self.connect().map_err(|e| backend(&self.addr, format!("cannot connect: {e}")))?;
                    self.conn.insert(c)
                }
            };
            match f(conn) {
                Ok(v) => return Ok(v),
                Err(e) => {
                    let broken = e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() || e.is_timeout();
                    if broken {
                        self.conn = None;
                    }
                    if !broken || attempt == 1 || e.is_timeout() {
                        return Err(backend(&self.addr, format!("{what}: {e}")));
                    }
                }
            }
        }
        unreachable!("the loop returns on its second attempt")
    }

    /// Starts (Some(lease)) or stops (None) keeping a held lock alive.
    fn keep_alive(&mut self, key: &str, token: &LockToken, lease: Option<Duration>) {
        if !self.renew_enabled {
            return;
        }
        let (client, timeout) = (self.client.clone(), self.timeout);
        let keeper = self.renewer.get_or_insert_with(|| LeaseKeeper::start(renewer(client, timeout)));
        match lease {
            Some(ttl) => keeper.hold(key.to_string(), token.hex(), ttl),
            None => keeper.drop_key(key),
        }
    }
}

/// Renews one lock from the lease thread, on its own connection.
fn renewer(client: Client, timeout: Duration) -> impl FnMut(&str, &str, Duration) + Send {
    let script = Script::new(RENEW);
    let mut conn: Option<redis::Connection> = None;
    move |key, token, ttl| {
        if conn.is_none() {
            conn = client.get_connection_with_timeout(timeout).ok();
            if let Some(c) = &conn {
                let _ = c.set_read_timeout(Some(timeout));
                let _ = c.set_write_timeout(Some(timeout));
            }
        }
        if let Some(c) = conn.as_mut() {
            if script.key(key).arg(token).arg(millis(ttl)).invoke::<i64>(c).is_err() {
                conn = None; // a fresh connection next tick
            }
        }
    }
}

fn millis(d: Duration) -> u64 {
    (d.as_millis() as u64).max(1)
}

fn holder_of(lock_value: &[u8]) -> Option<Holder> {
    let text = std::str::from_utf8(lock_value).ok()?;
    let (_, json) = text.split_once('|')?;
    serde_json::from_str(json).ok()
}

fn bytes_of(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::BulkString(b) => Some(b.clone()),
        Value::SimpleString(s) => Some(s.clone().into_bytes()),
        _ => None,
    }
}

impl Store for RedisStore {
    fn name(&self) -> &'static str {
        NAME
    }

    fn lock_and_read(&mut self, id: &SessionId, req: &LockRequest, _ttl: Duration) -> Result<Locked> {
        let token = LockToken::random();
        let value = format!("{}|{}", token.hex(), serde_json::to_string(&req.holder).unwrap_or_default());
        let (lock_key, data_key, wake_key) = (self.key(id, "l"), self.key(id, "d"), self.key(id, "w"));
        let deadline = Instant::now() + req.wait;
        let lease = millis(req.ttl);
        loop {
            let script = self.scripts.acquire.clone();
            let reply: Vec<Value> = self.call("acquire the lock", |c| {
                script.key(&lock_key).key(&data_key).arg(&value).arg(lease).invoke(c)
            })?;
            let mut it = reply.into_iter();
            let won = matches!(it.next(), Some(Value::Int(1)));
            let second = it.next();
            if won {
                self.keep_alive(&lock_key, &token, Some(req.ttl));
                return Ok(Locked::Acquired { token, data: second.as_ref().and_then(bytes_of) });
            }
            let pttl = match it.next() {
                Some(Value::Int(ms)) if ms > 0 => Duration::from_millis(ms as u64),
                _ => Duration::from_millis(1),
            };
            let now = Instant::now();
            if now >= deadline {
                let holder = second.as_ref().and_then(bytes_of).and_then(|v| holder_of(&v));
                return Ok(Locked::TimedOut { holder });
            }
            // Sleep until woken by a release, the lease runs out (a dead
            // holder), or our deadline.
            let block = (deadline - now).min(pttl + Duration::from_millis(1));
            let timeout = self.timeout;
            let woke: Option<Value> = self.call("wait for the lock", |c| {
                c.set_read_timeout(Some(block + timeout))?;
                let r = redis::cmd("BLPOP").arg(&wake_key).arg(block.as_secs_f64()).query(c);
                c.set_read_timeout(Some(timeout))?;
                r
            })?;
            if woke.is_some() && Instant::now() >= deadline {
                // We took a wake-up we will not use: pass it on.
                let k = wake_key.clone();
                let _ = self.call("pass the wake-up on", |c| redis::cmd("RPUSH").arg(&k).arg("1").query::<i64>(c));
            }
        }
    }

    fn read(&mut self, id: &SessionId, _ttl: Duration) -> Result<Option<Vec<u8>>> {
        let key = self.key(id, "d");
        self.call("read", |c| redis::cmd("GET").arg(&key).query(c))
    }

    fn save(&mut self, id: &SessionId, what: Save<'_>, ttl: Duration, lock: Option<(LockToken, bool)>) -> Result<()> {
        let keys = [self.key(id, "l"), self.key(id, "d"), self.key(id, "w")];
        let (token, release) = match lock {
            Some((t, r)) => (t.hex(), r),
            None => (String::new(), false),
        };
        let (mode, data): (&str, &[u8]) = match what {
            Save::Write(d) => ("w", d),
            Save::Touch => ("t", b""),
        };
        let script = self.scripts.save.clone();
        let saved: i64 = self.call("write", |c| {
            script
                .key(&keys[0])
                .key(&keys[1])
                .key(&keys[2])
                .arg(&token)
                .arg(mode)
                .arg(data)
                .arg(millis(ttl))
                .arg(if release { "1" } else { "0" })
                .invoke(c)
        })?;
        if let Some((t, _)) = lock.filter(|_| release || saved == 0) {
            self.keep_alive(&keys[0], &t, None);
        }
        if saved == 0 {
            return Err(StoreError::LockLost);
        }
        Ok(())
    }

    fn unlock(&mut self, id: &SessionId, token: LockToken) -> Result<()> {
        let keys = [self.key(id, "l"), self.key(id, "d"), self.key(id, "w")];
        self.keep_alive(&keys[0], &token, None);
        let script = self.scripts.release.clone();
        self.call("release the lock", |c| {
            script.key(&keys[0]).key(&keys[1]).key(&keys[2]).arg(token.hex()).invoke::<i64>(c)
        })?;
        Ok(())
    }

    fn destroy(&mut self, id: &SessionId) -> Result<bool> {
        let key = self.key(id, "d");
        let n: i64 = self.call("destroy", |c| redis::cmd("DEL").arg(&key).query(c))?;
        Ok(n > 0)
    }

    fn exists(&mut self, id: &SessionId) -> Result<bool> {
        let key = self.key(id, "d");
        let n: i64 = self.call("exists", |c| redis::cmd("EXISTS").arg(&key).query(c))?;
        Ok(n > 0)
    }

    /// Redis expires idle sessions itself (every data key carries the idle
    /// timeout), so there is never anything left for gc to remove.
    fn gc(&mut self, _max_idle: Duration) -> Result<u64> {
        Ok(0)
    }

    fn lock_holder(&mut self, id: &SessionId) -> Result<Option<Holder>> {
        let key = self.key(id, "l");
        let value: Option<Vec<u8>> = self.call("read the lock", |c| redis::cmd("GET").arg(&key).query(c))?;
        Ok(value.map(|v| {
            holder_of(&v).unwrap_or(Holder { host: "?".into(), pid: 0, uri: "?".into(), since_ms: 0 })
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StoreConfig;
    use crate::store::testing::{TTL, id, req};
    use std::path::Path;

    fn store(prefix: &str) -> RedisStore {
        let url = std::env::var("RSESSION_TEST_REDIS")
            .expect("RSESSION_TEST_REDIS is not set: run the Redis tests via `make test`, which starts redis-server");
        let path = format!("{url}?prefix=rtest:{prefix}:{}:", std::process::id());
        let StoreConfig::Redis(c) = StoreConfig::parse(&path, Path::new("/tmp")).unwrap() else { panic!() };
        RedisStore::open(&c).unwrap()
    }




    #[test]
    fn lock_write_release_and_holder() {
        let (mut a, mut b) = (store("lwr"), store("lwr"));
        let s = id("abc");
        let Locked::Acquired { token, data: None } = a.lock_and_read(&s, &req(0, 5000), TTL).unwrap() else { panic!() };
        assert_eq!(b.lock_holder(&s).unwrap().unwrap().pid, 7);
        let Locked::TimedOut { holder: Some(h) } = b.lock_and_read(&s, &req(50, 5000), TTL).unwrap() else { panic!() };
        assert_eq!(h.uri, "/t");
        a.save(&s, Save::Write(b"x\0y"), TTL, Some((token, true))).unwrap();
        assert!(b.lock_holder(&s).unwrap().is_none());
        let Locked::Acquired { token, data } = b.lock_and_read(&s, &req(0, 5000), TTL).unwrap() else { panic!() };
        assert_eq!(data.as_deref(), Some(&b"x\0y"[..]));
        b.unlock(&s, token).unwrap();
        assert!(b.destroy(&s).unwrap());
        assert!(!b.exists(&s).unwrap());
    }

    #[test]
    fn waiter_is_woken_at_release() {
        let mut a = store("wake");
        let s = id("abc");
        let Locked::Acquired { token, .. } = a.lock_and_read(&s, &req(0, 5000), TTL).unwrap() else { panic!() };
        let waiter = std::thread::spawn(move || {
            let mut b = store("wake");
            let t = Instant::now();
            let got = matches!(b.lock_and_read(&id("abc"), &req(5000, 5000), TTL).unwrap(), Locked::Acquired { .. });
            (got, Instant::now(), t)
        });
        std::thread::sleep(Duration::from_millis(200));
        let released = Instant::now();
        a.save(&s, Save::Write(b"1"), TTL, Some((token, true))).unwrap();
        let (got, acquired, _) = waiter.join().unwrap();
        assert!(got);
        // Woken by the release, not by a timeout (the lease is 5 s).
        assert!(acquired.duration_since(released) < Duration::from_millis(500));
    }

    #[test]
    fn lost_lock_refuses_write_and_keeps_data() {
        let (mut a, mut b) = (store("lost"), store("lost"));
        let s = id("abc");
        b.save(&s, Save::Write(b"before"), TTL, None).unwrap();
        // A holder that stops renewing: its 200 ms lease runs out.
        a.renew_enabled = false;
        let Locked::Acquired { token, .. } = a.lock_and_read(&s, &req(0, 200), TTL).unwrap() else { panic!() };
        std::thread::sleep(Duration::from_millis(400));
        let Locked::Acquired { token: t2, .. } = b.lock_and_read(&s, &req(0, 5000), TTL).unwrap() else { panic!() };
        b.save(&s, Save::Write(b"theirs"), TTL, Some((t2, false))).unwrap();
        assert!(matches!(a.save(&s, Save::Write(b"mine"), TTL, Some((token, true))), Err(StoreError::LockLost)));
        assert_eq!(b.read(&s, TTL).unwrap().as_deref(), Some(&b"theirs"[..]));
        assert!(b.lock_holder(&s).unwrap().is_some(), "the loser must not release the winner's lock");
        b.unlock(&s, t2).unwrap();
    }

    #[test]
    fn a_retried_write_and_release_finds_its_work_done() {
        let mut a = store("retry");
        let s = id("abc");
        let Locked::Acquired { token, .. } = a.lock_and_read(&s, &req(0, 5000), TTL).unwrap() else { panic!() };
        a.save(&s, Save::Write(b"v1"), TTL, Some((token, true))).unwrap();
        // The same call again, as after a reply lost on a dropped connection.
        a.save(&s, Save::Write(b"v1"), TTL, Some((token, true))).unwrap();
        // But different data under a lock that is gone is still refused.
        assert!(matches!(a.save(&s, Save::Write(b"v2"), TTL, Some((token, true))), Err(StoreError::LockLost)));
        assert_eq!(a.read(&s, TTL).unwrap().as_deref(), Some(&b"v1"[..]));
    }

    #[test]
    fn renewal_keeps_a_long_holder() {
        let (mut a, mut b) = (store("renew"), store("renew"));
        let s = id("abc");
        let Locked::Acquired { token, .. } = a.lock_and_read(&s, &req(0, 300), TTL).unwrap() else { panic!() };
        std::thread::sleep(Duration::from_millis(900));
        assert!(matches!(b.lock_and_read(&s, &req(0, 300), TTL).unwrap(), Locked::TimedOut { .. }));
        a.save(&s, Save::Write(b"ok"), TTL, Some((token, true))).unwrap();
    }

    #[test]
    fn prefixes_are_isolated_and_expiry_is_set() {
        let (mut a, mut b) = (store("iso-a"), store("iso-b"));
        let s = id("abc");
        a.save(&s, Save::Write(b"a"), Duration::from_millis(300), None).unwrap();
        assert!(!b.exists(&s).unwrap());
        std::thread::sleep(Duration::from_millis(500));
        assert!(!a.exists(&s).unwrap(), "the idle timeout is the key's expiry");
    }

    #[test]
    fn down_server_is_an_error_not_a_hang() {
        let c = match StoreConfig::parse("redis://127.0.0.1:1?connect_timeout_ms=200", Path::new("/tmp")).unwrap() {
            StoreConfig::Redis(c) => c,
            _ => panic!(),
        };
        let mut s = RedisStore::open(&c).unwrap();
        let t = Instant::now();
        let e = s.read(&id("abc"), TTL).unwrap_err().to_string();
        assert!(e.contains("127.0.0.1:1") && e.contains("cannot connect"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn lazy_write_touch_refreshes_expiry() {
        let mut a = store("touch");
        let s = id("abc");
        a.save(&s, Save::Write(b"x"), Duration::from_millis(400), None).unwrap();
        std::thread::sleep(Duration::from_millis(250));
        a.save(&s, Save::Touch, Duration::from_millis(400), None).unwrap();
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(a.read(&s, TTL).unwrap().as_deref(), Some(&b"x"[..]), "the touch moved the expiry");
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(a.read(&s, TTL).unwrap(), None);
        // A touch under the lock releases it too.
        let Locked::Acquired { token, .. } = a.lock_and_read(&s, &req(0, 5000), TTL).unwrap() else { panic!() };
        a.save(&s, Save::Touch, TTL, Some((token, true))).unwrap();
        assert!(a.lock_holder(&s).unwrap().is_none());
    }

    #[test]
    fn zero_wait_fails_at_once_and_names_the_holder() {
        let (mut a, mut b) = (store("zero"), store("zero"));
        let s = id("abc");
        let Locked::Acquired { token, .. } = a.lock_and_read(&s, &req(0, 5000), TTL).unwrap() else { panic!() };
        let t = Instant::now();
        let Locked::TimedOut { holder: Some(h) } = b.lock_and_read(&s, &req(0, 5000), TTL).unwrap() else { panic!() };
        assert!(t.elapsed() < Duration::from_millis(200), "{:?}", t.elapsed());
        assert_eq!((h.host.as_str(), h.pid, h.uri.as_str()), ("h", 7, "/t"));
        // Bounded by the wait, not by the 5 s lease.
        let t = Instant::now();
        assert!(matches!(b.lock_and_read(&s, &req(150, 5000), TTL).unwrap(), Locked::TimedOut { .. }));
        assert!(t.elapsed() >= Duration::from_millis(150) && t.elapsed() < Duration::from_millis(1500));
        a.unlock(&s, token).unwrap();
    }

    #[test]
    fn dead_holder_frees_within_its_lease() {
        let (mut a, mut b) = (store("dead"), store("dead"));
        let s = id("abc");
        // A holder that dies: never renews, never releases.
        a.renew_enabled = false;
        let Locked::Acquired { .. } = a.lock_and_read(&s, &req(0, 300), TTL).unwrap() else { panic!() };
        let t = Instant::now();
        let Locked::Acquired { token, .. } = b.lock_and_read(&s, &req(5000, 5000), TTL).unwrap() else { panic!() };
        assert!(t.elapsed() < Duration::from_millis(1000), "{:?}", t.elapsed());
        b.unlock(&s, token).unwrap();
    }

    #[test]
    fn reconnects_once_after_the_server_closed_the_connection() {
        let (mut a, mut b) = (store("reconnect"), store("reconnect"));
        let s = id("abc");
        a.save(&s, Save::Write(b"x"), TTL, None).unwrap();
        let me: i64 = redis::cmd("CLIENT").arg("ID").query(a.conn.as_mut().unwrap()).unwrap();
        let killed: i64 = b.call("kill", |c| redis::cmd("CLIENT").arg("KILL").arg("ID").arg(me).query(c)).unwrap();
        assert_eq!(killed, 1);
        assert_eq!(a.read(&s, TTL).unwrap().as_deref(), Some(&b"x"[..]));
    }

    #[test]
    fn unix_socket_and_db_selection() {
        let sock = std::env::var("RSESSION_TEST_REDIS_SOCK")
            .expect("RSESSION_TEST_REDIS_SOCK is not set: run the Redis tests via `make test`");
        let open = |path: String| match StoreConfig::parse(&path, Path::new("/tmp")).unwrap() {
            StoreConfig::Redis(c) => RedisStore::open(&c).unwrap(),
            _ => panic!(),
        };
        let prefix = format!("rtest:db:{}:", std::process::id());
        let mut db0 = open(format!("redis+unix://{sock}?prefix={prefix}"));
        let mut db3 = open(format!("redis+unix://{sock}?db=3&prefix={prefix}"));
        let tcp = std::env::var("RSESSION_TEST_REDIS").unwrap();
        let mut db3_tcp = open(format!("{tcp}/3?prefix={prefix}"));
        let s = id("abc");
        db3.save(&s, Save::Write(b"in3"), TTL, None).unwrap();
        assert_eq!(db0.read(&s, TTL).unwrap(), None);
        assert_eq!(db3_tcp.read(&s, TTL).unwrap().as_deref(), Some(&b"in3"[..]));
        assert!(db3.destroy(&s).unwrap());
    }

}

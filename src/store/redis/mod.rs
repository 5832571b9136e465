//! The Redis store.
//!
//! Keys of one session share a hash tag, so they live in one cluster slot:
//! `<prefix>{<id>}:s` (a hash: `d` data, `m` metadata, `a` last access,
//! `i` incarnation, `g` generation, `u` user; expiring with the session's
//! idle timeout), `<prefix>{<id>}:l` (the lock: `<token hex>|<holder json>`,
//! expiring with the lease) and `<prefix>{<id>}:w` (the wake list waiters
//! block on).
//!
//! The registry: `<prefix>u:<user>` is a set of that user's session ids,
//! kept by the same scripts that write and delete sessions, and expiring
//! with the longest-lived of them. `<prefix>gen` is the generation that
//! `kill_all_sessions()` increments; a session whose `g` is older reads as
//! missing and is deleted on sight. These two reach across hash slots: the
//! registry needs a single Redis server (or a primary with replicas), not
//! Redis Cluster.
//!
//! Round trips: taking the lock and reading the session is one pipeline
//! (a free lock) or one Lua script (a taken one, or ours after a lost reply);
//! writing (or recording an access) and releasing is another, which checks
//! the owner token and the incarnation first, so a request that lost its
//! lock never overwrites the next holder's data, and one whose session was
//! killed never brings it back. A release pushes onto the wake list; waiters
//! block on it with BLPOP until their deadline or the lock's lease runs out,
//! so the lock passes on the instant it is freed, without polling.
//!
//! The lease: while this process holds locks, a background thread with its
//! own connection renews them every third of the lease, and keeps the
//! session itself from expiring under a long request; a holder that dies
//! stops renewing and its lock expires within the lease.
//!
//! One connection per process, opened lazily (never at MINIT, so php-fpm
//! workers don't share the master's socket). Failed requests follow the
//! retry rule of [`super::net`]: an idle connection the server closed (a
//! restart) is replaced before anything is sent on it, and a request that
//! broke after it was sent goes out again only if it is idempotent.

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use super::lease::{self, LeaseKeeper};
use super::net::Resend;
use super::resp::{self, Connection, Script};
use super::{
    Holder, Listed, LockRequest, LockToken, Locked, Meta, Put, Record, Registry, Result, Save, SessionId, Store, holder_of,
    lock_value, now_secs,
};
use crate::config::{RedisAddr, RedisConfig};
use crate::error::StoreError;

const NAME: &str = "redis";

/// The reply parser of our RESP client, for the fuzz target
/// (fuzz/fuzz_targets/resp_reply.rs); the client itself stays private.
#[doc(hidden)]
pub use super::resp::{Parsed, Reply, parse_reply};

// The scripts live in .lua files beside this one; shared pieces (load(),
// free_lock()) are prepended to the scripts that call them.
const ACQUIRE: &str = concat!(include_str!("load.lua"), include_str!("acquire.lua"));
const READ: &str = concat!(include_str!("load.lua"), include_str!("read.lua"));
const SAVE: &str = concat!(include_str!("free_lock.lua"), include_str!("save.lua"));
const RELEASE: &str = concat!(include_str!("free_lock.lua"), include_str!("release.lua"));
const RENEW: &str = include_str!("renew.lua");
const DESTROY: &str = include_str!("destroy.lua");
const USER_SESSIONS: &str = include_str!("user_sessions.lua");
const KILL_USER: &str = include_str!("kill_user.lua");

/// The scripts, hashed once per process.
static ACQUIRE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(ACQUIRE));
static READ_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(READ));
static SAVE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(SAVE));
static RELEASE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(RELEASE));
static RENEW_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(RENEW));
static DESTROY_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(DESTROY));
static USER_SESSIONS_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(USER_SESSIONS));
static KILL_USER_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(KILL_USER));

/// A connection opened on first use, and the retry rule around it.
struct Link {
    config: RedisConfig,
    conn: Option<Connection>,
}

/// A failed [`Link::run`]: the error, and whether the request may have
/// reached the server (false: the connect failed before anything was sent).
struct Failed {
    error: resp::Error,
    sent: bool,
}

impl Link {
    fn new(config: RedisConfig) -> Link {
        Link { config, conn: None }
    }

    /// Runs `f` on a live connection. A connection that sat idle is checked
    /// first and replaced if the server closed it, so nothing is lost on it.
    /// After a request broke on the wire, the connection is dropped, and the
    /// request sent once more on a new one if [`super::net::may_resend`]
    /// allows (idempotent, not timed out). A server error leaves the
    /// connection in use.
    fn run<T>(&mut self, resend: Resend, mut f: impl FnMut(&mut Connection) -> resp::Result<T>) -> std::result::Result<T, Failed> {
        let mut sent = false;
        loop {
            if self.conn.as_ref().is_some_and(|c| !c.idle_ok()) {
                self.conn = None;
            }
            let conn = match self.conn.as_mut() {
                Some(c) => c,
                None => match Connection::open(&self.config) {
                    Ok(c) => self.conn.insert(c),
                    Err(error) => return Err(Failed { error, sent }),
                },
            };
            match f(conn) {
                Ok(v) => return Ok(v),
                Err(error @ resp::Error::Server(_)) => return Err(Failed { error, sent: true }),
                Err(resp::Error::Io(e)) => {
                    self.conn = None;
                    let again = !sent && super::net::may_resend(resend, &e, true);
                    sent = true;
                    if !again {
                        return Err(Failed { error: e.into(), sent });
                    }
                }
            }
        }
    }
}

pub struct RedisStore {
    link: Link,
    /// For messages: where the server is.
    addr: String,
    prefix: String,
    renewer: Option<LeaseKeeper>,
    /// Problems worked around, for the PHP layer to raise.
    warnings: Vec<String>,
    /// See [`lease::renewal_enabled`]; tests also turn it off per store.
    renew_enabled: bool,
}

fn backend(addr: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend { store: NAME, message: format!("{addr}: {e}") }
}

impl RedisStore {
    pub fn open(config: &RedisConfig) -> Result<RedisStore> {
        let addr = match &config.addr {
            RedisAddr::Tcp { host, port, tls: false } => format!("{host}:{port}"),
            RedisAddr::Tcp { host, port, tls: true } => format!("tls {host}:{port}"),
            RedisAddr::Unix { path } => path.display().to_string(),
        };
        Ok(RedisStore {
            link: Link::new(config.clone()),
            addr,
            prefix: config.net.prefix.clone(),
            renewer: None,
            warnings: Vec::new(),
            renew_enabled: lease::renewal_enabled(),
        })
    }

    /// `<prefix>{<id>}:<kind>`; built by hand, as it is on every call's path.
    fn key(&self, id: &SessionId, kind: &str) -> String {
        let mut k = String::with_capacity(self.prefix.len() + id.as_str().len() + kind.len() + 3);
        k.push_str(&self.prefix);
        k.push('{');
        k.push_str(id.as_str());
        k.push_str("}:");
        k.push_str(kind);
        k
    }

    fn user_prefix(&self) -> String {
        [self.prefix.as_str(), "u:"].concat()
    }

    fn generation_key(&self) -> String {
        [self.prefix.as_str(), "gen"].concat()
    }

    /// Runs a script over a session's four keys: lock, session, wake,
    /// generation.
    fn on_session(&mut self, what: &str, resend: Resend, script: &Script, id: &SessionId, args: &[&[u8]]) -> Result<Reply> {
        self.on_session_sent(what, resend, script, id, args).map_err(|(e, _)| e)
    }

    /// [`Self::on_session`], saying on failure whether the script may have run.
    fn on_session_sent(
        &mut self,
        what: &str,
        resend: Resend,
        script: &Script,
        id: &SessionId,
        args: &[&[u8]],
    ) -> std::result::Result<Reply, (StoreError, bool)> {
        let keys = [self.key(id, "l"), self.key(id, "s"), self.key(id, "w"), self.generation_key()];
        let keys = keys.each_ref().map(|k| k.as_bytes());
        self.call_sent(what, resend, |c| c.eval(script, &keys, args))
    }

    /// Runs `f` on the connection under the retry rule (see [`Link::run`]).
    fn call<T>(&mut self, what: &str, resend: Resend, f: impl FnMut(&mut Connection) -> resp::Result<T>) -> Result<T> {
        self.call_sent(what, resend, f).map_err(|(e, _)| e)
    }

    /// [`Self::call`], saying on failure whether the request may have
    /// reached the server.
    fn call_sent<T>(
        &mut self,
        what: &str,
        resend: Resend,
        f: impl FnMut(&mut Connection) -> resp::Result<T>,
    ) -> std::result::Result<T, (StoreError, bool)> {
        self.link.run(resend, f).map_err(|Failed { error, sent }| {
            let e = match sent {
                false => backend(&self.addr, format!("cannot connect: {error}")),
                true => backend(&self.addr, format!("{what}: {error}")),
            };
            (e, sent)
        })
    }

    /// The uncontended case without a script, which costs Redis several
    /// times the commands' own work: SET NX, then the session and the
    /// generation, pipelined in one round trip. None when the lock is taken
    /// (or is already ours: a retry after a lost reply), for ACQUIRE to sort
    /// out. Reading after a SET that another client's commands may follow is
    /// safe: only the lock holder writes, and kills are fenced at write.
    /// `may_hold` ends up saying whether the lock may be ours.
    ///
    /// Sent again after a broken connection: a second SET NX finds our own
    /// lock and yields None, and ACQUIRE then recognises the lock as ours.
    fn try_acquire(
        &mut self,
        id: &SessionId,
        lock_key: &str,
        value: &str,
        lease: &str,
        may_hold: &mut bool,
    ) -> Result<Option<Option<Record>>> {
        let (session_key, generation_key) = (self.key(id, "s"), self.generation_key());
        let replies = self
            .call_sent("acquire the lock", Resend::Idempotent, |c| {
                c.query(&[
                    &[b"SET", lock_key.as_bytes(), value.as_bytes(), b"NX", b"PX", lease.as_bytes()],
                    &[b"HMGET", session_key.as_bytes(), b"d", b"m", b"a", b"i", b"g", b"u"],
                    &[b"GET", generation_key.as_bytes()],
                    &[b"PTTL", session_key.as_bytes()],
                ])
            })
            .map_err(|(e, sent)| {
                *may_hold = sent;
                e
            })?;
        *may_hold = true;
        let [set, Reply::Array(fields), generation, left] = &replies[..] else {
            return Err(backend(&self.addr, "acquire the lock: unexpected reply"));
        };
        if *set == Reply::Nil {
            *may_hold = false;
            return Ok(None);
        }
        let stale = fields.get(4).and_then(number_of).unwrap_or(0) < number_of(generation).unwrap_or(0);
        if matches!(fields.get(1), Some(Reply::Bytes(_))) && stale {
            // Ended by a kill_all: remove it as the scripts' load() does.
            let index = fields.get(5).and_then(bytes_of).map(|u| [self.user_prefix().as_bytes(), u].concat());
            self.call("remove a session ended by kill_all", Resend::Idempotent, |c| {
                let del: &[&[u8]] = &[b"DEL", session_key.as_bytes()];
                match &index {
                    Some(k) => c.query(&[del, &[b"SREM", k, id.as_str().as_bytes()]]),
                    None => c.query(&[del]),
                }
            })?;
            return Ok(Some(None));
        }
        let record = record_of(id, fields.get(..4).unwrap_or(&[]))?;
        // A session about to expire is now in use: it must outlive the lock
        // until the lease renewals take over (as acquire.lua does).
        let keep = 2 * lease.parse::<i64>().unwrap_or(0);
        if matches!(left, Reply::Int(ms) if *ms >= 0 && *ms < keep) {
            let keep = keep.to_string();
            self.call("keep the session alive", Resend::Idempotent, |c| {
                c.query_one(&[b"PEXPIRE", session_key.as_bytes(), keep.as_bytes()])
            })?;
        }
        Ok(Some(record))
    }

    /// [`Store::lock_and_read`] but for the release on failure; `may_hold`
    /// says whether the lock may be ours.
    fn take_lock(&mut self, id: &SessionId, req: &LockRequest, token: LockToken, may_hold: &mut bool) -> Result<Locked> {
        let value = lock_value(&token, &req.holder);
        let (lock_key, wake_key) = (self.key(id, "l"), self.key(id, "w"));
        let deadline = Instant::now() + req.wait;
        let lease = millis(req.ttl).to_string();
        let user_prefix = self.user_prefix();
        if let Some(record) = self.try_acquire(id, &lock_key, &value, &lease, may_hold)? {
            self.keep_alive(&lock_key, &token, Some(req.ttl));
            return Ok(Locked::Acquired { token, record });
        }
        loop {
            let args: [&[u8]; 4] = [value.as_bytes(), lease.as_bytes(), user_prefix.as_bytes(), id.as_str().as_bytes()];
            // Idempotent: a second copy finds the lock ours (cur == ARGV[1]).
            let reply = self
                .on_session_sent("acquire the lock", Resend::Idempotent, &ACQUIRE_SCRIPT, id, &args)
                .map_err(|(e, sent)| {
                    *may_hold = sent;
                    e
                })?;
            *may_hold = true;
            let reply = match reply {
                Reply::Array(r) => r,
                _ => return Err(backend(&self.addr, "acquire the lock: unexpected reply")),
            };
            if matches!(reply.first(), Some(Reply::Int(1))) {
                let record = record_of(id, &reply[1..])?;
                self.keep_alive(&lock_key, &token, Some(req.ttl));
                return Ok(Locked::Acquired { token, record });
            }
            *may_hold = false;
            let pttl = match reply.get(2) {
                Some(Reply::Int(ms)) if *ms > 0 => Duration::from_millis(*ms as u64),
                _ => Duration::from_millis(1),
            };
            let now = Instant::now();
            if now >= deadline {
                let holder = reply.get(1).and_then(bytes_of).map(holder_of);
                return Ok(Locked::TimedOut { holder });
            }
            // Sleep until woken by a release, the lease runs out (a dead
            // holder), or our deadline.
            let block = (deadline - now).min(pttl + Duration::from_millis(1));
            // Whole milliseconds, at least one: BLPOP's 0 means forever.
            let ms = (block.as_micros().div_ceil(1000) as u64).max(1);
            let seconds = format!("{}.{:03}", ms / 1000, ms % 1000);
            // Waiting twice is still only waiting: a wake-up whose reply
            // was lost costs at most the holder's lease, the bound anyway.
            let woke = self.call("wait for the lock", Resend::Idempotent, |c| {
                c.query_blocking(&[b"BLPOP", wake_key.as_bytes(), seconds.as_bytes()], block)
            })?;
            if woke != Reply::Nil && Instant::now() >= deadline {
                // We took a wake-up we will not use: pass it on (once: a
                // second would wake a waiter for nothing).
                let _ = self.call("pass the wake-up on", Resend::Never, |c| c.query_one(&[b"RPUSH", wake_key.as_bytes(), b"1"]));
            }
        }
    }

    /// Starts (Some(lease)) or stops (None) keeping a held lock alive.
    fn keep_alive(&mut self, key: &str, token: &LockToken, lease: Option<Duration>) {
        if !self.renew_enabled {
            return;
        }
        let config = &self.link.config;
        let Some(keeper) = LeaseKeeper::get_or_start(&mut self.renewer, &mut self.warnings, NAME, || renewer(config.clone())) else {
            return;
        };
        match lease {
            Some(ttl) => keeper.hold(key.to_string(), token.hex(), ttl),
            None => keeper.drop_key(key),
        }
    }
}

/// Renews one lock from the lease thread, on its own connection, and
/// keeps the session's hash from expiring while the lock is held. True when
/// Redis ran the renewal (a lock no longer ours is not renewed, and that is
/// no failure); false when it could not be reached or refused to run it.
fn renewer(config: RedisConfig) -> impl FnMut(&str, &str, Duration) -> bool + Send {
    let mut link = Link::new(config);
    move |lock_key, token, ttl| {
        let session_key = sibling(lock_key, "s");
        let ttl = millis(ttl).to_string();
        link.run(Resend::Idempotent, |c| {
            c.eval(&RENEW_SCRIPT, &[lock_key.as_bytes(), session_key.as_bytes()], &[token.as_bytes(), ttl.as_bytes()])
        })
        .is_ok()
    }
}

/// Another key of the session whose key is `key`: `<prefix>{<id>}:<kind>`.
fn sibling(key: &str, kind: &str) -> String {
    let base = key.rsplit_once(':').map_or(key, |(base, _)| base);
    [base, ":", kind].concat()
}

fn millis(d: Duration) -> u64 {
    (d.as_millis() as u64).max(1)
}

/// A session as the scripts return it: data, meta, last access,
/// incarnation (the last three as the hash holds them).
fn record_of(id: &SessionId, fields: &[Reply]) -> Result<Option<Record>> {
    let [d, m, a, i] = fields else { return Ok(None) };
    let (Some(data), Some(m)) = (bytes_of(d), bytes_of(m)) else { return Ok(None) };
    let mut meta = Meta::decode(m).map_err(|e| StoreError::corrupt(NAME, id, e))?;
    if let Some(a) = number_of(a) {
        meta.last_access = a;
    }
    if let Some(i) = number_of(i) {
        meta.incarnation = i;
    }
    Ok(Some(Record { meta, data: data.to_vec() }))
}

/// A number as Redis returns it: a decimal string.
fn number_of(v: &Reply) -> Option<u64> {
    bytes_of(v).and_then(|b| std::str::from_utf8(b).ok()).and_then(|t| t.parse().ok())
}

fn bytes_of(v: &Reply) -> Option<&[u8]> {
    match v {
        Reply::Bytes(b) => Some(b),
        _ => None,
    }
}

fn int_of(v: &Reply) -> i64 {
    match v {
        Reply::Int(n) => *n,
        _ => 0,
    }
}

impl Store for RedisStore {
    fn name(&self) -> &'static str {
        NAME
    }

    /// A lock taken but not handed over (the session's metadata is corrupt,
    /// a cleanup or a reply failed) is released at once, not left to its
    /// lease; unless nothing was ever sent (a failed connect).
    fn lock_and_read(&mut self, id: &SessionId, req: &LockRequest) -> Result<Locked> {
        let token = LockToken::random();
        let mut may_hold = false;
        let locked = self.take_lock(id, req, token, &mut may_hold);
        if locked.is_err() && may_hold {
            // Token-checked, so harmless if the lock was never ours; on a
            // new connection if the last one broke.
            let _ = self.on_session("release the lock", Resend::Idempotent, &RELEASE_SCRIPT, id, &[token.hex().as_bytes()]);
        }
        locked
    }

    fn read(&mut self, id: &SessionId) -> Result<Option<Record>> {
        let user_prefix = self.user_prefix();
        let args: [&[u8]; 4] = [b"", b"", user_prefix.as_bytes(), id.as_str().as_bytes()];
        match self.on_session("read", Resend::Idempotent, &READ_SCRIPT, id, &args)? {
            Reply::Array(fields) => record_of(id, &fields),
            _ => Ok(None),
        }
    }

    /// The generation lives in the hash's `g` field, set by the script when
    /// it creates the session; the metadata's copy is not used.
    fn save(&mut self, id: &SessionId, put: &Put<'_>) -> Result<u64> {
        let release = put.lock.releases();
        let token = put.lock.token().map(|t| t.hex()).unwrap_or_default();
        let (mode, data): (&[u8], &[u8]) = match put.what {
            Save::Write(d) => (b"w", d),
            Save::Touch => (b"t", b""),
        };
        let meta = put.meta.encode();
        let ttl = if put.ttl.is_zero() { "0".to_string() } else { millis(put.ttl).to_string() };
        let fence = if put.existed { put.meta.incarnation.to_string() } else { String::new() };
        let incarnation = put.meta.incarnation.to_string();
        let now = now_secs().to_string();
        let user_prefix = self.user_prefix();
        let user = put.meta.user.as_deref().unwrap_or("");
        let args: [&[u8]; 12] = [
            token.as_bytes(),
            mode,
            data,
            &meta,
            ttl.as_bytes(),
            if release { b"1" } else { b"0" },
            fence.as_bytes(),
            incarnation.as_bytes(),
            user.as_bytes(),
            now.as_bytes(),
            user_prefix.as_bytes(),
            id.as_str().as_bytes(),
        ];
        // Never sent twice: a second copy could find the first one's
        // release and report a write that landed as a lost lock.
        let saved = int_of(&self.on_session("write", Resend::Never, &SAVE_SCRIPT, id, &args)?);
        if let Some(t) = put.lock.token().filter(|_| release || saved != 1) {
            let lock_key = self.key(id, "l");
            self.keep_alive(&lock_key, &t, None);
        }
        match saved {
            1 => Ok(put.meta.generation),
            -1 => Err(StoreError::Killed),
            _ => Err(StoreError::LockLost),
        }
    }

    fn unlock(&mut self, id: &SessionId, token: LockToken) -> Result<()> {
        let lock_key = self.key(id, "l");
        self.keep_alive(&lock_key, &token, None);
        self.on_session("release the lock", Resend::Idempotent, &RELEASE_SCRIPT, id, &[token.hex().as_bytes()])?;
        Ok(())
    }

    fn destroy(&mut self, id: &SessionId) -> Result<bool> {
        let keys = [self.key(id, "s"), self.generation_key()];
        let user_prefix = self.user_prefix();
        // Never twice: the second copy would report "did not exist".
        let n = self.call("destroy", Resend::Never, |c| {
            c.eval(&DESTROY_SCRIPT, &keys.each_ref().map(|k| k.as_bytes()), &[user_prefix.as_bytes(), id.as_str().as_bytes()])
        })?;
        Ok(int_of(&n) > 0)
    }

    /// Redis expires idle sessions itself (every session carries its own
    /// idle timeout as expiry; timeout 0 none), so gc finds nothing left.
    fn gc(&mut self, _default_timeout: u32) -> Result<u64> {
        Ok(0)
    }

    fn lock_holder(&mut self, id: &SessionId) -> Result<Option<Holder>> {
        let key = self.key(id, "l");
        let value = self.call("read the lock", Resend::Idempotent, |c| c.query_one(&[b"GET", key.as_bytes()]))?;
        Ok(bytes_of(&value).map(holder_of))
    }

    fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

}

impl Registry for RedisStore {
    fn user_sessions(&mut self, user: &str) -> Result<Vec<Listed>> {
        let keys = [format!("{}{user}", self.user_prefix()), self.generation_key()];
        let prefix = self.prefix.clone();
        let reply = self.call("list a user's sessions", Resend::Idempotent, |c| {
            c.eval(&USER_SESSIONS_SCRIPT, &keys.each_ref().map(|k| k.as_bytes()), &[prefix.as_bytes(), user.as_bytes()])
        })?;
        let Reply::Array(flat) = reply else { return Ok(Vec::new()) };
        let mut out = Vec::with_capacity(flat.len() / 4);
        for entry in flat.chunks_exact(4) {
            let Some(id) = bytes_of(&entry[0]).and_then(SessionId::parse) else { continue };
            let fields = [Reply::Bytes(Vec::new()), entry[1].clone(), entry[2].clone(), entry[3].clone()];
            if let Some(r) = record_of(&id, &fields)? {
                out.push(Listed { id, meta: r.meta });
            }
        }
        Ok(out)
    }

    fn kill_user(&mut self, user: &str, keep: Option<&SessionId>) -> Result<u64> {
        let keys = [format!("{}{user}", self.user_prefix()), self.generation_key()];
        let prefix = self.prefix.clone();
        let keep = keep.map(|k| k.as_str()).unwrap_or("");
        // Never twice: the second copy would count nothing.
        let n = self.call("kill a user's sessions", Resend::Never, |c| {
            c.eval(
                &KILL_USER_SCRIPT,
                &keys.each_ref().map(|k| k.as_bytes()),
                &[prefix.as_bytes(), user.as_bytes(), keep.as_bytes()],
            )
        })?;
        Ok(int_of(&n).max(0) as u64)
    }

    /// One INCR: every session created before it reads as missing from now
    /// on. Redis cannot count them without a scan, hence -1.
    fn kill_all(&mut self) -> Result<i64> {
        let key = self.generation_key();
        // Never twice: a second INCR would also end sessions created
        // between the two.
        self.call("kill all sessions", Resend::Never, |c| c.query_one(&[b"INCR", key.as_bytes()]))?;
        Ok(-1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StoreConfig;
    use crate::store::testing::{TTL, data, id, meta, put, read_data, registry_contract, req, write};
    use crate::store::{LockUse, UserChange};
    use std::io::{Read, Write};
    use std::net::{Shutdown, TcpListener, TcpStream};
    use std::path::Path;
    use std::sync::atomic::{AtomicU8, Ordering::SeqCst};
    use std::sync::{Arc, Mutex};

    fn test_redis() -> String {
        std::env::var("RSESSION_TEST_REDIS")
            .expect("RSESSION_TEST_REDIS is not set: run the Redis tests via `make test`, which starts redis-server")
    }

    fn store(prefix: &str) -> RedisStore {
        store_at(&test_redis(), prefix, "")
    }

    /// A store on `url` (`redis://host:port`) with a test prefix and more
    /// query keys (`&key=value…`).
    fn store_at(url: &str, prefix: &str, query: &str) -> RedisStore {
        let path = format!("{url}?prefix=rtest:{prefix}:{}:{query}", std::process::id());
        let StoreConfig::Redis(c) = StoreConfig::parse(&path, Path::new("/tmp")).unwrap() else { panic!() };
        RedisStore::open(&c).unwrap()
    }

    fn command(s: &mut RedisStore, args: &[&[u8]]) -> Reply {
        s.call("test command", Resend::Never, |c| c.query_one(args)).unwrap()
    }

    /// What [`Proxy`] does to the next request's reply.
    const PASS: u8 = 0;
    /// Drop it and close the connection: a reply lost on the wire.
    const CUT: u8 = 1;
    /// Hold it back, the connection left open: a server that stalls.
    const STALL: u8 = 2;

    /// A TCP proxy in front of the test Redis that can lose the reply to
    /// one request after the server has run it.
    struct Proxy {
        port: u16,
        next: Arc<AtomicU8>,
        /// Requests seen, one per client write.
        seen: Arc<Mutex<Vec<Vec<u8>>>>,
    }

    impl Proxy {
        fn start() -> Proxy {
            let upstream = test_redis().trim_start_matches("redis://").to_string();
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let port = listener.local_addr().unwrap().port();
            let (next, seen) = (Arc::new(AtomicU8::new(PASS)), Arc::new(Mutex::new(Vec::new())));
            let (next2, seen2) = (next.clone(), seen.clone());
            std::thread::spawn(move || {
                for client in listener.incoming() {
                    let Ok(mut client) = client else { continue };
                    let mut server = TcpStream::connect(&upstream).unwrap();
                    let fault = Arc::new(AtomicU8::new(PASS));
                    let (mut up, mut down, fault2) = (server.try_clone().unwrap(), client.try_clone().unwrap(), fault.clone());
                    std::thread::spawn(move || {
                        let mut b = vec![0; 1 << 16];
                        while let Ok(n @ 1..) = up.read(&mut b) {
                            match fault2.load(SeqCst) {
                                PASS if down.write_all(&b[..n]).is_ok() => {}
                                STALL => {}
                                _ => break,
                            }
                        }
                        let _ = down.shutdown(Shutdown::Both);
                    });
                    let (next, seen) = (next2.clone(), seen2.clone());
                    std::thread::spawn(move || {
                        let mut b = vec![0; 1 << 16];
                        while let Ok(n @ 1..) = client.read(&mut b) {
                            seen.lock().unwrap().push(b[..n].to_vec());
                            let f = next.swap(PASS, SeqCst);
                            fault.store(f, SeqCst);
                            if server.write_all(&b[..n]).is_err() {
                                break;
                            }
                            if f == CUT {
                                std::thread::sleep(Duration::from_millis(100)); // the server runs it
                                break;
                            }
                        }
                        let _ = client.shutdown(Shutdown::Both);
                        let _ = server.shutdown(Shutdown::Both);
                    });
                }
            });
            Proxy { port, next, seen }
        }

        fn url(&self) -> String {
            format!("redis://127.0.0.1:{}", self.port)
        }

        /// Arms a fault for the next request; returns a mark for [`Self::evals_since`].
        fn arm(&self, fault: u8) -> usize {
            self.next.store(fault, SeqCst);
            self.seen.lock().unwrap().len()
        }

        /// Scripts sent since `mark` (EVALSHA, or EVAL after NOSCRIPT).
        fn evals_since(&self, mark: usize) -> usize {
            self.seen.lock().unwrap()[mark..].iter().filter(|r| r.windows(4).any(|w| w == b"EVAL")).count()
        }
    }

    #[test]
    fn lock_write_release_and_holder() {
        let (mut a, mut b) = (store("lwr"), store("lwr"));
        let s = id("abc");
        let Locked::Acquired { token, record: None } = a.lock_and_read(&s, &req(0, 5000)).unwrap() else { panic!() };
        assert_eq!(b.lock_holder(&s).unwrap().unwrap().pid, 7);
        let Locked::TimedOut { holder: Some(h) } = b.lock_and_read(&s, &req(50, 5000)).unwrap() else { panic!() };
        assert_eq!(h.uri, "/t");
        a.save(&s, &put(Save::Write(b"x\0y"), &meta(), TTL, LockUse::Release(token))).unwrap();
        assert!(b.lock_holder(&s).unwrap().is_none());
        let Locked::Acquired { token, record } = b.lock_and_read(&s, &req(0, 5000)).unwrap() else { panic!() };
        assert_eq!(data(record).as_deref(), Some(&b"x\0y"[..]));
        b.unlock(&s, token).unwrap();
        assert!(b.destroy(&s).unwrap());
        assert!(!b.exists(&s).unwrap());
    }

    #[test]
    fn waiter_is_woken_at_release() {
        let mut a = store("wake");
        let s = id("abc");
        let Locked::Acquired { token, .. } = a.lock_and_read(&s, &req(0, 5000)).unwrap() else { panic!() };
        let waiter = std::thread::spawn(move || {
            let mut b = store("wake");
            let t = Instant::now();
            let got = matches!(b.lock_and_read(&id("abc"), &req(5000, 5000)).unwrap(), Locked::Acquired { .. });
            (got, Instant::now(), t)
        });
        std::thread::sleep(Duration::from_millis(200));
        let released = Instant::now();
        a.save(&s, &put(Save::Write(b"1"), &meta(), TTL, LockUse::Release(token))).unwrap();
        let (got, acquired, _) = waiter.join().unwrap();
        assert!(got);
        // Woken by the release, not by a timeout (the lease is 5 s).
        assert!(acquired.duration_since(released) < Duration::from_millis(500));
    }

    #[test]
    fn lost_lock_refuses_write_and_keeps_data() {
        let (mut a, mut b) = (store("lost"), store("lost"));
        let s = id("abc");
        b.save(&s, &put(Save::Write(b"before"), &meta(), TTL, LockUse::Unlocked)).unwrap();
        // A holder that stops renewing: its 200 ms lease runs out.
        a.renew_enabled = false;
        let Locked::Acquired { token, .. } = a.lock_and_read(&s, &req(0, 200)).unwrap() else { panic!() };
        std::thread::sleep(Duration::from_millis(400));
        let Locked::Acquired { token: t2, .. } = b.lock_and_read(&s, &req(0, 5000)).unwrap() else { panic!() };
        b.save(&s, &put(Save::Write(b"theirs"), &meta(), TTL, LockUse::Keep(t2))).unwrap();
        assert!(matches!(a.save(&s, &put(Save::Write(b"mine"), &meta(), TTL, LockUse::Release(token))), Err(StoreError::LockLost)));
        assert_eq!(read_data(&mut b, &s).as_deref(), Some(&b"theirs"[..]));
        assert!(b.lock_holder(&s).unwrap().is_some(), "the loser must not release the winner's lock");
        b.unlock(&s, t2).unwrap();
    }

    #[test]
    fn a_write_after_the_lock_was_released_is_lost_even_with_the_same_data() {
        let mut a = store("retry");
        let s = id("abc");
        let Locked::Acquired { token, .. } = a.lock_and_read(&s, &req(0, 5000)).unwrap() else { panic!() };
        a.save(&s, &put(Save::Write(b"v1"), &meta(), TTL, LockUse::Release(token))).unwrap();
        // The same call again: a write is never sent twice, so this is a new
        // request under a lock that is gone.
        assert!(matches!(a.save(&s, &put(Save::Write(b"v1"), &meta(), TTL, LockUse::Release(token))), Err(StoreError::LockLost)));
        assert!(matches!(a.save(&s, &put(Save::Write(b"v2"), &meta(), TTL, LockUse::Release(token))), Err(StoreError::LockLost)));
        assert_eq!(read_data(&mut a, &s).as_deref(), Some(&b"v1"[..]));
    }

    #[test]
    fn a_lost_lease_refuses_a_metadata_change_over_unchanged_data() {
        let (mut a, mut b) = (store("lostmeta"), store("lostmeta"));
        let s = id("abc");
        let ann = Meta { user: Some("ann".into()), ..meta() };
        b.save(&s, &Put { user: UserChange::From(None), ..put(Save::Write(b"same"), &ann, TTL, LockUse::Unlocked) }).unwrap();
        // A holder that stops renewing loses its 200 ms lease; another
        // request takes the lock and releases it.
        a.renew_enabled = false;
        let Locked::Acquired { token, record: Some(rec) } = a.lock_and_read(&s, &req(0, 200)).unwrap() else { panic!() };
        std::thread::sleep(Duration::from_millis(400));
        let Locked::Acquired { token: t2, .. } = b.lock_and_read(&s, &req(0, 5000)).unwrap() else { panic!() };
        b.unlock(&s, t2).unwrap();
        // The late holder logs in as bob: the data is as stored, the user not.
        let bob = Meta { user: Some("bob".into()), ..rec.meta };
        let p = Put { existed: true, user: UserChange::From(Some("ann")), ..put(Save::Write(b"same"), &bob, TTL, LockUse::Release(token)) };
        assert!(matches!(a.save(&s, &p), Err(StoreError::LockLost)), "set_user() must not be dropped silently");
        assert_eq!(b.read(&s).unwrap().unwrap().meta.user.as_deref(), Some("ann"));
        assert_eq!(b.user_sessions("ann").unwrap().len(), 1);
        assert!(b.user_sessions("bob").unwrap().is_empty());
    }

    #[test]
    fn a_lock_taken_over_corrupt_metadata_is_freed_at_once() {
        let (mut a, mut b) = (store("corrupt"), store("corrupt"));
        let s = id("abc");
        a.save(&s, &put(Save::Write(b"x"), &meta(), TTL, LockUse::Unlocked)).unwrap();
        let (session_key, lock_key) = (a.key(&s, "s"), a.key(&s, "l"));
        command(&mut a, &[b"HSET", session_key.as_bytes(), b"m", b"\xffgarbage"]);
        // The free lock (the pipeline)...
        assert!(a.lock_and_read(&s, &req(0, 5000)).is_err());
        assert_eq!(b.lock_holder(&s).unwrap(), None, "the lock outlived the failed read");
        // ...and one taken after a wait (the script).
        command(&mut b, &[b"SET", lock_key.as_bytes(), b"someone", b"PX", b"200"]);
        assert!(a.lock_and_read(&s, &req(3000, 5000)).is_err());
        assert_eq!(b.lock_holder(&s).unwrap(), None, "the lock outlived the failed read");
        command(&mut a, &[b"DEL", session_key.as_bytes()]);
        let Locked::Acquired { token, record: None } = b.lock_and_read(&s, &req(0, 5000)).unwrap() else { panic!() };
        b.unlock(&s, token).unwrap();
    }

    #[test]
    fn a_lock_whose_reply_timed_out_is_freed_at_once() {
        let proxy = Proxy::start();
        let (mut a, mut b) = (store_at(&proxy.url(), "stall", "&timeout_ms=200"), store("stall"));
        let s = id("abc");
        a.save(&s, &put(Save::Write(b"x"), &meta(), TTL, LockUse::Unlocked)).unwrap();
        proxy.arm(STALL);
        let e = a.lock_and_read(&s, &req(0, 5000)).unwrap_err().to_string();
        assert!(e.contains("acquire the lock"), "{e}");
        assert_eq!(b.lock_holder(&s).unwrap(), None, "the lock outlived the timeout");
        let Locked::Acquired { token, .. } = b.lock_and_read(&s, &req(0, 5000)).unwrap() else { panic!() };
        b.unlock(&s, token).unwrap();
    }

    #[test]
    fn a_reply_lost_on_the_wire_resends_only_what_may_run_twice() {
        let proxy = Proxy::start();
        let mut a = store_at(&proxy.url(), "resend", "");
        let s = id("abc");
        a.save(&s, &put(Save::Write(b"v1"), &meta(), TTL, LockUse::Unlocked)).unwrap();
        // A write whose reply is lost fails; it is not run a second time.
        let mark = proxy.arm(CUT);
        let e = a.save(&s, &put(Save::Write(b"v2"), &meta(), TTL, LockUse::Unlocked)).unwrap_err().to_string();
        assert!(e.contains("write"), "{e}");
        assert_eq!(proxy.evals_since(mark), 1, "a write was sent twice");
        // A read is sent again and succeeds.
        let mark = proxy.arm(CUT);
        assert!(read_data(&mut a, &s).is_some());
        assert!(proxy.evals_since(mark) >= 2);
        // So is a lock grab: the second copy finds the lock ours.
        proxy.arm(CUT);
        let Locked::Acquired { token, record: Some(_) } = a.lock_and_read(&s, &req(0, 5000)).unwrap() else { panic!() };
        a.unlock(&s, token).unwrap();
        assert_eq!(a.lock_holder(&s).unwrap(), None);
    }

    #[test]
    fn the_renewer_says_whether_it_reached_redis() {
        let mut a = store("renewer");
        let s = id("abc");
        let mut renew = renewer(a.link.config.clone());
        let lock_key = a.key(&s, "l");
        let Locked::Acquired { token, .. } = a.lock_and_read(&s, &req(0, 5000)).unwrap() else { panic!() };
        assert!(renew(&lock_key, &token.hex(), Duration::from_secs(5)));
        a.unlock(&s, token).unwrap();
        assert!(renew(&lock_key, &token.hex(), Duration::from_secs(5)), "a lock no longer ours is no failure");
        let StoreConfig::Redis(down) = StoreConfig::parse("redis://127.0.0.1:1?connect_timeout_ms=100", Path::new("/tmp")).unwrap() else {
            panic!()
        };
        assert!(!renewer(down)(&lock_key, &token.hex(), Duration::from_secs(5)));
    }

    #[test]
    fn the_lease_keeps_a_held_session_from_expiring() {
        let mut a = store("keepsession");
        let (s, long) = (id("abc"), id("long"));
        a.save(&s, &put(Save::Write(b"x"), &meta(), Duration::from_secs(1), LockUse::Unlocked)).unwrap();
        a.save(&long, &put(Save::Write(b"x"), &meta(), TTL, LockUse::Unlocked)).unwrap();
        let Locked::Acquired { token, record: Some(rec) } = a.lock_and_read(&s, &req(0, 300)).unwrap() else { panic!() };
        let Locked::Acquired { token: t2, .. } = a.lock_and_read(&long, &req(0, 300)).unwrap() else { panic!() };
        // Held past the session's 1 s idle timeout by a long request.
        std::thread::sleep(Duration::from_millis(1600));
        let p = Put { existed: true, ..put(Save::Write(b"y"), &rec.meta, TTL, LockUse::Release(token)) };
        a.save(&s, &p).expect("the session expired under its holder");
        assert_eq!(read_data(&mut a, &s).as_deref(), Some(&b"y"[..]));
        // A longer expiry is never shortened.
        let key = a.key(&long, "s");
        let Reply::Int(left) = command(&mut a, &[b"PTTL", key.as_bytes()]) else { panic!() };
        assert!(left > 90_000, "{left}");
        a.unlock(&long, t2).unwrap();
    }

    #[test]
    fn a_session_about_to_expire_outlives_the_lock_taken_on_it() {
        // Both ways of taking the lock: the free-lock pipeline and the
        // script that takes it after a wait.
        for contended in [false, true] {
            let (mut a, mut b) = (store("nearexpiry"), store("nearexpiry"));
            a.renew_enabled = false; // only what the lock taking itself does
            let s = id(if contended { "contended" } else { "free" });
            let held = if contended {
                let Locked::Acquired { token, .. } = b.lock_and_read(&s, &req(0, 5000)).unwrap() else { panic!() };
                Some(token)
            } else {
                None
            };
            a.save(&s, &put(Save::Write(b"x"), &meta(), Duration::from_millis(250), LockUse::Unlocked)).unwrap();
            let releaser = held.map(|t| {
                let sid = s.clone();
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(50));
                    b.unlock(&sid, t).unwrap();
                })
            });
            let Locked::Acquired { token, record: Some(rec) } = a.lock_and_read(&s, &req(2000, 2000)).unwrap() else {
                panic!("contended={contended}: the session should be read")
            };
            releaser.map(|r| r.join().unwrap());
            std::thread::sleep(Duration::from_millis(400));
            let p = Put { existed: true, ..put(Save::Write(b"y"), &rec.meta, TTL, LockUse::Release(token)) };
            a.save(&s, &p).unwrap_or_else(|e| panic!("contended={contended}: expired under its holder: {e}"));
        }
    }

    #[test]
    fn renewal_keeps_a_long_holder() {
        let (mut a, mut b) = (store("renew"), store("renew"));
        let s = id("abc");
        let Locked::Acquired { token, .. } = a.lock_and_read(&s, &req(0, 300)).unwrap() else { panic!() };
        std::thread::sleep(Duration::from_millis(900));
        assert!(matches!(b.lock_and_read(&s, &req(0, 300)).unwrap(), Locked::TimedOut { .. }));
        a.save(&s, &put(Save::Write(b"ok"), &meta(), TTL, LockUse::Release(token))).unwrap();
    }

    #[test]
    fn prefixes_are_isolated_and_expiry_is_set() {
        let (mut a, mut b) = (store("iso-a"), store("iso-b"));
        let s = id("abc");
        a.save(&s, &put(Save::Write(b"a"), &meta(), Duration::from_millis(300), LockUse::Unlocked)).unwrap();
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
        let e = s.read(&id("abc")).unwrap_err().to_string();
        assert!(e.contains("127.0.0.1:1") && e.contains("cannot connect"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn lazy_write_touch_refreshes_expiry() {
        let mut a = store("touch");
        let s = id("abc");
        a.save(&s, &put(Save::Write(b"x"), &meta(), Duration::from_millis(400), LockUse::Unlocked)).unwrap();
        std::thread::sleep(Duration::from_millis(250));
        a.save(&s, &put(Save::Touch, &meta(), Duration::from_millis(400), LockUse::Unlocked)).unwrap();
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(read_data(&mut a, &s).as_deref(), Some(&b"x"[..]), "the touch moved the expiry");
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(read_data(&mut a, &s), None);
        // A touch under the lock releases it too.
        a.save(&s, &put(Save::Write(b"y"), &meta(), TTL, LockUse::Unlocked)).unwrap();
        let Locked::Acquired { token, .. } = a.lock_and_read(&s, &req(0, 5000)).unwrap() else { panic!() };
        a.save(&s, &put(Save::Touch, &meta(), TTL, LockUse::Release(token))).unwrap();
        assert!(a.lock_holder(&s).unwrap().is_none());
    }

    #[test]
    fn zero_wait_fails_at_once_and_names_the_holder() {
        let (mut a, mut b) = (store("zero"), store("zero"));
        let s = id("abc");
        let Locked::Acquired { token, .. } = a.lock_and_read(&s, &req(0, 5000)).unwrap() else { panic!() };
        let t = Instant::now();
        let Locked::TimedOut { holder: Some(h) } = b.lock_and_read(&s, &req(0, 5000)).unwrap() else { panic!() };
        assert!(t.elapsed() < Duration::from_millis(200), "{:?}", t.elapsed());
        assert_eq!((h.host.as_str(), h.pid, h.uri.as_str()), ("h", 7, "/t"));
        // Bounded by the wait, not by the 5 s lease.
        let t = Instant::now();
        assert!(matches!(b.lock_and_read(&s, &req(150, 5000)).unwrap(), Locked::TimedOut { .. }));
        assert!(t.elapsed() >= Duration::from_millis(150) && t.elapsed() < Duration::from_millis(1500));
        a.unlock(&s, token).unwrap();
    }

    #[test]
    fn dead_holder_frees_within_its_lease() {
        let (mut a, mut b) = (store("dead"), store("dead"));
        let s = id("abc");
        // A holder that dies: never renews, never releases.
        a.renew_enabled = false;
        let Locked::Acquired { .. } = a.lock_and_read(&s, &req(0, 300)).unwrap() else { panic!() };
        let t = Instant::now();
        let Locked::Acquired { token, .. } = b.lock_and_read(&s, &req(5000, 5000)).unwrap() else { panic!() };
        assert!(t.elapsed() < Duration::from_millis(1000), "{:?}", t.elapsed());
        b.unlock(&s, token).unwrap();
    }

    #[test]
    fn reconnects_once_after_the_server_closed_the_connection() {
        let (mut a, mut b) = (store("reconnect"), store("reconnect"));
        let s = id("abc");
        a.save(&s, &put(Save::Write(b"x"), &meta(), TTL, LockUse::Unlocked)).unwrap();
        let Reply::Int(me) = a.link.conn.as_mut().unwrap().query_one(&[b"CLIENT", b"ID"]).unwrap() else { panic!() };
        let me = me.to_string();
        let killed = b.call("kill", Resend::Never, |c| c.query_one(&[b"CLIENT", b"KILL", b"ID", me.as_bytes()])).unwrap();
        assert_eq!(killed, Reply::Int(1));
        assert_eq!(read_data(&mut a, &s).as_deref(), Some(&b"x"[..]));
        // A write, never sent twice, is not lost either: the closed
        // connection is noticed before it goes out.
        let Reply::Int(me) = a.link.conn.as_mut().unwrap().query_one(&[b"CLIENT", b"ID"]).unwrap() else { panic!() };
        let me = me.to_string();
        assert_eq!(command(&mut b, &[b"CLIENT", b"KILL", b"ID", me.as_bytes()]), Reply::Int(1));
        std::thread::sleep(Duration::from_millis(50));
        a.save(&s, &put(Save::Write(b"y"), &meta(), TTL, LockUse::Unlocked)).unwrap();
        assert_eq!(read_data(&mut a, &s).as_deref(), Some(&b"y"[..]));
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
        db3.save(&s, &put(Save::Write(b"in3"), &meta(), TTL, LockUse::Unlocked)).unwrap();
        assert_eq!(read_data(&mut db0, &s), None);
        assert_eq!(read_data(&mut db3_tcp, &s).as_deref(), Some(&b"in3"[..]));
        assert!(db3.destroy(&s).unwrap());
    }


    #[test]
    fn large_sessions_pass_whole_and_their_buffers_are_let_go() {
        let mut a = store("large");
        let s = id("abc");
        // Bytes that look like protocol, across many reads.
        let big: Vec<u8> = b"$5\r\n*1\r\n-ERR\r\n\0".iter().copied().cycle().take(3 << 20).collect();
        let Locked::Acquired { token, .. } = a.lock_and_read(&s, &req(0, 5000)).unwrap() else { panic!() };
        a.save(&s, &put(Save::Write(&big), &meta(), TTL, LockUse::Release(token))).unwrap();
        let Locked::Acquired { token, record } = a.lock_and_read(&s, &req(0, 5000)).unwrap() else { panic!() };
        assert!(data(record).as_deref() == Some(&big[..]), "3 MB came back changed");
        a.unlock(&s, token).unwrap();
        assert_eq!(read_data(&mut a, &s).map(|d| d.len()), Some(big.len()));
        assert_eq!(a.lock_holder(&s).unwrap(), None, "still in step after the large replies");
        let (read_buf, write_buf) = a.link.conn.as_ref().unwrap().buffer_sizes();
        assert!(read_buf <= 256 * 1024 && write_buf <= 256 * 1024, "{read_buf} {write_buf}");
    }

    #[test]
    fn scripts_are_sent_again_after_the_server_forgot_them() {
        let (mut a, mut b) = (store("noscript"), store("noscript"));
        let s = id("abc");
        a.save(&s, &put(Save::Write(b"1"), &meta(), TTL, LockUse::Unlocked)).unwrap();
        b.call("flush", Resend::Never, |c| c.query_one(&[b"SCRIPT", b"FLUSH"])).unwrap();
        a.save(&s, &put(Save::Write(b"2"), &meta(), TTL, LockUse::Unlocked)).unwrap();
        assert_eq!(read_data(&mut a, &s).as_deref(), Some(&b"2"[..]));
    }

    #[test]
    fn a_server_error_is_reported_and_the_connection_stays_in_step() {
        let mut a = store("errors");
        let key = format!("{}k", a.prefix);
        let e = a
            .call("incr", Resend::Never, |c| {
                c.query(&[&[b"SET", key.as_bytes(), b"x"], &[b"INCR", key.as_bytes()], &[b"PING"]])
            })
            .unwrap_err()
            .to_string();
        assert!(e.contains("incr: ERR value is not an integer"), "{e}");
        let pong = a.call("ping", Resend::Never, |c| c.query_one(&[b"PING"])).unwrap();
        assert_eq!(pong, Reply::Bytes(b"PONG".to_vec()));
    }

    #[test]
    fn registry() {
        registry_contract(&|| Box::new(store("registry")));
    }

    #[test]
    fn user_index_lives_as_long_as_its_longest_session() {
        let mut a = store("uttl");
        let ttl = |a: &mut RedisStore, k: &str| -> i64 { int_of(&a.call("pttl", Resend::Never, |c| c.query_one(&[b"PTTL", k.as_bytes()])).unwrap()) };
        let ukey = format!("{}u:ivy", a.prefix);
        let m = Meta { user: Some("ivy".into()), ..meta() };
        let p = Put { user: UserChange::From(None), ..put(Save::Write(b"1"), &m, Duration::from_secs(50), LockUse::Unlocked) };
        a.save(&id("i1"), &p).unwrap();
        let t = ttl(&mut a, &ukey);
        assert!(t > 40_000 && t <= 50_000, "{t}");
        let forever = Meta { timeout: 0, timeout_set: true, ..m.clone() };
        a.save(&id("i2"), &Put { user: UserChange::From(None), ..put(Save::Write(b"2"), &forever, Duration::ZERO, LockUse::Unlocked) }).unwrap();
        assert_eq!(ttl(&mut a, &ukey), -1, "a session that never times out keeps its index");
        let k2 = a.key(&id("i2"), "s");
        assert_eq!(ttl(&mut a, &k2), -1);
        let _ = write;
        let _ = data;
    }
}

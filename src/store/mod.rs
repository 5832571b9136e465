//! Stores keep session bytes, locks and expiry. They know nothing of PHP.
//!
//! One file per store. The engine drives a store through [`Store`]; a store
//! that can do two steps in one round trip (lock + read, write + unlock)
//! overrides the combined methods, whose defaults simply chain the parts.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::config::StoreConfig;
use crate::error::StoreError;
pub use crate::meta::Meta;

pub mod compress;
pub mod files;
mod lease;
pub mod net;
pub mod memcached;
pub mod memory;
pub mod redis;
mod resp;
pub mod spin;
pub mod sql;
pub mod write_through;

pub type Result<T> = std::result::Result<T, StoreError>;

/// A validated session id: only PHP's session id characters
/// (`A-Z a-z 0-9 , -`), 1 to 256 bytes. Safe as a file name or key part.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(String);

pub const MAX_ID_LEN: usize = 256;

impl SessionId {
    pub fn parse(raw: &[u8]) -> Option<SessionId> {
        let ok = !raw.is_empty()
            && raw.len() <= MAX_ID_LEN
            && raw.iter().all(|b| b.is_ascii_alphanumeric() || *b == b',' || *b == b'-');
        // Checked above: ASCII only.
        ok.then(|| SessionId(String::from_utf8_lossy(raw).into_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who holds a lock: shown in lock-timeout warnings and by `lock_info()`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub host: String,
    pub pid: u32,
    pub uri: String,
    /// Unix milliseconds when the lock was taken.
    pub since_ms: u64,
    /// Which member of a write-through store holds the lock, e.g.
    /// `cache memcached`; set when read back, never stored.
    #[serde(skip)]
    pub member: Option<String>,
}

impl Holder {
    pub fn held_for(&self) -> Duration {
        Duration::from_millis(now_ms().saturating_sub(self.since_ms))
    }

    pub fn unknown() -> Holder {
        Holder { host: "?".into(), pid: 0, uri: "?".into(), since_ms: 0, member: None }
    }

    pub fn describe(&self) -> String {
        format!(
            "held by pid {} on host {} for {} ms (uri {})",
            self.pid,
            self.host,
            self.held_for().as_millis(),
            self.uri
        )
    }
}

/// Proof of holding a session's lock: 128 random bits, compared by the store
/// before it writes or releases, so a request that lost its lock can never
/// overwrite or free the next holder's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockToken(pub u128);

impl LockToken {
    pub fn random() -> LockToken {
        let mut b = [0u8; 16];
        // getrandom only fails when the OS has no entropy source at all; the
        // clock and pid are then still unique enough to tell holders apart.
        if getrandom::fill(&mut b).is_err() {
            let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
            return LockToken(t ^ ((std::process::id() as u128) << 96));
        }
        LockToken(u128::from_le_bytes(b))
    }

    /// 32 lowercase hex digits (by hand: the formatter showed in profiles).
    pub fn hex(&self) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(32);
        for shift in (0..32).rev() {
            out.push(DIGITS[((self.0 >> (shift * 4)) & 0xf) as usize] as char);
        }
        out
    }
}

/// How to take a lock.
#[derive(Debug, Clone)]
pub struct LockRequest {
    pub holder: Holder,
    /// Longest wait; zero fails at once when the lock is held.
    pub wait: Duration,
    /// Lease: a lock not renewed for this long is free again.
    pub ttl: Duration,
}

/// Polling for a lock where nothing wakes the waiter (memcached; files
/// past its helper threads): jittered exponential backoff from 0.5 ms,
/// capped at 4 ms so a handoff is quick, never sleeping past the deadline.
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff { next: Duration::from_micros(500) }
    }
}

impl Backoff {
    /// Sleeps the next interval (plus up to 0.5 ms of jitter, so waiters
    /// spread out), cut short at `deadline`.
    pub fn sleep(&mut self, deadline: Instant) {
        let jitter = Duration::from_micros(u64::from(LockToken::random().0 as u16) % 500);
        std::thread::sleep((self.next + jitter).min(deadline.saturating_duration_since(Instant::now())));
        self.next = (self.next * 2).min(Duration::from_millis(4));
    }
}

/// A stored session: its metadata and data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub meta: Meta,
    pub data: Vec<u8>,
}

/// The outcome of [`Store::lock_and_read`].
#[derive(Debug)]
pub enum Locked {
    /// The lock is ours; the session as read under it (None: no such session).
    Acquired { token: LockToken, record: Option<Record> },
    /// The wait ran out; the holder, when the store knows it.
    TimedOut { holder: Option<Holder> },
}

/// What [`Store::save`] stores.
#[derive(Debug, Clone, Copy)]
pub enum Save<'a> {
    /// Replace data and metadata.
    Write(&'a [u8]),
    /// Keep both, record the access and refresh the expiry (lazy write).
    Touch,
}

/// What a save does with the session's lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockUse {
    /// No lock is held (rsession.locking=0, a write without a read).
    Unlocked,
    /// Only while this lock is still ours; keep holding it.
    Keep(LockToken),
    /// Only while this lock is still ours; free it in the same step.
    Release(LockToken),
}

impl LockUse {
    pub fn token(self) -> Option<LockToken> {
        match self {
            LockUse::Unlocked => None,
            LockUse::Keep(t) | LockUse::Release(t) => Some(t),
        }
    }

    pub fn releases(self) -> bool {
        matches!(self, LockUse::Release(_))
    }
}

/// Whether a save moves the session between users' indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserChange<'a> {
    /// The user is as stored.
    Unchanged,
    /// The user changed from this one (None: the session had none) to
    /// `Put::meta.user`.
    From(Option<&'a str>),
}

/// One save: what, for how long, under which lock, over what.
#[derive(Debug, Clone, Copy)]
pub struct Put<'a> {
    pub what: Save<'a>,
    pub meta: &'a Meta,
    /// Storage expiry from now; zero = never (the safety net behind the
    /// engine's own idle check).
    pub ttl: Duration,
    pub lock: LockUse,
    /// The session existed when read: the write must land on that same
    /// session (same incarnation, not ended by a kill_all since), never
    /// recreate one killed meanwhile.
    pub existed: bool,
    pub user: UserChange<'a>,
    /// Write-through's fence: the write applies only while the stored
    /// session's version ([`Meta::version`]) is still this one, the one the
    /// request read (0 also matches no session); otherwise nothing changes
    /// and it fails as [`StoreError::LockLost`]. Checked by the durable
    /// stores (SQL, files) on writes; the caches ignore it.
    pub expect_version: Option<u64>,
}

/// One entry of a user's sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub id: SessionId,
    pub meta: Meta,
}

/// The session registry: the per-user index and the kill switches.
pub trait Registry {
    /// The sessions the per-user index lists for `user`, dropping entries
    /// whose session is gone. Cost grows with that user's sessions only.
    fn user_sessions(&mut self, user: &str) -> Result<Vec<Listed>>;

    /// Destroys every session of `user` but `keep`; returns how many.
    fn kill_user(&mut self, user: &str, keep: Option<&SessionId>) -> Result<u64>;

    /// Ends every session under this prefix at once, whatever their number:
    /// sessions older than the new generation read as missing from now on,
    /// and a write over one of them is refused as [`StoreError::Killed`].
    /// Returns how many were ended, or -1 when the store cannot count them
    /// cheaply.
    fn kill_all(&mut self) -> Result<i64>;
}

pub trait Store: Registry + Send {
    /// "files", "redis", "memcached".
    fn name(&self) -> &'static str;

    /// Takes the session's lock, waiting at most `req.wait`, and reads the
    /// session under it. A session killed by `kill_all` reads as missing.
    /// On an error the lock is not held (a store that took it frees it).
    fn lock_and_read(&mut self, id: &SessionId, req: &LockRequest) -> Result<Locked>;

    /// Reads without the lock.
    fn read(&mut self, id: &SessionId) -> Result<Option<Record>>;

    /// Stores data and metadata (or records an access). Fails with
    /// [`StoreError::LockLost`] when the lock is no longer ours and with
    /// [`StoreError::Killed`] when the session it read is gone; nothing
    /// changes then (a [`LockUse::Release`] still frees the lock). Returns
    /// the session's generation, stamped by the store when it creates one,
    /// for the caller to keep in the metadata it writes next.
    fn save(&mut self, id: &SessionId, put: &Put<'_>) -> Result<u64>;

    /// Frees the lock if `token` still holds it; a lock already lost is not an
    /// error here (there is nothing left to free).
    fn unlock(&mut self, id: &SessionId, token: LockToken) -> Result<()>;

    /// Removes the session (data, metadata, index entry) without waiting for
    /// or touching its lock: a holder's later write is refused. Returns
    /// whether a live session existed (one ended by kill_all did not).
    fn destroy(&mut self, id: &SessionId) -> Result<bool>;

    /// Whether the session exists (strict mode, id collisions). Stores
    /// with a cheaper test than a read override it.
    fn exists(&mut self, id: &SessionId) -> Result<bool> {
        Ok(self.read(id)?.is_some())
    }

    /// Removes sessions idle longer than their timeout (`default_timeout`
    /// for those without their own); returns how many. A session whose
    /// lock is held is in use and stays.
    fn gc(&mut self, default_timeout: u32) -> Result<u64>;

    /// Who holds the lock now, if anyone.
    fn lock_holder(&mut self, id: &SessionId) -> Result<Option<Holder>>;

    /// Problems the store worked around (a pool server skipped), to be
    /// raised as warnings.
    fn take_warnings(&mut self) -> Vec<String> {
        Vec::new()
    }

    /// Whether a data write bumps [`Meta::version`] (write-through): the
    /// engine then counts it up in the metadata it keeps.
    fn versioned(&self) -> bool {
        false
    }

    /// Lines for phpinfo() and `stats()` about the members of a composed
    /// store: (name, value).
    fn describe(&self) -> Vec<(String, String)> {
        Vec::new()
    }
}

/// A lock's stored value: `<token hex>|<holder json>` (Redis, memcached).
pub fn lock_value(token: &LockToken, holder: &Holder) -> String {
    format!("{}|{}", token.hex(), serde_json::to_string(holder).unwrap_or_default())
}

/// The holder named in a stored lock value; a value we cannot read still
/// means the lock is held, by someone unknown.
pub fn holder_of(lock_value: &[u8]) -> Holder {
    std::str::from_utf8(lock_value)
        .ok()
        .and_then(|t| t.split_once('|'))
        .and_then(|(_, json)| serde_json::from_str(json).ok())
        .unwrap_or_else(Holder::unknown)
}

/// Opens the store a config names. Every store reads compressed data,
/// whatever its own `compress` setting (see [`compress`]).
pub fn open(config: &StoreConfig) -> Result<Box<dyn Store>> {
    let store: Box<dyn Store> = match config {
        // Each member is opened (and compressed) as its own path says.
        StoreConfig::WriteThrough { cache, store, lazy_touch } => {
            return Ok(Box::new(write_through::WriteThrough::new(open(cache)?, open(store)?, *lazy_touch)));
        }
        StoreConfig::Files { dir, .. } => Box::new(files::FilesStore::open(dir)?),
        StoreConfig::Redis(c) => Box::new(redis::RedisStore::open(c)?),
        StoreConfig::Memcached(c) => Box::new(memcached::MemcachedStore::open(c)?),
        StoreConfig::Pgsql(c) => Box::new(sql::pgsql::open(c)?),
        StoreConfig::Mysql(c) => sql::mysql::open(c)?,
    };
    Ok(Box::new(compress::Compressed::new(store, config.compression())))
}

/// Names of the stores compiled in, for phpinfo().
pub const COMPILED_STORES: &[&str] = &["files", "redis", "redis-cluster", "redis-sentinel", "memcached", "pgsql", "mysql", "write-through"];

pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

pub fn now_secs() -> u64 {
    now_ms() / 1000
}

/// What the stores' tests share.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// An idle timeout long enough never to matter in a test.
    pub const TTL: Duration = Duration::from_secs(100);

    pub fn id(s: &str) -> SessionId {
        SessionId::parse(s.as_bytes()).unwrap()
    }

    /// A lock request by pid 7 for /t, waiting `wait_ms`, with a `ttl_ms` lease.
    pub fn req(wait_ms: u64, ttl_ms: u64) -> LockRequest {
        LockRequest {
            holder: Holder { host: "h".into(), pid: 7, uri: "/t".into(), since_ms: now_ms(), member: None },
            wait: Duration::from_millis(wait_ms),
            ttl: Duration::from_millis(ttl_ms),
        }
    }

    pub fn meta() -> Meta {
        Meta::new(now_secs(), None, TTL.as_secs() as u32)
    }

    /// A save as a new session, the user unchanged.
    pub fn put<'a>(what: Save<'a>, meta: &'a Meta, ttl: Duration, lock: LockUse) -> Put<'a> {
        Put { what, meta, ttl, lock, existed: false, user: UserChange::Unchanged, expect_version: None }
    }

    /// Writes `data` without a lock.
    pub fn write(s: &mut dyn Store, id: &SessionId, data: &[u8]) {
        s.save(id, &put(Save::Write(data), &meta(), TTL, LockUse::Unlocked)).unwrap();
    }

    /// Writes `data` for `user` as a new session.
    pub fn write_for(s: &mut dyn Store, id: &SessionId, user: &str, data: &[u8]) {
        let m = Meta { user: Some(user.into()), ..meta() };
        s.save(id, &Put { user: UserChange::From(None), ..put(Save::Write(data), &m, TTL, LockUse::Unlocked) }).unwrap();
    }

    pub fn data(r: Option<Record>) -> Option<Vec<u8>> {
        r.map(|r| r.data)
    }

    pub fn read_data(s: &mut dyn Store, id: &SessionId) -> Option<Vec<u8>> {
        data(s.read(id).unwrap())
    }

    /// A local port nothing listens on now.
    pub fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    }

    /// A memcached of the test's own, for a test that stops and restarts it
    /// (killed when dropped).
    pub struct PrivateMemcached(std::process::Child);

    impl PrivateMemcached {
        pub fn start(port: u16) -> PrivateMemcached {
            let child = std::process::Command::new("memcached")
                .args(["-u", "root", "-l", "127.0.0.1", "-p", &port.to_string(), "-U", "0", "-m", "8"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("memcached is installed (make deps)");
            for _ in 0..200 {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return PrivateMemcached(child);
                }
                std::thread::sleep(Duration::from_millis(25));
            }
            panic!("memcached did not start on {port}");
        }
    }

    impl Drop for PrivateMemcached {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn ids(list: Vec<Listed>) -> Vec<String> {
        let mut v: Vec<String> = list.into_iter().map(|l| l.id.to_string()).collect();
        v.sort();
        v
    }

    /// The registry contract, run against every store: the per-user index,
    /// kills (also of a session another request holds), kill_all, and
    /// access tracking. `open` gives a new handle on one shared, empty store.
    pub fn registry_contract(open: &dyn Fn() -> Box<dyn Store>) {
        let (mut a, mut b) = (open(), open());
        for (i, user) in [(1, "alice"), (2, "alice"), (3, "alice"), (4, "bob")] {
            write_for(a.as_mut(), &id(&format!("s{i}")), user, format!("d{i}").as_bytes());
        }
        assert_eq!(ids(b.user_sessions("alice").unwrap()), ["s1", "s2", "s3"]);
        let bob = b.user_sessions("bob").unwrap();
        assert_eq!((bob[0].id.as_str(), bob[0].meta.user.as_deref()), ("s4", Some("bob")));
        assert!(b.user_sessions("nobody").unwrap().is_empty());

        // Destroyed sessions leave the index.
        assert!(b.destroy(&id("s1")).unwrap());
        assert!(!b.destroy(&id("s1")).unwrap());
        assert_eq!(ids(a.user_sessions("alice").unwrap()), ["s2", "s3"]);

        // Kill with keep.
        assert_eq!(b.kill_user("alice", Some(&id("s3"))).unwrap(), 1);
        assert_eq!(ids(a.user_sessions("alice").unwrap()), ["s3"]);
        assert_eq!(read_data(a.as_mut(), &id("s2")), None);
        assert_eq!(read_data(a.as_mut(), &id("s3")).as_deref(), Some(&b"d3"[..]));

        // A user change moves the session between indexes.
        let Some(rec) = a.read(&id("s3")).unwrap() else { panic!() };
        let m = Meta { user: Some("carol".into()), ..rec.meta };
        let p = Put { existed: true, user: UserChange::From(Some("alice")), ..put(Save::Write(b"d3"), &m, TTL, LockUse::Unlocked) };
        a.save(&id("s3"), &p).unwrap();
        assert!(b.user_sessions("alice").unwrap().is_empty());
        assert_eq!(ids(b.user_sessions("carol").unwrap()), ["s3"]);

        // Killed while another request holds it: that request's write at
        // close does not bring it back, and its lock is still freed.
        let Locked::Acquired { token, record: Some(rec) } = a.lock_and_read(&id("s4"), &req(0, 5000)).unwrap() else {
            panic!("s4 should exist and be free")
        };
        assert!(b.destroy(&id("s4")).unwrap());
        let p = Put { existed: true, ..put(Save::Write(b"zombie"), &rec.meta, TTL, LockUse::Release(token)) };
        assert!(matches!(a.save(&id("s4"), &p), Err(StoreError::Killed)), "the write must be refused");
        assert_eq!(read_data(b.as_mut(), &id("s4")), None);
        assert!(b.lock_holder(&id("s4")).unwrap().is_none());
        assert!(b.user_sessions("bob").unwrap().is_empty());
        // So is a lazy write's touch.
        write(a.as_mut(), &id("s5"), b"x");
        let Locked::Acquired { token, record: Some(rec) } = a.lock_and_read(&id("s5"), &req(0, 5000)).unwrap() else { panic!() };
        b.destroy(&id("s5")).unwrap();
        let p = Put { existed: true, ..put(Save::Touch, &rec.meta, TTL, LockUse::Release(token)) };
        assert!(matches!(a.save(&id("s5"), &p), Err(StoreError::Killed)));
        assert_eq!(read_data(b.as_mut(), &id("s5")), None);

        // A touch records the access.
        let old = Meta { last_access: now_secs() - 50, ..meta() };
        a.save(&id("s6"), &put(Save::Write(b"t"), &old, TTL, LockUse::Unlocked)).unwrap();
        let p = Put { existed: true, ..put(Save::Touch, &old, TTL, LockUse::Unlocked) };
        a.save(&id("s6"), &p).unwrap();
        let seen = b.read(&id("s6")).unwrap().unwrap().meta.last_access;
        assert!(seen + 5 >= now_secs(), "last access {seen} not moved by the touch");

        // kill_all: every existing session is gone at once, new ones live.
        write_for(a.as_mut(), &id("s7"), "dave", b"7");
        b.kill_all().unwrap();
        for s in ["s3", "s6", "s7"] {
            assert_eq!(read_data(a.as_mut(), &id(s)), None, "{s} survived kill_all");
            assert!(!a.exists(&id(s)).unwrap(), "{s} still exists");
        }
        assert!(a.user_sessions("dave").unwrap().is_empty());
        let got = a.lock_and_read(&id("s3"), &req(0, 5000)).unwrap();
        assert!(matches!(got, Locked::Acquired { record: None, .. }), "{got:?} {:?}", a.take_warnings());
        write_for(b.as_mut(), &id("s8"), "dave", b"8");
        assert_eq!(read_data(a.as_mut(), &id("s8")).as_deref(), Some(&b"8"[..]));
        assert_eq!(ids(a.user_sessions("dave").unwrap()), ["s8"]);

        // kill_all while a request holds a session: that request's write
        // (or touch) is refused and brings nothing back, and destroying a
        // session kill_all ended reports no live session.
        let Locked::Acquired { token, record: Some(rec) } = a.lock_and_read(&id("s8"), &req(0, 5000)).unwrap() else { panic!() };
        b.kill_all().unwrap();
        let p = Put { existed: true, ..put(Save::Write(b"zombie"), &rec.meta, TTL, LockUse::Keep(token)) };
        assert!(matches!(a.save(&id("s8"), &p), Err(StoreError::Killed)), "a write over a session kill_all ended");
        let p = Put { existed: true, ..put(Save::Touch, &rec.meta, TTL, LockUse::Release(token)) };
        assert!(matches!(a.save(&id("s8"), &p), Err(StoreError::Killed)), "a touch of a session kill_all ended");
        assert_eq!(read_data(b.as_mut(), &id("s8")), None);
        assert!(b.lock_holder(&id("s8")).unwrap().is_none());
        write(a.as_mut(), &id("s9"), b"9");
        b.kill_all().unwrap();
        assert!(!a.destroy(&id("s9")).unwrap(), "s9 was already ended by kill_all");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_hex_is_32_lowercase_digits() {
        for v in [0u128, 1, 0xdead_beef, u128::MAX, 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210] {
            assert_eq!(LockToken(v).hex(), format!("{v:032x}"));
        }
    }

    #[test]
    fn session_id_rules() {
        assert!(SessionId::parse(b"abcDEF012,-").is_some());
        assert!(SessionId::parse(&[b'a'; 256]).is_some());
        for bad in [&b""[..], b"../x", b"a b", b"a\r\nb", b"a\0", b"a/b", b"a.b", &[b'a'; 257], "é".as_bytes()] {
            assert!(SessionId::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn tokens_differ() {
        assert_ne!(LockToken::random(), LockToken::random());
    }
}

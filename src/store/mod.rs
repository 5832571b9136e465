//! Stores keep session bytes, locks and expiry. They know nothing of PHP.
//!
//! One file per store. The engine drives a store through [`Store`]; a store
//! that can do two steps in one round trip (lock + read, write + unlock)
//! overrides the combined methods, whose defaults simply chain the parts.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::config::StoreConfig;
use crate::error::StoreError;

pub mod files;
mod lease;
pub mod memcached;
pub mod memory;
pub mod redis;

pub type Result<T> = std::result::Result<T, StoreError>;

/// A validated session id: only PHP's session id characters
/// (`A-Z a-z 0-9 , -`), 1 to 256 bytes. Safe as a file name or key part.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
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
}

impl Holder {
    pub fn held_for(&self) -> Duration {
        Duration::from_millis(now_ms().saturating_sub(self.since_ms))
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

    pub fn hex(&self) -> String {
        format!("{:032x}", self.0)
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

/// The outcome of [`Store::lock_and_read`].
#[derive(Debug)]
pub enum Locked {
    /// The lock is ours; the data as read under it (None: no such session).
    Acquired { token: LockToken, data: Option<Vec<u8>> },
    /// The wait ran out; the holder, when the store knows it.
    TimedOut { holder: Option<Holder> },
}

/// What [`Store::save`] stores.
#[derive(Debug, Clone, Copy)]
pub enum Save<'a> {
    /// Replace the data.
    Write(&'a [u8]),
    /// Keep the data, refresh its expiry (lazy write).
    Touch,
}

pub trait Store: Send {
    /// "files", "redis", "memcached".
    fn name(&self) -> &'static str;

    /// Takes the session's lock, waiting at most `req.wait`, and reads the
    /// data under it. `ttl` is the idle timeout: data idle longer reads as
    /// missing and is removed.
    fn lock_and_read(&mut self, id: &SessionId, req: &LockRequest, ttl: Duration) -> Result<Locked>;

    /// Reads without the lock. Idle-timeout rule as in `lock_and_read`.
    fn read(&mut self, id: &SessionId, ttl: Duration) -> Result<Option<Vec<u8>>>;

    /// Stores data (or refreshes its expiry) to live `ttl` from now. With a
    /// token, only while that lock is still ours (else [`StoreError::LockLost`]
    /// and nothing changes); `release` then also frees the lock.
    fn save(&mut self, id: &SessionId, what: Save<'_>, ttl: Duration, lock: Option<(LockToken, bool)>) -> Result<()>;

    /// Frees the lock if `token` still holds it; a lock already lost is not an
    /// error here (there is nothing left to free).
    fn unlock(&mut self, id: &SessionId, token: LockToken) -> Result<()>;

    /// Removes the session's data. Returns whether it existed.
    fn destroy(&mut self, id: &SessionId) -> Result<bool>;

    /// Whether data exists for the id (strict mode, id collisions).
    fn exists(&mut self, id: &SessionId) -> Result<bool>;

    /// Removes sessions idle longer than `max_idle`; returns how many.
    fn gc(&mut self, max_idle: Duration) -> Result<u64>;

    /// Who holds the lock now, if anyone.
    fn lock_holder(&mut self, id: &SessionId) -> Result<Option<Holder>>;

    /// Problems the store worked around (a pool server skipped), to be
    /// raised as warnings.
    fn take_warnings(&mut self) -> Vec<String> {
        Vec::new()
    }
}

/// Opens the store a config names.
pub fn open(config: &StoreConfig) -> Result<Box<dyn Store>> {
    match config {
        StoreConfig::Files { dir } => Ok(Box::new(files::FilesStore::open(dir)?)),
        StoreConfig::Redis(c) => Ok(Box::new(redis::RedisStore::open(c)?)),
        StoreConfig::Memcached(c) => Ok(Box::new(memcached::MemcachedStore::open(c)?)),
    }
}

/// Names of the stores compiled in, for phpinfo().
pub const COMPILED_STORES: &[&str] = &["files", "redis", "memcached"];

pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
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
            holder: Holder { host: "h".into(), pid: 7, uri: "/t".into(), since_ms: now_ms() },
            wait: Duration::from_millis(wait_ms),
            ttl: Duration::from_millis(ttl_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

//! Per-session metadata: who the session belongs to, when it started and was
//! last used, its own idle timeout and where it came from. Stored by every
//! store beside the data.
//!
//! Encoding: one version byte, then the fields in postcard (serde's compact
//! binary format: varints, no field names). A new field means a new version
//! whose decoder still reads the old ones, so stored sessions survive an
//! upgrade. The decoder takes bytes from the store, which a broken or hostile
//! store could have filled with anything: it never panics, it returns an
//! error (fuzzed in `fuzz/fuzz_targets/meta.rs`).
//!
//! Version 2 appends the write-through fields ([`Meta::version`],
//! [`Meta::durable_at`]); it is written only when one of them is non-zero,
//! so stores not behind a write-through keep writing version 1 and an older
//! rsession still reads them.
//!
//! Files and memcached keep one item per session, an [`envelope`] of the
//! metadata and the data; Redis keeps them as fields of one hash.

use serde::{Deserialize, Serialize};

/// The encoding of sessions without write-through fields.
const VERSION: u8 = 1;
/// The encoding with them.
const VERSION_2: u8 = 2;
/// User ids and IPs longer than this are refused (a user id is a key part).
pub const MAX_USER_LEN: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Meta {
    /// Set by `RSession\set_user()`.
    pub user: Option<String>,
    /// Unix seconds.
    pub created: u64,
    /// Unix seconds of the last write; a store that tracks access itself
    /// (file mtime, a Redis field) overrides it when reading.
    pub last_access: u64,
    /// Idle timeout in seconds in force at the last write; 0 = never.
    pub timeout: u32,
    /// Whether `timeout` was chosen by `set_timeout()` (else it follows
    /// `session.gc_maxlifetime`).
    pub timeout_set: bool,
    pub first_ip: Option<String>,
    pub last_ip: Option<String>,
    /// The store's site-wide generation when the session was created:
    /// `kill_all_sessions()` moves the store's past it.
    pub generation: u64,
    /// Random, fixed at creation: a write checks it, so a request never
    /// brings back a session that was killed (or replaced) meanwhile.
    pub incarnation: u64,
    /// Write-through: counts the writes of the session's data, so the
    /// durable store refuses a write by a request that read an older one
    /// (it lost its lock). 0 outside a write-through.
    #[serde(skip)]
    pub version: u64,
    /// Write-through, in the cache's copy: Unix seconds when the durable
    /// store last recorded an access (it is refreshed once per lazy window).
    #[serde(skip)]
    pub durable_at: u64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MetaError {
    #[error("empty session metadata")]
    Empty,
    #[error("session metadata version {0} is newer than this rsession understands")]
    UnknownVersion(u8),
    #[error("corrupt session metadata: {0}")]
    Corrupt(String),
}

impl Meta {
    pub fn new(now: u64, ip: Option<String>, default_timeout: u32) -> Meta {
        Meta {
            user: None,
            created: now,
            last_access: now,
            timeout: default_timeout,
            timeout_set: false,
            first_ip: ip.clone(),
            last_ip: ip,
            generation: 0,
            incarnation: crate::store::LockToken::random().0 as u64,
            version: 0,
            durable_at: 0,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let extended = self.version != 0 || self.durable_at != 0;
        let mut out = vec![if extended { VERSION_2 } else { VERSION }];
        // Writing into a Vec cannot fail for these field types.
        out.extend(postcard::to_stdvec(self).unwrap_or_default());
        if extended {
            out.extend(postcard::to_stdvec(&(self.version, self.durable_at)).unwrap_or_default());
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Meta, MetaError> {
        let corrupt = |e: postcard::Error| MetaError::Corrupt(e.to_string());
        let (&version, body) = bytes.split_first().ok_or(MetaError::Empty)?;
        match version {
            VERSION => postcard::from_bytes(body).map_err(corrupt),
            VERSION_2 => {
                let (mut meta, rest): (Meta, _) = postcard::take_from_bytes(body).map_err(corrupt)?;
                (meta.version, meta.durable_at) = postcard::from_bytes(rest).map_err(corrupt)?;
                Ok(meta)
            }
            v => Err(MetaError::UnknownVersion(v)),
        }
    }

    /// The idle timeout in force now: the session's own, or the default.
    pub fn effective_timeout(&self, default_timeout: u32) -> u32 {
        if self.timeout_set { self.timeout } else { default_timeout }
    }

    /// Whether the session has been idle longer than its timeout.
    pub fn expired(&self, now: u64, default_timeout: u32) -> bool {
        let t = self.effective_timeout(default_timeout);
        t > 0 && now.saturating_sub(self.last_access) > u64::from(t)
    }
}

/// One item holding metadata and data: magic, metadata length (u32 LE),
/// metadata, data. Data written by PHP's `files` handler (no magic) reads as
/// data without metadata, so a save path shared with it keeps its sessions.
pub mod envelope {
    use super::{Meta, MetaError};

    const MAGIC: &[u8; 3] = b"\0RS";

    pub fn encode(meta: &Meta, data: &[u8]) -> Vec<u8> {
        let m = meta.encode();
        let mut out = Vec::with_capacity(MAGIC.len() + 4 + m.len() + data.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(m.len() as u32).to_le_bytes());
        out.extend_from_slice(&m);
        out.extend_from_slice(data);
        out
    }

    /// Splits an item into its metadata (None: a plain, foreign item) and
    /// data.
    pub fn decode(item: &[u8]) -> Result<(Option<Meta>, &[u8]), MetaError> {
        let Some(rest) = item.strip_prefix(MAGIC) else { return Ok((None, item)) };
        let (len, rest) = rest.split_first_chunk::<4>().ok_or_else(|| MetaError::Corrupt("truncated header".into()))?;
        let len = u32::from_le_bytes(*len) as usize;
        if len > rest.len() {
            return Err(MetaError::Corrupt(format!("metadata length {len} past the end of the item")));
        }
        let (m, data) = rest.split_at(len);
        Ok((Some(Meta::decode(m)?), data))
    }

    /// How many leading bytes hold the header and metadata, if `prefix` (the
    /// start of an item) is long enough to tell.
    pub fn header_len(prefix: &[u8]) -> Option<usize> {
        let rest = prefix.strip_prefix(MAGIC)?;
        let len = rest.first_chunk::<4>()?;
        Some(MAGIC.len() + 4 + u32::from_le_bytes(*len) as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Meta {
        Meta {
            user: Some("alice".into()),
            created: 1_700_000_000,
            last_access: 1_700_000_100,
            timeout: 0,
            timeout_set: true,
            first_ip: Some("192.0.2.1".into()),
            last_ip: Some("2001:db8::1".into()),
            generation: 3,
            incarnation: u64::MAX,
            version: 0,
            durable_at: 0,
        }
    }

    #[test]
    fn round_trip_is_compact() {
        let m = sample();
        let bytes = m.encode();
        assert_eq!(bytes[0], VERSION);
        assert!(bytes.len() < 64, "{} bytes", bytes.len());
        assert_eq!(Meta::decode(&bytes).unwrap(), m);
    }

    #[test]
    fn write_through_fields_use_version_2_only_when_set() {
        let old = sample().encode();
        let m = Meta { version: 41, durable_at: 1_700_000_050, ..sample() };
        let bytes = m.encode();
        assert_eq!((old[0], bytes[0]), (VERSION, VERSION_2));
        assert_eq!(&bytes[1..old.len()], &old[1..], "version 2 extends version 1");
        assert_eq!(Meta::decode(&bytes).unwrap(), m);
        assert_eq!(Meta::decode(&old).unwrap(), sample());
        for cut in 1..bytes.len() {
            assert!(Meta::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn bad_bytes_are_errors_not_panics() {
        assert_eq!(Meta::decode(b""), Err(MetaError::Empty));
        assert_eq!(Meta::decode(&[9, 1, 2]), Err(MetaError::UnknownVersion(9)));
        let good = sample().encode();
        for cut in 1..good.len() {
            assert!(Meta::decode(&good[..cut]).is_err(), "cut at {cut}");
        }
        assert!(matches!(Meta::decode(&[1, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), Err(MetaError::Corrupt(_))));
    }

    #[test]
    fn timeouts() {
        let mut m = Meta::new(1000, None, 1440);
        assert!(!m.expired(1000 + 1440, 1440));
        assert!(m.expired(1000 + 1441, 1440));
        m.timeout = 2;
        assert!(!m.expired(1003, 1440), "not chosen: the default applies");
        m.timeout_set = true;
        assert!(m.expired(1003, 1440));
        m.timeout = 0;
        assert!(!m.expired(u64::MAX, 1), "0 never times out");
    }

    #[test]
    fn envelope_round_trip_and_foreign_data() {
        let m = sample();
        let item = envelope::encode(&m, b"a|i:1;\0");
        assert_eq!(envelope::header_len(&item), Some(item.len() - 7));
        let (got, data) = envelope::decode(&item).unwrap();
        assert_eq!((got.unwrap(), data), (m, &b"a|i:1;\0"[..]));
        assert_eq!(envelope::decode(b"a|i:1;").unwrap(), (None, &b"a|i:1;"[..]));
        assert!(envelope::decode(b"\0RS\xff\xff\xff\x7fxx").is_err());
        assert!(envelope::decode(b"\0RS\x01").is_err());
    }
}

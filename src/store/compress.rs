//! Compression of session data, as a store wrapped around any other
//! (`compress=zstd|lz4`, `compress_min`), so every store gets it the same way
//! and no store knows about it.
//!
//! Format: compressed data is stored as `\0RC`, an algorithm byte (`z` zstd,
//! `l` lz4) and the compressed bytes; anything else is stored as it is, so
//! data written uncompressed, by another setting or by PHP's own handlers
//! reads under any setting. No serializer PHP uses starts its output with
//! `\0R` (`php` and `php_serialize` start with a key or `a:`, `php_binary`
//! with a key length of 1 to 127, igbinary with `\0\0`); should plain data
//! ever start with the magic, it is stored behind `\0RCn` (none) so it can
//! never be taken for compressed data.
//!
//! Data smaller than `compress_min`, or that would not shrink, is stored as
//! it is. A stored value that claims to be compressed and is not (corrupt,
//! truncated, or larger than [`MAX_DECOMPRESSED`] when expanded) is an
//! error: the session reads as broken with an `rsession:` warning, and is
//! never replaced by an empty one.

use std::borrow::Cow;

use super::{Holder, Listed, LockRequest, LockToken, Locked, Put, Record, Registry, Result, Save, SessionId, Store};
use crate::error::StoreError;

const MAGIC: &[u8; 3] = b"\0RC";
/// Largest session a compressed value may expand to (Redis's own limit for
/// one string): a bound against a value that would expand without end.
pub const MAX_DECOMPRESSED: usize = 512 << 20;
/// zstd's level: its fastest levels already shrink serialize() output
/// several times, at a cost per request that matters more than a few bytes.
const ZSTD_LEVEL: i32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Zstd,
    Lz4,
}

/// `compress` and `compress_min` of a save_path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Compression {
    /// None: store data as it is (still reading compressed data).
    pub algorithm: Option<Algorithm>,
    /// Data shorter than this is stored as it is.
    pub min: usize,
}

pub const DEFAULT_MIN: usize = 1024;

impl Default for Compression {
    fn default() -> Self {
        Compression { algorithm: None, min: DEFAULT_MIN }
    }
}

impl Compression {
    /// Parses the value of `compress`.
    pub fn algorithm_named(name: &str) -> std::result::Result<Option<Algorithm>, String> {
        match name {
            "none" => Ok(None),
            "zstd" => Ok(Some(Algorithm::Zstd)),
            "lz4" => Ok(Some(Algorithm::Lz4)),
            other => Err(format!("compress={other:?} is not one of none, zstd, lz4")),
        }
    }

    /// The bytes to store for `data`.
    pub fn encode<'a>(&self, data: &'a [u8]) -> Cow<'a, [u8]> {
        if let Some(algorithm) = self.algorithm.filter(|_| data.len() >= self.min) {
            let (tag, packed) = match algorithm {
                Algorithm::Zstd => (b'z', zstd::bulk::compress(data, ZSTD_LEVEL).ok()),
                Algorithm::Lz4 => (b'l', Some(lz4_flex::compress_prepend_size(data))),
            };
            if let Some(packed) = packed.filter(|p| p.len() + MAGIC.len() + 1 < data.len()) {
                return Cow::Owned([&MAGIC[..], &[tag], &packed].concat());
            }
        }
        if data.starts_with(MAGIC) {
            return Cow::Owned([&MAGIC[..], b"n", data].concat());
        }
        Cow::Borrowed(data)
    }
}

/// The data stored bytes stand for, whatever setting wrote them.
pub fn decode(stored: &[u8]) -> std::result::Result<Cow<'_, [u8]>, String> {
    let Some(rest) = stored.strip_prefix(MAGIC) else { return Ok(Cow::Borrowed(stored)) };
    let (&tag, packed) = rest.split_first().ok_or("compressed data without its algorithm byte")?;
    match tag {
        b'n' => Ok(Cow::Borrowed(packed)),
        b'z' => {
            let size = zstd::zstd_safe::get_frame_content_size(packed)
                .map_err(|_| "corrupt zstd data".to_string())?
                .ok_or("zstd data without its size")?;
            if size > MAX_DECOMPRESSED as u64 {
                return Err(format!("zstd data claims {size} bytes, more than {MAX_DECOMPRESSED}"));
            }
            zstd::bulk::decompress(packed, size as usize).map(Cow::Owned).map_err(|e| format!("corrupt zstd data: {e}"))
        }
        b'l' => {
            let size = packed.first_chunk::<4>().map(|s| u32::from_le_bytes(*s) as usize).ok_or("truncated lz4 data")?;
            if size > MAX_DECOMPRESSED {
                return Err(format!("lz4 data claims {size} bytes, more than {MAX_DECOMPRESSED}"));
            }
            lz4_flex::decompress_size_prepended(packed).map(Cow::Owned).map_err(|e| format!("corrupt lz4 data: {e}"))
        }
        other => Err(format!("unknown compression byte {other:#04x}")),
    }
}

/// A store whose data is compressed on the way in and expanded on the way out.
pub struct Compressed {
    inner: Box<dyn Store>,
    compression: Compression,
}

impl Compressed {
    pub fn new(inner: Box<dyn Store>, compression: Compression) -> Compressed {
        Compressed { inner, compression }
    }

    fn expand(&self, id: &SessionId, record: Option<Record>) -> Result<Option<Record>> {
        let Some(mut r) = record else { return Ok(None) };
        if r.data.starts_with(MAGIC) {
            let data = decode(&r.data).map_err(|reason| StoreError::CorruptData {
                store: self.inner.name(),
                id: crate::engine::short_id(id.as_str()),
                reason,
            })?;
            r.data = data.into_owned();
        }
        Ok(Some(r))
    }
}

impl Store for Compressed {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn lock_and_read(&mut self, id: &SessionId, req: &LockRequest) -> Result<Locked> {
        match self.inner.lock_and_read(id, req)? {
            Locked::Acquired { token, record } => match self.expand(id, record) {
                Ok(record) => Ok(Locked::Acquired { token, record }),
                Err(e) => {
                    // Broken data under our lock: free it, as a store does
                    // when its own read fails.
                    let _ = self.inner.unlock(id, token);
                    Err(e)
                }
            },
            timed_out => Ok(timed_out),
        }
    }

    fn read(&mut self, id: &SessionId) -> Result<Option<Record>> {
        let record = self.inner.read(id)?;
        self.expand(id, record)
    }

    fn save(&mut self, id: &SessionId, put: &Put<'_>) -> Result<u64> {
        match put.what {
            Save::Write(data) => {
                let stored = self.compression.encode(data);
                self.inner.save(id, &Put { what: Save::Write(&stored), ..*put })
            }
            Save::Touch => self.inner.save(id, put),
        }
    }

    fn unlock(&mut self, id: &SessionId, token: LockToken) -> Result<()> {
        self.inner.unlock(id, token)
    }

    fn destroy(&mut self, id: &SessionId) -> Result<bool> {
        self.inner.destroy(id)
    }

    fn exists(&mut self, id: &SessionId) -> Result<bool> {
        self.inner.exists(id)
    }

    fn gc(&mut self, default_timeout: u32) -> Result<u64> {
        self.inner.gc(default_timeout)
    }

    fn lock_holder(&mut self, id: &SessionId) -> Result<Option<Holder>> {
        self.inner.lock_holder(id)
    }

    fn take_warnings(&mut self) -> Vec<String> {
        self.inner.take_warnings()
    }
}

impl Registry for Compressed {
    fn user_sessions(&mut self, user: &str) -> Result<Vec<Listed>> {
        self.inner.user_sessions(user)
    }

    fn kill_user(&mut self, user: &str, keep: Option<&SessionId>) -> Result<u64> {
        self.inner.kill_user(user, keep)
    }

    fn kill_all(&mut self) -> Result<i64> {
        self.inner.kill_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::LockUse;
    use crate::store::memory::MemoryStore;
    use crate::store::testing::{TTL, id, meta, put, req};

    /// serialize()-like output: repetitive, as real sessions are.
    fn session_like(n: usize) -> Vec<u8> {
        let mut s = String::new();
        let mut i = 0;
        while s.len() < n {
            s.push_str(&format!("item{i}|a:2:{{s:4:\"name\";s:9:\"course {i}\";s:5:\"grade\";d:0.{i};}}"));
            i += 1;
        }
        s.into_bytes()
    }

    fn with(algorithm: Option<Algorithm>) -> Compression {
        Compression { algorithm, min: DEFAULT_MIN }
    }

    #[test]
    fn every_setting_reads_what_every_other_wrote() {
        let big = session_like(200 * 1024);
        let settings = [None, Some(Algorithm::Zstd), Some(Algorithm::Lz4)];
        for w in settings {
            let stored = with(w).encode(&big);
            if w.is_some() {
                assert!(stored.len() < big.len() / 3, "{w:?}: {} of {}", stored.len(), big.len());
            }
            for _r in settings {
                assert_eq!(decode(&stored).unwrap(), &big[..], "written with {w:?}");
            }
        }
    }

    #[test]
    fn small_plain_and_foreign_data_stay_as_they_are() {
        let c = with(Some(Algorithm::Zstd));
        assert!(matches!(c.encode(b"a|i:1;"), Cow::Borrowed(_)), "below compress_min");
        let igbinary = b"\0\0\0\x02\x14\x01\x11\x01a\x06\x01";
        assert_eq!(decode(igbinary).unwrap(), &igbinary[..], "igbinary starts with NULs");
        let random: Vec<u8> = (0..256).flat_map(|_| crate::store::LockToken::random().0.to_le_bytes()).collect();
        assert_eq!(c.encode(&random).as_ref(), &random[..], "data that does not shrink is kept");
        // Plain data that happens to start like compressed data survives.
        let tricky = [&MAGIC[..], b"z not really"].concat();
        for s in [None, Some(Algorithm::Lz4)] {
            let stored = with(s).encode(&tricky);
            assert_ne!(stored.as_ref(), &tricky[..]);
            assert_eq!(decode(&stored).unwrap(), &tricky[..]);
        }
    }

    #[test]
    fn corrupt_values_are_errors_never_panics_or_bombs() {
        let good = with(Some(Algorithm::Zstd)).encode(&session_like(8192)).into_owned();
        for cut in [3, 4, 5, 10, good.len() / 2, good.len() - 1] {
            assert!(decode(&good[..cut]).is_err(), "zstd cut at {cut}");
        }
        let good = with(Some(Algorithm::Lz4)).encode(&session_like(8192)).into_owned();
        for cut in [4, 5, 8, good.len() / 2, good.len() - 1] {
            assert!(decode(&good[..cut]).is_err(), "lz4 cut at {cut}");
        }
        assert!(decode(b"\0RCx....").is_err());
        assert!(decode(b"\0RCl\xff\xff\xff\xffxx").is_err(), "a claimed size of 4 GiB");
        let mut flipped = good.clone();
        flipped[10] ^= 0xff;
        let _ = decode(&flipped); // an error or other bytes, never a panic
    }

    #[test]
    fn the_wrapper_round_trips_and_a_corrupt_value_under_the_lock_frees_it() {
        let mem = MemoryStore::default();
        let mut s = Compressed::new(Box::new(mem.clone()), with(Some(Algorithm::Lz4)));
        let big = session_like(64 * 1024);
        let sid = id("zip");
        s.save(&sid, &put(Save::Write(&big), &meta(), TTL, LockUse::Unlocked)).unwrap();
        let mut raw = mem.clone();
        let stored = raw.read(&sid).unwrap().unwrap().data;
        assert!(stored.starts_with(b"\0RCl") && stored.len() < big.len() / 3);
        assert_eq!(s.read(&sid).unwrap().unwrap().data, big);
        // Broken on the server: reads fail loudly, the lock is not left held.
        raw.save(&sid, &put(Save::Write(b"\0RCz garbage"), &meta(), TTL, LockUse::Unlocked)).unwrap();
        assert!(matches!(s.read(&sid), Err(StoreError::CorruptData { .. })));
        assert!(matches!(s.lock_and_read(&sid, &req(0, 5000)), Err(StoreError::CorruptData { .. })));
        assert!(s.lock_holder(&sid).unwrap().is_none());
    }
}

//! Write-through (`CACHE | STORE`): a network cache (Redis, memcached) in
//! front of a durable store (SQL, files), composed from the two as stores,
//! as the compression wrapper is.
//!
//! - Reads come from the cache. A miss reads the store and refills the
//!   cache under the lock, so a cache that restarted empty serves nothing
//!   older than the store.
//! - A write goes to the store first, then to the cache: the cache never
//!   holds what the store refused. If the cache write fails the cache entry
//!   is dropped; if the cache cannot be reached the id is remembered and
//!   dropped from the cache before it is used again.
//! - Fencing: every data write bumps the session's [`Meta::version`]; the
//!   store applies a write only over the version the request read
//!   ([`Put::expect_version`]), so a request that lost its cache lock
//!   (evicted, the cache restarted, the lease ran out) never overwrites
//!   newer data. Its write fails as a lost lock and its cache entry is
//!   dropped.
//! - A save that changes nothing refreshes the store's last access only
//!   once per lazy window (`lazy_touch`, at most half the session's
//!   timeout, as the SQL stores count it), remembered in the cache's copy
//!   of the metadata ([`Meta::durable_at`]); the cache records every access,
//!   so the idle timeout stays exact.
//! - The lock is the cache's. While the cache does not answer, reads and
//!   writes go to the store alone and the lock is the store's own, with one
//!   warning per outage; the cache is tried again at most once a second.
//!   The cache member's own warnings about that outage (memcached: "server
//!   … is not answering … skipped") are not raised: the outage is handled
//!   here, and its one warning says so. The cache's other warnings are.
//! - The registry is the store's; kills act on both members.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use super::{Holder, Listed, LockRequest, LockToken, LockUse, Locked, Meta, Put, Record, Registry, Result, Save, SessionId, Store, UserChange, now_secs};
use crate::error::StoreError;
use crate::stats::{STATS, bump};

/// How long the cache is left alone after it failed, before it is tried
/// again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Which member holds a lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Member {
    Cache,
    Store,
}

/// A lock this store handed out.
struct Held {
    token: LockToken,
    member: Member,
    /// The data as read or last written: a save that only refreshes the
    /// store's access rewrites the cache's copy with it (to record when).
    data: Vec<u8>,
}

pub struct WriteThrough {
    cache: Box<dyn Store>,
    store: Box<dyn Store>,
    lazy_touch: u64,
    held: HashMap<SessionId, Held>,
    /// Since when the cache has not answered; None while it does.
    outage: Option<Instant>,
    /// When the cache failed last (tried again after [`RETRY_AFTER`]).
    failed_at: Option<Instant>,
    /// Sessions written to the store alone while the cache could not be
    /// reached: their cache entries may be older, and are dropped before
    /// the cache serves again.
    stale: HashSet<SessionId>,
    /// A kill_all that could not reach the cache, to repeat there first.
    kill_all_pending: bool,
    warnings: Vec<String>,
    /// Test switch: the store's version fence is not asked for (to see the
    /// fault tests fail without it).
    #[cfg(test)]
    pub(crate) unfenced: bool,
}

/// Whether a cache error means the cache did not answer (as opposed to an
/// answer: a lost lock, a killed session, data too large).
fn unreachable(e: &StoreError) -> bool {
    matches!(e, StoreError::Io { .. } | StoreError::Backend { .. })
}

impl WriteThrough {
    pub fn new(cache: Box<dyn Store>, store: Box<dyn Store>, lazy_touch: Duration) -> WriteThrough {
        WriteThrough {
            cache,
            store,
            lazy_touch: lazy_touch.as_secs(),
            held: HashMap::new(),
            outage: None,
            failed_at: None,
            stale: HashSet::new(),
            kill_all_pending: false,
            warnings: Vec::new(),
            #[cfg(test)]
            unfenced: false,
        }
    }

    /// The lazy window of a session with this timeout (as the SQL stores'):
    /// `lazy_touch`, at most half the timeout.
    fn window(&self, timeout: u32) -> u64 {
        if timeout > 0 { self.lazy_touch.min(u64::from(timeout) / 2) } else { self.lazy_touch }
    }

    /// Whether to use the cache now: it answers, or it is time to try it
    /// again. Coming back, it first drops what it may hold stale.
    fn cache_usable(&mut self) -> bool {
        let Some(failed) = self.failed_at else { return true };
        if failed.elapsed() < RETRY_AFTER {
            return false;
        }
        if self.kill_all_pending {
            match self.on_cache(|c| c.kill_all()) {
                Ok(_) => self.kill_all_pending = false,
                Err(e) => return self.cache_failed(&e),
            }
        }
        let stale: Vec<SessionId> = self.stale.iter().cloned().collect();
        for id in stale {
            match self.on_cache(|c| c.destroy(&id)) {
                Ok(_) => {
                    self.stale.remove(&id);
                }
                Err(e) => return self.cache_failed(&e),
            }
        }
        self.failed_at = None;
        true
    }

    /// Runs one call on the cache member and collects what it has to say: a
    /// call that did not reach the cache is an outage this store handles
    /// (every caller falls back to the store, with [`Self::cache_failed`]'s
    /// one warning), so the cache's own warnings about it are dropped; after
    /// any other outcome they are raised as they are.
    fn on_cache<T>(&mut self, call: impl FnOnce(&mut dyn Store) -> Result<T>) -> Result<T> {
        let result = call(self.cache.as_mut());
        let said = self.cache.take_warnings();
        if !matches!(&result, Err(e) if unreachable(e)) {
            self.warnings.extend(said);
        }
        result
    }

    /// The cache did not answer: warn once per outage. Returns false.
    fn cache_failed(&mut self, e: &StoreError) -> bool {
        self.failed_at = Some(Instant::now());
        if self.outage.is_none() {
            self.outage = Some(Instant::now());
            self.warnings.push(format!(
                "write-through: the {} cache does not answer ({e}); sessions are read from and locked in the {} store until it does",
                self.cache.name(),
                self.store.name()
            ));
        }
        false
    }

    /// The cache answered: the outage (if any) is over.
    fn cache_answered(&mut self) {
        self.outage = None;
    }

    /// Drops the cache's copy of a session (best effort; remembered for
    /// later when the cache cannot be reached).
    fn drop_cached(&mut self, id: &SessionId) {
        if !self.cache_usable() {
            self.stale.insert(id.clone());
            return;
        }
        match self.on_cache(|c| c.destroy(id)) {
            Ok(_) => self.cache_answered(),
            Err(e) => {
                self.stale.insert(id.clone());
                if unreachable(&e) {
                    self.cache_failed(&e);
                }
            }
        }
    }

    /// Frees a cache lock the save was to release, after a failure (best
    /// effort); a kept one stays for the caller's unlock.
    fn free_cache_lock(&mut self, id: &SessionId, lock: LockUse) {
        if let LockUse::Release(token) = lock {
            if let Err(e) = self.on_cache(|c| c.unlock(id, token)) {
                if unreachable(&e) {
                    self.cache_failed(&e);
                }
            }
        }
    }

    /// Copies a session the store returned into the cache, under `lock`
    /// (the cache's); the generation it stamped, None if it could not take
    /// it.
    fn refill(&mut self, id: &SessionId, record: &Record, lock: LockUse) -> Result<Option<u64>> {
        let meta = Meta { durable_at: 0, ..record.meta.clone() };
        let put = Put {
            what: Save::Write(&record.data),
            meta: &meta,
            ttl: Duration::from_secs(u64::from(meta.timeout)),
            lock,
            existed: false,
            user: if meta.user.is_some() { UserChange::From(None) } else { UserChange::Unchanged },
            expect_version: None,
        };
        match self.on_cache(|c| c.save(id, &put)) {
            Ok(g) => Ok(Some(g)),
            Err(e) if unreachable(&e) => {
                self.cache_failed(&e);
                Err(e)
            }
            // Too large for the cache, say: the store serves it.
            Err(_) => Ok(None),
        }
    }

    /// Lock and read in the store (the cache does not answer).
    fn lock_in_store(&mut self, id: &SessionId, req: &LockRequest) -> Result<Locked> {
        let locked = self.store.lock_and_read(id, req)?;
        if let Locked::Acquired { token, record } = &locked {
            let data = record.as_ref().map(|r| r.data.clone()).unwrap_or_default();
            self.held.insert(id.clone(), Held { token: *token, member: Member::Store, data });
        }
        Ok(locked)
    }

    /// A save's lock, checked against what this store handed out.
    fn member_of(&self, id: &SessionId, lock: LockUse) -> Result<Option<Member>> {
        match lock.token() {
            None => Ok(None),
            Some(t) => match self.held.get(id) {
                Some(h) if h.token == t => Ok(Some(h.member)),
                _ => Err(StoreError::LockLost),
            },
        }
    }

    fn after_save(&mut self, id: &SessionId, lock: LockUse, data: Option<&[u8]>) {
        if lock.releases() {
            self.held.remove(id);
        } else if let (Some(h), Some(d)) = (self.held.get_mut(id), data) {
            h.data = d.to_vec();
        }
    }

    fn write(&mut self, id: &SessionId, put: &Put<'_>, data: &[u8], member: Option<Member>) -> Result<u64> {
        let now = now_secs();
        let meta = Meta { version: put.meta.version + 1, durable_at: now, ..put.meta.clone() };
        // Over the version read; a new session under a lock: over none (0:
        // another request creating it meanwhile had our lock).
        let fence = if put.existed { Some(put.meta.version) } else { put.lock.token().map(|_| 0) };
        #[cfg(test)]
        let fence = fence.filter(|_| !self.unfenced);
        let store_lock = if member == Some(Member::Store) { put.lock } else { LockUse::Unlocked };
        let cache_lock = if member == Some(Member::Cache) { put.lock } else { LockUse::Unlocked };
        let stored = self.store.save(id, &Put { meta: &meta, lock: store_lock, expect_version: fence, ..*put });
        let generation = match stored {
            Ok(g) => g,
            Err(e) => {
                // Refused (a newer version, a kill) or failed: the cache must
                // not keep, or be left ahead of, what the store holds.
                if !matches!(e, StoreError::TooLarge { .. }) || put.existed {
                    self.drop_cached(id);
                }
                self.free_cache_lock(id, cache_lock);
                if put.lock.releases() || matches!(e, StoreError::LockLost) {
                    self.held.remove(id);
                }
                return Err(e);
            }
        };
        if member == Some(Member::Store) || !self.cache_usable() {
            self.stale.insert(id.clone());
            self.after_save(id, put.lock, Some(data));
            return Ok(generation);
        }
        let cached = self.on_cache(|c| c.save(id, &Put { meta: &meta, lock: cache_lock, existed: false, expect_version: None, ..*put }));
        match cached {
            Ok(g) => {
                self.cache_answered();
                self.after_save(id, put.lock, Some(data));
                Ok(g)
            }
            Err(e) => {
                // The store has it; the cache's copy must go.
                if unreachable(&e) {
                    self.cache_failed(&e);
                }
                self.free_cache_lock(id, cache_lock);
                self.drop_cached(id);
                self.after_save(id, put.lock, Some(data));
                if matches!(e, StoreError::LockLost) {
                    self.held.remove(id);
                }
                Ok(generation)
            }
        }
    }

    fn touch(&mut self, id: &SessionId, put: &Put<'_>, member: Option<Member>) -> Result<u64> {
        let now = now_secs();
        let cache_up = member != Some(Member::Store) && self.cache_usable();
        let due = !cache_up || now >= put.meta.durable_at + self.window(put.meta.timeout);
        let store_lock = if member == Some(Member::Store) { put.lock } else { LockUse::Unlocked };
        let cache_lock = if member == Some(Member::Cache) { put.lock } else { LockUse::Unlocked };
        if due {
            // expect_version marks it as write-through's: files then judges
            // kills by its own copy of the metadata.
            let store_put = Put { lock: store_lock, expect_version: Some(put.meta.version), ..*put };
            if let Err(e) = self.store.save(id, &store_put) {
                if matches!(e, StoreError::Killed) {
                    self.drop_cached(id);
                }
                self.free_cache_lock(id, cache_lock);
                if put.lock.releases() {
                    self.held.remove(id);
                }
                return Err(e);
            }
        } else {
            bump(&STATS.store_writes_skipped, 1);
        }
        if !cache_up {
            self.after_save(id, put.lock, None);
            return Ok(put.meta.generation);
        }
        // A store access recorded under our lock: the cache's copy says when.
        let rewrite = due.then(|| self.held.get(id).filter(|_| member == Some(Member::Cache)).map(|h| h.data.clone())).flatten();
        let meta = Meta { durable_at: now, ..put.meta.clone() };
        // A rewrite is a copy (existed: false): the store judged kills.
        let cached = self.on_cache(|c| match &rewrite {
            Some(data) => c.save(id, &Put { what: Save::Write(data), meta: &meta, lock: cache_lock, existed: false, ..*put }),
            None => c.save(id, &Put { lock: cache_lock, ..*put }),
        });
        match cached {
            Ok(g) => {
                self.cache_answered();
                self.after_save(id, put.lock, None);
                Ok(g)
            }
            Err(StoreError::Killed) if !due => {
                // Killed, or only evicted: the store, the truth, says which.
                self.cache_answered();
                self.free_cache_lock(id, cache_lock);
                if put.lock.releases() {
                    self.held.remove(id);
                }
                self.store.save(id, &Put { lock: LockUse::Unlocked, expect_version: Some(put.meta.version), ..*put })
            }
            Err(e) => {
                if unreachable(&e) {
                    self.cache_failed(&e);
                }
                self.free_cache_lock(id, cache_lock);
                self.drop_cached(id);
                if put.lock.releases() || matches!(e, StoreError::LockLost) {
                    self.held.remove(id);
                }
                // The store recorded the access (or it was not due); a lost
                // cache lock is reported as for any store.
                match e {
                    StoreError::LockLost => Err(e),
                    _ => Ok(put.meta.generation),
                }
            }
        }
    }
}

impl Store for WriteThrough {
    fn name(&self) -> &'static str {
        "write-through"
    }

    fn lock_and_read(&mut self, id: &SessionId, req: &LockRequest) -> Result<Locked> {
        if !self.cache_usable() {
            return self.lock_in_store(id, req);
        }
        let (token, cached) = match self.on_cache(|c| c.lock_and_read(id, req)) {
            Ok(Locked::Acquired { token, record }) => (token, record),
            Ok(timed_out) => {
                self.cache_answered();
                return Ok(timed_out);
            }
            Err(e) if unreachable(&e) => {
                self.cache_failed(&e);
                return self.lock_in_store(id, req);
            }
            Err(e) => return Err(e),
        };
        self.cache_answered();
        let record = match cached {
            Some(r) => {
                bump(&STATS.cache_hits, 1);
                Some(r)
            }
            None => {
                bump(&STATS.cache_misses, 1);
                let from_store = match self.store.read(id) {
                    Ok(r) => r,
                    Err(e) => {
                        self.free_cache_lock(id, LockUse::Release(token));
                        return Err(e);
                    }
                };
                let mut from_store = from_store;
                if let Some(r) = &mut from_store {
                    match self.refill(id, r, LockUse::Keep(token)) {
                        // The generation the cache stamped: what it checks.
                        Ok(Some(g)) => r.meta.generation = g,
                        Ok(None) => {}
                        Err(_) => {
                            // The cache went away under us: take the store's lock.
                            self.free_cache_lock(id, LockUse::Release(token));
                            return self.lock_in_store(id, req);
                        }
                    }
                }
                from_store
            }
        };
        let data = record.as_ref().map(|r| r.data.clone()).unwrap_or_default();
        self.held.insert(id.clone(), Held { token, member: Member::Cache, data });
        Ok(Locked::Acquired { token, record })
    }

    fn read(&mut self, id: &SessionId) -> Result<Option<Record>> {
        if self.cache_usable() {
            match self.on_cache(|c| c.read(id)) {
                Ok(Some(r)) => {
                    self.cache_answered();
                    bump(&STATS.cache_hits, 1);
                    return Ok(Some(r));
                }
                Ok(None) => {
                    self.cache_answered();
                    bump(&STATS.cache_misses, 1);
                    // Without the lock: not refilled (a locked writer may be
                    // between its store and cache writes).
                }
                Err(e) if unreachable(&e) => {
                    self.cache_failed(&e);
                }
                Err(e) => return Err(e),
            }
        }
        self.store.read(id)
    }

    fn save(&mut self, id: &SessionId, put: &Put<'_>) -> Result<u64> {
        let member = self.member_of(id, put.lock)?;
        match put.what {
            Save::Write(data) => self.write(id, put, data, member),
            Save::Touch => self.touch(id, put, member),
        }
    }

    fn unlock(&mut self, id: &SessionId, token: LockToken) -> Result<()> {
        let Some(h) = self.held.get(id).filter(|h| h.token == token) else { return Ok(()) };
        let member = h.member;
        self.held.remove(id);
        match member {
            Member::Cache => {
                let freed = self.on_cache(|c| c.unlock(id, token));
                if let Err(e) = &freed {
                    if unreachable(e) {
                        self.cache_failed(e);
                    }
                }
                freed
            }
            Member::Store => self.store.unlock(id, token),
        }
    }

    fn destroy(&mut self, id: &SessionId) -> Result<bool> {
        let existed = self.store.destroy(id)?;
        self.drop_cached(id);
        Ok(existed)
    }

    /// The cache first: strict mode asks at every request, and what the
    /// cache holds the store holds too.
    fn exists(&mut self, id: &SessionId) -> Result<bool> {
        if self.cache_usable() {
            match self.on_cache(|c| c.exists(id)) {
                Ok(true) => return Ok(true),
                Ok(false) => self.cache_answered(),
                Err(e) if unreachable(&e) => {
                    self.cache_failed(&e);
                }
                Err(e) => return Err(e),
            }
        }
        self.store.exists(id)
    }

    fn gc(&mut self, default_timeout: u32) -> Result<u64> {
        let removed = self.store.gc(default_timeout)?;
        if self.cache_usable() {
            if let Err(e) = self.on_cache(|c| c.gc(default_timeout)) {
                if unreachable(&e) {
                    self.cache_failed(&e);
                }
            }
        }
        Ok(removed)
    }

    fn lock_holder(&mut self, id: &SessionId) -> Result<Option<Holder>> {
        if self.cache_usable() {
            match self.on_cache(|c| c.lock_holder(id)) {
                Ok(Some(h)) => return Ok(Some(Holder { member: Some(format!("cache {}", self.cache.name())), ..h })),
                Ok(None) => self.cache_answered(),
                Err(e) if unreachable(&e) => {
                    self.cache_failed(&e);
                }
                Err(e) => return Err(e),
            }
        }
        // The store's own lock, taken while the cache was down.
        let store = self.store.name();
        Ok(self.store.lock_holder(id)?.map(|h| Holder { member: Some(format!("store {store}")), ..h }))
    }

    fn take_warnings(&mut self) -> Vec<String> {
        let mut out = std::mem::take(&mut self.warnings);
        out.extend(self.cache.take_warnings());
        out.extend(self.store.take_warnings());
        out
    }

    fn versioned(&self) -> bool {
        true
    }

    fn describe(&self) -> Vec<(String, String)> {
        let cache = match self.outage {
            None => self.cache.name().to_string(),
            Some(since) => format!("{} (not answering for {} s)", self.cache.name(), since.elapsed().as_secs()),
        };
        vec![
            ("write-through cache".into(), cache),
            ("write-through store".into(), self.store.name().to_string()),
            ("write-through lazy_touch_s".into(), self.lazy_touch.to_string()),
        ]
    }
}

impl Registry for WriteThrough {
    fn user_sessions(&mut self, user: &str) -> Result<Vec<Listed>> {
        self.store.user_sessions(user)
    }

    /// The store's count. The cache loses the store's list of the user's
    /// sessions and those its own index knows.
    fn kill_user(&mut self, user: &str, keep: Option<&SessionId>) -> Result<u64> {
        let listed = self.store.user_sessions(user)?;
        let killed = self.store.kill_user(user, keep)?;
        if self.cache_usable() {
            if let Err(e) = self.on_cache(|c| c.kill_user(user, keep)) {
                if unreachable(&e) {
                    self.cache_failed(&e);
                }
            }
        }
        for l in listed.iter().filter(|l| Some(&l.id) != keep) {
            self.drop_cached(&l.id);
        }
        Ok(killed)
    }

    fn kill_all(&mut self) -> Result<i64> {
        let killed = self.store.kill_all()?;
        self.kill_all_pending = true;
        if self.cache_usable() {
            match self.on_cache(|c| c.kill_all()) {
                Ok(_) => {
                    self.kill_all_pending = false;
                    self.cache_answered();
                }
                Err(e) => {
                    self.cache_failed(&e);
                }
            }
        }
        Ok(killed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StoreConfig;
    use crate::store::testing::{TTL, id, meta, put, read_data, registry_contract, req};

    fn env(name: &str) -> String {
        std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run the store tests via `make test`"))
    }

    /// A write-through on the test servers, its own prefix in both members.
    fn open(cache: &str, store: &str, prefix: &str) -> WriteThrough {
        let members = format!("{}-{}", &cache[13..], store.trim_start_matches("RSESSION_TEST_"));
        let p = format!("wt:{prefix}:{members}:{}:", std::process::id());
        let path = format!("{}?prefix={p} | {}", env(cache), if store == "files" {
            let dir = std::env::temp_dir().join(format!("rs-wt-{prefix}-{members}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            dir.display().to_string()
        } else {
            format!("{}?prefix={p}", env(store))
        });
        open_path(&path)
    }

    fn open_path(path: &str) -> WriteThrough {
        let StoreConfig::WriteThrough { cache, store, lazy_touch } = StoreConfig::parse(path, std::path::Path::new("/tmp")).unwrap() else {
            panic!()
        };
        WriteThrough::new(crate::store::open(&cache).unwrap(), crate::store::open(&store).unwrap(), lazy_touch)
    }

    #[test]
    fn registry_memcached_pgsql() {
        registry_contract(&|| Box::new(open("RSESSION_TEST_MEMCACHED", "RSESSION_TEST_PGSQL", "reg")));
    }

    #[test]
    fn registry_redis_mysql() {
        registry_contract(&|| Box::new(open("RSESSION_TEST_REDIS", "RSESSION_TEST_MYSQL", "reg")));
    }

    #[test]
    fn registry_redis_files() {
        registry_contract(&|| Box::new(open("RSESSION_TEST_REDIS", "files", "reg")));
    }

    /// A holder whose cache lock was lost (deleted behind its back) while
    /// another request took it and wrote: the old holder's write is refused
    /// by the store, which keeps the newer data, and the cache holds what
    /// the store holds.
    fn lost_lock_write_is_refused(cache: &str, store: &str, prefix: &str, unfenced: bool) {
        let (mut a, mut b) = (open(cache, store, prefix), open(cache, store, prefix));
        a.unfenced = unfenced;
        let s = id("lost");
        let Locked::Acquired { token: t0, .. } = a.lock_and_read(&s, &req(0, 5000)).unwrap() else { panic!() };
        a.save(&s, &put(Save::Write(b"v1"), &meta(), TTL, LockUse::Release(t0))).unwrap();
        let Locked::Acquired { token, record: Some(rec) } = a.lock_and_read(&s, &req(0, 5000)).unwrap() else { panic!() };
        assert_eq!(rec.meta.version, 1);
        // The cache loses the lock and the entry (an eviction, a restart).
        a.cache.unlock(&s, token).unwrap();
        a.cache.destroy(&s).unwrap();
        let Locked::Acquired { token: t2, record: Some(theirs) } = b.lock_and_read(&s, &req(0, 5000)).unwrap() else {
            panic!("the lock must be free")
        };
        assert_eq!(theirs.data, b"v1", "refilled from the store");
        let p = Put { existed: true, ..put(Save::Write(b"theirs"), &theirs.meta, TTL, LockUse::Release(t2)) };
        b.save(&s, &p).unwrap();
        let p = Put { existed: true, ..put(Save::Write(b"mine"), &rec.meta, TTL, LockUse::Release(token)) };
        let mine = a.save(&s, &p);
        assert!(matches!(mine, Err(StoreError::LockLost)), "the old holder wrote: {mine:?}");
        assert_eq!(read_data(a.store.as_mut(), &s).as_deref(), Some(&b"theirs"[..]), "the store");
        assert_ne!(read_data(a.cache.as_mut(), &s).as_deref(), Some(&b"mine"[..]), "the cache");
        assert_eq!(read_data(&mut b, &s).as_deref(), Some(&b"theirs"[..]));
    }

    #[test]
    fn lost_lock_write_is_refused_memcached_pgsql() {
        lost_lock_write_is_refused("RSESSION_TEST_MEMCACHED", "RSESSION_TEST_PGSQL", "lost", false);
    }

    #[test]
    fn lost_lock_write_is_refused_redis_mysql() {
        lost_lock_write_is_refused("RSESSION_TEST_REDIS", "RSESSION_TEST_MYSQL", "lost", false);
    }

    #[test]
    fn lost_lock_write_is_refused_redis_files() {
        lost_lock_write_is_refused("RSESSION_TEST_REDIS", "files", "lost", false);
    }

    /// The test above fails without the fence: it tests the fence.
    #[test]
    fn without_the_fence_the_lost_lock_overwrites() {
        let r = std::panic::catch_unwind(|| lost_lock_write_is_refused("RSESSION_TEST_MEMCACHED", "RSESSION_TEST_PGSQL", "nofence", true));
        assert!(r.is_err(), "the lost-lock test passed without the version fence");
    }

    /// Read-mostly traffic: one store write per data change, touches of the
    /// store at most once per lazy window, hits from the cache.
    #[test]
    fn unchanged_saves_leave_the_store_alone() {
        let mut a = open("RSESSION_TEST_MEMCACHED", "RSESSION_TEST_PGSQL", "lazy");
        let s = id("lazy");
        let Locked::Acquired { token, .. } = a.lock_and_read(&s, &req(0, 5000)).unwrap() else { panic!() };
        a.save(&s, &put(Save::Write(b"x"), &meta(), TTL, LockUse::Release(token))).unwrap();
        let skipped = STATS.store_writes_skipped.load(std::sync::atomic::Ordering::Relaxed);
        for _ in 0..5 {
            let Locked::Acquired { token, record: Some(r) } = a.lock_and_read(&s, &req(0, 5000)).unwrap() else { panic!() };
            assert!(r.meta.durable_at > 0, "read from the cache's copy");
            a.save(&s, &Put { existed: true, ..put(Save::Touch, &r.meta, TTL, LockUse::Release(token)) }).unwrap();
        }
        assert!(STATS.store_writes_skipped.load(std::sync::atomic::Ordering::Relaxed) >= skipped + 5);
    }

    /// The cache down: reads, locks and writes go to the store, with one
    /// warning; ids written meanwhile are dropped from the cache when it
    /// answers again, so it never serves the older copy.
    #[test]
    fn a_cache_outage_falls_back_to_the_store_and_never_serves_stale_data() {
        let mut a = open("RSESSION_TEST_MEMCACHED", "RSESSION_TEST_PGSQL", "outage");
        let s = id("out");
        crate::store::testing::write(&mut a, &s, b"old");
        // Swap in a cache that cannot be reached, as an outage does.
        let down = StoreConfig::parse("memcached://127.0.0.1:1?connect_timeout_ms=100", std::path::Path::new("/tmp")).unwrap();
        let real = std::mem::replace(&mut a.cache, crate::store::open(&down).unwrap());
        for n in 0..3 {
            let Locked::Acquired { token, record: Some(r) } = a.lock_and_read(&s, &req(0, 5000)).unwrap() else { panic!() };
            let data = format!("new{n}");
            a.save(&s, &Put { existed: true, ..put(Save::Write(data.as_bytes()), &r.meta, TTL, LockUse::Release(token)) }).unwrap();
        }
        let w = a.take_warnings();
        assert_eq!(w.iter().filter(|w| w.contains("does not answer")).count(), 1, "{w:?}");
        a.cache = real;
        a.failed_at = Some(Instant::now() - RETRY_AFTER);
        assert_eq!(read_data(&mut a, &s).as_deref(), Some(&b"new2"[..]), "the cache served its older copy");
        assert!(a.take_warnings().is_empty());
    }

    /// An outage the write-through handles raises its one warning, not the
    /// cache member's own as well (memcached: "server … is not answering …
    /// skipped", at every call that tried it): PHP cannot tell those from a
    /// failed write, though the store took every write. A warning about a
    /// failure the cache worked around by itself (one server of two left
    /// out) is still raised.
    #[test]
    fn a_cache_outage_raises_the_write_through_warning_alone() {
        use crate::store::testing::{PrivateMemcached, free_port};
        let (p1, p2) = (free_port(), free_port());
        let (m1, m2) = (PrivateMemcached::start(p1), PrivateMemcached::start(p2));
        let prefix = format!("wt:alone:{}:", std::process::id());
        let mut a = open_path(&format!(
            "memcached://127.0.0.1:{p1},127.0.0.1:{p2}?prefix={prefix}&timeout_ms=300&connect_timeout_ms=300 | {}?prefix={prefix}",
            env("RSESSION_TEST_PGSQL")
        ));
        // Enough sessions that some live on each server.
        let ids: Vec<SessionId> = (0..16).map(|i| id(&format!("alone{i}"))).collect();
        let cycle = |a: &mut WriteThrough, data: &str| {
            for s in &ids {
                let Locked::Acquired { token, record } = a.lock_and_read(s, &req(0, 5000)).unwrap() else { panic!() };
                let m = record.as_ref().map_or_else(meta, |r| r.meta.clone());
                let p = Put { existed: record.is_some(), ..put(Save::Write(data.as_bytes()), &m, TTL, LockUse::Release(token)) };
                a.save(s, &p).unwrap();
            }
        };
        cycle(&mut a, "v0");
        assert!(a.take_warnings().is_empty());

        // One server stops: the cache moves its sessions to the other by
        // itself, and says so; the write-through has nothing to handle.
        drop(m1);
        cycle(&mut a, "v1");
        let w = a.take_warnings();
        assert_eq!(w.iter().filter(|w| w.contains("is not answering")).count(), 1, "the cache's own warning: {w:?}");
        assert!(!w.iter().any(|w| w.contains("does not answer")), "{w:?}");

        // Both down: the write-through falls back to the store, with its one
        // warning, also when it tries the cache again (once a second).
        drop(m2);
        cycle(&mut a, "v2");
        std::thread::sleep(RETRY_AFTER + Duration::from_millis(100));
        cycle(&mut a, "v3");
        let w = a.take_warnings();
        assert_eq!(w.len(), 1, "one warning for the outage: {w:?}");
        assert!(w[0].contains("write-through: the memcached cache does not answer"), "{w:?}");
        for s in &ids {
            assert_eq!(read_data(a.store.as_mut(), s).as_deref(), Some(&b"v3"[..]), "the store took every write");
        }
    }
}

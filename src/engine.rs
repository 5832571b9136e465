//! The request lifecycle, independent of PHP: open → read (lock) → write or
//! touch (unlock) → close, plus destroy, gc and id checks.
//!
//! PHP's session module (or an `RSession\Handler`) owns one [`Engine`] per
//! open session. Errors come back as [`EngineError`]s for the PHP layer to
//! raise as `rsession:` warnings; notices are queued in the engine.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::config::{LockFailure, Settings, StoreConfig};
use crate::error::{EngineError, StoreError};
use crate::store::{self, Holder, LockRequest, LockToken, Locked, Save, SessionId, Store};

pub type SharedStore = Arc<Mutex<Box<dyn Store>>>;

/// One store per config per process, so connections live across requests.
/// Keyed by pid too: after a fork the child must not use (or release) what
/// its parent opened.
static STORES: Mutex<Option<(u32, HashMap<StoreConfig, SharedStore>)>> = Mutex::new(None);

/// Returns this process's store for `config`, opening it on first use.
pub fn shared_store(config: &StoreConfig) -> Result<SharedStore, StoreError> {
    let pid = std::process::id();
    let mut guard = STORES.lock();
    if guard.as_ref().is_some_and(|(p, _)| *p != pid) {
        // Inherited across fork: forget, never drop (dropping would release
        // locks and close connections that belong to the parent).
        std::mem::forget(guard.take());
    }
    let (_, map) = guard.get_or_insert_with(|| (pid, HashMap::new()));
    if let Some(s) = map.get(config) {
        return Ok(s.clone());
    }
    let s: SharedStore = Arc::new(Mutex::new(store::open(config)?));
    map.insert(config.clone(), s.clone());
    Ok(s)
}

/// Locks held by this process, so that a request which never reached close
/// (a fatal error inside the handler) still frees them at request end.
static HELD: Mutex<Vec<(SharedStore, SessionId, LockToken)>> = Mutex::new(Vec::new());

/// Frees every lock still held; called after the session module shut down.
pub fn release_orphaned_locks() {
    let orphans = std::mem::take(&mut *HELD.lock());
    for (store, id, token) in orphans {
        let _ = store.lock().unlock(&id, token);
    }
}

/// This process's counters, for `RSession\stats()`.
pub struct Stats {
    pub reads: AtomicU64,
    pub writes: AtomicU64,
    pub writes_skipped: AtomicU64,
    pub lock_acquired: AtomicU64,
    pub lock_wait_ms: AtomicU64,
    pub lock_timeouts: AtomicU64,
    pub store_errors: AtomicU64,
}

pub static STATS: Stats = Stats {
    reads: AtomicU64::new(0),
    writes: AtomicU64::new(0),
    writes_skipped: AtomicU64::new(0),
    lock_acquired: AtomicU64::new(0),
    lock_wait_ms: AtomicU64::new(0),
    lock_timeouts: AtomicU64::new(0),
    store_errors: AtomicU64::new(0),
};

impl Stats {
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        vec![
            ("reads", get(&self.reads)),
            ("writes", get(&self.writes)),
            ("writes_skipped", get(&self.writes_skipped)),
            ("lock_acquired", get(&self.lock_acquired)),
            ("lock_wait_ms", get(&self.lock_wait_ms)),
            ("lock_timeouts", get(&self.lock_timeouts)),
            ("store_errors", get(&self.store_errors)),
        ]
    }
}

fn bump(c: &AtomicU64, by: u64) {
    c.fetch_add(by, Ordering::Relaxed);
}

/// Counts store failures on their way out.
fn counted<T>(r: Result<T, StoreError>) -> Result<T, StoreError> {
    if r.is_err() {
        bump(&STATS.store_errors, 1);
    }
    r
}

/// The first characters of an id: enough to find it in logs, not enough to
/// hijack the session from them.
pub fn short_id(id: &str) -> String {
    let shown: String = id.chars().take(8).collect();
    if shown.len() < id.len() { format!("{shown}…") } else { shown }
}

pub fn hostname() -> &'static str {
    static HOST: OnceLock<String> = OnceLock::new();
    HOST.get_or_init(|| {
        let mut buf = [0u8; 256];
        // SAFETY: the buffer and its length are valid; gethostname NUL-terminates
        // on success (we also stop at the buffer's end).
        let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
        if rc != 0 {
            return "unknown".to_string();
        }
        let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end]).into_owned()
    })
}

pub fn parse_id(raw: &[u8]) -> Result<SessionId, EngineError> {
    SessionId::parse(raw).ok_or_else(|| {
        let shown: String = String::from_utf8_lossy(&raw[..raw.len().min(40)])
            .chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .collect();
        EngineError::InvalidId(format!("{shown:?} ({} bytes)", raw.len()))
    })
}

fn ttl_of(maxlifetime: i64) -> Duration {
    Duration::from_secs(maxlifetime.max(0) as u64)
}

/// The session this engine has read.
struct Active {
    id: SessionId,
    /// Our lock, while we hold it.
    token: Option<LockToken>,
    read_only: bool,
    /// The data as read; None when the session did not exist.
    original: Option<Vec<u8>>,
}

pub struct Engine {
    store: SharedStore,
    pub settings: Settings,
    /// Shown to others as the lock holder's URI.
    uri: String,
    active: Option<Active>,
    notices: Vec<String>,
}

impl Engine {
    pub fn new(store: SharedStore, settings: Settings, uri: String) -> Engine {
        Engine { store, settings, uri, active: None, notices: Vec::new() }
    }

    pub fn store(&self) -> &SharedStore {
        &self.store
    }

    /// Notices raised since the last call, for the PHP layer to emit.
    pub fn take_notices(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notices)
    }

    /// Warnings about problems the store worked around, for the PHP layer.
    pub fn take_warnings(&mut self) -> Vec<String> {
        self.store.lock().take_warnings()
    }

    pub fn read(&mut self, raw_id: &[u8], maxlifetime: i64) -> Result<Vec<u8>, EngineError> {
        let id = parse_id(raw_id)?;
        let ttl = ttl_of(maxlifetime);
        bump(&STATS.reads, 1);

        // Read again under a lock we already hold (session_reset()): never
        // wait on ourselves.
        if let Some(a) = self.active.as_mut().filter(|a| a.id == id && a.token.is_some()) {
            let data = counted(self.store.lock().read(&id, ttl))?;
            a.original = data.clone();
            return Ok(data.unwrap_or_default());
        }
        // A different id than before: free the old lock first (best effort).
        let _ = self.release_lock();

        let s = &self.settings;
        if !s.locking || s.read_only {
            let data = counted(self.store.lock().read(&id, ttl))?;
            let read_only = s.read_only;
            return Ok(self.activate(id, None, read_only, data));
        }

        let req = LockRequest {
            holder: Holder {
                host: hostname().to_string(),
                pid: std::process::id(),
                uri: self.uri.clone(),
                since_ms: store::now_ms(),
            },
            wait: s.lock_wait,
            ttl: s.lock_ttl,
        };
        let started = Instant::now();
        let outcome = counted(self.store.lock().lock_and_read(&id, &req, ttl))?;
        let waited = started.elapsed();
        bump(&STATS.lock_wait_ms, waited.as_millis() as u64);
        match outcome {
            Locked::Acquired { token, data } => {
                bump(&STATS.lock_acquired, 1);
                HELD.lock().push((self.store.clone(), id.clone(), token));
                Ok(self.activate(id, Some(token), false, data))
            }
            Locked::TimedOut { holder } => {
                bump(&STATS.lock_timeouts, 1);
                let timeout = EngineError::LockTimeout { id: id.to_string(), waited, holder };
                if self.settings.lock_failure == LockFailure::Fail {
                    return Err(timeout);
                }
                self.notices.push(format!("{timeout}; the session is read-only for this request"));
                let data = counted(self.store.lock().read(&id, ttl))?;
                Ok(self.activate(id, None, true, data))
            }
        }
    }

    fn activate(&mut self, id: SessionId, token: Option<LockToken>, read_only: bool, data: Option<Vec<u8>>) -> Vec<u8> {
        let out = data.clone().unwrap_or_default();
        self.active = Some(Active { id, token, read_only, original: data });
        out
    }

    /// The active session, if `id` is it.
    fn active_for(&mut self, id: &SessionId) -> Option<&mut Active> {
        self.active.as_mut().filter(|a| &a.id == id)
    }

    pub fn write(&mut self, raw_id: &[u8], data: &[u8], maxlifetime: i64) -> Result<(), EngineError> {
        let id = parse_id(raw_id)?;
        self.save(&id, Save::Write(data), data, maxlifetime)
    }

    /// Lazy write: PHP found the data unchanged.
    pub fn update_timestamp(&mut self, raw_id: &[u8], data: &[u8], maxlifetime: i64) -> Result<(), EngineError> {
        let id = parse_id(raw_id)?;
        // A session that did not exist yet is created, as `files` does.
        let existed = self.active_for(&id).map_or(true, |a| a.original.is_some());
        let what = if existed { Save::Touch } else { Save::Write(data) };
        self.save(&id, what, data, maxlifetime)
    }

    fn save(&mut self, id: &SessionId, what: Save<'_>, data: &[u8], maxlifetime: i64) -> Result<(), EngineError> {
        let (lock, read_only, changed) = match self.active_for(id) {
            Some(a) => (a.token.map(|t| (t, true)), a.read_only, a.original.as_deref().unwrap_or_default() != data),
            None => (None, false, true),
        };
        if read_only {
            bump(&STATS.writes_skipped, 1);
            if changed && matches!(what, Save::Write(_)) {
                self.notices.push(format!(
                    "session {} was opened read-only; the changes made to $_SESSION were not saved",
                    short_id(id.as_str())
                ));
            }
            return Ok(());
        }
        let result = counted(self.store.lock().save(id, what, ttl_of(maxlifetime), lock));
        match what {
            Save::Write(_) => bump(&STATS.writes, 1),
            Save::Touch => bump(&STATS.writes_skipped, 1),
        }
        // The store released the lock, or it was no longer ours; on other
        // errors close() still tries to free it.
        if matches!(result, Ok(()) | Err(StoreError::LockLost)) && lock.is_some() {
            self.forget_lock();
        }
        if result.is_ok() {
            if let Some(a) = self.active_for(id) {
                a.original = Some(data.to_vec());
            }
        }
        Ok(result?)
    }

    pub fn close(&mut self) -> Result<(), EngineError> {
        let result = self.release_lock();
        self.active = None;
        result
    }

    pub fn destroy(&mut self, raw_id: &[u8]) -> Result<(), EngineError> {
        let id = parse_id(raw_id)?;
        counted(self.store.lock().destroy(&id))?;
        if let Some(a) = self.active_for(&id) {
            a.original = None;
        }
        Ok(())
    }

    pub fn gc(&mut self, maxlifetime: i64) -> Result<u64, EngineError> {
        Ok(counted(self.store.lock().gc(ttl_of(maxlifetime)))?)
    }

    /// Strict mode: an id is adopted only when well-formed and known.
    pub fn validate_id(&mut self, raw_id: &[u8]) -> Result<bool, EngineError> {
        let Some(id) = SessionId::parse(raw_id) else { return Ok(false) };
        Ok(counted(self.store.lock().exists(&id))?)
    }

    pub fn lock_holder(&mut self, raw_id: &[u8]) -> Result<Option<Holder>, EngineError> {
        let id = parse_id(raw_id)?;
        Ok(counted(self.store.lock().lock_holder(&id))?)
    }

    fn forget_lock(&mut self) {
        if let Some(a) = self.active.as_mut() {
            if let Some(token) = a.token.take() {
                HELD.lock().retain(|(_, i, t)| !(i == &a.id && *t == token));
            }
        }
    }

    fn release_lock(&mut self) -> Result<(), EngineError> {
        let Some((id, token)) = self.active.as_ref().and_then(|a| a.token.map(|t| (a.id.clone(), t))) else {
            return Ok(());
        };
        self.forget_lock();
        Ok(counted(self.store.lock().unlock(&id, token))?)
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.release_lock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;

    fn engine(settings: Settings) -> Engine {
        let store: SharedStore = Arc::new(Mutex::new(Box::new(MemoryStore::default())));
        Engine::new(store, settings, "/test".into())
    }

    fn holder() -> Holder {
        Holder { host: "other".into(), pid: 42, uri: "/slow.php".into(), since_ms: store::now_ms() }
    }

    #[test]
    fn round_trip_and_lock_released_at_write() {
        let mut e = engine(Settings::default());
        assert_eq!(e.read(b"abc", 100).unwrap(), b"");
        assert!(e.lock_holder(b"abc").unwrap().is_some());
        e.write(b"abc", b"a|i:1;\0", 100).unwrap();
        assert!(e.lock_holder(b"abc").unwrap().is_none());
        e.close().unwrap();
        assert_eq!(e.read(b"abc", 100).unwrap(), b"a|i:1;\0");
        e.close().unwrap();
        assert!(e.lock_holder(b"abc").unwrap().is_none());
    }

    #[test]
    fn hostile_ids_never_reach_the_store() {
        let mut e = engine(Settings::default());
        for id in [&b"../x"[..], b"a b", b"a\r\n", &[b'a'; 300]] {
            assert!(matches!(e.read(id, 100), Err(EngineError::InvalidId(_))));
            assert!(matches!(e.write(id, b"", 100), Err(EngineError::InvalidId(_))));
            assert!(!e.validate_id(id).unwrap());
        }
    }

    #[test]
    fn lock_timeout_fails_or_goes_read_only() {
        let id = SessionId::parse(b"abc").unwrap();
        let mut mem = MemoryStore::default();
        mem.save(&id, Save::Write(b"old"), Duration::from_secs(100), None).unwrap();
        mem.steal_lock(&id, holder());
        let shared: SharedStore = Arc::new(Mutex::new(Box::new(mem)));
        let settings = Settings { lock_wait: Duration::from_millis(1), ..Settings::default() };
        let mut e = Engine::new(shared.clone(), settings, "/t".into());
        let err = e.read(b"abc", 100).unwrap_err().to_string();
        assert!(err.contains("pid 42") && err.contains("/slow.php"), "{err}");

        e.settings.lock_failure = LockFailure::ReadOnly;
        assert_eq!(e.read(b"abc", 100).unwrap(), b"old");
        assert!(e.take_notices()[0].contains("read-only"));
        e.write(b"abc", b"new", 100).unwrap();
        assert!(e.take_notices()[0].contains("not saved"));
        assert_eq!(shared.lock().read(&id, Duration::from_secs(100)).unwrap().unwrap(), b"old");
    }

    #[test]
    fn lost_lock_refuses_write_and_keeps_data() {
        let mut mem = MemoryStore::default();
        let id = SessionId::parse(b"abc").unwrap();
        mem.save(&id, Save::Write(b"theirs"), Duration::from_secs(100), None).unwrap();
        let shared: SharedStore = Arc::new(Mutex::new(Box::new(mem)));
        let mut e = Engine::new(shared.clone(), Settings::default(), "/t".into());
        e.read(b"abc", 100).unwrap();
        // Another request takes the lock over (our lease ran out).
        let token = e.active.as_ref().unwrap().token.unwrap();
        shared.lock().unlock(&id, token).unwrap();
        let other = LockRequest { holder: holder(), wait: Duration::ZERO, ttl: Duration::from_secs(1) };
        assert!(matches!(shared.lock().lock_and_read(&id, &other, Duration::from_secs(100)).unwrap(), Locked::Acquired { .. }));
        assert!(matches!(e.write(b"abc", b"mine", 100), Err(EngineError::Store(StoreError::LockLost))));
        assert_eq!(shared.lock().read(&id, Duration::from_secs(100)).unwrap().unwrap(), b"theirs");
    }

    #[test]
    fn read_only_never_locks_and_reset_does_not_self_deadlock() {
        let mut e = engine(Settings { read_only: true, ..Settings::default() });
        e.read(b"abc", 100).unwrap();
        assert!(e.lock_holder(b"abc").unwrap().is_none());
        e.close().unwrap();
        let mut e = engine(Settings { lock_wait: Duration::ZERO, ..Settings::default() });
        e.read(b"abc", 100).unwrap();
        e.read(b"abc", 100).unwrap();
        e.write(b"abc", b"x", 100).unwrap();
    }

    #[test]
    fn lazy_write_creates_new_and_touches_existing() {
        let mut e = engine(Settings::default());
        e.read(b"new", 100).unwrap();
        e.update_timestamp(b"new", b"", 100).unwrap();
        e.close().unwrap();
        assert!(e.validate_id(b"new").unwrap());
    }
}

//! The request lifecycle, independent of PHP: open → read (lock) → write or
//! touch (unlock) → close, plus destroy, gc and id checks.
//!
//! PHP's session module (or an `RSession\Handler`) owns one [`Engine`] per
//! open session. Errors come back as [`EngineError`]s for the PHP layer to
//! raise as `rsession:` warnings; notices are queued in the engine.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::config::{LockFailure, Settings, StoreConfig};
use crate::error::{EngineError, StoreError};
use crate::meta::{MAX_USER_LEN, Meta};
use crate::store::{self, Holder, LockRequest, LockToken, Locked, Put, Record, Save, SessionId, Store};

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
fn release_orphaned_locks() {
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
    /// Kept in µs so that many short waits add up; shown in ms.
    pub lock_wait_us: AtomicU64,
    pub lock_timeouts: AtomicU64,
    pub store_errors: AtomicU64,
}

pub static STATS: Stats = Stats {
    reads: AtomicU64::new(0),
    writes: AtomicU64::new(0),
    writes_skipped: AtomicU64::new(0),
    lock_acquired: AtomicU64::new(0),
    lock_wait_us: AtomicU64::new(0),
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
            ("lock_wait_ms", get(&self.lock_wait_us) / 1000),
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

/// PHP's gc_maxlifetime as a timeout in seconds (0 = never).
pub fn timeout_of(maxlifetime: i64) -> u32 {
    maxlifetime.clamp(0, i64::from(u32::MAX)) as u32
}

/// The storage expiry for an idle timeout: zero means never.
fn storage_ttl(timeout: u32) -> Duration {
    Duration::from_secs(u64::from(timeout))
}

/// What a request tells others about itself.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    /// REQUEST_URI (the script on the command line): the lock holder's URI.
    pub uri: String,
    /// REMOTE_ADDR; None on the command line.
    pub ip: Option<String>,
}

/// Meta of the session the last close() ended, for session_regenerate_id():
/// PHP closes the old session, asks for a new id (create_sid with no session
/// open: `armed`), then reads the new id, whose session inherits the user,
/// timeout and creation time. Cleared at the end of every request.
struct Carry {
    meta: Option<Meta>,
    armed: bool,
}

static CARRY: Mutex<Carry> = Mutex::new(Carry { meta: None, armed: false });

/// create_sid was called with no session open: the next read of a new
/// session is a regenerated one.
pub fn regenerating() {
    let mut c = CARRY.lock();
    c.armed = c.meta.is_some();
}

/// The request is over: nothing carries into the next one.
pub fn end_request() {
    release_orphaned_locks();
    *CARRY.lock() = Carry { meta: None, armed: false };
    *CURRENT.lock() = None;
}

pub type SharedEngine = Arc<Mutex<Engine>>;

/// The engine of the session open in this request: `set_user()` and
/// `set_timeout()` act on it.
static CURRENT: Mutex<Option<Weak<Mutex<Engine>>>> = Mutex::new(None);

pub fn set_current(engine: &SharedEngine) {
    *CURRENT.lock() = Some(Arc::downgrade(engine));
}

pub fn clear_current() {
    *CURRENT.lock() = None;
}

pub fn current() -> Option<SharedEngine> {
    CURRENT.lock().as_ref().and_then(Weak::upgrade)
}

/// The session this engine has read.
struct Active {
    id: SessionId,
    /// Our lock, while we hold it.
    token: Option<LockToken>,
    read_only: bool,
    /// The data as read or last saved; None while the session does not
    /// exist in the store.
    original: Option<Vec<u8>>,
    meta: Meta,
    /// The metadata changed since it was stored: the next save writes.
    dirty: bool,
    /// session.gc_maxlifetime at read.
    default_timeout: u32,
}

impl Active {
    fn effective_timeout(&self) -> u32 {
        self.meta.effective_timeout(self.default_timeout)
    }
}

/// One session of a user, as `user_sessions()` shows it.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub id: String,
    pub meta: Meta,
    /// The idle timeout in force (the default where none was chosen).
    pub timeout: u32,
}

pub struct Engine {
    store: SharedStore,
    pub settings: Settings,
    origin: Origin,
    active: Option<Active>,
    notices: Vec<String>,
}

impl Engine {
    pub fn new(store: SharedStore, settings: Settings, origin: Origin) -> Engine {
        Engine { store, settings, origin, active: None, notices: Vec::new() }
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
        let default_timeout = timeout_of(maxlifetime);
        bump(&STATS.reads, 1);

        // Read again under a lock we already hold (session_reset()): never
        // wait on ourselves.
        if self.active.as_ref().is_some_and(|a| a.id == id && a.token.is_some()) {
            let record = counted(self.store.lock().read(&id))?;
            let token = self.active.as_ref().and_then(|a| a.token);
            return self.activate(id, token, false, record, default_timeout);
        }
        // A different id than before: free the old lock first (best effort).
        let _ = self.release_lock();

        let s = &self.settings;
        if !s.locking || s.read_only {
            let record = counted(self.store.lock().read(&id))?;
            let read_only = s.read_only;
            return self.activate(id, None, read_only, record, default_timeout);
        }

        let req = LockRequest {
            holder: Holder {
                host: hostname().to_string(),
                pid: std::process::id(),
                uri: self.origin.uri.clone(),
                since_ms: store::now_ms(),
            },
            wait: s.lock_wait,
            ttl: s.lock_ttl,
        };
        let started = Instant::now();
        let outcome = counted(self.store.lock().lock_and_read(&id, &req))?;
        let waited = started.elapsed();
        bump(&STATS.lock_wait_us, waited.as_micros() as u64);
        match outcome {
            Locked::Acquired { token, record } => {
                bump(&STATS.lock_acquired, 1);
                HELD.lock().push((self.store.clone(), id.clone(), token));
                self.activate(id, Some(token), false, record, default_timeout)
            }
            Locked::TimedOut { holder } => {
                bump(&STATS.lock_timeouts, 1);
                let timeout = EngineError::LockTimeout { id: id.to_string(), waited, holder };
                if self.settings.lock_failure == LockFailure::Fail {
                    return Err(timeout);
                }
                self.notices.push(format!("{timeout}; the session is read-only for this request"));
                let record = counted(self.store.lock().read(&id))?;
                self.activate(id, None, true, record, default_timeout)
            }
        }
    }

    /// Makes the session read the active one: drops it if it is past its
    /// idle timeout, creates its metadata if it is new, and records where
    /// this request comes from.
    fn activate(
        &mut self,
        id: SessionId,
        token: Option<LockToken>,
        read_only: bool,
        record: Option<Record>,
        default_timeout: u32,
    ) -> Result<Vec<u8>, EngineError> {
        let now = store::now_secs();
        let record = match record {
            Some(r) if r.meta.expired(now, default_timeout) => {
                // Past its own timeout, whatever the store's expiry says.
                counted(self.store.lock().destroy(&id))?;
                None
            }
            other => other,
        };
        let ip = self.origin.ip.clone();
        let mut inherited = false;
        let (meta, original, dirty) = match record {
            Some(r) => {
                let mut m = r.meta;
                let mut dirty = m.timeout != m.effective_timeout(default_timeout);
                m.timeout = m.effective_timeout(default_timeout);
                if ip.is_some() && m.last_ip != ip {
                    m.last_ip = ip;
                    dirty = true;
                }
                (m, Some(r.data), dirty)
            }
            None => {
                let mut m = Meta::new(now, ip, default_timeout);
                let mut carry = CARRY.lock();
                if let Some(old) = carry.meta.take().filter(|_| carry.armed) {
                    inherited = old.user.is_some() || old.timeout_set;
                    m.user = old.user;
                    m.created = old.created;
                    m.timeout = old.timeout;
                    m.timeout_set = old.timeout_set;
                    m.first_ip = old.first_ip.or(m.first_ip);
                }
                (m, None, inherited)
            }
        };
        *CARRY.lock() = Carry { meta: None, armed: false };
        let out = original.clone().unwrap_or_default();
        let has_user = meta.user.is_some();
        self.active = Some(Active { id, token, read_only, original, meta, dirty, default_timeout });
        if inherited && !read_only {
            // A regenerated session is listed under its user at once, so a
            // kill of that user's sessions also finds it.
            self.store_meta(has_user.then_some(None))?;
        }
        Ok(out)
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
        self.save(&id, Save::Touch, data, maxlifetime)
    }

    fn save(&mut self, id: &SessionId, what: Save<'_>, data: &[u8], maxlifetime: i64) -> Result<(), EngineError> {
        if self.active_for(id).is_none() {
            // A write without a read (a handler driven by hand): a session
            // of its own, written as new.
            let meta = Meta::new(store::now_secs(), self.origin.ip.clone(), timeout_of(maxlifetime));
            let default_timeout = timeout_of(maxlifetime);
            let _ = self.release_lock();
            self.active =
                Some(Active { id: id.clone(), token: None, read_only: false, original: None, meta, dirty: true, default_timeout });
        }
        let Some(a) = self.active.as_mut() else { return Err(EngineError::NotOpen) };
        if a.read_only {
            bump(&STATS.writes_skipped, 1);
            let changed = a.original.as_deref().unwrap_or_default() != data;
            if changed && matches!(what, Save::Write(_)) {
                self.notices.push(format!(
                    "session {} was opened read-only; the changes made to $_SESSION were not saved",
                    short_id(id.as_str())
                ));
            }
            return Ok(());
        }
        // A new session, changed metadata or a changed timeout: write it all.
        let what = match what {
            Save::Touch if a.original.is_none() || a.dirty => Save::Write(data),
            w => w,
        };
        a.meta.last_access = store::now_secs();
        a.meta.timeout = a.effective_timeout();
        let lock = a.token.map(|t| (t, true));
        let put = Put {
            what,
            meta: &a.meta,
            ttl: storage_ttl(a.meta.timeout),
            lock,
            existed: a.original.is_some(),
            user_changed: None,
        };
        let result = counted(self.store.lock().save(id, &put));
        match what {
            Save::Write(_) => bump(&STATS.writes, 1),
            Save::Touch => bump(&STATS.writes_skipped, 1),
        }
        // The store released the lock, or it was no longer ours; on other
        // errors close() still tries to free it.
        if matches!(result, Ok(_) | Err(StoreError::LockLost | StoreError::Killed)) && lock.is_some() {
            self.forget_lock();
        }
        match result {
            Ok(generation) => {
                if let Some(a) = self.active_for(id) {
                    a.original = Some(data.to_vec());
                    a.meta.generation = generation;
                    a.dirty = false;
                }
                Ok(())
            }
            Err(StoreError::Killed) => {
                // An administrator ended it: not this request's failure.
                self.notices.push(format!("session {}: {}", short_id(id.as_str()), StoreError::Killed));
                if let Some(a) = self.active_for(id) {
                    a.original = None;
                }
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Stores the active session's metadata now (with the data as read),
    /// keeping the lock: set_user() and set_timeout() take effect at once.
    fn store_meta(&mut self, user_changed: Option<Option<String>>) -> Result<(), EngineError> {
        let Some(a) = self.active.as_mut() else { return Err(EngineError::NoSession) };
        let data = a.original.clone().unwrap_or_default();
        a.meta.last_access = store::now_secs();
        a.meta.timeout = a.effective_timeout();
        let put = Put {
            what: Save::Write(&data),
            meta: &a.meta,
            ttl: storage_ttl(a.meta.timeout),
            lock: a.token.map(|t| (t, false)),
            existed: a.original.is_some(),
            user_changed: user_changed.as_ref().map(|u| u.as_deref()),
        };
        a.meta.generation = counted(self.store.lock().save(&a.id, &put))?;
        bump(&STATS.writes, 1);
        a.original = Some(data);
        a.dirty = false;
        Ok(())
    }

    /// Changes the active session's metadata with `change` and stores it,
    /// or leaves it as it was if that fails.
    fn update_meta(&mut self, change: impl FnOnce(&mut Meta)) -> Result<(), EngineError> {
        let a = self.active.as_mut().ok_or(EngineError::NoSession)?;
        if a.read_only {
            return Err(EngineError::ReadOnly);
        }
        let before = a.meta.clone();
        change(&mut a.meta);
        if a.meta == before && a.original.is_some() {
            return Ok(());
        }
        let user_changed = (a.meta.user != before.user).then(|| before.user.clone());
        let result = self.store_meta(user_changed);
        if result.is_err() {
            if let Some(a) = self.active.as_mut() {
                a.meta = before;
            }
        }
        result
    }

    /// Ties the active session to a user (login).
    pub fn set_user(&mut self, user: &str) -> Result<(), EngineError> {
        check_user(user)?;
        self.update_meta(|m| m.user = Some(user.to_string()))
    }

    /// The active session's own idle timeout; 0 = never.
    pub fn set_timeout(&mut self, seconds: i64) -> Result<(), EngineError> {
        let seconds = u32::try_from(seconds)
            .map_err(|_| EngineError::BadArgument(format!("timeout {seconds}: must be 0 (never) or a number of seconds")))?;
        self.update_meta(|m| {
            m.timeout = seconds;
            m.timeout_set = true;
        })
    }

    pub fn close(&mut self) -> Result<(), EngineError> {
        let result = self.release_lock();
        if let Some(a) = self.active.take() {
            *CARRY.lock() = Carry { meta: Some(a.meta), armed: false };
        }
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
        Ok(counted(self.store.lock().gc(timeout_of(maxlifetime)))?)
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

    /// A user's live sessions. Those past their idle timeout are removed,
    /// not listed.
    pub fn user_sessions(&mut self, user: &str, maxlifetime: i64) -> Result<Vec<SessionInfo>, EngineError> {
        check_user(user)?;
        let default_timeout = timeout_of(maxlifetime);
        let now = store::now_secs();
        let listed = counted(self.store.lock().user_sessions(user))?;
        let mut out = Vec::with_capacity(listed.len());
        for l in listed {
            if l.meta.expired(now, default_timeout) {
                let _ = counted(self.store.lock().destroy(&l.id));
                continue;
            }
            let timeout = l.meta.effective_timeout(default_timeout);
            out.push(SessionInfo { id: l.id.to_string(), meta: l.meta, timeout });
        }
        out.sort_by(|a, b| (a.meta.created, &a.id).cmp(&(b.meta.created, &b.id)));
        Ok(out)
    }

    pub fn kill_session(&mut self, raw_id: &[u8]) -> Result<bool, EngineError> {
        let id = parse_id(raw_id)?;
        Ok(counted(self.store.lock().destroy(&id))?)
    }

    pub fn kill_user_sessions(&mut self, user: &str, keep: Option<&[u8]>) -> Result<u64, EngineError> {
        check_user(user)?;
        let keep = keep.map(parse_id).transpose()?;
        Ok(counted(self.store.lock().kill_user(user, keep.as_ref()))?)
    }

    pub fn kill_all_sessions(&mut self) -> Result<i64, EngineError> {
        Ok(counted(self.store.lock().kill_all())?)
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

fn check_user(user: &str) -> Result<(), EngineError> {
    if user.is_empty() || user.len() > MAX_USER_LEN {
        return Err(EngineError::BadArgument(format!(
            "user id of {} bytes: must be 1 to {MAX_USER_LEN} bytes",
            user.len()
        )));
    }
    Ok(())
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
    use crate::store::testing;

    fn origin() -> Origin {
        Origin { uri: "/test".into(), ip: Some("192.0.2.7".into()) }
    }

    fn shared(mem: &MemoryStore) -> SharedStore {
        Arc::new(Mutex::new(Box::new(mem.clone())))
    }

    fn engine_on(mem: &MemoryStore, settings: Settings) -> Engine {
        Engine::new(shared(mem), settings, origin())
    }

    fn engine(settings: Settings) -> Engine {
        engine_on(&MemoryStore::default(), settings)
    }

    fn holder() -> Holder {
        Holder { host: "other".into(), pid: 42, uri: "/slow.php".into(), since_ms: store::now_ms() }
    }

    fn stored(mem: &MemoryStore, id: &str) -> Option<Record> {
        mem.clone().read(&testing::id(id)).unwrap()
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
            assert!(matches!(e.kill_session(id), Err(EngineError::InvalidId(_))));
            assert!(!e.validate_id(id).unwrap());
        }
    }

    #[test]
    fn lock_timeout_fails_or_goes_read_only() {
        let mem = MemoryStore::default();
        testing::write(&mut mem.clone(), &testing::id("abc"), b"old");
        mem.clone().steal_lock(&testing::id("abc"), holder());
        let settings = Settings { lock_wait: Duration::from_millis(1), ..Settings::default() };
        let mut e = engine_on(&mem, settings);
        let err = e.read(b"abc", 100).unwrap_err().to_string();
        assert!(err.contains("pid 42") && err.contains("/slow.php"), "{err}");

        e.settings.lock_failure = LockFailure::ReadOnly;
        assert_eq!(e.read(b"abc", 100).unwrap(), b"old");
        assert!(e.take_notices()[0].contains("read-only"));
        assert!(matches!(e.set_user("u"), Err(EngineError::ReadOnly)));
        e.write(b"abc", b"new", 100).unwrap();
        assert!(e.take_notices()[0].contains("not saved"));
        assert_eq!(stored(&mem, "abc").unwrap().data, b"old");
    }

    #[test]
    fn lost_lock_refuses_write_and_keeps_data() {
        let mem = MemoryStore::default();
        let id = testing::id("abc");
        testing::write(&mut mem.clone(), &id, b"theirs");
        let mut e = engine_on(&mem, Settings::default());
        e.read(b"abc", 100).unwrap();
        // Another request takes the lock over (our lease ran out).
        let token = e.active.as_ref().unwrap().token.unwrap();
        let mut other = mem.clone();
        other.unlock(&id, token).unwrap();
        let req = LockRequest { holder: holder(), wait: Duration::ZERO, ttl: Duration::from_secs(1) };
        assert!(matches!(other.lock_and_read(&id, &req).unwrap(), Locked::Acquired { .. }));
        assert!(matches!(e.write(b"abc", b"mine", 100), Err(EngineError::Store(StoreError::LockLost))));
        assert_eq!(stored(&mem, "abc").unwrap().data, b"theirs");
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

    #[test]
    fn metadata_is_created_kept_and_listed() {
        let mem = MemoryStore::default();
        let mut e = engine_on(&mem, Settings::default());
        e.read(b"s1", 1440).unwrap();
        e.set_user("alice").unwrap();
        // Visible before the request ends.
        let listed = engine_on(&mem, Settings::default()).user_sessions("alice", 1440).unwrap();
        assert_eq!(listed.len(), 1);
        let m = &listed[0].meta;
        assert_eq!((m.first_ip.as_deref(), m.last_ip.as_deref(), listed[0].timeout), (Some("192.0.2.7"), Some("192.0.2.7"), 1440));
        e.write(b"s1", b"x", 1440).unwrap();
        e.close().unwrap();
        // Another address, later: last_ip follows, first_ip stays.
        let mut e2 = Engine::new(shared(&mem), Settings::default(), Origin { uri: "/".into(), ip: Some("198.51.100.1".into()) });
        e2.read(b"s1", 1440).unwrap();
        e2.update_timestamp(b"s1", b"x", 1440).unwrap();
        let m = stored(&mem, "s1").unwrap().meta;
        assert_eq!((m.first_ip.as_deref(), m.last_ip.as_deref(), m.user.as_deref()), (Some("192.0.2.7"), Some("198.51.100.1"), Some("alice")));
    }

    #[test]
    fn own_timeout_beats_gc_maxlifetime() {
        let mem = MemoryStore::default();
        let mut e = engine_on(&mem, Settings::default());
        assert!(matches!(e.set_timeout(5), Err(EngineError::NoSession)));
        e.read(b"short", 1440).unwrap();
        e.set_timeout(2).unwrap();
        assert!(matches!(e.set_timeout(-1), Err(EngineError::BadArgument(_))));
        e.write(b"short", b"x", 1440).unwrap();
        e.close().unwrap();
        e.read(b"never", 1).unwrap();
        e.set_timeout(0).unwrap();
        e.write(b"never", b"y", 1).unwrap();
        e.close().unwrap();
        e.read(b"plain", 1).unwrap();
        e.write(b"plain", b"z", 1).unwrap();
        e.close().unwrap();
        for id in ["short", "never", "plain"] {
            mem.age(&testing::id(id), 10);
        }
        // Past its own 2 s while gc_maxlifetime is 1440: reads as empty.
        assert_eq!(e.read(b"short", 1440).unwrap(), b"");
        e.close().unwrap();
        assert!(stored(&mem, "short").is_none(), "removed at that read");
        assert_eq!(e.gc(1).unwrap(), 1, "the plain session is past gc_maxlifetime");
        assert!(stored(&mem, "never").is_some(), "timeout 0 survives gc");
        assert_eq!(e.read(b"never", 1).unwrap(), b"y");
        e.close().unwrap();
    }

    #[test]
    fn killed_while_held_stays_dead() {
        let mem = MemoryStore::default();
        let mut e = engine_on(&mem, Settings::default());
        e.read(b"k", 100).unwrap();
        e.set_user("bob").unwrap();
        assert_eq!(engine_on(&mem, Settings::default()).kill_user_sessions("bob", None).unwrap(), 1);
        e.write(b"k", b"zombie", 100).unwrap();
        assert!(e.take_notices()[0].contains("killed"));
        assert!(stored(&mem, "k").is_none());
        assert!(e.lock_holder(b"k").unwrap().is_none(), "the lock is freed");
    }

    #[test]
    fn sessions_created_after_kill_all_live() {
        let mem = MemoryStore::default();
        let mut e = engine_on(&mem, Settings::default());
        e.read(b"before", 100).unwrap();
        e.write(b"before", b"1", 100).unwrap();
        e.close().unwrap();
        assert_eq!(e.kill_all_sessions().unwrap(), -1);
        e.read(b"after", 100).unwrap();
        e.set_user("kim").unwrap();
        e.write(b"after", b"2", 100).unwrap();
        e.close().unwrap();
        assert_eq!(e.read(b"after", 100).unwrap(), b"2");
        e.close().unwrap();
        assert_eq!(e.read(b"before", 100).unwrap(), b"");
        e.close().unwrap();
        assert_eq!(e.user_sessions("kim", 100).unwrap().len(), 1);
    }

    #[test]
    fn regenerate_carries_user_and_timeout() {
        let mem = MemoryStore::default();
        let mut e = engine_on(&mem, Settings::default());
        e.read(b"old", 100).unwrap();
        e.set_user("carol").unwrap();
        e.set_timeout(0).unwrap();
        // session_regenerate_id(true): destroy, close, create_sid, open, read.
        e.destroy(b"old").unwrap();
        e.close().unwrap();
        regenerating();
        let mut e = engine_on(&mem, Settings::default());
        e.read(b"new", 100).unwrap();
        let listed = e.user_sessions("carol", 100).unwrap();
        assert_eq!(listed.iter().map(|l| l.id.as_str()).collect::<Vec<_>>(), ["new"]);
        assert_eq!(listed[0].timeout, 0);
        e.close().unwrap();
        // A plain new session later in the request inherits nothing.
        e.read(b"other", 100).unwrap();
        e.write(b"other", b"", 100).unwrap();
        assert_eq!(stored(&mem, "other").unwrap().meta.user, None);
        end_request();
    }
}

//! The request lifecycle, independent of PHP: open → read (lock) → write or
//! touch (unlock) → close, plus destroy, gc and id checks.
//!
//! PHP's session module (or an `RSession\Handler`) owns one [`Engine`] per
//! open session. Errors come back as [`EngineError`]s for the PHP layer to
//! raise as `rsession:` warnings; notices are queued in the engine.
//!
//! What outlives one engine but not the request (locks to free at its end,
//! the open session for `set_user()`, what `session_regenerate_id()` hands
//! from the old id to the new one, ids killed while held) is the request's
//! state, kept per thread.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::config::{LockFailure, Settings, StoreConfig};
use crate::error::{EngineError, StoreError};
use crate::meta::{MAX_USER_LEN, Meta};
use crate::stats::{STATS, bump};
use crate::store::{self, Holder, LockRequest, LockToken, LockUse, Locked, Put, Record, Save, SessionId, Store, UserChange};

pub type SharedStore = Arc<Mutex<Box<dyn Store>>>;

/// One store per config per process, so connections live across requests.
/// Keyed by pid too: after a fork the child must not use (or release) what
/// its parent opened.
static STORES: Mutex<Option<(u32, HashMap<StoreConfig, SharedStore>)>> = Mutex::new(None);

/// Returns this process's store for `config`, opening it on first use.
pub fn shared_store(config: &StoreConfig) -> Result<SharedStore, StoreError> {
    let pid = crate::pid::current();
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

/// What `session_regenerate_id()` hands from the session it closes to the
/// one it opens under the new id.
enum Carry {
    /// The user, timeout and creation time follow the session.
    Alive(Meta),
    /// The session was killed while this request held it: the new id is its
    /// continuation and stays dead too.
    Killed,
}

/// The request's state (see the module comment). Never borrowed across a
/// call into PHP or into another engine.
#[derive(Default)]
struct Request {
    /// The process these belong to: a forked child starts clean.
    pid: u32,
    /// Locks taken in this request, so that one which never reached close
    /// (a fatal error inside the handler) is still freed at request end.
    held: Vec<(SharedStore, SessionId, LockToken)>,
    /// The engine of the session open in this request: `set_user()` and
    /// `set_timeout()` act on it.
    current: Option<Weak<Mutex<Engine>>>,
    /// Inside `session_regenerate_id()` (the PHP layer's hook says so).
    regenerating: bool,
    carry: Option<Carry>,
    /// Sessions killed while this request held them: they stay dead for the
    /// rest of it, whatever it does.
    killed: Vec<SessionId>,
    /// Sessions whose read failed in this request (a lock wait that gave
    /// up, a store error): a write that comes anyway (frameworks that
    /// swallow the failed read) would land over what another request
    /// holds, so it is refused.
    failed_reads: Vec<SessionId>,
}

thread_local! {
    static REQUEST: RefCell<Request> = RefCell::new(Request::default());
}

/// Runs `f` on this thread's request state (reset first in a forked child,
/// which must neither use nor free its parent's locks).
fn request<T>(f: impl FnOnce(&mut Request) -> T) -> T {
    REQUEST.with(|r| {
        let mut r = r.borrow_mut();
        let pid = crate::pid::current();
        if r.pid != pid {
            let inherited = std::mem::replace(&mut *r, Request { pid, ..Request::default() });
            std::mem::forget(inherited.held);
        }
        f(&mut r)
    })
}

/// `session_regenerate_id()` starts (true) or ends (false). Only inside it
/// does a new session inherit from the one closed before: a session started
/// after `session_destroy()` (logout) inherits nothing.
pub fn set_regenerating(on: bool) {
    request(|r| {
        r.regenerating = on;
        r.carry = None;
    });
}

/// The request is over: frees every lock still held, and nothing carries
/// into the next one.
pub fn end_request() {
    let held = request(|r| {
        let held = std::mem::take(&mut r.held);
        *r = Request { pid: r.pid, ..Request::default() };
        held
    });
    for (store, id, token) in held {
        let _ = store.lock().unlock(&id, token);
    }
}

pub type SharedEngine = Arc<Mutex<Engine>>;

pub fn set_current(engine: &SharedEngine) {
    request(|r| r.current = Some(Arc::downgrade(engine)));
}

pub fn clear_current() {
    request(|r| r.current = None);
}

pub fn current() -> Option<SharedEngine> {
    request(|r| r.current.as_ref().and_then(Weak::upgrade))
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

/// Why the active session must not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frozen {
    /// rsession.read_only, or a lock timeout with lock_failure=readonly.
    ReadOnly,
    /// Killed while this request held it (or the continuation of one that
    /// was, under a new id).
    Killed,
    /// Read by the parent before pcntl_fork(): the parent writes it.
    Forked { parent: u32 },
}

/// The session this engine has read.
struct Active {
    id: SessionId,
    /// Our lock, while we hold it.
    token: Option<LockToken>,
    frozen: Option<Frozen>,
    /// The data as read or last saved; None while the session does not
    /// exist in the store.
    original: Option<Vec<u8>>,
    meta: Meta,
    /// The metadata changed since it was stored: the next save writes.
    dirty: bool,
    /// Destroyed by this request: metadata changes wait for the session
    /// written next without a read (a framework's own regenerate).
    destroyed: bool,
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
    config: StoreConfig,
    store: SharedStore,
    /// The process that opened the engine: in a child after pcntl_fork(),
    /// the engine lets go of the parent's connections and lock.
    pid: u32,
    pub settings: Settings,
    origin: Origin,
    active: Option<Active>,
    notices: Vec<String>,
}

impl Engine {
    /// An engine on this process's store for `config`.
    pub fn open(config: &StoreConfig, settings: Settings, origin: Origin) -> Result<Engine, EngineError> {
        let store = shared_store(config)?;
        Ok(Engine::with_store(config.clone(), store, settings, origin))
    }

    fn with_store(config: StoreConfig, store: SharedStore, settings: Settings, origin: Origin) -> Engine {
        crate::store::spin::set_limit(settings.spin);
        Engine { config, store, pid: crate::pid::current(), settings, origin, active: None, notices: Vec::new() }
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

    /// In a child after pcntl_fork(): the store, its connections and the
    /// lock are the parent's. Take this process's own store, forget the
    /// lock (the parent frees it) and leave the session to the parent.
    fn follow_fork(&mut self) -> Result<(), EngineError> {
        let pid = crate::pid::current();
        if pid == self.pid {
            return Ok(());
        }
        let parent = std::mem::replace(&mut self.pid, pid);
        if let Some(a) = self.active.as_mut() {
            a.token = None;
            a.frozen = Some(Frozen::Forked { parent });
        }
        let inherited = std::mem::replace(&mut self.store, shared_store(&self.config)?);
        std::mem::forget(inherited);
        Ok(())
    }

    pub fn read(&mut self, raw_id: &[u8], maxlifetime: i64) -> Result<Vec<u8>, EngineError> {
        self.follow_fork()?;
        let id = parse_id(raw_id)?;
        let result = self.read_id(id.clone(), maxlifetime);
        request(|r| {
            r.failed_reads.retain(|f| f != &id);
            if result.is_err() {
                r.failed_reads.push(id);
            }
        });
        result
    }

    fn read_id(&mut self, id: SessionId, maxlifetime: i64) -> Result<Vec<u8>, EngineError> {
        let default_timeout = timeout_of(maxlifetime);
        bump(&STATS.reads, 1);

        // Read again under a lock we already hold (session_reset()): never
        // wait on ourselves.
        if let Some(a) = self.active.as_ref().filter(|a| a.id == id && a.token.is_some()) {
            let (token, existed) = (a.token, a.original.is_some());
            let record = counted(self.store.lock().read(&id))?;
            if existed && record.is_none() {
                // Gone under our lock: killed.
                request(|r| r.killed.push(id.clone()));
            }
            return self.activate(id, token, None, record, default_timeout);
        }
        // A different id than before: free the old lock first (best effort).
        let _ = self.release_lock();

        let s = &self.settings;
        if !s.locking || s.read_only {
            let frozen = s.read_only.then_some(Frozen::ReadOnly);
            let record = counted(self.store.lock().read(&id))?;
            return self.activate(id, None, frozen, record, default_timeout);
        }

        let req = LockRequest {
            holder: Holder {
                host: hostname().to_string(),
                pid: crate::pid::current(),
                uri: self.origin.uri.clone(),
                since_ms: store::now_ms(),
                member: None,
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
                let store = self.store.clone();
                request(|r| r.held.push((store, id.clone(), token)));
                self.activate(id, Some(token), None, record, default_timeout)
            }
            Locked::TimedOut { holder } => {
                bump(&STATS.lock_timeouts, 1);
                let timeout = EngineError::LockTimeout { id: id.to_string(), waited, holder };
                if self.settings.lock_failure == LockFailure::Fail {
                    return Err(timeout);
                }
                self.notices.push(format!("{timeout}; the session is read-only for this request"));
                let record = counted(self.store.lock().read(&id))?;
                self.activate(id, None, Some(Frozen::ReadOnly), record, default_timeout)
            }
        }
    }

    /// Makes the session read the active one: drops it if it is past its
    /// idle timeout, creates its metadata if it is new (inheriting from the
    /// old id inside session_regenerate_id()), and records where this
    /// request comes from.
    fn activate(
        &mut self,
        id: SessionId,
        token: Option<LockToken>,
        mut frozen: Option<Frozen>,
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
                match request(|r| if r.regenerating { r.carry.take() } else { None }) {
                    Some(Carry::Alive(old)) => {
                        inherited = old.user.is_some() || old.timeout_set;
                        m.user = old.user;
                        m.created = old.created;
                        m.timeout = old.timeout;
                        m.timeout_set = old.timeout_set;
                        m.first_ip = old.first_ip.or(m.first_ip);
                    }
                    Some(Carry::Killed) => frozen = Some(Frozen::Killed),
                    None => {}
                }
                (m, None, inherited)
            }
        };
        if request(|r| r.killed.contains(&id)) {
            frozen = Some(Frozen::Killed);
        }
        let out = original.clone().unwrap_or_default();
        let has_user = meta.user.is_some();
        self.active = Some(Active { id, token, frozen, original, meta, dirty, destroyed: false, default_timeout });
        if inherited && frozen.is_none() {
            // A regenerated session is listed under its user at once, so a
            // kill of that user's sessions also finds it.
            self.store_meta(if has_user { UserChange::From(None) } else { UserChange::Unchanged })?;
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

    /// Marks the active session killed: nothing of it is written again in
    /// this request, under its id or (regenerated) under a new one.
    fn mark_killed(&mut self, id: &SessionId) {
        if let Some(a) = self.active_for(id) {
            a.original = None;
            a.frozen = Some(Frozen::Killed);
        }
        request(|r| r.killed.push(id.clone()));
    }

    fn save(&mut self, id: &SessionId, what: Save<'_>, data: &[u8], maxlifetime: i64) -> Result<(), EngineError> {
        self.follow_fork()?;
        if self.active_for(id).is_none() {
            if request(|r| r.failed_reads.contains(id)) {
                bump(&STATS.writes_skipped, 1);
                return Err(EngineError::NotRead(short_id(id.as_str())));
            }
            // A write without a read (a handler driven by hand; a framework
            // that moves the data to a new id itself): a session of its
            // own, written as new. It continues a session this engine
            // destroyed if set_user()/set_timeout() were called since.
            let mut meta = Meta::new(store::now_secs(), self.origin.ip.clone(), timeout_of(maxlifetime));
            if let Some(old) = self.active.as_ref().filter(|a| a.destroyed && a.dirty) {
                meta.user = old.meta.user.clone();
                meta.timeout = old.meta.timeout;
                meta.timeout_set = old.meta.timeout_set;
                meta.created = old.meta.created;
                meta.first_ip = old.meta.first_ip.clone().or(meta.first_ip);
            }
            let default_timeout = timeout_of(maxlifetime);
            let _ = self.release_lock();
            let frozen = request(|r| r.killed.contains(id)).then_some(Frozen::Killed);
            self.active = Some(Active {
                id: id.clone(),
                token: None,
                frozen,
                original: None,
                meta,
                dirty: true,
                destroyed: false,
                default_timeout,
            });
        }
        let Some(a) = self.active.as_mut() else { return Err(EngineError::NotOpen) };
        if let Some(frozen) = a.frozen {
            bump(&STATS.writes_skipped, 1);
            let changed = a.original.as_deref().unwrap_or_default() != data;
            let shown = short_id(id.as_str());
            match frozen {
                Frozen::ReadOnly if changed && matches!(what, Save::Write(_)) => self.notices.push(format!(
                    "session {shown} was opened read-only; the changes made to $_SESSION were not saved"
                )),
                Frozen::Killed => self.notices.push(format!("session {shown}: {}", StoreError::Killed)),
                Frozen::Forked { parent } if changed => self.notices.push(format!(
                    "session {shown} was opened by process {parent} before pcntl_fork(); this child does not write it (the parent does)"
                )),
                _ => {}
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
        let lock = a.token.map_or(LockUse::Unlocked, LockUse::Release);
        // A new session created with its user already set is filed under it.
        let user = if a.original.is_none() && a.meta.user.is_some() { UserChange::From(None) } else { UserChange::Unchanged };
        let put = Put {
            what,
            meta: &a.meta,
            ttl: storage_ttl(a.meta.timeout),
            lock,
            existed: a.original.is_some(),
            user,
            expect_version: None,
        };
        let (result, versioned) = {
            let mut store = self.store.lock();
            (counted(store.save(id, &put)), store.versioned())
        };
        match what {
            Save::Write(_) => bump(&STATS.writes, 1),
            Save::Touch => bump(&STATS.writes_skipped, 1),
        }
        // The store released the lock, or it was no longer ours; on other
        // errors close() still tries to free it.
        if matches!(result, Ok(_) | Err(StoreError::LockLost | StoreError::Killed)) && lock.releases() {
            self.forget_lock();
        }
        match result {
            Ok(generation) => {
                if let Some(a) = self.active_for(id) {
                    a.original = Some(data.to_vec());
                    a.meta.generation = generation;
                    a.dirty = false;
                    if versioned && matches!(what, Save::Write(_)) {
                        a.meta.version += 1;
                    }
                }
                Ok(())
            }
            Err(StoreError::Killed) => {
                // An administrator ended it: not this request's failure.
                self.notices.push(format!("session {}: {}", short_id(id.as_str()), StoreError::Killed));
                self.mark_killed(id);
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Stores the active session's metadata now (with the data as read),
    /// keeping the lock: set_user() and set_timeout() take effect at once.
    fn store_meta(&mut self, user: UserChange<'_>) -> Result<(), EngineError> {
        let Some(a) = self.active.as_mut() else { return Err(EngineError::NoSession) };
        let data = a.original.clone().unwrap_or_default();
        a.meta.last_access = store::now_secs();
        a.meta.timeout = a.effective_timeout();
        let put = Put {
            what: Save::Write(&data),
            meta: &a.meta,
            ttl: storage_ttl(a.meta.timeout),
            lock: a.token.map_or(LockUse::Unlocked, LockUse::Keep),
            existed: a.original.is_some(),
            user,
            expect_version: None,
        };
        let id = a.id.clone();
        let (saved, versioned) = {
            let mut store = self.store.lock();
            (counted(store.save(&id, &put)), store.versioned())
        };
        match saved {
            Ok(generation) => {
                bump(&STATS.writes, 1);
                if let Some(a) = self.active.as_mut() {
                    a.meta.generation = generation;
                    a.meta.version += u64::from(versioned);
                    a.original = Some(data);
                    a.dirty = false;
                }
                Ok(())
            }
            Err(StoreError::Killed) => {
                self.mark_killed(&id);
                Err(StoreError::Killed.into())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Changes the active session's metadata with `change` and stores it,
    /// or leaves it as it was if that fails.
    fn update_meta(&mut self, change: impl FnOnce(&mut Meta)) -> Result<(), EngineError> {
        self.follow_fork()?;
        let a = self.active.as_mut().ok_or(EngineError::NoSession)?;
        match a.frozen {
            None => {}
            Some(Frozen::Killed) => return Err(StoreError::Killed.into()),
            Some(Frozen::ReadOnly | Frozen::Forked { .. }) => return Err(EngineError::ReadOnly),
        }
        let before = a.meta.clone();
        change(&mut a.meta);
        if a.destroyed {
            // Not stored under the destroyed id: kept for its successor.
            a.dirty |= a.meta != before;
            return Ok(());
        }
        if a.meta == before && a.original.is_some() {
            return Ok(());
        }
        let previous = (a.meta.user != before.user).then(|| before.user.clone());
        let user = match &previous {
            Some(p) => UserChange::From(p.as_deref()),
            None => UserChange::Unchanged,
        };
        let result = self.store_meta(user);
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
        self.follow_fork()?;
        let result = self.release_lock();
        if let Some(a) = self.active.take() {
            let carry = if a.frozen == Some(Frozen::Killed) { Carry::Killed } else { Carry::Alive(a.meta) };
            request(|r| {
                if r.regenerating {
                    r.carry = Some(carry);
                }
            });
        }
        result
    }

    pub fn destroy(&mut self, raw_id: &[u8]) -> Result<(), EngineError> {
        self.follow_fork()?;
        let id = parse_id(raw_id)?;
        if self.active_for(&id).is_some_and(|a| matches!(a.frozen, Some(Frozen::Forked { .. }))) {
            return Ok(()); // the parent's session: not the child's to end
        }
        let existed = counted(self.store.lock().destroy(&id))?;
        if let Some(a) = self.active_for(&id) {
            if a.original.is_some() && !existed {
                // It was there when read and is gone now: killed meanwhile.
                self.mark_killed(&id);
            } else {
                a.original = None;
                a.destroyed = true;
                a.dirty = false;
            }
        }
        Ok(())
    }

    pub fn gc(&mut self, maxlifetime: i64) -> Result<u64, EngineError> {
        self.follow_fork()?;
        Ok(counted(self.store.lock().gc(timeout_of(maxlifetime)))?)
    }

    /// Strict mode: an id is adopted only when well-formed and known.
    pub fn validate_id(&mut self, raw_id: &[u8]) -> Result<bool, EngineError> {
        self.follow_fork()?;
        let Some(id) = SessionId::parse(raw_id) else { return Ok(false) };
        Ok(counted(self.store.lock().exists(&id))?)
    }

    pub fn lock_holder(&mut self, raw_id: &[u8]) -> Result<Option<Holder>, EngineError> {
        self.follow_fork()?;
        let id = parse_id(raw_id)?;
        Ok(counted(self.store.lock().lock_holder(&id))?)
    }

    /// A user's live sessions. Those past their idle timeout are removed,
    /// not listed.
    pub fn user_sessions(&mut self, user: &str, maxlifetime: i64) -> Result<Vec<SessionInfo>, EngineError> {
        self.follow_fork()?;
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
        self.follow_fork()?;
        let id = parse_id(raw_id)?;
        Ok(counted(self.store.lock().destroy(&id))?)
    }

    pub fn kill_user_sessions(&mut self, user: &str, keep: Option<&[u8]>) -> Result<u64, EngineError> {
        self.follow_fork()?;
        check_user(user)?;
        let keep = keep.map(parse_id).transpose()?;
        Ok(counted(self.store.lock().kill_user(user, keep.as_ref()))?)
    }

    pub fn kill_all_sessions(&mut self) -> Result<i64, EngineError> {
        self.follow_fork()?;
        Ok(counted(self.store.lock().kill_all())?)
    }

    fn forget_lock(&mut self) {
        if let Some(a) = self.active.as_mut() {
            if let Some(token) = a.token.take() {
                let id = &a.id;
                request(|r| r.held.retain(|(_, i, t)| !(i == id && *t == token)));
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
        if self.pid == crate::pid::current() {
            let _ = self.release_lock();
        }
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
        engine_with(mem, settings, origin())
    }

    fn engine_with(mem: &MemoryStore, settings: Settings, origin: Origin) -> Engine {
        let unused = StoreConfig::Files { dir: "/nonexistent".into(), compression: Default::default() };
        Engine::with_store(unused, shared(mem), settings, origin)
    }

    fn engine(settings: Settings) -> Engine {
        engine_on(&MemoryStore::default(), settings)
    }

    fn holder() -> Holder {
        Holder { host: "other".into(), pid: 42, uri: "/slow.php".into(), since_ms: store::now_ms(), member: None }
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
        let mut e2 = engine_with(&mem, Settings::default(), Origin { uri: "/".into(), ip: Some("198.51.100.1".into()) });
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
        // session_regenerate_id(true): destroy, close, open, create_sid, read.
        set_regenerating(true);
        e.destroy(b"old").unwrap();
        e.close().unwrap();
        let mut e = engine_on(&mem, Settings::default());
        e.read(b"new", 100).unwrap();
        set_regenerating(false);
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

    #[test]
    fn a_new_session_after_logout_belongs_to_nobody() {
        let mem = MemoryStore::default();
        let mut e = engine_on(&mem, Settings::default());
        e.read(b"in", 100).unwrap();
        e.set_user("dora").unwrap();
        e.set_timeout(0).unwrap();
        // session_destroy(); session_start(): destroy, close, open,
        // create_sid, read: the order of a regenerate, but not one.
        e.destroy(b"in").unwrap();
        e.close().unwrap();
        let mut e = engine_on(&mem, Settings::default());
        e.read(b"anon", 100).unwrap();
        e.write(b"anon", b"x", 100).unwrap();
        e.close().unwrap();
        let m = stored(&mem, "anon").unwrap().meta;
        assert_eq!((m.user, m.timeout_set, m.timeout), (None, false, 100));
        assert!(e.user_sessions("dora", 100).unwrap().is_empty());
        end_request();
    }

    /// Kills by another request, while this one holds the session, for each
    /// way the request can go on: regenerate with or without delete, after
    /// kill_session() or kill_all_sessions().
    #[test]
    fn a_session_killed_during_the_request_stays_dead_through_regenerate() {
        for (kill_all, delete_old) in [(false, false), (false, true), (true, false), (true, true)] {
            let mem = MemoryStore::default();
            let mut e = engine_on(&mem, Settings::default());
            e.read(b"victim", 100).unwrap();
            e.set_user("eve").unwrap();
            e.set_timeout(0).unwrap();
            let mut admin = engine_on(&mem, Settings::default());
            if kill_all {
                admin.kill_all_sessions().unwrap();
            } else {
                assert_eq!(admin.kill_user_sessions("eve", None).unwrap(), 1);
            }
            set_regenerating(true);
            if delete_old {
                e.destroy(b"victim").unwrap();
            } else {
                e.write(b"victim", b"user|s:3:\"eve\";", 100).unwrap();
            }
            e.close().unwrap();
            let mut e = engine_on(&mem, Settings::default());
            e.read(b"successor", 100).unwrap();
            set_regenerating(false);
            assert!(matches!(e.set_user("eve"), Err(EngineError::Store(StoreError::Killed))), "{kill_all} {delete_old}");
            e.write(b"successor", b"user|s:3:\"eve\";", 100).unwrap();
            assert!(e.take_notices().iter().any(|n| n.contains("killed")), "{kill_all} {delete_old}");
            e.close().unwrap();
            assert!(stored(&mem, "successor").is_none(), "kill_all={kill_all} delete={delete_old}: revived under the new id");
            assert!(stored(&mem, "victim").is_none(), "kill_all={kill_all} delete={delete_old}: revived");
            assert!(admin.user_sessions("eve", 100).unwrap().is_empty());
            assert!(e.lock_holder(b"victim").unwrap().is_none());
            end_request();
            // The next request starts clean.
            let mut e = engine_on(&mem, Settings::default());
            e.read(b"successor", 100).unwrap();
            e.write(b"successor", b"fresh", 100).unwrap();
            e.close().unwrap();
            assert_eq!(stored(&mem, "successor").unwrap().data, b"fresh");
            end_request();
        }
    }
}

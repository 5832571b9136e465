//! `RSession\Handler` (for session_set_save_handler) and `RSession\Exception`.
//! The class drives the same engine as the native handler.

// `savePath`: PHP's named arguments follow the Rust parameter names, and the
// contract names it in camelCase.
#![allow(non_snake_case)]

use ext_php_rs::binary::Binary;
use ext_php_rs::class::RegisteredClass;
use ext_php_rs::convert::IntoZval;
use ext_php_rs::flags::DataType;
use ext_php_rs::exception::PhpResult;
use ext_php_rs::flags::ClassFlags;
use ext_php_rs::prelude::*;
use ext_php_rs::boxed::ZBox;
use ext_php_rs::types::{ZendHashTable, Zval};
use ext_php_rs::zend::ClassEntry;
use parking_lot::Mutex;

use super::boundary::{self, exception, guarded, outcome};
use super::functions::{lock_info_array, sessions_array, stats_array, user_id};
use super::{ffi, ini_long, origin, parse_save_path, settings_from_ini, warn};
use crate::config::{Settings, StoreConfig};
use crate::engine::{self, Engine, SharedEngine};
use crate::error::EngineError;

fn runtime_exception() -> &'static ClassEntry {
    // SAFETY: SPL is always compiled in and registers this at its MINIT.
    unsafe { &*ffi::spl_ce_RuntimeException }
}

fn session_handler_interface() -> &'static ClassEntry {
    // SAFETY: ext/session sets these at its MINIT, which runs before ours.
    unsafe { &*ffi::php_session_iface_entry }
}

fn session_id_interface() -> &'static ClassEntry {
    unsafe { &*ffi::php_session_id_iface_entry }
}

fn session_update_timestamp_interface() -> &'static ClassEntry {
    unsafe { &*ffi::php_session_update_timestamp_iface_entry }
}

#[php_class]
#[php(name = "RSession\\Exception")]
#[php(extends(ce = runtime_exception, stub = "\\RuntimeException"))]
#[derive(Default)]
pub struct RSessionException;

/// ext-php-rs gives every class a constructor that refuses to run when the
/// Rust side defines none, which made `new RSession\Exception('msg')` fatal,
/// and an object of its own, without the file and line it was thrown from.
/// The exception keeps RuntimeException's constructor and object instead. Called once,
/// right after the class is registered at MINIT.
pub(crate) fn inherit_exception_constructor() {
    let ce = RSessionException::get_metadata().ce();
    // SAFETY: at MINIT, single-threaded; both class entries are registered
    // and live for the whole process.
    unsafe {
        let ce = (ce as *const ClassEntry).cast_mut();
        (*ce).constructor = (*ffi::spl_ce_RuntimeException).constructor;
        // Objects made as exceptions are (PHP 8.2 sets their handlers in the
        // same call), so they record the file, line and trace they were
        // thrown from; ext-php-rs's own object has no place for them.
        (*ce).__bindgen_anon_2.create_object = (*ffi::spl_ce_RuntimeException).__bindgen_anon_2.create_object;
    }
}

/// The store of the handler object opened in this request, if any: the
/// `RSession\` functions act on it instead of session.save_path's.
static CURRENT: Mutex<Option<StoreConfig>> = Mutex::new(None);

pub(crate) fn current_config() -> Option<StoreConfig> {
    CURRENT.lock().clone()
}

pub(crate) fn forget_current_store() {
    CURRENT.lock().take();
}

#[php_class]
#[php(name = "RSession\\Handler")]
#[php(flags = ClassFlags::Final)]
#[php(implements(ce = session_handler_interface, stub = "\\SessionHandlerInterface"))]
#[php(implements(ce = session_id_interface, stub = "\\SessionIdInterface"))]
#[php(implements(ce = session_update_timestamp_interface, stub = "\\SessionUpdateTimestampHandlerInterface"))]
pub struct Handler {
    config: StoreConfig,
    /// Options given to the constructor, applied over the INI settings at open.
    options: Vec<(String, String)>,
    engine: Option<SharedEngine>,
}

/// What read() and gc() return: a value, or false on failure.
///
/// Declared to PHP as the value's type alone (`string`, `int`), so the class
/// links against SessionHandlerInterface without a deprecation notice; `false`
/// is then added to the declared types by [`widen_return_types`].
pub struct OrFalse<T>(Option<T>);

impl IntoZval for OrFalse<Vec<u8>> {
    const TYPE: DataType = DataType::String;
    const NULLABLE: bool = false;
    fn set_zval(self, zv: &mut Zval, _persistent: bool) -> ext_php_rs::error::Result<()> {
        match self.0 {
            Some(b) => zv.set_binary(b),
            None => zv.set_bool(false),
        }
        Ok(())
    }
}

impl IntoZval for OrFalse<i64> {
    const TYPE: DataType = DataType::Long;
    const NULLABLE: bool = false;
    fn set_zval(self, zv: &mut Zval, _persistent: bool) -> ext_php_rs::error::Result<()> {
        match self.0 {
            Some(n) => zv.set_long(n),
            None => zv.set_bool(false),
        }
        Ok(())
    }
}

/// Makes reflection show `read(): string|false` and `gc(): int|false`, as
/// the interface declares them. Called once, right after the class is
/// registered at MINIT.
pub(crate) fn widen_return_types() {
    const MAY_BE_FALSE: u32 = 1 << 2;
    let ce = Handler::get_metadata().ce();
    for name in ["read", "gc"] {
        // SAFETY: at MINIT, single-threaded; the function table holds our
        // internal methods, whose arg_info[-1] is the return type.
        unsafe {
            let zv = ext_php_rs::ffi::zend_hash_str_find(&ce.function_table, name.as_ptr().cast(), name.len());
            let Some(func) = zv.as_ref().and_then(|z| z.value.ptr.cast::<ext_php_rs::ffi::zend_function>().as_mut())
            else {
                continue;
            };
            let info = func.internal_function.arg_info;
            if !info.is_null() {
                (*info.offset(-1)).type_.type_mask |= MAY_BE_FALSE;
            }
        }
    }
}

fn option_text(v: &Zval) -> Option<String> {
    if let Some(b) = v.bool() {
        return Some(if b { "1" } else { "0" }.into());
    }
    if let Some(n) = v.long() {
        return Some(n.to_string());
    }
    v.string()
}

impl Handler {
    fn settings(&self) -> Result<Settings, EngineError> {
        let mut s = settings_from_ini()?;
        for (k, v) in &self.options {
            s.set(k, v)?;
        }
        Ok(s)
    }

    /// Runs `f` on the open engine, reporting messages and errors as PHP
    /// warnings (as the native handler does); None on failure.
    fn with_engine<T>(&mut self, f: impl FnOnce(&mut Engine) -> Result<T, EngineError>) -> Option<T> {
        match self.engine.as_ref() {
            Some(shared) => boundary::run(shared, f),
            None => outcome(Err(EngineError::NotOpen)),
        }
        .or_warn()
    }

    fn maxlifetime() -> i64 {
        ini_long("session.gc_maxlifetime", 1440)
    }

    /// An engine on this handler's store for the registry operations, which
    /// need no open session; errors become exceptions.
    fn admin<T>(&self, f: impl FnOnce(&mut Engine) -> Result<T, EngineError>) -> PhpResult<T> {
        boundary::run_fresh(|| Engine::open(&self.config, self.settings()?, origin()), f).or_throw()
    }

    /// Runs `f` on this handler's open session; errors become exceptions.
    fn on_session<T>(&self, f: impl FnOnce(&mut Engine) -> Result<T, EngineError>) -> PhpResult<T> {
        match self.engine.as_ref() {
            Some(shared) => boundary::run(shared, f),
            None => outcome(Err(EngineError::NoSession)),
        }
        .or_throw()
    }
}

#[php_impl]
impl Handler {
    /// Parameter names as the contract spells them (named arguments).
    pub fn __construct(savePath: Option<String>, options: Option<&ZendHashTable>) -> PhpResult<Self> {
        let config = parse_save_path(savePath.as_deref().unwrap_or("")).map_err(exception)?;
        let mut list = Vec::new();
        let mut check = Settings::default();
        if let Some(options) = options {
            for (key, value) in options {
                let key = key.to_string();
                let value = option_text(value)
                    .ok_or_else(|| exception(format!("option {key:?}: must be a bool, int or string")))?;
                check.set(&key, &value).map_err(exception)?;
                list.push((key, value));
            }
        }
        Ok(Handler { config, options: list, engine: None })
    }

    /// The path and name PHP passes are not used: the constructor chose the store.
    pub fn open(&mut self, path: String, name: String) -> bool {
        let _ = (path, name);
        let opened = guarded(|| Engine::open(&self.config, self.settings()?, origin()));
        match opened {
            Ok(engine) => {
                match self.engine.as_ref() {
                    Some(old) => {
                        if let Some(mut old) = old.try_lock() {
                            old.settings = engine.settings.clone();
                        }
                    }
                    None => {
                        let shared: SharedEngine = std::sync::Arc::new(Mutex::new(engine));
                        engine::set_current(&shared);
                        self.engine = Some(shared);
                    }
                }
                *CURRENT.lock() = Some(self.config.clone());
                true
            }
            Err(e) => {
                warn(&e.to_string());
                false
            }
        }
    }

    pub fn close(&mut self) -> bool {
        let ok = self.engine.is_none() || self.with_engine(|e| e.close()).is_some();
        if self.engine.take().is_some() {
            engine::clear_current();
        }
        ok
    }

    pub fn read(&mut self, id: Binary<u8>) -> OrFalse<Vec<u8>> {
        OrFalse(self.with_engine(|e| e.read(&id, Self::maxlifetime())))
    }

    pub fn write(&mut self, id: Binary<u8>, data: Binary<u8>) -> bool {
        self.with_engine(|e| e.write(&id, &data, Self::maxlifetime())).is_some()
    }

    pub fn update_timestamp(&mut self, id: Binary<u8>, data: Binary<u8>) -> bool {
        self.with_engine(|e| e.update_timestamp(&id, &data, Self::maxlifetime())).is_some()
    }

    pub fn destroy(&mut self, id: Binary<u8>) -> bool {
        self.with_engine(|e| e.destroy(&id)).is_some()
    }

    /// How many sessions were removed.
    pub fn gc(&mut self, max_lifetime: i64) -> OrFalse<i64> {
        OrFalse(self.with_engine(|e| e.gc(max_lifetime)).map(|n| n as i64))
    }

    pub fn validate_id(&mut self, id: Binary<u8>) -> bool {
        match self.engine.as_ref() {
            Some(e) => boundary::run(e, |e| e.validate_id(&id)),
            None => boundary::run_fresh(|| Engine::open(&self.config, Settings::default(), origin()), |e| e.validate_id(&id)),
        }
        .or_warn()
        .unwrap_or(false)
    }

    #[php(name = "create_sid")]
    pub fn create_sid(&mut self) -> PhpResult<String> {
        // PHP's own generator (session.sid_length, sid_bits_per_character),
        // checked against the store for collisions.
        for _ in 0..3 {
            // SAFETY: php_session_create_id ignores its argument.
            let sid = unsafe { ffi::php_session_create_id(std::ptr::null_mut()) };
            if sid.is_null() {
                break;
            }
            // SAFETY: a fresh zend_string we own.
            let id = unsafe { (*sid).as_bytes().to_vec() };
            unsafe { ext_php_rs::ffi::ext_php_rs_zend_string_release(sid) };
            if !self.validate_id(Binary::new(id.clone())) {
                return Ok(String::from_utf8_lossy(&id).into_owned());
            }
        }
        Err(exception("could not create an unused session id"))
    }

    // Registry operations: camelCase methods as PHP classes name them
    // (setUser, userSessions, ...), and the same under the functions'
    // snake_case names (set_user, user_sessions, ...).

    /// Ties this handler's active session to a user (call at login).
    pub fn set_user(&mut self, userId: &Zval) -> PhpResult<()> {
        let user = user_id(userId)?;
        self.on_session(|e| e.set_user(&user))
    }

    /// The active session's own idle timeout in seconds; 0 = never.
    pub fn set_timeout(&mut self, seconds: i64) -> PhpResult<()> {
        self.on_session(|e| e.set_timeout(seconds))
    }

    /// That user's live sessions.
    pub fn user_sessions(&mut self, userId: &Zval) -> PhpResult<ZBox<ZendHashTable>> {
        let user = user_id(userId)?;
        let list = self.admin(|e| e.user_sessions(&user, Self::maxlifetime()))?;
        sessions_array(list)
    }

    /// Ends one session; false if it did not exist.
    pub fn kill_session(&mut self, id: String) -> PhpResult<bool> {
        self.admin(|e| e.kill_session(id.as_bytes()))
    }

    /// Ends all of a user's sessions except `keepId`; how many.
    pub fn kill_user_sessions(&mut self, userId: &Zval, keepId: Option<String>) -> PhpResult<i64> {
        let user = user_id(userId)?;
        self.admin(|e| e.kill_user_sessions(&user, keepId.as_deref().map(str::as_bytes))).map(|n| n as i64)
    }

    /// Ends every session under this handler's prefix; -1: not counted.
    pub fn kill_all_sessions(&mut self) -> PhpResult<i64> {
        self.admin(|e| e.kill_all_sessions())
    }

    /// Who holds the lock of session `id`: null when unlocked.
    pub fn lock_info(&mut self, id: String) -> PhpResult<Option<ZBox<ZendHashTable>>> {
        self.admin(|e| e.lock_holder(id.as_bytes()))?.map(lock_info_array).transpose()
    }

    /// This process's counters.
    pub fn stats(&mut self) -> PhpResult<ZBox<ZendHashTable>> {
        stats_array()
    }

    // The same operations under the functions' own names.
    #[php(name = "set_user")]
    pub fn set_user_snake(&mut self, userId: &Zval) -> PhpResult<()> {
        self.set_user(userId)
    }

    #[php(name = "set_timeout")]
    pub fn set_timeout_snake(&mut self, seconds: i64) -> PhpResult<()> {
        self.set_timeout(seconds)
    }

    #[php(name = "user_sessions")]
    pub fn user_sessions_snake(&mut self, userId: &Zval) -> PhpResult<ZBox<ZendHashTable>> {
        self.user_sessions(userId)
    }

    #[php(name = "kill_session")]
    pub fn kill_session_snake(&mut self, id: String) -> PhpResult<bool> {
        self.kill_session(id)
    }

    #[php(name = "kill_user_sessions")]
    pub fn kill_user_sessions_snake(&mut self, userId: &Zval, keepId: Option<String>) -> PhpResult<i64> {
        self.kill_user_sessions(userId, keepId)
    }

    #[php(name = "kill_all_sessions")]
    pub fn kill_all_sessions_snake(&mut self) -> PhpResult<i64> {
        self.kill_all_sessions()
    }

    #[php(name = "lock_info")]
    pub fn lock_info_snake(&mut self, id: String) -> PhpResult<Option<ZBox<ZendHashTable>>> {
        self.lock_info(id)
    }
}

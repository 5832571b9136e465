//! The native save handler `rsession`: ext/session's ten callbacks. Each one
//! converts, calls the engine through [`boundary`], then reports: messages
//! are raised after all Rust work is done and every lock let go, so a PHP
//! error handler that bails out never unwinds through Rust frames holding
//! resources.

use std::ffi::{c_char, c_int, c_void};

use ext_php_rs::ffi::{zend_long, zend_string};
use ext_php_rs::types::ZendStr;

use super::boundary::{self, Outcome, guarded, outcome};
use super::ffi::{FAILURE, ModData, PsModule, SUCCESS, php_session_create_id};
use super::{c_str, origin, parse_save_path, settings_from_ini, warn};
use crate::engine::{self, Engine, SharedEngine};
use crate::error::EngineError;

pub static PS_MODULE: PsModule = PsModule {
    s_name: c"rsession".as_ptr(),
    s_open: ps_open,
    s_close: ps_close,
    s_read: ps_read,
    s_write: ps_write,
    s_destroy: ps_destroy,
    s_gc: ps_gc,
    s_create_sid: ps_create_sid,
    s_validate_sid: ps_validate_sid,
    s_update_timestamp: ps_update_timestamp,
};

/// # Safety
/// `mod_data` comes from ext/session and is NULL or one of our boxed engines.
unsafe fn engine_of<'a>(mod_data: ModData) -> Option<&'a SharedEngine> {
    if mod_data.is_null() {
        return None;
    }
    unsafe { (*mod_data).cast::<SharedEngine>().as_ref() }
}

/// # Safety
/// `s` is NULL or a valid zend_string.
unsafe fn bytes<'a>(s: *mut zend_string) -> &'a [u8] {
    match unsafe { s.cast::<ZendStr>().as_ref() } {
        Some(z) => z.as_bytes(),
        None => &[],
    }
}

/// Runs `f` on the open engine and reports its messages and error.
unsafe fn with_engine<T>(mod_data: ModData, f: impl FnOnce(&mut Engine) -> Result<T, EngineError>) -> Option<T> {
    match unsafe { engine_of(mod_data) } {
        Some(shared) => boundary::run(shared, f),
        None => outcome(Err(EngineError::NotOpen)),
    }
    .or_warn()
}

fn status(ok: Option<()>) -> c_int {
    if ok.is_some() { SUCCESS } else { FAILURE }
}

unsafe extern "C" fn ps_open(mod_data: ModData, save_path: *const c_char, _name: *const c_char) -> c_int {
    let save_path = unsafe { c_str(save_path) };
    let opened = guarded(|| Engine::open(&parse_save_path(&save_path)?, settings_from_ini()?, origin()));
    match opened {
        Ok(new) => {
            // session_reset() opens again with the old engine in place: keep
            // it (and the lock it holds), take the new settings.
            match unsafe { engine_of(mod_data) } {
                Some(old) => {
                    if let Some(mut old) = old.try_lock() {
                        old.settings = new.settings.clone();
                    }
                }
                None => {
                    let shared: SharedEngine = std::sync::Arc::new(parking_lot::Mutex::new(new));
                    engine::set_current(&shared);
                    unsafe { *mod_data = Box::into_raw(Box::new(shared)).cast::<c_void>() }
                }
            }
            SUCCESS
        }
        Err(e) => {
            warn(&e.to_string());
            FAILURE
        }
    }
}

unsafe extern "C" fn ps_close(mod_data: ModData) -> c_int {
    if mod_data.is_null() || unsafe { (*mod_data).is_null() } {
        return SUCCESS;
    }
    let result = unsafe { with_engine(mod_data, |e| e.close()) };
    // SAFETY: set by ps_open from Box::into_raw; cleared so it is freed once.
    let engine = unsafe { Box::from_raw((*mod_data).cast::<SharedEngine>()) };
    unsafe { *mod_data = std::ptr::null_mut() };
    engine::clear_current();
    let _ = guarded(|| {
        drop(engine);
        Ok(())
    });
    status(result)
}

unsafe extern "C" fn ps_read(
    mod_data: ModData,
    key: *mut zend_string,
    val: *mut *mut zend_string,
    maxlifetime: zend_long,
) -> c_int {
    let id = unsafe { bytes(key) };
    match unsafe { with_engine(mod_data, |e| e.read(id, maxlifetime)) } {
        Some(data) => {
            unsafe { *val = ZendStr::new(data, false).into_raw() };
            SUCCESS
        }
        None => FAILURE,
    }
}

unsafe extern "C" fn ps_write(mod_data: ModData, key: *mut zend_string, val: *mut zend_string, maxlifetime: zend_long) -> c_int {
    let (id, data) = unsafe { (bytes(key), bytes(val)) };
    status(unsafe { with_engine(mod_data, |e| e.write(id, data, maxlifetime)) })
}

unsafe extern "C" fn ps_update_timestamp(
    mod_data: ModData,
    key: *mut zend_string,
    val: *mut zend_string,
    maxlifetime: zend_long,
) -> c_int {
    let (id, data) = unsafe { (bytes(key), bytes(val)) };
    status(unsafe { with_engine(mod_data, |e| e.update_timestamp(id, data, maxlifetime)) })
}

unsafe extern "C" fn ps_destroy(mod_data: ModData, key: *mut zend_string) -> c_int {
    let id = unsafe { bytes(key) };
    status(unsafe { with_engine(mod_data, |e| e.destroy(id)) })
}

unsafe extern "C" fn ps_gc(mod_data: ModData, maxlifetime: zend_long, nrdels: *mut zend_long) -> zend_long {
    let count = unsafe { with_engine(mod_data, |e| e.gc(maxlifetime)) }.map_or(-1, |n| n as zend_long);
    if !nrdels.is_null() {
        unsafe { *nrdels = count };
    }
    count
}

/// Runs `f` on the open engine or, between close and open (as
/// session_regenerate_id() calls create_sid), on a fresh one for the
/// current save_path. Errors are returned, not reported.
unsafe fn with_any_engine<T>(mod_data: ModData, f: impl FnOnce(&mut Engine) -> Result<T, EngineError>) -> Outcome<T> {
    match unsafe { engine_of(mod_data) } {
        Some(e) => boundary::run(e, f),
        None => boundary::run_fresh(
            || {
                let save_path = super::ini_string("session.save_path").unwrap_or_default();
                Engine::open(&parse_save_path(&save_path)?, settings_from_ini()?, origin())
            },
            f,
        ),
    }
}

unsafe extern "C" fn ps_create_sid(mod_data: ModData) -> *mut zend_string {
    // PHP's generator honours session.sid_length and sid_bits_per_character;
    // we only make sure the id is not already in use.
    for _ in 0..3 {
        let sid = unsafe { php_session_create_id(mod_data) };
        if sid.is_null() {
            return sid;
        }
        let id = unsafe { bytes(sid) }.to_vec();
        match unsafe { with_any_engine(mod_data, |e| e.validate_id(&id)) }.reported() {
            Ok(true) => unsafe { ext_php_rs::ffi::ext_php_rs_zend_string_release(sid) },
            Ok(false) => return sid,
            // A store that cannot be asked reports itself at read; an id of
            // PHP's random bits is as good as unique meanwhile.
            Err(_) => return sid,
        }
    }
    warn("could not create an unused session id after 3 tries");
    std::ptr::null_mut()
}

unsafe extern "C" fn ps_validate_sid(mod_data: ModData, key: *mut zend_string) -> c_int {
    let id = unsafe { bytes(key) }.to_vec();
    match unsafe { with_any_engine(mod_data, |e| e.validate_id(&id)) }.reported() {
        Ok(true) => SUCCESS,
        Ok(false) => FAILURE,
        Err(e) => {
            warn(&e.to_string());
            FAILURE
        }
    }
}

/// PHP's own `session_regenerate_id()`, which [`regenerate_id`] wraps.
static REGENERATE_ID: std::sync::OnceLock<ext_php_rs::ffi::zif_handler> = std::sync::OnceLock::new();

/// Wraps `session_regenerate_id()` so the engine knows when a new session
/// continues the one just closed (and inherits its user, timeout and
/// creation time, or its death). The same callbacks in the same order come
/// from `session_destroy(); session_start();`, which must inherit nothing:
/// only this wrapper tells them apart.
///
/// # Safety
/// At MINIT, single-threaded, after ext/session registered its functions.
pub(super) unsafe fn hook_session_regenerate_id() {
    use ext_php_rs::ffi::{compiler_globals, zend_function, zend_hash_str_find};
    let name = "session_regenerate_id";
    let table = unsafe { compiler_globals.function_table };
    let zv = unsafe { zend_hash_str_find(table, name.as_ptr().cast(), name.len()) };
    let Some(func) = (unsafe { zv.as_ref() }).and_then(|z| unsafe { z.value.ptr.cast::<zend_function>().as_mut() }) else {
        return;
    };
    if REGENERATE_ID.set(unsafe { func.internal_function.handler }).is_ok() {
        func.internal_function.handler = Some(regenerate_id);
    }
}

/// Holds no Rust value across the call into PHP, which may bail out
/// (longjmp) past this frame: then the flag stays set until the request
/// ends, which clears it.
unsafe extern "C" fn regenerate_id(execute_data: *mut ext_php_rs::ffi::zend_execute_data, return_value: *mut ext_php_rs::ffi::zval) {
    let _ = std::panic::catch_unwind(|| engine::set_regenerating(true));
    if let Some(Some(original)) = REGENERATE_ID.get() {
        unsafe { original(execute_data, return_value) };
    }
    let _ = std::panic::catch_unwind(|| engine::set_regenerating(false));
}

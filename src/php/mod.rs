//! The PHP side: the only place with PHP types and `unsafe`. Thin: convert,
//! call the engine, convert back, report.

use std::ffi::{CStr, CString, c_char};
use std::panic::catch_unwind;
use std::path::PathBuf;
use std::sync::OnceLock;

use ext_php_rs::builders::ModuleBuilder;
use ext_php_rs::ffi::{E_NOTICE, E_WARNING, php_error_docref};
use ext_php_rs::flags::IniEntryPermission;
use ext_php_rs::builders::ModuleStartup;
use ext_php_rs::internal::startup_guard;
use ext_php_rs::zend::{IniEntryDef, IniEntryDefs, ModuleEntry, SapiGlobals, StaticModuleEntry};
use parking_lot::Mutex;

use crate::config::{SETTING_NAMES, Settings, StoreConfig};
use crate::error::ConfigError;

mod boundary;
mod ffi;
mod functions;
mod handler;
mod module;

static INI_ENTRIES: IniEntryDefs<7> = IniEntryDefs::new([
    IniEntryDef::new(c"rsession.locking", c"1", IniEntryPermission::All),
    IniEntryDef::new(c"rsession.lock_wait_ms", c"30000", IniEntryPermission::All),
    IniEntryDef::new(c"rsession.lock_ttl_ms", c"10000", IniEntryPermission::All),
    IniEntryDef::new(c"rsession.lock_failure", c"fail", IniEntryPermission::All),
    IniEntryDef::new(c"rsession.read_only", c"0", IniEntryPermission::All),
    IniEntryDef::new(c"rsession.spin_us", c"100", IniEntryPermission::All),
    IniEntryDef::end(),
]);

/// The extension declares a required dependency on ext/session, so that PHP
/// starts session first wherever session is a shared module.
static DEPS: [ffi::ModuleDep; 2] = [
    ffi::ModuleDep {
        name: c"session".as_ptr(),
        rel: std::ptr::null(),
        version: std::ptr::null(),
        kind: ffi::MODULE_DEP_REQUIRED,
    },
    ffi::ModuleDep { name: std::ptr::null(), rel: std::ptr::null(), version: std::ptr::null(), kind: 0 },
];

static STARTUP: Mutex<Option<ModuleStartup>> = Mutex::new(None);

fn build_module() -> ModuleBuilder<'static> {
    functions::register(ModuleBuilder::new("rsession", env!("CARGO_PKG_VERSION")))
        .class::<handler::RSessionException>()
        .class::<handler::Handler>()
        .info_function(php_module_info)
        .post_deactivate_function(post_deactivate)
}

/// Written by hand rather than with `#[php_module]` so that `deps` is set
/// before PHP sorts its modules (ext-php-rs always leaves it NULL).
#[unsafe(no_mangle)]
pub extern "C" fn get_module() -> *mut ModuleEntry {
    static MODULE: StaticModuleEntry = StaticModuleEntry::new();
    MODULE.get_or_init(|| {
        let (mut entry, startup, owned) = build_module()
            .try_into()
            .unwrap_or_else(|e| panic!("rsession: cannot build the module entry: {e}"));
        *STARTUP.lock() = Some(startup);
        entry.module_startup_func = Some(minit);
        entry.deps = DEPS.as_ptr().cast();
        (entry, owned)
    })
}

extern "C" fn minit(ty: i32, mod_num: i32) -> i32 {
    if ext_php_rs::PHP_ZTS {
        // Request state is kept per thread, but no thread-safe PHP could be
        // built to test rsession on: refuse rather than run untested.
        raise(
            ext_php_rs::ffi::E_CORE_WARNING as i32,
            "this PHP is thread-safe (ZTS: FrankenPHP, Apache worker/event MPM); rsession supports only NTS PHP (php-fpm, mod_php prefork, CLI) and does not start",
        );
        return ffi::FAILURE;
    }
    startup_guard(|| {
        ext_php_rs::internal::ext_php_rs_startup();
        IniEntryDef::register(INI_ENTRIES.as_slice(), mod_num);
        if let Some(startup) = STARTUP.lock().as_ref() {
            startup.startup(ty, mod_num)?;
        }
        tune_malloc();
        handler::widen_return_types();
        handler::inherit_exception_constructor();
        // SAFETY: the module table is a static that outlives PHP's use of it.
        if unsafe { ffi::php_session_register_module(&module::PS_MODULE) } != ffi::SUCCESS {
            return Err(ext_php_rs::error::Error::Callable);
        }
        // SAFETY: at MINIT, single-threaded; ext/session (a dependency)
        // has registered its functions.
        unsafe { module::hook_session_regenerate_id() };
        Ok(())
    })
}

/// Whether MINIT set glibc's malloc thresholds (see [`tune_malloc`]).
static MALLOC_TUNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// A session's bytes pass through Rust buffers (the reply, the data, the
/// request) that glibc gives back to the kernel at each free once they pass
/// its dynamic thresholds, so a 200 KB session faulted fresh pages in every
/// request: 300-400 µs of system time per locked cycle, against 110-140 µs
/// with these thresholds (make bench's 200 KB figures). Buffers up to 1 MiB
/// now come from the heap, and at most 2 MiB of free heap is kept, the
/// order of what PHP's own allocator keeps. Set at MINIT, so php-fpm
/// workers inherit it; left alone when the operator tunes malloc through
/// the environment.
fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let tuned_by_env = std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("malloc"))
            || std::env::vars_os().any(|(k, _)| k.to_string_lossy().starts_with("MALLOC_"));
        if !tuned_by_env {
            // SAFETY: at MINIT, before any thread of ours; mallopt only sets
            // allocator parameters.
            let ok = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20) == 1 && libc::mallopt(libc::M_TRIM_THRESHOLD, 2 << 20) == 1 };
            MALLOC_TUNED.store(ok, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// Runs after every module's RSHUTDOWN, so after ext/session wrote and
/// closed: frees any lock a request that died mid-callback left behind.
extern "C" fn post_deactivate() -> i32 {
    let _ = catch_unwind(|| {
        crate::engine::end_request();
        handler::forget_current_store();
    });
    0
}

extern "C" fn php_module_info(module: *mut ModuleEntry) {
    use ext_php_rs::{info_table_end, info_table_row, info_table_start};
    info_table_start!();
    info_table_row!("rsession support", "enabled");
    info_table_row!("version", env!("CARGO_PKG_VERSION"));
    info_table_row!("save handler", "rsession");
    info_table_row!("stores", crate::store::COMPILED_STORES.join(", "));
    info_table_row!(
        "glibc malloc",
        if MALLOC_TUNED.load(std::sync::atomic::Ordering::Relaxed) {
            "mmap threshold 1 MiB, trim threshold 2 MiB (set by rsession)"
        } else {
            "as the environment or glibc set it"
        }
    );
    // A panic must not unwind into PHP; the rows are then left out.
    for (name, value) in catch_unwind(functions::store_members).unwrap_or_default() {
        info_table_row!(name.replace('\0', ""), value.replace('\0', ""));
    }
    info_table_end!();
    // SAFETY: PHP hands us our own module entry.
    unsafe { ffi::display_ini_entries(module) };
}

/// Raises an `rsession:`-prefixed E_WARNING.
pub(crate) fn warn(msg: &str) {
    raise(E_WARNING as i32, msg);
}

pub(crate) fn notice(msg: &str) {
    raise(E_NOTICE as i32, msg);
}

fn raise(level: i32, msg: &str) {
    let text = CString::new(format!("rsession: {msg}").replace('\0', "\\0")).unwrap_or_default();
    // SAFETY: a constant "%s" format with one NUL-terminated argument.
    unsafe { php_error_docref(std::ptr::null(), level, c"%s".as_ptr(), text.as_ptr()) };
}

pub(crate) fn ini_string(name: &str) -> Option<String> {
    let mut exists = false;
    // SAFETY: name and length are valid; PHP returns a pointer into its INI
    // table (or NULL) that stays valid for this call.
    let p = unsafe { ffi::zend_ini_string_ex(name.as_ptr().cast(), name.len(), 0, &mut exists) };
    if !exists || p.is_null() {
        return None;
    }
    // SAFETY: non-NULL INI values are NUL-terminated strings.
    Some(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

pub(crate) fn ini_long(name: &str, default: i64) -> i64 {
    ini_string(name).and_then(|v| v.trim().parse().ok()).unwrap_or(default)
}

/// The `rsession.*` INI settings as they stand now.
pub(crate) fn settings_from_ini() -> Result<Settings, ConfigError> {
    // Every callback reads these; the names are derived once per process.
    static INI_NAMES: OnceLock<[String; SETTING_NAMES.len()]> = OnceLock::new();
    let ini_names = INI_NAMES.get_or_init(|| SETTING_NAMES.map(|name| format!("rsession.{name}")));
    let mut s = Settings::default();
    for (name, ini_name) in SETTING_NAMES.iter().zip(ini_names) {
        if let Some(v) = ini_string(ini_name) {
            s.set(name, &v).map_err(|e| match e {
                ConfigError::Option { reason, .. } => ConfigError::Option { name: ini_name.clone(), reason },
                other => other,
            })?;
        }
    }
    Ok(s)
}

pub(crate) fn temp_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // SAFETY: PHP returns a static NUL-terminated path (or NULL).
        let p = unsafe { ffi::php_get_temporary_directory() };
        if p.is_null() {
            return std::env::temp_dir();
        }
        PathBuf::from(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
    })
    .clone()
}

/// Parses a save path; the last one parsed is kept, since a worker opens
/// the same path request after request.
pub(crate) fn parse_save_path(save_path: &str) -> Result<StoreConfig, ConfigError> {
    static LAST: parking_lot::Mutex<Option<(String, StoreConfig)>> = parking_lot::Mutex::new(None);
    if let Some((text, config)) = LAST.lock().as_ref() {
        if text == save_path {
            return Ok(config.clone());
        }
    }
    let config = StoreConfig::parse(save_path, &temp_dir())?;
    *LAST.lock() = Some((save_path.to_string(), config.clone()));
    Ok(config)
}

/// Where this request comes from: its URI and REMOTE_ADDR.
pub(crate) fn origin() -> crate::engine::Origin {
    crate::engine::Origin { uri: request_uri(), ip: remote_addr() }
}

/// REMOTE_ADDR from $_SERVER; None on the command line.
fn remote_addr() -> Option<String> {
    let globals = ext_php_rs::zend::ProcessGlobals::get();
    let server = globals.http_server_vars()?;
    server.get("REMOTE_ADDR").and_then(|v| v.string()).filter(|s| !s.is_empty())
}

/// REQUEST_URI, or the script path on the command line.
pub(crate) fn request_uri() -> String {
    let sg = SapiGlobals::get();
    let info = sg.request_info();
    info.request_uri()
        .or_else(|| info.path_translated())
        .unwrap_or("-")
        .to_string()
}

/// # Safety
/// `p` must be NULL or point to a NUL-terminated string.
pub(crate) unsafe fn c_str(p: *const c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

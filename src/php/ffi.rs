//! Hand-written declarations for the parts of PHP that ext-php-rs does not
//! bind: ext/session's module interface and a few engine helpers. All layout
//! knowledge of `ps_module` lives here (PHP 8.2 to 8.5; 8.6 changes `s_open`).

use std::ffi::{c_char, c_int, c_void};

use ext_php_rs::ffi::{zend_class_entry, zend_long, zend_module_entry, zend_string};

pub const SUCCESS: c_int = 0;
pub const FAILURE: c_int = -1;

pub type ModData = *mut *mut c_void;

/// Mirror of `ps_module` from ext/session/php_session.h (PHP 8.2).
#[repr(C)]
pub struct PsModule {
    pub s_name: *const c_char,
    pub s_open: unsafe extern "C" fn(ModData, *const c_char, *const c_char) -> c_int,
    pub s_close: unsafe extern "C" fn(ModData) -> c_int,
    pub s_read: unsafe extern "C" fn(ModData, *mut zend_string, *mut *mut zend_string, zend_long) -> c_int,
    pub s_write: unsafe extern "C" fn(ModData, *mut zend_string, *mut zend_string, zend_long) -> c_int,
    pub s_destroy: unsafe extern "C" fn(ModData, *mut zend_string) -> c_int,
    pub s_gc: unsafe extern "C" fn(ModData, zend_long, *mut zend_long) -> zend_long,
    pub s_create_sid: unsafe extern "C" fn(ModData) -> *mut zend_string,
    pub s_validate_sid: unsafe extern "C" fn(ModData, *mut zend_string) -> c_int,
    pub s_update_timestamp: unsafe extern "C" fn(ModData, *mut zend_string, *mut zend_string, zend_long) -> c_int,
}

// SAFETY: the table is immutable after construction and only read by PHP.
unsafe impl Sync for PsModule {}

/// Mirror of `zend_module_dep`.
#[repr(C)]
pub struct ModuleDep {
    pub name: *const c_char,
    pub rel: *const c_char,
    pub version: *const c_char,
    pub kind: u8,
}

// SAFETY: immutable static data.
unsafe impl Sync for ModuleDep {}

pub const MODULE_DEP_REQUIRED: u8 = 1;

unsafe extern "C" {
    pub fn php_session_register_module(module: *const PsModule) -> c_int;
    pub fn php_session_create_id(mod_data: ModData) -> *mut zend_string;
    pub static spl_ce_RuntimeException: *mut zend_class_entry;
    pub static php_session_iface_entry: *mut zend_class_entry;
    pub static php_session_id_iface_entry: *mut zend_class_entry;
    pub static php_session_update_timestamp_iface_entry: *mut zend_class_entry;
    pub fn zend_ini_string_ex(name: *const c_char, name_length: usize, orig: c_int, exists: *mut bool) -> *mut c_char;
    pub fn php_get_temporary_directory() -> *const c_char;
    pub fn display_ini_entries(module: *mut zend_module_entry);
}

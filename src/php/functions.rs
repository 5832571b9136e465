//! The `RSession\` functions, and the PHP shapes they (and the same methods
//! on `RSession\Handler`) return.

// Parameters are named as the contract spells them (named arguments).
#![allow(non_snake_case)]

use ext_php_rs::boxed::ZBox;
use ext_php_rs::builders::ModuleBuilder;
use ext_php_rs::exception::PhpResult;
use ext_php_rs::prelude::*;
use ext_php_rs::types::{ZendHashTable, Zval};

use super::boundary::{self, exception, outcome};
use super::handler::current_config;
use super::{ini_long, ini_string, origin, parse_save_path, settings_from_ini};
use crate::config::StoreConfig;
use crate::engine::{self, Engine, SessionInfo};
use crate::error::EngineError;
use crate::stats::STATS;
use crate::store::Holder;

/// The store the functions act on: the open `RSession\Handler`'s, else
/// session.save_path's.
fn config() -> Result<StoreConfig, EngineError> {
    if let Some(c) = current_config() {
        return Ok(c);
    }
    let save_path = ini_string("session.save_path").unwrap_or_default();
    Ok(parse_save_path(&save_path)?)
}

/// Runs a registry operation on an engine for the functions' store.
fn admin<T>(f: impl FnOnce(&mut Engine) -> Result<T, EngineError>) -> PhpResult<T> {
    boundary::run_fresh(|| Engine::open(&config()?, settings_from_ini()?, origin()), f).or_throw()
}

/// phpinfo() rows naming the members of a write-through store: from this
/// request's session when one is open (it knows of a cache outage), else
/// from a store opened for the purpose. Empty for a plain store, which
/// session.save_path already names.
pub(super) fn store_members() -> Vec<(String, String)> {
    let Ok(c) = config() else { return Vec::new() };
    if !matches!(c, StoreConfig::WriteThrough { .. }) {
        return Vec::new();
    }
    let describe = |e: &mut Engine| Ok(e.store().lock().describe());
    let out = match engine::current() {
        Some(shared) => boundary::run(&shared, describe),
        None => boundary::run_fresh(|| Engine::open(&c, settings_from_ini()?, origin()), describe),
    };
    out.reported().unwrap_or_else(|e| vec![("write-through".into(), format!("rsession: {e}"))])
}

/// Runs `f` on the session open in this request.
fn on_session<T>(f: impl FnOnce(&mut Engine) -> Result<T, EngineError>) -> PhpResult<T> {
    match engine::current() {
        Some(shared) => boundary::run(&shared, f),
        None => outcome(Err(EngineError::NoSession)),
    }
    .or_throw()
}

fn maxlifetime() -> i64 {
    ini_long("session.gc_maxlifetime", 1440)
}

/// A user id as PHP passes it: a string or an int.
pub(super) fn user_id(v: &Zval) -> PhpResult<String> {
    if let Some(n) = v.long() {
        return Ok(n.to_string());
    }
    if let Some(s) = v.str() {
        return Ok(s.to_string());
    }
    Err(exception(format!("a user id must be a string or an int, {} given", v.get_type())))
}

pub(super) fn sessions_array(list: Vec<SessionInfo>) -> PhpResult<ZBox<ZendHashTable>> {
    let mut out = ZendHashTable::new();
    for s in list {
        let mut row = ZendHashTable::new();
        row.insert("id", s.id)?;
        row.insert("user", s.meta.user.unwrap_or_default())?;
        row.insert("created", s.meta.created as i64)?;
        row.insert("last_access", s.meta.last_access as i64)?;
        row.insert("timeout", i64::from(s.timeout))?;
        row.insert("first_ip", s.meta.first_ip)?;
        row.insert("last_ip", s.meta.last_ip)?;
        out.push(row)?;
    }
    Ok(out)
}

pub(super) fn lock_info_array(h: Holder) -> PhpResult<ZBox<ZendHashTable>> {
    let mut ht = ZendHashTable::new();
    ht.insert("host", h.host.clone())?;
    ht.insert("pid", h.pid as i64)?;
    ht.insert("uri", h.uri.clone())?;
    ht.insert("held_ms", h.held_for().as_millis() as i64)?;
    if let Some(member) = h.member {
        ht.insert("member", member)?;
    }
    Ok(ht)
}

pub(super) fn stats_array() -> PhpResult<ZBox<ZendHashTable>> {
    let mut ht = ZendHashTable::new();
    for (name, value) in STATS.snapshot() {
        ht.insert(name, value as i64)?;
    }
    Ok(ht)
}

/// Ties the active session to a user (call at login).
#[php_function]
#[php(name = "RSession\\set_user")]
pub fn set_user(userId: &Zval) -> PhpResult<()> {
    let user = user_id(userId)?;
    on_session(|e| e.set_user(&user))
}

/// The active session's own idle timeout in seconds; 0 = never.
#[php_function]
#[php(name = "RSession\\set_timeout")]
pub fn set_timeout(seconds: i64) -> PhpResult<()> {
    on_session(|e| e.set_timeout(seconds))
}

/// That user's live sessions.
#[php_function]
#[php(name = "RSession\\user_sessions")]
pub fn user_sessions(userId: &Zval) -> PhpResult<ZBox<ZendHashTable>> {
    let user = user_id(userId)?;
    sessions_array(admin(|e| e.user_sessions(&user, maxlifetime()))?)
}

/// Ends one session; false if it did not exist.
#[php_function]
#[php(name = "RSession\\kill_session")]
pub fn kill_session(id: String) -> PhpResult<bool> {
    admin(|e| e.kill_session(id.as_bytes()))
}

/// Ends all of a user's sessions except `$keepId`; returns how many.
#[php_function]
#[php(name = "RSession\\kill_user_sessions")]
pub fn kill_user_sessions(userId: &Zval, keepId: Option<String>) -> PhpResult<i64> {
    let user = user_id(userId)?;
    admin(|e| e.kill_user_sessions(&user, keepId.as_deref().map(str::as_bytes))).map(|n| n as i64)
}

/// Ends every session under this prefix; -1 when the store cannot count them.
#[php_function]
#[php(name = "RSession\\kill_all_sessions")]
pub fn kill_all_sessions() -> PhpResult<i64> {
    admin(|e| e.kill_all_sessions())
}

/// Who holds the lock of session `$id`: null when unlocked.
#[php_function]
#[php(name = "RSession\\lock_info")]
pub fn lock_info(id: String) -> PhpResult<Option<ZBox<ZendHashTable>>> {
    admin(|e| e.lock_holder(id.as_bytes()))?.map(lock_info_array).transpose()
}

/// This process's counters.
#[php_function]
#[php(name = "RSession\\stats")]
pub fn stats() -> PhpResult<ZBox<ZendHashTable>> {
    stats_array()
}

/// The SQL store's table definitions (for `php/bin/rsession schema`); with
/// `$apply`, creates what is missing on the server.
#[php_function]
#[php(name = "RSession\\schema")]
pub fn schema(savePath: Option<String>, apply: Option<bool>) -> PhpResult<String> {
    boundary::outcome(boundary::guarded(|| {
        let config = match &savePath {
            Some(p) => parse_save_path(p)?,
            None => config()?,
        };
        let Some(ddl) = crate::store::sql::schema_of(&config) else {
            let name = config.store_name();
            return Err(EngineError::BadArgument(format!("the {name} store has no SQL schema (only pgsql:// and mysql:// do)")));
        };
        if apply == Some(true) {
            crate::store::sql::apply_schema(&config)?;
        }
        // A procedure's body holds `;`: the mysql client reads it whole
        // between DELIMITER lines.
        Ok(ddl
            .iter()
            .map(|s| if s.contains(';') { format!("DELIMITER //\n{s} //\nDELIMITER ;\n") } else { format!("{s};\n") })
            .collect::<String>())
    }))
    .or_throw()
}

pub(super) fn register(module: ModuleBuilder<'static>) -> ModuleBuilder<'static> {
    module
        .function(wrap_function!(set_user))
        .function(wrap_function!(set_timeout))
        .function(wrap_function!(user_sessions))
        .function(wrap_function!(kill_session))
        .function(wrap_function!(kill_user_sessions))
        .function(wrap_function!(kill_all_sessions))
        .function(wrap_function!(lock_info))
        .function(wrap_function!(stats))
        .function(wrap_function!(schema))
}

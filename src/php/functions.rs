//! The `RSession\` functions.

use ext_php_rs::boxed::ZBox;
use ext_php_rs::builders::ModuleBuilder;
use ext_php_rs::exception::PhpResult;
use ext_php_rs::prelude::*;
use ext_php_rs::types::ZendHashTable;

use super::handler::{current_store, exception};
use super::{guarded, ini_string, parse_save_path, settings_from_ini};
use crate::engine::{self, Engine, SharedStore, STATS};
use crate::error::EngineError;

/// The store the functions act on: the open `RSession\Handler`'s, else
/// session.save_path's.
fn store() -> Result<SharedStore, EngineError> {
    if let Some(s) = current_store() {
        return Ok(s);
    }
    let save_path = ini_string("session.save_path").unwrap_or_default();
    Ok(engine::shared_store(&parse_save_path(&save_path)?)?)
}

fn admin_engine() -> Result<Engine, EngineError> {
    Ok(Engine::new(store()?, settings_from_ini()?, String::new()))
}

/// Who holds the lock of session `$id`: null when unlocked.
#[php_function]
#[php(name = "RSession\\lock_info")]
pub fn lock_info(id: String) -> PhpResult<Option<ZBox<ZendHashTable>>> {
    let holder = guarded(|| admin_engine()?.lock_holder(id.as_bytes())).map_err(exception)?;
    let Some(h) = holder else { return Ok(None) };
    let mut ht = ZendHashTable::new();
    ht.insert("host", h.host.clone())?;
    ht.insert("pid", h.pid as i64)?;
    ht.insert("uri", h.uri.clone())?;
    ht.insert("held_ms", h.held_for().as_millis() as i64)?;
    Ok(Some(ht))
}

/// This process's counters.
#[php_function]
#[php(name = "RSession\\stats")]
pub fn stats() -> PhpResult<ZBox<ZendHashTable>> {
    let mut ht = ZendHashTable::new();
    for (name, value) in STATS.snapshot() {
        ht.insert(name, value as i64)?;
    }
    Ok(ht)
}

pub(super) fn register(module: ModuleBuilder<'static>) -> ModuleBuilder<'static> {
    module.function(wrap_function!(lock_info)).function(wrap_function!(stats))
}

//! MySQL / MariaDB (work in progress).
use crate::config::SqlConfig;
use crate::error::StoreError;
use crate::store::{Result, Store};

pub fn open(_config: &SqlConfig) -> Result<Box<dyn Store>> {
    Err(StoreError::Unavailable("mysql"))
}

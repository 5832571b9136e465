//! Any save_path: parsing never panics, and what it accepts is sane.
#![no_main]
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use rsession::config::{RedisAddr, SqlAddr, StoreConfig};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    match StoreConfig::parse(s, Path::new("/tmp")) {
        Err(e) => assert!(!e.to_string().is_empty()),
        Ok(StoreConfig::Files { dir }) => {
            assert!(dir.is_absolute());
            assert!(!dir.components().any(|c| c.as_os_str() == ".."));
        }
        Ok(StoreConfig::Redis(c)) => {
            if let RedisAddr::Tcp { host, port, .. } = &c.addr {
                assert!(!host.is_empty() && *port > 0);
            }
            assert!(!c.net.prefix.bytes().any(|b| b <= b' '));
        }
        Ok(StoreConfig::Memcached(c)) => {
            assert!(!c.servers.is_empty() && c.max_item_size > 0);
        }
        Ok(StoreConfig::Pgsql(c) | StoreConfig::Mysql(c)) => {
            // The table name is written into SQL: only [A-Za-z0-9_].
            assert!(!c.table.is_empty() && c.table.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
            assert!(!c.dbname.is_empty());
            match &c.addr {
                SqlAddr::Tcp { host, port } => assert!(!host.is_empty() && *port > 0),
                SqlAddr::Unix { path } => assert!(path.is_absolute()),
            }
        }
    }
});

//! Any bytes as what a memcached server sends: reading replies never
//! panics, never reads a value past its limit, and always moves on.
#![no_main]
use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use rsession::store::memcached::proto::{MAX_LINE, read_item_size_max, read_reply};

/// A small limit, so announced lengths above it are common.
const MAX_VALUE: usize = 64;

fuzz_target!(|data: &[u8]| {
    let mut c = Cursor::new(data);
    let mut at = 0;
    while let Ok(r) = read_reply(&mut c, MAX_VALUE) {
        assert!(!r.code.is_empty() && r.code.bytes().all(|b| b.is_ascii_uppercase()));
        assert!(r.value.as_ref().is_none_or(|v| v.len() <= MAX_VALUE));
        assert_eq!(r.value.is_some(), r.code == "VA");
        let now = c.position() as usize;
        assert!(now > at && now - at <= MAX_LINE + MAX_VALUE + 2, "a reply consumed {} bytes", now - at);
        at = now;
    }
    let _ = read_item_size_max(&mut Cursor::new(data));
});

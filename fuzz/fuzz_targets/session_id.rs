//! Any bytes as a session id: only PHP's id characters, 1..=256 bytes, ever
//! pass — nothing that could become a path or key injection.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rsession::store::SessionId;

fuzz_target!(|data: &[u8]| {
    let ok = !data.is_empty()
        && data.len() <= 256
        && data.iter().all(|b| b.is_ascii_alphanumeric() || *b == b',' || *b == b'-');
    match SessionId::parse(data) {
        Some(id) => {
            assert!(ok);
            assert_eq!(id.as_str().as_bytes(), data);
        }
        None => assert!(!ok),
    }
});

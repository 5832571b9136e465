//! Any bytes as stored session metadata or as a whole stored item: decoding
//! never panics, and whatever decodes re-encodes to something that decodes
//! to the same value.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rsession::meta::{Meta, envelope};

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Meta::decode(data) {
        assert_eq!(Meta::decode(&m.encode()), Ok(m));
    }
    if let Ok((Some(m), rest)) = envelope::decode(data) {
        let again = envelope::encode(&m, rest);
        let (m2, rest2) = envelope::decode(&again).expect("re-encoded envelope decodes");
        assert_eq!((m2, rest2), (Some(m), rest));
    }
    let _ = envelope::header_len(data);
});

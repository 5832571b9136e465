//! Any bytes as a Redis reply: parsing never panics; an incomplete reply
//! asks for more than it was given, and every cut of a complete one is
//! incomplete; what parses re-encodes to bytes that parse to the same.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rsession::store::redis::{Parsed, Reply, parse_reply};

fn encode(out: &mut Vec<u8>, r: &Reply) {
    match r {
        Reply::Nil => out.extend_from_slice(b"$-1\r\n"),
        Reply::Int(n) => out.extend_from_slice(format!(":{n}\r\n").as_bytes()),
        Reply::Bytes(b) => {
            out.extend_from_slice(format!("${}\r\n", b.len()).as_bytes());
            out.extend_from_slice(b);
            out.extend_from_slice(b"\r\n");
        }
        Reply::Array(items) => {
            out.extend_from_slice(format!("*{}\r\n", items.len()).as_bytes());
            for i in items {
                encode(out, i);
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    match parse_reply(data) {
        Ok(Parsed::Need(n)) => assert!(n > data.len(), "needs {n} of {} given", data.len()),
        Ok(Parsed::Done(reply, used)) => {
            assert!(used > 0 && used <= data.len());
            assert_eq!(parse_reply(&data[..used]).ok(), Some(Parsed::Done(reply.clone(), used)));
            for cut in 0..used {
                match parse_reply(&data[..cut]) {
                    Ok(Parsed::Need(n)) => assert!(n > cut && n <= used, "cut {cut} of {used}: needs {n}"),
                    other => panic!("cut {cut} of {used}: {other:?}"),
                }
            }
            let mut again = Vec::new();
            match &reply {
                Ok(r) => encode(&mut again, r),
                Err(m) => again.extend_from_slice(format!("-{m}\r\n").as_bytes()),
            }
            assert_eq!(parse_reply(&again).ok(), Some(Parsed::Done(reply, again.len())));
        }
        Err(_) => {}
    }
});

//! The replies of memcached's meta protocol that the store reads (and of the
//! `stats settings` it asks once per connection), parsed with limits: a
//! reply line is at most [`MAX_LINE`] bytes, a value at most the caller's
//! limit, and a value's buffer grows as its bytes arrive, never to a length
//! the server merely announced.
//!
//! Errors say whether the connection is still in step: after a
//! `SERVER_ERROR` the server has read our whole command and answered it, so
//! the next reply belongs to the next command; after `CLIENT_ERROR`, `ERROR`,
//! a reply we cannot parse or an I/O error it may not be, and the connection
//! must not be used again.

use std::io::{self, BufRead, Read};

/// Longest reply line accepted (ours are a code and a few short flags).
pub const MAX_LINE: usize = 8 * 1024;

/// One reply: `VA 3 c5 t10` is code "VA", flags ["c5", "t10"] and the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: String,
    pub flags: Vec<String>,
    pub value: Option<Vec<u8>>,
}

impl Reply {
    /// The numeric flag `f` (`c5` → Some(5) for 'c').
    pub fn flag(&self, f: char) -> Option<u64> {
        self.flags.iter().find_map(|a| a.strip_prefix(f).and_then(|v| v.parse().ok()))
    }

    /// A flag's text, for flags that may be negative (`t-1`).
    pub fn flag_text(&self, f: char) -> Option<&str> {
        self.flags.iter().find_map(|a| a.strip_prefix(f))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The connection broke or timed out: unusable.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// `SERVER_ERROR …`: the command failed on the server (out of memory,
    /// object too large); the connection is in step.
    #[error("{0}")]
    Server(String),
    /// `CLIENT_ERROR …` or `ERROR`: the server could not read our command,
    /// so what it reads next may not be our next command: unusable.
    #[error("{0}")]
    Client(String),
    /// A reply that breaks the protocol or our limits: unusable.
    #[error("bad reply from the server: {0}")]
    Protocol(String),
}

impl Error {
    /// Whether the connection can carry the next command.
    pub fn in_step(&self) -> bool {
        matches!(self, Error::Server(_))
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// Reads one line without its CRLF: at most [`MAX_LINE`] bytes, text.
fn read_line(r: &mut impl BufRead) -> Result<String> {
    let mut line = Vec::with_capacity(64);
    let n = r.by_ref().take(MAX_LINE as u64).read_until(b'\n', &mut line)?;
    if n == 0 {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the server closed the connection").into());
    }
    if !line.ends_with(b"\r\n") {
        return Err(if line.len() >= MAX_LINE {
            Error::Protocol(format!("a reply line longer than {MAX_LINE} bytes"))
        } else {
            io::Error::new(io::ErrorKind::UnexpectedEof, "the connection closed inside a reply").into()
        });
    }
    line.truncate(line.len() - 2);
    String::from_utf8(line).map_err(|_| Error::Protocol("a reply line that is not text".into()))
}

/// Reads one reply; a value longer than `max_value` bytes is refused
/// before it is read.
pub fn read_reply(r: &mut impl BufRead, max_value: usize) -> Result<Reply> {
    let line = read_line(r)?;
    let mut words = line.split(' ');
    let code = words.next().unwrap_or_default();
    if code == "SERVER_ERROR" || code.starts_with("SERVER_ERROR") {
        return Err(Error::Server(line.to_string()));
    }
    if code == "CLIENT_ERROR" || code == "ERROR" {
        return Err(Error::Client(line.to_string()));
    }
    if code.is_empty() || !code.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(Error::Protocol(format!("unknown reply {:?}", shorten(&line))));
    }
    let mut flags: Vec<String> = words.filter(|w| !w.is_empty()).map(str::to_string).collect();
    let mut value = None;
    if code == "VA" {
        if flags.is_empty() {
            return Err(Error::Protocol("VA without a length".into()));
        }
        let len: usize = flags.remove(0).parse().map_err(|_| Error::Protocol(format!("bad VA line {:?}", shorten(&line))))?;
        if len > max_value {
            return Err(Error::Protocol(format!("a value of {len} bytes, more than the {max_value} accepted")));
        }
        value = Some(read_value(r, len)?);
    }
    Ok(Reply { code: code.to_string(), flags, value })
}

/// Reads `len` bytes and the CRLF after them, growing the buffer as they come.
fn read_value(r: &mut impl BufRead, len: usize) -> Result<Vec<u8>> {
    // len <= max_value, which is far from usize::MAX; still, never wrap.
    let total = len.checked_add(2).ok_or_else(|| Error::Protocol("value length overflows".into()))?;
    let mut buf = Vec::with_capacity(len.min(64 * 1024) + 2);
    let got = r.by_ref().take(total as u64).read_to_end(&mut buf)?;
    if got < total {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the connection closed inside a value").into());
    }
    if !buf.ends_with(b"\r\n") {
        return Err(Error::Protocol("a value without its CRLF".into()));
    }
    buf.truncate(len);
    Ok(buf)
}

/// Most lines accepted in a `stats settings` reply (memcached 1.6 sends
/// about 90).
const MAX_STATS: usize = 1000;

/// Reads the reply to `stats settings` and returns the server's
/// `item_size_max`. None when the server does not say: a proxy may not
/// answer `stats`, and its one-line error leaves the connection in step.
pub fn read_item_size_max(r: &mut impl BufRead) -> Result<Option<usize>> {
    let mut found = None;
    for n in 0..MAX_STATS {
        let line = read_line(r)?;
        let mut words = line.split(' ');
        match (words.next().unwrap_or_default(), words.next(), words.next()) {
            ("END", None, _) => return Ok(found),
            ("STAT", Some("item_size_max"), Some(v)) => found = v.parse().ok(),
            ("STAT", Some(_), _) => {}
            ("ERROR" | "CLIENT_ERROR" | "SERVER_ERROR", ..) if n == 0 => return Ok(None),
            _ => return Err(Error::Protocol(format!("bad stats line {:?}", shorten(&line)))),
        }
    }
    Err(Error::Protocol(format!("a stats reply of more than {MAX_STATS} lines")))
}

fn shorten(line: &str) -> String {
    line.chars().take(60).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn one(bytes: &[u8]) -> Result<Reply> {
        read_reply(&mut Cursor::new(bytes.to_vec()), 1024)
    }

    #[test]
    fn parses_codes_flags_and_values() {
        let r = one(b"VA 3 c5 t-1 f7\r\nx\0y\r\n").unwrap();
        assert_eq!((r.code.as_str(), r.value.as_deref()), ("VA", Some(&b"x\0y"[..])));
        assert_eq!((r.flag('c'), r.flag('f'), r.flag_text('t')), (Some(5), Some(7), Some("-1")));
        let r = one(b"HD c42\r\n").unwrap();
        assert_eq!((r.code.as_str(), r.flag('c'), r.value), ("HD", Some(42), None));
        assert_eq!(one(b"EN\r\n").unwrap().code, "EN");
        // Several replies in a row stay in step.
        let mut c = Cursor::new(b"VA 2\r\n\r\n\r\nNF\r\nHD\r\n".to_vec());
        assert_eq!(read_reply(&mut c, 10).unwrap().value.as_deref(), Some(&b"\r\n"[..]));
        assert_eq!(read_reply(&mut c, 10).unwrap().code, "NF");
        assert_eq!(read_reply(&mut c, 10).unwrap().code, "HD");
    }

    #[test]
    fn server_errors_keep_the_stream_in_step_client_errors_do_not() {
        let mut c = Cursor::new(b"SERVER_ERROR object too large for cache\r\nHD\r\n".to_vec());
        let e = read_reply(&mut c, 10).unwrap_err();
        assert!(e.in_step() && e.to_string().contains("too large"), "{e}");
        assert_eq!(read_reply(&mut c, 10).unwrap().code, "HD", "the next reply is the next command's");
        assert!(!one(b"SERVER_ERROR out of memory storing object\r\n").is_err_and(|e| !e.in_step()));
        assert!(!one(b"CLIENT_ERROR bad data chunk\r\n").unwrap_err().in_step());
        assert!(!one(b"ERROR\r\n").unwrap_err().in_step());
    }

    #[test]
    fn announced_lengths_are_capped_before_reading() {
        for line in [&b"VA 17592186044416\r\n"[..], b"VA 18446744073709551615\r\n", b"VA 99999999999999999999999\r\n"] {
            assert!(matches!(one(line), Err(Error::Protocol(_))), "{:?}", String::from_utf8_lossy(line));
        }
        assert!(matches!(one(b"VA 1025\r\n"), Err(Error::Protocol(_))), "over the caller's limit");
    }

    #[test]
    fn garbage_and_truncation_are_errors_not_panics() {
        for bad in [
            &b""[..],
            b"\r\n",
            b"HD",
            b"VA\r\n",
            b"VA x\r\n",
            b"VA 5\r\nab",
            b"VA 2\r\nabcd",
            b"hd\r\n",
            b"\xff\xfe\r\n",
            b"HD\n",
        ] {
            let e = one(bad).unwrap_err();
            assert!(!e.in_step(), "{:?}: {e}", String::from_utf8_lossy(bad));
        }
        let long = [b"HD ".to_vec(), vec![b'x'; MAX_LINE + 10], b"\r\n".to_vec()].concat();
        assert!(matches!(one(&long), Err(Error::Protocol(_))));
    }

    #[test]
    fn the_item_limit_comes_from_stats_settings() {
        let stats = |bytes: &[u8]| read_item_size_max(&mut Cursor::new(bytes.to_vec()));
        let r = stats(b"STAT maxbytes 67108864\r\nSTAT item_size_max 1024\r\nSTAT inter NULL\r\nEND\r\n");
        assert_eq!(r.unwrap(), Some(1024));
        assert_eq!(stats(b"STAT maxbytes 1\r\nEND\r\n").unwrap(), None);
        // A proxy without stats: unknown, and the next reply is in step.
        let mut c = Cursor::new(b"ERROR\r\nHD\r\n".to_vec());
        assert_eq!(read_item_size_max(&mut c).unwrap(), None);
        assert_eq!(read_reply(&mut c, 10).unwrap().code, "HD");
        for bad in [&b"STAT item_size_max 1\r\n"[..], b"HD\r\nEND\r\n", b"STAT a b\r\nERROR\r\n"] {
            assert!(stats(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        assert!(matches!(stats(&b"STAT a b\r\n".repeat(MAX_STATS + 1)), Err(Error::Protocol(_))));
    }
}

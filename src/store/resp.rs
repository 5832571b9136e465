//! A small Redis client: one blocking connection speaking RESP2.
//!
//! The store needs little of Redis (pipelines, scripts, BLPOP) but needs it
//! on every request, so this does only that, with no per-call allocation
//! beyond the replies: commands are encoded into a reused buffer and sent
//! in one write, replies parsed from a reused read buffer. It owns its
//! socket so it can wait for a reply the cheap way (see [`super::spin`]).
//! TCP, unix sockets and TLS (rustls, the system's trust store); AUTH with
//! a password or an ACL user; SELECT.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use super::net::{self, Deadline};
use super::spin::Spinner;
use crate::config::{RedisAddr, RedisConfig};

/// A reply. Status lines (`+OK`) and bulk strings are both bytes; Lua's
/// false and a missing key are both Nil.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Nil,
    Int(i64),
    Bytes(Vec<u8>),
    Array(Vec<Reply>),
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The connection is unusable (or was never made).
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The server answered with an error; the connection is fine.
    #[error("{0}")]
    Server(String),
}

impl Error {
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Io(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut))
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// A Lua script, called by its SHA1 and sent whole only when the server
/// does not know it yet (a new or restarted server).
pub struct Script {
    source: &'static str,
    sha: String,
}

impl Script {
    pub fn new(source: &'static str) -> Script {
        Script { source, sha: sha1_smol::Sha1::from(source).digest().to_string() }
    }
}

/// What [`Timed`] needs of a socket.
trait Socket: Read + Write + AsRawFd {
    fn read_timeout_to(&self, t: Duration) -> io::Result<()>;
    fn write_timeout_to(&self, t: Duration) -> io::Result<()>;
}

impl Socket for TcpStream {
    fn read_timeout_to(&self, t: Duration) -> io::Result<()> {
        TcpStream::set_read_timeout(self, Some(t))
    }
    fn write_timeout_to(&self, t: Duration) -> io::Result<()> {
        TcpStream::set_write_timeout(self, Some(t))
    }
}

impl Socket for UnixStream {
    fn read_timeout_to(&self, t: Duration) -> io::Result<()> {
        UnixStream::set_read_timeout(self, Some(t))
    }
    fn write_timeout_to(&self, t: Duration) -> io::Result<()> {
        UnixStream::set_write_timeout(self, Some(t))
    }
}

/// How far a socket's timeout may be from the time left before it is
/// moved: an exchange of one write and one read then costs no syscall for
/// it, and overruns its deadline by this much at most.
const SLACK: Duration = Duration::from_millis(2);

/// A socket whose reads and writes all end by one deadline (the
/// exchange's; the connect's during the TLS handshake), so a server that
/// trickles its bytes cannot hold a request past its timeout. It sits
/// under TLS, where one read of plaintext may take many socket reads.
struct Timed<S> {
    sock: S,
    deadline: Deadline,
    /// The timeouts set on the socket now.
    read_timeout: Duration,
    write_timeout: Duration,
}

impl<S: Socket> Timed<S> {
    fn new(sock: S, deadline: Deadline) -> io::Result<Timed<S>> {
        let left = deadline.remaining()?;
        sock.read_timeout_to(left)?;
        sock.write_timeout_to(left)?;
        Ok(Timed { sock, deadline, read_timeout: left, write_timeout: left })
    }
}

impl<S: Socket> Read for Timed<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.deadline.remaining()?;
        if left.abs_diff(self.read_timeout) > SLACK {
            self.sock.read_timeout_to(left)?;
            self.read_timeout = left;
        }
        self.sock.read(buf)
    }
}

impl<S: Socket> Write for Timed<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let left = self.deadline.remaining()?;
        if left.abs_diff(self.write_timeout) > SLACK {
            self.sock.write_timeout_to(left)?;
            self.write_timeout = left;
        }
        self.sock.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.sock.flush()
    }
}

enum Stream {
    Tcp(Timed<TcpStream>),
    Unix(Timed<UnixStream>),
    Tls(Box<StreamOwned<ClientConnection, Timed<TcpStream>>>),
}

impl Stream {
    fn fd(&self) -> RawFd {
        match self {
            Stream::Tcp(s) => s.sock.as_raw_fd(),
            Stream::Unix(s) => s.sock.as_raw_fd(),
            Stream::Tls(s) => s.sock.sock.as_raw_fd(),
        }
    }

    /// Every read and write from now on ends by `deadline`.
    fn set_deadline(&mut self, deadline: Deadline) {
        match self {
            Stream::Tcp(s) => s.deadline = deadline,
            Stream::Unix(s) => s.deadline = deadline,
            Stream::Tls(s) => s.sock.deadline = deadline,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.flush(),
            Stream::Unix(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// Read buffer size; larger replies grow it.
const READ_CHUNK: usize = 16 * 1024;
/// Buffers up to this size are kept for the next request.
const MAX_KEPT: usize = 256 * 1024;
/// Largest reply accepted (Redis's own limit for a string is 512 MB).
const MAX_REPLY: usize = 1 << 30;
/// Deepest nesting of arrays accepted in a reply (ours nest one level).
const MAX_DEPTH: usize = 8;
/// Longest status, error or header line accepted.
const MAX_LINE: usize = 64 * 1024;

pub struct Connection {
    stream: Stream,
    /// Bytes read but not yet parsed: `rbuf[start..filled]`.
    rbuf: Vec<u8>,
    start: usize,
    filled: usize,
    wbuf: Vec<u8>,
    timeout: Duration,
    spinner: Spinner,
}

impl Connection {
    /// Connects, authenticates and selects the database. Name resolution,
    /// the connect and the TLS handshake together take at most
    /// `connect_timeout_ms`; AUTH and SELECT are an exchange like any other.
    pub fn open(config: &RedisConfig) -> Result<Connection> {
        let (connect_timeout, timeout) = (config.net.connect_timeout, config.net.timeout);
        let connecting = Deadline::after(connect_timeout);
        let stream = match &config.addr {
            RedisAddr::Tcp { host, port, tls } => {
                let tcp = net::connect_tcp(host, *port, connect_timeout)?;
                tcp.set_nodelay(true)?; // strictly request/response: never let Nagle hold a command
                let tcp = Timed::new(tcp, connecting)?;
                if *tls { Stream::Tls(Box::new(tls_handshake(host, tcp)?)) } else { Stream::Tcp(tcp) }
            }
            RedisAddr::Unix { path } => Stream::Unix(Timed::new(net::connect_unix(path, connect_timeout)?, connecting)?),
            // The router opens these node by node.
            RedisAddr::Cluster { .. } | RedisAddr::Sentinel { .. } => {
                return Err(io::Error::new(io::ErrorKind::InvalidInput, "not the address of one server").into());
            }
        };
        let mut conn = Connection {
            stream,
            rbuf: vec![0; READ_CHUNK],
            start: 0,
            filled: 0,
            wbuf: Vec::with_capacity(4096),
            timeout,
            spinner: Spinner::default(),
        };
        let mut setup: Vec<Vec<&[u8]>> = Vec::new();
        if let Some(password) = &config.password {
            setup.push(match &config.username {
                Some(user) => vec![b"AUTH", user.as_bytes(), password.as_bytes()],
                None => vec![b"AUTH", password.as_bytes()],
            });
        }
        let db = config.db.to_string();
        if config.db != 0 {
            setup.push(vec![b"SELECT", db.as_bytes()]);
        }
        if !setup.is_empty() {
            let commands: Vec<&[&[u8]]> = setup.iter().map(Vec::as_slice).collect();
            conn.query(&commands).map_err(|e| match e {
                // Refused credentials or db: not a network fault, but this
                // connection is of no use.
                Error::Server(m) => Error::Io(io::Error::new(io::ErrorKind::PermissionDenied, m)),
                e => e,
            })?;
        }
        Ok(conn)
    }

    /// Sends the commands in one write and reads one reply for each. A
    /// server error in any of them is the result (after all were read, so
    /// the connection stays in step).
    /// The whole exchange, every write and read of it, takes at most
    /// `timeout_ms`.
    pub fn query(&mut self, commands: &[&[&[u8]]]) -> Result<Vec<Reply>> {
        self.exchange(commands, Deadline::after(self.timeout), true)
    }

    pub fn query_one(&mut self, command: &[&[u8]]) -> Result<Reply> {
        self.query(&[command]).map(|mut r| r.pop().unwrap_or(Reply::Nil))
    }

    /// Whether a request can go out on this idle connection: nothing is
    /// waiting to be read (a server that closed it, or stray bytes).
    pub fn idle_ok(&self) -> bool {
        self.start == self.filled && net::idle_ok(self.stream.fd())
    }

    fn exchange(&mut self, commands: &[&[&[u8]]], deadline: Deadline, spin: bool) -> Result<Vec<Reply>> {
        self.start(deadline);
        for c in commands {
            self.push(c);
        }
        self.send()?;
        let mut replies = Vec::with_capacity(commands.len());
        let mut failed = None;
        for i in 0..commands.len() {
            match self.receive(spin && i == 0)? {
                Ok(r) => replies.push(r),
                Err(m) => failed = failed.or(Some(m)),
            }
        }
        match failed {
            Some(m) => Err(Error::Server(m)),
            None => Ok(replies),
        }
    }

    /// Starts a batch of commands, sent together by [`Self::send`]; every
    /// write and read of the exchange ends by `deadline`.
    pub fn start(&mut self, deadline: Deadline) {
        self.stream.set_deadline(deadline);
        self.wbuf.clear();
    }

    /// Adds a command to the batch.
    pub fn push(&mut self, args: &[&[u8]]) {
        encode(&mut self.wbuf, args);
    }

    /// Adds a script call: EVALSHA, or with `whole` the script itself
    /// (EVAL: the server did not know it).
    pub fn push_script(&mut self, script: &Script, keys: &[&[u8]], args: &[&[u8]], whole: bool) {
        let nkeys = keys.len().to_string();
        let head: [&[u8]; 3] = match whole {
            false => [b"EVALSHA", script.sha.as_bytes(), nkeys.as_bytes()],
            true => [b"EVAL", script.source.as_bytes(), nkeys.as_bytes()],
        };
        encode_parts(&mut self.wbuf, head.len() + keys.len() + args.len(), head.iter().chain(keys).chain(args));
    }

    /// Bytes held by the read and write buffers between requests.
    #[cfg(test)]
    pub fn buffer_sizes(&self) -> (usize, usize) {
        (self.rbuf.len(), self.wbuf.capacity())
    }

    /// Sends the batch.
    pub fn send(&mut self) -> Result<()> {
        if self.start != self.filled {
            // Bytes nobody asked for: the connection is out of step.
            return Err(io::Error::new(io::ErrorKind::InvalidData, "unexpected data from the server").into());
        }
        self.stream.write_all(&self.wbuf)?;
        self.stream.flush()?;
        if self.wbuf.capacity() > MAX_KEPT {
            self.wbuf = Vec::with_capacity(4096);
        }
        Ok(())
    }

    /// Reads one reply: Ok(Err(message)) is the server's error reply.
    /// `spin`: the reply is expected soon (see [`super::spin`]).
    pub fn receive(&mut self, spin: bool) -> Result<std::result::Result<Reply, String>> {
        let mut need = 1;
        if spin && self.start == self.filled {
            self.spinner.wait_readable(self.stream.fd());
        }
        loop {
            if self.filled - self.start >= need {
                match parse(&self.rbuf[self.start..self.filled], 0)? {
                    Parsed::Done(reply, used) => {
                        self.start += used;
                        if self.start == self.filled {
                            (self.start, self.filled) = (0, 0);
                            if self.rbuf.len() > MAX_KEPT {
                                // A very large session passed: don't keep its buffer.
                                self.rbuf = vec![0; READ_CHUNK];
                            }
                        }
                        return Ok(reply);
                    }
                    Parsed::Need(n) => need = n,
                }
            }
            self.fill(need)?;
        }
    }

    /// Reads more towards `need` unparsed bytes. The buffer doubles as bytes
    /// arrive, never jumping to a size the server merely announced.
    fn fill(&mut self, need: usize) -> Result<()> {
        if need > MAX_REPLY {
            return Err(protocol("a reply larger than 1 GiB"));
        }
        if self.start > 0 {
            self.rbuf.copy_within(self.start..self.filled, 0);
            (self.start, self.filled) = (0, self.filled - self.start);
        }
        let len = self.rbuf.len();
        if self.filled == len || (len < need && len - self.filled < READ_CHUNK) {
            self.rbuf.resize((len * 2).min(need.max(self.filled + READ_CHUNK)), 0);
        }
        let n = self.stream.read(&mut self.rbuf[self.filled..])?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the server closed the connection").into());
        }
        self.filled += n;
        Ok(())
    }
}

/// TLS with the server's certificate checked against the system's trust
/// store, read at each new connection (so SSL_CERT_FILE / SSL_CERT_DIR name
/// a private CA, as with phpredis).
fn tls_handshake(host: &str, mut tcp: Timed<TcpStream>) -> io::Result<StreamOwned<ClientConnection, Timed<TcpStream>>> {
    let invalid = |e: String| io::Error::new(io::ErrorKind::InvalidData, e);
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    let config = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from(host.to_string()).map_err(|e| invalid(format!("TLS server name {host:?}: {e}")))?;
    let mut tls = ClientConnection::new(Arc::new(config), name).map_err(|e| invalid(e.to_string()))?;
    while tls.is_handshaking() {
        tls.complete_io(&mut tcp).map_err(|e| match net::is_timeout(&e) {
            true => io::Error::new(io::ErrorKind::TimedOut, "TLS handshake not done within connect_timeout_ms"),
            false => e,
        })?;
    }
    Ok(StreamOwned::new(tls, tcp))
}

/// Appends a command as a RESP array of bulk strings.
fn encode(out: &mut Vec<u8>, args: &[&[u8]]) {
    encode_parts(out, args.len(), args.iter());
}

fn encode_parts<'a>(out: &mut Vec<u8>, n: usize, args: impl Iterator<Item = &'a &'a [u8]>) {
    out.push(b'*');
    push_decimal(out, n);
    out.extend_from_slice(b"\r\n");
    for a in args {
        out.push(b'$');
        push_decimal(out, a.len());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

fn push_decimal(out: &mut Vec<u8>, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// The outcome of parsing the front of a read buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A reply (or the server's error message) and the bytes it took.
    Done(std::result::Result<Reply, String>, usize),
    /// Incomplete: at least this many bytes are needed (always more than given).
    Need(usize),
}

fn protocol(what: &str) -> Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("bad reply from the server: {what}")).into()
}

/// Parses one reply from the front of `buf`, as the connection does; for
/// the fuzz target. Total: any bytes give a reply, a need for more, or a
/// protocol error, never a panic.
pub fn parse_reply(buf: &[u8]) -> Result<Parsed> {
    parse(buf, 0)
}

/// Parses one reply from the front of `buf`.
fn parse(buf: &[u8], depth: usize) -> Result<Parsed> {
    let scan = &buf[..buf.len().min(MAX_LINE + 2)];
    let Some(eol) = scan.windows(2).position(|w| w == b"\r\n") else {
        if buf.len() > MAX_LINE {
            return Err(protocol("a line longer than 64 KiB"));
        }
        return Ok(Parsed::Need(buf.len() + 1));
    };
    let Some((&kind, line)) = buf[..eol].split_first() else { return Err(protocol("an empty line")) };
    let after = eol + 2;
    let reply = match kind {
        b'+' => Ok(Reply::Bytes(line.to_vec())),
        b'-' => Err(String::from_utf8_lossy(line).into_owned()),
        b':' => Ok(Reply::Int(integer(line)?)),
        b'$' => {
            let Some(len) = length(line)? else { return Ok(Parsed::Done(Ok(Reply::Nil), after)) };
            if len > MAX_REPLY {
                return Err(protocol("a reply larger than 1 GiB"));
            }
            let end = after + len;
            if buf.len() < end + 2 {
                return Ok(Parsed::Need(end + 2));
            }
            if &buf[end..end + 2] != b"\r\n" {
                return Err(protocol("bulk string without its end"));
            }
            return Ok(Parsed::Done(Ok(Reply::Bytes(buf[after..end].to_vec())), end + 2));
        }
        b'*' => {
            let Some(n) = length(line)? else { return Ok(Parsed::Done(Ok(Reply::Nil), after)) };
            if depth >= MAX_DEPTH {
                return Err(protocol("arrays nested too deep"));
            }
            let mut items = Vec::with_capacity(n.min(1024));
            let mut at = after;
            for _ in 0..n {
                match parse(&buf[at..], depth + 1)? {
                    Parsed::Done(Ok(item), used) => {
                        items.push(item);
                        at += used;
                    }
                    // Scripts' errors inside arrays: none of ours return them.
                    Parsed::Done(Err(m), _) => return Err(protocol(&m)),
                    Parsed::Need(more) => return Ok(Parsed::Need(at + more)),
                }
            }
            return Ok(Parsed::Done(Ok(Reply::Array(items)), at));
        }
        _ => return Err(protocol("unknown type byte")),
    };
    Ok(Parsed::Done(reply, after))
}

/// A bulk string's or array's length; None for -1, the null one.
fn length(line: &[u8]) -> Result<Option<usize>> {
    match integer(line)? {
        -1 => Ok(None),
        n => usize::try_from(n).map(Some).map_err(|_| protocol("a negative length")),
    }
}

fn integer(line: &[u8]) -> Result<i64> {
    std::str::from_utf8(line).ok().and_then(|s| s.parse().ok()).ok_or_else(|| protocol("not a number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(buf: &[u8]) -> (std::result::Result<Reply, String>, usize) {
        match parse(buf, 0).unwrap() {
            Parsed::Done(r, n) => (r, n),
            Parsed::Need(n) => panic!("needs {n}"),
        }
    }

    #[test]
    fn encodes_commands_as_bulk_arrays() {
        let mut out = Vec::new();
        encode(&mut out, &[b"SET", b"k", b"a\r\nb"]);
        assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\na\r\nb\r\n");
        let mut n = Vec::new();
        push_decimal(&mut n, 0);
        push_decimal(&mut n, 1_234_567);
        assert_eq!(n, b"01234567");
    }

    #[test]
    fn parses_every_reply_kind() {
        assert_eq!(done(b"+OK\r\n"), (Ok(Reply::Bytes(b"OK".to_vec())), 5));
        assert_eq!(done(b"-NOSCRIPT x\r\n").0, Err("NOSCRIPT x".to_string()));
        assert_eq!(done(b":-42\r\n").0, Ok(Reply::Int(-42)));
        assert_eq!(done(b"$-1\r\n").0, Ok(Reply::Nil));
        assert_eq!(done(b"$4\r\na\r\nb\r\n+next").0, Ok(Reply::Bytes(b"a\r\nb".to_vec())));
        assert_eq!(
            done(b"*3\r\n:1\r\n$0\r\n\r\n*1\r\n$-1\r\n").0,
            Ok(Reply::Array(vec![Reply::Int(1), Reply::Bytes(vec![]), Reply::Array(vec![Reply::Nil])]))
        );
    }

    #[test]
    fn an_incomplete_reply_says_how_much_it_needs() {
        let full = b"*2\r\n:1\r\n$10\r\n0123456789\r\n";
        for cut in 0..full.len() {
            match parse(&full[..cut], 0).unwrap() {
                Parsed::Need(n) => assert!(n > cut && n <= full.len(), "cut {cut}: need {n}"),
                Parsed::Done(..) => panic!("cut {cut} parsed"),
            }
        }
        assert_eq!(done(full).1, full.len());
    }

    #[test]
    fn malformed_replies_are_errors_never_panics() {
        for bad in [
            &b"\r\n"[..],
            b"\r\n+OK\r\n",
            b"*1\r\n\r\n",
            b"$-2\r\n",
            b"*-5\r\n",
            b"$\r\n",
            b"$2147483648000\r\n",
        ] {
            assert!(parse(bad, 0).is_err(), "{bad:?}");
        }
        // A line that never ends is refused before it fills the memory.
        assert!(parse(&[b'+'; MAX_LINE + 10], 0).is_err());
    }

    /// A server on loopback that reads one request, then sends `bytes` one
    /// per 100 ms and closes.
    fn trickling_server(bytes: &'static [u8]) -> (u16, std::thread::JoinHandle<()>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
            let _ = s.read(&mut [0; 256]);
            for b in bytes {
                std::thread::sleep(Duration::from_millis(100));
                if s.write_all(&[*b]).is_err() {
                    break;
                }
            }
        });
        (port, server)
    }

    fn config(url: &str) -> RedisConfig {
        match crate::config::StoreConfig::parse(url, std::path::Path::new("/tmp")).unwrap() {
            crate::config::StoreConfig::Redis(c) => c,
            _ => panic!(),
        }
    }

    #[test]
    fn a_trickling_server_cannot_hold_an_exchange_past_its_timeout() {
        // Each byte comes well within timeout_ms; the reply never ends.
        let (port, server) = trickling_server(b"+PONGPONGPONGPONGPONGPONGPONG\r\n");
        let mut c = Connection::open(&config(&format!("redis://127.0.0.1:{port}?timeout_ms=300"))).unwrap();
        let t = std::time::Instant::now();
        let e = c.query_one(&[b"PING"]).unwrap_err();
        assert!(e.is_timeout(), "{e}");
        assert!(t.elapsed() < Duration::from_millis(1000), "{:?}", t.elapsed());
        drop(c);
        server.join().unwrap();
    }

    #[test]
    fn a_trickled_tls_handshake_ends_within_connect_timeout() {
        // A TLS record header announcing 16 KiB, then its bytes, slowly.
        let (port, server) = trickling_server(b"\x16\x03\x03\x40\x00 hello, very slowly indeed");
        let url = format!("rediss://localhost:{port}?connect_timeout_ms=300");
        let t = std::time::Instant::now();
        let e = Connection::open(&config(&url)).err().expect("no handshake can succeed");
        assert!(e.is_timeout(), "{e}");
        assert!(t.elapsed() < Duration::from_millis(1000), "{:?}", t.elapsed());
        server.join().unwrap();
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse(b"?x\r\n", 0).is_err());
        assert!(parse(b":12a\r\n", 0).is_err());
        assert!(parse(b"$2\r\nabcd\r\n", 0).is_err());
        assert!(parse(&b"*1\r\n".repeat(20), 0).is_err());
    }
}

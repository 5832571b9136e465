//! A small synchronous PostgreSQL connection around `postgres-protocol`'s
//! message codecs and SCRAM: TCP (TLS through rustls), startup and
//! authentication (SCRAM-SHA-256, md5, cleartext), and pipelined calls of
//! named prepared statements in binary format.
//!
//! Why not the `postgres` crate: it runs a tokio runtime per client (a
//! thread-local reactor and timer in every php-fpm worker, unsupported
//! across fork) and its synchronous API sends one statement per round trip;
//! here several statements go out in one write (each followed by Sync, so
//! each runs and commits on its own) and their replies are read in order.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use fallible_iterator::FallibleIterator;
use postgres_protocol::authentication::sasl::{self, ChannelBinding, ScramSha256};
use postgres_protocol::message::backend::{DataRowBody, ErrorResponseBody, Message};
use postgres_protocol::message::frontend;
use postgres_protocol::IsNull;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme, StreamOwned};

use crate::config::{SqlAddr, SqlConfig, SslMode};
use crate::store::net::{self, Deadline};
use crate::store::spin::Spinner;

pub const INT8: u32 = 20;
pub const BOOL: u32 = 16;
pub const BYTEA: u32 = 17;
pub const TEXT: u32 = 25;

#[derive(Debug)]
pub enum Error {
    /// The connection failed or timed out; it is of no further use.
    Io(io::Error),
    /// The server refused (SQLSTATE, message); the connection is fine.
    Db { code: String, message: String },
    /// The server said something we do not understand.
    Protocol(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Io(e) => write!(f, "{e}"),
            Error::Db { code, message } => write!(f, "{message} (SQLSTATE {code})"),
            Error::Protocol(m) => write!(f, "protocol error: {m}"),
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        Error::Io(e)
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// A statement the store prepares once per connection.
pub struct Statement {
    pub sql: String,
    pub types: &'static [u32],
}

#[derive(Debug, Clone, Copy)]
pub enum Param<'a> {
    Null,
    Int8(i64),
    Bool(bool),
    Bytes(&'a [u8]),
    Text(&'a str),
}

/// What one statement returned.
#[derive(Debug, Default)]
pub struct Outcome {
    pub rows: Vec<DataRowBody>,
    /// From the command tag (rows inserted, updated, deleted or selected).
    pub affected: u64,
}

/// The columns of a row, None for NULL.
pub fn columns(row: &DataRowBody) -> Result<Vec<Option<&[u8]>>> {
    let buf = row.buffer();
    row.ranges()
        .map(|r| Ok(r.map(|r| &buf[r])))
        .collect()
        .map_err(|e: io::Error| Error::Protocol(e.to_string()))
}

enum Stream {
    Tcp(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Tcp(s) => s,
            Stream::Tls(s) => &s.sock,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// Buffers larger than this (a large session passed) are not kept.
const MAX_KEPT: usize = 256 * 1024;

pub struct Connection {
    stream: Stream,
    rbuf: BytesMut,
    wbuf: BytesMut,
    timeout: Duration,
    spinner: Spinner,
    /// Which of the store's statements this connection has prepared.
    prepared: Vec<bool>,
    /// The server process serving us (pg_locks.pid of our locks).
    pub backend_pid: i32,
    /// Notices of the last call (e.g. unlocking a lock not held).
    pub notices: Vec<String>,
    /// The process that opened it: a child after fork must not say goodbye
    /// on the parent's connection.
    opened_by: u32,
}

fn protocol(m: impl Into<String>) -> Error {
    Error::Protocol(m.into())
}

fn db_error(body: &ErrorResponseBody) -> Error {
    let (mut code, mut message) = (String::new(), String::new());
    let mut fields = body.fields();
    while let Ok(Some(f)) = fields.next() {
        match f.type_() {
            b'C' => code = String::from_utf8_lossy(f.value_bytes()).into_owned(),
            b'M' => message = String::from_utf8_lossy(f.value_bytes()).into_owned(),
            _ => {}
        }
    }
    Error::Db { code, message }
}

impl Connection {
    /// Connects, negotiates TLS as `sslmode` says, and authenticates, all
    /// within `connect_timeout_ms`.
    pub fn open(config: &SqlConfig, user: &str) -> Result<Connection> {
        let SqlAddr::Tcp { host, port } = &config.addr else {
            return Err(protocol("PostgreSQL is reached over TCP"));
        };
        let connect_timeout = config.net.connect_timeout;
        let deadline = Deadline::after(connect_timeout);
        let mut tcp = net::connect_tcp(host, *port, connect_timeout)?;
        tcp.set_nodelay(true)?;
        tcp.set_read_timeout(Some(deadline.remaining()?))?;
        tcp.set_write_timeout(Some(deadline.remaining()?))?;
        let stream = if config.sslmode == SslMode::Disable {
            Stream::Tcp(tcp)
        } else {
            let mut buf = BytesMut::new();
            frontend::ssl_request(&mut buf);
            tcp.write_all(&buf)?;
            let mut answer = [0u8; 1];
            tcp.read_exact(&mut answer)?;
            match answer[0] {
                b'S' => Stream::Tls(Box::new(tls_handshake(host, tcp, config.sslmode)?)),
                b'N' if config.sslmode == SslMode::Prefer => Stream::Tcp(tcp),
                b'N' => return Err(protocol(format!("the server does not offer TLS (sslmode={})", config.sslmode.as_str()))),
                _ => return Err(protocol("unexpected answer to the TLS request")),
            }
        };
        let mut conn = Connection {
            stream,
            rbuf: BytesMut::with_capacity(16 * 1024),
            wbuf: BytesMut::with_capacity(4096),
            timeout: config.net.timeout,
            spinner: Spinner::default(),
            prepared: Vec::new(),
            backend_pid: 0,
            notices: Vec::new(),
            opened_by: crate::pid::current(),
        };
        conn.startup(user, config, &deadline)?;
        Ok(conn)
    }

    fn startup(&mut self, user: &str, config: &SqlConfig, deadline: &Deadline) -> Result<()> {
        let params = [
            ("user", user),
            ("database", config.dbname.as_str()),
            ("application_name", "rsession"),
            ("client_encoding", "UTF8"),
        ];
        frontend::startup_message(params.iter().copied(), &mut self.wbuf)?;
        self.send()?;
        let password = config.password.as_deref().unwrap_or("").as_bytes();
        let missing = || protocol("the server asks for a password and the save_path gives none");
        let mut scram: Option<ScramSha256> = None;
        loop {
            match self.next(deadline)? {
                Message::AuthenticationOk => {}
                Message::AuthenticationCleartextPassword => {
                    config.password.as_ref().ok_or_else(missing)?;
                    frontend::password_message(password, &mut self.wbuf)?;
                    self.send()?;
                }
                Message::AuthenticationMd5Password(body) => {
                    config.password.as_ref().ok_or_else(missing)?;
                    let hash = postgres_protocol::authentication::md5_hash(user.as_bytes(), password, body.salt());
                    frontend::password_message(hash.as_bytes(), &mut self.wbuf)?;
                    self.send()?;
                }
                Message::AuthenticationSasl(body) => {
                    config.password.as_ref().ok_or_else(missing)?;
                    let mut mechanisms = body.mechanisms();
                    let mut found = false;
                    while let Some(m) = mechanisms.next().map_err(Error::Io)? {
                        found |= m == sasl::SCRAM_SHA_256;
                    }
                    if !found {
                        return Err(protocol("the server offers no SASL mechanism rsession knows (SCRAM-SHA-256)"));
                    }
                    let s = ScramSha256::new(password, ChannelBinding::unsupported());
                    frontend::sasl_initial_response(sasl::SCRAM_SHA_256, s.message(), &mut self.wbuf)?;
                    self.send()?;
                    scram = Some(s);
                }
                Message::AuthenticationSaslContinue(body) => {
                    let s = scram.as_mut().ok_or_else(|| protocol("SASL continue without a start"))?;
                    s.update(body.data())?;
                    frontend::sasl_response(s.message(), &mut self.wbuf)?;
                    self.send()?;
                }
                Message::AuthenticationSaslFinal(body) => {
                    let s = scram.as_mut().ok_or_else(|| protocol("SASL final without a start"))?;
                    s.finish(body.data())?;
                }
                Message::BackendKeyData(body) => self.backend_pid = body.process_id(),
                Message::ParameterStatus(_) | Message::NoticeResponse(_) => {}
                Message::ReadyForQuery(_) => break,
                Message::ErrorResponse(body) => return Err(db_error(&body)),
                _ => return Err(protocol("unexpected message while connecting (GSS or SSPI authentication is not supported)")),
            }
        }
        self.stream.tcp().set_read_timeout(Some(self.timeout))?;
        self.stream.tcp().set_write_timeout(Some(self.timeout))?;
        Ok(())
    }

    /// Whether the connection can be sent on (see [`net::idle_ok`]): a
    /// server that restarted, or ended us, left an error or end of file.
    pub fn idle_ok(&self) -> bool {
        net::idle_ok(self.fd())
    }

    fn fd(&self) -> RawFd {
        self.stream.tcp().as_raw_fd()
    }

    /// Runs `calls` (statement index, parameters) in one write, each in its
    /// own implicit transaction, and reads every reply. A statement the
    /// server refused is an Err in its place; the others still ran. `extra`
    /// lengthens the time allowed (a lock wait).
    pub fn pipeline(
        &mut self,
        statements: &[Statement],
        calls: &[(usize, &[Param<'_>])],
        extra: Duration,
    ) -> Result<Vec<Result<Outcome>>> {
        if self.prepared.len() < statements.len() {
            self.prepared.resize(statements.len(), false);
        }
        self.wbuf.clear();
        let mut parsing = Vec::with_capacity(calls.len());
        for (i, params) in calls {
            let st = &statements[*i];
            let name = statement_name(*i);
            // Prepared once per connection; a Parse that fails is sent again
            // next time.
            let parse = !self.prepared[*i] && !parsing.contains(i);
            if parse {
                frontend::parse(&name, &st.sql, st.types.iter().copied(), &mut self.wbuf)?;
            }
            parsing.push(if parse { *i } else { usize::MAX });
            frontend::bind(
                "",
                &name,
                Some(1),
                params.iter(),
                |p, buf| {
                    encode(p, buf);
                    Ok(if matches!(p, Param::Null) { IsNull::Yes } else { IsNull::No })
                },
                Some(1),
                &mut self.wbuf,
            )
            .map_err(|_| protocol("a parameter too large to send"))?;
            frontend::execute("", 0, &mut self.wbuf)?;
            frontend::sync(&mut self.wbuf);
        }
        self.send()?;
        let deadline = Deadline::after(self.timeout + extra);
        self.notices.clear();
        let mut out = Vec::with_capacity(calls.len());
        for (n, parsed) in parsing.into_iter().enumerate() {
            let mut outcome = Ok(Outcome::default());
            if n == 0 && extra.is_zero() && self.rbuf.is_empty() {
                self.spinner.wait_readable(self.fd());
            }
            loop {
                match self.next(&deadline)? {
                    Message::ParseComplete => {
                        if parsed != usize::MAX {
                            self.prepared[parsed] = true;
                        }
                    }
                    Message::BindComplete | Message::NoData | Message::EmptyQueryResponse => {}
                    Message::RowDescription(_) | Message::ParameterStatus(_) | Message::NotificationResponse(_) => {}
                    Message::DataRow(row) => {
                        if let Ok(o) = outcome.as_mut() {
                            o.rows.push(row);
                        }
                    }
                    Message::CommandComplete(body) => {
                        if let Ok(o) = outcome.as_mut() {
                            let tag = body.tag().map_err(Error::Io)?;
                            o.affected = tag.rsplit(' ').next().and_then(|n| n.parse().ok()).unwrap_or(0);
                        }
                    }
                    Message::NoticeResponse(body) => {
                        let mut fields = body.fields();
                        while let Ok(Some(f)) = fields.next() {
                            if f.type_() == b'M' {
                                self.notices.push(String::from_utf8_lossy(f.value_bytes()).into_owned());
                            }
                        }
                    }
                    Message::ErrorResponse(body) => outcome = Err(db_error(&body)),
                    Message::ReadyForQuery(_) => break,
                    _ => return Err(protocol("unexpected message in a reply")),
                }
            }
            out.push(outcome);
        }
        if self.rbuf.capacity() > MAX_KEPT {
            self.rbuf = BytesMut::with_capacity(16 * 1024);
        }
        if self.wbuf.capacity() > MAX_KEPT {
            self.wbuf = BytesMut::with_capacity(4096);
        }
        Ok(out)
    }

    /// Runs SQL text (several statements allowed, no parameters): the
    /// schema, which names tables and so cannot be prepared with them.
    pub fn simple(&mut self, sql: &str) -> Result<()> {
        self.wbuf.clear();
        frontend::query(sql, &mut self.wbuf)?;
        self.send()?;
        let deadline = Deadline::after(self.timeout);
        let mut failed = None;
        loop {
            match self.next(&deadline)? {
                Message::ErrorResponse(body) => failed = Some(db_error(&body)),
                Message::ReadyForQuery(_) => break,
                _ => {}
            }
        }
        failed.map_or(Ok(()), Err)
    }

    fn send(&mut self) -> Result<()> {
        self.stream.write_all(&self.wbuf)?;
        self.stream.flush()?;
        self.wbuf.clear();
        Ok(())
    }

    /// The next message, reading as needed until `deadline`.
    fn next(&mut self, deadline: &Deadline) -> Result<Message> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if let Some(m) = Message::parse(&mut self.rbuf).map_err(|e| protocol(e.to_string()))? {
                return Ok(m);
            }
            self.stream.tcp().set_read_timeout(Some(deadline.remaining()?))?;
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the server closed the connection").into());
            }
            self.rbuf.extend_from_slice(&chunk[..n]);
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        if self.opened_by == crate::pid::current() {
            let mut buf = BytesMut::new();
            frontend::terminate(&mut buf);
            let _ = self.stream.tcp().set_write_timeout(Some(Duration::from_millis(100)));
            let _ = self.stream.write_all(&buf);
            let _ = self.stream.flush();
        }
    }
}

fn statement_name(i: usize) -> String {
    format!("rs{i}")
}

fn encode(p: &Param<'_>, buf: &mut BytesMut) {
    match p {
        Param::Null => {}
        Param::Int8(v) => buf.extend_from_slice(&v.to_be_bytes()),
        Param::Bool(v) => buf.extend_from_slice(&[u8::from(*v)]),
        Param::Bytes(b) => buf.extend_from_slice(b),
        Param::Text(t) => buf.extend_from_slice(t.as_bytes()),
    }
}

pub fn int8(col: Option<&[u8]>) -> Option<i64> {
    let mut c = col?;
    (c.len() == 8).then(|| c.get_i64())
}

pub fn boolean(col: Option<&[u8]>) -> Option<bool> {
    col.and_then(|c| c.first()).map(|b| *b != 0)
}

pub fn text(col: Option<&[u8]>) -> Option<String> {
    col.map(|c| String::from_utf8_lossy(c).into_owned())
}

/// TLS as `sslmode` asks: `verify-full` checks the certificate against the
/// system's trust store (SSL_CERT_FILE / SSL_CERT_DIR honoured) and the
/// host name; `prefer` and `require` encrypt without checking, as libpq.
fn tls_handshake(host: &str, mut tcp: TcpStream, mode: SslMode) -> Result<StreamOwned<ClientConnection, TcpStream>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| protocol(e.to_string()))?;
    let config = if mode == SslMode::VerifyFull {
        let mut roots = RootCertStore::empty();
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        builder.with_root_certificates(roots).with_no_client_auth()
    } else {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(Unchecked(provider))).with_no_client_auth()
    };
    let name = ServerName::try_from(host.to_string()).map_err(|e| protocol(format!("TLS server name {host:?}: {e}")))?;
    let mut tls = ClientConnection::new(Arc::new(config), name).map_err(|e| protocol(e.to_string()))?;
    while tls.is_handshaking() {
        tls.complete_io(&mut tcp)?;
    }
    Ok(StreamOwned::new(tls, tcp))
}

/// Accepts any certificate (sslmode prefer/require) but still checks the
/// handshake's signatures.
#[derive(Debug)]
struct Unchecked(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

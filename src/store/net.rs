//! Reaching a network store, shared by every client (Redis, memcached):
//! connecting within a bound (name resolution included), one deadline per
//! exchange, and the one rule for sending a failed request again.
//!
//! The retry rule. A request that failed on the wire is sent again on a new
//! connection only when that cannot do harm:
//! - it never reached the server (the connect failed, or the connection was
//!   found dead before anything was written): always;
//! - it timed out: never (the server may still be running it, and a second
//!   copy would race the first);
//! - the connection broke after it was sent: only if it is [`Resend::Idempotent`]
//!   (a read; a compare-and-delete of our own lock), never a lock grab or a
//!   fenced write, whose second copy could find the first one's work and
//!   misreport it (a lock add waiting on its own lock, a write reported as
//!   a lost lock though it landed).
//!
//! Before a request goes out on a connection that sat idle, [`idle_ok`]
//! checks in one non-blocking poll that the server did not close it
//! meanwhile (a restart, an idle timeout): such a connection is replaced
//! before sending, so the common "server restarted" case costs no failed
//! request even for requests that must never be sent twice.

use std::io;
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Whether a request may be sent a second time after its connection broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resend {
    /// Running it twice is the same as running it once.
    Idempotent,
    /// A second copy could do or report something the first did not.
    Never,
}

/// Whether a request that failed with `e` may go out again on a new
/// connection. `sent`: some of it was written to the server.
pub fn may_resend(resend: Resend, e: &io::Error, sent: bool) -> bool {
    !sent || (!is_timeout(e) && resend == Resend::Idempotent)
}

pub fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

/// The end of one exchange's time: every read and write of it shares this
/// bound, so a server that trickles its reply cannot hold a request longer
/// than the store's `timeout_ms`.
#[derive(Debug, Clone, Copy)]
pub struct Deadline(Instant);

impl Deadline {
    pub fn after(d: Duration) -> Deadline {
        Deadline(Instant::now() + d)
    }

    /// Time left, at least 1 ms (a zero socket timeout means "forever");
    /// a TimedOut error once it has passed.
    pub fn remaining(&self) -> io::Result<Duration> {
        let left = self.0.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "no reply within timeout_ms"));
        }
        Ok(left.max(Duration::from_millis(1)))
    }
}

/// Whether an idle connection can be sent on: nothing waiting to be read
/// (a closed connection reads as end of file, which poll reports as
/// readable; stray bytes would put the next reply out of step).
pub fn idle_ok(fd: RawFd) -> bool {
    let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd, zero timeout: never blocks.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    n == 0
}

/// Sets the receive timeout of a socket a client crate owns (the mysql
/// crate sets one at connect; a lock wait needs a longer one for a while).
pub fn set_read_timeout(fd: RawFd, t: Duration) -> io::Result<()> {
    let t = t.max(Duration::from_millis(1)); // zero would mean forever
    let tv = libc::timeval { tv_sec: t.as_secs() as libc::time_t, tv_usec: t.subsec_micros() as libc::suseconds_t };
    // SAFETY: a valid timeval of the size given; an invalid fd is an error.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The addresses of `host`, within `timeout`. An IP literal needs no
/// lookup; a name is resolved on a helper thread, because the system
/// resolver has no timeout of its own and a dead DNS server would
/// otherwise hold the request for as long as it pleases.
pub fn resolve(host: &str, port: u16, timeout: Duration) -> io::Result<Vec<SocketAddr>> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let (tx, rx) = mpsc::sync_channel(1);
    let name = host.to_string();
    std::thread::Builder::new()
        .name("rsession-dns".into())
        .spawn(move || {
            let _ = tx.send((name.as_str(), port).to_socket_addrs().map(Iterator::collect::<Vec<_>>));
        })?;
    match rx.recv_timeout(timeout) {
        Ok(found) => found,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("resolving {host} took longer than connect_timeout_ms ({} ms)", timeout.as_millis()),
        )),
    }
}

/// Connects to the first address of `host` that answers, trying each in
/// turn (`localhost` may resolve to ::1 first where the server listens on
/// 127.0.0.1 only), all within `timeout`.
pub fn connect_tcp(host: &str, port: u16, timeout: Duration) -> io::Result<TcpStream> {
    let deadline = Deadline::after(timeout);
    let addrs = resolve(host, port, timeout)?;
    let mut last = io::Error::new(io::ErrorKind::NotFound, format!("{host} has no address"));
    for addr in addrs {
        let left = match deadline.remaining() {
            Ok(left) => left,
            Err(e) => return Err(if last.kind() == io::ErrorKind::NotFound { e } else { last }),
        };
        match TcpStream::connect_timeout(&addr, left) {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Connects to a unix socket within `timeout`. A plain connect blocks while
/// the server's listen queue is full, with no bound; this one does not.
pub fn connect_unix(path: &Path, timeout: Duration) -> io::Result<UnixStream> {
    use std::os::unix::ffi::OsStrExt;
    let deadline = Deadline::after(timeout);
    let bytes = path.as_os_str().as_bytes();
    // SAFETY: sockaddr_un is plain data; zeroed is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    if bytes.len() >= addr.sun_path.len() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "unix socket path too long"));
    }
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (dst, src) in addr.sun_path.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    // SAFETY: plain syscall; the descriptor is owned by the UnixStream below
    // (or closed on every error path by it).
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh socket we own.
    let stream = unsafe { UnixStream::from_raw_fd(fd) };
    let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
    loop {
        // SAFETY: a valid address of the given length.
        let rc = unsafe { libc::connect(fd, (&addr as *const libc::sockaddr_un).cast(), len) };
        if rc == 0 {
            break;
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            // The listen queue is full: try again until the deadline.
            Some(libc::EAGAIN) => {
                std::thread::sleep(deadline.remaining()?.min(Duration::from_millis(1)));
            }
            _ => return Err(e),
        }
    }
    stream.set_nonblocking(false)?;
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsRawFd;

    #[test]
    fn the_retry_rule() {
        let broken = io::Error::new(io::ErrorKind::ConnectionReset, "reset");
        let timeout = io::Error::new(io::ErrorKind::WouldBlock, "timeout");
        assert!(may_resend(Resend::Never, &broken, false), "never sent: always again");
        assert!(may_resend(Resend::Idempotent, &broken, true));
        assert!(!may_resend(Resend::Never, &broken, true));
        assert!(!may_resend(Resend::Idempotent, &timeout, true), "a timeout is never sent again");
    }

    #[test]
    fn a_deadline_runs_out() {
        let d = Deadline::after(Duration::from_millis(20));
        assert!(d.remaining().unwrap() <= Duration::from_millis(20));
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(d.remaining().unwrap_err().kind(), io::ErrorKind::TimedOut);
    }

    #[test]
    fn an_idle_connection_closed_by_the_server_is_noticed_before_sending() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        assert!(idle_ok(client.as_raw_fd()));
        server.write_all(b"x").unwrap();
        std::thread::sleep(Duration::from_millis(20));
        assert!(!idle_ok(client.as_raw_fd()), "stray bytes");
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        drop(listener.accept().unwrap());
        std::thread::sleep(Duration::from_millis(20));
        assert!(!idle_ok(client.as_raw_fd()), "closed by the server");
    }

    #[test]
    fn connect_tries_every_address_and_resolves_names() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(connect_tcp("127.0.0.1", port, Duration::from_secs(1)).is_ok());
        // "localhost" may list ::1 first, where nothing listens.
        assert!(connect_tcp("localhost", port, Duration::from_secs(1)).is_ok());
        assert!(connect_tcp("no-such-host.invalid", port, Duration::from_secs(2)).is_err());
    }

    #[test]
    fn a_full_unix_listen_queue_is_a_timeout_not_a_hang() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        // SAFETY: shrink the queue of our own listening socket.
        assert_eq!(unsafe { libc::listen(listener.as_raw_fd(), 0) }, 0);
        let mut queued = Vec::new();
        let t = Instant::now();
        let err = loop {
            match connect_unix(&path, Duration::from_millis(200)) {
                Ok(s) => queued.push(s),
                Err(e) => break e,
            }
            assert!(queued.len() < 64, "the queue never filled");
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        let _ = listener.accept().unwrap();
    }
}

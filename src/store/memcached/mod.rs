//! The memcached store, over memcached's meta protocol (`mg`/`ms`/`md`/`mn`,
//! memcached ≥ 1.6).
//!
//! Why our own small client rather than the `memcache` crate: its ASCII `add`
//! reports success on an existing key (useless for locks), it spreads keys by
//! `hash % n` (adding a server moves almost every session) and it has no
//! get-and-touch. The meta protocol gives add (`ms … ME`), compare-and-swap on
//! set and delete (`C<cas>`), touch without a rewrite (`mg … T`) and
//! pipelining on one connection — what one-round-trip locking needs.
//!
//! Placement: the session id picks a server on a ketama-style ring (160 md5
//! points per server), so adding or removing one of N servers moves about
//! 1/N of the sessions. The lock (`<prefix><id>:l`) and data (`<prefix><id>:d`)
//! of a session live on the same server, so both go in one pipeline.
//!
//! Locking: acquire = `ms lock ME` (add) + `mg data v c`, one round trip. The
//! lock's CAS and the data's CAS seen at read are kept; write + release =
//! `ms data C<data cas>` (or `ME` for a new session) + `md lock C<lock cas>`,
//! one round trip. If the lock was lost and someone else wrote meanwhile, the
//! data's CAS no longer matches: nothing is overwritten. Waiting is a jittered
//! exponential backoff (first retry within 1 ms, capped at 4 ms). A thread
//! renews held locks every third of the lease by rewriting each with its own
//! value over its own CAS (memcached 1.6.18 has no compare on a touch), so a
//! lock that expired and was taken by another process is never extended; the
//! store releases with the CAS of the last renewal. A dead holder's lock
//! expires within the lease (rounded up to whole seconds, plus one for
//! memcached's one-second clock). The same thread keeps the session's data
//! from expiring while its lock is held.
//!
//! Sessions: `<prefix><id>:d` holds an envelope of metadata and data (see
//! `meta::envelope`); its client flags hold the idle timeout it was given in
//! seconds, so the remaining TTL (`t`) tells the last access without
//! rewriting the item on a lazy write. `<prefix>gen` (on every server) is the
//! generation that `kill_all_sessions()` increments; it is read in the same
//! pipeline as the session, and a session of an older generation reads as
//! missing. `<prefix>u:<md5 of user>` lists a user's session ids, one per
//! line, updated by compare-and-swap when a session's user changes and
//! pruned when listed. (memcached may evict any item, an index too: the
//! registry on memcached is as durable as memcached is.)
//!
//! A server that does not answer within the timeout is skipped for a few
//! seconds with a warning: its sessions read as missing, new ones go to the
//! next server on the ring; requests never hang on it. Kills still go to a
//! session's owner (and to the server standing in for it), so they stick
//! once it is back; a kill that cannot reach the owner is an error.

use std::collections::HashMap;
use std::io::{self, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use md5::{Digest, Md5};
use parking_lot::Mutex;

use self::proto::{Reply, read_reply};
use super::lease::{self, Job, LeaseKeeper};
use super::net::{self, Deadline, Resend};
use super::spin::Spinner;
use super::{
    Backoff, Holder, Listed, LockRequest, LockToken, Locked, Put, Record, Registry, Result, Save, SessionId, Store, UserChange,
    holder_of, lock_value, now_secs,
};
use crate::config::MemcachedConfig;
use crate::error::StoreError;
use crate::meta::envelope;

pub mod proto;

const NAME: &str = "memcached";
/// How long a server that failed is left out of the ring.
const DEAD_FOR: Duration = Duration::from_secs(5);
/// Points per server on the ring.
const POINTS: u32 = 160;
/// memcached's key length limit.
const MAX_KEY: usize = 250;
/// Room the item header and key take beside the value in a slab item.
const ITEM_OVERHEAD: usize = 64 + MAX_KEY;
/// TTLs above 30 days are read by memcached as absolute Unix times.
const RELATIVE_TTL_MAX: u64 = 30 * 24 * 3600;
/// Client flags at or above this are not a timeout in seconds but an
/// absolute expiry, as items written before the flags held timeouts kept.
const FLAGS_ABSOLUTE_FROM: u64 = 1_000_000_000;

fn err(message: impl Into<String>) -> StoreError {
    StoreError::Backend { store: NAME, message: message.into() }
}

/// What went wrong, without the "memcached store:" its message starts with.
fn reason(e: &StoreError) -> String {
    match e {
        StoreError::Backend { message, .. } => message.clone(),
        e => e.to_string(),
    }
}

/// The ring: sorted (point, server index).
#[derive(Debug, Clone)]
pub struct Ring {
    points: Vec<(u32, usize)>,
}

impl Ring {
    pub fn new(servers: &[String]) -> Ring {
        let mut points = Vec::with_capacity(servers.len() * POINTS as usize);
        for (i, name) in servers.iter().enumerate() {
            for n in 0..POINTS / 4 {
                let d = Md5::digest(format!("{name}-{n}").as_bytes());
                for k in 0..4 {
                    points.push((u32::from_le_bytes([d[4 * k], d[4 * k + 1], d[4 * k + 2], d[4 * k + 3]]), i));
                }
            }
        }
        points.sort_unstable();
        Ring { points }
    }

    /// Servers for `key` in ring order, first the owner, without repeats.
    pub fn servers_for(&self, key: &[u8]) -> impl Iterator<Item = usize> + '_ {
        let d = Md5::digest(key);
        let h = u32::from_le_bytes([d[0], d[1], d[2], d[3]]);
        let start = self.points.partition_point(|(p, _)| *p < h);
        let n = self.points.len();
        let mut seen = Vec::new();
        (0..n).filter_map(move |i| {
            let s = self.points[(start + i) % n].1;
            if seen.contains(&s) {
                None
            } else {
                seen.push(s);
                Some(s)
            }
        })
    }
}

/// A socket whose every read and write ends at the deadline of the exchange
/// it serves: a server that trickles its reply cannot hold a request past
/// `timeout_ms` (a per-call timeout would restart at each byte).
struct Bounded {
    stream: TcpStream,
    deadline: Deadline,
}

impl Read for Bounded {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.set_read_timeout(Some(self.deadline.remaining()?))?;
        self.stream.read(buf)
    }
}

type Conn = BufReader<Bounded>;

/// Opens a connection to `host:port`, trying each of its addresses with the
/// name lookup bounded too, for exchanges that end at `deadline`.
fn connect(host: &str, port: u16, connect_timeout: Duration, deadline: Deadline) -> io::Result<Conn> {
    let stream = net::connect_tcp(host, port, connect_timeout)?;
    stream.set_nodelay(true)?;
    Ok(BufReader::new(Bounded { stream, deadline }))
}

/// Whether a pooled connection can carry a request: nothing left unread, and
/// not closed by the server while it sat idle (a restart, an idle timeout).
fn usable(conn: &Conn) -> bool {
    conn.buffer().is_empty() && net::idle_ok(conn.get_ref().stream.as_raw_fd())
}

/// Writes all of `request` by the connection's deadline. On failure, also
/// whether any of it went out (then the server may have run part of it).
fn send(b: &mut Bounded, request: &[u8]) -> std::result::Result<(), (io::Error, bool)> {
    let mut done = 0;
    while done < request.len() {
        let written = b
            .deadline
            .remaining()
            .and_then(|left| b.stream.set_write_timeout(Some(left)))
            .and_then(|()| b.stream.write(&request[done..]));
        match written {
            Ok(0) => return Err((io::Error::new(io::ErrorKind::WriteZero, "the server stopped reading"), done > 0)),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err((e, done > 0)),
        }
    }
    Ok(())
}

/// How one attempt at an exchange ended.
enum Outcome {
    Done(Vec<Reply>),
    /// The server refused a command (`SERVER_ERROR`); every reply was read,
    /// so the connection is in step.
    Refused(proto::Error),
    /// The wire failed; `sent`: some of the request went out.
    Broken(io::Error, bool),
    /// The replies broke the protocol: the connection is out of step.
    Garbled(proto::Error),
}

/// Sends `request` and reads `replies` replies. Every reply is read, even
/// after a server error, so the connection stays in step for the next
/// exchange.
fn talk(conn: &mut Conn, spinner: &mut Spinner, request: &[u8], replies: usize, max_value: usize) -> Outcome {
    if let Err((e, sent)) = send(conn.get_mut(), request) {
        return Outcome::Broken(e, sent);
    }
    if conn.buffer().is_empty() {
        spinner.wait_readable(conn.get_ref().stream.as_raw_fd());
    }
    let mut out = Vec::with_capacity(replies);
    let mut refused = None;
    for _ in 0..replies {
        match read_reply(conn, max_value) {
            Ok(r) => out.push(r),
            Err(e) if e.in_step() => refused = refused.or(Some(e)),
            Err(proto::Error::Io(e)) => return Outcome::Broken(e, true),
            Err(e) => return Outcome::Garbled(e),
        }
    }
    match refused {
        Some(e) => Outcome::Refused(e),
        None => Outcome::Done(out),
    }
}

/// One server: address, its connection, and when it failed last.
struct Server {
    /// `host:port`: its points on the ring, and its name in messages.
    name: String,
    host: String,
    port: u16,
    conn: Option<Conn>,
    dead_until: Option<Instant>,
    spinner: Spinner,
    /// The largest item it stores (`item_size_max`), as it said when last
    /// connected; None: not asked yet, or it did not say.
    item_limit: Option<usize>,
}

/// A held lock as the lease thread renews it, shared by the store and that
/// thread. Each renewal rewrites the lock over its CAS, which gives it a new
/// one; the store releases with the newest.
struct Lease {
    host: String,
    port: u16,
    value: Vec<u8>,
    cas: u64,
    data_key: String,
    /// Released, being released or lost: not renewed again.
    ended: bool,
}

/// Leases the thread renews, by lock key.
type Leases = Arc<Mutex<HashMap<String, Arc<Mutex<Lease>>>>>;

/// What the store remembers of a lock it holds.
struct Held {
    token: LockToken,
    server: usize,
    lease: Arc<Mutex<Lease>>,
    /// CAS of the data as read under the lock; None: there was no data.
    data_cas: Option<u64>,
}

impl Held {
    /// The lock's CAS for releasing it; from now on it is not renewed, so
    /// the CAS stays valid (a renewal under way finishes first).
    fn release_cas(&self) -> u64 {
        let mut lease = self.lease.lock();
        lease.ended = true;
        lease.cas
    }
}

pub struct MemcachedStore {
    servers: Vec<Server>,
    ring: Ring,
    prefix: String,
    connect_timeout: Duration,
    timeout: Duration,
    max_item_size: usize,
    held: HashMap<SessionId, Held>,
    /// The generation each server had when last read, and when: stamped on
    /// sessions created there.
    generations: HashMap<usize, (u64, Instant)>,
    warnings: Vec<String>,
    renewer: Option<LeaseKeeper>,
    leases: Leases,
    /// See [`lease::renewal_enabled`].
    renew_enabled: bool,
}

/// How many times an index update is retried when another writer got in
/// between (compare-and-swap).
const INDEX_RETRIES: usize = 8;

/// A TTL in whole seconds, rounded up; zero means never expire.
fn ttl_secs(ttl: Duration) -> u64 {
    if ttl.is_zero() {
        return 0;
    }
    (ttl.as_millis().div_ceil(1000) as u64).max(1)
}

/// An expiry of `secs` from now as memcached takes it: over 30 days, an
/// absolute Unix time.
fn expiry_arg(secs: u64) -> u64 {
    if secs > RELATIVE_TTL_MAX { now_secs() + secs } else { secs }
}

/// A TTL as memcached takes it; zero means never expire.
fn ttl_arg(ttl: Duration) -> u64 {
    expiry_arg(ttl_secs(ttl))
}

/// The client flags that record a TTL (32 bits: seconds, capped).
fn ttl_flags(ttl: Duration) -> u64 {
    ttl_secs(ttl).min(u64::from(u32::MAX))
}

/// The idle timeout, in seconds, an item's flags recorded at its last write.
fn given_ttl(item: &Reply) -> Option<u64> {
    item.flag('f').filter(|f| (1..FLAGS_ABSOLUTE_FROM).contains(f))
}

/// A lock's TTL: memcached's clock ticks in whole seconds, so an item given
/// T1 can expire at once; one more second keeps a renewed lease continuous.
fn lease_arg(lease: Duration) -> u64 {
    ttl_arg(lease.max(Duration::from_millis(1))) + 1
}

/// The command that reads a session item with what record_of needs.
fn read_item_command(data_key: &str) -> String {
    format!("mg {data_key} v c f t\r\n")
}

/// The commands that read a session and its server's generation.
fn read_commands(data_key: &str, prefix: &str) -> String {
    format!("{}mg {} v\r\n", read_item_command(data_key), generation_key(prefix))
}

/// The key of the generation kill_all moves (one per server).
fn generation_key(prefix: &str) -> String {
    format!("{prefix}gen")
}

/// The id that places a key that is not a session's (a user's index): by
/// the key itself, as for sessions.
fn placement_of(key: &str) -> SessionId {
    SessionId::parse(format!("{:x}", Md5::digest(key.as_bytes())).as_bytes()).expect("hex is a valid id")
}

fn number(r: &Reply) -> u64 {
    r.value.as_deref().and_then(|v| std::str::from_utf8(v).ok()).and_then(|t| t.trim().parse().ok()).unwrap_or(0)
}

impl MemcachedStore {
    pub fn open(config: &MemcachedConfig) -> Result<MemcachedStore> {
        let names: Vec<String> = config.servers.iter().map(|(h, p)| format!("{h}:{p}")).collect();
        let servers = config
            .servers
            .iter()
            .zip(&names)
            .map(|((host, port), name)| Server {
                name: name.clone(),
                host: host.clone(),
                port: *port,
                conn: None,
                dead_until: None,
                spinner: Spinner::default(),
                item_limit: None,
            })
            .collect();
        Ok(MemcachedStore {
            ring: Ring::new(&names),
            servers,
            prefix: config.net.prefix.clone(),
            connect_timeout: config.net.connect_timeout,
            timeout: config.net.timeout,
            max_item_size: config.max_item_size,
            held: HashMap::new(),
            generations: HashMap::new(),
            warnings: Vec::new(),
            renewer: None,
            leases: Leases::default(),
            renew_enabled: lease::renewal_enabled(),
        })
    }

    /// The key of one part of a session. Ids long enough to break memcached's
    /// key limit are replaced by their md5 (still unique per prefix).
    fn key(&self, id: &SessionId, kind: &str) -> String {
        let k = format!("{}{}:{}", self.prefix, id, kind);
        if k.len() <= MAX_KEY {
            return k;
        }
        format!("{}md5-{:x}:{}", self.prefix, Md5::digest(id.as_str().as_bytes()), kind)
    }

    fn is_live(&self, s: usize) -> bool {
        self.servers[s].dead_until.is_none_or(|t| t <= Instant::now())
    }

    /// The session's servers in ring order, the owner first.
    fn ring_order(&self, id: &SessionId) -> Result<Vec<usize>> {
        let key = format!("{}{}", self.prefix, id);
        let order: Vec<usize> = self.ring.servers_for(key.as_bytes()).collect();
        if order.is_empty() {
            return Err(err("no memcached server is configured"));
        }
        Ok(order)
    }

    /// The live server that owns the session now. When every server is left
    /// out, the owner is tried again anyway: with nowhere else to go, each
    /// request probes it, so a restarted single server is used at once.
    fn server_for(&mut self, id: &SessionId) -> Result<usize> {
        let order = self.ring_order(id)?;
        Ok(order.iter().copied().find(|s| self.is_live(*s)).unwrap_or(order[0]))
    }

    /// The server's pooled connection if it is still good, else a new one,
    /// on which the server is asked the largest item it takes.
    fn checkout(&mut self, s: usize, deadline: Deadline) -> io::Result<Conn> {
        if let Some(mut conn) = self.servers[s].conn.take() {
            if usable(&conn) {
                conn.get_mut().deadline = deadline;
                return Ok(conn);
            }
        }
        let server = &mut self.servers[s];
        let mut conn = connect(&server.host, server.port, self.connect_timeout, deadline)?;
        send(conn.get_mut(), b"stats settings\r\n").map_err(|(e, _)| e)?;
        server.item_limit = proto::read_item_size_max(&mut conn).map_err(|e| match e {
            proto::Error::Io(e) => e,
            e => io::Error::other(e.to_string()),
        })?;
        Ok(conn)
    }

    /// The largest item server `s` takes: max_item_size, or less when the
    /// server says so. An item it refused would cost the one it replaces:
    /// memcached deletes the key on a failed set.
    fn item_limit(&mut self, s: usize) -> usize {
        if self.servers[s].item_limit.is_none() && self.servers[s].conn.is_none() && self.is_live(s) {
            // Not connected yet: connect now to ask (a failure here fails
            // the exchange that follows).
            if let Ok(conn) = self.checkout(s, Deadline::after(self.timeout)) {
                self.servers[s].conn = Some(conn);
            }
        }
        self.servers[s].item_limit.map_or(self.max_item_size, |l| l.min(self.max_item_size))
    }

    /// Sends `request` (several commands) to server `s` and reads `replies`
    /// replies, all within one deadline of `timeout_ms`. A request that
    /// failed on the wire goes out again on a new connection only as
    /// [`net::may_resend`] allows, never after a timeout; a server that
    /// timed out, could not be reached or failed twice is left out of the
    /// ring for a while, with a warning.
    fn exchange(&mut self, s: usize, request: &[u8], replies: usize, resend: Resend) -> Result<Vec<Reply>> {
        let deadline = Deadline::after(self.timeout);
        let mut retried = false;
        let why = loop {
            let mut conn = match self.checkout(s, deadline) {
                Ok(c) => c,
                Err(e) => break format!("cannot connect: {e}"),
            };
            let max_value = self.max_item_size;
            let outcome = talk(&mut conn, &mut self.servers[s].spinner, request, replies, max_value);
            let name = &self.servers[s].name;
            match outcome {
                Outcome::Done(out) => {
                    self.servers[s].conn = Some(conn);
                    return Ok(out);
                }
                Outcome::Refused(e) => {
                    let e = err(format!("{name}: {e}"));
                    self.servers[s].conn = Some(conn);
                    return Err(e);
                }
                // Dropped, and not sent again (the server may have run part).
                Outcome::Garbled(e) => return Err(err(format!("{name}: {e}"))),
                Outcome::Broken(e, _) if net::is_timeout(&e) => break e.to_string(),
                Outcome::Broken(e, sent) if !retried && net::may_resend(resend, &e, sent) => retried = true,
                Outcome::Broken(e, _) if retried => break e.to_string(),
                Outcome::Broken(e, _) => {
                    return Err(err(format!(
                        "{name}: the connection broke after the request was sent ({e}); not sent again, as it may have run"
                    )));
                }
            }
        };
        let server = &mut self.servers[s];
        server.dead_until = Some(Instant::now() + DEAD_FOR);
        let msg = format!(
            "memcached store: server {} is not answering ({why}); it is skipped for {} s and its sessions read as missing",
            server.name,
            DEAD_FOR.as_secs()
        );
        self.warnings.push(msg);
        Err(err(format!("{}: {why}", server.name)))
    }

    /// Runs a pipeline on the session's server, moving to the next live
    /// server when the owner is not answering (never back to one that just
    /// failed: a request that timed out there may still run).
    fn on_session(&mut self, id: &SessionId, resend: Resend, build: impl Fn(&Self) -> (Vec<u8>, usize)) -> Result<(usize, Vec<Reply>)> {
        let mut failed = Vec::new();
        loop {
            let s = self.server_for(id)?;
            let (request, n) = build(self);
            let was_live = self.is_live(s);
            match self.exchange(s, &request, n, resend) {
                Ok(r) => {
                    self.servers[s].dead_until = None;
                    return Ok((s, r));
                }
                // Just marked dead: try the next server. An error from a
                // server already left out (the last resort) is final.
                Err(e) if was_live && self.servers[s].dead_until.is_some() => {
                    failed.push(s);
                    if failed.contains(&self.server_for(id)?) {
                        return Err(e);
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Runs a pipeline on the server where this process holds the session's
    /// lock: the lock and the data read under it live there, even if the
    /// ring has moved on since (a server left out or back). Without a lock,
    /// as [`Self::on_session`].
    fn on_locked(&mut self, id: &SessionId, resend: Resend, build: impl Fn(&Self) -> (Vec<u8>, usize)) -> Result<(usize, Vec<Reply>)> {
        match self.held.get(id).map(|h| h.server) {
            Some(s) => {
                let (request, n) = build(self);
                Ok((s, self.exchange(s, &request, n, resend)?))
            }
            None => self.on_session(id, resend, build),
        }
    }

    /// Starts keeping a held lock alive.
    fn keep_alive(&mut self, key: &str, s: usize, lease: &Arc<Mutex<Lease>>, ttl: Duration) {
        if !self.renew_enabled {
            return;
        }
        let (leases, timeout) = (self.leases.clone(), self.timeout);
        let Some(keeper) = LeaseKeeper::get_or_start(&mut self.renewer, &mut self.warnings, NAME, || toucher(leases, timeout)) else {
            return;
        };
        self.leases.lock().insert(key.to_string(), lease.clone());
        keeper.hold(key.to_string(), self.servers[s].name.clone(), ttl);
    }

    /// Stops keeping a lock alive (released or given up).
    fn let_go(&mut self, key: &str) {
        if let Some(keeper) = &self.renewer {
            keeper.drop_key(key);
        }
        self.leases.lock().remove(key);
    }

    /// Deletes our lock if an add whose reply never came took it (the
    /// connection broke after it went out): a failed lock_and_read holds
    /// nothing. Only on a server that answers; elsewhere the lease frees it.
    fn free_if_ours(&mut self, id: &SessionId, lock_key: &str, value: &[u8]) {
        let Ok(s) = self.server_for(id) else { return };
        if !self.is_live(s) {
            return;
        }
        let Ok(r) = self.exchange(s, format!("mg {lock_key} v c\r\n").as_bytes(), 1, Resend::Idempotent) else { return };
        if let (Some(v), Some(cas)) = (r[0].value.as_deref(), r[0].flag('c')) {
            if v == value {
                let _ = self.exchange(s, format!("md {lock_key} C{cas}\r\n").as_bytes(), 1, Resend::Idempotent);
            }
        }
    }
}

/// Renews locks from the lease thread, on its own connections.
fn toucher(leases: Leases, timeout: Duration) -> impl FnMut(Job<'_>) -> bool + Send {
    let mut conns: HashMap<String, Conn> = HashMap::new();
    move |job| {
        // Releases are never handed over: memcached's locks are freed by the request.
        let Job::Renew { key, context: server, ttl } = job else { return true };
        let Some(lease) = leases.lock().get(key).cloned() else { return true }; // released meanwhile
        let mut lease = lease.lock();
        if lease.ended {
            return true;
        }
        let deadline = Deadline::after(timeout);
        let conn = match conns.remove(server) {
            Some(mut c) if usable(&c) => {
                c.get_mut().deadline = deadline;
                Ok(c)
            }
            _ => connect(&lease.host, lease.port, timeout, deadline),
        };
        let Ok(mut conn) = conn else { return false };
        match renew(&mut conn, key, &mut lease, ttl) {
            Ok(renewed) => {
                conns.insert(server.to_string(), conn);
                renewed
            }
            Err(_) => false, // dropped: a fresh connection next tick
        }
    }
}

/// Extends one lock by rewriting it with its own value, compared on the CAS
/// we hold: a lock that expired and was taken over is not ours to extend.
/// Keeps the session's data alive under it too, touching it back to its
/// full timeout once less than two leases of it are left.
fn renew(conn: &mut Conn, key: &str, lease: &mut Lease, ttl: Duration) -> proto::Result<bool> {
    let secs = lease_arg(ttl);
    let mut request = format!("ms {key} {} T{secs} C{} c\r\n", lease.value.len(), lease.cas).into_bytes();
    request.extend_from_slice(&lease.value);
    request.extend_from_slice(format!("\r\nmg {} t f\r\n", lease.data_key).as_bytes());
    send(conn.get_mut(), &request).map_err(|(e, _)| e)?;
    let (lock, data) = (read_reply(conn, 0)?, read_reply(conn, 0)?);
    let (Some(cas), "HD") = (lock.flag('c'), lock.code.as_str()) else {
        lease.ended = true;
        return Ok(false);
    };
    lease.cas = cas;
    let left = data.flag_text('t').and_then(|t| t.parse::<u64>().ok()); // t-1: never expires
    if let (Some(given), Some(left)) = (given_ttl(&data), left) {
        if left < 2 * secs {
            send(conn.get_mut(), format!("mg {} T{}\r\n", lease.data_key, expiry_arg(given)).as_bytes()).map_err(|(e, _)| e)?;
            read_reply(conn, 0)?;
        }
    }
    Ok(true)
}

impl MemcachedStore {
    /// Turns a session item and its server's generation into a record. A
    /// session of an older generation is deleted and reads as missing.
    fn record_of(&mut self, id: &SessionId, s: usize, item: &Reply, generation: &Reply) -> Result<Option<Record>> {
        let generation = number(generation);
        self.generations.insert(s, (generation, Instant::now()));
        let Some(value) = item.value.as_deref() else { return Ok(None) };
        let (meta, data) = envelope::decode(value).map_err(|e| StoreError::corrupt(NAME, id, e))?;
        let mut meta = meta.unwrap_or_default();
        if meta.generation > generation {
            // Only a lost counter (evicted: memcached is a cache) reads
            // lower than a session written under it. Put back the highest
            // generation known, so sessions that a kill_all ended before
            // the loss stay ended once a newer session has been seen.
            let key = generation_key(&self.prefix);
            let g = meta.generation.to_string();
            self.exchange(s, format!("ms {key} {} T0 ME\r\n{g}\r\n", g.len()).as_bytes(), 1, Resend::Idempotent)?;
            self.generations.insert(s, (meta.generation, Instant::now()));
        }
        if meta.generation < generation {
            let key = self.key(id, "d");
            self.exchange(s, format!("md {key}\r\n").as_bytes(), 1, Resend::Idempotent)?;
            if let Some(u) = &meta.user {
                let _ = self.index_update(u, |ids| ids.retain(|i| i != id.as_str()));
            }
            return Ok(None);
        }
        // The item's TTL restarts at every write and touch: what has run
        // of it is the idle time.
        if let (Some(given), Some(left)) = (given_ttl(item), item.flag_text('t')) {
            if let Ok(left) = left.parse::<i64>() {
                if left >= 0 {
                    // memcached counts whole seconds: never before the last
                    // write the item itself records.
                    let idle_since = now_secs().saturating_sub(given.saturating_sub(left as u64));
                    meta.last_access = meta.last_access.max(idle_since);
                }
            }
        }
        Ok(Some(Record { meta, data: data.to_vec() }))
    }

    /// The positions in `ids` grouped by the server that holds each session.
    fn by_server(&mut self, ids: &[SessionId]) -> Result<Vec<(usize, Vec<usize>)>> {
        let mut groups: Vec<(usize, Vec<usize>)> = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            let s = self.server_for(id)?;
            match groups.iter_mut().find(|(g, _)| *g == s) {
                Some((_, v)) => v.push(i),
                None => groups.push((s, vec![i])),
            }
        }
        Ok(groups)
    }

    /// Reads several sessions in one round trip per server (a user's
    /// sessions for the registry), in the order given.
    fn read_many(&mut self, ids: &[SessionId]) -> Result<Vec<Option<Record>>> {
        let mut out: Vec<Option<Record>> = vec![None; ids.len()];
        for (s, group) in self.by_server(ids)? {
            let mut request: String = group.iter().map(|&i| read_item_command(&self.key(&ids[i], "d"))).collect();
            request.push_str(&format!("mg {} v\r\n", generation_key(&self.prefix)));
            match self.exchange(s, request.as_bytes(), group.len() + 1, Resend::Idempotent) {
                Ok(replies) => {
                    let (items, generation) = replies.split_at(group.len());
                    for (&i, item) in group.iter().zip(items) {
                        out[i] = self.record_of(&ids[i], s, item, &generation[0])?;
                    }
                }
                // One at a time, moving to the next live server as reads do.
                Err(_) => {
                    for &i in &group {
                        out[i] = self.read(&ids[i])?;
                    }
                }
            }
        }
        Ok(out)
    }

    /// The servers a kill must reach, the session's ring owner first: it
    /// holds the session once it is back, even while it is being skipped
    /// now. Then where the session may also live: the server its lock was
    /// taken on, and the one standing in for the owner.
    fn kill_targets(&mut self, id: &SessionId) -> Result<Vec<usize>> {
        let mut targets = vec![self.ring_order(id)?[0]];
        for s in [self.held.get(id).map(|h| h.server), Some(self.server_for(id)?)].into_iter().flatten() {
            if !targets.contains(&s) {
                targets.push(s);
            }
        }
        Ok(targets)
    }

    /// The generation of the session's server, as read within the last
    /// second (normally by this request's own read), else asked anew.
    fn generation_for(&mut self, id: &SessionId) -> Result<u64> {
        let s = self.server_for(id)?;
        if let Some((g, at)) = self.generations.get(&s) {
            if at.elapsed() < Duration::from_secs(1) {
                return Ok(*g);
            }
        }
        let key = generation_key(&self.prefix);
        let (s, r) = self.on_session(id, Resend::Idempotent, |_| (format!("mg {key} v\r\n").into_bytes(), 1))?;
        let g = number(&r[0]);
        self.generations.insert(s, (g, Instant::now()));
        Ok(g)
    }

    fn index_key(&self, user: &str) -> String {
        format!("{}u:{:x}", self.prefix, Md5::digest(user.as_bytes()))
    }

    /// Changes a user's index with `change` by compare-and-swap; an empty
    /// index is deleted. Returns the ids as they were.
    fn index_update(&mut self, user: &str, change: impl Fn(&mut Vec<String>)) -> Result<Vec<String>> {
        self.index_update_at(None, user, change)
    }

    /// As [`Self::index_update`], on server `at` when given (a kill reaches
    /// the index's owner even while it is skipped), else where the index's
    /// key places it now.
    fn index_update_at(&mut self, at: Option<usize>, user: &str, change: impl Fn(&mut Vec<String>)) -> Result<Vec<String>> {
        let key = self.index_key(user);
        let read = format!("mg {key} v c\r\n").into_bytes();
        for _ in 0..INDEX_RETRIES {
            let (s, r) = match at {
                Some(s) => (s, self.exchange(s, &read, 1, Resend::Idempotent)?),
                None => self.on_key(&key, Resend::Idempotent, |_| (read.clone(), 1))?,
            };
            let before: Vec<String> = r[0]
                .value
                .as_deref()
                .map(|v| String::from_utf8_lossy(v).lines().filter(|l| !l.is_empty()).map(str::to_string).collect())
                .unwrap_or_default();
            let mut after = before.clone();
            change(&mut after);
            after.sort();
            after.dedup();
            if after == before {
                return Ok(before);
            }
            let cas = r[0].value.as_ref().and(r[0].flag('c'));
            let request = if after.is_empty() {
                match cas {
                    Some(c) => format!("md {key} C{c}\r\n").into_bytes(),
                    None => return Ok(before),
                }
            } else {
                let body = after.join("\n");
                let mode = cas.map_or(" ME".to_string(), |c| format!(" C{c}"));
                let mut req = format!("ms {key} {} T0{mode}\r\n", body.len()).into_bytes();
                req.extend_from_slice(body.as_bytes());
                req.extend_from_slice(b"\r\n");
                req
            };
            let reply = self.exchange(s, &request, 1, Resend::Never)?;
            if matches!(reply[0].code.as_str(), "HD" | "NF") {
                return Ok(before);
            }
        }
        Err(err(format!("the session index of a user kept changing under {INDEX_RETRIES} tries; try again")))
    }

    /// Runs a pipeline on the server that owns `key` (not a session key).
    fn on_key(&mut self, key: &str, resend: Resend, build: impl Fn(&Self) -> (Vec<u8>, usize)) -> Result<(usize, Vec<Reply>)> {
        self.on_session(&placement_of(key), resend, build)
    }
}

impl Store for MemcachedStore {
    fn name(&self) -> &'static str {
        NAME
    }

    fn lock_and_read(&mut self, id: &SessionId, req: &LockRequest) -> Result<Locked> {
        let token = LockToken::random();
        let value = lock_value(&token, &req.holder);
        let (lock_key, data_key) = (self.key(id, "l"), self.key(id, "d"));
        let lease = lease_arg(req.ttl);
        let deadline = Instant::now() + req.wait;
        let mut backoff = Backoff::default();
        loop {
            let added = self.on_session(id, Resend::Never, |me| {
                let mut r = format!("ms {lock_key} {} T{lease} ME c\r\n", value.len()).into_bytes();
                r.extend_from_slice(value.as_bytes());
                r.extend_from_slice(b"\r\n");
                r.extend_from_slice(read_commands(&data_key, &me.prefix).as_bytes());
                (r, 3)
            });
            let (s, replies) = match added {
                Ok(r) => r,
                Err(e) => {
                    self.free_if_ours(id, &lock_key, value.as_bytes());
                    return Err(e);
                }
            };
            if replies[0].code == "HD" {
                let data_cas = replies[1].value.as_ref().and(replies[1].flag('c'));
                let server = &self.servers[s];
                let lease = Arc::new(Mutex::new(Lease {
                    host: server.host.clone(),
                    port: server.port,
                    value: value.clone().into_bytes(),
                    cas: replies[0].flag('c').unwrap_or(0),
                    data_key: data_key.clone(),
                    ended: false,
                }));
                self.keep_alive(&lock_key, s, &lease, req.ttl);
                self.held.insert(id.clone(), Held { token, server: s, lease, data_cas });
                return match self.record_of(id, s, &replies[1], &replies[2]) {
                    Ok(record) => {
                        if record.is_none() {
                            if let Some(h) = self.held.get_mut(id) {
                                h.data_cas = None;
                            }
                        }
                        Ok(Locked::Acquired { token, record })
                    }
                    Err(e) => {
                        let _ = self.unlock(id, token);
                        Err(e)
                    }
                };
            }
            if Instant::now() >= deadline {
                let (_, r) = self.on_session(id, Resend::Idempotent, |_| (format!("mg {lock_key} v\r\n").into_bytes(), 1))?;
                return Ok(Locked::TimedOut { holder: r[0].value.as_deref().map(holder_of) });
            }
            backoff.sleep(deadline);
        }
    }

    fn read(&mut self, id: &SessionId) -> Result<Option<Record>> {
        let key = self.key(id, "d");
        let (s, r) = self.on_session(id, Resend::Idempotent, |me| (read_commands(&key, &me.prefix).into_bytes(), 2))?;
        self.record_of(id, s, &r[0], &r[1])
    }

    fn save(&mut self, id: &SessionId, put: &Put<'_>) -> Result<u64> {
        let mut generation = put.meta.generation;
        let item = match put.what {
            Save::Write(data) => {
                let mut meta = put.meta.clone();
                if !put.existed {
                    generation = self.generation_for(id)?;
                    meta.generation = generation;
                }
                let item = envelope::encode(&meta, data);
                let target = match self.held.get(id) {
                    Some(h) => h.server,
                    None => self.server_for(id)?,
                };
                let limit = self.item_limit(target).saturating_sub(ITEM_OVERHEAD);
                if item.len() > limit {
                    if let super::LockUse::Release(token) = put.lock {
                        let _ = self.unlock(id, token);
                    }
                    return Err(StoreError::TooLarge { size: data.len(), limit });
                }
                Some(item)
            }
            Save::Touch => None,
        };
        let held = match put.lock.token() {
            Some(token) => match self.held.get(id) {
                Some(h) if h.token == token => {
                    let releases = put.lock.releases();
                    Some((releases.then(|| h.release_cas()), h.data_cas))
                }
                _ => return Err(StoreError::LockLost),
            },
            None => None,
        };
        let (lock_key, data_key) = (self.key(id, "l"), self.key(id, "d"));
        let (ttl, flags) = (ttl_arg(put.ttl), ttl_flags(put.ttl));
        let generation_key = generation_key(&self.prefix);
        // A write is fenced (or new): a second copy would find the first's
        // work and misreport it. A touch and a compare-delete of our own
        // lock can go twice.
        let resend = if item.is_some() { Resend::Never } else { Resend::Idempotent };
        let (server, replies) = self.on_locked(id, resend, |_| {
            // Over a session that existed: its server's generation too, in
            // the same round trip, to tell whether a kill_all ended it.
            let mut r = if put.existed { format!("mg {generation_key} v\r\n").into_bytes() } else { Vec::new() };
            r.extend_from_slice(&match &item {
                Some(item) => {
                    // Under a lock: only over the session we read (CAS), or
                    // as a new one if there was none: never over someone
                    // else's, never bringing back a killed one.
                    let mode = match held {
                        Some((_, Some(cas))) => format!(" C{cas}"),
                        Some((_, None)) => " ME".to_string(),
                        None => String::new(),
                    };
                    let mut r = format!("ms {data_key} {} T{ttl} F{flags}{mode} c\r\n", item.len()).into_bytes();
                    r.extend_from_slice(item);
                    r.extend_from_slice(b"\r\n");
                    r
                }
                None => format!("mg {data_key} T{ttl}\r\n").into_bytes(),
            });
            let mut n = 1 + usize::from(put.existed);
            if let Some((Some(lock_cas), _)) = held {
                r.extend_from_slice(format!("md {lock_key} C{lock_cas}\r\n").as_bytes());
                n += 1;
            }
            (r, n)
        })?;
        if matches!(held, Some((Some(_), _))) {
            self.held.remove(id);
            self.let_go(&lock_key);
        }
        let (stored, ended) = match &replies[..] {
            [current, stored, ..] if put.existed => {
                let current = number(current);
                self.generations.insert(server, (current, Instant::now()));
                (stored, current > put.meta.generation)
            }
            [stored, ..] => (stored, false),
            [] => return Err(err("no reply to a write")),
        };
        if ended {
            // What was written carries the old generation and reads as
            // missing, as the session it replaced did.
            return Err(StoreError::Killed);
        }
        match (&item, stored.code.as_str()) {
            (Some(_), "HD") => {
                if let Some(h) = self.held.get_mut(id) {
                    h.data_cas = stored.flag('c');
                }
            }
            (Some(_), "NF") if put.existed => return Err(StoreError::Killed),
            (Some(_), "EX" | "NS" | "NF") => return Err(StoreError::LockLost),
            (None, "HD") => {}
            (None, "EN") if put.existed => return Err(StoreError::Killed),
            (None, "EN") => {}
            (_, code) => return Err(err(format!("unexpected reply {code:?} to a write"))),
        }
        if let UserChange::From(previous) = put.user {
            if let Some(old) = previous {
                self.index_update(old, |ids| ids.retain(|i| i != id.as_str()))?;
            }
            if let Some(new) = &put.meta.user {
                self.index_update(new, |ids| ids.push(id.to_string()))?;
            }
        }
        Ok(generation)
    }

    fn unlock(&mut self, id: &SessionId, token: LockToken) -> Result<()> {
        let Some(h) = self.held.get(id).filter(|h| h.token == token) else { return Ok(()) };
        let (cas, server) = (h.release_cas(), h.server);
        self.held.remove(id);
        let key = self.key(id, "l");
        self.let_go(&key);
        self.exchange(server, format!("md {key} C{cas}\r\n").as_bytes(), 1, Resend::Idempotent)?;
        Ok(())
    }

    /// Deletes the session on its owner (and where it may also live, see
    /// [`MemcachedStore::kill_targets`]); an owner that cannot be reached
    /// makes it an error, as the session would be back with it.
    fn destroy(&mut self, id: &SessionId) -> Result<bool> {
        let key = self.key(id, "d");
        let request = format!("{}md {key}\r\n", read_commands(&key, &self.prefix));
        let (mut live, mut users, mut unreached) = (false, Vec::new(), None);
        for (i, s) in self.kill_targets(id)?.into_iter().enumerate() {
            match self.exchange(s, request.as_bytes(), 3, Resend::Idempotent) {
                Ok(r) => {
                    self.servers[s].dead_until = None;
                    if let Some(record) = self.record_of(id, s, &r[0], &r[1])? {
                        live |= r[2].code == "HD";
                        users.extend(record.meta.user);
                    }
                }
                Err(e) if i == 0 => unreached = Some(e),
                // A stand-in that fails is skipped now: nothing reads there.
                Err(_) => {}
            }
        }
        if let Some(h) = self.held.get_mut(id) {
            h.data_cas = None;
        }
        for u in users {
            self.index_update(&u, |ids| ids.retain(|i| i != id.as_str()))?;
        }
        match unreached {
            Some(e) => Err(err(format!("the session was not ended: its server cannot be reached ({})", reason(&e)))),
            None => Ok(live),
        }
    }

    /// memcached expires idle sessions itself (each item's TTL is its idle
    /// timeout; timeout 0 none), so gc finds nothing to remove.
    fn gc(&mut self, _default_timeout: u32) -> Result<u64> {
        Ok(0)
    }

    fn lock_holder(&mut self, id: &SessionId) -> Result<Option<Holder>> {
        let key = self.key(id, "l");
        let (_, r) = self.on_session(id, Resend::Idempotent, |_| (format!("mg {key} v\r\n").into_bytes(), 1))?;
        Ok(r[0].value.as_deref().map(holder_of))
    }

    fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }
}

impl Registry for MemcachedStore {
    fn user_sessions(&mut self, user: &str) -> Result<Vec<Listed>> {
        let (mut ids, mut gone) = (Vec::new(), Vec::new());
        for raw in self.index_update(user, |_| {})? {
            match SessionId::parse(raw.as_bytes()) {
                Some(id) => ids.push(id),
                None => gone.push(raw),
            }
        }
        let mut out = Vec::with_capacity(ids.len());
        for (id, record) in ids.iter().zip(self.read_many(&ids)?) {
            match record {
                Some(r) if r.meta.user.as_deref() == Some(user) => out.push(Listed { id: id.clone(), meta: r.meta }),
                _ => gone.push(id.to_string()),
            }
        }
        if !gone.is_empty() {
            self.index_update(user, |ids| ids.retain(|i| !gone.contains(i)))?;
        }
        Ok(out)
    }

    /// Ends each of the user's sessions on its owner and where it may also
    /// live (as destroy does), one pipeline per server. The index and the
    /// sessions are read on their owners, even while those are skipped, so
    /// a kill during an outage still finds what the owner will serve once
    /// back; only sessions that are the user's are ended (an index entry
    /// may be stale). Sessions whose owner cannot be reached stay listed,
    /// and the kill is an error, after the others.
    fn kill_user(&mut self, user: &str, keep: Option<&SessionId>) -> Result<u64> {
        let index_targets = self.kill_targets(&placement_of(&self.index_key(user)))?;
        let mut listed = Vec::new();
        for (j, &s) in index_targets.iter().enumerate() {
            match self.index_update_at(Some(s), user, |_| {}) {
                Ok(ids) => listed.extend(ids),
                Err(e) if j == 0 => {
                    return Err(err(format!("kill_user: no session was ended: the user's index cannot be read ({})", reason(&e))));
                }
                Err(_) => {}
            }
        }
        listed.sort();
        listed.dedup();
        let ids: Vec<SessionId> = listed.iter().filter_map(|raw| SessionId::parse(raw.as_bytes())).filter(|id| Some(id) != keep).collect();
        // (server, whether it owns them, positions in ids)
        let mut groups: Vec<(usize, bool, Vec<usize>)> = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            for (j, s) in self.kill_targets(id)?.into_iter().enumerate() {
                match groups.iter_mut().find(|(g, owns, _)| *g == s && *owns == (j == 0)) {
                    Some((_, _, v)) => v.push(i),
                    None => groups.push((s, j == 0, vec![i])),
                }
            }
        }
        let (mut theirs, mut ended, mut unreached) = (vec![false; ids.len()], vec![false; ids.len()], vec![false; ids.len()]);
        let mut failed = Vec::new();
        for (s, owns, group) in &groups {
            let mut request: String = group.iter().map(|&i| read_item_command(&self.key(&ids[i], "d"))).collect();
            request.push_str(&format!("mg {} v\r\n", generation_key(&self.prefix)));
            match self.exchange(*s, request.as_bytes(), group.len() + 1, Resend::Idempotent) {
                Ok(replies) => {
                    let (items, generation) = replies.split_at(group.len());
                    for (&i, item) in group.iter().zip(items) {
                        if let Some(r) = self.record_of(&ids[i], *s, item, &generation[0])? {
                            theirs[i] |= r.meta.user.as_deref() == Some(user);
                        }
                    }
                    if *owns {
                        self.servers[*s].dead_until = None;
                    }
                }
                Err(e) if *owns => {
                    group.iter().for_each(|&i| unreached[i] = true);
                    failed.push(reason(&e));
                }
                Err(_) => {}
            }
        }
        for (s, owns, group) in &groups {
            let doomed: Vec<usize> = group.iter().copied().filter(|&i| theirs[i]).collect();
            if doomed.is_empty() {
                continue;
            }
            let request: String = doomed.iter().map(|&i| format!("md {}\r\n", self.key(&ids[i], "d"))).collect();
            match self.exchange(*s, request.as_bytes(), doomed.len(), Resend::Idempotent) {
                Ok(replies) => {
                    for (&i, r) in doomed.iter().zip(&replies) {
                        ended[i] |= r.code == "HD";
                    }
                }
                Err(e) if *owns => {
                    doomed.iter().for_each(|&i| unreached[i] = true);
                    failed.push(reason(&e));
                }
                Err(_) => {}
            }
        }
        let kept: Vec<String> =
            keep.into_iter().chain(ids.iter().zip(&unreached).filter(|(_, u)| **u).map(|(id, _)| id)).map(|id| id.to_string()).collect();
        for (j, &s) in index_targets.iter().enumerate() {
            match self.index_update_at(Some(s), user, |ids| ids.retain(|i| kept.contains(i))) {
                Err(e) if j == 0 => return Err(e),
                _ => {}
            }
        }
        if !failed.is_empty() {
            let n = unreached.iter().filter(|u| **u).count();
            return Err(err(format!("kill_user: {n} sessions were not ended, their server cannot be reached: {}", failed.join("; "))));
        }
        Ok(ended.iter().filter(|e| **e).count() as u64)
    }

    /// Increments the generation on every server. Where it is missing
    /// (never made, or evicted) it is made at the time in microseconds (or
    /// above the highest generation this process has seen): above any value
    /// it had before, as it grows by one per kill_all and each takes longer
    /// than that. A counter made at 1 after an eviction would end nothing. A server that cannot be reached keeps its sessions: that
    /// is an error, after the others were done.
    fn kill_all(&mut self) -> Result<i64> {
        let key = generation_key(&self.prefix);
        let now_us = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64);
        let start = self.generations.values().map(|(g, _)| g + 1).max().unwrap_or(0).max(now_us);
        let mut failed = Vec::new();
        for s in 0..self.servers.len() {
            match self.exchange(s, format!("ma {key} N0 J{start} v\r\n").as_bytes(), 1, Resend::Never) {
                Ok(r) => {
                    self.generations.insert(s, (number(&r[0]), Instant::now()));
                }
                Err(e) => failed.push(reason(&e)),
            }
        }
        if !failed.is_empty() {
            return Err(err(format!("kill_all: sessions on unreachable servers were not ended: {}", failed.join("; "))));
        }
        Ok(-1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StoreConfig;
    use crate::store::testing::{PrivateMemcached, TTL, data, free_port, id, meta, put, read_data, registry_contract, req};
    use crate::store::LockUse;
    use std::io::BufRead;
    use std::net::TcpListener;
    use std::path::Path;
    use std::sync::atomic::{AtomicBool, Ordering};

    fn store_at(urls: &str, prefix: &str) -> MemcachedStore {
        let path = format!("{urls}?prefix=mtest:{prefix}:{}:&timeout_ms=300&connect_timeout_ms=300", std::process::id());
        let StoreConfig::Memcached(c) = StoreConfig::parse(&path, Path::new("/tmp")).unwrap() else { panic!() };
        MemcachedStore::open(&c).unwrap()
    }

    fn server(var: &str) -> String {
        std::env::var(var).unwrap_or_else(|_| panic!("{var} is not set: run the memcached tests via `make test`"))
    }

    fn store(prefix: &str) -> MemcachedStore {
        store_at(&server("RSESSION_TEST_MEMCACHED"), prefix)
    }

    /// `host:port` of a test server.
    fn addr(var: &str) -> String {
        server(var).trim_start_matches("memcached://").to_string()
    }

    /// Runs one command on the session's server, as a test's own probe.
    fn probe(m: &mut MemcachedStore, s: &SessionId, command: String) -> Reply {
        let srv = m.server_for(s).unwrap();
        m.exchange(srv, command.as_bytes(), 1, Resend::Idempotent).unwrap().remove(0)
    }

    /// A fake server for faults a real memcached never shows: it answers
    /// `stats settings` as memcached does (with no limit), then hands its
    /// first other request's socket to `reply`. One connection only.
    fn fake_server(reply: impl FnOnce(&mut TcpStream) + Send + 'static) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            drop(listener);
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            loop {
                line.clear();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                if !line.starts_with("stats") {
                    break;
                }
                s.write_all(b"END\r\n").unwrap();
            }
            reply(&mut s);
        });
        port
    }

    /// A proxy to `upstream` that, the first time a request containing
    /// `trigger` passes, forwards it and then closes the client's connection
    /// before the reply comes back: "the connection broke after sending".
    fn breaking_proxy(upstream: String, trigger: &'static [u8]) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let fired = Arc::new(AtomicBool::new(false));
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(mut client) = client else { return };
                let mut up = TcpStream::connect(&upstream).unwrap();
                let (mut client_out, mut up_in) = (client.try_clone().unwrap(), up.try_clone().unwrap());
                let broken = Arc::new(AtomicBool::new(false));
                let (fired, broken_out) = (fired.clone(), broken.clone());
                std::thread::spawn(move || {
                    let mut buf = [0u8; 65536];
                    while let Ok(n @ 1..) = up_in.read(&mut buf) {
                        if broken_out.load(Ordering::SeqCst) || client_out.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                });
                std::thread::spawn(move || {
                    let mut buf = [0u8; 65536];
                    while let Ok(n @ 1..) = client.read(&mut buf) {
                        let hit = buf[..n].windows(trigger.len()).any(|w| w == trigger);
                        if hit && !fired.swap(true, Ordering::SeqCst) {
                            broken.store(true, Ordering::SeqCst);
                            let _ = up.write_all(&buf[..n]);
                            let _ = client.shutdown(std::net::Shutdown::Both);
                            return;
                        }
                        if up.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        port
    }

    #[test]
    fn ring_moves_about_one_nth_when_a_server_is_added() {
        for n in [2usize, 3, 5] {
            let names: Vec<String> = (0..n).map(|i| format!("10.0.0.{i}:11211")).collect();
            let mut more = names.clone();
            more.push("10.0.0.99:11211".into());
            let (a, b) = (Ring::new(&names), Ring::new(&more));
            let moved = (0..10_000)
                .filter(|k| {
                    let key = format!("rsess:session{k}");
                    a.servers_for(key.as_bytes()).next() != b.servers_for(key.as_bytes()).next()
                })
                .count();
            let bound = 10_000.0 * (1.0 / (n as f64 + 1.0) + 0.05);
            assert!((moved as f64) <= bound, "{n} servers: {moved} keys moved, bound {bound}");
            assert!(moved > 0);
        }
    }

    #[test]
    fn lock_write_release_and_holder() {
        let (mut a, mut b) = (store("lwr"), store("lwr"));
        let s = id("abc");
        let Locked::Acquired { token, record: None } = a.lock_and_read(&s, &req(0, 5000)).unwrap() else { panic!() };
        assert_eq!(b.lock_holder(&s).unwrap().unwrap().pid, 7);
        let t = Instant::now();
        let Locked::TimedOut { holder: Some(h) } = b.lock_and_read(&s, &req(50, 5000)).unwrap() else { panic!() };
        assert!(t.elapsed() >= Duration::from_millis(50));
        assert_eq!(h.uri, "/t");
        a.save(&s, &put(Save::Write(b"x\0y"), &meta(), TTL, LockUse::Release(token))).unwrap();
        assert!(b.lock_holder(&s).unwrap().is_none());
        let Locked::Acquired { token, record } = b.lock_and_read(&s, &req(0, 5000)).unwrap() else { panic!() };
        assert_eq!(data(record).as_deref(), Some(&b"x\0y"[..]));
        b.save(&s, &put(Save::Touch, &meta(), TTL, LockUse::Release(token))).unwrap();
        assert!(b.destroy(&s).unwrap());
        assert!(!b.exists(&s).unwrap());
    }

    #[test]
    fn a_lost_lock_never_overwrites_the_next_holders_data() {
        let (mut a, mut b) = (store("lost"), store("lost"));
        let s = id("abc");
        b.save(&s, &put(Save::Write(b"before"), &meta(), TTL, LockUse::Unlocked)).unwrap();
        let Locked::Acquired { token, .. } = a.lock_and_read(&s, &req(0, 5000)).unwrap() else { panic!() };
        // The lease ran out and another request took over and wrote.
        let lock_key = a.key(&s, "l");
        let srv = a.server_for(&s).unwrap();
        a.exchange(srv, format!("md {lock_key}\r\n").as_bytes(), 1, Resend::Idempotent).unwrap();
        let Locked::Acquired { token: t2, .. } = b.lock_and_read(&s, &req(0, 5000)).unwrap() else { panic!() };
        b.save(&s, &put(Save::Write(b"theirs"), &meta(), TTL, LockUse::Keep(t2))).unwrap();
        assert!(matches!(a.save(&s, &put(Save::Write(b"mine"), &meta(), TTL, LockUse::Release(token))), Err(StoreError::LockLost)));
        assert_eq!(read_data(&mut b, &s).as_deref(), Some(&b"theirs"[..]));
        assert!(b.lock_holder(&s).unwrap().is_some(), "the loser must not release the winner's lock");
        b.unlock(&s, t2).unwrap();
        assert!(b.lock_holder(&s).unwrap().is_none());
    }

    #[test]
    fn the_lease_is_renewed_while_the_holder_lives() {
        let (mut a, mut b) = (store("lease"), store("lease"));
        let s = id("abc");
        let Locked::Acquired { token, .. } = a.lock_and_read(&s, &req(0, 1000)).unwrap() else { panic!() };
        std::thread::sleep(Duration::from_millis(2500));
        assert!(matches!(b.lock_and_read(&s, &req(0, 1000)).unwrap(), Locked::TimedOut { .. }));
        a.unlock(&s, token).unwrap();
        assert!(matches!(b.lock_and_read(&s, &req(0, 1000)).unwrap(), Locked::Acquired { .. }));
    }

    #[test]
    fn oversized_data_is_refused_and_the_old_data_kept() {
        let mut a = store("big");
        let s = id("abc");
        a.save(&s, &put(Save::Write(b"small"), &meta(), TTL, LockUse::Unlocked)).unwrap();
        let big = vec![b'x'; 2 * 1024 * 1024];
        assert!(matches!(a.save(&s, &put(Save::Write(&big), &meta(), TTL, LockUse::Unlocked)), Err(StoreError::TooLarge { .. })));
        assert_eq!(read_data(&mut a, &s).as_deref(), Some(&b"small"[..]));
    }

    #[test]
    fn a_dead_server_is_skipped_with_a_warning() {
        // A pool with a live server and one where nothing listens.
        let live = server("RSESSION_TEST_MEMCACHED").trim_start_matches("memcached://").to_string();
        let mut m = store_at(&format!("memcached://{live},127.0.0.1:1"), "dead");
        let t = Instant::now();
        for i in 0..20 {
            let s = id(&format!("sess{i}"));
            m.save(&s, &put(Save::Write(b"v"), &meta(), TTL, LockUse::Unlocked)).unwrap();
            assert_eq!(read_data(&mut m, &s).as_deref(), Some(&b"v"[..]));
        }
        assert!(t.elapsed() < Duration::from_secs(3));
        let w = m.take_warnings();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("127.0.0.1:1") && w[0].contains("skipped"));
    }

    #[test]
    fn long_ids_fit_memcached_keys() {
        let mut a = store("long");
        let s = id(&"a".repeat(256));
        a.save(&s, &put(Save::Write(b"v"), &meta(), TTL, LockUse::Unlocked)).unwrap();
        assert_eq!(read_data(&mut a, &s).as_deref(), Some(&b"v"[..]));
        assert!(a.key(&s, "d").len() <= MAX_KEY);
    }

    #[test]
    fn ttls_past_thirty_days_become_absolute() {
        assert_eq!(ttl_arg(Duration::from_millis(1500)), 2);
        assert!(ttl_arg(Duration::from_secs(40 * 24 * 3600)) > 1_700_000_000);
    }

    #[test]
    fn registry() {
        registry_contract(&|| Box::new(store("registry")));
    }

    #[test]
    fn a_users_sessions_on_two_servers_are_listed_and_killed() {
        let two = format!("{},{}", server("RSESSION_TEST_MEMCACHED"), server("RSESSION_TEST_MEMCACHED_2").trim_start_matches("memcached://"));
        let mut m = store_at(&two, "two");
        let ids: Vec<SessionId> = (0..12).map(|i| id(&format!("twoserv{i}"))).collect();
        for s in &ids {
            crate::store::testing::write_for(&mut m, s, "ann", b"v");
        }
        let on: std::collections::HashSet<usize> = ids.iter().map(|s| m.server_for(s).unwrap()).collect();
        assert_eq!(on.len(), 2, "12 sessions should land on both servers");
        let mut listed: Vec<String> = m.user_sessions("ann").unwrap().into_iter().map(|l| l.id.to_string()).collect();
        listed.sort();
        let mut want: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(listed, want);
        assert_eq!(m.kill_user("ann", Some(&ids[3])).unwrap(), 11);
        assert_eq!(m.user_sessions("ann").unwrap().len(), 1);
        assert!(m.exists(&ids[3]).unwrap() && !m.exists(&ids[4]).unwrap());
    }

    #[test]
    fn a_locked_request_writes_where_it_took_the_lock_when_the_ring_moves() {
        let two = format!("{},{}", server("RSESSION_TEST_MEMCACHED"), server("RSESSION_TEST_MEMCACHED_2").trim_start_matches("memcached://"));
        let mut m = store_at(&two, "pin");
        let s = id("pinnedsession");
        let owner = m.server_for(&s).unwrap();
        // The owner is left out for a while: the session lives on the other.
        m.servers[owner].dead_until = Some(Instant::now() + Duration::from_secs(60));
        let other = m.server_for(&s).unwrap();
        assert_ne!(owner, other);
        m.save(&s, &put(Save::Write(b"first"), &meta(), TTL, LockUse::Unlocked)).unwrap();
        let Locked::Acquired { token, record } = m.lock_and_read(&s, &req(0, 5000)).unwrap() else { panic!() };
        let record = record.expect("written on the other server");
        // The owner comes back in the middle of the request.
        m.servers[owner].dead_until = None;
        let mut p = put(Save::Write(b"second"), &record.meta, TTL, LockUse::Release(token));
        p.existed = true;
        m.save(&s, &p).expect("the write goes where the lock is, not to the revived owner");
        let key = m.key(&s, "d");
        let r = m.exchange(other, format!("mg {key} v\r\n").as_bytes(), 1, Resend::Idempotent).unwrap();
        let (_, data) = envelope::decode(r[0].value.as_deref().unwrap()).unwrap();
        assert_eq!(data, b"second");
        let lock = m.key(&s, "l");
        assert_eq!(m.exchange(other, format!("mg {lock} v\r\n").as_bytes(), 1, Resend::Idempotent).unwrap()[0].code, "EN", "lock released");
    }

    #[test]
    fn an_evicted_generation_is_restored_from_a_newer_session() {
        let mut a = store("genloss");
        let (old, new) = (id("old"), id("new"));
        a.save(&old, &put(Save::Write(b"old"), &meta(), TTL, LockUse::Unlocked)).unwrap();
        a.kill_all().unwrap();
        a.save(&new, &put(Save::Write(b"new"), &meta(), TTL, LockUse::Unlocked)).unwrap();
        // memcached evicts the counter; a fresh worker knows nothing of it.
        let key = generation_key(&a.prefix);
        a.exchange(0, format!("md {key}\r\n").as_bytes(), 1, Resend::Idempotent).unwrap();
        let mut b = store("genloss");
        assert_eq!(read_data(&mut b, &new).as_deref(), Some(&b"new"[..]));
        assert_eq!(read_data(&mut b, &old), None, "the kill_all before the eviction must still hold");
    }

    #[test]
    fn last_access_comes_from_the_remaining_ttl() {
        let mut a = store("access");
        let s = id("abc");
        let old = crate::meta::Meta { last_access: now_secs() - 500, ..meta() };
        a.save(&s, &put(Save::Write(b"x"), &old, Duration::from_secs(1000), LockUse::Unlocked)).unwrap();
        let seen = a.read(&s).unwrap().unwrap().meta.last_access;
        assert!(seen + 3 >= now_secs(), "{seen}");
    }

    #[test]
    fn a_command_the_server_refuses_leaves_the_pipeline_in_step() {
        // A server whose item limit (1 KiB) is below max_item_size (1 MiB).
        let mut m = store_at(&server("RSESSION_TEST_MEMCACHED_SMALL"), "small");
        let (a, b) = (id("olddata"), id("other"));
        m.save(&a, &put(Save::Write(b"old"), &meta(), TTL, LockUse::Unlocked)).unwrap();
        m.save(&b, &put(Save::Write(b"theirs"), &meta(), TTL, LockUse::Unlocked)).unwrap();
        let big = vec![b'x'; 2048];
        // The server said its limit at connect: refused before it is sent,
        // so memcached does not delete the old item as a failed set would.
        let e = m.save(&a, &put(Save::Write(&big), &meta(), TTL, LockUse::Unlocked)).unwrap_err();
        assert!(matches!(e, StoreError::TooLarge { limit, .. } if limit < 1024), "{e}");
        assert_eq!(read_data(&mut m, &a).as_deref(), Some(&b"old"[..]));

        // A lock add the server refuses (its value, with the URI, is too
        // large), first of three commands: the replies after it are read.
        let mut long = req(0, 5000);
        long.holder.uri = "/".repeat(2048);
        let e = m.lock_and_read(&id("longuri"), &long).unwrap_err();
        assert!(e.to_string().contains("too large"), "{e}");
        assert_eq!(read_data(&mut m, &b).as_deref(), Some(&b"theirs"[..]), "a read gets its own reply");

        // A locked write the server refuses (the store's idea of its limit
        // lost): the lock release after it in the pipeline is read too.
        let c = id("refusedwrite");
        let Locked::Acquired { token, record: None } = m.lock_and_read(&c, &req(0, 5000)).unwrap() else { panic!() };
        let srv = m.server_for(&c).unwrap();
        m.servers[srv].item_limit = None;
        let e = m.save(&c, &put(Save::Write(&big), &meta(), TTL, LockUse::Release(token))).unwrap_err();
        assert!(e.to_string().contains("too large"), "{e}");
        m.unlock(&c, token).unwrap(); // as the engine does after a failed save

        // Every next operation on the same store gets its own replies.
        assert_eq!(read_data(&mut m, &b).as_deref(), Some(&b"theirs"[..]));
        assert_eq!(read_data(&mut m, &a).as_deref(), Some(&b"old"[..]));
        let d = id("freelock");
        let Locked::Acquired { token, record: None } = m.lock_and_read(&d, &req(0, 5000)).unwrap() else {
            panic!("a free lock is taken at once")
        };
        m.save(&d, &put(Save::Write(b"dd"), &meta(), TTL, LockUse::Release(token))).unwrap();
        assert_eq!(read_data(&mut m, &d).as_deref(), Some(&b"dd"[..]));
        assert!(m.lock_holder(&d).unwrap().is_none());
        assert!(m.lock_holder(&c).unwrap().is_none());
    }

    #[test]
    fn a_huge_announced_value_is_an_error_not_an_abort() {
        let port = fake_server(|s| {
            let _ = s.write_all(b"VA 17592186044416\r\n");
            std::thread::sleep(Duration::from_millis(500));
        });
        let mut m = store_at(&format!("memcached://127.0.0.1:{port}"), "huge");
        let e = m.read(&id("abc")).unwrap_err();
        assert!(e.to_string().contains("17592186044416"), "{e}");
    }

    #[test]
    fn a_trickling_reply_is_cut_at_the_timeout() {
        // One byte every 100 ms: each read is quick, the reply never ends.
        let port = fake_server(|s| {
            let _ = s.write_all(b"HD");
            for _ in 0..50 {
                std::thread::sleep(Duration::from_millis(100));
                if s.write_all(b" ").is_err() {
                    return;
                }
            }
            let _ = s.write_all(b"\r\nEN\r\n");
        });
        let mut m = store_at(&format!("memcached://127.0.0.1:{port}"), "trickle"); // timeout_ms=300
        let t = Instant::now();
        assert!(m.read(&id("abc")).is_err());
        assert!(t.elapsed() < Duration::from_millis(1000), "{:?}", t.elapsed());
        let w = m.take_warnings();
        assert!(w.iter().any(|w| w.contains("is not answering")), "{w:?}");
    }

    #[test]
    fn a_lock_add_whose_reply_was_lost_is_not_sent_again() {
        let port = breaking_proxy(addr("RSESSION_TEST_MEMCACHED"), b" ME c\r\n");
        let mut m = store_at(&format!("memcached://127.0.0.1:{port}"), "resendlock");
        let s = id("abc");
        let t = Instant::now();
        // Sent again, the add would find its own lock and wait on it.
        let first = m.lock_and_read(&s, &req(1000, 5000));
        assert!(first.is_err(), "{first:?}");
        assert!(t.elapsed() < Duration::from_millis(900), "{:?}", t.elapsed());
        // The lock the lost add took is ours, and was freed.
        let Ok(Locked::Acquired { token, .. }) = m.lock_and_read(&s, &req(0, 5000)) else {
            panic!("the lost add still holds the lock")
        };
        m.unlock(&s, token).unwrap();
    }

    #[test]
    fn a_fenced_write_whose_reply_was_lost_is_not_sent_again() {
        let port = breaking_proxy(addr("RSESSION_TEST_MEMCACHED"), b"\r\nmd ");
        let mut m = store_at(&format!("memcached://127.0.0.1:{port}"), "resendwrite");
        let s = id("abc");
        let Locked::Acquired { token, .. } = m.lock_and_read(&s, &req(0, 5000)).unwrap() else { panic!() };
        // Sent again, the write would find the first copy's CAS and report
        // a lost lock, though the first copy wrote.
        let e = m.save(&s, &put(Save::Write(b"mine"), &meta(), TTL, LockUse::Release(token))).unwrap_err();
        assert!(!matches!(e, StoreError::LockLost), "{e}");
        assert!(e.to_string().contains("not sent again"), "{e}");
        m.unlock(&s, token).unwrap();
        assert_eq!(read_data(&mut m, &s).as_deref(), Some(&b"mine"[..]));
    }

    #[test]
    fn a_restarted_server_costs_no_failed_request() {
        let port = free_port();
        let mc = PrivateMemcached::start(port);
        let mut m = store_at(&format!("memcached://127.0.0.1:{port}"), "restart");
        let s = id("abc");
        m.save(&s, &put(Save::Write(b"v"), &meta(), TTL, LockUse::Unlocked)).unwrap();
        drop(mc);
        let _mc = PrivateMemcached::start(port);
        // A lock add is never sent twice: the closed pooled connection must
        // be noticed before sending, not after.
        let r = m.lock_and_read(&s, &req(0, 5000));
        assert!(matches!(r, Ok(Locked::Acquired { record: None, .. })), "{r:?}");
        assert!(m.take_warnings().is_empty());
    }

    #[test]
    fn servers_named_by_host_are_reached() {
        // `localhost` may resolve to ::1 first, where memcached does not listen.
        let port = addr("RSESSION_TEST_MEMCACHED").rsplit_once(':').unwrap().1.to_string();
        let mut m = store_at(&format!("memcached://localhost:{port}"), "byname");
        let s = id("abc");
        m.save(&s, &put(Save::Write(b"v"), &meta(), TTL, LockUse::Unlocked)).unwrap();
        assert_eq!(read_data(&mut m, &s).as_deref(), Some(&b"v"[..]));
        let Locked::Acquired { token, .. } = m.lock_and_read(&s, &req(0, 5000)).unwrap() else { panic!() };
        std::thread::sleep(Duration::from_millis(500)); // the lease thread connects by name too
        m.unlock(&s, token).unwrap();
    }

    #[test]
    fn kill_all_after_the_counter_was_evicted_still_ends_older_sessions() {
        let mut a = store("genevict");
        a.kill_all().unwrap(); // sessions now carry a generation above 0
        let s = id("old");
        a.save(&s, &put(Save::Write(b"old"), &meta(), TTL, LockUse::Unlocked)).unwrap();
        let key = generation_key(&a.prefix);
        probe(&mut a, &s, format!("md {key}\r\n"));
        let mut b = store("genevict");
        b.kill_all().unwrap();
        assert_eq!(read_data(&mut b, &s), None, "a kill_all after the eviction must end the older session");
        let fresh = id("new");
        b.save(&fresh, &put(Save::Write(b"new"), &meta(), TTL, LockUse::Unlocked)).unwrap();
        assert_eq!(read_data(&mut a, &fresh).as_deref(), Some(&b"new"[..]));
    }

    #[test]
    fn kills_during_the_owners_skip_window_reach_the_owner() {
        let two = format!("{},{}", server("RSESSION_TEST_MEMCACHED"), addr("RSESSION_TEST_MEMCACHED_2"));
        let mut m = store_at(&two, "killowner");
        let (s, t, u) = (id("killedduringoutage"), id("madeduringoutage"), id("usersduringoutage"));
        m.save(&s, &put(Save::Write(b"s"), &meta(), TTL, LockUse::Unlocked)).unwrap();
        crate::store::testing::write_for(&mut m, &u, "kim", b"u");
        // The owners are being skipped (they timed out a moment ago), though
        // they answer again.
        let skip = |m: &mut MemcachedStore, s: &SessionId| {
            let owner = m.ring_order(s).unwrap()[0];
            m.servers[owner].dead_until = Some(Instant::now() + Duration::from_secs(60));
        };
        skip(&mut m, &s);
        assert!(m.destroy(&s).unwrap(), "the owner has it");
        skip(&mut m, &u);
        assert_eq!(m.kill_user("kim", None).unwrap(), 1);
        // Made on the stand-in during the outage: ended there too.
        for srv in &mut m.servers {
            srv.dead_until = None;
        }
        skip(&mut m, &t);
        m.save(&t, &put(Save::Write(b"t"), &meta(), TTL, LockUse::Unlocked)).unwrap();
        assert!(m.destroy(&t).unwrap());
        assert_eq!(read_data(&mut m, &t), None);
        // The owners are back: the kills stuck.
        for srv in &mut m.servers {
            srv.dead_until = None;
        }
        for gone in [&s, &t, &u] {
            assert_eq!(read_data(&mut m, gone), None, "{gone} is live again");
        }
        assert!(m.user_sessions("kim").unwrap().is_empty());
    }

    #[test]
    fn a_kill_that_cannot_reach_the_owner_is_an_error() {
        let mut m = store_at(&format!("memcached://{},127.0.0.1:1", addr("RSESSION_TEST_MEMCACHED")), "killdead");
        // Sessions owned by the dead server, made on the live one.
        let ids: Vec<SessionId> = (0..50).map(|i| id(&format!("kd{i}"))).filter(|s| m.ring_order(s).unwrap()[0] == 1).take(2).collect();
        assert_eq!(ids.len(), 2);
        // A user whose index lives on the live server.
        let user = (0..50).map(|i| format!("lee{i}")).find(|u| m.ring_order(&placement_of(&m.index_key(u))).unwrap()[0] == 0).unwrap();
        m.save(&ids[0], &put(Save::Write(b"v"), &meta(), TTL, LockUse::Unlocked)).unwrap();
        crate::store::testing::write_for(&mut m, &ids[1], &user, b"v");
        let e = m.destroy(&ids[0]).unwrap_err();
        assert!(e.to_string().contains("not ended"), "{e}");
        let e = m.kill_user(&user, None).unwrap_err();
        assert!(e.to_string().contains("not ended"), "{e}");
        let e = m.kill_user(&user, None).unwrap_err();
        assert!(e.to_string().contains("not ended"), "still listed, so a retry tries again: {e}");
        // A user whose index the dead server owns: nothing can be listed.
        let user = (0..50).map(|i| format!("lee{i}")).find(|u| m.ring_order(&placement_of(&m.index_key(u))).unwrap()[0] == 1).unwrap();
        assert!(m.kill_user(&user, None).is_err());
    }

    #[test]
    fn a_touch_past_thirty_days_counts_as_an_access() {
        let mut a = store("remember");
        let s = id("rememberme");
        let ttl = Duration::from_secs(40 * 24 * 3600);
        let old = crate::meta::Meta { last_access: now_secs() - 5000, ..meta() };
        a.save(&s, &put(Save::Write(b"x"), &old, ttl, LockUse::Unlocked)).unwrap();
        let p = Put { existed: true, ..put(Save::Touch, &old, ttl, LockUse::Unlocked) };
        a.save(&s, &p).unwrap();
        let seen = a.read(&s).unwrap().unwrap().meta.last_access;
        assert!(seen + 3 >= now_secs(), "{seen}");
        let key = a.key(&s, "d");
        let r = probe(&mut a, &s, format!("mg {key} f t\r\n"));
        assert_eq!(r.flag('f'), Some(ttl.as_secs()), "the flags hold the timeout, not the expiry");
        assert!(r.flag('t').unwrap() > RELATIVE_TTL_MAX, "{r:?}");
    }

    #[test]
    fn a_stale_renewal_never_extends_another_holders_lock() {
        let (mut a, mut b) = (store("stale"), store("stale"));
        let s = id("abc");
        let Locked::Acquired { .. } = a.lock_and_read(&s, &req(0, 60_000)).unwrap() else { panic!() };
        // A's lease ran out and B took the lock, with a short lease.
        let lock_key = a.key(&s, "l");
        probe(&mut a, &s, format!("md {lock_key}\r\n"));
        let Locked::Acquired { token, .. } = b.lock_and_read(&s, &req(0, 2000)).unwrap() else { panic!() };
        // A's renewal runs now, as a late tick would.
        let srv = a.server_for(&s).unwrap();
        let mut tick = toucher(a.leases.clone(), a.timeout);
        let renew = Job::Renew { key: &lock_key, context: &a.servers[srv].name, ttl: Duration::from_secs(60) };
        assert!(!tick(renew), "not A's lock to renew");
        let r = probe(&mut b, &s, format!("mg {lock_key} t\r\n"));
        assert!(r.flag('t').unwrap() <= 3, "B's lock was extended by A: {r:?}");
        b.unlock(&s, token).unwrap();
        assert!(b.lock_holder(&s).unwrap().is_none());
    }

    #[test]
    fn a_held_session_outlives_its_idle_timeout() {
        let mut a = store("heldttl");
        let s = id("abc");
        let ttl = Duration::from_secs(2);
        a.save(&s, &put(Save::Write(b"before"), &meta(), ttl, LockUse::Unlocked)).unwrap();
        let Locked::Acquired { token, record: Some(rec) } = a.lock_and_read(&s, &req(0, 1000)).unwrap() else { panic!() };
        std::thread::sleep(Duration::from_millis(3500)); // a long request, past the session's TTL
        let p = Put { existed: true, ..put(Save::Write(b"after"), &rec.meta, ttl, LockUse::Release(token)) };
        a.save(&s, &p).expect("the session expired under its holder");
        assert_eq!(read_data(&mut a, &s).as_deref(), Some(&b"after"[..]));
    }
}

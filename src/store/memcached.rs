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
//! touches held locks every third of the lease (touch keeps the CAS), so a
//! dead holder's lock expires within the lease (rounded up to whole seconds,
//! plus one for memcached's one-second clock).
//!
//! A server that does not answer within the timeout is skipped for a few
//! seconds with a warning: its sessions read as missing, new ones go to the
//! next server on the ring; requests never hang on it.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use md5::{Digest, Md5};

use super::lease::LeaseKeeper;
use super::{Holder, LockRequest, LockToken, Locked, Result, Save, SessionId, Store};
use crate::config::MemcachedConfig;
use crate::error::StoreError;

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

fn err(message: impl Into<String>) -> StoreError {
    StoreError::Backend { store: NAME, message: message.into() }
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

/// One server: address, its connection, and when it failed last.
struct Server {
    name: String,
    conn: Option<BufReader<TcpStream>>,
    dead_until: Option<Instant>,
}

/// What the store remembers of a lock it holds.
struct Held {
    token: LockToken,
    server: usize,
    lock_cas: u64,
    /// CAS of the data as read under the lock; None: there was no data.
    data_cas: Option<u64>,
}

pub struct MemcachedStore {
    servers: Vec<Server>,
    ring: Ring,
    prefix: String,
    connect_timeout: Duration,
    timeout: Duration,
    max_item_size: usize,
    held: HashMap<SessionId, Held>,
    warnings: Vec<String>,
    renewer: Option<LeaseKeeper>,
}

/// A reply line split into its code and flags (`VA 3 c5 t10` → "VA", ["3","c5","t10"]).
struct Reply {
    code: String,
    args: Vec<String>,
    value: Option<Vec<u8>>,
}

impl Reply {
    fn flag(&self, f: char) -> Option<u64> {
        self.args.iter().find_map(|a| a.strip_prefix(f).and_then(|v| v.parse().ok()))
    }
}

fn read_reply(r: &mut BufReader<TcpStream>) -> std::io::Result<Reply> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed"));
    }
    let mut parts = line.trim_end().split(' ').map(str::to_string);
    let code = parts.next().unwrap_or_default();
    let mut args: Vec<String> = parts.collect();
    let mut value = None;
    if code == "VA" {
        let len: usize = args
            .first()
            .and_then(|l| l.parse().ok())
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "bad VA line"))?;
        let mut buf = vec![0u8; len + 2];
        r.read_exact(&mut buf)?;
        buf.truncate(len);
        value = Some(buf);
        args.remove(0);
    }
    if code.starts_with("SERVER_ERROR") || code == "CLIENT_ERROR" || code == "ERROR" {
        return Err(std::io::Error::other(line.trim_end().to_string()));
    }
    Ok(Reply { code, args, value })
}

fn ttl_arg(ttl: Duration) -> u64 {
    let secs = ttl.as_millis().div_ceil(1000) as u64;
    if secs > RELATIVE_TTL_MAX {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0) + secs
    } else {
        secs.max(1)
    }
}

/// A lock's TTL: memcached's clock ticks in whole seconds, so an item given
/// T1 can expire at once; one more second keeps a renewed lease continuous.
fn lease_arg(lease: Duration) -> u64 {
    ttl_arg(lease) + 1
}

impl MemcachedStore {
    pub fn open(config: &MemcachedConfig) -> Result<MemcachedStore> {
        let names: Vec<String> = config.servers.iter().map(|(h, p)| format!("{h}:{p}")).collect();
        Ok(MemcachedStore {
            ring: Ring::new(&names),
            servers: names.into_iter().map(|name| Server { name, conn: None, dead_until: None }).collect(),
            prefix: config.net.prefix.clone(),
            connect_timeout: config.net.connect_timeout,
            timeout: config.net.timeout,
            max_item_size: config.max_item_size,
            held: HashMap::new(),
            warnings: Vec::new(),
            renewer: None,
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

    /// The live server that owns the session now. When every server is left
    /// out, the owner is tried again anyway: with nowhere else to go, each
    /// request probes it, so a restarted single server is used at once.
    fn server_for(&mut self, id: &SessionId) -> Result<usize> {
        let now = Instant::now();
        let key = format!("{}{}", self.prefix, id);
        let servers = &self.servers;
        let mut order = self.ring.servers_for(key.as_bytes());
        let owner = order.next().ok_or_else(|| err("no memcached server is configured"))?;
        if servers[owner].dead_until.is_none_or(|t| t <= now) {
            return Ok(owner);
        }
        Ok(order.find(|s| servers[*s].dead_until.is_none_or(|t| t <= now)).unwrap_or(owner))
    }

    fn connect(&self, s: usize) -> std::io::Result<BufReader<TcpStream>> {
        let addr = self.servers[s]
            .name
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| std::io::Error::other("no address"))?;
        let stream = TcpStream::connect_timeout(&addr, self.connect_timeout)?;
        stream.set_read_timeout(Some(self.timeout))?;
        stream.set_write_timeout(Some(self.timeout))?;
        stream.set_nodelay(true)?;
        Ok(BufReader::new(stream))
    }

    /// Sends `request` (several commands) to server `s` and reads `replies`
    /// replies. A broken connection is reopened once; a server that still
    /// fails is left out of the ring for a while, with a warning.
    fn exchange(&mut self, s: usize, request: &[u8], replies: usize) -> Result<Vec<Reply>> {
        let mut last = String::new();
        for _ in 0..2 {
            let conn = match self.servers[s].conn.take() {
                Some(c) => c,
                None => match self.connect(s) {
                    Ok(c) => c,
                    Err(e) => {
                        last = format!("cannot connect: {e}");
                        break;
                    }
                },
            };
            let mut conn = conn;
            let result = conn.get_mut().write_all(request).and_then(|_| {
                let mut out = Vec::with_capacity(replies);
                for _ in 0..replies {
                    out.push(read_reply(&mut conn)?);
                }
                Ok(out)
            });
            match result {
                Ok(out) => {
                    self.servers[s].conn = Some(conn);
                    return Ok(out);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Other => {
                    // The server answered with an error: the connection is fine.
                    self.servers[s].conn = Some(conn);
                    return Err(err(format!("{}: {e}", self.servers[s].name)));
                }
                Err(e) => last = e.to_string(), // dropped: retry on a new connection
            }
        }
        let server = &mut self.servers[s];
        server.dead_until = Some(Instant::now() + DEAD_FOR);
        let msg = format!(
            "memcached store: server {} is not answering ({last}); it is skipped for {} s and its sessions read as missing",
            server.name,
            DEAD_FOR.as_secs()
        );
        self.warnings.push(msg.clone());
        Err(err(format!("{}: {last}", server.name)))
    }

    /// Runs a pipeline on the session's server, moving to the next live
    /// server when the owner is not answering.
    fn on_session(&mut self, id: &SessionId, build: impl Fn(&Self) -> (Vec<u8>, usize)) -> Result<(usize, Vec<Reply>)> {
        loop {
            let s = self.server_for(id)?;
            let (request, n) = build(self);
            let was_live = self.servers[s].dead_until.is_none_or(|t| t <= Instant::now());
            match self.exchange(s, &request, n) {
                Ok(r) => {
                    self.servers[s].dead_until = None;
                    return Ok((s, r));
                }
                // Just marked dead: try the next server. An error from a
                // server already left out (the last resort) is final.
                Err(_) if was_live && self.servers[s].dead_until.is_some() => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Starts (Some(lease)) or stops (None) keeping a held lock alive.
    fn keep_alive(&mut self, s: usize, key: String, lease: Option<Duration>) {
        if std::env::var_os("RSESSION_TEST_NO_RENEW").is_some() {
            return;
        }
        let timeout = self.timeout;
        let keeper = self.renewer.get_or_insert_with(|| LeaseKeeper::start(toucher(timeout)));
        match lease {
            Some(ttl) => keeper.hold(key, self.servers[s].name.clone(), ttl),
            None => keeper.drop_key(&key),
        }
    }
}

/// Touches one lock (touch keeps its CAS) from the lease thread, on its own
/// connections.
fn toucher(timeout: Duration) -> impl FnMut(&str, &str, Duration) + Send {
    let mut conns: HashMap<String, BufReader<TcpStream>> = HashMap::new();
    move |key, server, ttl| {
        let touched = (|| -> std::io::Result<()> {
            if !conns.contains_key(server) {
                let addr = server.to_socket_addrs()?.next().ok_or_else(|| std::io::Error::other("no address"))?;
                let c = TcpStream::connect_timeout(&addr, timeout)?;
                c.set_read_timeout(Some(timeout))?;
                c.set_write_timeout(Some(timeout))?;
                conns.insert(server.to_string(), BufReader::new(c));
            }
            let c = conns.get_mut(server).expect("inserted above");
            c.get_mut().write_all(format!("mg {key} T{}\r\n", lease_arg(ttl)).as_bytes())?;
            read_reply(c).map(|_| ())
        })();
        if touched.is_err() {
            conns.remove(server); // a fresh connection next tick
        }
    }
}

fn holder_of(value: &[u8]) -> Option<Holder> {
    let text = std::str::from_utf8(value).ok()?;
    serde_json::from_str(text.split_once('|')?.1).ok()
}

impl Store for MemcachedStore {
    fn name(&self) -> &'static str {
        NAME
    }

    fn lock_and_read(&mut self, id: &SessionId, req: &LockRequest, _ttl: Duration) -> Result<Locked> {
        let token = LockToken::random();
        let value = format!("{}|{}", token.hex(), serde_json::to_string(&req.holder).unwrap_or_default());
        let (lock_key, data_key) = (self.key(id, "l"), self.key(id, "d"));
        let lease = lease_arg(req.ttl);
        let deadline = Instant::now() + req.wait;
        let mut backoff = Duration::from_micros(500);
        loop {
            let (s, replies) = self.on_session(id, |_| {
                let mut r = format!("ms {lock_key} {} T{lease} ME c\r\n", value.len()).into_bytes();
                r.extend_from_slice(value.as_bytes());
                r.extend_from_slice(format!("\r\nmg {data_key} v c\r\n").as_bytes());
                (r, 2)
            })?;
            let (lock, data) = (&replies[0], &replies[1]);
            if lock.code == "HD" {
                let data_cas = data.value.as_ref().and(data.flag('c'));
                self.held.insert(id.clone(), Held { token, server: s, lock_cas: lock.flag('c').unwrap_or(0), data_cas });
                self.keep_alive(s, lock_key.clone(), Some(req.ttl));
                return Ok(Locked::Acquired { token, data: data.value.clone() });
            }
            if Instant::now() >= deadline {
                let (_, r) = self.on_session(id, |_| (format!("mg {lock_key} v\r\n").into_bytes(), 1))?;
                return Ok(Locked::TimedOut { holder: r[0].value.as_deref().and_then(holder_of) });
            }
            // Jittered exponential backoff, capped small so a handoff is quick.
            let jitter = Duration::from_micros(u64::from(LockToken::random().0 as u16) % 500);
            let nap = (backoff + jitter).min(deadline.saturating_duration_since(Instant::now()));
            std::thread::sleep(nap);
            backoff = (backoff * 2).min(Duration::from_millis(4));
        }
    }

    fn read(&mut self, id: &SessionId, _ttl: Duration) -> Result<Option<Vec<u8>>> {
        let key = self.key(id, "d");
        let (_, r) = self.on_session(id, |_| (format!("mg {key} v\r\n").into_bytes(), 1))?;
        Ok(r.into_iter().next().and_then(|r| r.value))
    }

    fn save(&mut self, id: &SessionId, what: Save<'_>, ttl: Duration, lock: Option<(LockToken, bool)>) -> Result<()> {
        if let Save::Write(data) = what {
            let limit = self.max_item_size.saturating_sub(ITEM_OVERHEAD);
            if data.len() > limit {
                if let Some((token, true)) = lock {
                    let _ = self.unlock(id, token);
                }
                return Err(StoreError::TooLarge { size: data.len(), limit });
            }
        }
        let held = match lock {
            Some((token, release)) => match self.held.get(id) {
                Some(h) if h.token == token => Some((h.lock_cas, h.data_cas, release)),
                _ => return Err(StoreError::LockLost),
            },
            None => None,
        };
        let (lock_key, data_key) = (self.key(id, "l"), self.key(id, "d"));
        let ttl = ttl_arg(ttl);
        let (_, replies) = self.on_session(id, |_| {
            let mut r = match what {
                Save::Write(data) => {
                    // Under a lock: only over the data we read (CAS), or as
                    // new data if there was none: never over someone else's.
                    let mode = match held {
                        Some((_, Some(cas), _)) => format!(" C{cas}"),
                        Some((_, None, _)) => " ME".to_string(),
                        None => String::new(),
                    };
                    let mut r = format!("ms {data_key} {} T{ttl}{mode} c\r\n", data.len()).into_bytes();
                    r.extend_from_slice(data);
                    r.extend_from_slice(b"\r\n");
                    r
                }
                Save::Touch => format!("mg {data_key} T{ttl}\r\n").into_bytes(),
            };
            let mut n = 1;
            if let Some((lock_cas, _, true)) = held {
                r.extend_from_slice(format!("md {lock_key} C{lock_cas}\r\n").as_bytes());
                n = 2;
            }
            (r, n)
        })?;
        let released = held.is_some_and(|(_, _, release)| release);
        if released {
            self.held.remove(id);
            let s = self.server_for(id).unwrap_or(0);
            self.keep_alive(s, lock_key, None);
        }
        let stored = &replies[0];
        match (what, stored.code.as_str()) {
            (Save::Write(_), "HD") => {
                if let Some(h) = self.held.get_mut(id) {
                    h.data_cas = stored.flag('c');
                }
                Ok(())
            }
            (Save::Write(_), "EX" | "NS" | "NF") => Err(StoreError::LockLost),
            (Save::Touch, "HD" | "EN") => Ok(()),
            (_, code) => Err(err(format!("unexpected reply {code:?} to a write"))),
        }
    }

    fn unlock(&mut self, id: &SessionId, token: LockToken) -> Result<()> {
        let Some(h) = self.held.get(id).filter(|h| h.token == token) else { return Ok(()) };
        let (cas, server) = (h.lock_cas, h.server);
        self.held.remove(id);
        let key = self.key(id, "l");
        self.keep_alive(server, key.clone(), None);
        self.on_session(id, |_| (format!("md {key} C{cas}\r\n").into_bytes(), 1))?;
        Ok(())
    }

    fn destroy(&mut self, id: &SessionId) -> Result<bool> {
        let key = self.key(id, "d");
        let (_, r) = self.on_session(id, |_| (format!("md {key}\r\n").into_bytes(), 1))?;
        if let Some(h) = self.held.get_mut(id) {
            h.data_cas = None;
        }
        Ok(r[0].code == "HD")
    }

    fn exists(&mut self, id: &SessionId) -> Result<bool> {
        let key = self.key(id, "d");
        let (_, r) = self.on_session(id, |_| (format!("mg {key}\r\n").into_bytes(), 1))?;
        Ok(r[0].code == "HD")
    }

    /// memcached expires idle sessions itself (the idle timeout is each
    /// item's TTL), so gc finds nothing to remove.
    fn gc(&mut self, _max_idle: Duration) -> Result<u64> {
        Ok(0)
    }

    fn lock_holder(&mut self, id: &SessionId) -> Result<Option<Holder>> {
        let key = self.key(id, "l");
        let (_, r) = self.on_session(id, |_| (format!("mg {key} v\r\n").into_bytes(), 1))?;
        Ok(r[0].value.as_ref().map(|v| {
            holder_of(v).unwrap_or(Holder { host: "?".into(), pid: 0, uri: "?".into(), since_ms: 0 })
        }))
    }

    fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StoreConfig;
    use crate::store::testing::{TTL, id, req};
    use std::path::Path;

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
        let Locked::Acquired { token, data: None } = a.lock_and_read(&s, &req(0, 5000), TTL).unwrap() else { panic!() };
        assert_eq!(b.lock_holder(&s).unwrap().unwrap().pid, 7);
        let t = Instant::now();
        let Locked::TimedOut { holder: Some(h) } = b.lock_and_read(&s, &req(50, 5000), TTL).unwrap() else { panic!() };
        assert!(t.elapsed() >= Duration::from_millis(50));
        assert_eq!(h.uri, "/t");
        a.save(&s, Save::Write(b"x\0y"), TTL, Some((token, true))).unwrap();
        assert!(b.lock_holder(&s).unwrap().is_none());
        let Locked::Acquired { token, data } = b.lock_and_read(&s, &req(0, 5000), TTL).unwrap() else { panic!() };
        assert_eq!(data.as_deref(), Some(&b"x\0y"[..]));
        b.save(&s, Save::Touch, TTL, Some((token, true))).unwrap();
        assert!(b.destroy(&s).unwrap());
        assert!(!b.exists(&s).unwrap());
    }

    #[test]
    fn a_lost_lock_never_overwrites_the_next_holders_data() {
        let (mut a, mut b) = (store("lost"), store("lost"));
        let s = id("abc");
        b.save(&s, Save::Write(b"before"), TTL, None).unwrap();
        let Locked::Acquired { token, .. } = a.lock_and_read(&s, &req(0, 5000), TTL).unwrap() else { panic!() };
        // The lease ran out and another request took over and wrote.
        let lock_key = a.key(&s, "l");
        let srv = a.server_for(&s).unwrap();
        a.exchange(srv, format!("md {lock_key}\r\n").as_bytes(), 1).unwrap();
        let Locked::Acquired { token: t2, .. } = b.lock_and_read(&s, &req(0, 5000), TTL).unwrap() else { panic!() };
        b.save(&s, Save::Write(b"theirs"), TTL, Some((t2, false))).unwrap();
        assert!(matches!(a.save(&s, Save::Write(b"mine"), TTL, Some((token, true))), Err(StoreError::LockLost)));
        assert_eq!(b.read(&s, TTL).unwrap().as_deref(), Some(&b"theirs"[..]));
        assert!(b.lock_holder(&s).unwrap().is_some(), "the loser must not release the winner's lock");
        b.unlock(&s, t2).unwrap();
        assert!(b.lock_holder(&s).unwrap().is_none());
    }

    #[test]
    fn the_lease_is_renewed_while_the_holder_lives() {
        let (mut a, mut b) = (store("lease"), store("lease"));
        let s = id("abc");
        let Locked::Acquired { token, .. } = a.lock_and_read(&s, &req(0, 1000), TTL).unwrap() else { panic!() };
        std::thread::sleep(Duration::from_millis(2500));
        assert!(matches!(b.lock_and_read(&s, &req(0, 1000), TTL).unwrap(), Locked::TimedOut { .. }));
        a.unlock(&s, token).unwrap();
        assert!(matches!(b.lock_and_read(&s, &req(0, 1000), TTL).unwrap(), Locked::Acquired { .. }));
    }

    #[test]
    fn oversized_data_is_refused_and_the_old_data_kept() {
        let mut a = store("big");
        let s = id("abc");
        a.save(&s, Save::Write(b"small"), TTL, None).unwrap();
        let big = vec![b'x'; 2 * 1024 * 1024];
        assert!(matches!(a.save(&s, Save::Write(&big), TTL, None), Err(StoreError::TooLarge { .. })));
        assert_eq!(a.read(&s, TTL).unwrap().as_deref(), Some(&b"small"[..]));
    }

    #[test]
    fn a_dead_server_is_skipped_with_a_warning() {
        // A pool with a live server and one where nothing listens.
        let live = server("RSESSION_TEST_MEMCACHED").trim_start_matches("memcached://").to_string();
        let mut m = store_at(&format!("memcached://{live},127.0.0.1:1"), "dead");
        let t = Instant::now();
        for i in 0..20 {
            let s = id(&format!("sess{i}"));
            m.save(&s, Save::Write(b"v"), TTL, None).unwrap();
            assert_eq!(m.read(&s, TTL).unwrap().as_deref(), Some(&b"v"[..]));
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
        a.save(&s, Save::Write(b"v"), TTL, None).unwrap();
        assert_eq!(a.read(&s, TTL).unwrap().as_deref(), Some(&b"v"[..]));
        assert!(a.key(&s, "d").len() <= MAX_KEY);
    }

    #[test]
    fn ttls_past_thirty_days_become_absolute() {
        assert_eq!(ttl_arg(Duration::from_millis(1500)), 2);
        assert!(ttl_arg(Duration::from_secs(40 * 24 * 3600)) > 1_700_000_000);
    }
}

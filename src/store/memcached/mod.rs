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
//! Sessions: `<prefix><id>:d` holds an envelope of metadata and data (see
//! `meta::envelope`); its client flags hold the TTL it was given, so the
//! remaining TTL (`t`) tells the last access without rewriting the item on
//! a lazy write. `<prefix>gen` (on every server) is the generation that
//! `kill_all_sessions()` increments; it is read in the same pipeline as the
//! session, and a session of an older generation reads as missing.
//! `<prefix>u:<md5 of user>` lists a user's session ids, one per line,
//! updated by compare-and-swap when a session's user changes and pruned
//! when listed. (memcached may evict any item, an index too: the registry
//! on memcached is as durable as memcached is.)
//!
//! A server that does not answer within the timeout is skipped for a few
//! seconds with a warning: its sessions read as missing, new ones go to the
//! next server on the ring; requests never hang on it.

use std::collections::HashMap;
use std::io::{BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use md5::{Digest, Md5};

use self::proto::{Reply, read_reply};
use super::lease::{self, LeaseKeeper};
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
    spinner: Spinner,
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
    /// The generation each server had when last read, and when: stamped on
    /// sessions created there.
    generations: HashMap<usize, (u64, Instant)>,
    warnings: Vec<String>,
    renewer: Option<LeaseKeeper>,
    /// See [`lease::renewal_enabled`].
    renew_enabled: bool,
}

/// How many times an index update is retried when another writer got in
/// between (compare-and-swap).
const INDEX_RETRIES: usize = 8;

/// A TTL as memcached takes it; zero means never expire.
fn ttl_arg(ttl: Duration) -> u64 {
    if ttl.is_zero() {
        return 0;
    }
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

fn number(r: &Reply) -> u64 {
    r.value.as_deref().and_then(|v| std::str::from_utf8(v).ok()).and_then(|t| t.trim().parse().ok()).unwrap_or(0)
}

impl MemcachedStore {
    pub fn open(config: &MemcachedConfig) -> Result<MemcachedStore> {
        let names: Vec<String> = config.servers.iter().map(|(h, p)| format!("{h}:{p}")).collect();
        Ok(MemcachedStore {
            ring: Ring::new(&names),
            servers: names.into_iter().map(|name| Server { name, conn: None, dead_until: None, spinner: Spinner::default() }).collect(),
            prefix: config.net.prefix.clone(),
            connect_timeout: config.net.connect_timeout,
            timeout: config.net.timeout,
            max_item_size: config.max_item_size,
            held: HashMap::new(),
            generations: HashMap::new(),
            warnings: Vec::new(),
            renewer: None,
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
            let spinner = &mut self.servers[s].spinner;
            let max_value = self.max_item_size;
            let sent = conn.get_mut().write_all(request).map_err(proto::Error::Io);
            let result = sent.and_then(|()| {
                if conn.buffer().is_empty() {
                    spinner.wait_readable(conn.get_ref().as_raw_fd());
                }
                // Every reply is read, even after a server error, so the
                // connection stays in step for the next exchange; any
                // other error leaves it out of step, and it is dropped.
                let mut out = Vec::with_capacity(replies);
                let mut refused = None;
                for _ in 0..replies {
                    match read_reply(&mut conn, max_value) {
                        Ok(r) => out.push(r),
                        Err(e) if e.in_step() => refused = refused.or(Some(e)),
                        Err(e) => return Err(e),
                    }
                }
                Ok((out, refused))
            });
            match result {
                Ok((out, None)) => {
                    self.servers[s].conn = Some(conn);
                    return Ok(out);
                }
                Ok((_, Some(e))) => {
                    // The server refused a command: the connection is fine.
                    self.servers[s].conn = Some(conn);
                    return Err(err(format!("{}: {e}", self.servers[s].name)));
                }
                Err(proto::Error::Io(e)) => last = e.to_string(), // dropped: retry on a new connection
                Err(e) => {
                    // Out of step: dropped, and not sent again (the server
                    // may have run part of it).
                    return Err(err(format!("{}: {e}", self.servers[s].name)));
                }
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

    /// Runs a pipeline on the server where this process holds the session's
    /// lock: the lock and the data read under it live there, even if the
    /// ring has moved on since (a server left out or back). Without a lock,
    /// as [`Self::on_session`].
    fn on_locked(&mut self, id: &SessionId, build: impl Fn(&Self) -> (Vec<u8>, usize)) -> Result<(usize, Vec<Reply>)> {
        match self.held.get(id).map(|h| h.server) {
            Some(s) => {
                let (request, n) = build(self);
                Ok((s, self.exchange(s, &request, n)?))
            }
            None => self.on_session(id, build),
        }
    }

    /// Starts (Some(lease)) or stops (None) keeping a held lock alive.
    fn keep_alive(&mut self, s: usize, key: String, lease: Option<Duration>) {
        if !self.renew_enabled {
            return;
        }
        let timeout = self.timeout;
        let Some(keeper) = LeaseKeeper::get_or_start(&mut self.renewer, &mut self.warnings, NAME, || toucher(timeout)) else {
            return;
        };
        match lease {
            Some(ttl) => keeper.hold(key, self.servers[s].name.clone(), ttl),
            None => keeper.drop_key(&key),
        }
    }
}

/// Touches one lock (touch keeps its CAS) from the lease thread, on its own
/// connections.
fn toucher(timeout: Duration) -> impl FnMut(&str, &str, Duration) -> bool + Send {
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
            read_reply(c, 1024).map(|_| ()).map_err(|e| std::io::Error::other(e.to_string()))
        })();
        if touched.is_err() {
            conns.remove(server); // a fresh connection next tick
        }
        touched.is_ok()
    }
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
            self.exchange(s, format!("ms {key} {} T0 ME\r\n{g}\r\n", g.len()).as_bytes(), 1)?;
            self.generations.insert(s, (meta.generation, Instant::now()));
        }
        if meta.generation < generation {
            let key = self.key(id, "d");
            self.exchange(s, format!("md {key}\r\n").as_bytes(), 1)?;
            if let Some(u) = &meta.user {
                let _ = self.index_update(u, |ids| ids.retain(|i| i != id.as_str()));
            }
            return Ok(None);
        }
        // The item's TTL restarts at every write and touch: what has run
        // of it is the idle time.
        if let (Some(given), Some(left)) = (item.flag('f').filter(|f| *f > 0), item.flag_text('t')) {
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
            match self.exchange(s, request.as_bytes(), group.len() + 1) {
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
        let (s, r) = self.on_session(id, |_| (format!("mg {key} v\r\n").into_bytes(), 1))?;
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
        let key = self.index_key(user);
        for _ in 0..INDEX_RETRIES {
            let (s, r) = self.on_key(&key, |_| (format!("mg {key} v c\r\n").into_bytes(), 1))?;
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
            let reply = self.exchange(s, &request, 1)?;
            if matches!(reply[0].code.as_str(), "HD" | "NF") {
                return Ok(before);
            }
        }
        Err(err(format!("the session index of a user kept changing under {INDEX_RETRIES} tries; try again")))
    }

    /// Runs a pipeline on the server that owns `key` (not a session key).
    fn on_key(&mut self, key: &str, build: impl Fn(&Self) -> (Vec<u8>, usize)) -> Result<(usize, Vec<Reply>)> {
        // Placement by the key itself, as for sessions.
        let pseudo = SessionId::parse(format!("{:x}", Md5::digest(key.as_bytes())).as_bytes()).expect("hex is a valid id");
        self.on_session(&pseudo, build)
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
            let (s, replies) = self.on_session(id, |me| {
                let mut r = format!("ms {lock_key} {} T{lease} ME c\r\n", value.len()).into_bytes();
                r.extend_from_slice(value.as_bytes());
                r.extend_from_slice(b"\r\n");
                r.extend_from_slice(read_commands(&data_key, &me.prefix).as_bytes());
                (r, 3)
            })?;
            if replies[0].code == "HD" {
                let data_cas = replies[1].value.as_ref().and(replies[1].flag('c'));
                self.held.insert(id.clone(), Held { token, server: s, lock_cas: replies[0].flag('c').unwrap_or(0), data_cas });
                self.keep_alive(s, lock_key.clone(), Some(req.ttl));
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
                let (_, r) = self.on_session(id, |_| (format!("mg {lock_key} v\r\n").into_bytes(), 1))?;
                return Ok(Locked::TimedOut { holder: r[0].value.as_deref().map(holder_of) });
            }
            backoff.sleep(deadline);
        }
    }

    fn read(&mut self, id: &SessionId) -> Result<Option<Record>> {
        let key = self.key(id, "d");
        let (s, r) = self.on_session(id, |me| (read_commands(&key, &me.prefix).into_bytes(), 2))?;
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
                let limit = self.max_item_size.saturating_sub(ITEM_OVERHEAD);
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
                Some(h) if h.token == token => Some((h.lock_cas, h.data_cas, put.lock.releases())),
                _ => return Err(StoreError::LockLost),
            },
            None => None,
        };
        let (lock_key, data_key) = (self.key(id, "l"), self.key(id, "d"));
        let ttl = ttl_arg(put.ttl);
        let generation_key = generation_key(&self.prefix);
        let (server, replies) = self.on_locked(id, |_| {
            // Over a session that existed: its server's generation too, in
            // the same round trip, to tell whether a kill_all ended it.
            let mut r = if put.existed { format!("mg {generation_key} v\r\n").into_bytes() } else { Vec::new() };
            r.extend_from_slice(&match &item {
                Some(item) => {
                    // Under a lock: only over the session we read (CAS), or
                    // as a new one if there was none: never over someone
                    // else's, never bringing back a killed one.
                    let mode = match held {
                        Some((_, Some(cas), _)) => format!(" C{cas}"),
                        Some((_, None, _)) => " ME".to_string(),
                        None => String::new(),
                    };
                    let mut r = format!("ms {data_key} {} T{ttl} F{ttl}{mode} c\r\n", item.len()).into_bytes();
                    r.extend_from_slice(item);
                    r.extend_from_slice(b"\r\n");
                    r
                }
                None => format!("mg {data_key} T{ttl}\r\n").into_bytes(),
            });
            let mut n = 1 + usize::from(put.existed);
            if let Some((lock_cas, _, true)) = held {
                r.extend_from_slice(format!("md {lock_key} C{lock_cas}\r\n").as_bytes());
                n += 1;
            }
            (r, n)
        })?;
        let released = held.is_some_and(|(_, _, release)| release);
        if released {
            self.held.remove(id);
            self.keep_alive(server, lock_key, None);
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
        let (cas, server) = (h.lock_cas, h.server);
        self.held.remove(id);
        let key = self.key(id, "l");
        self.keep_alive(server, key.clone(), None);
        self.exchange(server, format!("md {key} C{cas}\r\n").as_bytes(), 1)?;
        Ok(())
    }

    fn destroy(&mut self, id: &SessionId) -> Result<bool> {
        let key = self.key(id, "d");
        let (s, r) = self.on_locked(id, |me| (read_commands(&key, &me.prefix).into_bytes(), 2))?;
        let record = self.record_of(id, s, &r[0], &r[1])?;
        let (_, r) = self.on_locked(id, |_| (format!("md {key}\r\n").into_bytes(), 1))?;
        if let Some(h) = self.held.get_mut(id) {
            h.data_cas = None;
        }
        if let Some(u) = record.as_ref().and_then(|r| r.meta.user.as_deref()) {
            self.index_update(u, |ids| ids.retain(|i| i != id.as_str()))?;
        }
        Ok(record.is_some() && r[0].code == "HD")
    }

    /// memcached expires idle sessions itself (each item's TTL is its idle
    /// timeout; timeout 0 none), so gc finds nothing to remove.
    fn gc(&mut self, _default_timeout: u32) -> Result<u64> {
        Ok(0)
    }

    fn lock_holder(&mut self, id: &SessionId) -> Result<Option<Holder>> {
        let key = self.key(id, "l");
        let (_, r) = self.on_session(id, |_| (format!("mg {key} v\r\n").into_bytes(), 1))?;
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

    fn kill_user(&mut self, user: &str, keep: Option<&SessionId>) -> Result<u64> {
        let doomed: Vec<SessionId> = self.user_sessions(user)?.into_iter().map(|l| l.id).filter(|id| Some(id) != keep).collect();
        let mut killed = 0;
        for (s, group) in self.by_server(&doomed)? {
            let request: String = group.iter().map(|&i| format!("md {}\r\n", self.key(&doomed[i], "d"))).collect();
            let replies = match self.exchange(s, request.as_bytes(), group.len()) {
                Ok(r) => r,
                // One at a time, moving to the next live server as reads do.
                Err(_) => group.iter().map(|&i| {
                    let key = self.key(&doomed[i], "d");
                    self.on_session(&doomed[i], |_| (format!("md {key}\r\n").into_bytes(), 1)).map(|(_, mut r)| r.remove(0))
                }).collect::<Result<_>>()?,
            };
            killed += replies.iter().filter(|r| r.code == "HD").count() as u64;
        }
        let keep = keep.map(|k| k.to_string());
        self.index_update(user, |ids| ids.retain(|i| Some(i) == keep.as_ref()))?;
        Ok(killed)
    }

    /// Increments the generation on every server (created at 1 where
    /// missing). A server that cannot be reached keeps its sessions: that is
    /// an error, after the others were done.
    fn kill_all(&mut self) -> Result<i64> {
        let key = generation_key(&self.prefix);
        let mut failed = Vec::new();
        for s in 0..self.servers.len() {
            match self.exchange(s, format!("ma {key} N0 J1 v\r\n").as_bytes(), 1) {
                Ok(r) => {
                    self.generations.insert(s, (number(&r[0]), Instant::now()));
                }
                Err(e) => failed.push(e.to_string()),
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
    use crate::store::testing::{TTL, data, id, meta, put, read_data, registry_contract, req};
    use crate::store::LockUse;
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
        a.exchange(srv, format!("md {lock_key}\r\n").as_bytes(), 1).unwrap();
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
        let r = m.exchange(other, format!("mg {key} v\r\n").as_bytes(), 1).unwrap();
        let (_, data) = envelope::decode(r[0].value.as_deref().unwrap()).unwrap();
        assert_eq!(data, b"second");
        let lock = m.key(&s, "l");
        assert_eq!(m.exchange(other, format!("mg {lock} v\r\n").as_bytes(), 1).unwrap()[0].code, "EN", "lock released");
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
        a.exchange(0, format!("md {key}\r\n").as_bytes(), 1).unwrap();
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
}

//! Where a request's commands go: one server, the master a Sentinel names,
//! or the cluster nodes that serve their keys' slots.
//!
//! A request hands over a batch of [`Op`]s, each a few commands on the keys
//! of one hash slot. Ops bound for one node go out as one pipeline, and
//! the pipelines to different nodes are all written before any reply is
//! read, so a batch costs one round trip however many nodes it reaches
//! (on one server: exactly the pipeline it always was).
//!
//! A cluster's replies may redirect a command, which then did not run: a
//! MOVED slot is recorded and the map read again (`CLUSTER SLOTS`, from
//! any node that answers), an ASK goes to the named node behind an ASKING,
//! TRYAGAIN / CLUSTERDOWN / LOADING back off (at most `timeout_ms` in
//! all), and a READONLY (a master demoted by a failover) reads the map, or
//! asks the sentinels, again. Only the redirected command and those after
//! it in its op run again, so a command never runs twice and the ones
//! after it still see its effect. A broken connection follows the retry
//! rule of [`crate::store::net`], after reading the map again.
//!
//! Connections are opened at first use, one per node, at most
//! [`MAX_CONNECTIONS`] (the least recently used is closed). The map (or
//! the master's address) is learnt once and shared with the lease thread.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::resp::{self, Connection, Reply, Script};
use super::slots::{NodeAddr, Redirect, SlotMap, redirect};
use crate::config::{RedisAddr, RedisConfig};
use crate::store::net::{self, Deadline, Resend};

/// Most nodes a process keeps a connection to.
pub const MAX_CONNECTIONS: usize = 32;
/// Most rounds a batch takes (redirects, back-offs, one resend).
const MAX_ROUNDS: usize = 24;
/// The map, or the master's address, is read again at most this often.
const REFRESH_EVERY: Duration = Duration::from_millis(20);

pub enum Cmd<'a> {
    Plain(Vec<&'a [u8]>),
    Script { script: &'static Script, keys: Vec<&'a [u8]>, args: Vec<&'a [u8]> },
}

/// Commands on the keys of one hash slot, run in order on the node that
/// serves it.
pub struct Op<'a> {
    pub slot: u16,
    pub cmds: Vec<Cmd<'a>>,
    pub resend: Resend,
    /// A blocking command's wait (BLPOP), on top of `timeout_ms`.
    pub block: Option<Duration>,
    /// `WAIT` for this many replicas after the commands; the op's replies
    /// then end with the fewest replicas any of its writes reached.
    pub wait_replicas: u32,
    /// A TRYAGAIN (a slot being migrated, the keys split between two
    /// nodes) ends the op at once rather than being waited out: the caller
    /// has another way.
    pub busy_fails: bool,
}

impl<'a> Op<'a> {
    pub fn new(slot: u16, resend: Resend, cmds: Vec<Cmd<'a>>) -> Op<'a> {
        Op { slot, cmds, resend, block: None, wait_replicas: 0, busy_fails: false }
    }
}

#[derive(Debug)]
pub struct OpError {
    /// The node it failed on (or the cluster or sentinels, when none was known).
    pub node: String,
    pub error: resp::Error,
    /// Some of it may have run on the server.
    pub sent: bool,
    /// No node could be reached for it: nothing was sent this time.
    pub unreachable: bool,
}

pub type Outcome = Result<Vec<Reply>, OpError>;

/// Where keys live, shared by a store and its lease thread.
enum Directory {
    /// One server (or the replicas behind it): every key.
    Single(RedisAddr),
    Cluster { seeds: Vec<NodeAddr>, map: Option<SlotMap>, stale: bool, read_at: Option<Instant> },
    Sentinel { sentinels: Vec<NodeAddr>, name: String, password: Option<String>, master: Option<NodeAddr>, read_at: Option<Instant> },
}

struct Link {
    addr: RedisAddr,
    conn: Connection,
    used: u64,
}

pub struct Router {
    config: RedisConfig,
    directory: Arc<Mutex<Directory>>,
    links: Vec<Link>,
    /// Counts link uses; `round_tick` is its value when the round began
    /// (links used since carry pipelines and are never closed to make room).
    tick: u64,
    round_tick: u64,
    /// A Sentinel's master: checked with ROLE on connecting.
    check_role: bool,
    /// Why the map or the master could not be learnt, the last time.
    discovery_failed: Option<String>,
}

/// How an address shows in messages.
pub fn describe(addr: &RedisAddr) -> String {
    match addr {
        RedisAddr::Tcp { host, port, tls } => {
            let h = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
            if *tls { format!("tls {h}") } else { h }
        }
        RedisAddr::Unix { path } => path.display().to_string(),
        RedisAddr::Cluster { seeds, tls } => {
            let list: Vec<String> = seeds.iter().map(|(h, p)| format!("{h}:{p}")).collect();
            format!("{}cluster {}", if *tls { "tls " } else { "" }, list.join(","))
        }
        RedisAddr::Sentinel { master, .. } => format!("sentinel master {master}"),
    }
}

fn to_nodes(list: &[(String, u16)]) -> Vec<NodeAddr> {
    list.iter().map(|(host, port)| NodeAddr { host: host.clone(), port: *port }).collect()
}

/// The state of one op while its batch runs.
struct Running {
    next: usize,
    ask: Option<NodeAddr>,
    /// Per command: send the script whole (the node lacked it).
    whole: Vec<bool>,
    replies: Vec<Reply>,
    acks: Option<i64>,
    /// Some command of it got a reply, or went out on a connection that broke.
    ran: bool,
    resent: bool,
    unreachable_retried: bool,
    /// Why it is still waiting, for the message if it never ends.
    pending_reason: Option<String>,
    done: Option<Outcome>,
}

/// What one round learnt besides the replies.
#[derive(Default)]
struct Round {
    refresh: bool,
    back_off: bool,
}

impl Router {
    pub fn new(config: &RedisConfig) -> Router {
        let directory = match &config.addr {
            RedisAddr::Cluster { seeds, .. } => Directory::Cluster { seeds: to_nodes(seeds), map: None, stale: false, read_at: None },
            RedisAddr::Sentinel { sentinels, master, sentinel_password } => Directory::Sentinel {
                sentinels: to_nodes(sentinels),
                name: master.clone(),
                password: sentinel_password.clone(),
                master: None,
                read_at: None,
            },
            single => Directory::Single(single.clone()),
        };
        let check_role = matches!(directory, Directory::Sentinel { .. });
        Router {
            config: config.clone(),
            directory: Arc::new(Mutex::new(directory)),
            links: Vec::new(),
            tick: 0,
            round_tick: 0,
            check_role,
            discovery_failed: None,
        }
    }

    /// A router for another thread: its own connections, the same map.
    pub fn sibling(&self) -> Router {
        Router {
            config: self.config.clone(),
            directory: self.directory.clone(),
            links: Vec::new(),
            tick: 0,
            round_tick: 0,
            check_role: self.check_role,
            discovery_failed: None,
        }
    }

    /// Where the store is, for messages.
    pub fn describe(&self) -> String {
        describe(&self.config.addr)
    }

    /// Whether the keys of different slots can be on different servers.
    pub fn is_cluster(&self) -> bool {
        matches!(&*self.directory.lock(), Directory::Cluster { .. })
    }

    fn node_addr(&self, node: &NodeAddr) -> RedisAddr {
        let tls = matches!(&self.config.addr, RedisAddr::Cluster { tls: true, .. });
        RedisAddr::Tcp { host: node.host.clone(), port: node.port, tls }
    }

    /// The node serving `slot` now, learning the map or the master first
    /// if need be.
    fn resolve(&mut self, slot: u16) -> Result<RedisAddr, OpError> {
        let stale = match &*self.directory.lock() {
            Directory::Single(addr) => return Ok(addr.clone()),
            Directory::Cluster { stale, .. } => *stale,
            Directory::Sentinel { .. } => false,
        };
        if stale {
            // A node failed since the map was read: read it again (at most
            // every REFRESH_EVERY).
            self.refresh(false);
        }
        let known = match &*self.directory.lock() {
            Directory::Single(addr) => return Ok(addr.clone()),
            Directory::Cluster { map, .. } => map.as_ref().map(|m| m.master_of(slot).cloned()),
            Directory::Sentinel { master, .. } => master.clone().map(Some),
        };
        let node = match known {
            Some(node) => node,
            None => {
                self.refresh(true);
                match &*self.directory.lock() {
                    Directory::Cluster { map, .. } => map.as_ref().map(|m| m.master_of(slot).cloned()),
                    Directory::Sentinel { master, .. } => master.clone().map(Some),
                    Directory::Single(_) => None,
                }
                .ok_or_else(|| self.discovery_error())?
            }
        };
        match node {
            Some(node) => Ok(self.node_addr(&node)),
            None => Err(OpError {
                node: describe(&self.config.addr),
                error: resp::Error::Server(format!("CLUSTERDOWN no node serves hash slot {slot}")),
                sent: false,
                unreachable: true,
            }),
        }
    }

    fn discovery_error(&self) -> OpError {
        let what = match &self.config.addr {
            RedisAddr::Cluster { .. } => "no seed node answered CLUSTER SLOTS",
            _ => "no sentinel named the master",
        };
        let why = self.discovery_failed.as_deref().map(|w| format!(" (last: {w})")).unwrap_or_default();
        OpError {
            node: describe(&self.config.addr),
            error: resp::Error::Io(std::io::Error::new(std::io::ErrorKind::NotConnected, format!("{what}{why}"))),
            sent: false,
            unreachable: true,
        }
    }

    /// Reads the slot map (or asks the sentinels for the master) again,
    /// unless that was done moments ago; `now` ignores that limit (nothing
    /// is known yet). Failures leave what was known.
    fn refresh(&mut self, now: bool) {
        enum Ask {
            Cluster(Vec<NodeAddr>),
            Sentinel(Vec<NodeAddr>, String, Option<String>),
        }
        let ask = {
            let mut dir = self.directory.lock();
            match &mut *dir {
                Directory::Single(_) => return,
                Directory::Cluster { seeds, map, read_at, stale, .. } => {
                    if !now && read_at.is_some_and(|t| t.elapsed() < REFRESH_EVERY) {
                        return;
                    }
                    *read_at = Some(Instant::now());
                    *stale = false;
                    // The masters known, then the seeds.
                    let mut nodes: Vec<NodeAddr> = map.as_ref().map(|m| m.masters.clone()).unwrap_or_default();
                    nodes.extend(seeds.iter().filter(|s| !nodes.contains(s)).cloned().collect::<Vec<_>>());
                    Ask::Cluster(nodes)
                }
                Directory::Sentinel { sentinels, name, password, read_at, .. } => {
                    if !now && read_at.is_some_and(|t| t.elapsed() < REFRESH_EVERY) {
                        return;
                    }
                    *read_at = Some(Instant::now());
                    Ask::Sentinel(sentinels.clone(), name.clone(), password.clone())
                }
            }
        };
        match ask {
            Ask::Cluster(nodes) => {
                for node in nodes {
                    let addr = self.node_addr(&node);
                    let reply = self.link(&addr).and_then(|i| self.links[i].conn.query_one(&[b"CLUSTER", b"SLOTS"]));
                    let map = match reply {
                        Ok(r) => SlotMap::parse(&r, &node),
                        Err(e) => {
                            self.drop_link(&addr);
                            Err(e.to_string())
                        }
                    };
                    match map {
                        Ok(map) => {
                            if let Directory::Cluster { map: m, .. } = &mut *self.directory.lock() {
                                *m = Some(map);
                            }
                            self.discovery_failed = None;
                            return;
                        }
                        Err(e) => self.discovery_failed = Some(format!("{node}: {e}")),
                    }
                }
            }
            Ask::Sentinel(sentinels, name, password) => {
                for (i, sentinel) in sentinels.iter().enumerate() {
                    match self.ask_sentinel(sentinel, &name, &password) {
                        Ok(master) => {
                            if let Directory::Sentinel { master: m, sentinels: list, .. } = &mut *self.directory.lock() {
                                *m = Some(master);
                                // The one that answered is asked first next time.
                                if i > 0 && i < list.len() {
                                    let s = list.remove(i);
                                    list.insert(0, s);
                                }
                            }
                            self.discovery_failed = None;
                            return;
                        }
                        Err(e) => self.discovery_failed = Some(format!("sentinel {sentinel}: {e}")),
                    }
                }
            }
        }
    }

    /// `SENTINEL get-master-addr-by-name`, on a connection of its own.
    fn ask_sentinel(&self, sentinel: &NodeAddr, name: &str, password: &Option<String>) -> resp::Result<NodeAddr> {
        let config = RedisConfig {
            addr: RedisAddr::Tcp { host: sentinel.host.clone(), port: sentinel.port, tls: false },
            username: None,
            password: password.clone(),
            db: 0,
            net: self.config.net.clone(),
            wait_replicas: 0,
        };
        let mut conn = Connection::open(&config)?;
        let reply = conn.query_one(&[b"SENTINEL", b"get-master-addr-by-name", name.as_bytes()])?;
        let bad = || resp::Error::Server(format!("sentinel {sentinel} knows no master named {name:?}"));
        let Reply::Array(parts) = reply else { return Err(bad()) };
        let (Some(Reply::Bytes(host)), Some(Reply::Bytes(port))) = (parts.first(), parts.get(1)) else { return Err(bad()) };
        let port = std::str::from_utf8(port).ok().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        Ok(NodeAddr { host: String::from_utf8_lossy(host).into_owned(), port })
    }

    /// Forgets the master (Sentinel) so that the next request asks again,
    /// or marks the slot map for reading again (cluster).
    fn suspect(&mut self) {
        match &mut *self.directory.lock() {
            Directory::Cluster { stale, .. } => *stale = true,
            Directory::Sentinel { master, .. } => *master = None,
            Directory::Single(_) => {}
        }
    }

    fn moved(&mut self, slot: u16, node: NodeAddr) {
        if let Directory::Cluster { map: Some(map), stale, .. } = &mut *self.directory.lock() {
            map.moved(slot, node);
            *stale = true;
        }
    }

    /// The index of a live connection to `addr`, opened (or reopened, if
    /// the server closed it while idle) as needed.
    fn link(&mut self, addr: &RedisAddr) -> resp::Result<usize> {
        self.tick += 1;
        if let Some(i) = self.links.iter().position(|l| l.addr == *addr) {
            if self.links[i].conn.idle_ok() {
                self.links[i].used = self.tick;
                return Ok(i);
            }
            self.links.swap_remove(i);
        }
        let mut conn = Connection::open(&RedisConfig { addr: addr.clone(), ..self.config.clone() })?;
        if self.check_role {
            check_master(&mut conn)?;
        }
        if self.links.len() >= MAX_CONNECTIONS {
            let idle = self.links.iter().enumerate().filter(|(_, l)| l.used <= self.round_tick).min_by_key(|(_, l)| l.used);
            if let Some(oldest) = idle.map(|(i, _)| i) {
                self.links.swap_remove(oldest);
            }
        }
        self.links.push(Link { addr: addr.clone(), conn, used: self.tick });
        Ok(self.links.len() - 1)
    }

    fn link_index(&self, addr: &RedisAddr) -> Option<usize> {
        self.links.iter().position(|l| l.addr == *addr)
    }

    fn drop_link(&mut self, addr: &RedisAddr) {
        self.links.retain(|l| l.addr != *addr);
    }

    /// Runs the ops (see the module comment); one outcome per op, in order.
    pub fn run(&mut self, ops: &[Op<'_>]) -> Vec<Outcome> {
        let mut state: Vec<Running> = ops
            .iter()
            .map(|op| Running {
                next: 0,
                ask: None,
                whole: vec![false; op.cmds.len()],
                replies: Vec::with_capacity(op.cmds.len()),
                acks: None,
                ran: false,
                resent: false,
                unreachable_retried: false,
                pending_reason: None,
                done: None,
            })
            .collect();
        // Back-offs stop once timeout_ms has passed; redirects and the one
        // resend the retry rule allows are bounded by the rounds.
        let started = Instant::now();
        let budget = self.config.net.timeout;
        let mut pause = Duration::from_millis(1);
        for _ in 0..MAX_ROUNDS {
            self.round_tick = self.tick;
            let learnt = self.round(ops, &mut state);
            if learnt.refresh {
                self.refresh(false);
            }
            if state.iter().all(|s| s.done.is_some()) {
                break;
            }
            if learnt.back_off {
                let left = budget.saturating_sub(started.elapsed());
                if left.is_zero() {
                    break;
                }
                std::thread::sleep(pause.min(left));
                pause = (pause * 2).min(Duration::from_millis(50));
            }
        }
        self.round_tick = self.tick;
        while self.links.len() > MAX_CONNECTIONS {
            if let Some(oldest) = self.links.iter().enumerate().min_by_key(|(_, l)| l.used).map(|(i, _)| i) {
                self.links.swap_remove(oldest);
            }
        }
        let desc = describe(&self.config.addr);
        state
            .into_iter()
            .map(|s| {
                s.done.unwrap_or_else(|| {
                    Err(OpError {
                        node: desc.clone(),
                        error: resp::Error::Server(s.pending_reason.unwrap_or_else(|| "redirected too often".into())),
                        sent: s.ran,
                        unreachable: false,
                    })
                })
            })
            .collect()
    }

    /// One round: every unfinished op sent to its node, every reply read.
    fn round(&mut self, ops: &[Op<'_>], state: &mut [Running]) -> Round {
        let mut learnt = Round::default();
        // Targets, grouped: (address, ops going there).
        let mut groups: Vec<(RedisAddr, Vec<usize>)> = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            let s = &mut state[i];
            if s.done.is_some() {
                continue;
            }
            let target = match s.ask.clone() {
                Some(node) => Ok(self.node_addr(&node)),
                None => self.resolve(op.slot),
            };
            match target {
                Ok(addr) => match groups.iter_mut().find(|(a, _)| *a == addr) {
                    Some((_, list)) => list.push(i),
                    None => groups.push((addr, vec![i])),
                },
                Err(mut e) => {
                    e.sent = s.ran;
                    s.done = Some(Err(e));
                }
            }
        }
        // Send every pipeline, then read every reply.
        let mut sent: Vec<(RedisAddr, Vec<usize>)> = Vec::with_capacity(groups.len());
        for (addr, members) in groups {
            let link = match self.link(&addr) {
                Ok(l) => l,
                Err(error) => {
                    self.drop_link(&addr);
                    for &i in &members {
                        let s = &mut state[i];
                        if !s.unreachable_retried && !matches!(self.config.addr, RedisAddr::Tcp { .. } | RedisAddr::Unix { .. }) {
                            // Perhaps a failover moved its keys: look again once.
                            s.unreachable_retried = true;
                            s.ask = None;
                            s.pending_reason = Some(format!("cannot connect to {}: {error}", describe(&addr)));
                            self.suspect();
                            learnt.refresh = true;
                        } else {
                            s.done = Some(Err(OpError { node: describe(&addr), error: clone_error(&error), sent: s.ran, unreachable: true }));
                        }
                    }
                    continue;
                }
            };
            // WAIT may take all of timeout_ms: the exchange gets it on top.
            let waits = members.iter().any(|&i| ops[i].wait_replicas > 0);
            let block = members.iter().filter_map(|&i| ops[i].block).max().unwrap_or_default()
                + if waits { self.config.net.timeout } else { Duration::ZERO };
            let conn = &mut self.links[link].conn;
            conn.start(Deadline::after(self.config.net.timeout + block));
            for &i in &members {
                let (op, s) = (&ops[i], &state[i]);
                let cmds = if s.ask.is_some() { s.next..s.next + 1 } else { s.next..op.cmds.len() };
                if s.ask.is_some() {
                    conn.push(&[b"ASKING"]);
                }
                for c in cmds {
                    match &op.cmds[c] {
                        Cmd::Plain(args) => conn.push(args),
                        Cmd::Script { script, keys, args } => conn.push_script(script, keys, args, s.whole[c]),
                    }
                }
                if op.wait_replicas > 0 {
                    let n = op.wait_replicas.to_string();
                    let ms = millis(self.config.net.timeout).to_string();
                    conn.push(&[b"WAIT", n.as_bytes(), ms.as_bytes()]);
                }
            }
            match conn.send() {
                Ok(()) => sent.push((addr, members)),
                Err(e) => {
                    self.broken(ops, state, &members, &addr, e, &mut learnt);
                    self.drop_link(&addr);
                }
            }
        }
        let mut broken = Vec::new();
        for (addr, members) in sent {
            let Some(link) = self.link_index(&addr) else { continue };
            for (k, &i) in members.iter().enumerate() {
                if let Err(e) = self.read_op(link, &addr, &ops[i], &mut state[i], k == 0, &mut learnt) {
                    self.broken(ops, state, &members[k..], &addr, e, &mut learnt);
                    broken.push(addr.clone());
                    break;
                }
            }
        }
        for addr in broken {
            self.drop_link(&addr);
        }
        learnt
    }

    /// Reads one op's replies off its node's pipeline; an Err means the
    /// connection broke (the op's fate is then unknown).
    fn read_op(&mut self, link: usize, addr: &RedisAddr, op: &Op<'_>, s: &mut Running, first: bool, learnt: &mut Round) -> resp::Result<()> {
        let conn = &mut self.links[link].conn;
        let spin = first && op.block.is_none();
        let asked = s.ask.take().is_some();
        let end = if asked { s.next + 1 } else { op.cmds.len() };
        let mut expected = end - s.next + usize::from(asked) + usize::from(op.wait_replicas > 0);
        let mut stopped = false;
        let mut failure: Option<String> = None;
        if asked {
            let r = conn.receive(spin)?;
            expected -= 1;
            if let Err(m) = r {
                failure = Some(m);
                stopped = true;
            }
        }
        let host = match addr {
            RedisAddr::Tcp { host, .. } => host.as_str(),
            _ => "",
        };
        let (mut redirected, mut demoted) = (None, false);
        let first_cmd = s.next;
        for c in first_cmd..end {
            let r = conn.receive(spin && c == first_cmd && !asked)?;
            expected -= 1;
            if stopped {
                continue;
            }
            match r {
                Ok(reply) => {
                    s.replies.push(reply);
                    s.ran = true;
                    s.next = c + 1;
                }
                Err(m) => {
                    stopped = true;
                    match classify(&m, host, matches!(op.cmds[c], Cmd::Script { .. })) {
                        Verdict::Moved(slot, node) => {
                            redirected = Some((slot, node));
                            learnt.refresh = true;
                        }
                        Verdict::Ask(node) => s.ask = Some(node),
                        Verdict::BackOff { .. } if op.busy_fails && m.starts_with("TRYAGAIN") => failure = Some(m.clone()),
                        Verdict::BackOff { refresh } => {
                            learnt.back_off = true;
                            learnt.refresh |= refresh;
                        }
                        Verdict::Demoted => {
                            demoted = true;
                            learnt.refresh = true;
                        }
                        Verdict::NoScript => s.whole[c] = true,
                        Verdict::Unblocked => {
                            demoted = true;
                            learnt.refresh = true;
                            failure = Some(m.clone());
                        }
                        Verdict::Error => failure = Some(m.clone()),
                    }
                    if failure.is_none() {
                        s.pending_reason = Some(m);
                    }
                }
            }
        }
        let mut short = false;
        if op.wait_replicas > 0 {
            let r = conn.receive(false)?;
            expected -= 1;
            if let Ok(Reply::Int(n)) = r {
                if !stopped {
                    s.acks = Some(s.acks.map_or(n, |a| a.min(n)));
                }
                short = n < i64::from(op.wait_replicas);
            }
        }
        debug_assert_eq!(expected, 0);
        if let Some((slot, node)) = redirected {
            self.moved(slot, node);
        }
        // A Sentinel's master that reaches too few replicas may have been
        // deposed without knowing it yet (it answers READONLY only once the
        // sentinels reconfigure it, up to seconds later, and each WAIT until
        // then costs timeout_ms): ask the sentinels again.
        if demoted || (short && self.check_role) {
            self.suspect();
        }
        if let Some(m) = failure {
            s.done = Some(Err(OpError { node: describe(addr), error: resp::Error::Server(m), sent: true, unreachable: false }));
        } else if s.next == op.cmds.len() {
            let mut replies = std::mem::take(&mut s.replies);
            if op.wait_replicas > 0 {
                replies.push(Reply::Int(s.acks.unwrap_or(0)));
            }
            s.done = Some(Ok(replies));
        }
        Ok(())
    }

    /// The connection to `addr` broke with these ops' commands on it: each
    /// goes out once more if the retry rule allows, else fails.
    fn broken(&mut self, ops: &[Op<'_>], state: &mut [Running], members: &[usize], addr: &RedisAddr, e: resp::Error, learnt: &mut Round) {
        self.suspect();
        learnt.refresh = true;
        for &i in members {
            let s = &mut state[i];
            if s.done.is_some() {
                continue;
            }
            s.ask = None;
            let again = !s.resent && matches!(&e, resp::Error::Io(io) if net::may_resend(ops[i].resend, io, true));
            if again {
                s.resent = true;
                s.ran = true;
                s.pending_reason = Some(e.to_string());
            } else {
                s.done = Some(Err(OpError { node: describe(addr), error: clone_error(&e), sent: true, unreachable: false }));
            }
        }
    }

    /// Runs `f` on the connection to the node serving `slot` (tests).
    #[cfg(test)]
    pub fn with_node<T>(&mut self, slot: u16, f: impl FnOnce(&mut Connection) -> resp::Result<T>) -> resp::Result<T> {
        let addr = self.resolve(slot).map_err(|e| e.error)?;
        let i = self.link(&addr)?;
        f(&mut self.links[i].conn)
    }

    /// The masters of the slot map (tests).
    #[cfg(test)]
    pub fn masters(&mut self) -> Vec<NodeAddr> {
        let _ = self.resolve(0);
        match &*self.directory.lock() {
            Directory::Cluster { map: Some(m), .. } => m.masters.clone(),
            _ => Vec::new(),
        }
    }

    /// The master serving `slot`, as this router knows it (tests).
    #[cfg(test)]
    pub fn node_of(&mut self, slot: u16) -> Option<NodeAddr> {
        self.resolve(slot).ok()?;
        match &*self.directory.lock() {
            Directory::Cluster { map: Some(m), .. } => m.master_of(slot).cloned(),
            _ => None,
        }
    }

    /// The master a Sentinel named, as this router knows it (tests).
    #[cfg(test)]
    pub fn master(&mut self) -> Option<NodeAddr> {
        self.resolve(0).ok()?;
        match &*self.directory.lock() {
            Directory::Sentinel { master, .. } => master.clone(),
            _ => None,
        }
    }

    /// Takes `node` for the master, as a sentinel behind a failover would
    /// have it (tests).
    #[cfg(test)]
    pub fn set_master(&mut self, node: NodeAddr) {
        if let Directory::Sentinel { master, read_at, .. } = &mut *self.directory.lock() {
            *master = Some(node);
            *read_at = None;
        }
    }

    /// The connection currently open to the node serving `slot` (tests).
    #[cfg(test)]
    pub fn open_connection(&mut self, slot: u16) -> Option<&mut Connection> {
        let addr = self.resolve(slot).ok()?;
        self.links.iter_mut().find(|l| l.addr == addr).map(|l| &mut l.conn)
    }
}

/// A master is what Sentinel must have named; a replica (a failover under
/// way, a sentinel not yet told) is refused.
fn check_master(conn: &mut Connection) -> resp::Result<()> {
    match conn.query_one(&[b"ROLE"])? {
        Reply::Array(parts) if parts.first() == Some(&Reply::Bytes(b"master".to_vec())) => Ok(()),
        Reply::Array(parts) => {
            let role = parts.first().and_then(|r| if let Reply::Bytes(b) = r { Some(String::from_utf8_lossy(b).into_owned()) } else { None });
            Err(std::io::Error::new(std::io::ErrorKind::ConnectionRefused, format!("not a master (ROLE says {})", role.unwrap_or_default())).into())
        }
        _ => Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "no answer to ROLE").into()),
    }
}

fn clone_error(e: &resp::Error) -> resp::Error {
    match e {
        resp::Error::Io(io) => resp::Error::Io(std::io::Error::new(io.kind(), io.to_string())),
        resp::Error::Server(m) => resp::Error::Server(m.clone()),
    }
}

fn millis(d: Duration) -> u64 {
    (d.as_millis() as u64).max(1)
}

enum Verdict {
    Moved(u16, NodeAddr),
    Ask(NodeAddr),
    /// Not run; try again shortly (and read the map again).
    BackOff { refresh: bool },
    /// Written to a replica: its master changed.
    Demoted,
    /// The node lacks the script: send it whole.
    NoScript,
    /// A blocked command let go because its node became a replica: an
    /// answer for the caller, and the map changed.
    Unblocked,
    /// An answer: the command ran (or was refused for good).
    Error,
}

/// What an error reply means for the command that got it.
fn classify(message: &str, host: &str, script: bool) -> Verdict {
    if let Some(r) = redirect(message, host) {
        return match r {
            Redirect::Moved(slot, node) => Verdict::Moved(slot, node),
            Redirect::Ask(node) => Verdict::Ask(node),
        };
    }
    let word = message.split(' ').next().unwrap_or("");
    match word {
        "TRYAGAIN" | "LOADING" | "MASTERDOWN" => Verdict::BackOff { refresh: false },
        "CLUSTERDOWN" => Verdict::BackOff { refresh: true },
        "READONLY" => Verdict::Demoted,
        "UNBLOCKED" => Verdict::Unblocked,
        "NOSCRIPT" if script => Verdict::NoScript,
        _ => Verdict::Error,
    }
}

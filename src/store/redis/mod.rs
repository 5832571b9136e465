//! The Redis store: one server, a master behind Sentinel, or Redis Cluster.
//!
//! Keys of one session share a hash tag, so they live in one cluster slot:
//! `<prefix>{<id>}:s` (a hash: `d` data, `m` metadata, `a` last access,
//! `i` incarnation, `g` generation, `u` user; expiring with the session's
//! idle timeout), `<prefix>{<id>}:l` (the lock: `<token hex>|<holder json>`,
//! expiring with the lease), `<prefix>{<id>}:w` (the wake list waiters
//! block on) and, for the instant of a write, `<prefix>{<id>}:n:<token>`
//! (the data staged by a plain HSET, which the write script renames over
//! the session: big strings never cross Lua). Every per-session step is one command or script on that one
//! slot, so it goes to one node in one round trip, whatever the topology.
//!
//! The registry: `<prefix>u:<user>` is a set of that user's session ids
//! (a hint: entries are checked against the session's `u` when listed),
//! expiring with the longest-lived of them. `<prefix>gen` is the generation
//! that `kill_all_sessions()` increments; a session whose `g` is older reads
//! as missing and is deleted on sight. On a cluster these keys live in
//! other slots than the session's, where no script may reach, so:
//! - every read of a session reads the generation in the same round trip,
//!   from its own node (the router sends both pipelines before reading
//!   either), and the staleness is judged here;
//! - the write script is given the generation read with the session and
//!   refuses a write over a session it ended; a kill_all that lands while
//!   a request holds its session shows in the generation read beside the
//!   write, and the write is then reported as killed (the data it left is
//!   older than the generation: it reads as missing);
//! - the user's index is updated beside the write (adding is harmless if
//!   the write is refused: listing drops entries whose session is not the
//!   user's), and an entry is removed, when the user changes or a session
//!   ends, in a second round trip to the index's node;
//! - listing and killing a user's sessions read the index, then ask each
//!   session's node (all of them at once), and kill_all is one INCR.
//! On one server (or a Sentinel's master) the scripts reach those keys
//! themselves and none of this costs a round trip.
//!
//! Round trips: taking the lock and reading the session is one pipeline
//! (a free lock) or one Lua script (a taken one, or ours after a lost reply);
//! writing (or recording an access) and releasing is another, which checks
//! the owner token and the incarnation first, so a request that lost its
//! lock never overwrites the next holder's data, and one whose session was
//! killed never brings it back. A release pushes onto the wake list; waiters
//! block on it with BLPOP until their deadline or the lock's lease runs out,
//! so the lock passes on the instant it is freed, without polling.
//!
//! The lease: while this process holds locks, a background thread with its
//! own connections renews them every third of the lease, and keeps the
//! session itself from expiring under a long request; a holder that dies
//! stops renewing and its lock expires within the lease.
//!
//! Connections are opened lazily (never at MINIT, so php-fpm workers don't
//! share the master's socket) and follow the retry rule of
//! [`super::net`]; [`router`] finds the node for each slot.

mod router;
mod slots;

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use self::router::{Cmd, Op, OpError, Outcome, Router};
use super::lease::{self, Job, LeaseKeeper};
use super::net::Resend;
use super::resp::{self, Script};
use super::{
    Holder, Listed, LockRequest, LockToken, Locked, Meta, Put, Record, Registry, Result, Save, SessionId, Store, holder_of,
    lock_value, now_secs,
};
use crate::config::RedisConfig;
use crate::error::StoreError;

const NAME: &str = "redis";

/// The reply parser of our RESP client, for the fuzz target
/// (fuzz/fuzz_targets/resp_reply.rs); the client itself stays private.
#[doc(hidden)]
pub use super::resp::{Parsed, Reply, parse_reply};

// The scripts live in .lua files beside this one; shared functions
// (free_lock, index_add, listed, kill) are prepended to the scripts that
// call them.
const ACQUIRE: &str = include_str!("acquire.lua");
const SAVE: &str = concat!(include_str!("free_lock.lua"), include_str!("index.lua"), include_str!("save.lua"));
const RELEASE: &str = concat!(include_str!("free_lock.lua"), include_str!("release.lua"));
const RENEW: &str = include_str!("renew.lua");
const DESTROY: &str = include_str!("destroy.lua");
const USER_SESSIONS: &str = concat!(include_str!("registry.lua"), include_str!("user_sessions.lua"));
const KILL_USER: &str = concat!(include_str!("registry.lua"), include_str!("kill_user.lua"));
const LIST_ONE: &str = concat!(include_str!("registry.lua"), include_str!("list_one.lua"));
const KILL_ONE: &str = concat!(include_str!("registry.lua"), include_str!("kill_one.lua"));
const INDEX_ADD: &str = concat!(include_str!("index.lua"), include_str!("index_add.lua"));
const RESTAMP: &str = include_str!("restamp.lua");

/// The scripts, hashed once per process.
static ACQUIRE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(ACQUIRE));
static SAVE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(SAVE));
static RELEASE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(RELEASE));
static RENEW_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(RENEW));
static DESTROY_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(DESTROY));
static USER_SESSIONS_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(USER_SESSIONS));
static KILL_USER_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(KILL_USER));
static LIST_ONE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(LIST_ONE));
static KILL_ONE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(KILL_ONE));
static INDEX_ADD_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(INDEX_ADD));
static RESTAMP_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(RESTAMP));

/// Expiry of a staged write's data (see save.lua): far longer than the
/// one pipeline it lives for.
const STAGE_TTL_MS: &str = "60000";

/// How often a lock wait retries this process's releases that failed.
const RETRY_RELEASES: Duration = Duration::from_millis(100);

/// A lock whose release failed (its node went away: a failover), or went
/// to a master that did not pass it on to any replica (`wait_replicas`; a
/// failover may have made a replica master meanwhile, with the lock).
/// Retried, token-checked, by this process's next requests, so that a
/// promoted replica does not keep the session blocked for the rest of the
/// lease; a lost one again and again, as only the demoted master's
/// READONLY leads the retries to the new one; until the lease has let the
/// lock go anyway.
struct Unreleased {
    keys: Keys,
    token: String,
    until: Instant,
    /// Retried until `until` even when a retry succeeds.
    lost: bool,
}

/// A session's keys and their slot.
#[derive(Clone)]
struct Keys {
    lock: String,
    session: String,
    wake: String,
    slot: u16,
}

pub struct RedisStore {
    router: Router,
    prefix: String,
    /// `<prefix>gen` and its slot.
    generation_key: String,
    generation_slot: u16,
    /// The generation as last read: given to the write script on a
    /// cluster, and used while the generation's node fails over.
    generation: Option<u64>,
    /// The registry's keys are on the session's server (not a cluster):
    /// the scripts keep them.
    registry_local: bool,
    wait_replicas: u32,
    renewer: Option<LeaseKeeper>,
    /// Releases that failed or may have been lost, retried by this
    /// process's next requests (see [`Unreleased`]).
    unreleased: Vec<Unreleased>,
    /// The lease of the last lock taken.
    last_lease: Duration,
    /// Problems worked around, for the PHP layer to raise.
    warnings: Vec<String>,
    /// See [`lease::renewal_enabled`]; tests also turn it off per store.
    renew_enabled: bool,
}

fn backend(node: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend { store: NAME, message: format!("{node}: {e}") }
}

/// A failed op as the operator reads it.
fn failed(what: &str, e: OpError) -> StoreError {
    match e.unreachable {
        true => backend(&e.node, format!("cannot connect: {}", e.error)),
        false => backend(&e.node, format!("{what}: {}", e.error)),
    }
}

fn plain<'a>(args: &[&'a [u8]]) -> Cmd<'a> {
    Cmd::Plain(args.to_vec())
}

fn script<'a>(script: &'static Script, keys: &[&'a [u8]], args: &[&'a [u8]]) -> Cmd<'a> {
    Cmd::Script { script, keys: keys.to_vec(), args: args.to_vec() }
}

/// Reads the generation (`<prefix>gen`, in `slot`).
fn generation_op(key: &str, slot: u16) -> Op<'_> {
    Op::new(slot, Resend::Idempotent, vec![plain(&[b"GET", key.as_bytes()])])
}

/// The replies of an op that must have succeeded.
fn replies(what: &str, outcome: Outcome) -> Result<Vec<Reply>> {
    outcome.map_err(|e| failed(what, e))
}

/// The one reply of a one-command op.
fn reply(what: &str, outcome: Outcome) -> Result<Reply> {
    Ok(replies(what, outcome)?.into_iter().next().unwrap_or(Reply::Nil))
}

/// What a session's hash holds (fields d, m, a, i, g, u), judged against
/// the generation.
enum Loaded {
    Missing,
    /// Ended by a kill_all: to be deleted, with its index entry (its user).
    Stale(Option<Vec<u8>>),
    Live(Record),
}

impl RedisStore {
    pub fn open(config: &RedisConfig) -> Result<RedisStore> {
        let router = Router::new(config);
        let generation_key = [config.net.prefix.as_str(), "gen"].concat();
        Ok(RedisStore {
            registry_local: !router.is_cluster(),
            router,
            prefix: config.net.prefix.clone(),
            generation_slot: slots::key_slot(generation_key.as_bytes()),
            generation_key,
            generation: None,
            wait_replicas: config.wait_replicas,
            renewer: None,
            unreleased: Vec::new(),
            last_lease: Duration::from_secs(10),
            warnings: Vec::new(),
            renew_enabled: lease::renewal_enabled(),
        })
    }

    /// `<prefix>{<id>}:<kind>`; built by hand, as it is on every call's path.
    fn key(&self, id: &SessionId, kind: &str) -> String {
        let mut k = String::with_capacity(self.prefix.len() + id.as_str().len() + kind.len() + 3);
        k.push_str(&self.prefix);
        k.push('{');
        k.push_str(id.as_str());
        k.push_str("}:");
        k.push_str(kind);
        k
    }

    fn keys(&self, id: &SessionId) -> Keys {
        let session = self.key(id, "s");
        Keys { lock: self.key(id, "l"), slot: slots::key_slot(session.as_bytes()), session, wake: self.key(id, "w") }
    }

    /// `<prefix>{<id>}:n:<nonce>`: where one write stages its data. The
    /// lock's token when there is one (a holder writes one at a time), so
    /// a writer that lost its lock never stages into the next holder's key.
    fn stage_key(&self, keys: &Keys, token: Option<LockToken>) -> String {
        let nonce = token.unwrap_or_else(LockToken::random).hex();
        [keys.session.strip_suffix('s').unwrap_or(&keys.session), "n:", &nonce].concat()
    }

    fn user_prefix(&self) -> String {
        [self.prefix.as_str(), "u:"].concat()
    }

    /// A user's index and its slot.
    fn index_key(&self, user: &[u8]) -> (Vec<u8>, u16) {
        let key = [self.user_prefix().as_bytes(), user].concat();
        let slot = slots::key_slot(&key);
        (key, slot)
    }

    /// The generation a GET of it returned; while its node cannot be
    /// reached (a failover), the one read last.
    fn generation_of(&mut self, outcome: Outcome) -> Result<u64> {
        match outcome {
            Ok(r) => {
                let g = r.first().and_then(number_of).unwrap_or(0);
                self.generation = Some(g);
                Ok(g)
            }
            Err(e) => self.generation.ok_or_else(|| failed("read the generation", e)),
        }
    }

    /// The generation to give the write script: as read last, or now.
    fn known_generation(&mut self) -> Result<u64> {
        match self.generation {
            Some(g) => Ok(g),
            None => {
                let out = self.router.run(&[generation_op(&self.generation_key, self.generation_slot)]).pop().expect("one outcome per op");
                self.generation_of(out)
            }
        }
    }

    /// WAIT's count at the end of `replies`: a warning (and true) when short.
    fn check_acks(&mut self, replies: &mut Vec<Reply>, what: &str, id: &SessionId) -> bool {
        if self.wait_replicas == 0 {
            return false;
        }
        let acks = match replies.pop() {
            Some(Reply::Int(n)) => n,
            _ => 0,
        };
        if acks < i64::from(self.wait_replicas) {
            self.warnings.push(format!(
                "redis store: wait_replicas={}: {what} on session {} reached {acks} replica(s) within timeout_ms; a failover now may lose it",
                self.wait_replicas,
                crate::engine::short_id(id.as_str())
            ));
            return true;
        }
        false
    }

    /// Fields d, m, a, i, g, u of a session's hash, judged against `current`.
    fn loaded(id: &SessionId, fields: &[Reply], current: u64) -> Result<Loaded> {
        if !matches!(fields.get(1), Some(Reply::Bytes(_))) {
            return Ok(Loaded::Missing);
        }
        if fields.get(4).and_then(number_of).unwrap_or(0) < current {
            return Ok(Loaded::Stale(fields.get(5).and_then(bytes_of).map(<[u8]>::to_vec)));
        }
        Ok(record_of(id, fields.get(..4).unwrap_or(&[]))?.map_or(Loaded::Missing, Loaded::Live))
    }

    /// Deletes a session a kill_all ended, and its index entry.
    fn drop_stale(&mut self, id: &SessionId, keys: &Keys, user: Option<Vec<u8>>) -> Result<()> {
        let index = user.as_deref().map(|u| self.index_key(u));
        let mut ops = vec![Op::new(keys.slot, Resend::Idempotent, vec![plain(&[b"DEL", keys.session.as_bytes()])])];
        if let Some((key, slot)) = &index {
            ops.push(Op::new(*slot, Resend::Idempotent, vec![plain(&[b"SREM", key, id.as_str().as_bytes()])]));
        }
        for out in self.router.run(&ops) {
            replies("remove a session ended by kill_all", out)?;
        }
        Ok(())
    }

    /// The session as a read judged it: stale ones are removed.
    fn settle(&mut self, id: &SessionId, keys: &Keys, loaded: Loaded) -> Result<Option<Record>> {
        match loaded {
            Loaded::Missing => Ok(None),
            Loaded::Stale(user) => {
                self.drop_stale(id, keys, user)?;
                Ok(None)
            }
            Loaded::Live(r) => Ok(Some(r)),
        }
    }

    /// The uncontended case without a script, which costs Redis several
    /// times the commands' own work: SET NX, then the session and its
    /// expiry, pipelined in one round trip, with the generation read
    /// beside them. None when the lock is taken (or is already ours: a
    /// retry after a lost reply), for ACQUIRE to sort out. Reading after a
    /// SET that another client's commands may follow is safe: only the lock
    /// holder writes, and kills are fenced at write. `may_hold` ends up
    /// saying whether the lock may be ours.
    ///
    /// Sent again after a broken connection: a second SET NX finds our own
    /// lock and yields None, and ACQUIRE then recognises the lock as ours.
    fn try_acquire(&mut self, id: &SessionId, keys: &Keys, value: &str, lease: &str, may_hold: &mut bool) -> Result<Option<Option<Record>>> {
        let mut lock = Op::new(
            keys.slot,
            Resend::Idempotent,
            vec![
                plain(&[b"SET", keys.lock.as_bytes(), value.as_bytes(), b"NX", b"PX", lease.as_bytes()]),
                plain(&[b"HMGET", keys.session.as_bytes(), b"d", b"m", b"a", b"i", b"g", b"u"]),
                plain(&[b"PTTL", keys.session.as_bytes()]),
            ],
        );
        lock.wait_replicas = self.wait_replicas;
        let mut out = self.router.run(&[lock, generation_op(&self.generation_key, self.generation_slot)]).into_iter();
        let (lock, generation) = (out.next().expect("one outcome per op"), out.next().expect("one outcome per op"));
        let mut got = lock.map_err(|e| {
            *may_hold = e.sent;
            failed("acquire the lock", e)
        })?;
        *may_hold = true;
        if got.first() == Some(&Reply::Nil) {
            *may_hold = false;
            return Ok(None);
        }
        self.check_acks(&mut got, "the lock", id);
        let current = self.generation_of(generation)?;
        let [_, Reply::Array(fields), left] = &got[..] else {
            return Err(backend(&self.router.describe(), "acquire the lock: unexpected reply"));
        };
        let loaded = Self::loaded(id, fields, current)?;
        let is_live = matches!(loaded, Loaded::Live(_));
        let record = self.settle(id, keys, loaded)?;
        // A session about to expire is now in use: it must outlive the lock
        // until the lease renewals take over (as acquire.lua does).
        let keep = 2 * lease.parse::<i64>().unwrap_or(0);
        if is_live && matches!(left, Reply::Int(ms) if *ms >= 0 && *ms < keep) {
            let keep = keep.to_string();
            let op = Op::new(keys.slot, Resend::Idempotent, vec![plain(&[b"PEXPIRE", keys.session.as_bytes(), keep.as_bytes()])]);
            let out = self.router.run(&[op]).pop().expect("one outcome per op");
            replies("keep the session alive", out)?;
        }
        Ok(Some(record))
    }

    /// [`Store::lock_and_read`] but for the release on failure; `may_hold`
    /// says whether the lock may be ours.
    fn take_lock(&mut self, id: &SessionId, req: &LockRequest, token: LockToken, may_hold: &mut bool) -> Result<Locked> {
        let value = lock_value(&token, &req.holder);
        let keys = self.keys(id);
        let deadline = Instant::now() + req.wait;
        let lease = millis(req.ttl).to_string();
        if let Some(record) = self.try_acquire(id, &keys, &value, &lease, may_hold)? {
            self.keep_alive(&keys.lock, &token, Some(req.ttl));
            return Ok(Locked::Acquired { token, record });
        }
        loop {
            // Idempotent: a second copy finds the lock ours (cur == ARGV[1]).
            // The data by a plain HGET behind the script (see acquire.lua);
            // wasted when the lock is taken, but a waiter's wake-up then
            // costs no second round trip.
            let mut acquire = Op::new(
                keys.slot,
                Resend::Idempotent,
                vec![
                    script(&ACQUIRE_SCRIPT, &[keys.lock.as_bytes(), keys.session.as_bytes()], &[value.as_bytes(), lease.as_bytes()]),
                    plain(&[b"HGET", keys.session.as_bytes(), b"d"]),
                ],
            );
            acquire.wait_replicas = self.wait_replicas;
            let mut out = self.router.run(&[acquire, generation_op(&self.generation_key, self.generation_slot)]).into_iter();
            let (acquired, generation) = (out.next().expect("one outcome per op"), out.next().expect("one outcome per op"));
            let mut got = acquired.map_err(|e| {
                *may_hold = e.sent;
                failed("acquire the lock", e)
            })?;
            *may_hold = true;
            let [Reply::Array(reply), data, ..] = &mut got[..] else {
                return Err(backend(&self.router.describe(), "acquire the lock: unexpected reply"));
            };
            let (mut reply, data) = (std::mem::take(reply), std::mem::replace(data, Reply::Nil));
            if matches!(reply.first(), Some(Reply::Int(1))) {
                self.check_acks(&mut got, "the lock", id);
                let current = self.generation_of(generation)?;
                // Fields d, m, a, i, g, u, as a plain read has them.
                reply[0] = data;
                let loaded = Self::loaded(id, &reply, current)?;
                let record = self.settle(id, &keys, loaded)?;
                self.keep_alive(&keys.lock, &token, Some(req.ttl));
                return Ok(Locked::Acquired { token, record });
            }
            *may_hold = false;
            let pttl = match reply.get(2) {
                Some(Reply::Int(ms)) if *ms > 0 => Duration::from_millis(*ms as u64),
                _ => Duration::from_millis(1),
            };
            let now = Instant::now();
            if now >= deadline {
                let holder = reply.get(1).and_then(bytes_of).map(holder_of);
                return Ok(Locked::TimedOut { holder });
            }
            // Sleep until woken by a release, the lease runs out (a dead
            // holder), or our deadline. With releases of our own pending,
            // wake often to retry them: after a failover the lock waited
            // for may be held by a request that waits for one of ours.
            let mut block = (deadline - now).min(pttl + Duration::from_millis(1));
            if !self.unreleased.is_empty() {
                self.release_unreleased();
                block = block.min(RETRY_RELEASES);
            }
            // Whole milliseconds, at least one: BLPOP's 0 means forever.
            let ms = (block.as_micros().div_ceil(1000) as u64).max(1);
            let seconds = format!("{}.{:03}", ms / 1000, ms % 1000);
            // Waiting twice is still only waiting: a wake-up whose reply
            // was lost costs at most the holder's lease, the bound anyway.
            let mut wait = Op::new(keys.slot, Resend::Idempotent, vec![plain(&[b"BLPOP", keys.wake.as_bytes(), seconds.as_bytes()])]);
            wait.block = Some(block);
            let woke = match self.router.run(&[wait]).pop().expect("one outcome per op") {
                Ok(r) => r.into_iter().next().unwrap_or(Reply::Nil),
                // Its node became a replica (a failover): look again.
                Err(OpError { error: resp::Error::Server(m), .. }) if m.starts_with("UNBLOCKED") => continue,
                Err(e) => return Err(failed("wait for the lock", e)),
            };
            if woke != Reply::Nil && Instant::now() >= deadline {
                // We took a wake-up we will not use: pass it on (once: a
                // second would wake a waiter for nothing).
                let op = Op::new(keys.slot, Resend::Never, vec![plain(&[b"RPUSH", keys.wake.as_bytes(), b"1"])]);
                let _ = self.router.run(&[op]);
            }
        }
    }

    /// Starts (Some(lease)) or stops (None) keeping a held lock alive.
    fn keep_alive(&mut self, key: &str, token: &LockToken, lease: Option<Duration>) {
        if !self.renew_enabled {
            return;
        }
        let router = &self.router;
        let Some(keeper) = LeaseKeeper::get_or_start(&mut self.renewer, &mut self.warnings, NAME, || renewer(router.sibling())) else {
            return;
        };
        match lease {
            Some(ttl) => keeper.hold(key.to_string(), token.hex(), ttl),
            None => keeper.drop_key(key),
        }
    }

    fn release(&mut self, keys: &Keys, token: &str) -> Result<()> {
        let op = release_op(keys, token);
        let released = replies("release the lock", self.router.run(&[op]).pop().expect("one outcome per op"));
        if released.is_err() {
            self.retry_release(keys, token, false);
        }
        released.map(|_| ())
    }

    /// Retried by this process's next requests, and by the lease thread
    /// meanwhile (the process may serve none for a while).
    fn retry_release(&mut self, keys: &Keys, token: &str, lost: bool) {
        let u = match self.unreleased.iter().position(|u| u.keys.lock == keys.lock && u.token == token) {
            Some(i) => &mut self.unreleased[i],
            None => {
                let until = Instant::now() + self.last_lease;
                self.unreleased.push(Unreleased { keys: keys.clone(), token: token.to_string(), until, lost: false });
                self.unreleased.last_mut().expect("just pushed")
            }
        };
        u.lost |= lost;
        let (until, lost) = (u.until, u.lost);
        if let Some(keeper) = self.renewer.as_ref() {
            keeper.release_later(keys.lock.clone(), token.to_string(), until, lost);
        }
    }

    /// Frees what [`Self::release`] could not (token-checked: a lock that
    /// is someone else's by now is left alone).
    fn release_unreleased(&mut self) {
        let now = Instant::now();
        self.unreleased.retain(|u| u.until > now);
        if self.unreleased.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut self.unreleased);
        let ops: Vec<Op> = pending.iter().map(|u| release_op(&u.keys, &u.token)).collect();
        let outcomes = self.router.run(&ops);
        drop(ops);
        self.unreleased = pending.into_iter().zip(outcomes).filter(|(u, o)| u.lost || o.is_err()).map(|(u, _)| u).collect();
    }

    /// Removes `ids` from a user's index (a cluster's second round trip).
    fn unindex(&mut self, user: &[u8], ids: &[&[u8]]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let (key, slot) = self.index_key(user);
        let mut args: Vec<&[u8]> = vec![b"SREM", &key];
        args.extend_from_slice(ids);
        let out = self.router.run(&[Op::new(slot, Resend::Idempotent, vec![Cmd::Plain(args)])]).pop().expect("one outcome per op");
        replies("update the user's index", out)?;
        Ok(())
    }

    /// What the write script said (`r`), with a cluster's follow-ups: the
    /// index entry to drop, and the generation read beside the write.
    fn settle_write(
        &mut self,
        id: &SessionId,
        keys: &Keys,
        r: &[Reply],
        incarnation: &str,
        generation: Option<Outcome>,
        indexed: Option<Outcome>,
    ) -> Result<()> {
        let status = r.first().map_or(0, int_of);
        if !self.registry_local {
            // The index keeps an entry a refused write added: harmless, as
            // listing checks each entry's session.
            if let Some(Err(e)) = indexed {
                self.warnings.push(format!("redis store: the user's index was not updated: {}", failed("add to the index", e)));
            }
            if let Some(old) = r.get(3).and_then(bytes_of).map(<[u8]>::to_vec) {
                self.unindex(&old, &[id.as_str().as_bytes()])?;
            }
            let stamped = r.get(1).and_then(number_of).unwrap_or(0);
            let now = match generation {
                Some(g) => self.generation_of(g)?,
                None => stamped,
            };
            if status == 1 && stamped < now {
                if r.get(2) != Some(&Reply::Int(1)) {
                    // A kill_all ended it while this request held it.
                    return Err(StoreError::Killed);
                }
                // Created here under a generation read earlier: it did not
                // exist when the kill_all ran.
                let (stamped, now) = (stamped.to_string(), now.to_string());
                let args: [&[u8]; 3] = [incarnation.as_bytes(), stamped.as_bytes(), now.as_bytes()];
                let op = Op::new(keys.slot, Resend::Idempotent, vec![script(&RESTAMP_SCRIPT, &[keys.session.as_bytes()], &args)]);
                replies("stamp the generation", self.router.run(&[op]).pop().expect("one outcome per op"))?;
            }
        }
        match status {
            1 => Ok(()),
            -1 => Err(StoreError::Killed),
            _ => Err(StoreError::LockLost),
        }
    }

    /// A user's index: its members that are session ids, and the generation.
    fn index_members(&mut self, user: &str) -> Result<(Vec<SessionId>, u64)> {
        let (key, slot) = self.index_key(user.as_bytes());
        let ops = [Op::new(slot, Resend::Idempotent, vec![plain(&[b"SMEMBERS", &key])]), generation_op(&self.generation_key, self.generation_slot)];
        let mut out = self.router.run(&ops).into_iter();
        let members = reply("read the user's index", out.next().expect("one outcome per op"))?;
        let current = self.generation_of(out.next().expect("one outcome per op"))?;
        let Reply::Array(members) = members else { return Ok((Vec::new(), current)) };
        Ok((members.iter().filter_map(bytes_of).filter_map(SessionId::parse).collect(), current))
    }
}

fn release_op<'a>(keys: &'a Keys, token: &'a str) -> Op<'a> {
    Op::new(
        keys.slot,
        Resend::Idempotent,
        vec![script(&RELEASE_SCRIPT, &[keys.lock.as_bytes(), keys.wake.as_bytes()], &[token.as_bytes()])],
    )
}

/// Renews one lock from the lease thread, on its own connections, and
/// keeps the session's hash from expiring while the lock is held. True when
/// Redis ran the renewal (a lock no longer ours is not renewed, and that is
/// no failure); false when it could not be reached or refused to run it.
fn renewer(mut router: Router) -> impl FnMut(Job<'_>) -> bool + Send {
    move |job| {
        let (lock_key, token, ttl) = match job {
            Job::Renew { key, context, ttl } => (key, context, ttl),
            Job::Release { key, context } => {
                let keys = Keys { lock: key.to_string(), session: sibling(key, "s"), wake: sibling(key, "w"), slot: slots::key_slot(key.as_bytes()) };
                return router.run(&[release_op(&keys, context)]).pop().is_some_and(|o| o.is_ok());
            }
        };
        let session_key = sibling(lock_key, "s");
        let ttl = millis(ttl).to_string();
        let op = Op::new(
            slots::key_slot(lock_key.as_bytes()),
            Resend::Idempotent,
            vec![script(&RENEW_SCRIPT, &[lock_key.as_bytes(), session_key.as_bytes()], &[token.as_bytes(), ttl.as_bytes()])],
        );
        router.run(&[op]).pop().is_some_and(|o| o.is_ok())
    }
}

/// Another key of the session whose key is `key`: `<prefix>{<id>}:<kind>`.
fn sibling(key: &str, kind: &str) -> String {
    let base = key.rsplit_once(':').map_or(key, |(base, _)| base);
    [base, ":", kind].concat()
}

fn millis(d: Duration) -> u64 {
    (d.as_millis() as u64).max(1)
}

/// A session as the scripts return it: data, meta, last access,
/// incarnation (the last three as the hash holds them).
fn record_of(id: &SessionId, fields: &[Reply]) -> Result<Option<Record>> {
    let [d, m, a, i] = fields else { return Ok(None) };
    let (Some(data), Some(m)) = (bytes_of(d), bytes_of(m)) else { return Ok(None) };
    let mut meta = Meta::decode(m).map_err(|e| StoreError::corrupt(NAME, id, e))?;
    if let Some(a) = number_of(a) {
        meta.last_access = a;
    }
    if let Some(i) = number_of(i) {
        meta.incarnation = i;
    }
    Ok(Some(Record { meta, data: data.to_vec() }))
}

/// A number as Redis returns it: a decimal string (or an integer reply).
fn number_of(v: &Reply) -> Option<u64> {
    match v {
        Reply::Int(n) => u64::try_from(*n).ok(),
        v => bytes_of(v).and_then(|b| std::str::from_utf8(b).ok()).and_then(|t| t.parse().ok()),
    }
}

fn bytes_of(v: &Reply) -> Option<&[u8]> {
    match v {
        Reply::Bytes(b) => Some(b),
        _ => None,
    }
}

fn int_of(v: &Reply) -> i64 {
    match v {
        Reply::Int(n) => *n,
        _ => 0,
    }
}

impl Store for RedisStore {
    fn name(&self) -> &'static str {
        NAME
    }

    /// A lock taken but not handed over (the session's metadata is corrupt,
    /// a cleanup or a reply failed) is released at once, not left to its
    /// lease; unless nothing was ever sent (a failed connect).
    fn lock_and_read(&mut self, id: &SessionId, req: &LockRequest) -> Result<Locked> {
        self.release_unreleased();
        self.last_lease = req.ttl;
        let token = LockToken::random();
        let mut may_hold = false;
        let locked = self.take_lock(id, req, token, &mut may_hold);
        if locked.is_err() && may_hold {
            // Token-checked, so harmless if the lock was never ours; on a
            // new connection if the last one broke.
            let keys = self.keys(id);
            self.keep_alive(&keys.lock, &token, None);
            let _ = self.release(&keys, &token.hex());
        }
        locked
    }

    fn read(&mut self, id: &SessionId) -> Result<Option<Record>> {
        self.release_unreleased();
        let keys = self.keys(id);
        let op = Op::new(keys.slot, Resend::Idempotent, vec![plain(&[b"HMGET", keys.session.as_bytes(), b"d", b"m", b"a", b"i", b"g", b"u"])]);
        let mut out = self.router.run(&[op, generation_op(&self.generation_key, self.generation_slot)]).into_iter();
        let fields = reply("read", out.next().expect("one outcome per op"))?;
        let current = self.generation_of(out.next().expect("one outcome per op"))?;
        let Reply::Array(fields) = fields else { return Ok(None) };
        let loaded = Self::loaded(id, &fields, current)?;
        self.settle(id, &keys, loaded)
    }

    /// The generation lives in the hash's `g` field, set by the script when
    /// it creates the session; the metadata's copy is not used.
    fn save(&mut self, id: &SessionId, put: &Put<'_>) -> Result<u64> {
        let keys = self.keys(id);
        let release = put.lock.releases();
        let token = put.lock.token().map(|t| t.hex()).unwrap_or_default();
        let (mode, data): (&[u8], &[u8]) = match put.what {
            Save::Write(d) => (b"w", d),
            Save::Touch => (b"t", b""),
        };
        let meta = put.meta.encode();
        let ttl = if put.ttl.is_zero() { "0".to_string() } else { millis(put.ttl).to_string() };
        let fence = if put.existed { put.meta.incarnation.to_string() } else { String::new() };
        let incarnation = put.meta.incarnation.to_string();
        let now = now_secs().to_string();
        let user_prefix = self.user_prefix();
        let user = put.meta.user.as_deref().unwrap_or("");
        let local = self.registry_local;
        let known = if local { String::new() } else { self.known_generation()?.to_string() };
        // The data goes in by a plain HSET into a key of this write alone
        // (see save.lua); an access moves no data, and names the session.
        let mut inline = false;
        let (written, generation, indexed) = loop {
            let staged = matches!(put.what, Save::Write(_)) && !inline;
            let stage = if staged { self.stage_key(&keys, put.lock.token()) } else { keys.session.clone() };
            let mut args: Vec<&[u8]> = vec![
                token.as_bytes(),
                mode,
                &meta,
                ttl.as_bytes(),
                if release { b"1" } else { b"0" },
                fence.as_bytes(),
                incarnation.as_bytes(),
                user.as_bytes(),
                now.as_bytes(),
                user_prefix.as_bytes(),
                id.as_str().as_bytes(),
                known.as_bytes(),
            ];
            if inline {
                args.push(data);
            }
            let mut key_list = vec![keys.lock.as_bytes(), keys.session.as_bytes(), keys.wake.as_bytes(), stage.as_bytes()];
            if local {
                key_list.push(self.generation_key.as_bytes());
            }
            let mut cmds = Vec::with_capacity(3);
            if staged {
                // Its own expiry, should the script never run (a broken connection).
                cmds.push(plain(&[b"HSET", stage.as_bytes(), b"d", data]));
                cmds.push(plain(&[b"PEXPIRE", stage.as_bytes(), STAGE_TTL_MS.as_bytes()]));
            }
            cmds.push(Cmd::Script { script: &SAVE_SCRIPT, keys: key_list, args });
            // Never sent twice: a second copy could find the first one's
            // release and report a write that landed as a lost lock.
            let mut write = Op::new(keys.slot, Resend::Never, cmds);
            write.wait_replicas = self.wait_replicas;
            write.busy_fails = staged && !local;
            let mut ops = vec![write];
            let index = (!local && !user.is_empty()).then(|| self.index_key(user.as_bytes()));
            if !local {
                ops.push(generation_op(&self.generation_key, self.generation_slot));
                if let Some((key, slot)) = &index {
                    let add = script(&INDEX_ADD_SCRIPT, &[key], &[id.as_str().as_bytes(), ttl.as_bytes()]);
                    ops.push(Op::new(*slot, Resend::Idempotent, vec![add]));
                }
            }
            let mut out = self.router.run(&ops).into_iter();
            let written = out.next().expect("one outcome per op");
            // A slot being migrated, the stage on the importing node and
            // the session still on this one: the script did not run. Again
            // with the data inline, which such a node takes.
            if matches!(&written, Err(OpError { error: resp::Error::Server(m), .. }) if staged && m.starts_with("TRYAGAIN")) {
                inline = true;
                continue;
            }
            break (written, out.next(), out.next());
        };
        let mut written = replies("write", written);
        if let Ok(r) = &mut written {
            if self.check_acks(r, "the write", id) && release {
                if let Some(t) = put.lock.token() {
                    self.retry_release(&keys, &t.hex(), true);
                }
            }
        }
        let verdict = written.and_then(|mut r| match r.pop() {
            Some(Reply::Array(r)) => self.settle_write(id, &keys, &r, &incarnation, generation, indexed),
            _ => Err(backend(&self.router.describe(), "write: unexpected reply")),
        });
        if let Some(t) = put.lock.token().filter(|_| release || verdict.is_err()) {
            self.keep_alive(&keys.lock, &t, None);
        }
        verdict.map(|()| put.meta.generation)
    }

    fn unlock(&mut self, id: &SessionId, token: LockToken) -> Result<()> {
        let keys = self.keys(id);
        self.keep_alive(&keys.lock, &token, None);
        self.release(&keys, &token.hex())
    }

    fn destroy(&mut self, id: &SessionId) -> Result<bool> {
        let keys = self.keys(id);
        let user_prefix = if self.registry_local { self.user_prefix() } else { String::new() };
        // Never twice: the second copy would report "did not exist".
        let op = Op::new(
            keys.slot,
            Resend::Never,
            vec![script(&DESTROY_SCRIPT, &[keys.session.as_bytes()], &[user_prefix.as_bytes(), id.as_str().as_bytes()])],
        );
        let mut out = self.router.run(&[op, generation_op(&self.generation_key, self.generation_slot)]).into_iter();
        let r = reply("destroy", out.next().expect("one outcome per op"))?;
        let current = self.generation_of(out.next().expect("one outcome per op"))?;
        let Reply::Array(r) = r else { return Err(backend(&self.router.describe(), "destroy: unexpected reply")) };
        if !self.registry_local {
            if let Some(user) = r.get(2).and_then(bytes_of).map(<[u8]>::to_vec) {
                self.unindex(&user, &[id.as_str().as_bytes()])?;
            }
        }
        Ok(r.first().map_or(0, int_of) == 1 && r.get(1).and_then(number_of).unwrap_or(0) >= current)
    }

    /// Redis expires idle sessions itself (every session carries its own
    /// idle timeout as expiry; timeout 0 none), so gc finds nothing left.
    fn gc(&mut self, _default_timeout: u32) -> Result<u64> {
        Ok(0)
    }

    fn lock_holder(&mut self, id: &SessionId) -> Result<Option<Holder>> {
        let keys = self.keys(id);
        let op = Op::new(keys.slot, Resend::Idempotent, vec![plain(&[b"GET", keys.lock.as_bytes()])]);
        let value = reply("read the lock", self.router.run(&[op]).pop().expect("one outcome per op"))?;
        Ok(bytes_of(&value).map(holder_of))
    }

    fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }
}

/// The entries of a listing: id, meta, last access, incarnation.
fn listed(id: SessionId, meta: &Reply, access: &Reply, incarnation: &Reply) -> Result<Option<Listed>> {
    let fields = [Reply::Bytes(Vec::new()), meta.clone(), access.clone(), incarnation.clone()];
    Ok(record_of(&id, &fields)?.map(|r| Listed { id, meta: r.meta }))
}

impl Registry for RedisStore {
    fn user_sessions(&mut self, user: &str) -> Result<Vec<Listed>> {
        let mut out = Vec::new();
        if self.registry_local {
            let (key, slot) = self.index_key(user.as_bytes());
            let prefix = self.prefix.clone();
            let op = Op::new(
                slot,
                Resend::Idempotent,
                vec![script(&USER_SESSIONS_SCRIPT, &[&key, self.generation_key.as_bytes()], &[prefix.as_bytes(), user.as_bytes()])],
            );
            let Reply::Array(flat) = reply("list a user's sessions", self.router.run(&[op]).pop().expect("one outcome per op"))? else {
                return Ok(out);
            };
            for entry in flat.chunks_exact(4) {
                let Some(id) = bytes_of(&entry[0]).and_then(SessionId::parse) else { continue };
                out.extend(listed(id, &entry[1], &entry[2], &entry[3])?);
            }
            return Ok(out);
        }
        // A cluster: the index, then every session on its own node.
        let (ids, current) = self.index_members(user)?;
        let all: Vec<Keys> = ids.iter().map(|id| self.keys(id)).collect();
        let current = current.to_string();
        let ops: Vec<Op> = all
            .iter()
            .map(|k| Op::new(k.slot, Resend::Idempotent, vec![script(&LIST_ONE_SCRIPT, &[k.session.as_bytes()], &[user.as_bytes(), current.as_bytes()])]))
            .collect();
        let mut gone: Vec<&[u8]> = Vec::new();
        for (id, o) in ids.iter().zip(self.router.run(&ops)) {
            match reply("list a user's sessions", o)? {
                Reply::Array(r) if r.len() == 3 => out.extend(listed(id.clone(), &r[0], &r[1], &r[2])?),
                _ => gone.push(id.as_str().as_bytes()),
            }
        }
        self.unindex(user.as_bytes(), &gone)?;
        Ok(out)
    }

    fn kill_user(&mut self, user: &str, keep: Option<&SessionId>) -> Result<u64> {
        let keep_id = keep.map(|k| k.as_str()).unwrap_or("");
        if self.registry_local {
            let (key, slot) = self.index_key(user.as_bytes());
            let prefix = self.prefix.clone();
            // Never twice: the second copy would count nothing.
            let op = Op::new(
                slot,
                Resend::Never,
                vec![script(
                    &KILL_USER_SCRIPT,
                    &[&key, self.generation_key.as_bytes()],
                    &[prefix.as_bytes(), user.as_bytes(), keep_id.as_bytes()],
                )],
            );
            let n = reply("kill a user's sessions", self.router.run(&[op]).pop().expect("one outcome per op"))?;
            return Ok(int_of(&n).max(0) as u64);
        }
        // A cluster: the index, then the kills on every session's node at
        // once, with the index emptied beside them.
        let (ids, current) = self.index_members(user)?;
        let ids: Vec<SessionId> = ids.into_iter().filter(|id| id.as_str() != keep_id).collect();
        if ids.is_empty() {
            return Ok(0);
        }
        let all: Vec<Keys> = ids.iter().map(|id| self.keys(id)).collect();
        let current = current.to_string();
        let (index, index_slot) = self.index_key(user.as_bytes());
        let mut srem: Vec<&[u8]> = vec![b"SREM", &index];
        srem.extend(ids.iter().map(|id| id.as_str().as_bytes()));
        let mut ops: Vec<Op> = all
            .iter()
            .map(|k| Op::new(k.slot, Resend::Never, vec![script(&KILL_ONE_SCRIPT, &[k.session.as_bytes()], &[user.as_bytes(), current.as_bytes()])]))
            .collect();
        ops.push(Op::new(index_slot, Resend::Idempotent, vec![Cmd::Plain(srem)]));
        let mut out = self.router.run(&ops);
        let emptied = out.pop().expect("one outcome per op");
        let mut n = 0;
        for o in out {
            n += int_of(&reply("kill a user's sessions", o)?).max(0) as u64;
        }
        reply("update the user's index", emptied)?;
        Ok(n)
    }

    /// One INCR: every session created before it reads as missing from now
    /// on. Redis cannot count them without a scan, hence -1.
    fn kill_all(&mut self) -> Result<i64> {
        // Never twice: a second INCR would also end sessions created
        // between the two.
        let op = Op::new(self.generation_slot, Resend::Never, vec![plain(&[b"INCR", self.generation_key.as_bytes()])]);
        let n = reply("kill all sessions", self.router.run(&[op]).pop().expect("one outcome per op"))?;
        self.generation = number_of(&n);
        Ok(-1)
    }
}

#[cfg(test)]
mod tests;

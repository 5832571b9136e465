//! The SQL stores: PostgreSQL (`pgsql://`) and MySQL/MariaDB (`mysql://`).
//!
//! One row per session in `<table>` holds its data and every field of its
//! metadata as columns, so a request reads and writes one row, and the
//! registry's questions are indexed queries (`(prefix, user_id)` for a
//! user's sessions, `(prefix, expires_at)` for gc). `<table>_generation`
//! holds the kill-all generation of each prefix; `<table>_holders` one row
//! per PHP process naming the request that holds its locks (PostgreSQL:
//! unlogged, so writing it costs no WAL).
//!
//! The lock is the database's own, bound to the connection: a PostgreSQL
//! session-level advisory lock or a MySQL `GET_LOCK()`. The server wakes a
//! waiter when it is released and frees it when the holder's connection
//! ends, so there is no lease to renew (`lock_ttl_ms` does not apply) and no
//! polling. A lock is only as good as the connection that took it: every
//! held lock remembers the connection's number, and a save under a lock
//! taken on a connection that has since been replaced fails as
//! [`StoreError::LockLost`] without sending anything.
//!
//! Write-through's fence: a write over a session read at version `v`
//! (`Put::expect_version`) has `version = v` in its WHERE and sets the
//! version it carries, so a request that lost its cache lock never writes
//! over a newer one; nothing is written then and the save fails as
//! [`StoreError::LockLost`] (a killed session still fails as Killed). Tables
//! made before the column existed get it on first use (`ALTER TABLE … ADD`).
//!
//! Lazy writes: a touch records the access only when the stored one is at
//! least the session's lazy window old (`lazy_touch_s`, at most half the
//! session's own timeout), so read-heavy traffic does not rewrite a row per
//! request. As the true last access may then be up to a window later than
//! the stored one, reads report it as that much later (never past now),
//! and the stored expiry carries the window too: a session is never judged
//! idle early, and may outlive its timeout by less than the window.
//!
//! This file holds what both databases share: the row, the lock names, the
//! lazy window, the held-lock bookkeeping. `pgsql.rs` and `mysql.rs` hold
//! each one's SQL and client.

use std::collections::HashMap;
use std::time::Duration;

use super::{Holder, Listed, LockRequest, LockToken, Locked, Meta, Put, Record, Registry, Result, Save, SessionId, Store};
use crate::config::SqlConfig;
use crate::error::StoreError;

pub mod mysql;
mod pg_wire;
pub mod pgsql;

/// Holder rows not written for this long are dropped by gc: their process
/// has taken no lock for a day.
const HOLDER_MAX_AGE_MS: i64 = 86_400_000;

/// The tables a config names.
#[derive(Debug, Clone)]
pub struct Tables {
    pub sessions: String,
    pub generation: String,
    pub holders: String,
}

impl Tables {
    pub fn of(config: &SqlConfig) -> Tables {
        let t = &config.table;
        Tables { sessions: t.clone(), generation: format!("{t}_generation"), holders: format!("{t}_holders") }
    }
}

/// A session row as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub data: Vec<u8>,
    pub user: Option<String>,
    pub created: i64,
    pub last_access: i64,
    pub timeout: i64,
    pub timeout_set: bool,
    pub first_ip: Option<String>,
    pub last_ip: Option<String>,
    pub incarnation: i64,
    pub generation: i64,
    /// Write-through's write counter (0 for rows written without one).
    pub version: i64,
}

/// Who a call is about: the session and the names of its lock.
pub struct Target<'a> {
    pub id: &'a SessionId,
    /// PostgreSQL's advisory lock key.
    pub lock_key: i64,
    /// MySQL's lock name (35 characters, under the 64 MySQL allows).
    pub lock_name: String,
}

/// The input of the lock identity: `<table>/<prefix>/<id>` (the table and
/// the id contain no '/', so it is unambiguous). Both databases compute the
/// same md5 in SQL to tell, in gc, which sessions are locked.
pub fn lock_identity(table: &str, prefix: &str, id: &str) -> String {
    [table, "/", prefix, "/", id].concat()
}

impl<'a> Target<'a> {
    pub fn new(table: &str, prefix: &str, id: &'a SessionId) -> Target<'a> {
        use md5::{Digest, Md5};
        let digest = Md5::digest(lock_identity(table, prefix, id.as_str()).as_bytes());
        let mut key = [0u8; 8];
        key.copy_from_slice(&digest[..8]);
        let mut lock_name = String::with_capacity(35);
        lock_name.push_str("rs_");
        for b in digest {
            lock_name.push_str(&format!("{b:02x}"));
        }
        Target { id, lock_key: i64::from_be_bytes(key), lock_name }
    }
}

/// One save as the dialects run it.
pub struct RowWrite<'a> {
    /// None: a touch (record the access only).
    pub data: Option<&'a [u8]>,
    pub meta: &'a Meta,
    pub now: i64,
    /// None: never expires.
    pub expires_at: Option<i64>,
    /// A touch writes only when the stored last access is at or before this.
    pub touch_before: i64,
    /// The incarnation the session had when read (it existed).
    pub fence: Option<i64>,
    /// Write-through: the version the row must still have (see
    /// [`Put::expect_version`]; for a new session: no live row at all); the
    /// row is written with `meta.version`.
    pub expect_version: Option<i64>,
    /// Saved under our lock (MySQL also checks it on the server).
    pub locked: bool,
    /// Free the lock after the write, in the same exchange.
    pub release: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Saved {
    Done,
    Killed,
    LockLost,
}

/// What a database does for the store. Each call is one exchange: one or
/// a few short statements sent together, never a transaction left open.
pub trait Backend: Send {
    fn name(&self) -> &'static str;
    /// The number of the connection in use, connecting first if there is
    /// none (or the one there was closed by the server). Locks taken on an
    /// earlier number are gone.
    fn connection(&mut self) -> Result<u64>;
    /// The number of the connection the last call used (no reconnecting).
    fn last_connection(&self) -> u64;
    /// Takes the lock within `wait` (zero: only if free), records the
    /// holder and reads the row. None: the wait ran out.
    fn lock_and_read(&mut self, t: &Target, holder_json: &str, wait: Duration) -> Result<Option<Option<Row>>>;
    fn read(&mut self, t: &Target) -> Result<Option<Row>>;
    fn save(&mut self, t: &Target, w: &RowWrite) -> Result<Saved>;
    fn unlock(&mut self, t: &Target) -> Result<()>;
    /// Whether a live session was deleted.
    fn destroy(&mut self, t: &Target) -> Result<bool>;
    fn exists(&mut self, t: &Target, now: i64) -> Result<bool>;
    /// Deletes sessions expired by `now` whose lock is free.
    fn gc(&mut self, now: i64, now_ms: i64) -> Result<u64>;
    /// None: the lock is free; Some(None): held, by someone who left no
    /// holder row for it.
    fn holder(&mut self, t: &Target) -> Result<Option<Option<String>>>;
    fn user_sessions(&mut self, user: &str) -> Result<Vec<(String, Row)>>;
    fn kill_user(&mut self, user: &str, keep: Option<&SessionId>) -> Result<u64>;
    fn kill_all(&mut self) -> Result<i64>;
}

/// A SQL store: the shared logic around a database's [`Backend`].
pub struct SqlStore<B: Backend> {
    pub(super) backend: B,
    table: String,
    prefix: String,
    lazy_touch: i64,
    /// Locks this store holds: their token and the connection they were
    /// taken on.
    held: HashMap<SessionId, (LockToken, u64)>,
}

impl<B: Backend> SqlStore<B> {
    pub fn new(backend: B, config: &SqlConfig) -> SqlStore<B> {
        SqlStore {
            backend,
            table: config.table.clone(),
            prefix: config.net.prefix.clone(),
            lazy_touch: config.lazy_touch.as_secs() as i64,
            held: HashMap::new(),
        }
    }

    #[cfg(test)]
    pub fn backend(&mut self) -> &mut B {
        &mut self.backend
    }

    fn target<'a>(&self, id: &'a SessionId) -> Target<'a> {
        Target::new(&self.table, &self.prefix, id)
    }

    /// The lazy window of a session with this timeout: `lazy_touch_s`, but
    /// at most half the timeout (a 10 s session must not live 60 s more).
    fn window(&self, timeout: i64) -> i64 {
        if timeout > 0 { self.lazy_touch.min(timeout / 2) } else { self.lazy_touch }
    }

    fn record(&self, row: Row, now: i64) -> Record {
        let meta = self.meta(&row, now);
        Record { meta, data: row.data }
    }

    /// The row's metadata, its last access moved by the lazy window (see
    /// the module comment).
    fn meta(&self, row: &Row, now: i64) -> Meta {
        let shifted = (row.last_access + self.window(row.timeout)).min(now).max(row.last_access);
        Meta {
            user: row.user.clone(),
            created: row.created.max(0) as u64,
            last_access: shifted.max(0) as u64,
            timeout: row.timeout.clamp(0, i64::from(u32::MAX)) as u32,
            timeout_set: row.timeout_set,
            first_ip: row.first_ip.clone(),
            last_ip: row.last_ip.clone(),
            generation: row.generation.max(0) as u64,
            incarnation: row.incarnation as u64,
            version: row.version.max(0) as u64,
            durable_at: 0,
        }
    }

    /// Whether `token` still holds `id`'s lock on the connection in use.
    fn holds(&mut self, id: &SessionId, token: LockToken) -> Result<bool> {
        let Some(&(t, conn)) = self.held.get(id) else {
            return Ok(false);
        };
        if t != token {
            return Ok(false);
        }
        if self.backend.connection()? != conn {
            // That connection is gone, and its lock with it.
            self.held.remove(id);
            return Ok(false);
        }
        Ok(true)
    }
}

fn now_secs() -> i64 {
    super::now_secs() as i64
}

impl<B: Backend> Store for SqlStore<B> {
    fn name(&self) -> &'static str {
        self.backend.name()
    }

    fn lock_and_read(&mut self, id: &SessionId, req: &LockRequest) -> Result<Locked> {
        let t = Target::new(&self.table, &self.prefix, id);
        if let Some(&(token, _)) = self.held.get(id) {
            if self.holds(id, token)? {
                // Held by this process already (another handler on the same
                // store): the database would grant it again, so refuse here.
                return Ok(Locked::TimedOut { holder: Some(req.holder.clone()) });
            }
        }
        let holder = serde_json::to_string(&req.holder).unwrap_or_default();
        match self.backend.lock_and_read(&t, &holder, req.wait)? {
            Some(row) => {
                let token = LockToken::random();
                let conn = self.backend.last_connection();
                self.held.insert(id.clone(), (token, conn));
                let now = now_secs();
                Ok(Locked::Acquired { token, record: row.map(|r| self.record(r, now)) })
            }
            None => {
                let holder = self.backend.holder(&t).ok().flatten().map(|h| parse_holder(h.as_deref()));
                Ok(Locked::TimedOut { holder })
            }
        }
    }

    fn read(&mut self, id: &SessionId) -> Result<Option<Record>> {
        let t = self.target(id);
        let row = self.backend.read(&t)?;
        let now = now_secs();
        Ok(row.map(|r| self.record(r, now)))
    }

    fn save(&mut self, id: &SessionId, put: &Put<'_>) -> Result<u64> {
        if let Some(token) = put.lock.token() {
            if !self.holds(id, token)? {
                self.held.remove(id);
                return Err(StoreError::LockLost);
            }
        }
        let now = now_secs();
        let timeout = i64::from(put.meta.timeout);
        let window = self.window(timeout);
        let w = RowWrite {
            data: match put.what {
                Save::Write(d) => Some(d),
                Save::Touch => None,
            },
            meta: put.meta,
            now,
            expires_at: (timeout > 0).then(|| now + timeout + window),
            touch_before: now - window,
            fence: put.existed.then_some(put.meta.incarnation as i64),
            expect_version: put.expect_version.map(|v| v as i64),
            locked: put.lock.token().is_some(),
            release: put.lock.releases(),
        };
        let t = self.target(id);
        let saved = self.backend.save(&t, &w);
        // The release ran with the write. On an error it may not have: the
        // lock stays on the books for the caller's unlock.
        if (put.lock.releases() && saved.is_ok()) || matches!(saved, Ok(Saved::LockLost)) {
            self.held.remove(id);
        }
        match saved? {
            Saved::Done => Ok(put.meta.generation),
            Saved::Killed => Err(StoreError::Killed),
            Saved::LockLost => Err(StoreError::LockLost),
        }
    }

    fn unlock(&mut self, id: &SessionId, token: LockToken) -> Result<()> {
        if !self.holds(id, token)? {
            return Ok(());
        }
        self.held.remove(id);
        let t = self.target(id);
        self.backend.unlock(&t)
    }

    fn destroy(&mut self, id: &SessionId) -> Result<bool> {
        let t = self.target(id);
        self.backend.destroy(&t)
    }

    fn exists(&mut self, id: &SessionId) -> Result<bool> {
        let t = self.target(id);
        self.backend.exists(&t, now_secs())
    }

    /// One DELETE over the expiry index. The expiry stored is the one in
    /// force at the last write (as Redis's key expiry is): a lowered
    /// gc_maxlifetime is honoured at read, and by gc once that passes.
    fn gc(&mut self, _default_timeout: u32) -> Result<u64> {
        self.backend.gc(now_secs(), super::now_ms() as i64)
    }

    fn lock_holder(&mut self, id: &SessionId) -> Result<Option<Holder>> {
        let t = self.target(id);
        Ok(self.backend.holder(&t)?.map(|h| parse_holder(h.as_deref())))
    }
}

impl<B: Backend> Registry for SqlStore<B> {
    fn user_sessions(&mut self, user: &str) -> Result<Vec<Listed>> {
        let rows = self.backend.user_sessions(user)?;
        let now = now_secs();
        Ok(rows
            .into_iter()
            .filter_map(|(id, row)| Some(Listed { id: SessionId::parse(id.as_bytes())?, meta: self.meta(&row, now) }))
            .collect())
    }

    fn kill_user(&mut self, user: &str, keep: Option<&SessionId>) -> Result<u64> {
        self.backend.kill_user(user, keep)
    }

    fn kill_all(&mut self) -> Result<i64> {
        self.backend.kill_all()
    }
}

fn parse_holder(json: Option<&str>) -> Holder {
    json.and_then(|j| serde_json::from_str(j).ok()).unwrap_or_else(Holder::unknown)
}

/// The holder JSON cut to at most `max` bytes: the request's URI is
/// shortened (the rest is short), so the row still parses and names host,
/// process and time.
pub fn holder_json(json: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if json.len() <= max {
        return json.into();
    }
    let Ok(mut h) = serde_json::from_str::<Holder>(json) else {
        return "{}".into();
    };
    while !h.uri.is_empty() {
        let keep = h.uri.floor_char_boundary(h.uri.len() / 2);
        h.uri.truncate(keep);
        let cut = serde_json::to_string(&h).unwrap_or_default();
        if cut.len() <= max {
            return cut.into();
        }
    }
    let cut = serde_json::to_string(&h).unwrap_or_default();
    if cut.len() <= max { cut.into() } else { "{}".into() }
}

/// The row of one connection in the holders table: host, PHP process and
/// the server's id for the connection (two stores in one process hold
/// locks on two connections).
pub fn holder_slot(connection: i64) -> i64 {
    use md5::{Digest, Md5};
    let who = format!("{}/{}/{connection}", crate::engine::hostname(), std::process::id());
    let d = Md5::digest(who.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    i64::from_be_bytes(b)
}

/// The user to connect as when the save_path names none: the operating
/// system's, as libpq and the mysql client take it.
pub fn default_user(config: &SqlConfig, store: &'static str) -> Result<String> {
    if let Some(u) = &config.user {
        return Ok(u.clone());
    }
    std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).map_err(|_| StoreError::Backend {
        store,
        message: "the save_path names no user and $USER is not set; give one: …://user:password@host/dbname".into(),
    })
}

/// The DDL of the SQL store a config names (`php/bin/rsession schema`), as
/// statements; None for the other stores, which need none.
pub fn schema_of(config: &crate::config::StoreConfig) -> Option<Vec<String>> {
    use crate::config::StoreConfig;
    match config {
        StoreConfig::Pgsql(c) => Some(pgsql::schema(&Tables::of(c))),
        StoreConfig::Mysql(c) => Some(mysql::schema(&Tables::of(c))),
        StoreConfig::WriteThrough { store, .. } => schema_of(store),
        _ => None,
    }
}

/// Creates the tables a config names where missing (`rsession schema
/// --apply`): what the store does on its first connection.
pub fn apply_schema(config: &crate::config::StoreConfig) -> Result<()> {
    use crate::config::StoreConfig;
    match config {
        StoreConfig::Pgsql(c) => pgsql::apply_schema(c),
        StoreConfig::Mysql(c) => mysql::apply_schema(c),
        StoreConfig::WriteThrough { store, .. } => apply_schema(store),
        other => Err(StoreError::Backend { store: other.store_name(), message: "has no SQL schema".into() }),
    }
}

/// Tests both SQL stores share, against a real server.
#[cfg(test)]
pub(crate) mod tests {
    use std::time::Instant;

    use super::*;
    use crate::store::testing::{TTL, data, id, meta, put, read_data, req};
    use crate::store::{LockUse, UserChange};

    /// A store on the test server, with its own prefix.
    pub type Open<'a, S> = &'a dyn Fn(&str) -> S;

    /// The tests every SQL store runs as they are, given its `store(prefix)`.
    macro_rules! shared_sql_tests {
        ($store:ident) => {
            #[test]
            fn registry() {
                crate::store::testing::registry_contract(&|| Box::new($store("registry")));
            }
            #[test]
            fn lock_write_release_and_holder() {
                crate::store::sql::tests::lock_write_release_and_holder(&$store);
            }
            #[test]
            fn waiter_is_woken_at_release() {
                crate::store::sql::tests::waiter_is_woken_at_release(&$store, || $store("wake"));
            }
            #[test]
            fn zero_wait_fails_at_once_and_waits_are_bounded() {
                crate::store::sql::tests::zero_wait_fails_at_once_and_waits_are_bounded(&$store);
            }
            #[test]
            fn a_held_lock_is_not_granted_again_to_its_own_process() {
                crate::store::sql::tests::a_held_lock_is_not_granted_again_to_its_own_process(&$store);
            }
            #[test]
            fn a_short_timeout_is_not_stretched_by_the_window() {
                crate::store::sql::tests::a_short_timeout_is_not_stretched_by_the_window(&$store);
            }
            #[test]
            fn gc_removes_expired_unlocked_sessions_and_counts_them() {
                crate::store::sql::tests::gc_removes_expired_unlocked_sessions_and_counts_them(&$store);
            }
            #[test]
            fn hostile_ids_and_user_names_are_data() {
                crate::store::sql::tests::hostile_ids_and_user_names_are_data(&$store);
            }
        };
    }
    pub(crate) use shared_sql_tests;

    pub fn lock_write_release_and_holder<S: Store>(open: Open<S>) {
        let (mut a, mut b) = (open("lwr"), open("lwr"));
        let s = id("abc");
        let Locked::Acquired { token, record: None } = a.lock_and_read(&s, &req(0, 5000)).unwrap() else { panic!() };
        let h = b.lock_holder(&s).unwrap().expect("held");
        assert_eq!((h.pid, h.uri.as_str()), (7, "/t"));
        let Locked::TimedOut { holder: Some(h) } = b.lock_and_read(&s, &req(50, 5000)).unwrap() else { panic!() };
        assert_eq!(h.uri, "/t");
        a.save(&s, &put(Save::Write(b"x\0y\xff"), &meta(), TTL, LockUse::Release(token))).unwrap();
        assert!(b.lock_holder(&s).unwrap().is_none());
        let Locked::Acquired { token, record } = b.lock_and_read(&s, &req(0, 5000)).unwrap() else { panic!() };
        assert_eq!(data(record).as_deref(), Some(&b"x\0y\xff"[..]));
        b.unlock(&s, token).unwrap();
        assert!(b.lock_holder(&s).unwrap().is_none());
        assert!(b.destroy(&s).unwrap());
        assert!(!b.exists(&s).unwrap());
    }

    pub fn waiter_is_woken_at_release<S: Store + 'static>(open: Open<S>, reopen: fn() -> S) {
        let mut a = open("wake");
        let s = id("abc");
        let Locked::Acquired { token, .. } = a.lock_and_read(&s, &req(0, 5000)).unwrap() else { panic!() };
        let waiter = std::thread::spawn(move || {
            let mut b = reopen();
            let got = matches!(b.lock_and_read(&id("abc"), &req(5000, 5000)).unwrap(), Locked::Acquired { .. });
            (got, Instant::now())
        });
        std::thread::sleep(Duration::from_millis(300));
        let released = Instant::now();
        a.save(&s, &put(Save::Write(b"1"), &meta(), TTL, LockUse::Release(token))).unwrap();
        let (got, acquired) = waiter.join().unwrap();
        assert!(got);
        assert!(acquired.duration_since(released) < Duration::from_millis(200), "{:?}", acquired.duration_since(released));
    }

    pub fn zero_wait_fails_at_once_and_waits_are_bounded<S: Store>(open: Open<S>) {
        let (mut a, mut b) = (open("zero"), open("zero"));
        let s = id("abc");
        let Locked::Acquired { token, .. } = a.lock_and_read(&s, &req(0, 5000)).unwrap() else { panic!() };
        let t = Instant::now();
        let Locked::TimedOut { holder: Some(h) } = b.lock_and_read(&s, &req(0, 5000)).unwrap() else { panic!() };
        assert!(t.elapsed() < Duration::from_millis(200), "{:?}", t.elapsed());
        assert_eq!((h.host.as_str(), h.pid), ("h", 7));
        let t = Instant::now();
        assert!(matches!(b.lock_and_read(&s, &req(1200, 5000)).unwrap(), Locked::TimedOut { .. }));
        assert!(t.elapsed() >= Duration::from_millis(1000) && t.elapsed() < Duration::from_millis(2500), "{:?}", t.elapsed());
        // The wait left nothing behind: the holder still holds, then frees.
        assert!(b.lock_holder(&s).unwrap().is_some());
        a.unlock(&s, token).unwrap();
        assert!(matches!(b.lock_and_read(&s, &req(0, 5000)).unwrap(), Locked::Acquired { .. }));
    }

    /// The same process asking again for a lock it holds is refused, not
    /// granted twice.
    pub fn a_held_lock_is_not_granted_again_to_its_own_process<S: Store>(open: Open<S>) {
        let mut a = open("again");
        let s = id("abc");
        let Locked::Acquired { token, .. } = a.lock_and_read(&s, &req(0, 5000)).unwrap() else { panic!() };
        assert!(matches!(a.lock_and_read(&s, &req(0, 5000)).unwrap(), Locked::TimedOut { .. }));
        a.unlock(&s, token).unwrap();
        assert!(matches!(a.lock_and_read(&s, &req(0, 5000)).unwrap(), Locked::Acquired { .. }));
    }

    /// `kill` ends the connection of store `a` from the server's side, as
    /// pg_terminate_backend() or KILL do.
    pub fn a_killed_connection_loses_its_lock_and_may_not_write<S: Store>(open: Open<S>, kill: &dyn Fn(&mut S, &mut S)) {
        let (mut a, mut b) = (open("killed"), open("killed"));
        let s = id("abc");
        crate::store::testing::write(&mut b, &s, b"before");
        let Locked::Acquired { token, record: Some(rec) } = a.lock_and_read(&s, &req(0, 5000)).unwrap() else { panic!() };
        kill(&mut a, &mut b);
        let Locked::Acquired { token: t2, .. } = b.lock_and_read(&s, &req(2000, 5000)).unwrap() else {
            panic!("the killed holder's lock must be free")
        };
        b.save(&s, &Put { existed: true, ..put(Save::Write(b"theirs"), &rec.meta, TTL, LockUse::Keep(t2)) }).unwrap();
        let p = Put { existed: true, ..put(Save::Write(b"mine"), &rec.meta, TTL, LockUse::Release(token)) };
        assert!(matches!(a.save(&s, &p), Err(StoreError::LockLost)), "the killed holder wrote");
        assert_eq!(read_data(&mut b, &s).as_deref(), Some(&b"theirs"[..]));
        assert!(a.lock_holder(&s).unwrap().is_some(), "the loser must not free the winner's lock");
        b.unlock(&s, t2).unwrap();
        // And the killed store works again on a new connection.
        let Locked::Acquired { token, .. } = a.lock_and_read(&s, &req(0, 5000)).unwrap() else { panic!() };
        a.unlock(&s, token).unwrap();
    }

    pub fn lazy_touch_writes_at_most_once_per_window<S: Store>(open: Open<S>, last_access: &dyn Fn(&mut S, &SessionId) -> i64) {
        let mut a = open("lazy");
        let s = id("abc");
        let old = Meta { last_access: now_secs() as u64 - 30, ..meta() };
        a.save(&s, &put(Save::Write(b"x"), &old, TTL, LockUse::Unlocked)).unwrap();
        let stored = last_access(&mut a, &s);
        assert!(stored + 2 >= now_secs(), "a write records the access");
        // Within the window (60 s, timeout 100 s): the touch writes nothing ...
        let p = Put { existed: true, ..put(Save::Touch, &old, TTL, LockUse::Unlocked) };
        a.save(&s, &p).unwrap();
        assert_eq!(last_access(&mut a, &s), stored, "a touch within the window wrote");
        // ... but the session reads as used up to now, never as idle early.
        assert!(a.read(&s).unwrap().unwrap().meta.last_access + 1 >= now_secs() as u64);
        // A touch of a killed session is refused even when it writes nothing.
        let m = a.read(&s).unwrap().unwrap().meta;
        a.destroy(&s).unwrap();
        assert!(matches!(a.save(&s, &Put { existed: true, ..put(Save::Touch, &m, TTL, LockUse::Unlocked) }), Err(StoreError::Killed)));
    }

    pub fn a_short_timeout_is_not_stretched_by_the_window<S: Store>(open: Open<S>) {
        let mut a = open("short");
        let s = id("abc");
        let m = Meta { timeout: 2, timeout_set: true, ..meta() };
        a.save(&s, &put(Save::Write(b"x"), &m, Duration::from_secs(2), LockUse::Unlocked)).unwrap();
        let read = a.read(&s).unwrap().unwrap().meta;
        assert!(read.last_access <= now_secs() as u64);
        std::thread::sleep(Duration::from_millis(4200));
        let read = a.read(&s).unwrap().unwrap().meta;
        // Window = 1 s (half the timeout): idle for more than 2 s now.
        assert!(read.expired(now_secs() as u64, 1440), "{read:?}");
    }

    pub fn gc_removes_expired_unlocked_sessions_and_counts_them<S: Store>(open: Open<S>) {
        let mut a = open("gc");
        let short = Meta { timeout: 1, timeout_set: true, ..meta() };
        for n in ["g1", "g2", "g3"] {
            a.save(&id(n), &put(Save::Write(b"x"), &short, Duration::from_secs(1), LockUse::Unlocked)).unwrap();
        }
        let never = Meta { timeout: 0, timeout_set: true, ..meta() };
        a.save(&id("g4"), &put(Save::Write(b"x"), &never, Duration::ZERO, LockUse::Unlocked)).unwrap();
        crate::store::testing::write(&mut a, &id("g5"), b"fresh");
        let Locked::Acquired { token, .. } = a.lock_and_read(&id("g3"), &req(0, 5000)).unwrap() else { panic!() };
        std::thread::sleep(Duration::from_millis(2200));
        assert_eq!(a.gc(1440).unwrap(), 2, "g1 and g2; g3 is locked, g4 never expires, g5 is fresh");
        assert!(a.exists(&id("g4")).unwrap() && a.exists(&id("g5")).unwrap());
        a.unlock(&id("g3"), token).unwrap();
        assert_eq!(a.gc(1440).unwrap(), 1);
    }

    pub fn hostile_ids_and_user_names_are_data<S: Store>(open: Open<S>) {
        let mut a = open("hostile'\"\\;");
        let s = id("a-b,c--");
        let m = Meta { user: Some("x'); DROP TABLE t; --\0\u{e9}".into()), ..meta() };
        a.save(&s, &Put { user: UserChange::From(None), ..put(Save::Write(b"'\"\\\0"), &m, TTL, LockUse::Unlocked) }).unwrap();
        assert_eq!(read_data(&mut a, &s).as_deref(), Some(&b"'\"\\\0"[..]));
        let listed = a.user_sessions("x'); DROP TABLE t; --\0\u{e9}").unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(a.kill_user("x'); DROP TABLE t; --\0\u{e9}", None).unwrap(), 1);
    }

    pub fn large_data_round_trips<S: Store>(open: Open<S>, size: usize) {
        let mut a = open("large");
        let s = id("abc");
        let big: Vec<u8> = (0..size).map(|i| (i * 7 + i / 251) as u8).collect();
        let Locked::Acquired { token, .. } = a.lock_and_read(&s, &req(0, 5000)).unwrap() else { panic!() };
        a.save(&s, &put(Save::Write(&big), &meta(), TTL, LockUse::Release(token))).unwrap();
        assert!(read_data(&mut a, &s).as_deref() == Some(&big[..]), "{size} bytes came back changed");
    }

    /// Workers racing to create a missing table all succeed: `open`
    /// makes a store on a table of the given name.
    pub fn racing_workers_create_the_table_once<S: Store + 'static>(open: fn(&str) -> S, table: &str, drop: &dyn Fn(&mut S)) {
        let workers: Vec<_> = (0..4)
            .map(|n| {
                let table = table.to_string();
                std::thread::spawn(move || {
                    let mut s = open(&table);
                    crate::store::testing::write(&mut s, &id(&format!("race{n}")), b"x");
                    s
                })
            })
            .collect();
        let mut stores: Vec<S> = workers.into_iter().map(|w| w.join().expect("a worker failed")).collect();
        for n in 0..4 {
            assert_eq!(read_data(&mut stores[0], &id(&format!("race{n}"))).as_deref(), Some(&b"x"[..]));
        }
        drop(&mut stores[0]);
    }

    pub fn down_server_is_an_error_not_a_hang(path: &str) {
        let config = crate::config::StoreConfig::parse(path, std::path::Path::new("/tmp")).unwrap();
        let mut s = crate::store::open(&config).unwrap();
        let t = Instant::now();
        let e = s.read(&id("abc")).unwrap_err().to_string();
        assert!(e.contains("127.0.0.1:1") && e.contains("cannot connect"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn a_long_holder_is_cut_in_its_uri_and_still_parses() {
        let uri: String = "/p\u{e9}\"\\".repeat(2000);
        let h = Holder { host: "web1".into(), pid: 42, uri: uri.clone(), since_ms: 1_700_000_000_123, member: None };
        let full = serde_json::to_string(&h).unwrap();
        assert_eq!(holder_json(&full, 4 * full.len()), full, "a short one is kept whole");
        let cut = holder_json(&full, 1024);
        assert!(cut.len() <= 1024, "{}", cut.len());
        let back = parse_holder(Some(&cut));
        assert_eq!((back.host.as_str(), back.pid, back.since_ms), ("web1", 42, 1_700_000_000_123));
        assert!(!back.uri.is_empty() && uri.starts_with(&back.uri), "{}", back.uri);
        // Nothing to cut but the URI, and still too long: an empty holder.
        assert_eq!(holder_json(&full, 10), "{}");
    }

    #[test]
    fn lock_names_are_short_distinct_and_match_the_sql_identity() {
        let (a, b) = (id("abc"), id("abd"));
        let ta = Target::new("t", "p:", &a);
        assert_eq!(ta.lock_name.len(), 35);
        assert_ne!(ta.lock_key, Target::new("t", "p:", &b).lock_key);
        assert_ne!(ta.lock_key, Target::new("t2", "p:", &a).lock_key);
        assert_ne!(ta.lock_key, Target::new("t", "q:", &a).lock_key);
        // md5("t/p:/abc"), as the databases compute it in gc.
        use md5::{Digest, Md5};
        let hex: String = Md5::digest(b"t/p:/abc").iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(ta.lock_name, format!("rs_{hex}"));
        assert_eq!(
            ta.lock_key,
            i64::from_str_radix(&hex[..16], 16).unwrap_or_else(|_| u64::from_str_radix(&hex[..16], 16).unwrap() as i64)
        );
    }
}

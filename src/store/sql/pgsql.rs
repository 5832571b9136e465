//! PostgreSQL: session-level advisory locks, statements prepared once per
//! connection and pipelined (lock + holder + read in one round trip; write
//! + unlock in another, the write committed before the unlock runs).

use std::time::Duration;

use super::pg_wire::{self, BOOL, BYTEA, Connection, INT8, Outcome, Param, Statement, TEXT, columns};
use super::{Backend, HOLDER_MAX_AGE_MS, Row, RowWrite, Saved, SqlStore, Tables, Target, default_user, holder_slot};
use crate::config::{SqlAddr, SqlConfig};
use crate::error::StoreError;
use crate::store::{Result, SessionId};

const NAME: &str = "pgsql";

/// Time allowed beyond timeout_ms for statements over many rows (gc,
/// kill_all_sessions()): a million sessions take seconds to delete.
const BULK: Duration = Duration::from_secs(60);

/// SQLSTATE of a lock wait that ran out (lock_timeout).
const LOCK_NOT_AVAILABLE: &str = "55P03";

/// The DDL, idempotent: `CREATE … IF NOT EXISTS` throughout.
pub fn schema(tables: &Tables) -> Vec<String> {
    let Tables { sessions: t, generation: g, holders: h } = tables;
    vec![
        format!(
            "CREATE TABLE IF NOT EXISTS \"{t}\" (\n  prefix text NOT NULL,\n  id text NOT NULL,\n  data bytea NOT NULL,\n  \
             user_id bytea,\n  created bigint NOT NULL,\n  last_access bigint NOT NULL,\n  timeout bigint NOT NULL,\n  \
             timeout_set boolean NOT NULL,\n  first_ip bytea,\n  last_ip bytea,\n  incarnation bigint NOT NULL,\n  \
             generation bigint NOT NULL,\n  expires_at bigint,\n  version bigint NOT NULL DEFAULT 0,\n  \
             PRIMARY KEY (prefix, id)\n)"
        ),
        // Tables made before write-through's version column.
        format!("ALTER TABLE \"{t}\" ADD COLUMN IF NOT EXISTS version bigint NOT NULL DEFAULT 0"),
        format!("CREATE INDEX IF NOT EXISTS \"{t}_user\" ON \"{t}\" (prefix, user_id) WHERE user_id IS NOT NULL"),
        format!("CREATE INDEX IF NOT EXISTS \"{t}_expiry\" ON \"{t}\" (prefix, expires_at) WHERE expires_at IS NOT NULL"),
        format!("CREATE TABLE IF NOT EXISTS \"{g}\" (\n  prefix text PRIMARY KEY,\n  generation bigint NOT NULL\n)"),
        // Unlogged: written at every lock, needed only while the lock is.
        format!(
            "CREATE UNLOGGED TABLE IF NOT EXISTS \"{h}\" (\n  slot bigint PRIMARY KEY,\n  conn integer NOT NULL,\n  \
             lock_key bigint NOT NULL,\n  holder text NOT NULL,\n  since bigint NOT NULL\n)"
        ),
    ]
}

// The statements, by index.
const SET_LOCK_TIMEOUT: usize = 0;
const LOCK: usize = 1;
const TRY_LOCK: usize = 2;
const UNLOCK: usize = 3;
const HOLDER: usize = 4;
const READ: usize = 5;
const UPDATE: usize = 6;
const UPSERT: usize = 7;
const TOUCH: usize = 8;
const DESTROY: usize = 9;
const EXISTS: usize = 10;
const GC: usize = 11;
const GC_HOLDERS: usize = 12;
const HOLDER_OF: usize = 13;
const USER_SESSIONS: usize = 14;
const KILL_USER: usize = 15;
const KILL_ALL: usize = 16;
const TABLES_EXIST: usize = 17;
const UPDATE_FENCED: usize = 18;
const INSERT_FENCED: usize = 19;

const ROW: &str = "s.data, s.user_id, s.created, s.last_access, s.timeout, s.timeout_set, s.first_ip, s.last_ip, s.incarnation, s.generation, s.version";
const WRITE_TYPES: &[u32] = &[TEXT, TEXT, BYTEA, BYTEA, INT8, INT8, INT8, BOOL, BYTEA, BYTEA, INT8, INT8, INT8];
const FENCED_TYPES: &[u32] = &[TEXT, TEXT, BYTEA, BYTEA, INT8, INT8, INT8, BOOL, BYTEA, BYTEA, INT8, INT8, INT8, INT8];

fn statements(tables: &Tables) -> Vec<Statement> {
    let Tables { sessions: t, generation: g, holders: h } = tables;
    let current = format!("coalesce((SELECT g.generation FROM \"{g}\" g WHERE g.prefix = $1), 0)");
    let this_db = "(SELECT oid FROM pg_database WHERE datname = current_database())";
    let st = |sql: String, types: &'static [u32]| Statement { sql, types };
    vec![
        st("SELECT set_config('lock_timeout', $1, false)".into(), &[TEXT]),
        st("SELECT pg_advisory_lock($1)".into(), &[INT8]),
        st("SELECT pg_try_advisory_lock($1)".into(), &[INT8]),
        st("SELECT pg_advisory_unlock($1)".into(), &[INT8]),
        st(
            format!(
                "INSERT INTO \"{h}\" (slot, conn, lock_key, holder, since) VALUES ($1, pg_backend_pid(), $2, $3, $4) \
                 ON CONFLICT (slot) DO UPDATE SET conn = EXCLUDED.conn, lock_key = EXCLUDED.lock_key, \
                 holder = EXCLUDED.holder, since = EXCLUDED.since"
            ),
            &[INT8, INT8, TEXT, INT8],
        ),
        st(
            format!("SELECT {ROW} FROM \"{t}\" s WHERE s.prefix = $1 AND s.id = $2 AND s.generation >= {current}"),
            &[TEXT, TEXT],
        ),
        st(
            format!(
                "UPDATE \"{t}\" SET data = $3, user_id = $4, created = $5, last_access = $6, timeout = $7, \
                 timeout_set = $8, first_ip = $9, last_ip = $10, expires_at = $11, version = $13 \
                 WHERE prefix = $1 AND id = $2 AND incarnation = $12 AND generation >= {current}"
            ),
            WRITE_TYPES,
        ),
        // A new session: created, or (written meanwhile by another request
        // without the lock) overwritten, keeping its incarnation unless a
        // kill_all ended it.
        st(
            format!(
                "INSERT INTO \"{t}\" AS s (prefix, id, data, user_id, created, last_access, timeout, timeout_set, \
                 first_ip, last_ip, expires_at, incarnation, version, generation) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, {current}) \
                 ON CONFLICT (prefix, id) DO UPDATE SET data = EXCLUDED.data, user_id = EXCLUDED.user_id, \
                 created = EXCLUDED.created, last_access = EXCLUDED.last_access, timeout = EXCLUDED.timeout, \
                 timeout_set = EXCLUDED.timeout_set, first_ip = EXCLUDED.first_ip, last_ip = EXCLUDED.last_ip, \
                 expires_at = EXCLUDED.expires_at, version = EXCLUDED.version, \
                 incarnation = CASE WHEN s.generation < EXCLUDED.generation THEN EXCLUDED.incarnation ELSE s.incarnation END, \
                 generation = greatest(s.generation, EXCLUDED.generation)"
            ),
            WRITE_TYPES,
        ),
        // Whether the session is alive; its access is written only when the
        // stored one is at or before $6.
        st(
            format!(
                "WITH live AS (SELECT s.last_access FROM \"{t}\" s WHERE s.prefix = $1 AND s.id = $2 \
                 AND ($3::bigint IS NULL OR s.incarnation = $3) AND s.generation >= {current}), \
                 touched AS (UPDATE \"{t}\" s SET last_access = $4, expires_at = $5 FROM live \
                 WHERE s.prefix = $1 AND s.id = $2 AND live.last_access <= $6 RETURNING 1) \
                 SELECT count(*) FROM live"
            ),
            &[TEXT, TEXT, INT8, INT8, INT8, INT8],
        ),
        st(
            format!(
                "WITH d AS (DELETE FROM \"{t}\" WHERE prefix = $1 AND id = $2 RETURNING generation) \
                 SELECT count(*) FROM d WHERE d.generation >= {current}"
            ),
            &[TEXT, TEXT],
        ),
        st(
            format!(
                "SELECT 1 FROM \"{t}\" s WHERE s.prefix = $1 AND s.id = $2 \
                 AND (s.expires_at IS NULL OR s.expires_at >= $3) AND s.generation >= {current}"
            ),
            &[TEXT, TEXT, INT8],
        ),
        // A session whose lock is held is in use: its key (the md5 of the
        // lock identity, as Target::new computes it) is among pg_locks'.
        st(
            format!(
                "DELETE FROM \"{t}\" s WHERE s.prefix = $1 AND s.expires_at < $2 \
                 AND ('x' || substr(md5($3 || s.prefix || '/' || s.id), 1, 16))::bit(64)::bigint NOT IN \
                 (SELECT (l.classid::bigint << 32) | l.objid::bigint FROM pg_locks l \
                 WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.database = {this_db})"
            ),
            &[TEXT, INT8, TEXT],
        ),
        st(format!("DELETE FROM \"{h}\" WHERE since < $1"), &[INT8]),
        // The holder row is believed only for the process that really holds
        // the lock now.
        st(
            format!(
                "SELECT h.holder FROM pg_locks l LEFT JOIN \"{h}\" h ON h.conn = l.pid AND h.lock_key = $1 \
                 WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted AND l.database = {this_db} \
                 AND l.classid::bigint = (($1 >> 32) & 4294967295) AND l.objid::bigint = ($1 & 4294967295) \
                 ORDER BY h.since DESC NULLS LAST LIMIT 1"
            ),
            &[INT8],
        ),
        st(
            format!(
                "SELECT ''::bytea, s.user_id, s.created, s.last_access, s.timeout, s.timeout_set, s.first_ip, s.last_ip, \
                 s.incarnation, s.generation, s.version, s.id FROM \"{t}\" s \
                 WHERE s.prefix = $1 AND s.user_id = $2 AND s.generation >= {current}"
            ),
            &[TEXT, BYTEA],
        ),
        st(
            format!(
                "WITH d AS (DELETE FROM \"{t}\" WHERE prefix = $1 AND user_id = $2 AND id <> $3 RETURNING generation) \
                 SELECT count(*) FROM d WHERE d.generation >= {current}"
            ),
            &[TEXT, BYTEA, TEXT],
        ),
        // One statement, so atomic: the generation moves (reads and fenced
        // writes check it) and the sessions it ended go.
        st(
            format!(
                "WITH g AS (INSERT INTO \"{g}\" AS g (prefix, generation) VALUES ($1, 1) \
                 ON CONFLICT (prefix) DO UPDATE SET generation = g.generation + 1 RETURNING g.generation), \
                 d AS (DELETE FROM \"{t}\" s WHERE s.prefix = $1 AND s.generation < (SELECT generation FROM g) RETURNING 1) \
                 SELECT count(*) FROM d"
            ),
            &[TEXT],
        ),
        st(
            "SELECT to_regclass($1) IS NOT NULL AND to_regclass($2) IS NOT NULL AND to_regclass($3) IS NOT NULL \
             AND EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = 'version' AND NOT attisdropped)"
                .into(),
            &[TEXT, TEXT, TEXT],
        ),
        // Write-through's fenced write: (written, the session is alive),
        // the second from before the update, to tell a newer version
        // (LockLost) from a kill.
        st(
            format!(
                "WITH u AS (UPDATE \"{t}\" SET data = $3, user_id = $4, created = $5, last_access = $6, timeout = $7, \
                 timeout_set = $8, first_ip = $9, last_ip = $10, expires_at = $11, version = $13 \
                 WHERE prefix = $1 AND id = $2 AND incarnation = $12 AND version = $14 AND generation >= {current} RETURNING 1) \
                 SELECT (SELECT count(*) FROM u), (SELECT count(*) FROM \"{t}\" s WHERE s.prefix = $1 AND s.id = $2 \
                 AND s.incarnation = $12 AND s.generation >= {current})"
            ),
            FENCED_TYPES,
        ),
        // Write-through's new session: only if no live one exists (another
        // request created it meanwhile: a lost lock), else nothing.
        st(
            format!(
                "INSERT INTO \"{t}\" AS s (prefix, id, data, user_id, created, last_access, timeout, timeout_set, \
                 first_ip, last_ip, expires_at, incarnation, version, generation) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, {current}) \
                 ON CONFLICT (prefix, id) DO UPDATE SET data = EXCLUDED.data, user_id = EXCLUDED.user_id, \
                 created = EXCLUDED.created, last_access = EXCLUDED.last_access, timeout = EXCLUDED.timeout, \
                 timeout_set = EXCLUDED.timeout_set, first_ip = EXCLUDED.first_ip, last_ip = EXCLUDED.last_ip, \
                 expires_at = EXCLUDED.expires_at, version = EXCLUDED.version, incarnation = EXCLUDED.incarnation, \
                 generation = EXCLUDED.generation WHERE s.generation < EXCLUDED.generation"
            ),
            WRITE_TYPES,
        ),
    ]
}

pub struct PgBackend {
    config: SqlConfig,
    tables: Tables,
    prefix: String,
    statements: Vec<Statement>,
    conn: Option<Connection>,
    /// Counts connections opened: a lock belongs to the one it was taken on.
    number: u64,
    /// lock_timeout as last set on this connection (ms).
    lock_timeout: Option<u64>,
    /// For messages: where the server is.
    addr: String,
    slot: i64,
}

pub type PgStore = SqlStore<PgBackend>;

pub fn open(config: &SqlConfig) -> Result<PgStore> {
    let addr = match &config.addr {
        SqlAddr::Tcp { host, port } => format!("{host}:{port}"),
        SqlAddr::Unix { path } => path.display().to_string(),
    };
    let tables = Tables::of(config);
    let backend = PgBackend {
        config: config.clone(),
        statements: statements(&tables),
        tables,
        prefix: config.net.prefix.clone(),
        conn: None,
        number: 0,
        lock_timeout: None,
        addr,
        slot: 0,
    };
    Ok(SqlStore::new(backend, config))
}

fn backend(addr: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend { store: NAME, message: format!("{addr}: {e}") }
}

type Replies = Vec<std::result::Result<Outcome, pg_wire::Error>>;

impl PgBackend {
    /// The open connection: a new one if there is none or the server
    /// closed the one there was (restart, pg_terminate_backend).
    fn conn(&mut self) -> Result<&mut Connection> {
        if self.conn.as_ref().is_some_and(|c| !c.idle_ok()) {
            self.conn = None;
        }
        if self.conn.is_none() {
            let user = default_user(&self.config, NAME)?;
            let mut c = Connection::open(&self.config, &user).map_err(|e| backend(&self.addr, format!("cannot connect: {e}")))?;
            self.number += 1;
            self.lock_timeout = None;
            self.slot = holder_slot(i64::from(c.backend_pid));
            self.ensure_schema(&mut c)?;
            self.conn = Some(c);
        }
        Ok(self.conn.as_mut().expect("connected above"))
    }

    /// Creates the tables if one is missing (the first use on a new
    /// database). Workers racing here queue on an advisory lock, so the
    /// second finds the tables made; each statement is IF NOT EXISTS.
    fn ensure_schema(&self, c: &mut Connection) -> Result<()> {
        let quoted = [&self.tables.sessions, &self.tables.generation, &self.tables.holders].map(|t| format!("\"{t}\""));
        let params = quoted.each_ref().map(|q| Param::Text(q));
        let replies = c.pipeline(&self.statements, &[(TABLES_EXIST, &params)], Duration::ZERO);
        let exists = match replies {
            Ok(mut r) => match r.remove(0) {
                Ok(o) => o.rows.first().and_then(|row| pg_wire::boolean(columns(row).ok()?[0])).unwrap_or(false),
                Err(e) => return Err(backend(&self.addr, format!("checking the tables: {e}"))),
            },
            Err(e) => return Err(backend(&self.addr, format!("checking the tables: {e}"))),
        };
        if exists {
            return Ok(());
        }
        let sql = apply_sql(&self.tables);
        if let Err(e) = c.simple(&sql) {
            let _ = c.simple("ROLLBACK");
            return Err(backend(
                &self.addr,
                format!(
                    "cannot create the table \"{}\": {e}; create it as a user allowed to (php/bin/rsession schema --apply)",
                    self.tables.sessions
                ),
            ));
        }
        Ok(())
    }

    /// Runs `calls` in one round trip. A broken connection is dropped (its
    /// locks are gone with it) and reported; each statement's own error is
    /// left in its place.
    fn call(&mut self, what: &str, calls: &[(usize, &[Param<'_>])], extra: Duration) -> Result<Replies> {
        self.conn()?;
        let conn = self.conn.as_mut().expect("connected above");
        match conn.pipeline(&self.statements, calls, extra) {
            Ok(r) => Ok(r),
            Err(e) => {
                self.conn = None;
                Err(backend(&self.addr, format!("{what}: {e}")))
            }
        }
    }

    fn one(&mut self, what: &str, stmt: usize, params: &[Param<'_>]) -> Result<Outcome> {
        let mut r = self.call(what, &[(stmt, params)], Duration::ZERO)?;
        r.remove(0).map_err(|e| backend(&self.addr, format!("{what}: {e}")))
    }

    fn count(&mut self, what: &str, stmt: usize, params: &[Param<'_>]) -> Result<i64> {
        let o = self.one(what, stmt, params)?;
        Ok(first_int8(&o).unwrap_or(0))
    }

    fn row_of(&self, o: &Outcome) -> Result<Option<Row>> {
        match o.rows.first() {
            None => Ok(None),
            Some(r) => decode_row(r).map(Some).map_err(|e| backend(&self.addr, format!("reading a session: {e}"))),
        }
    }
}

/// The schema as one transaction, serialised by an advisory lock so that
/// workers creating it at once wait for each other.
fn apply_sql(tables: &Tables) -> String {
    let mut sql = String::from("BEGIN; SELECT pg_advisory_xact_lock(7292006530543219011); ");
    for s in schema(tables) {
        sql.push_str(&s);
        sql.push_str("; ");
    }
    sql.push_str("COMMIT");
    sql
}

/// Runs the schema on the server a config names (php/bin/rsession schema
/// --apply).
pub fn apply_schema(config: &SqlConfig) -> Result<()> {
    let mut store = open(config)?;
    store.backend.conn().map(|_| ())
}

fn first_int8(o: &Outcome) -> Option<i64> {
    let row = o.rows.first()?;
    pg_wire::int8(*columns(row).ok()?.first()?)
}

fn decode_row(r: &postgres_protocol::message::backend::DataRowBody) -> pg_wire::Result<Row> {
    let c = columns(r)?;
    let bad = || pg_wire::Error::Protocol("a session row of an unexpected shape".into());
    if c.len() < 11 {
        return Err(bad());
    }
    Ok(Row {
        data: c[0].map(<[u8]>::to_vec).unwrap_or_default(),
        user: pg_wire::text(c[1]),
        created: pg_wire::int8(c[2]).ok_or_else(bad)?,
        last_access: pg_wire::int8(c[3]).ok_or_else(bad)?,
        timeout: pg_wire::int8(c[4]).ok_or_else(bad)?,
        timeout_set: pg_wire::boolean(c[5]).ok_or_else(bad)?,
        first_ip: pg_wire::text(c[6]),
        last_ip: pg_wire::text(c[7]),
        incarnation: pg_wire::int8(c[8]).ok_or_else(bad)?,
        generation: pg_wire::int8(c[9]).ok_or_else(bad)?,
        version: pg_wire::int8(c[10]).ok_or_else(bad)?,
    })
}

fn opt_bytes(s: &Option<String>) -> Param<'_> {
    s.as_deref().map_or(Param::Null, |v| Param::Bytes(v.as_bytes()))
}

fn opt_int8(v: Option<i64>) -> Param<'static> {
    v.map_or(Param::Null, Param::Int8)
}

impl Backend for PgBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    fn connection(&mut self) -> Result<u64> {
        self.conn()?;
        Ok(self.number)
    }

    fn last_connection(&self) -> u64 {
        self.number
    }

    fn lock_and_read(&mut self, t: &Target, holder_json: &str, wait: Duration) -> Result<Option<Option<Row>>> {
        self.conn()?;
        let key = [Param::Int8(t.lock_key)];
        let since = crate::store::now_ms() as i64;
        let holder = [Param::Int8(self.slot), Param::Int8(t.lock_key), Param::Text(holder_json), Param::Int8(since)];
        let prefix = self.prefix.clone();
        let read = [Param::Text(&prefix), Param::Text(t.id.as_str())];
        let wait_ms = wait.as_millis() as u64;
        let timeout_text = wait_ms.to_string();
        let set_timeout = [Param::Text(&timeout_text)];
        let mut calls: Vec<(usize, &[Param])> = Vec::with_capacity(4);
        if wait_ms > 0 && self.lock_timeout != Some(wait_ms) {
            calls.push((SET_LOCK_TIMEOUT, &set_timeout));
        }
        calls.push((if wait_ms == 0 { TRY_LOCK } else { LOCK }, &key));
        calls.push((HOLDER, &holder));
        calls.push((READ, &read));
        let mut replies = self.call("take the lock", &calls, wait)?;
        if calls.len() == 4 {
            if replies.remove(0).is_ok() {
                self.lock_timeout = Some(wait_ms);
            }
        }
        let (locked, holder_written, read) = {
            let mut it = replies.into_iter();
            (it.next(), it.next(), it.next())
        };
        let got = match locked {
            Some(Ok(o)) if wait_ms == 0 => o.rows.first().and_then(|r| pg_wire::boolean(columns(r).ok()?[0])) == Some(true),
            Some(Ok(_)) => true,
            Some(Err(pg_wire::Error::Db { code, .. })) if code == LOCK_NOT_AVAILABLE => {
                // The lock may have been granted just as the timeout fired:
                // free it in case it was.
                self.call("free a lock granted at the timeout", &[(UNLOCK, &key)], Duration::ZERO)?;
                false
            }
            Some(Err(e)) => {
                let _ = self.call("free the lock", &[(UNLOCK, &key)], Duration::ZERO);
                return Err(backend(&self.addr, format!("take the lock: {e}")));
            }
            None => return Err(backend(&self.addr, "take the lock: no reply")),
        };
        if !got {
            return Ok(None);
        }
        let result = match (holder_written, read) {
            (Some(Ok(_)), Some(Ok(o))) => self.row_of(&o),
            (Some(Err(e)), _) | (_, Some(Err(e))) => Err(backend(&self.addr, format!("read under the lock: {e}"))),
            _ => Err(backend(&self.addr, "read under the lock: no reply")),
        };
        match result {
            Ok(row) => Ok(Some(row)),
            Err(e) => {
                // Never leave a lock behind on an error.
                let _ = self.call("free the lock", &[(UNLOCK, &key)], Duration::ZERO);
                Err(e)
            }
        }
    }

    fn read(&mut self, t: &Target) -> Result<Option<Row>> {
        let prefix = self.prefix.clone();
        let o = self.one("read", READ, &[Param::Text(&prefix), Param::Text(t.id.as_str())])?;
        self.row_of(&o)
    }

    fn save(&mut self, t: &Target, w: &RowWrite) -> Result<Saved> {
        let prefix = self.prefix.clone();
        let m = w.meta;
        let key = [Param::Int8(t.lock_key)];
        let user = m.user.as_deref().map_or(Param::Null, |u| Param::Bytes(u.as_bytes()));
        let write;
        let touch;
        let (stmt, params): (usize, &[Param]) = match w.data {
            Some(data) => {
                write = [
                    Param::Text(&prefix),
                    Param::Text(t.id.as_str()),
                    Param::Bytes(data),
                    user,
                    Param::Int8(m.created as i64),
                    Param::Int8(w.now),
                    Param::Int8(i64::from(m.timeout)),
                    Param::Bool(m.timeout_set),
                    opt_bytes(&m.first_ip),
                    opt_bytes(&m.last_ip),
                    opt_int8(w.expires_at),
                    Param::Int8(w.fence.unwrap_or(m.incarnation as i64)),
                    Param::Int8(m.version as i64),
                    opt_int8(w.expect_version),
                ];
                match (w.fence, w.expect_version) {
                    (Some(_), Some(_)) => (UPDATE_FENCED, &write[..]),
                    (Some(_), None) => (UPDATE, &write[..13]),
                    (None, Some(_)) => (INSERT_FENCED, &write[..13]),
                    (None, None) => (UPSERT, &write[..13]),
                }
            }
            None => {
                touch = [
                    Param::Text(&prefix),
                    Param::Text(t.id.as_str()),
                    opt_int8(w.fence),
                    Param::Int8(w.now),
                    opt_int8(w.expires_at),
                    Param::Int8(w.touch_before),
                ];
                (TOUCH, &touch)
            }
        };
        let mut calls: Vec<(usize, &[Param])> = vec![(stmt, params)];
        if w.release {
            calls.push((UNLOCK, &key));
        }
        let mut replies = self.call("write", &calls, Duration::ZERO)?;
        let o = replies.remove(0).map_err(|e| backend(&self.addr, format!("write: {e}")))?;
        if stmt == UPDATE_FENCED {
            let counts = o.rows.first().and_then(|r| {
                let c = columns(r).ok()?;
                Some((pg_wire::int8(*c.first()?)?, pg_wire::int8(*c.get(1)?)?))
            });
            return Ok(match counts {
                Some((1.., _)) => Saved::Done,
                Some((_, 1..)) => Saved::LockLost,
                _ => Saved::Killed,
            });
        }
        if stmt == INSERT_FENCED {
            return Ok(if o.affected > 0 { Saved::Done } else { Saved::LockLost });
        }
        let alive = if stmt == TOUCH { first_int8(&o).unwrap_or(0) > 0 } else { o.affected > 0 };
        Ok(if alive { Saved::Done } else { Saved::Killed })
    }

    fn unlock(&mut self, t: &Target) -> Result<()> {
        self.one("release the lock", UNLOCK, &[Param::Int8(t.lock_key)]).map(|_| ())
    }

    fn destroy(&mut self, t: &Target) -> Result<bool> {
        let prefix = self.prefix.clone();
        Ok(self.count("destroy", DESTROY, &[Param::Text(&prefix), Param::Text(t.id.as_str())])? > 0)
    }

    fn exists(&mut self, t: &Target, now: i64) -> Result<bool> {
        let prefix = self.prefix.clone();
        let o = self.one("check a session", EXISTS, &[Param::Text(&prefix), Param::Text(t.id.as_str()), Param::Int8(now)])?;
        Ok(!o.rows.is_empty())
    }

    fn gc(&mut self, now: i64, now_ms: i64) -> Result<u64> {
        let prefix = self.prefix.clone();
        let identity = format!("{}/", self.tables.sessions);
        let gc = [Param::Text(&prefix), Param::Int8(now), Param::Text(&identity)];
        let holders = [Param::Int8(now_ms - HOLDER_MAX_AGE_MS)];
        let mut r = self.call("gc", &[(GC, &gc), (GC_HOLDERS, &holders)], BULK)?;
        let o = r.remove(0).map_err(|e| backend(&self.addr, format!("gc: {e}")))?;
        Ok(o.affected)
    }

    fn holder(&mut self, t: &Target) -> Result<Option<Option<String>>> {
        let o = self.one("read the lock's holder", HOLDER_OF, &[Param::Int8(t.lock_key)])?;
        let Some(row) = o.rows.first() else { return Ok(None) };
        let c = columns(row).map_err(|e| backend(&self.addr, e))?;
        Ok(Some(pg_wire::text(c.first().copied().flatten())))
    }

    fn user_sessions(&mut self, user: &str) -> Result<Vec<(String, Row)>> {
        let prefix = self.prefix.clone();
        let o = self.one("list a user's sessions", USER_SESSIONS, &[Param::Text(&prefix), Param::Bytes(user.as_bytes())])?;
        let mut out = Vec::with_capacity(o.rows.len());
        for r in &o.rows {
            let row = decode_row(r).map_err(|e| backend(&self.addr, e))?;
            let id = columns(r).ok().and_then(|c| pg_wire::text(c.get(11).copied().flatten())).unwrap_or_default();
            out.push((id, row));
        }
        Ok(out)
    }

    fn kill_user(&mut self, user: &str, keep: Option<&SessionId>) -> Result<u64> {
        let prefix = self.prefix.clone();
        let keep = keep.map_or("", |k| k.as_str());
        let n = self.count("kill a user's sessions", KILL_USER, &[Param::Text(&prefix), Param::Bytes(user.as_bytes()), Param::Text(keep)])?;
        Ok(n.max(0) as u64)
    }

    fn kill_all(&mut self) -> Result<i64> {
        let prefix = self.prefix.clone();
        let mut r = self.call("kill all sessions", &[(KILL_ALL, &[Param::Text(&prefix)])], BULK)?;
        let o = r.remove(0).map_err(|e| backend(&self.addr, format!("kill all sessions: {e}")))?;
        Ok(first_int8(&o).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StoreConfig;
    use crate::store::sql::tests as shared;
    use crate::store::testing::{id, registry_contract};
    use crate::store::{Locked, Store};
    use std::path::Path;

    fn url() -> String {
        std::env::var("RSESSION_TEST_PGSQL")
            .expect("RSESSION_TEST_PGSQL is not set: run the PostgreSQL tests via `make test`, which starts a private server")
    }

    fn config(prefix: &str, extra: &str) -> SqlConfig {
        let path = format!("{}?prefix=ptest:{prefix}:{}:{extra}", url(), std::process::id());
        let StoreConfig::Pgsql(c) = StoreConfig::parse(&path, Path::new("/tmp")).unwrap() else { panic!() };
        c
    }

    fn store(prefix: &str) -> PgStore {
        open(&config(prefix, "")).unwrap()
    }

    #[test]
    fn registry() {
        registry_contract(&|| Box::new(store("registry")));
    }

    #[test]
    fn lock_write_release_and_holder() {
        shared::lock_write_release_and_holder(&store);
    }

    #[test]
    fn waiter_is_woken_at_release() {
        shared::waiter_is_woken_at_release(&store, || store("wake"));
    }

    #[test]
    fn zero_wait_fails_at_once_and_waits_are_bounded() {
        shared::zero_wait_fails_at_once_and_waits_are_bounded(&store);
    }

    #[test]
    fn a_held_lock_is_not_granted_again_to_its_own_process() {
        shared::a_held_lock_is_not_granted_again_to_its_own_process(&store);
    }

    #[test]
    fn a_terminated_backend_loses_its_lock_and_may_not_write() {
        shared::a_killed_connection_loses_its_lock_and_may_not_write(&store, &|a, b| {
            let pid = a.backend.conn.as_ref().unwrap().backend_pid;
            let sql = format!("SELECT pg_terminate_backend({pid})");
            b.backend.conn().unwrap().simple(&sql).unwrap();
            std::thread::sleep(Duration::from_millis(100));
        });
    }

    #[test]
    fn lazy_touch_writes_at_most_once_per_window() {
        shared::lazy_touch_writes_at_most_once_per_window(&store, &|s, sid| {
            let p = s;
            p.backend.read(&Target::new("rsession_sessions", &p.backend.prefix.clone(), sid)).unwrap().unwrap().last_access
        });
    }

    #[test]
    fn a_short_timeout_is_not_stretched_by_the_window() {
        shared::a_short_timeout_is_not_stretched_by_the_window(&store);
    }

    #[test]
    fn gc_removes_expired_unlocked_sessions_and_counts_them() {
        shared::gc_removes_expired_unlocked_sessions_and_counts_them(&store);
    }

    #[test]
    fn hostile_ids_and_user_names_are_data() {
        shared::hostile_ids_and_user_names_are_data(&store);
    }

    #[test]
    fn large_data_round_trips() {
        shared::large_data_round_trips(&store, 5 << 20);
    }

    #[test]
    fn down_server_is_an_error_not_a_hang() {
        shared::down_server_is_an_error_not_a_hang("pgsql://u@127.0.0.1:1/d?connect_timeout_ms=200");
    }

    #[test]
    fn a_missing_table_is_created_and_a_hostile_name_never_reaches_sql() {
        let table = format!("rs_t{}", std::process::id());
        let mut a = open(&config("newtable", &format!("&table={table}"))).unwrap();
        crate::store::testing::write(&mut a, &id("abc"), b"x");
        assert_eq!(crate::store::testing::read_data(&mut a, &id("abc")).as_deref(), Some(&b"x"[..]));
        let drop = format!("DROP TABLE \"{table}\", \"{table}_generation\", \"{table}_holders\"");
        a.backend.conn().unwrap().simple(&drop).unwrap();
    }

    #[test]
    fn racing_workers_create_the_table_once() {
        let table = format!("rs_race{}", std::process::id());
        shared::racing_workers_create_the_table_once(
            |t| open(&config("race", &format!("&table={t}"))).unwrap(),
            &table,
            &|s: &mut PgStore| {
                let drop = format!("DROP TABLE \"{table}\", \"{table}_generation\", \"{table}_holders\"");
                s.backend.conn().unwrap().simple(&drop).unwrap();
            },
        );
    }

    #[test]
    fn the_server_restarting_costs_no_request() {
        // A closed connection is noticed before sending: terminate our own
        // backend from another connection, then use the store.
        let (mut a, mut b) = (store("restart"), store("restart"));
        crate::store::testing::write(&mut a, &id("abc"), b"x");
        let pid = a.backend.conn.as_ref().unwrap().backend_pid;
        b.backend.conn().unwrap().simple(&format!("SELECT pg_terminate_backend({pid})")).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(crate::store::testing::read_data(&mut a, &id("abc")).as_deref(), Some(&b"x"[..]));
        assert!(matches!(a.lock_and_read(&id("abc"), &crate::store::testing::req(0, 1000)).unwrap(), Locked::Acquired { .. }));
    }
}

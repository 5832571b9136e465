//! MySQL 8 / MariaDB 10.6+: `GET_LOCK()` user locks, each exchange one
//! round trip (lock + holder + read; write + lock check + release) over
//! the `mysql` crate: a `CALL` of a stored procedure made with the tables
//! (see [`procedures`]), or, where those cannot be made or called, the
//! same statements as one multi-statement text query.
//!
//! Every value goes into the SQL text as a hex literal (`X'…'`) or a
//! number we formatted, never as quoted text: nothing a session id, user
//! id or session data holds can change a statement, whatever the server's
//! sql_mode or character set. (Text queries, not prepared statements,
//! because only they carry several statements in one round trip.) Data
//! doubles in size on the wire: the largest session is about half the
//! server's `max_allowed_packet`, checked before sending.
//!
//! Writes check on the server that our connection still holds the lock
//! (`IS_USED_LOCK(name) = CONNECTION_ID()`), besides the connection number
//! the shared code checks.

use std::fmt::Write as _;
use std::os::fd::AsRawFd;
use std::time::Duration;

use mysql::consts::CapabilityFlags;
use mysql::prelude::Queryable;
use mysql::{Conn, OptsBuilder, SslOpts, Value};

use super::{Backend, Row, RowWrite, Saved, SqlStore, Tables, Target, default_user, holder_json, holder_slot};
use crate::config::{SqlAddr, SqlConfig, SslMode};
use crate::error::StoreError;
use crate::store::{Result, SessionId, net};

const NAME: &str = "mysql";
const NO_TLS: &str = "the server does not offer TLS";
/// Time allowed beyond timeout_ms for statements over many rows (gc,
/// kill_all_sessions()): a million sessions take seconds to delete.
const BULK: Duration = Duration::from_secs(60);
/// How long a connection found fit to send on is not looked at again: the
/// calls of one exchange follow each other within microseconds.
const CHECKED_FOR: Duration = Duration::from_millis(2);

/// The DDL: the tables (idempotent), then the stored procedures.
pub fn schema(tables: &Tables) -> Vec<String> {
    let mut ddl = table_ddl(tables);
    ddl.extend(procedures(tables).into_iter().map(|(_, body)| body));
    ddl
}

fn table_ddl(tables: &Tables) -> Vec<String> {
    let Tables { sessions: t, generation: g, holders: h } = tables;
    vec![
        format!(
            "CREATE TABLE IF NOT EXISTS `{t}` (\n  prefix VARBINARY(128) NOT NULL,\n  id VARBINARY(256) NOT NULL,\n  \
             data LONGBLOB NOT NULL,\n  user_id VARBINARY(512) NULL,\n  created BIGINT NOT NULL,\n  \
             last_access BIGINT NOT NULL,\n  timeout BIGINT NOT NULL,\n  timeout_set BOOLEAN NOT NULL,\n  \
             first_ip VARBINARY(512) NULL,\n  last_ip VARBINARY(512) NULL,\n  incarnation BIGINT NOT NULL,\n  \
             generation BIGINT NOT NULL,\n  expires_at BIGINT NULL,\n  version BIGINT NOT NULL DEFAULT 0,\n  \
             PRIMARY KEY (prefix, id),\n  \
             KEY `{t}_user` (prefix, user_id),\n  KEY `{t}_expiry` (prefix, expires_at)\n) ENGINE=InnoDB"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS `{g}` (\n  prefix VARBINARY(128) NOT NULL PRIMARY KEY,\n  \
             generation BIGINT NOT NULL\n) ENGINE=InnoDB"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS `{h}` (\n  slot BIGINT NOT NULL PRIMARY KEY,\n  conn BIGINT NOT NULL,\n  \
             lock_name VARBINARY(64) NOT NULL,\n  holder VARBINARY({HOLDER_MAX}) NOT NULL,\n  since BIGINT NOT NULL,\n  \
             KEY `{h}_conn` (conn)\n) ENGINE=MEMORY"
        ),
    ]
}

/// The names of the procedures of a sessions table. Versioned: a body
/// that changes gets a new name, so that workers of two releases side by
/// side each call the one they were written for.
fn procedure_names(t: &str) -> [String; 2] {
    [format!("{t}_lock_v1"), format!("{t}_write_v1")]
}

/// The two exchanges of every locked request as stored procedures: the
/// server parses their statements once per connection, not at each call
/// (MariaDB 10.11's CPU per locked cycle: 428 → 361 µs; see the README). Where they cannot be made or called (a user without
/// CREATE ROUTINE or EXECUTE), the same statements go as text.
///
/// Each statement in a procedure commits on its own (autocommit): the
/// write is committed before the lock is released.
fn procedures(tables: &Tables) -> [(String, String); 2] {
    let Tables { sessions: t, generation: g, holders: h } = tables;
    let [lock, write] = procedure_names(t);
    let current = format!("COALESCE((SELECT g.generation FROM `{g}` g WHERE g.prefix = p_prefix), 0)");
    // The lock: GET_LOCK, then (only if granted, so the holder row is
    // written unconditionally) the holder and the row. One set back: `0`
    // (not granted), or the granted marker and the row (no rows: no session).
    let lock_body = format!(
        "CREATE PROCEDURE IF NOT EXISTS `{lock}`(p_prefix VARBINARY(128), p_id VARBINARY(256), p_name VARBINARY(64), p_wait DOUBLE, \
         p_slot BIGINT, p_holder VARBINARY({HOLDER_MAX}), p_since BIGINT)\n\
         MODIFIES SQL DATA SQL SECURITY INVOKER\n\
         BEGIN\n\
         \x20 IF GET_LOCK(p_name, p_wait) = 1 THEN\n\
         \x20   INSERT INTO `{h}` (slot, conn, lock_name, holder, since) VALUES (p_slot, CONNECTION_ID(), p_name, p_holder, p_since)\n\
         \x20     ON DUPLICATE KEY UPDATE conn = VALUES(conn), lock_name = VALUES(lock_name), holder = VALUES(holder), since = VALUES(since);\n\
         \x20   SELECT 1, {ROW} FROM `{t}` s WHERE s.prefix = p_prefix AND s.id = p_id AND s.generation >= {current};\n\
         \x20 ELSE\n\
         \x20   SELECT 0;\n\
         \x20 END IF;\n\
         END"
    );
    // A fenced write (the incarnation read under the lock, the lock still
    // ours, the version when write-through asks), whether a refused one met
    // a live session, and the lock's state after it (released, or still
    // ours). One set back: rows matched, live rows, lock state.
    let write_body = format!(
        "CREATE PROCEDURE IF NOT EXISTS `{write}`(p_prefix VARBINARY(128), p_id VARBINARY(256), p_name VARBINARY(64), p_data LONGBLOB, \
         p_user VARBINARY(512), p_created BIGINT, p_now BIGINT, p_timeout BIGINT, p_timeout_set BOOLEAN, \
         p_first_ip VARBINARY(512), p_last_ip VARBINARY(512), p_expires BIGINT, p_version BIGINT, \
         p_incarnation BIGINT, p_expect BIGINT, p_locked BOOLEAN, p_release BOOLEAN)\n\
         MODIFIES SQL DATA SQL SECURITY INVOKER\n\
         BEGIN\n\
         \x20 DECLARE matched BIGINT;\n\
         \x20 DECLARE alive BIGINT DEFAULT 0;\n\
         \x20 UPDATE `{t}` s SET s.data = p_data, s.user_id = p_user, s.created = p_created, s.last_access = p_now, \
         s.timeout = p_timeout, s.timeout_set = p_timeout_set, s.first_ip = p_first_ip, s.last_ip = p_last_ip, \
         s.expires_at = p_expires, s.version = p_version\n\
         \x20   WHERE s.prefix = p_prefix AND s.id = p_id AND s.incarnation = p_incarnation AND s.generation >= {current}\n\
         \x20   AND (NOT p_locked OR IS_USED_LOCK(p_name) = CONNECTION_ID()) AND (p_expect IS NULL OR s.version = p_expect);\n\
         \x20 SET matched = ROW_COUNT();\n\
         \x20 IF matched = 0 AND p_expect IS NOT NULL THEN\n\
         \x20   SELECT COUNT(*) INTO alive FROM `{t}` s WHERE s.prefix = p_prefix AND s.id = p_id \
         AND s.incarnation = p_incarnation AND s.generation >= {current};\n\
         \x20 END IF;\n\
         \x20 SELECT matched, alive, CASE WHEN p_release THEN RELEASE_LOCK(p_name) \
         WHEN p_locked THEN IS_USED_LOCK(p_name) = CONNECTION_ID() END;\n\
         END"
    );
    [(lock, lock_body), (write, write_body)]
}

/// The longest holder row (JSON) the MEMORY table takes: it stores every
/// row at its column's full width, so the column is kept short and a
/// request's URI is cut to fit (see [`holder_json`]).
pub const HOLDER_MAX: usize = 1024;

/// The holders table before it was a MEMORY table: InnoDB, `holder BLOB`.
/// Made into the current one (rows are only worth anything while their
/// lock is held, so the long ones are dropped first); without the right to
/// alter it, the store keeps using it as it is.
fn holders_migration(h: &str) -> [String; 2] {
    [
        format!("DELETE FROM `{h}` WHERE LENGTH(holder) > {HOLDER_MAX}"),
        format!("ALTER TABLE `{h}` ENGINE=MEMORY, MODIFY holder VARBINARY({HOLDER_MAX}) NOT NULL"),
    ]
}

/// Holder rows that describe no lock held now (their connection released
/// it, or is gone): dropped at each connect and by gc, so the MEMORY table
/// stays about as small as the number of connections holding locks.
fn stale_holders(h: &str) -> String {
    format!("DELETE FROM `{h}` WHERE NOT (IS_USED_LOCK(lock_name) <=> conn)")
}

/// `X'…'`: any bytes, as a literal no server setting reinterprets.
fn hex(out: &mut String, b: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.reserve(b.len() * 2 + 3);
    out.push_str("X'");
    for byte in b {
        out.push(DIGITS[(byte >> 4) as usize] as char);
        out.push(DIGITS[(byte & 15) as usize] as char);
    }
    out.push('\'');
}

fn lit(b: &[u8]) -> String {
    let mut s = String::new();
    hex(&mut s, b);
    s
}

fn opt_lit(b: Option<&str>) -> String {
    b.map_or_else(|| "NULL".to_string(), |v| lit(v.as_bytes()))
}

fn opt_num(v: Option<i64>) -> String {
    v.map_or_else(|| "NULL".to_string(), |n| n.to_string())
}

struct Connection {
    conn: Option<Conn>,
    opened_by: u32,
    id: u32,
    /// Largest query the server takes.
    max_packet: usize,
    /// MariaDB takes fractional GET_LOCK timeouts; MySQL whole seconds.
    mariadb: bool,
    /// Whether the exchanges go through the stored procedures.
    procedures: bool,
}

impl Drop for Connection {
    fn drop(&mut self) {
        // After fork this is the parent's connection: closing it here
        // would say goodbye for the parent (and free its locks).
        if self.opened_by != crate::pid::current() {
            std::mem::forget(self.conn.take());
        }
    }
}

/// One statement's result: its rows (text values, None for NULL) and the
/// rows it matched.
#[derive(Debug, Default)]
struct Set {
    rows: Vec<Vec<Option<Vec<u8>>>>,
    affected: u64,
}

pub struct MyBackend {
    config: SqlConfig,
    tables: Tables,
    prefix: String,
    conn: Option<Connection>,
    number: u64,
    addr: String,
    /// sslmode=prefer found the server without TLS: connect in plain.
    no_tls: bool,
    slot: i64,
    /// `rsession schema --apply`: a table that cannot be brought up to
    /// date is an error, not something to live with.
    applying: bool,
    /// When the connection was last found fit to send on (see conn()).
    checked: Option<std::time::Instant>,
    /// Whether to use the stored procedures where they can be made (false:
    /// tests of the text statements).
    allow_procedures: bool,
    /// Their names (lock, write), sent at every exchange.
    procedure_names: [String; 2],
}

pub type MyStore = SqlStore<MyBackend>;

pub fn open(config: &SqlConfig) -> Result<Box<dyn crate::store::Store>> {
    Ok(Box::new(open_store(config)))
}

pub fn open_store(config: &SqlConfig) -> MyStore {
    let addr = match &config.addr {
        SqlAddr::Tcp { host, port } => format!("{host}:{port}"),
        SqlAddr::Unix { path } => path.display().to_string(),
    };
    let backend = MyBackend {
        config: config.clone(),
        tables: Tables::of(config),
        prefix: config.net.prefix.clone(),
        conn: None,
        number: 0,
        addr,
        no_tls: false,
        slot: 0,
        applying: false,
        checked: None,
        allow_procedures: true,
        procedure_names: procedure_names(&config.table),
    };
    SqlStore::new(backend, config)
}

fn backend(addr: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend { store: NAME, message: format!("{addr}: {e}") }
}

/// Whether an error leaves the connection usable (the server refused one
/// statement) or not (I/O, protocol, a packet the server dropped us for).
fn connection_survives(e: &mysql::Error) -> bool {
    match e {
        // 1153: packet too large (the server closes the connection).
        mysql::Error::MySqlError(m) => m.code != 1153,
        _ => false,
    }
}

fn describe(e: &mysql::Error) -> String {
    match e {
        mysql::Error::MySqlError(m) => format!("{} (error {})", m.message, m.code),
        e => e.to_string(),
    }
}

/// The system's trust store as one PEM file, for the crate's TLS.
fn system_roots() -> Option<std::path::PathBuf> {
    if let Some(f) = std::env::var_os("SSL_CERT_FILE") {
        return Some(f.into());
    }
    ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"]
        .iter()
        .map(std::path::PathBuf::from)
        .find(|p| p.exists())
}

impl MyBackend {
    fn connect(&self, tls: bool) -> std::result::Result<Connection, String> {
        let user = default_user(&self.config, NAME).map_err(|e| e.to_string())?;
        let net = &self.config.net;
        let mut b = OptsBuilder::new()
            .user(Some(user))
            .pass(self.config.password.clone())
            .db_name(Some(self.config.dbname.clone()))
            .tcp_connect_timeout(Some(net.connect_timeout))
            .read_timeout(Some(net.connect_timeout.max(net.timeout)))
            .write_timeout(Some(net.timeout))
            .prefer_socket(false)
            .tcp_nodelay(true)
            // Affected rows count rows matched, so a touch that changes
            // nothing still tells the session is there.
            .additional_capabilities(CapabilityFlags::CLIENT_FOUND_ROWS);
        match &self.config.addr {
            SqlAddr::Unix { path } => b = b.socket(Some(path.display().to_string())),
            SqlAddr::Tcp { host, port } => {
                // Resolve within connect_timeout_ms (the crate's own lookup
                // has no bound); verify-full needs the name for the check.
                let target = if self.config.sslmode == SslMode::VerifyFull || host.parse::<std::net::IpAddr>().is_ok() {
                    host.clone()
                } else {
                    let addrs = net::resolve(host, *port, net.connect_timeout).map_err(|e| e.to_string())?;
                    addrs.first().map(|a| a.ip().to_string()).ok_or_else(|| format!("{host} has no address"))?
                };
                b = b.ip_or_hostname(Some(target)).tcp_port(*port);
            }
        }
        if tls {
            let ssl = match self.config.sslmode {
                SslMode::VerifyFull => SslOpts::default().with_root_cert_path(system_roots()),
                _ => SslOpts::default().with_danger_accept_invalid_certs(true).with_danger_skip_domain_validation(true),
            };
            b = b.ssl_opts(Some(ssl));
        }
        let mut conn = Conn::new(b).map_err(|e| match e {
            mysql::Error::DriverError(mysql::DriverError::TlsNotSupported) => NO_TLS.to_string(),
            e => describe(&e),
        })?;
        let (max_packet, version): (usize, String) = conn
            .query_first("SELECT @@max_allowed_packet, VERSION()")
            .map_err(|e| describe(&e))?
            .ok_or("no reply to the connection's first query")?;
        if let Err(e) = net::set_read_timeout(conn.as_raw_fd(), net.timeout) {
            return Err(e.to_string());
        }
        Ok(Connection {
            id: conn.connection_id(),
            conn: Some(conn),
            opened_by: crate::pid::current(),
            max_packet,
            mariadb: version.contains("MariaDB"),
            procedures: false,
        })
    }

    fn conn(&mut self) -> Result<&mut Connection> {
        // One look per exchange, though a save asks up to three times (the
        // held lock's connection, the save, the query); a poll is a system
        // call.
        let fresh = self.checked.is_some_and(|t| t.elapsed() < CHECKED_FOR);
        if !fresh && self.conn.as_ref().and_then(|c| c.conn.as_ref()).is_some_and(|c| !net::idle_ok(c.as_raw_fd())) {
            self.conn = None;
        }
        self.checked = Some(std::time::Instant::now());
        if self.conn.is_none() {
            let tls = self.config.sslmode != SslMode::Disable && !matches!(self.config.addr, SqlAddr::Unix { .. });
            let mut c = match self.connect(tls && !self.no_tls) {
                Err(e) if tls && self.config.sslmode == SslMode::Prefer && e == NO_TLS => {
                    // prefer: a server without TLS is used in plain.
                    self.no_tls = true;
                    self.connect(false)
                }
                other => other,
            }
            .map_err(|e| backend(&self.addr, format!("cannot connect: {e}")))?;
            self.number += 1;
            self.slot = holder_slot(i64::from(c.id));
            self.ensure_schema(&mut c)?;
            self.conn = Some(c);
        }
        Ok(self.conn.as_mut().expect("connected above"))
    }

    /// Creates the tables where missing and brings older ones up to date,
    /// then drops stale holder rows. One look at the catalogue per new
    /// connection.
    fn ensure_schema(&self, c: &mut Connection) -> Result<()> {
        let Tables { sessions: t, generation: g, holders: h } = &self.tables;
        let conn = c.conn.as_mut().expect("open");
        let checking = |e: mysql::Error| backend(&self.addr, format!("checking the tables: {}", describe(&e)));
        let q = format!(
            "SELECT table_name, engine FROM information_schema.tables WHERE table_schema = DATABASE() \
             AND table_name IN ('{t}', '{g}', '{h}'); \
             SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = '{t}' \
             AND column_name = 'version'; \
             SELECT COUNT(*) FROM information_schema.routines WHERE routine_schema = DATABASE() \
             AND routine_name IN ('{lock}', '{write}')",
            lock = self.procedure_names[0],
            write = self.procedure_names[1],
        );
        let sets = collect(conn, &q).map_err(checking)?;
        let tables = sets.first().map_or(&[][..], |s| &s.rows[..]);
        let engine_of = |name: &str| {
            tables.iter().find(|r| r.first().and_then(text).is_some_and(|n| n.eq_ignore_ascii_case(name))).map(|r| r.get(1).and_then(text))
        };
        if tables.len() < 3 {
            for ddl in table_ddl(&self.tables) {
                conn.query_drop(ddl).map_err(|e| {
                    backend(
                        &self.addr,
                        format!(
                            "cannot create the table `{t}`: {}; create it as a user allowed to (php/bin/rsession schema --apply)",
                            describe(&e)
                        ),
                    )
                })?;
            }
        }
        if engine_of(t).is_some() && first_num(&sets, 1) == Some(0) {
            // Tables made before write-through's version column get it (MySQL
            // has no ADD COLUMN IF NOT EXISTS; a racing worker's duplicate
            // column error is harmless).
            let add = format!("ALTER TABLE `{t}` ADD COLUMN version BIGINT NOT NULL DEFAULT 0");
            if let Err(e) = conn.query_drop(add) {
                if !describe(&e).contains("Duplicate column") {
                    return Err(backend(&self.addr, format!("cannot add the column version to `{t}`: {}", describe(&e))));
                }
            }
        }
        if let Some(engine) = engine_of(h) {
            if !engine.is_some_and(|e| e.eq_ignore_ascii_case("MEMORY")) {
                // Made by an older version (InnoDB: a redo log write and a
                // commit per lock). Workers racing here both succeed.
                for ddl in holders_migration(h) {
                    if let Err(e) = conn.query_drop(ddl) {
                        if self.applying {
                            let e = format!("cannot make `{h}` a MEMORY table: {}", describe(&e));
                            return Err(backend(&self.addr, e));
                        }
                        break;
                    }
                }
            }
        }
        let mut use_procedures = self.allow_procedures;
        if use_procedures && first_num(&sets, 2) != Some(2) {
            for (name, ddl) in procedures(&self.tables) {
                // 1304: a racing worker's, should a server report it
                // despite IF NOT EXISTS.
                match conn.query_drop(ddl) {
                    Err(mysql::Error::MySqlError(e)) if e.code == 1304 => {}
                    Err(e) if self.applying => {
                        return Err(backend(&self.addr, format!("cannot create the procedure `{name}`: {}", describe(&e))));
                    }
                    Err(_) => {
                        // Without CREATE ROUTINE: the same statements as text.
                        use_procedures = false;
                        break;
                    }
                    Ok(()) => {}
                }
            }
        }
        // Housekeeping: a refusal (a read-only user) shows at the first lock.
        let _ = conn.query_drop(stale_holders(h));
        c.procedures = use_procedures;
        Ok(())
    }

    /// Runs one multi-statement query; each statement's rows and count.
    /// `extra` lengthens the read timeout (a lock wait).
    fn run(&mut self, what: &str, sql: &str, extra: Duration) -> Result<Vec<Set>> {
        self.send(what, sql, extra)?.map_err(|e| backend(&self.addr, format!("{what}: {}", describe(&e))))
    }

    /// Runs a `CALL` of one of the procedures; None when they cannot be
    /// called (dropped, or EXECUTE not granted: the caller then sends the
    /// same statements as text, and so does this connection from now on).
    /// Both errors come before the procedure runs.
    fn call(&mut self, what: &str, sql: &str, extra: Duration) -> Result<Option<Vec<Set>>> {
        match self.send(what, sql, extra)? {
            Ok(sets) => Ok(Some(sets)),
            // 1305: no such procedure; 1370: EXECUTE denied.
            Err(mysql::Error::MySqlError(e)) if e.code == 1305 || e.code == 1370 => {
                if let Some(c) = self.conn.as_mut() {
                    c.procedures = false;
                }
                Ok(None)
            }
            Err(e) => Err(backend(&self.addr, format!("{what}: {}", describe(&e)))),
        }
    }

    /// Whether this connection calls the procedures.
    fn procedures(&mut self) -> Result<bool> {
        Ok(self.conn()?.procedures)
    }

    /// Sends a query: the connection's own failures as the outer error, the
    /// server's answer (rows, or the error it sent) inside.
    fn send(&mut self, what: &str, sql: &str, extra: Duration) -> Result<mysql::Result<Vec<Set>>> {
        let timeout = self.config.net.timeout;
        let max_packet = self.conn()?.max_packet;
        if sql.len() + 1024 > max_packet {
            let e = format!("{what}: the query would exceed the server's max_allowed_packet ({max_packet} bytes)");
            return Err(backend(&self.addr, e));
        }
        let conn = self.conn.as_mut().and_then(|c| c.conn.as_mut()).expect("open");
        let fd = conn.as_raw_fd();
        if !extra.is_zero() {
            let _ = net::set_read_timeout(fd, timeout + extra);
        }
        let result = collect(conn, sql);
        self.checked = None;
        if !extra.is_zero() {
            let _ = net::set_read_timeout(fd, timeout);
        }
        if let Err(e) = &result {
            if !connection_survives(e) {
                self.conn = None;
            }
        }
        Ok(result)
    }

    /// A granted lock's read: the row (None: no session); a row of another
    /// shape frees the lock and fails.
    fn granted(&mut self, row: Option<&[Option<Vec<u8>>]>, free: impl Fn(&mut Self)) -> Result<Option<Option<Row>>> {
        match row.map(decode_row) {
            None => Ok(Some(None)),
            Some(Some(r)) => Ok(Some(Some(r))),
            Some(None) => {
                free(self);
                Err(backend(&self.addr, "read under the lock: a session row of an unexpected shape"))
            }
        }
    }

    fn target_sql(&self, t: &Target) -> (String, String) {
        (lit(self.prefix.as_bytes()), lit(t.id.as_str().as_bytes()))
    }

    fn current(&self, prefix: &str) -> String {
        format!("COALESCE((SELECT g.generation FROM `{}` g WHERE g.prefix = {prefix}), 0)", self.tables.generation)
    }

    /// The generation check of a statement on the sessions table `s`.
    /// A subquery, not a join of the generation row: an UPDATE with a join
    /// is a multi-table update, which MariaDB plans and runs at several
    /// times the cost of a single-table one (whole locked cycles measured
    /// about a fifth faster with the subquery in both the read and the
    /// write).
    fn live(&self, prefix: &str) -> String {
        format!("s.generation >= {}", self.current(prefix))
    }

    fn max_data(&self) -> Option<usize> {
        self.conn.as_ref().map(|c| c.max_packet.saturating_sub(4096) / 2)
    }
}

fn collect(conn: &mut Conn, sql: &str) -> mysql::Result<Vec<Set>> {
    let mut result = conn.query_iter(sql)?;
    let mut sets = Vec::new();
    while let Some(set) = result.iter() {
        let mut s = Set { rows: Vec::new(), affected: set.affected_rows() };
        for row in set {
            let row = row?;
            s.rows.push(
                row.unwrap_raw()
                    .into_iter()
                    .map(|v| match v {
                        Some(Value::Bytes(b)) => Some(b),
                        Some(Value::NULL) | None => None,
                        Some(other) => Some(other.as_sql(true).into_bytes()),
                    })
                    .collect(),
            );
        }
        sets.push(s);
    }
    Ok(sets)
}

fn num(v: &Option<Vec<u8>>) -> Option<i64> {
    std::str::from_utf8(v.as_deref()?).ok()?.parse().ok()
}

fn text(v: &Option<Vec<u8>>) -> Option<String> {
    v.as_deref().map(|b| String::from_utf8_lossy(b).into_owned())
}

const ROW: &str = "s.data, s.user_id, s.created, s.last_access, s.timeout, s.timeout_set, s.first_ip, s.last_ip, s.incarnation, s.generation, s.version";

fn decode_row(c: &[Option<Vec<u8>>]) -> Option<Row> {
    Some(Row {
        data: c.first()?.clone().unwrap_or_default(),
        user: text(c.get(1)?),
        created: num(c.get(2)?)?,
        last_access: num(c.get(3)?)?,
        timeout: num(c.get(4)?)?,
        timeout_set: num(c.get(5)?)? != 0,
        first_ip: text(c.get(6)?),
        last_ip: text(c.get(7)?),
        incarnation: num(c.get(8)?)?,
        generation: num(c.get(9)?)?,
        version: num(c.get(10)?)?,
    })
}

fn first_num(sets: &[Set], i: usize) -> Option<i64> {
    num(sets.get(i)?.rows.first()?.first()?)
}

impl Backend for MyBackend {
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

    fn lock_and_read(&mut self, t: &Target, holder_json_full: &str, wait: Duration) -> Result<Option<Option<Row>>> {
        let mariadb = self.conn()?.mariadb;
        // MySQL counts GET_LOCK's timeout in whole seconds: a wait is never
        // longer than asked, so it rounds down.
        let timeout = if mariadb { format!("{:.3}", wait.as_secs_f64()) } else { wait.as_secs().to_string() };
        let (prefix, id) = self.target_sql(t);
        let name = &t.lock_name;
        let since = crate::store::now_ms();
        let holder = lit(holder_json(holder_json_full, HOLDER_MAX).as_bytes());
        let slot = self.slot;
        let free = |s: &mut Self| {
            // A statement after GET_LOCK failed: never keep the lock.
            let _ = s.run("free the lock", &format!("DO RELEASE_LOCK('{name}')"), Duration::ZERO);
        };
        if self.procedures()? {
            let lock = &self.procedure_names[0];
            let sql = format!("CALL `{lock}`({prefix}, {id}, '{name}', {timeout}, {slot}, {holder}, {since})");
            match self.call("take the lock", &sql, wait) {
                Ok(Some(sets)) => {
                    // `0` alone: not granted; else the marker and the row.
                    let rows = sets.first().map_or(&[][..], |s| &s.rows[..]);
                    return match rows.first() {
                        Some(r) if r.len() == 1 => Ok(None),
                        row => self.granted(row.map(|r| &r[1..]), free),
                    };
                }
                Ok(None) => {}
                Err(e) => {
                    free(self);
                    return Err(e);
                }
            }
        }
        let live = self.live(&prefix);
        let h = &self.tables.holders;
        // The holder row: a plain INSERT … VALUES (an INSERT … SELECT costs
        // the server a query plan, several times the write), which changes
        // an existing row only if the lock is ours (a wait that ran out
        // leaves the row of a lock this connection holds alone; a row it
        // adds names a lock its connection does not hold: never believed).
        let ours = format!("IS_USED_LOCK('{name}') = CONNECTION_ID()");
        let sql = format!(
            "SELECT GET_LOCK('{name}', {timeout}); \
             INSERT INTO `{h}` (slot, conn, lock_name, holder, since) \
             VALUES ({slot}, CONNECTION_ID(), '{name}', {holder}, {since}) \
             ON DUPLICATE KEY UPDATE holder = IF({ours}, VALUES(holder), holder), since = IF({ours}, VALUES(since), since), \
             lock_name = IF({ours}, VALUES(lock_name), lock_name), conn = IF({ours}, VALUES(conn), conn); \
             SELECT {ROW} FROM `{t}` s WHERE s.prefix = {prefix} AND s.id = {id} AND {live} AND {ours}",
            t = self.tables.sessions,
        );
        let sets = match self.run("take the lock", &sql, wait) {
            Ok(s) => s,
            Err(e) => {
                free(self);
                return Err(e);
            }
        };
        if first_num(&sets, 0) != Some(1) {
            return Ok(None);
        }
        self.granted(sets.get(2).and_then(|s| s.rows.first()).map(|r| &r[..]), free)
    }

    fn read(&mut self, t: &Target) -> Result<Option<Row>> {
        let (prefix, id) = self.target_sql(t);
        let sql = format!(
            "SELECT {ROW} FROM `{}` s WHERE s.prefix = {prefix} AND s.id = {id} AND s.generation >= {}",
            self.tables.sessions,
            self.current(&prefix)
        );
        let sets = self.run("read", &sql, Duration::ZERO)?;
        match sets.first().and_then(|s| s.rows.first()) {
            None => Ok(None),
            Some(r) => decode_row(r).map(Some).ok_or_else(|| backend(&self.addr, "read: a session row of an unexpected shape")),
        }
    }

    fn save(&mut self, t: &Target, w: &RowWrite) -> Result<Saved> {
        self.conn()?;
        let (prefix, id) = self.target_sql(t);
        let m = w.meta;
        let name = &t.lock_name;
        if let Some(limit) = self.max_data().filter(|l| w.data.is_some_and(|d| d.len() > *l)) {
            return Err(StoreError::TooLarge { size: w.data.map_or(0, <[u8]>::len), limit });
        }
        if let (Some(data), Some(incarnation)) = (w.data, w.fence) {
            if self.procedures()? {
                let write = &self.procedure_names[1];
                let mut sql = String::with_capacity(data.len() * 2 + 512);
                let _ = write!(sql, "CALL `{write}`({prefix}, {id}, '{name}', ");
                hex(&mut sql, data);
                let _ = write!(
                    sql,
                    ", {}, {}, {}, {}, {}, {}, {}, {}, {}, {incarnation}, {}, {}, {})",
                    opt_lit(m.user.as_deref()),
                    m.created,
                    w.now,
                    m.timeout,
                    u8::from(m.timeout_set),
                    opt_lit(m.first_ip.as_deref()),
                    opt_lit(m.last_ip.as_deref()),
                    opt_num(w.expires_at),
                    m.version as i64,
                    opt_num(w.expect_version),
                    u8::from(w.locked),
                    u8::from(w.release),
                );
                if let Some(sets) = self.call("write", &sql, Duration::ZERO)? {
                    let num = |i: usize| sets.first().and_then(|s| s.rows.first()).and_then(|r| num(r.get(i)?));
                    return Ok(if num(0).unwrap_or(0) > 0 {
                        Saved::Done
                    } else if num(1).unwrap_or(0) > 0 || (w.locked && num(2) != Some(1)) {
                        // A newer version of a live session, or a lost lock.
                        Saved::LockLost
                    } else {
                        Saved::Killed
                    });
                }
            }
        }
        let tb = &self.tables.sessions;
        let current = self.current(&prefix);
        let live = self.live(&prefix);
        let ours = format!("IS_USED_LOCK('{name}') = CONNECTION_ID()");
        let lock_cond = if w.locked { format!(" AND {ours}") } else { String::new() };
        let mut sql = String::with_capacity(w.data.map_or(0, <[u8]>::len) * 2 + 1024);
        match w.data {
            Some(data) => {
                let user = opt_lit(m.user.as_deref());
                let (first_ip, last_ip) = (opt_lit(m.first_ip.as_deref()), opt_lit(m.last_ip.as_deref()));
                let expires = opt_num(w.expires_at);
                let (created, now, timeout, timeout_set) = (m.created, w.now, m.timeout, u8::from(m.timeout_set));
                let version = m.version as i64;
                let fenced = w.expect_version.map_or(String::new(), |v| format!(" AND s.version = {v}"));
                match w.fence {
                    Some(incarnation) => {
                        let _ = write!(sql, "UPDATE `{tb}` s SET s.data = ");
                        hex(&mut sql, data);
                        let _ = write!(
                            sql,
                            ", s.user_id = {user}, s.created = {created}, s.last_access = {now}, s.timeout = {timeout}, \
                             s.timeout_set = {timeout_set}, s.first_ip = {first_ip}, s.last_ip = {last_ip}, s.expires_at = {expires}, \
                             s.version = {version} \
                             WHERE s.prefix = {prefix} AND s.id = {id} AND s.incarnation = {incarnation} AND {live}{lock_cond}{fenced}"
                        );
                    }
                    None if w.expect_version.is_some() => {
                        // Write-through's new session: only if no live one
                        // exists (another request created it meanwhile: a
                        // lost lock); one a kill_all ended is replaced.
                        let incarnation = m.incarnation as i64;
                        let _ = write!(
                            sql,
                            "DELETE FROM `{tb}` WHERE prefix = {prefix} AND id = {id} AND generation < {current}; \
                             INSERT IGNORE INTO `{tb}` (prefix, id, data, user_id, created, last_access, timeout, timeout_set, \
                             first_ip, last_ip, expires_at, incarnation, version, generation) SELECT {prefix}, {id}, "
                        );
                        hex(&mut sql, data);
                        let where_lock = if w.locked { format!(" WHERE {ours}") } else { String::new() };
                        let _ = write!(
                            sql,
                            ", {user}, {created}, {now}, {timeout}, {timeout_set}, {first_ip}, {last_ip}, {expires}, \
                             {incarnation}, {version}, {current} FROM DUAL{where_lock}"
                        );
                    }
                    None => {
                        let incarnation = m.incarnation as i64;
                        let _ = write!(
                            sql,
                            "INSERT INTO `{tb}` (prefix, id, data, user_id, created, last_access, timeout, timeout_set, \
                             first_ip, last_ip, expires_at, incarnation, version, generation) SELECT {prefix}, {id}, "
                        );
                        hex(&mut sql, data);
                        let where_lock = if w.locked { format!(" WHERE {ours}") } else { String::new() };
                        let _ = write!(
                            sql,
                            ", {user}, {created}, {now}, {timeout}, {timeout_set}, {first_ip}, {last_ip}, {expires}, \
                             {incarnation}, {version}, {current} FROM DUAL{where_lock} ON DUPLICATE KEY UPDATE \
                             incarnation = IF(generation < VALUES(generation), VALUES(incarnation), incarnation), \
                             generation = GREATEST(generation, VALUES(generation)), data = VALUES(data), \
                             user_id = VALUES(user_id), created = VALUES(created), last_access = VALUES(last_access), \
                             timeout = VALUES(timeout), timeout_set = VALUES(timeout_set), first_ip = VALUES(first_ip), \
                             last_ip = VALUES(last_ip), expires_at = VALUES(expires_at), version = VALUES(version)"
                        );
                    }
                }
            }
            None => {
                let fence = w.fence.map_or(String::new(), |i| format!(" AND s.incarnation = {i}"));
                let (before, now, expires) = (w.touch_before, w.now, opt_num(w.expires_at));
                let _ = write!(
                    sql,
                    "UPDATE `{tb}` s SET s.expires_at = IF(s.last_access <= {before}, {expires}, s.expires_at), \
                     s.last_access = IF(s.last_access <= {before}, {now}, s.last_access) \
                     WHERE s.prefix = {prefix} AND s.id = {id}{fence} AND {live}{lock_cond}"
                );
            }
        }
        let fenced = w.data.is_some() && w.fence.is_some() && w.expect_version.is_some();
        if fenced {
            // Whether the session is still alive: a fenced write that wrote
            // nothing over a live one met a newer version.
            let _ = write!(
                sql,
                "; SELECT COUNT(*) FROM `{tb}` WHERE prefix = {prefix} AND id = {id} AND incarnation = {} AND generation >= {current}",
                w.fence.unwrap_or(0)
            );
        }
        // Whether the lock was ours after the write: RELEASE_LOCK() says 1
        // only to its holder, so a release answers it without a statement
        // of its own.
        match (w.locked, w.release) {
            (true, true) => {
                let _ = write!(sql, "; SELECT RELEASE_LOCK('{name}')");
            }
            (true, false) => {
                let _ = write!(sql, "; SELECT {ours}");
            }
            (false, true) => {
                let _ = write!(sql, "; DO RELEASE_LOCK('{name}')");
            }
            (false, false) => {}
        }
        let sets = self.run("write", &sql, Duration::ZERO)?;
        if w.data.is_some() && w.fence.is_none() && w.expect_version.is_some() {
            // DELETE, INSERT IGNORE[, lock check]: nothing inserted = taken.
            return Ok(if sets.get(1).map_or(0, |s| s.affected) > 0 { Saved::Done } else { Saved::LockLost });
        }
        if sets.first().map_or(0, |s| s.affected) > 0 {
            return Ok(Saved::Done);
        }
        let sets = if fenced {
            if first_num(&sets, 1).unwrap_or(0) > 0 {
                return Ok(Saved::LockLost);
            }
            &sets[1..]
        } else {
            &sets[..]
        };
        if w.locked && first_num(&sets, 1) != Some(1) {
            return Ok(Saved::LockLost);
        }
        Ok(Saved::Killed)
    }

    fn unlock(&mut self, t: &Target) -> Result<()> {
        self.run("release the lock", &format!("DO RELEASE_LOCK('{}')", t.lock_name), Duration::ZERO).map(|_| ())
    }

    fn destroy(&mut self, t: &Target) -> Result<bool> {
        let (prefix, id) = self.target_sql(t);
        let tb = &self.tables.sessions;
        let sql = format!(
            "DELETE FROM `{tb}` WHERE prefix = {prefix} AND id = {id} AND generation >= {}; \
             DELETE FROM `{tb}` WHERE prefix = {prefix} AND id = {id}",
            self.current(&prefix)
        );
        let sets = self.run("destroy", &sql, Duration::ZERO)?;
        Ok(sets.first().map_or(0, |s| s.affected) > 0)
    }

    fn exists(&mut self, t: &Target, now: i64) -> Result<bool> {
        let (prefix, id) = self.target_sql(t);
        let sql = format!(
            "SELECT 1 FROM `{}` s WHERE s.prefix = {prefix} AND s.id = {id} \
             AND (s.expires_at IS NULL OR s.expires_at >= {now}) AND s.generation >= {}",
            self.tables.sessions,
            self.current(&prefix)
        );
        let sets = self.run("check a session", &sql, Duration::ZERO)?;
        Ok(sets.first().is_some_and(|s| !s.rows.is_empty()))
    }

    /// A session whose lock is held stays: its lock name is the md5 of
    /// the lock identity, as Target::new computes it.
    fn gc(&mut self, now: i64, _now_ms: i64) -> Result<u64> {
        let prefix = lit(self.prefix.as_bytes());
        let identity = lit(format!("{}/", self.tables.sessions).as_bytes());
        let sql = format!(
            "DELETE FROM `{t}` WHERE prefix = {prefix} AND expires_at < {now} \
             AND IS_FREE_LOCK(CONCAT('rs_', MD5(CONCAT({identity}, prefix, '/', id)))); {}",
            stale_holders(&self.tables.holders),
            t = self.tables.sessions,
        );
        let sets = self.run("gc", &sql, BULK)?;
        Ok(sets.first().map_or(0, |s| s.affected))
    }

    fn holder(&mut self, t: &Target) -> Result<Option<Option<String>>> {
        let name = &t.lock_name;
        let sql = format!(
            "SELECT x.c, h.holder FROM (SELECT IS_USED_LOCK('{name}') AS c) x \
             LEFT JOIN `{}` h ON h.conn = x.c AND h.lock_name = '{name}' ORDER BY h.since DESC LIMIT 1",
            self.tables.holders
        );
        let sets = self.run("read the lock's holder", &sql, Duration::ZERO)?;
        let Some(row) = sets.first().and_then(|s| s.rows.first()) else {
            return Ok(None);
        };
        if row.first().is_none_or(Option::is_none) {
            return Ok(None);
        }
        Ok(Some(row.get(1).and_then(text)))
    }

    /// On the user index by force: MariaDB otherwise may intersect it with
    /// the primary key's range over the whole prefix (`index_merge`), more
    /// work per call and a plan that changes as the table's statistics do.
    fn user_sessions(&mut self, user: &str) -> Result<Vec<(String, Row)>> {
        let prefix = lit(self.prefix.as_bytes());
        let t = &self.tables.sessions;
        let sql = format!(
            "SELECT '', s.user_id, s.created, s.last_access, s.timeout, s.timeout_set, s.first_ip, s.last_ip, \
             s.incarnation, s.generation, s.version, s.id FROM `{t}` s FORCE INDEX (`{t}_user`) \
             WHERE s.prefix = {prefix} AND s.user_id = {} AND s.generation >= {}",
            lit(user.as_bytes()),
            self.current(&prefix)
        );
        let sets = self.run("list a user's sessions", &sql, Duration::ZERO)?;
        let rows = sets.into_iter().next().map(|s| s.rows).unwrap_or_default();
        Ok(rows.iter().filter_map(|r| Some((text(r.get(11)?)?, decode_row(r)?))).collect())
    }

    fn kill_user(&mut self, user: &str, keep: Option<&SessionId>) -> Result<u64> {
        let prefix = lit(self.prefix.as_bytes());
        let tb = &self.tables.sessions;
        let cond = format!(
            "prefix = {prefix} AND user_id = {} AND id <> {}",
            lit(user.as_bytes()),
            lit(keep.map_or("", |k| k.as_str()).as_bytes())
        );
        let sql = format!("DELETE FROM `{tb}` WHERE {cond} AND generation >= {}; DELETE FROM `{tb}` WHERE {cond}", self.current(&prefix));
        let sets = self.run("kill a user's sessions", &sql, Duration::ZERO)?;
        Ok(sets.first().map_or(0, |s| s.affected))
    }

    /// One short transaction: the generation moves (reads and fenced
    /// writes check it) and the sessions it ended go.
    fn kill_all(&mut self) -> Result<i64> {
        let prefix = lit(self.prefix.as_bytes());
        let (t, g) = (&self.tables.sessions, &self.tables.generation);
        let sql = format!(
            "START TRANSACTION; \
             INSERT INTO `{g}` (prefix, generation) VALUES ({prefix}, 1) ON DUPLICATE KEY UPDATE generation = generation + 1; \
             DELETE FROM `{t}` WHERE prefix = {prefix} AND generation < (SELECT generation FROM `{g}` WHERE prefix = {prefix}); \
             COMMIT"
        );
        match self.run("kill all sessions", &sql, BULK) {
            Ok(sets) => Ok(sets.get(2).map_or(0, |s| s.affected) as i64),
            Err(e) => {
                if self.conn.is_some() {
                    let _ = self.run("roll back", "ROLLBACK", Duration::ZERO);
                }
                Err(e)
            }
        }
    }
}

/// Runs the schema on the server a config names (php/bin/rsession schema
/// --apply).
pub fn apply_schema(config: &SqlConfig) -> Result<()> {
    let mut store = open_store(config);
    store.backend.applying = true;
    store.backend.conn().map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StoreConfig;
    use crate::store::sql::tests as shared;
    use crate::store::testing::{TTL, id, meta, put, read_data, req};
    use crate::store::{LockUse, Locked, Save, Store};
    use std::path::Path;

    fn url() -> String {
        std::env::var("RSESSION_TEST_MYSQL")
            .expect("RSESSION_TEST_MYSQL is not set: run the MySQL tests via `make test`, which starts a private MariaDB")
    }

    fn config_at(url: &str, prefix: &str, extra: &str) -> SqlConfig {
        let sep = if url.contains('?') { '&' } else { '?' };
        let path = format!("{url}{sep}prefix=mtest:{prefix}:{}:{extra}", std::process::id());
        let StoreConfig::Mysql(c) = StoreConfig::parse(&path, Path::new("/tmp")).unwrap() else { panic!() };
        c
    }

    fn store(prefix: &str) -> MyStore {
        open_store(&config_at(&url(), prefix, ""))
    }

    crate::store::sql::tests::shared_sql_tests!(store);

    fn connection_id(s: &mut MyStore) -> u32 {
        s.backend.conn().unwrap().id
    }

    #[test]
    fn a_killed_connection_loses_its_lock_and_may_not_write() {
        shared::a_killed_connection_loses_its_lock_and_may_not_write(&store, &|a, b| {
            let victim = connection_id(a);
            b.backend.run("kill", &format!("KILL {victim}"), Duration::ZERO).unwrap();
            std::thread::sleep(Duration::from_millis(100));
        });
    }

    #[test]
    fn lazy_touch_writes_at_most_once_per_window() {
        shared::lazy_touch_writes_at_most_once_per_window(&store, &|s, sid| {
            let prefix = s.backend.prefix.clone();
            s.backend.read(&Target::new("rsession_sessions", &prefix, sid)).unwrap().unwrap().last_access
        });
    }

    #[test]
    fn large_data_round_trips() {
        shared::large_data_round_trips(&store, 3 << 20);
    }

    #[test]
    fn down_server_is_an_error_not_a_hang() {
        shared::down_server_is_an_error_not_a_hang("mysql://u@127.0.0.1:1/d?connect_timeout_ms=200");
    }

    #[test]
    fn oversized_data_fails_loudly_and_keeps_the_old() {
        let mut a = store("oversized");
        let s = id("abc");
        crate::store::testing::write(&mut a, &s, b"old");
        let Locked::Acquired { token, record: Some(rec) } = a.lock_and_read(&s, &req(0, 5000)).unwrap() else { panic!() };
        let big = vec![7u8; 9 << 20];
        let p = crate::store::Put { existed: true, ..put(Save::Write(&big), &rec.meta, TTL, LockUse::Release(token)) };
        assert!(matches!(a.save(&s, &p), Err(StoreError::TooLarge { .. })), "9 MB over an 8 MB max_allowed_packet");
        assert_eq!(read_data(&mut a, &s).as_deref(), Some(&b"old"[..]));
        // The lock is still ours to free, on the same connection.
        assert!(a.lock_holder(&s).unwrap().is_some());
        a.unlock(&s, token).unwrap();
        assert!(a.lock_holder(&s).unwrap().is_none());
    }

    #[test]
    fn unix_socket_and_a_missing_table() {
        let sock = std::env::var("RSESSION_TEST_MYSQL_SOCK").expect("RSESSION_TEST_MYSQL_SOCK is not set: run via `make test`");
        let table = format!("rs_t{}", std::process::id());
        let path = format!("mysql://rs_app:rs-app-pw@/rsession_test?socket={sock}&table={table}");
        let mut a = open_store(&config_at(&path, "sock", ""));
        crate::store::testing::write(&mut a, &id("abc"), b"x");
        let mut tcp = open_store(&config_at(&url(), "sock", &format!("&table={table}")));
        assert_eq!(read_data(&mut tcp, &id("abc")).as_deref(), Some(&b"x"[..]));
        drop_tables(&mut a, &table);
    }

    #[test]
    fn racing_workers_create_the_table_once() {
        let table = format!("rs_race{}", std::process::id());
        shared::racing_workers_create_the_table_once(
            |t| open_store(&config_at(&url(), "race", &format!("&table={t}"))),
            &table,
            &|s: &mut MyStore| drop_tables(s, &table),
        );
    }

    fn count(s: &mut MyStore, sql: &str) -> i64 {
        first_num(&s.backend.run("count", sql, Duration::ZERO).unwrap(), 0).unwrap()
    }

    /// Tables of an older version: the holders table InnoDB with a BLOB
    /// column, one row longer than the MEMORY table takes.
    #[test]
    fn an_old_innodb_holders_table_becomes_a_memory_table() {
        let table = format!("rs_mig{}", std::process::id());
        let h = format!("{table}_holders");
        let mut admin = store("mig");
        let drop = format!("DROP TABLE IF EXISTS `{table}`, `{table}_generation`, `{h}`");
        admin.backend.run("drop", &drop, Duration::ZERO).unwrap();
        let tables = Tables { sessions: table.clone(), generation: format!("{table}_generation"), holders: h.clone() };
        for ddl in &schema(&tables)[..2] {
            admin.backend.run("create", ddl, Duration::ZERO).unwrap();
        }
        let old = format!(
            "CREATE TABLE `{h}` (slot BIGINT NOT NULL PRIMARY KEY, conn BIGINT NOT NULL, lock_name VARBINARY(64) NOT NULL, \
             holder BLOB NOT NULL, since BIGINT NOT NULL, KEY `{h}_conn` (conn)) ENGINE=InnoDB; \
             INSERT INTO `{h}` VALUES (1, 1, 'x', REPEAT('y', 5000), 1), (2, 2, 'x', 'short', 1)"
        );
        admin.backend.run("old tables", &old, Duration::ZERO).unwrap();
        let engine =
            format!("SELECT engine = 'MEMORY' FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = '{h}'");
        assert_eq!(count(&mut admin, &engine), 0);

        let mut a = open_store(&config_at(&url(), "mig", &format!("&table={table}")));
        let s = id("abc");
        let Locked::Acquired { token, .. } = a.lock_and_read(&s, &req(0, 5000)).unwrap() else { panic!() };
        assert_eq!(count(&mut admin, &engine), 1, "migrated at the first connection");
        let mut b = open_store(&config_at(&url(), "mig", &format!("&table={table}")));
        assert_eq!(b.lock_holder(&s).unwrap().expect("held").uri, "/t");
        // Only the holder row of the lock held is left.
        assert_eq!(count(&mut admin, &format!("SELECT COUNT(*) FROM `{h}`")), 1);
        a.unlock(&s, token).unwrap();
        admin.backend.run("drop", &drop, Duration::ZERO).unwrap();
    }

    /// Holder rows of locks no longer held go at the next connection (and
    /// at gc); the row of a held lock stays and names its holder.
    #[test]
    fn stale_holder_rows_are_dropped_and_held_ones_kept() {
        // A table of its own: other tests' connections drop stale rows too.
        let table = format!("rs_stale{}", std::process::id());
        let store = |p: &str| open_store(&config_at(&url(), p, &format!("&table={table}")));
        let (mut a, mut b) = (store("stale"), store("stale"));
        let (s1, s2) = (id("abc"), id("abd"));
        // (b connects first: a connection coming after a's unlock would
        // drop a's row.)
        let Locked::Acquired { token, .. } = b.lock_and_read(&s2, &req(0, 5000)).unwrap() else { panic!() };
        let Locked::Acquired { token: ta, .. } = a.lock_and_read(&s1, &req(0, 5000)).unwrap() else { panic!() };
        a.unlock(&s1, ta).unwrap();
        let rows_of = |s: &mut MyStore, who: u32| count(s, &format!("SELECT COUNT(*) FROM `{table}_holders` WHERE conn = {who}"));
        let (ca, cb) = (connection_id(&mut a), connection_id(&mut b));
        assert_eq!(rows_of(&mut b, ca), 1, "a's row, of a lock it freed");
        let mut c = store("stale");
        assert_eq!(rows_of(&mut c, ca), 0, "dropped when c connected");
        assert_eq!(rows_of(&mut c, cb), 1);
        let h = c.lock_holder(&s2).unwrap().expect("held");
        assert_eq!((h.pid, h.uri.as_str()), (7, "/t"));
        b.unlock(&s2, token).unwrap();
        c.gc(1440).unwrap();
        assert_eq!(rows_of(&mut c, cb), 0, "dropped by gc");
        let drop = format!("DROP TABLE `{table}`, `{table}_generation`, `{table}_holders`");
        c.backend.run("drop", &drop, Duration::ZERO).unwrap();
    }

    /// A wait that runs out leaves the holder row of a lock the same
    /// connection holds as it was.
    #[test]
    fn a_failed_wait_keeps_the_row_of_a_lock_held() {
        let (mut a, mut b) = (store("keep"), store("keep"));
        let (s1, s2) = (id("abc"), id("abd"));
        let Locked::Acquired { token: tb, .. } = b.lock_and_read(&s2, &req(0, 5000)).unwrap() else { panic!() };
        let Locked::Acquired { token, .. } = a.lock_and_read(&s1, &req(0, 5000)).unwrap() else { panic!() };
        assert!(matches!(a.lock_and_read(&s2, &req(0, 5000)).unwrap(), Locked::TimedOut { .. }));
        assert_eq!(b.lock_holder(&s1).unwrap().expect("held").uri, "/t", "a's row still names s1's lock");
        a.unlock(&s1, token).unwrap();
        b.unlock(&s2, tb).unwrap();
    }

    #[test]
    fn the_server_closing_the_connection_costs_no_request() {
        let (mut a, mut b) = (store("restart"), store("restart"));
        crate::store::testing::write(&mut a, &id("abc"), b"x");
        let victim = connection_id(&mut a);
        b.backend.run("kill", &format!("KILL {victim}"), Duration::ZERO).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(read_data(&mut a, &id("abc")).as_deref(), Some(&b"x"[..]));
        let _ = meta;
    }

    /// A table's tables and procedures, gone.
    fn drop_tables(s: &mut MyStore, table: &str) {
        let [lock, write] = procedure_names(table);
        let drop = format!(
            "DROP TABLE IF EXISTS `{table}`, `{table}_generation`, `{table}_holders`; \
             DROP PROCEDURE IF EXISTS `{lock}`; DROP PROCEDURE IF EXISTS `{write}`"
        );
        s.backend.run("drop", &drop, Duration::ZERO).unwrap();
    }

    /// The same store sending the exchanges as text statements, as it does
    /// for a user without CREATE ROUTINE or EXECUTE.
    fn text_store(prefix: &str) -> MyStore {
        let mut s = store(&format!("text-{prefix}"));
        s.backend.allow_procedures = false;
        s
    }

    /// The shared tests once more, on the text statements.
    mod text {
        use super::text_store;
        crate::store::sql::tests::shared_sql_tests!(text_store);
    }

    /// How many CALLs this store's connection has made.
    fn calls(s: &mut MyStore) -> i64 {
        let sets = s.backend.run("status", "SHOW SESSION STATUS LIKE 'Com_call_procedure'", Duration::ZERO).unwrap();
        num(&sets[0].rows[0][1]).unwrap()
    }

    /// One locked cycle: lock, read, write `data`, release.
    fn cycle(s: &mut MyStore, sid: &SessionId, data: &[u8]) -> u64 {
        let Locked::Acquired { token, record } = s.lock_and_read(sid, &req(0, 5000)).unwrap() else { panic!("not granted") };
        let m = record.map_or_else(meta, |r| r.meta);
        let p = crate::store::Put { existed: true, ..put(Save::Write(data), &m, TTL, LockUse::Release(token)) };
        s.save(sid, &p).unwrap()
    }

    #[test]
    fn the_locked_exchanges_go_through_the_procedures() {
        let mut a = store("procs");
        let s = id("abc");
        crate::store::testing::write(&mut a, &s, b"one");
        assert!(a.backend.procedures().unwrap(), "the app user may create and call them");
        let before = calls(&mut a);
        cycle(&mut a, &s, b"two");
        assert_eq!(calls(&mut a) - before, 2, "lock + read, then write + release");
        assert_eq!(read_data(&mut a, &s).as_deref(), Some(&b"two"[..]));
        // The same bytes again within the same second: the row matched
        // though nothing in it changed, so the write is not taken for a kill.
        cycle(&mut a, &s, b"two");
        cycle(&mut a, &s, b"two");
        assert_eq!(read_data(&mut a, &s).as_deref(), Some(&b"two"[..]));
        assert!(a.lock_holder(&s).unwrap().is_none(), "released");
    }

    #[test]
    fn a_dropped_procedure_falls_back_to_text_statements() {
        let table = format!("rs_proc{}", std::process::id());
        let mut a = open_store(&config_at(&url(), "procdrop", &format!("&table={table}")));
        let s = id("abc");
        crate::store::testing::write(&mut a, &s, b"one");
        assert!(a.backend.procedures().unwrap());
        let [lock, write] = procedure_names(&table);
        let mut admin = store("procdrop-admin");
        let drop = format!("DROP PROCEDURE `{lock}`; DROP PROCEDURE `{write}`");
        admin.backend.run("drop", &drop, Duration::ZERO).unwrap();
        cycle(&mut a, &s, b"two");
        assert!(!a.backend.procedures().unwrap(), "this connection sends text from now on");
        assert_eq!(read_data(&mut a, &s).as_deref(), Some(&b"two"[..]));
        drop_tables(&mut admin, &table);
    }

    /// A user allowed only to read and write rows (its DBA made the tables
    /// and the procedures): the text statements, and the same locks as a
    /// worker calling the procedures.
    #[test]
    fn a_user_without_routine_rights_uses_text_and_shares_the_locks() {
        let dml = url().replacen("rs_app:rs-app-pw@", "rs_dml:dml-pw@", 1);
        assert_ne!(dml, url(), "the test URL names the app user");
        let mut procs = store("dml");
        let s = id("abc");
        crate::store::testing::write(&mut procs, &s, b"one");
        assert!(procs.backend.procedures().unwrap());
        let mut text = open_store(&config_at(&dml, "dml", ""));
        assert_eq!(read_data(&mut text, &s).as_deref(), Some(&b"one"[..]));
        assert!(!text.backend.procedures().unwrap(), "no CREATE ROUTINE, no EXECUTE");
        cycle(&mut text, &s, b"two");
        assert_eq!(read_data(&mut procs, &s).as_deref(), Some(&b"two"[..]));
        // Each excludes the other.
        let Locked::Acquired { token, .. } = procs.lock_and_read(&s, &req(0, 5000)).unwrap() else { panic!() };
        assert!(matches!(text.lock_and_read(&s, &req(50, 5000)).unwrap(), Locked::TimedOut { holder: Some(_) }));
        procs.unlock(&s, token).unwrap();
        let Locked::Acquired { token, .. } = text.lock_and_read(&s, &req(0, 5000)).unwrap() else { panic!() };
        assert!(matches!(procs.lock_and_read(&s, &req(50, 5000)).unwrap(), Locked::TimedOut { holder: Some(_) }));
        text.unlock(&s, token).unwrap();
    }
}

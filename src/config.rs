//! save_path parsing and the per-request settings (INI or handler options).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::ConfigError;
pub use crate::store::compress::{Algorithm, Compression};

pub const DEFAULT_PREFIX: &str = "rsess:";
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_millis(1000);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(1000);
pub const DEFAULT_MAX_ITEM_SIZE: usize = 1024 * 1024;
pub const DEFAULT_SQL_TABLE: &str = "rsession_sessions";
pub const DEFAULT_LAZY_TOUCH: Duration = Duration::from_secs(60);
/// Longest `table=`: the store adds suffixes (`_holders`, `_generation`)
/// and index names must stay under PostgreSQL's 63-byte identifier limit.
pub const MAX_SQL_TABLE_LEN: usize = 48;

/// Which store a save_path names, and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StoreConfig {
    Files { dir: PathBuf, compression: Compression },
    Redis(RedisConfig),
    Memcached(MemcachedConfig),
    Pgsql(SqlConfig),
    Mysql(SqlConfig),
    /// `CACHE | STORE`: a network cache in front of a durable store.
    WriteThrough {
        cache: Box<StoreConfig>,
        store: Box<StoreConfig>,
        /// The durable store's last access is refreshed at most this often
        /// on reads that change nothing: its own `lazy_touch_s` (SQL), zero
        /// for files (a local file records every access).
        lazy_touch: Duration,
    },
}

/// Options every network store takes in its query string.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NetOptions {
    pub prefix: String,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    pub compression: Compression,
}

impl Default for NetOptions {
    fn default() -> Self {
        NetOptions {
            prefix: DEFAULT_PREFIX.to_string(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            timeout: DEFAULT_TIMEOUT,
            compression: Compression::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RedisAddr {
    Tcp { host: String, port: u16, tls: bool },
    Unix { path: PathBuf },
    /// Redis Cluster: the seed nodes, from which the slot map is learnt.
    Cluster { seeds: Vec<(String, u16)>, tls: bool },
    /// A master watched by Sentinel: the sentinels to ask for it, its name
    /// there, and the password the sentinels want (`sentinel_password`).
    Sentinel { sentinels: Vec<(String, u16)>, master: String, sentinel_password: Option<String> },
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RedisConfig {
    pub addr: RedisAddr,
    pub username: Option<String>,
    pub password: Option<String>,
    pub db: i64,
    pub net: NetOptions,
    /// `wait_replicas=N`: after taking a lock and after a write, wait (at
    /// most `timeout_ms`) until N replicas have it; 0 = don't.
    pub wait_replicas: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MemcachedConfig {
    pub servers: Vec<(String, u16)>,
    pub net: NetOptions,
    pub max_item_size: usize,
}

/// How a SQL store reaches its server.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SqlAddr {
    Tcp { host: String, port: u16 },
    /// MySQL's `socket=/path/mysqld.sock`.
    Unix { path: PathBuf },
}

/// `sslmode`, as libpq names it: `prefer` and `require` encrypt without
/// checking the certificate; `verify-full` checks it against the system's
/// trust store and the host name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyFull,
}

impl SslMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// A PostgreSQL or MySQL/MariaDB store (`pgsql://`, `mysql://`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SqlConfig {
    pub addr: SqlAddr,
    /// None: the operating system user running PHP (as libpq and the
    /// mysql client do).
    pub user: Option<String>,
    pub password: Option<String>,
    pub dbname: String,
    /// Only `[A-Za-z0-9_]`, checked here: it is the one name the store
    /// writes into SQL text.
    pub table: String,
    pub sslmode: SslMode,
    /// A lazy write records the access at most this often.
    pub lazy_touch: Duration,
    pub net: NetOptions,
}

impl StoreConfig {
    /// Parses a save_path. `temp_dir` is PHP's `sys_get_temp_dir()`, used when
    /// the path is empty.
    pub fn parse(save_path: &str, temp_dir: &Path) -> Result<StoreConfig, ConfigError> {
        let bad = |reason: &str| ConfigError::SavePath {
            path: save_path.to_string(),
            reason: reason.to_string(),
        };
        let s = save_path.trim();
        if s.is_empty() {
            return Ok(StoreConfig::Files { dir: temp_dir.join("rsession"), compression: Compression::default() });
        }
        if s.contains('\0') {
            return Err(bad("contains a NUL byte"));
        }
        if s.contains('|') {
            return parse_write_through(s, temp_dir).map_err(|r| bad(&r));
        }
        if let Some(rest) = s.strip_prefix("file://") {
            return files_dir(rest).map_err(|r| bad(&r));
        }
        if s.starts_with('/') {
            return files_dir(s).map_err(|r| bad(&r));
        }
        if let Some(rest) = s.strip_prefix("redis+unix://") {
            return parse_redis_unix(rest).map_err(|r| bad(&r));
        }
        if let Some(rest) = s.strip_prefix("rediss://") {
            return parse_redis_tcp(rest, true).map_err(|r| bad(&r));
        }
        if let Some(rest) = s.strip_prefix("redis://") {
            return parse_redis_tcp(rest, false).map_err(|r| bad(&r));
        }
        if let Some(rest) = s.strip_prefix("memcached://") {
            return parse_memcached(rest).map_err(|r| bad(&r));
        }
        if let Some(rest) = s.strip_prefix("redis-cluster://") {
            return parse_redis_cluster(rest, false).map_err(|r| bad(&r));
        }
        if let Some(rest) = s.strip_prefix("rediss-cluster://") {
            return parse_redis_cluster(rest, true).map_err(|r| bad(&r));
        }
        if let Some(rest) = s.strip_prefix("redis-sentinel://") {
            return parse_redis_sentinel(rest).map_err(|r| bad(&r));
        }
        if let Some(rest) = s.strip_prefix("pgsql://").or_else(|| s.strip_prefix("postgresql://")) {
            return parse_sql(rest, 5432, false).map(StoreConfig::Pgsql).map_err(|r| bad(&r));
        }
        if let Some(rest) = s.strip_prefix("mysql://") {
            return parse_sql(rest, 3306, true).map(StoreConfig::Mysql).map_err(|r| bad(&r));
        }
        if s.contains("://") {
            return Err(bad(
                "unknown scheme; use an absolute directory, file://, redis://, rediss://, redis+unix://, redis-cluster://, rediss-cluster://, redis-sentinel://, memcached://, pgsql://, postgresql:// or mysql://",
            ));
        }
        if s.contains(';') {
            return Err(bad(
                "the files handler's \"N;MODE;/dir\" form is not supported; give an absolute directory",
            ));
        }
        Err(bad("a directory must be an absolute path"))
    }

    /// How data is compressed before it is stored.
    pub fn compression(&self) -> Compression {
        match self {
            StoreConfig::Files { compression, .. } => *compression,
            StoreConfig::Redis(c) => c.net.compression,
            StoreConfig::Memcached(c) => c.net.compression,
            StoreConfig::Pgsql(c) | StoreConfig::Mysql(c) => c.net.compression,
            // Each member compresses as its own part of the path says.
            StoreConfig::WriteThrough { .. } => Compression::default(),
        }
    }

    /// Whether this store can be a write-through's CACHE: a network store
    /// that other hosts share and that holds locks with a lease.
    pub fn is_network_cache(&self) -> bool {
        matches!(self, StoreConfig::Redis(_) | StoreConfig::Memcached(_))
    }

    /// Whether this store can be a write-through's durable STORE.
    pub fn is_durable(&self) -> bool {
        matches!(self, StoreConfig::Pgsql(_) | StoreConfig::Mysql(_) | StoreConfig::Files { .. })
    }

    /// The name of the store this config selects, as shown to operators.
    pub fn store_name(&self) -> &'static str {
        match self {
            StoreConfig::Files { .. } => "files",
            StoreConfig::Redis(_) => "redis",
            StoreConfig::Memcached(_) => "memcached",
            StoreConfig::Pgsql(_) => "pgsql",
            StoreConfig::Mysql(_) => "mysql",
            StoreConfig::WriteThrough { .. } => "write-through",
        }
    }
}

/// `CACHE | STORE`, spaces allowed around the `|`.
fn parse_write_through(s: &str, temp_dir: &Path) -> Result<StoreConfig, String> {
    let (cache, store) = s.split_once('|').expect("checked by the caller");
    if store.contains('|') {
        return Err("a write-through path has exactly one \"|\" (CACHE | STORE)".into());
    }
    let member = |part: &str, what: &str| -> Result<StoreConfig, String> {
        let part = part.trim();
        if part.is_empty() {
            return Err(format!("the {what} side of \"|\" is empty (CACHE | STORE)"));
        }
        StoreConfig::parse(part, temp_dir).map_err(|e| match e {
            ConfigError::SavePath { reason, .. } => format!("{what} {part:?}: {reason}"),
            other => other.to_string(),
        })
    };
    let (cache, store) = (member(cache, "the cache")?, member(store, "the store")?);
    if !cache.is_network_cache() {
        return Err(format!(
            "the cache (left of \"|\") must be a network cache (redis://, rediss://, redis+unix://, redis-cluster://, rediss-cluster://, redis-sentinel://, memcached://), not {}",
            cache.store_name()
        ));
    }
    if !store.is_durable() {
        return Err(format!(
            "the store (right of \"|\") must be durable (pgsql://, mysql:// or a files directory), not {}",
            store.store_name()
        ));
    }
    let lazy_touch = match &store {
        StoreConfig::Pgsql(c) | StoreConfig::Mysql(c) => c.lazy_touch,
        _ => Duration::ZERO,
    };
    Ok(StoreConfig::WriteThrough { cache: Box::new(cache), store: Box::new(store), lazy_touch })
}

/// A directory, optionally with `?compress=…&compress_min=…` (a `?` that is
/// part of the directory's name is written `%3F`).
fn files_dir(path: &str) -> Result<StoreConfig, String> {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let mut compression = Compression::default();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if !parse_compression(&mut compression, k, &percent_decode(v)?)? {
            return Err(format!("unknown query key {k:?} (the files store takes compress and compress_min)"));
        }
    }
    let path = percent_decode(path)?;
    if !path.starts_with('/') {
        return Err("a directory must be an absolute path".into());
    }
    if path.split('/').any(|c| c == "..") {
        return Err("a directory must not contain \"..\"".into());
    }
    Ok(StoreConfig::Files { dir: PathBuf::from(path), compression })
}

/// `compress` and `compress_min`, which every store takes; false for any
/// other key.
fn parse_compression(c: &mut Compression, key: &str, v: &str) -> Result<bool, String> {
    match key {
        "compress" => c.algorithm = Compression::algorithm_named(v)?,
        "compress_min" => {
            c.min = v
                .parse::<usize>()
                .ok()
                .filter(|n| *n <= 1 << 30)
                .ok_or_else(|| format!("compress_min={v:?} is not a number of bytes (0 to 1073741824)"))?
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// Splits `authority/path?query` into its parts.
fn split_url(rest: &str) -> (&str, &str, &str) {
    let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, path) = match before_query.find('/') {
        Some(i) => (&before_query[..i], &before_query[i..]),
        None => (before_query, ""),
    };
    (authority, path, query)
}

fn parse_redis_tcp(rest: &str, tls: bool) -> Result<StoreConfig, String> {
    let (authority, path, query) = split_url(rest);
    let (username, password, hostport) = split_userinfo(authority)?;
    let (host, port) = parse_host_port(hostport, 6379)?;
    let db = match path.trim_start_matches('/') {
        "" => 0,
        d => d
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| format!("database {d:?} is not a non-negative number"))?,
    };
    let mut wait_replicas = 0;
    let net = parse_query(query, &mut |k, v| parse_wait_replicas(&mut wait_replicas, k, v))?;
    Ok(StoreConfig::Redis(RedisConfig {
        addr: RedisAddr::Tcp { host, port, tls },
        username,
        password,
        db,
        net,
        wait_replicas,
    }))
}

/// `[user[:password]@]rest` of a Redis URL's authority.
fn split_userinfo(authority: &str) -> Result<(Option<String>, Option<String>, &str), String> {
    let Some((userinfo, rest)) = authority.rsplit_once('@') else { return Ok((None, None, authority)) };
    Ok(match userinfo.split_once(':') {
        Some((user, pass)) => (non_empty(percent_decode(user)?), Some(percent_decode(pass)?), rest),
        None => (non_empty(percent_decode(userinfo)?), None, rest),
    })
}

/// `wait_replicas`, which every Redis form takes; false for any other key.
fn parse_wait_replicas(n: &mut u32, key: &str, v: &str) -> Result<bool, String> {
    if key != "wait_replicas" {
        return Ok(false);
    }
    *n = v
        .parse::<u32>()
        .ok()
        .filter(|n| *n <= 64)
        .ok_or_else(|| format!("wait_replicas={v:?} is not a number of replicas (0 to 64)"))?;
    Ok(true)
}

/// `host:port,host:port…`, `default_port` where a port is left out.
fn parse_host_list(list: &str, default_port: u16) -> Result<Vec<(String, u16)>, String> {
    list.split(',')
        .map(|part| match part {
            "" => Err("empty host in the list".to_string()),
            p => parse_host_port(p, default_port),
        })
        .collect()
}

/// `[user[:password]@]host:port[,host:port…][?query]`: the seed nodes.
fn parse_redis_cluster(rest: &str, tls: bool) -> Result<StoreConfig, String> {
    let (authority, path, query) = split_url(rest);
    if !path.is_empty() && path != "/" {
        return Err("redis-cluster:// takes no database or path (a cluster has database 0 only); list seed nodes as host:port,host:port".into());
    }
    let (username, password, hosts) = split_userinfo(authority)?;
    let seeds = parse_host_list(hosts, 6379)?;
    let mut wait_replicas = 0;
    let net = parse_query(query, &mut |k, v| parse_wait_replicas(&mut wait_replicas, k, v))?;
    // A brace in the prefix would take the hash tag away from the session
    // id, and a session's keys would no longer share one slot.
    if net.prefix.contains(['{', '}']) {
        return Err(format!("prefix {:?} must not contain braces on Redis Cluster (they decide which slot a key is in)", net.prefix));
    }
    Ok(StoreConfig::Redis(RedisConfig { addr: RedisAddr::Cluster { seeds, tls }, username, password, db: 0, net, wait_replicas }))
}

/// `[user[:password]@]host:port[,host:port…]/master_name[/db][?query]`:
/// the sentinels (port 26379 unless given), then the master's name. The
/// credentials are the data nodes'; `sentinel_password` is the sentinels'.
fn parse_redis_sentinel(rest: &str) -> Result<StoreConfig, String> {
    let (authority, path, query) = split_url(rest);
    let (username, password, hosts) = split_userinfo(authority)?;
    let sentinels = parse_host_list(hosts, 26379)?;
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let master = percent_decode(parts.next().unwrap_or(""))?;
    if master.is_empty() {
        return Err("redis-sentinel:// needs the master's name after the sentinels (redis-sentinel://host:26379/mymaster)".into());
    }
    if master.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err("the master's name must not contain spaces or control characters".into());
    }
    let db = match parts.next().unwrap_or("") {
        "" => 0,
        d => d.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| format!("database {d:?} is not a non-negative number"))?,
    };
    let (mut wait_replicas, mut sentinel_password) = (0, None);
    let net = parse_query(query, &mut |k, v| {
        if k == "sentinel_password" {
            sentinel_password = Some(v.to_string());
            return Ok(true);
        }
        parse_wait_replicas(&mut wait_replicas, k, v)
    })?;
    Ok(StoreConfig::Redis(RedisConfig {
        addr: RedisAddr::Sentinel { sentinels, master, sentinel_password },
        username,
        password,
        db,
        net,
        wait_replicas,
    }))
}

fn parse_redis_unix(rest: &str) -> Result<StoreConfig, String> {
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let path = percent_decode(path)?;
    if !path.starts_with('/') {
        return Err("redis+unix:// needs an absolute socket path (redis+unix:///path/redis.sock)".into());
    }
    let (mut db, mut wait_replicas) = (0, 0);
    let net = parse_query(query, &mut |k, v| {
        if k == "db" {
            db = v.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                format!("db={v:?} is not a non-negative number")
            })?;
            return Ok(true);
        }
        parse_wait_replicas(&mut wait_replicas, k, v)
    })?;
    Ok(StoreConfig::Redis(RedisConfig {
        addr: RedisAddr::Unix { path: PathBuf::from(path) },
        username: None,
        password: None,
        db,
        net,
        wait_replicas,
    }))
}

fn parse_memcached(rest: &str) -> Result<StoreConfig, String> {
    let (authority, path, query) = split_url(rest);
    if !path.is_empty() && path != "/" {
        return Err("memcached:// takes no path; list servers as host:port,host:port".into());
    }
    let mut servers = Vec::new();
    for part in authority.split(',') {
        if part.is_empty() {
            return Err("empty server in the list".into());
        }
        servers.push(parse_host_port(part, 11211)?);
    }
    let mut max_item_size = DEFAULT_MAX_ITEM_SIZE;
    let net = parse_query(query, &mut |k, v| {
        if k == "max_item_size" {
            max_item_size = v
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("max_item_size={v:?} is not a positive number of bytes"))?;
            return Ok(true);
        }
        Ok(false)
    })?;
    Ok(StoreConfig::Memcached(MemcachedConfig { servers, net, max_item_size }))
}

/// `[user[:password]@]host[:port]/dbname[?query]` (MySQL: the host may be
/// left out, or be `localhost`, when `socket=` names a unix socket).
fn parse_sql(rest: &str, default_port: u16, mysql: bool) -> Result<SqlConfig, String> {
    let (authority, path, query) = split_url(rest);
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (user, password) = match userinfo {
        None => (None, None),
        Some(u) => match u.split_once(':') {
            Some((user, pass)) => (non_empty(percent_decode(user)?), Some(percent_decode(pass)?)),
            None => (non_empty(percent_decode(u)?), None),
        },
    };
    let dbname = percent_decode(path.strip_prefix('/').unwrap_or(""))?;
    if dbname.is_empty() {
        return Err("missing database name (…/dbname)".into());
    }
    if dbname.contains('/') {
        return Err(format!("database name {dbname:?} contains '/'"));
    }
    let mut table = DEFAULT_SQL_TABLE.to_string();
    let mut sslmode = SslMode::Prefer;
    let mut socket = None;
    let mut lazy_touch = DEFAULT_LAZY_TOUCH;
    let net = parse_query(query, &mut |k, v| {
        match k {
            "table" => {
                let ok = !v.is_empty()
                    && v.len() <= MAX_SQL_TABLE_LEN
                    && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                    && !v.as_bytes()[0].is_ascii_digit();
                if !ok {
                    return Err(format!(
                        "table={v:?}: a table name is 1 to {MAX_SQL_TABLE_LEN} of A-Z a-z 0-9 _, not starting with a digit"
                    ));
                }
                table = v.to_string();
            }
            "sslmode" => {
                sslmode = match v {
                    "disable" => SslMode::Disable,
                    "prefer" => SslMode::Prefer,
                    "require" => SslMode::Require,
                    "verify-full" => SslMode::VerifyFull,
                    _ => return Err(format!("sslmode={v:?} is not one of disable, prefer, require, verify-full")),
                }
            }
            "socket" if mysql => {
                if !v.starts_with('/') {
                    return Err(format!("socket={v:?} is not an absolute path"));
                }
                socket = Some(PathBuf::from(v));
            }
            "lazy_touch_s" => {
                lazy_touch = v
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n <= 86_400)
                    .map(Duration::from_secs)
                    .ok_or_else(|| format!("lazy_touch_s={v:?} is not a number of seconds between 0 and 86400"))?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    let addr = match socket {
        Some(path) => {
            if !(hostport.is_empty() || hostport == "localhost") {
                return Err("give either host:port or socket=, not both".into());
            }
            if matches!(sslmode, SslMode::Require | SslMode::VerifyFull) {
                return Err("sslmode=require and verify-full need TCP; a unix socket is not encrypted".into());
            }
            SqlAddr::Unix { path }
        }
        None => {
            let (host, port) = parse_host_port(hostport, default_port)?;
            SqlAddr::Tcp { host, port }
        }
    };
    Ok(SqlConfig { addr, user, password, dbname, table, sslmode, lazy_touch, net })
}

fn parse_host_port(s: &str, default_port: u16) -> Result<(String, u16), String> {
    if s.is_empty() {
        return Err("missing host".into());
    }
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        // IPv6 literal: [::1]:6379
        let (h, after) = rest.split_once(']').ok_or("unclosed '[' in host")?;
        match after {
            "" => (h, None),
            p => (h, Some(p.strip_prefix(':').ok_or("garbage after ']'")?)),
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty() {
        return Err("missing host".into());
    }
    if !host.chars().all(|c| c.is_ascii_alphanumeric() || "-._:".contains(c)) {
        return Err(format!("host {host:?} contains characters a host name cannot have"));
    }
    let port = match port {
        None => default_port,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("port {p:?} is not a number between 1 and 65535"))?,
    };
    Ok((host.to_string(), port))
}

/// Parses the common query keys; `extra` handles store-specific keys and
/// returns whether it knew the key. Unknown keys are errors: a typo must not
/// silently fall back to a default.
fn parse_query(
    query: &str,
    extra: &mut dyn FnMut(&str, &str) -> Result<bool, String>,
) -> Result<NetOptions, String> {
    let mut net = NetOptions::default();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_decode(v)?;
        match k {
            "prefix" => {
                if v.bytes().any(|b| b <= b' ' || b == 0x7f) {
                    return Err("prefix must not contain spaces or control characters".into());
                }
                if v.len() > 128 {
                    return Err("prefix is longer than 128 bytes".into());
                }
                net.prefix = v;
            }
            "connect_timeout_ms" => net.connect_timeout = parse_ms(k, &v)?,
            "timeout_ms" => net.timeout = parse_ms(k, &v)?,
            _ => {
                if !parse_compression(&mut net.compression, k, &v)? && !extra(k, &v)? {
                    return Err(format!("unknown query key {k:?}"));
                }
            }
        }
    }
    Ok(net)
}

fn parse_ms(key: &str, v: &str) -> Result<Duration, String> {
    v.parse::<u64>()
        .ok()
        .filter(|n| *n > 0 && *n <= 3_600_000)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("{key}={v:?} is not a number of milliseconds between 1 and 3600000"))
}

fn non_empty(s: String) -> Option<String> {
    if s.is_empty() { None } else { Some(s) }
}

fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("bad %-escape")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let s = String::from_utf8(out).map_err(|_| "%-escapes do not decode to UTF-8".to_string())?;
    if s.contains('\0') {
        return Err("contains a NUL byte".into());
    }
    Ok(s)
}

/// What to do when the lock cannot be had within `lock_wait`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockFailure {
    Fail,
    ReadOnly,
}

/// Per-request behaviour: the `rsession.*` INI settings, or the options of an
/// `RSession\Handler` (which win).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub locking: bool,
    pub lock_wait: Duration,
    pub lock_ttl: Duration,
    pub lock_failure: LockFailure,
    pub read_only: bool,
    /// Longest busy wait for a store's reply before sleeping (zero: none).
    pub spin: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            locking: true,
            lock_wait: Duration::from_millis(30_000),
            lock_ttl: Duration::from_millis(10_000),
            lock_failure: LockFailure::Fail,
            read_only: false,
            spin: crate::store::spin::DEFAULT_SPIN,
        }
    }
}

/// The setting names, without the `rsession.` INI prefix.
pub const SETTING_NAMES: [&str; 6] = ["locking", "lock_wait_ms", "lock_ttl_ms", "lock_failure", "read_only", "spin_us"];

impl Settings {
    /// Sets one setting from its text form (as INI or an option gives it).
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
        let bad = |reason: String| ConfigError::Option { name: name.to_string(), reason };
        let v = value.trim();
        match name {
            "locking" => self.locking = parse_bool(v).ok_or_else(|| bad(format!("{v:?} is not a boolean")))?,
            "read_only" => self.read_only = parse_bool(v).ok_or_else(|| bad(format!("{v:?} is not a boolean")))?,
            "lock_wait_ms" => self.lock_wait = Duration::from_millis(in_range(v, 0..=86_400_000, "milliseconds").map_err(bad)?),
            "lock_ttl_ms" => self.lock_ttl = Duration::from_millis(in_range(v, 100..=86_400_000, "milliseconds").map_err(bad)?),
            "spin_us" => self.spin = Duration::from_micros(in_range(v, 0..=10_000, "microseconds").map_err(bad)?),
            "lock_failure" => {
                self.lock_failure = match v.to_ascii_lowercase().as_str() {
                    "fail" => LockFailure::Fail,
                    "readonly" | "read_only" => LockFailure::ReadOnly,
                    _ => return Err(bad(format!("{v:?} is neither \"fail\" nor \"readonly\""))),
                }
            }
            _ => return Err(bad(format!("unknown option; known: {}", SETTING_NAMES.join(", ")))),
        }
        Ok(())
    }
}

/// A whole number within `range`, or why not (`unit` names what it counts).
fn in_range(v: &str, range: std::ops::RangeInclusive<u64>, unit: &str) -> Result<u64, String> {
    v.parse::<u64>()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| format!("{v:?} is not a number of {unit} ({} to {})", range.start(), range.end()))
}

/// PHP's INI boolean spellings.
pub fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "on" | "yes" | "true" => Some(true),
        "0" | "off" | "no" | "false" | "" | "none" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<StoreConfig, ConfigError> {
        StoreConfig::parse(s, Path::new("/tmp"))
    }

    #[test]
    fn files_forms() {
        let files = |d: &str| StoreConfig::Files { dir: d.into(), compression: Compression::default() };
        assert_eq!(parse("").unwrap(), files("/tmp/rsession"));
        assert_eq!(parse("/var/s").unwrap(), files("/var/s"));
        assert_eq!(parse("file:///var/s").unwrap(), files("/var/s"));
        assert_eq!(parse("/var/a%3Fb").unwrap(), files("/var/a?b"));
        let z = parse("/var/s?compress=zstd&compress_min=0").unwrap();
        assert_eq!(z.compression(), Compression { algorithm: Some(Algorithm::Zstd), min: 0 });
        assert!(parse("/var/s?compress=gzip").is_err());
        assert!(parse("/var/s?prefix=x").is_err());
        assert!(parse("relative/dir").is_err());
        assert!(parse("2;/tmp").is_err());
        assert!(parse("/a/../b").is_err());
        assert!(parse("file://relative").is_err());
    }

    #[test]
    fn redis_forms() {
        let StoreConfig::Redis(c) = parse("redis://u:p%40ss@h.example:7000/3?prefix=a:&timeout_ms=50").unwrap() else {
            panic!()
        };
        assert_eq!(c.addr, RedisAddr::Tcp { host: "h.example".into(), port: 7000, tls: false });
        assert_eq!(c.username.as_deref(), Some("u"));
        assert_eq!(c.password.as_deref(), Some("p@ss"));
        assert_eq!(c.db, 3);
        assert_eq!(c.net.prefix, "a:");
        assert_eq!(c.net.timeout, Duration::from_millis(50));
        assert_eq!(c.net.connect_timeout, DEFAULT_CONNECT_TIMEOUT);

        let StoreConfig::Redis(c) = parse("rediss://:secret@[::1]").unwrap() else { panic!() };
        assert_eq!(c.addr, RedisAddr::Tcp { host: "::1".into(), port: 6379, tls: true });
        assert_eq!(c.username, None);
        assert_eq!(c.password.as_deref(), Some("secret"));

        let StoreConfig::Redis(c) = parse("redis+unix:///run/r.sock?db=2").unwrap() else { panic!() };
        assert_eq!(c.addr, RedisAddr::Unix { path: "/run/r.sock".into() });
        assert_eq!(c.db, 2);

        for bad in [
            "redis://",
            "redis://h:0",
            "redis://h:99999",
            "redis://h/x",
            "redis://h?timeout_ms=abc",
            "redis://h?bogus=1",
            "redis://h?prefix=a%20b",
            "redis+unix://rel.sock",
            "redis://h%zz",
        ] {
            assert!(parse(bad).is_err(), "{bad} should fail");
        }
    }

    #[test]
    fn redis_cluster_and_sentinel_forms() {
        let StoreConfig::Redis(c) = parse("redis-cluster://u:p%40ss@10.0.0.1:7000,10.0.0.2,[::1]:7002?prefix=a:&wait_replicas=1").unwrap() else {
            panic!()
        };
        let seeds = vec![("10.0.0.1".into(), 7000), ("10.0.0.2".into(), 6379), ("::1".into(), 7002)];
        assert_eq!(c.addr, RedisAddr::Cluster { seeds, tls: false });
        assert_eq!((c.username.as_deref(), c.password.as_deref(), c.db), (Some("u"), Some("p@ss"), 0));
        assert_eq!((c.net.prefix.as_str(), c.wait_replicas), ("a:", 1));
        let StoreConfig::Redis(c) = parse("rediss-cluster://h:7000/?timeout_ms=50&compress=lz4").unwrap() else { panic!() };
        assert_eq!(c.addr, RedisAddr::Cluster { seeds: vec![("h".into(), 7000)], tls: true });
        assert_eq!((c.net.timeout, c.wait_replicas), (Duration::from_millis(50), 0));
        assert_eq!(c.net.compression.algorithm, Some(Algorithm::Lz4));

        let StoreConfig::Redis(c) =
            parse("redis-sentinel://:datapw@s1,s2:26380/my%2Dmaster/3?sentinel_password=s%26p&prefix=x:&wait_replicas=2").unwrap()
        else {
            panic!()
        };
        let sentinels = vec![("s1".into(), 26379), ("s2".into(), 26380)];
        assert_eq!(c.addr, RedisAddr::Sentinel { sentinels, master: "my-master".into(), sentinel_password: Some("s&p".into()) });
        assert_eq!((c.username, c.password.as_deref(), c.db, c.wait_replicas), (None, Some("datapw"), 3, 2));
        let StoreConfig::Redis(c) = parse("redis-sentinel://s1:26379/mymaster").unwrap() else { panic!() };
        assert_eq!((c.db, c.password), (0, None));
        assert!(matches!(c.addr, RedisAddr::Sentinel { sentinel_password: None, .. }));

        let StoreConfig::Redis(c) = parse("redis://h?wait_replicas=1").unwrap() else { panic!() };
        assert_eq!(c.wait_replicas, 1);

        for bad in [
            "redis-cluster://",
            "redis-cluster://h1,,h2",
            "redis-cluster://h:0",
            "redis-cluster://h/2",
            "redis-cluster://h?prefix=a{b}:",
            "redis-cluster://h?prefix=a}",
            "redis-cluster://h?wait_replicas=x",
            "redis-cluster://h?wait_replicas=-1",
            "redis-cluster://h?sentinel_password=x",
            "redis-cluster://h?timeout_ms=abc",
            "redis-sentinel://s1",
            "redis-sentinel://s1/",
            "redis-sentinel://s1/m/x",
            "redis-sentinel://s1/m%20n",
            "redis-sentinel://s1:99999/m",
            "redis-sentinel://s1/m?bogus=1",
            "redis-sentinel:///m",
            "redis-clusters://h",
        ] {
            assert!(parse(bad).is_err(), "{bad} should fail");
        }
    }

    #[test]
    fn write_through_paths() {
        let p = parse("memcached://127.0.0.1:11211 | pgsql://app@127.0.0.1/app?lazy_touch_s=30&compress=zstd").unwrap();
        let StoreConfig::WriteThrough { cache, store, lazy_touch } = p else { panic!("{p:?}") };
        assert!(matches!(*cache, StoreConfig::Memcached(_)));
        assert_eq!(store.compression().algorithm, Some(Algorithm::Zstd), "compression is per member");
        assert_eq!(lazy_touch, Duration::from_secs(30), "the SQL member's lazy_touch_s");
        let p = parse("redis://h|/var/lib/s").unwrap();
        assert!(matches!(p, StoreConfig::WriteThrough { lazy_touch: Duration::ZERO, .. }), "files records every access");
        let p = parse("redis://h | mysql://u@h/d").unwrap();
        assert!(matches!(p, StoreConfig::WriteThrough { lazy_touch: DEFAULT_LAZY_TOUCH, .. }));
        for cache in ["redis-cluster://h1,h2", "redis-sentinel://s1/mymaster"] {
            assert!(matches!(parse(&format!("{cache} | /var/lib/s")), Ok(StoreConfig::WriteThrough { .. })), "{cache} as the cache");
        }
        for (bad, says) in [
            ("redis://h | pgsql://h/d | mysql://h/d", "exactly one"),
            (" | pgsql://h/d", "cache side"),
            ("redis://h | ", "store side"),
            ("pgsql://h/d | redis://h", "must be a network cache"),
            ("/tmp/x | pgsql://h/d", "must be a network cache"),
            ("redis://h | memcached://h", "must be durable"),
            ("redis://h?lazy_touch_s=3 | pgsql://h/d", "lazy_touch_s"),
            ("redis://h | pgsql://h/d?lazy_touch_s=x", "lazy_touch_s"),
            ("memcached://h | ftp://x", "unknown scheme"),
        ] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(e.contains(says) && e.starts_with("save_path"), "{bad}: {e}");
        }
    }

    #[test]
    fn compression_on_every_store() {
        for path in ["redis://h?compress=lz4&compress_min=10", "memcached://h?compress=lz4&compress_min=10", "file:///d?compress=lz4&compress_min=10", "pgsql://h/d?compress=lz4&compress_min=10", "mysql://h/d?compress=lz4&compress_min=10"] {
            assert_eq!(parse(path).unwrap().compression(), Compression { algorithm: Some(Algorithm::Lz4), min: 10 }, "{path}");
        }
        assert_eq!(parse("redis://h").unwrap().compression(), Compression { algorithm: None, min: 1024 });
        for bad in ["redis://h?compress=", "redis://h?compress=zip", "memcached://h?compress_min=-1", "redis://h?compress_min=abc"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn memcached_forms() {
        let StoreConfig::Memcached(c) = parse("memcached://a:1,b?max_item_size=2048").unwrap() else { panic!() };
        assert_eq!(c.servers, vec![("a".into(), 1), ("b".into(), 11211)]);
        assert_eq!(c.max_item_size, 2048);
        assert!(parse("memcached://a,,b").is_err());
        assert!(parse("memcached://a?max_item_size=0").is_err());
        assert!(parse("memcached://a/x").is_err());
        assert!(parse("ftp://x").is_err());
    }

    #[test]
    fn sql_forms() {
        let StoreConfig::Pgsql(c) =
            parse("pgsql://app:p%40ss@db.internal:6432/sessions?table=web_sess&sslmode=verify-full&prefix=lms:&lazy_touch_s=0")
                .unwrap()
        else {
            panic!()
        };
        assert_eq!(c.addr, SqlAddr::Tcp { host: "db.internal".into(), port: 6432 });
        assert_eq!((c.user.as_deref(), c.password.as_deref()), (Some("app"), Some("p@ss")));
        assert_eq!((c.dbname.as_str(), c.table.as_str()), ("sessions", "web_sess"));
        assert_eq!((c.sslmode, c.lazy_touch, c.net.prefix.as_str()), (SslMode::VerifyFull, Duration::ZERO, "lms:"));

        let StoreConfig::Pgsql(c) = parse("postgresql://[::1]/d").unwrap() else { panic!() };
        assert_eq!(c.addr, SqlAddr::Tcp { host: "::1".into(), port: 5432 });
        assert_eq!((c.user, c.table.as_str(), c.sslmode, c.lazy_touch), (None, DEFAULT_SQL_TABLE, SslMode::Prefer, DEFAULT_LAZY_TOUCH));

        let StoreConfig::Mysql(c) = parse("mysql://root@127.0.0.1/app?timeout_ms=300").unwrap() else { panic!() };
        assert_eq!(c.addr, SqlAddr::Tcp { host: "127.0.0.1".into(), port: 3306 });
        assert_eq!(c.net.timeout, Duration::from_millis(300));
        let StoreConfig::Mysql(c) = parse("mysql://u:p@/app?socket=/run/mysqld/mysqld.sock").unwrap() else { panic!() };
        assert_eq!(c.addr, SqlAddr::Unix { path: "/run/mysqld/mysqld.sock".into() });
        assert!(matches!(parse("mysql://u@localhost/app?socket=/s.sock").unwrap(), StoreConfig::Mysql(_)));

        for bad in [
            "pgsql://h",
            "pgsql://h/",
            "pgsql:///d",
            "pgsql://h/a/b",
            "pgsql://h:0/d",
            "pgsql://h/d?table=",
            "pgsql://h/d?table=x;DROP%20TABLE%20y",
            "pgsql://h/d?table=a-b",
            "pgsql://h/d?table=1abc",
            "pgsql://h/d?table=a%22b",
            "pgsql://h/d?table=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "pgsql://h/d?sslmode=verify-ca",
            "pgsql://h/d?sslmode=",
            "pgsql://h/d?socket=/x.sock",
            "pgsql://h/d?lazy_touch_s=-1",
            "pgsql://h/d?lazy_touch_s=1.5",
            "pgsql://h/d?lazy_touch_s=86401",
            "pgsql://h/d?connect_timeout_ms=0",
            "mysql://h/d?socket=relative.sock",
            "mysql://h:3306/d?socket=/x.sock",
            "mysql://u@/d?socket=/x.sock&sslmode=require",
            "mysql://u@/d",
            "mysql://h/d?bogus=1",
        ] {
            assert!(parse(bad).is_err(), "{bad} should fail");
        }
        let e = parse("pgsql://h/d?table=x;y").unwrap_err().to_string();
        assert!(e.contains("table") && e.contains("A-Z a-z 0-9 _"), "{e}");
    }

    #[test]
    fn settings() {
        let mut s = Settings::default();
        s.set("lock_wait_ms", "250").unwrap();
        s.set("lock_failure", "readonly").unwrap();
        s.set("locking", "Off").unwrap();
        assert_eq!(s.lock_wait, Duration::from_millis(250));
        assert_eq!(s.lock_failure, LockFailure::ReadOnly);
        assert!(!s.locking);
        assert!(s.set("lock_wait_ms", "-1").is_err());
        assert!(s.set("lock_ttl_ms", "5").is_err());
        assert!(s.set("nope", "1").is_err());
    }
}

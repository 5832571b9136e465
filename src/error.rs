//! Error types. Every message is written to be shown to a PHP operator after
//! an `rsession: ` prefix, so each says what went wrong and where.

use std::time::Duration;

use crate::store::Holder;

/// A save_path (or handler option) that cannot be used.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ConfigError {
    #[error("save_path {path:?}: {reason}")]
    SavePath { path: String, reason: String },
    #[error("option {name:?}: {reason}")]
    Option { name: String, reason: String },
}

/// A failure inside a store: I/O, the network, or the server's answer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{store} store: {context}: {source}")]
    Io {
        store: &'static str,
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{store} store: {message}")]
    Backend { store: &'static str, message: String },
    #[error("the session lock was lost (its lease expired or it was taken over); nothing was written")]
    LockLost,
    #[error("the session was killed (or destroyed) while this request used it; its changes were not saved")]
    Killed,
    #[error("{store} store: session {id}: {source}")]
    Corrupt {
        store: &'static str,
        id: String,
        #[source]
        source: crate::meta::MetaError,
    },
    #[error("{store} store: session {id}: its stored data cannot be read ({reason}); it is left as it is")]
    CorruptData { store: &'static str, id: String, reason: String },
    #[error("session data of {size} bytes exceeds the store's limit of {limit} bytes; nothing was written")]
    TooLarge { size: usize, limit: usize },
    #[error("the {0} store is not compiled into this build of rsession")]
    Unavailable(&'static str),
}

impl StoreError {
    pub fn corrupt(store: &'static str, id: &crate::store::SessionId, source: crate::meta::MetaError) -> Self {
        StoreError::Corrupt { store, id: crate::engine::short_id(id.as_str()), source }
    }

    pub fn io(store: &'static str, context: impl Into<String>, source: std::io::Error) -> Self {
        StoreError::Io { store, context: context.into(), source }
    }
}

/// What a request-level operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("invalid session id {0}: only A-Z a-z 0-9 ',' '-' are allowed, at most 256 bytes")]
    InvalidId(String),
    #[error("{}", lock_timeout_message(.id, *.waited, .holder.as_ref()))]
    LockTimeout { id: String, waited: Duration, holder: Option<Holder> },
    #[error("no session is open")]
    NotOpen,
    #[error("no session is active: call session_start() first")]
    NoSession,
    #[error("the session is read-only in this request (rsession.read_only or a lock timeout): its metadata cannot change")]
    ReadOnly,
    #[error("{0}")]
    BadArgument(String),
    #[error("internal error: {0}")]
    Panic(String),
    #[error("session {0} was not read (its read failed), so nothing was written: the write would have replaced what another request holds")]
    NotRead(String),
    #[error("called again from inside one of its own calls (an error handler?); refused rather than waiting on itself")]
    Reentered,
}

fn lock_timeout_message(id: &str, waited: Duration, holder: Option<&Holder>) -> String {
    let mut msg = format!(
        "gave up waiting for the lock on session {} after {} ms",
        crate::engine::short_id(id),
        waited.as_millis()
    );
    match holder {
        Some(h) => msg.push_str(&format!("; {}", h.describe())),
        None => msg.push_str("; its holder is unknown"),
    }
    msg
}

//! The one way Rust work reports to PHP, for the native module, the class
//! and the functions alike: run it with every lock it needs held inside,
//! collect what it has to say, let go of every lock, and only then raise.
//!
//! Raising calls into PHP: a user error handler may call `RSession\`
//! functions (which need the same engine), and a fatal error inside it
//! longjmps out without running Rust destructors. Neither may find a lock
//! of ours held.

use std::panic::{AssertUnwindSafe, catch_unwind};

use ext_php_rs::exception::{PhpException, PhpResult};

use super::{notice, warn};
use crate::engine::{Engine, SharedEngine};
use crate::error::EngineError;

/// A finished call: its result and the messages to raise.
#[must_use]
pub(crate) struct Outcome<T> {
    result: Result<T, EngineError>,
    notices: Vec<String>,
    warnings: Vec<String>,
}

/// Runs `f`, turning a panic into an error so none crosses into PHP.
pub(crate) fn guarded<T>(f: impl FnOnce() -> Result<T, EngineError>) -> Result<T, EngineError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".into());
        Err(EngineError::Panic(msg))
    })
}

/// Runs `f` on the open session's engine.
pub(crate) fn run<T>(engine: &SharedEngine, f: impl FnOnce(&mut Engine) -> Result<T, EngineError>) -> Outcome<T> {
    let mut out = Outcome { result: Err(EngineError::NotOpen), notices: Vec::new(), warnings: Vec::new() };
    out.result = guarded(|| {
        // Only this request's own thread uses its engine, so a lock that is
        // taken means we were called back from inside a call of ours: an
        // error, never a wait on ourselves.
        let Some(mut e) = engine.try_lock() else { return Err(EngineError::Reentered) };
        let r = f(&mut e);
        out.notices = e.take_notices();
        out.warnings = e.take_warnings();
        r
    });
    out
}

/// Runs `f` on an engine of its own (registry calls, id checks between
/// close and open), made by `open`.
pub(crate) fn run_fresh<T>(
    open: impl FnOnce() -> Result<Engine, EngineError>,
    f: impl FnOnce(&mut Engine) -> Result<T, EngineError>,
) -> Outcome<T> {
    let mut out = Outcome { result: Err(EngineError::NotOpen), notices: Vec::new(), warnings: Vec::new() };
    out.result = guarded(|| {
        let mut e = open()?;
        let r = f(&mut e);
        out.notices = e.take_notices();
        out.warnings = e.take_warnings();
        r
    });
    out
}

/// A result with nothing to raise but its error.
pub(crate) fn outcome<T>(result: Result<T, EngineError>) -> Outcome<T> {
    Outcome { result, notices: Vec::new(), warnings: Vec::new() }
}

impl<T> Outcome<T> {
    fn raise_messages(&mut self) {
        for n in std::mem::take(&mut self.notices) {
            notice(&n);
        }
        for w in std::mem::take(&mut self.warnings) {
            warn(&w);
        }
    }

    /// Raises the messages, then the error as an E_WARNING: how the save
    /// handler's callbacks report.
    pub(crate) fn or_warn(mut self) -> Option<T> {
        self.raise_messages();
        self.result.map_err(|e| warn(&e.to_string())).ok()
    }

    /// Raises the messages; an error becomes an `RSession\Exception`: how
    /// the functions and the registry methods report.
    pub(crate) fn or_throw(mut self) -> PhpResult<T> {
        self.raise_messages();
        self.result.map_err(exception)
    }

    /// Raises the messages and leaves the error to the caller.
    pub(crate) fn reported(mut self) -> Result<T, EngineError> {
        self.raise_messages();
        self.result
    }
}

pub(crate) fn exception(e: impl std::fmt::Display) -> PhpException {
    PhpException::from_class::<super::handler::RSessionException>(format!("rsession: {e}"))
}

//! An in-process store for the engine's unit tests. Not a stand-in for any
//! real store's tests, and never selectable from a save_path.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::{Holder, LockRequest, LockToken, Locked, Result, Save, SessionId, Store};
use crate::error::StoreError;

#[derive(Default)]
pub struct MemoryStore {
    data: HashMap<SessionId, (Vec<u8>, Instant)>,
    locks: HashMap<SessionId, (LockToken, Holder)>,
}

impl MemoryStore {
    /// Lets a test play another process that takes over a lock.
    pub fn steal_lock(&mut self, id: &SessionId, holder: Holder) {
        self.locks.insert(id.clone(), (LockToken::random(), holder));
    }
}

impl Store for MemoryStore {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn lock_and_read(&mut self, id: &SessionId, req: &LockRequest, ttl: Duration) -> Result<Locked> {
        if let Some((_, h)) = self.locks.get(id) {
            // Single-threaded: nobody can release while we wait.
            std::thread::sleep(req.wait);
            return Ok(Locked::TimedOut { holder: Some(h.clone()) });
        }
        let token = LockToken::random();
        self.locks.insert(id.clone(), (token, req.holder.clone()));
        Ok(Locked::Acquired { token, data: self.read(id, ttl)? })
    }

    fn read(&mut self, id: &SessionId, ttl: Duration) -> Result<Option<Vec<u8>>> {
        match self.data.get(id) {
            Some((_, at)) if at.elapsed() > ttl => {
                self.data.remove(id);
                Ok(None)
            }
            other => Ok(other.map(|(d, _)| d.clone())),
        }
    }

    fn save(&mut self, id: &SessionId, what: Save<'_>, _ttl: Duration, lock: Option<(LockToken, bool)>) -> Result<()> {
        if let Some((token, _)) = lock {
            if self.locks.get(id).map(|(t, _)| *t) != Some(token) {
                return Err(StoreError::LockLost);
            }
        }
        match what {
            Save::Write(d) => {
                self.data.insert(id.clone(), (d.to_vec(), Instant::now()));
            }
            Save::Touch => {
                if let Some(e) = self.data.get_mut(id) {
                    e.1 = Instant::now();
                }
            }
        }
        if let Some((_, true)) = lock {
            self.locks.remove(id);
        }
        Ok(())
    }

    fn unlock(&mut self, id: &SessionId, token: LockToken) -> Result<()> {
        if self.locks.get(id).map(|(t, _)| *t) == Some(token) {
            self.locks.remove(id);
        }
        Ok(())
    }

    fn destroy(&mut self, id: &SessionId) -> Result<bool> {
        Ok(self.data.remove(id).is_some())
    }

    fn exists(&mut self, id: &SessionId) -> Result<bool> {
        Ok(self.data.contains_key(id))
    }

    fn gc(&mut self, max_idle: Duration) -> Result<u64> {
        let before = self.data.len();
        self.data.retain(|_, (_, at)| at.elapsed() <= max_idle);
        Ok((before - self.data.len()) as u64)
    }

    fn lock_holder(&mut self, id: &SessionId) -> Result<Option<Holder>> {
        Ok(self.locks.get(id).map(|(_, h)| h.clone()))
    }
}

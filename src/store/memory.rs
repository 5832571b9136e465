//! An in-process store for the engine's unit tests. Not a stand-in for any
//! real store's tests, and never selectable from a save_path.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use parking_lot::Mutex;

use super::{Holder, Listed, LockRequest, LockToken, Locked, Put, Record, Registry, Result, Save, SessionId, Store, now_secs};
use crate::error::StoreError;

#[derive(Default)]
struct State {
    sessions: HashMap<SessionId, Record>,
    locks: HashMap<SessionId, (LockToken, Holder)>,
    users: HashMap<String, BTreeSet<SessionId>>,
    generation: u64,
}

/// Handles made by `clone` share one store, as two processes share a server.
#[derive(Default, Clone)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
}

impl MemoryStore {
    /// Makes a session look idle for `secs` more seconds.
    pub fn age(&self, id: &SessionId, secs: u64) {
        if let Some(r) = self.state.lock().sessions.get_mut(id) {
            r.meta.last_access -= secs;
        }
    }

    /// Lets a test play another process that takes over a lock.
    pub fn steal_lock(&mut self, id: &SessionId, holder: Holder) {
        self.state.lock().locks.insert(id.clone(), (LockToken::random(), holder));
    }
}

impl State {
    fn live(&mut self, id: &SessionId) -> Option<Record> {
        let dead = self.sessions.get(id).is_some_and(|r| r.meta.generation < self.generation);
        if dead {
            self.remove(id);
        }
        self.sessions.get(id).cloned()
    }

    fn remove(&mut self, id: &SessionId) -> bool {
        let Some(r) = self.sessions.remove(id) else { return false };
        if let Some(u) = r.meta.user {
            self.users.entry(u).or_default().remove(id);
        }
        true
    }
}

impl Store for MemoryStore {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn lock_and_read(&mut self, id: &SessionId, req: &LockRequest) -> Result<Locked> {
        let mut st = self.state.lock();
        if let Some((_, h)) = st.locks.get(id) {
            let holder = Some(h.clone());
            drop(st);
            // Nobody else runs in the engine's tests: waiting cannot help.
            std::thread::sleep(req.wait);
            return Ok(Locked::TimedOut { holder });
        }
        let token = LockToken::random();
        st.locks.insert(id.clone(), (token, req.holder.clone()));
        Ok(Locked::Acquired { token, record: st.live(id) })
    }

    fn read(&mut self, id: &SessionId) -> Result<Option<Record>> {
        Ok(self.state.lock().live(id))
    }

    fn save(&mut self, id: &SessionId, put: &Put<'_>) -> Result<u64> {
        let mut st = self.state.lock();
        if let Some(token) = put.lock.token() {
            if st.locks.get(id).map(|(t, _)| *t) != Some(token) {
                return Err(StoreError::LockLost);
            }
        }
        let current = st.live(id);
        let result = match (&current, put.existed) {
            (None, true) => Err(StoreError::Killed),
            (Some(c), true) if c.meta.incarnation != put.meta.incarnation => Err(StoreError::Killed),
            _ => Ok(()),
        };
        if result.is_ok() {
            match put.what {
                Save::Write(d) => {
                    let mut meta = put.meta.clone();
                    // As the real stores do: stamped at creation, then kept
                    // by the caller.
                    if !put.existed {
                        meta.generation = st.generation;
                    }
                    meta.last_access = now_secs();
                    if let Some(old) = current.and_then(|c| c.meta.user) {
                        st.users.entry(old).or_default().remove(id);
                    }
                    if let Some(u) = &meta.user {
                        st.users.entry(u.clone()).or_default().insert(id.clone());
                    }
                    st.sessions.insert(id.clone(), Record { meta, data: d.to_vec() });
                }
                Save::Touch => {
                    if let Some(r) = st.sessions.get_mut(id) {
                        r.meta.last_access = now_secs();
                    }
                }
            }
        }
        if put.lock.releases() {
            st.locks.remove(id);
        }
        result?;
        Ok(st.sessions.get(id).map_or(put.meta.generation, |r| r.meta.generation))
    }

    fn unlock(&mut self, id: &SessionId, token: LockToken) -> Result<()> {
        let mut st = self.state.lock();
        if st.locks.get(id).map(|(t, _)| *t) == Some(token) {
            st.locks.remove(id);
        }
        Ok(())
    }

    fn destroy(&mut self, id: &SessionId) -> Result<bool> {
        let mut st = self.state.lock();
        Ok(st.live(id).is_some() && st.remove(id))
    }

    fn exists(&mut self, id: &SessionId) -> Result<bool> {
        Ok(self.state.lock().live(id).is_some())
    }

    fn gc(&mut self, default_timeout: u32) -> Result<u64> {
        let mut st = self.state.lock();
        let now = now_secs();
        let expired: Vec<SessionId> =
            st.sessions.iter().filter(|(_, r)| r.meta.expired(now, default_timeout)).map(|(id, _)| id.clone()).collect();
        for id in &expired {
            st.remove(id);
        }
        Ok(expired.len() as u64)
    }

    fn lock_holder(&mut self, id: &SessionId) -> Result<Option<Holder>> {
        Ok(self.state.lock().locks.get(id).map(|(_, h)| h.clone()))
    }

}

impl Registry for MemoryStore {
    fn user_sessions(&mut self, user: &str) -> Result<Vec<Listed>> {
        let mut st = self.state.lock();
        let ids: Vec<SessionId> = st.users.get(user).map(|s| s.iter().cloned().collect()).unwrap_or_default();
        Ok(ids.into_iter().filter_map(|id| st.live(&id).map(|r| Listed { id, meta: r.meta })).collect())
    }

    fn kill_user(&mut self, user: &str, keep: Option<&SessionId>) -> Result<u64> {
        let listed = self.user_sessions(user)?;
        let mut st = self.state.lock();
        Ok(listed.iter().filter(|l| Some(&l.id) != keep).filter(|l| st.remove(&l.id)).count() as u64)
    }

    fn kill_all(&mut self) -> Result<i64> {
        let mut st = self.state.lock();
        st.generation += 1;
        Ok(-1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_contract() {
        let shared = MemoryStore::default();
        super::super::testing::registry_contract(&|| Box::new(shared.clone()));
    }

    #[test]
    fn meta_is_kept() {
        let mut s = MemoryStore::default();
        let m = crate::store::Meta { user: Some("u".into()), ..super::super::testing::meta() };
        let id = super::super::testing::id("a");
        s.save(&id, &super::super::testing::put(Save::Write(b"x"), &m, super::super::testing::TTL, crate::store::LockUse::Unlocked)).unwrap();
        assert_eq!(s.read(&id).unwrap().unwrap().meta.user.as_deref(), Some("u"));
    }
}

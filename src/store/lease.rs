//! Keeps the leases of held locks alive for the network stores.
//!
//! A background thread renews every held lock once per tick (a third of the
//! shortest lease it has seen), so a request that runs long never loses its
//! lock, while a holder that dies stops renewing and its lock expires within
//! the lease. Requests only update a shared map and never wake the thread: a
//! wake-up per request cost more than the store's round trips. A lock taken
//! just after a tick is renewed at the next one, well within its lease.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

struct State {
    /// lock key → (what the store needs to renew it, lease)
    held: HashMap<String, (String, Duration)>,
    tick: Duration,
}

/// Whether stores opened now renew their locks: off only in tests of lost
/// locks (env RSESSION_TEST_NO_RENEW=1 for whole processes), where a holder
/// stops renewing as a hung one would. Read once per store, at open.
pub fn renewal_enabled() -> bool {
    std::env::var_os("RSESSION_TEST_NO_RENEW").is_none()
}

pub struct LeaseKeeper {
    state: Arc<(Mutex<State>, Condvar)>,
}

impl LeaseKeeper {
    /// Starts the thread. `renew(key, context, lease)` extends one lock; it
    /// runs on the thread and keeps its own connections.
    pub fn start(mut renew: impl FnMut(&str, &str, Duration) + Send + 'static) -> LeaseKeeper {
        let state = Arc::new((
            Mutex::new(State { held: HashMap::new(), tick: Duration::from_secs(3600) }),
            Condvar::new(),
        ));
        let shared = state.clone();
        let _ = std::thread::Builder::new().name("rsession-lease".into()).spawn(move || {
            let (lock, wake) = &*shared;
            loop {
                let due: Vec<(String, String, Duration)> = {
                    let mut st = lock.lock();
                    let tick = st.tick;
                    wake.wait_for(&mut st, tick);
                    st.held.iter().map(|(k, (c, ttl))| (k.clone(), c.clone(), *ttl)).collect()
                };
                for (key, context, ttl) in due {
                    renew(&key, &context, ttl);
                }
            }
        });
        LeaseKeeper { state }
    }

    /// Keeps `key` alive with a lease of `ttl` until [`LeaseKeeper::drop_key`].
    pub fn hold(&self, key: String, context: String, ttl: Duration) {
        let (lock, wake) = &*self.state;
        let mut st = lock.lock();
        if ttl / 3 < st.tick {
            st.tick = ttl / 3;
            wake.notify_one(); // rare: a shorter lease than any before
        }
        st.held.insert(key, (context, ttl));
    }

    pub fn drop_key(&self, key: &str) {
        self.state.0.lock().held.remove(key);
    }
}

//! Keeps the leases of held locks alive for the network stores.
//!
//! A background thread renews every held lock once per tick (a third of the
//! shortest lease it has seen), so a request that runs long never loses its
//! lock, while a holder that dies stops renewing and its lock expires within
//! the lease. Requests only update a shared map and never wake the thread: a
//! wake-up per request cost more than the store's round trips. A lock taken
//! just after a tick is renewed at the next one, well within its lease.
//!
//! The thread also retries releases that failed (a failover took the node
//! away), every [`RELEASE_RETRY`]: the process that held the lock may serve
//! no request for a while (an idle php-fpm worker, a CLI script that ended),
//! and the session would stay blocked for the rest of the lease.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::stats::{STATS, bump};

struct State {
    /// lock key → (what the store needs to renew it, lease)
    held: HashMap<String, (String, Duration)>,
    /// lock key → a release to retry (see [`LeaseKeeper::release_later`])
    releasing: HashMap<String, Release>,
    tick: Duration,
}

struct Release {
    context: String,
    until: Instant,
    /// Retried until `until` even once one succeeds.
    lost: bool,
}

/// What the thread asks the store to do, on the store's own connections.
pub enum Job<'a> {
    /// Extend the lock `key` to `ttl`; `context` as given to `hold`.
    Renew { key: &'a str, context: &'a str, ttl: Duration },
    /// Free the lock `key` if it is still the one `context` names.
    Release { key: &'a str, context: &'a str },
}

/// How often a release that failed is tried again.
pub const RELEASE_RETRY: Duration = Duration::from_millis(100);

/// Whether stores opened now renew their locks: off only in tests of lost
/// locks (env RSESSION_TEST_NO_RENEW=1 for whole processes), where a holder
/// stops renewing as a hung one would. Read once per store, at open.
pub fn renewal_enabled() -> bool {
    std::env::var_os("RSESSION_TEST_NO_RENEW").is_none()
}

pub struct LeaseKeeper {
    state: Arc<(Mutex<State>, Condvar)>,
}

/// The renewal interval for leases of `ttl`: a third, so two renewals can
/// fail before the lock runs out.
fn tick_for(ttl: Duration) -> Duration {
    (ttl / 3).max(Duration::from_millis(10))
}

/// How long the thread sleeps when nothing is held.
const IDLE_TICK: Duration = Duration::from_secs(3600);

impl LeaseKeeper {
    /// Starts the thread. `run(job)` renews or releases one lock and says
    /// whether it did; it runs on the thread and keeps its own connections.
    /// A renewal that fails (or panics) is counted in
    /// `stats()['lease_renewal_failures']`; the thread goes on. Fails when
    /// the thread cannot be started: then nothing would renew the lock.
    pub fn start(mut run: impl FnMut(Job<'_>) -> bool + Send + 'static) -> std::io::Result<LeaseKeeper> {
        let state = Arc::new((Mutex::new(State { held: HashMap::new(), releasing: HashMap::new(), tick: IDLE_TICK }), Condvar::new()));
        let shared = state.clone();
        std::thread::Builder::new().name("rsession-lease".into()).spawn(move || {
            let (lock, wake) = &*shared;
            loop {
                let (due, releases): (Vec<(String, String, Duration)>, Vec<(String, String)>) = {
                    let mut st = lock.lock();
                    let tick = st.tick;
                    wake.wait_for(&mut st, tick);
                    let now = Instant::now();
                    st.releasing.retain(|_, r| r.until > now);
                    // The shortest lease held now sets the next tick, so it
                    // grows back once short leases are gone.
                    st.tick = st.held.values().map(|(_, ttl)| tick_for(*ttl)).min().unwrap_or(IDLE_TICK);
                    if !st.releasing.is_empty() {
                        st.tick = st.tick.min(RELEASE_RETRY);
                    }
                    (
                        st.held.iter().map(|(k, (c, ttl))| (k.clone(), c.clone(), *ttl)).collect(),
                        st.releasing.iter().map(|(k, r)| (k.clone(), r.context.clone())).collect(),
                    )
                };
                for (key, context, ttl) in due {
                    let renewed = catch_unwind(AssertUnwindSafe(|| run(Job::Renew { key: &key, context: &context, ttl }))).unwrap_or(false);
                    if !renewed {
                        bump(&STATS.lease_renewal_failures, 1);
                    }
                }
                for (key, context) in releases {
                    let released = catch_unwind(AssertUnwindSafe(|| run(Job::Release { key: &key, context: &context }))).unwrap_or(false);
                    if released {
                        let mut st = lock.lock();
                        // Unless a newer release of the same key came meanwhile.
                        if st.releasing.get(&key).is_some_and(|r| r.context == context && !r.lost) {
                            st.releasing.remove(&key);
                        }
                    }
                }
            }
        })?;
        Ok(LeaseKeeper { state })
    }

    /// The keeper in `slot`, started on first use. When its thread cannot
    /// start, locks are still taken (their lease still frees them), but a
    /// request running longer than the lease may lose its lock: the caller
    /// gets that as a warning, every time it takes one.
    pub fn get_or_start<'a, R>(
        slot: &'a mut Option<LeaseKeeper>,
        warnings: &mut Vec<String>,
        store: &str,
        renew: impl FnOnce() -> R,
    ) -> Option<&'a LeaseKeeper>
    where
        R: FnMut(Job<'_>) -> bool + Send + 'static,
    {
        if slot.is_none() {
            match LeaseKeeper::start(renew()) {
                Ok(k) => *slot = Some(k),
                Err(e) => {
                    warnings.push(format!(
                        "{store} store: cannot start the thread that renews lock leases ({e}): a request running longer than rsession.lock_ttl_ms loses its lock, and then its write"
                    ));
                    return None;
                }
            }
        }
        slot.as_ref()
    }

    /// Keeps `key` alive with a lease of `ttl` until [`LeaseKeeper::drop_key`].
    pub fn hold(&self, key: String, context: String, ttl: Duration) {
        let (lock, wake) = &*self.state;
        let mut st = lock.lock();
        if tick_for(ttl) < st.tick {
            st.tick = tick_for(ttl);
            wake.notify_one(); // only when a lease is shorter than the tick
        }
        st.held.insert(key, (context, ttl));
    }

    pub fn drop_key(&self, key: &str) {
        self.state.0.lock().held.remove(key);
    }

    /// Retries releasing `key` (the lock `context` names) every
    /// [`RELEASE_RETRY`] until one succeeds, or until `until` (`lost`: until
    /// `until` in any case).
    pub fn release_later(&self, key: String, context: String, until: Instant, lost: bool) {
        let (lock, wake) = &*self.state;
        let mut st = lock.lock();
        st.releasing.insert(key, Release { context, until, lost });
        if st.tick > RELEASE_RETRY {
            st.tick = RELEASE_RETRY;
            wake.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn renews_each_tick_survives_a_panicking_renewer_and_counts_failures() {
        let calls = Arc::new(AtomicU32::new(0));
        let seen = calls.clone();
        let keeper = LeaseKeeper::start(move |job| {
            let Job::Renew { key, .. } = job else { return true };
            let n = seen.fetch_add(1, Ordering::SeqCst);
            if key == "boom" && n % 2 == 0 {
                panic!("renewer broke");
            }
            key != "fail"
        })
        .unwrap();
        let failures = STATS.lease_renewal_failures.load(Ordering::Relaxed);
        keeper.hold("boom".into(), String::new(), Duration::from_millis(90));
        keeper.hold("fail".into(), String::new(), Duration::from_millis(90));
        std::thread::sleep(Duration::from_millis(400));
        let n = calls.load(Ordering::SeqCst);
        assert!(n >= 6, "only {n} renewals in 400 ms at a 30 ms tick");
        assert!(STATS.lease_renewal_failures.load(Ordering::Relaxed) >= failures + 3, "failures are counted");
        // The tick grows back once the short leases are gone.
        keeper.drop_key("boom");
        keeper.drop_key("fail");
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(keeper.state.0.lock().tick, IDLE_TICK);
    }

    #[test]
    fn failed_releases_are_retried_until_one_succeeds_or_their_time_is_up() {
        let tries: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
        let seen = tries.clone();
        let keeper = LeaseKeeper::start(move |job| {
            let Job::Release { key, context } = job else { return true };
            assert_eq!(context, "token");
            let mut t = seen.lock();
            let n = t.entry(key.to_string()).or_default();
            *n += 1;
            // "flaky" succeeds at its third try, "lost" every time, "down" never.
            (key == "flaky" && *n >= 3) || key == "lost"
        })
        .unwrap();
        let soon = Instant::now() + Duration::from_millis(600);
        keeper.release_later("flaky".into(), "token".into(), Instant::now() + Duration::from_secs(30), false);
        keeper.release_later("down".into(), "token".into(), soon, false);
        keeper.release_later("lost".into(), "token".into(), soon, true);
        std::thread::sleep(Duration::from_millis(1000));
        let t = tries.lock().clone();
        assert_eq!(t.get("flaky"), Some(&3), "retried until it succeeded, then no more: {t:?}");
        for key in ["down", "lost"] {
            let n = t.get(key).copied().unwrap_or(0);
            assert!((3..=8).contains(&n), "{key}: {n} tries within its 600 ms at a 100 ms retry");
        }
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(*tries.lock(), t, "nothing is tried past its time");
        assert!(keeper.state.0.lock().releasing.is_empty());
    }
}

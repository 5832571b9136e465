//! This process's counters, for `RSession\stats()`.

use std::sync::atomic::{AtomicU64, Ordering};

pub struct Stats {
    pub reads: AtomicU64,
    pub writes: AtomicU64,
    pub writes_skipped: AtomicU64,
    pub lock_acquired: AtomicU64,
    /// Kept in µs so that many short waits add up; shown in ms.
    pub lock_wait_us: AtomicU64,
    pub lock_timeouts: AtomicU64,
    pub store_errors: AtomicU64,
    /// Lease renewals of held locks that failed (the store did not answer,
    /// or the renewer panicked): each one risks the lock running out.
    pub lease_renewal_failures: AtomicU64,
    /// Write-through: reads the cache answered, reads it missed (the store
    /// answered and the cache was refilled), and saves that left the store
    /// alone (nothing changed and its lazy window had not passed).
    pub cache_hits: AtomicU64,
    pub cache_misses: AtomicU64,
    pub store_writes_skipped: AtomicU64,
    /// Waits for a store's reply that spun before sleeping, how many of
    /// them found the reply within the spin (`rsession.spin_us`), and how
    /// many stopped early because another task was waiting for the core.
    pub reply_spins: AtomicU64,
    pub reply_spin_hits: AtomicU64,
    pub reply_spins_busy: AtomicU64,
}

pub static STATS: Stats = Stats {
    reads: AtomicU64::new(0),
    writes: AtomicU64::new(0),
    writes_skipped: AtomicU64::new(0),
    lock_acquired: AtomicU64::new(0),
    lock_wait_us: AtomicU64::new(0),
    lock_timeouts: AtomicU64::new(0),
    store_errors: AtomicU64::new(0),
    lease_renewal_failures: AtomicU64::new(0),
    cache_hits: AtomicU64::new(0),
    cache_misses: AtomicU64::new(0),
    store_writes_skipped: AtomicU64::new(0),
    reply_spins: AtomicU64::new(0),
    reply_spin_hits: AtomicU64::new(0),
    reply_spins_busy: AtomicU64::new(0),
};

impl Stats {
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        vec![
            ("reads", get(&self.reads)),
            ("writes", get(&self.writes)),
            ("writes_skipped", get(&self.writes_skipped)),
            ("lock_acquired", get(&self.lock_acquired)),
            ("lock_wait_ms", get(&self.lock_wait_us) / 1000),
            ("lock_timeouts", get(&self.lock_timeouts)),
            ("store_errors", get(&self.store_errors)),
            ("lease_renewal_failures", get(&self.lease_renewal_failures)),
            ("cache_hits", get(&self.cache_hits)),
            ("cache_misses", get(&self.cache_misses)),
            ("store_writes_skipped", get(&self.store_writes_skipped)),
            ("reply_spins", get(&self.reply_spins)),
            ("reply_spin_hits", get(&self.reply_spin_hits)),
            ("reply_spins_busy", get(&self.reply_spins_busy)),
        ]
    }
}

pub fn bump(c: &AtomicU64, by: u64) {
    c.fetch_add(by, Ordering::Relaxed);
}

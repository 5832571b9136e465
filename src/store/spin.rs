//! Waiting for a store's reply: spin briefly, then sleep.
//!
//! A reply from a store on the same host (or a near one) comes back in tens
//! of microseconds, less than it costs to put the process to sleep and wake
//! it again: on virtual machines an idle vCPU halts and its wake-up alone
//! can cost more than the round trip. So before a blocking read we poll the
//! socket for up to the spin limit (`rsession.spin_us`, default
//! [`DEFAULT_SPIN`]; 0 turns spinning off), yielding the CPU between polls
//! to anything else runnable (the store itself, on a one-core host). A store that is
//! farther away than that makes every spin a miss; after a miss we skip
//! spinning for a growing number of waits (up to [`MAX_SKIP`]), so a remote
//! store costs at most one wasted spin per that many round trips.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::stats::{STATS, bump};

/// Longest spin before sleeping unless `rsession.spin_us` says otherwise:
/// several local round trips, far less than a sleep and wake-up costs on a
/// busy or virtual host.
pub const DEFAULT_SPIN: Duration = Duration::from_micros(100);
/// The spin limit in microseconds, set from the request's settings; one per
/// process, since every connection of a process serves the same requests.
static SPIN_US: AtomicU64 = AtomicU64::new(DEFAULT_SPIN.as_micros() as u64);

/// Sets the longest spin for the waits that follow (zero: never spin).
pub fn set_limit(limit: Duration) {
    SPIN_US.store(limit.as_micros() as u64, Ordering::Relaxed);
}
/// Most waits skipped after a run of misses.
pub const MAX_SKIP: u32 = 256;

#[derive(Debug, Default)]
pub struct Spinner {
    /// Waits left that go straight to sleep.
    skip: u32,
    /// Misses in a row; each doubles the next skip.
    misses: u32,
}

impl Spinner {
    /// Spins until `fd` is readable or the spin limit has passed. The caller
    /// then reads as it would have anyway; this only decides whether that
    /// read finds data waiting or has to sleep for it.
    pub fn wait_readable(&mut self, fd: RawFd) {
        let limit = Duration::from_micros(SPIN_US.load(Ordering::Relaxed));
        if limit.is_zero() {
            return;
        }
        if self.skip > 0 {
            self.skip -= 1;
            return;
        }
        bump(&STATS.reply_spins, 1);
        let start = Instant::now();
        loop {
            if readable(fd) {
                bump(&STATS.reply_spin_hits, 1);
                self.misses = 0;
                return;
            }
            if start.elapsed() >= limit {
                break;
            }
            // SAFETY: no arguments; gives the CPU to another runnable task.
            unsafe { libc::sched_yield() };
        }
        self.misses = (self.misses + 1).min(9);
        self.skip = (1u32 << (self.misses - 1)).min(MAX_SKIP);
    }
}

/// Whether `fd` has data (or an error or hang-up) to read now.
fn readable(fd: RawFd) -> bool {
    let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd, zero timeout: never blocks.
    unsafe { libc::poll(&mut p, 1, 0) == 1 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn misses_back_off_and_a_hit_resets() {
        let (a, mut b) = UnixStream::pair().unwrap();
        let mut s = Spinner::default();
        s.wait_readable(a.as_raw_fd());
        assert_eq!((s.misses, s.skip), (1, 1));
        s.wait_readable(a.as_raw_fd()); // skipped
        assert_eq!(s.skip, 0);
        s.wait_readable(a.as_raw_fd());
        assert_eq!((s.misses, s.skip), (2, 2));
        for _ in 0..2 {
            s.wait_readable(a.as_raw_fd());
        }
        for _ in 0..20 {
            s.wait_readable(a.as_raw_fd());
            while s.skip > 0 {
                s.wait_readable(a.as_raw_fd());
            }
        }
        assert_eq!(s.misses, 9);
        s.wait_readable(a.as_raw_fd());
        assert_eq!(s.skip, MAX_SKIP);
        while s.skip > 0 {
            s.wait_readable(a.as_raw_fd());
        }
        b.write_all(b"x").unwrap();
        s.wait_readable(a.as_raw_fd());
        assert_eq!((s.misses, s.skip), (0, 0), "data waiting is a hit");
    }
}

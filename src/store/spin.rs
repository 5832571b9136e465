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
//!
//! A spin also stops, and counts as a miss, as soon as one of its yields
//! lets another task run: the machine then has more runnable tasks than
//! cores (php-fpm with more workers than cores, under load), and a
//! spinning worker only takes CPU from the others, which would have used
//! it; sleeping costs nothing there, while a yield that hands the core to
//! another task can keep this one off it for a whole time slice. The kernel counts such a yield as an
//! involuntary context switch of the thread, so one `getrusage()` per
//! yield tells it. A spin that never yields to anyone is one on a core
//! that would be idle otherwise.

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
        let switches = involuntary_switches();
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
            if involuntary_switches() != switches {
                // Someone else was waiting for this core.
                bump(&STATS.reply_spins_busy, 1);
                break;
            }
        }
        self.misses = (self.misses + 1).min(9);
        self.skip = (1u32 << (self.misses - 1)).min(MAX_SKIP);
    }
}

/// This thread's involuntary context switches so far: a `sched_yield()`
/// that let another task run adds one; one that found nobody does not.
fn involuntary_switches() -> i64 {
    let mut u = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: a valid out pointer; RUSAGE_THREAD is Linux's, as is the
    // whole of this module's use of the scheduler.
    if unsafe { libc::getrusage(libc::RUSAGE_THREAD, u.as_mut_ptr()) } != 0 {
        return 0;
    }
    // SAFETY: getrusage filled it.
    unsafe { u.assume_init() }.ru_nivcsw
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

    /// Pins the calling thread to one CPU.
    fn pin(cpu: usize) {
        // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET within it.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            assert_eq!(libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set), 0);
        }
    }

    /// Another task runnable on the spinning thread's core: the spin gives
    /// up at its first yield, and backs off as after a miss.
    #[test]
    fn a_spin_that_yields_to_another_task_stops_and_backs_off() {
        let (a, _b) = UnixStream::pair().unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let busy = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                pin(0);
                while !stop.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            })
        };
        pin(0);
        std::thread::sleep(Duration::from_millis(20));
        let mut s = Spinner::default();
        let busy_before = STATS.reply_spins_busy.load(Ordering::Relaxed);
        s.wait_readable(a.as_raw_fd());
        assert!(STATS.reply_spins_busy.load(Ordering::Relaxed) > busy_before, "the yield ran the busy thread");
        assert_eq!((s.misses, s.skip), (1, 1), "backs off as after a miss");
        stop.store(true, Ordering::Relaxed);
        busy.join().unwrap();
    }
}

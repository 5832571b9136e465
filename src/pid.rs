//! This process's id, cached. The engine and the SQL connections ask for it
//! on every call to notice that they run in a child after pcntl_fork();
//! glibc no longer caches getpid(), so each ask was a system call (14 per
//! Redis request). A fork handler clears the cache in the child.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Once;

static PID: AtomicU32 = AtomicU32::new(0);
static CLEAR_AFTER_FORK: Once = Once::new();

extern "C" fn clear_in_child() {
    PID.store(0, Ordering::Relaxed);
}

/// The id of the calling process (std::process::id(), without the syscall
/// after the first call).
pub fn current() -> u32 {
    CLEAR_AFTER_FORK.call_once(|| {
        // SAFETY: registers a handler that only stores to an atomic, which
        // is async-signal-safe, as a child-side fork handler must be.
        let rc = unsafe { libc::pthread_atfork(None, None, Some(clear_in_child)) };
        if rc != 0 {
            // Without the handler the cache could outlive a fork: never fill it.
            PID.store(u32::MAX, Ordering::Relaxed);
        }
    });
    match PID.load(Ordering::Relaxed) {
        0 => {
            let pid = std::process::id();
            PID.store(pid, Ordering::Relaxed);
            pid
        }
        u32::MAX => std::process::id(),
        pid => pid,
    }
}

#[cfg(test)]
mod tests {
    use super::current;

    #[test]
    fn the_cached_id_is_the_process_id_and_a_forked_child_sees_its_own() {
        assert_eq!(current(), std::process::id());
        // SAFETY: the child only calls current() and getpid, then _exit()s.
        let child = unsafe { libc::fork() };
        assert!(child >= 0, "fork failed");
        if child == 0 {
            let ok = current() == std::process::id() && current() != 0;
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        let mut status = 0;
        // SAFETY: waits for the child forked above.
        unsafe { libc::waitpid(child, &mut status, 0) };
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "the child saw its parent's id");
        assert_eq!(current(), std::process::id());
    }
}

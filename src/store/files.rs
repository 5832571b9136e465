//! The files store: one file per session in one directory.
//!
//! - `sess_<id>` holds the data. It is replaced atomically (write a temporary
//!   file, then rename), so a crash mid-write never leaves a torn session.
//!   Its mtime is the last access, as with PHP's `files` handler.
//! - `sess_<id>.lock` is the lock: `flock(LOCK_EX)` on it, with the holder
//!   written inside. The kernel frees it the moment its holder dies. It is a
//!   separate file because renaming over the data file would give newcomers
//!   a fresh, unlocked inode. It stays between requests (creating and
//!   unlinking it each time doubled the cost of a request); gc removes lock
//!   files idle longer than the sessions, taking their lock first, and whoever
//!   wins a lock on such an unlinked inode notices and opens the file anew.
//!
//! Waiting: a contended lock is awaited by a blocking `flock` on a helper
//! thread, so the handoff happens the instant the holder releases (no
//! polling); the request gives up when `lock_wait` runs out, and the helper
//! then drops the lock as soon as it gets it.

use std::collections::HashMap;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use super::{Holder, LockRequest, LockToken, Locked, Result, Save, SessionId, Store};
use crate::error::StoreError;

const NAME: &str = "files";
const DATA_PREFIX: &str = "sess_";
const LOCK_SUFFIX: &str = ".lock";
const TMP_PREFIX: &str = ".tmp_";
/// Temporary files older than this are leftovers of a crash; gc removes them.
const TMP_MAX_AGE: Duration = Duration::from_secs(3600);

pub struct FilesStore {
    dir: PathBuf,
    /// Locks this process holds: the token handed out and the locked file.
    held: HashMap<SessionId, (LockToken, File)>,
}

fn err(context: impl Into<String>, e: io::Error) -> StoreError {
    StoreError::io(NAME, context, e)
}

impl FilesStore {
    pub fn open(dir: &Path) -> Result<FilesStore> {
        match fs::metadata(dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(err(
                    format!("save path {}", dir.display()),
                    io::Error::new(io::ErrorKind::NotADirectory, "exists but is not a directory"),
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| err(format!("cannot create save directory {}", dir.display()), e))?,
            Err(e) => return Err(err(format!("save path {}", dir.display()), e)),
        }
        Ok(FilesStore { dir: dir.to_path_buf(), held: HashMap::new() })
    }

    fn data_path(&self, id: &SessionId) -> PathBuf {
        self.dir.join(format!("{DATA_PREFIX}{id}"))
    }

    fn lock_path(&self, id: &SessionId) -> PathBuf {
        self.dir.join(format!("{DATA_PREFIX}{id}{LOCK_SUFFIX}"))
    }

    fn open_lock_file(&self, path: &Path) -> Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| err(format!("cannot open lock file {}", path.display()), e))
    }

    /// Takes the lock file of `id`, waiting until `deadline`. Returns the
    /// locked file, or None when the wait ran out.
    fn acquire(&self, id: &SessionId, deadline: Instant) -> Result<Option<File>> {
        let path = self.lock_path(id);
        loop {
            let file = self.open_lock_file(&path)?;
            let file = match flock(&file, libc::LOCK_EX | libc::LOCK_NB) {
                Ok(()) => file,
                Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => match wait_for_lock(file, deadline) {
                    Some(f) => f?,
                    None => return Ok(None),
                },
                Err(e) => return Err(err(format!("flock {}", path.display()), e)),
            };
            // The previous holder may have unlinked the file we waited on.
            if same_file(&file, &path) {
                return Ok(Some(file));
            }
        }
    }

    fn read_data(&self, id: &SessionId, ttl: Duration) -> Result<Option<Vec<u8>>> {
        let path = self.data_path(id);
        let mut f = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(err(format!("cannot open {}", path.display()), e)),
        };
        let meta = f.metadata().map_err(|e| err(format!("stat {}", path.display()), e))?;
        if idle_longer_than(&meta, ttl) {
            drop(f);
            remove_if_exists(&path).map_err(|e| err(format!("cannot remove expired {}", path.display()), e))?;
            return Ok(None);
        }
        let mut data = Vec::with_capacity(meta.len() as usize);
        f.read_to_end(&mut data).map_err(|e| err(format!("cannot read {}", path.display()), e))?;
        Ok(Some(data))
    }

    fn write_data(&self, id: &SessionId, data: &[u8]) -> Result<()> {
        let path = self.data_path(id);
        let tmp = self.dir.join(format!("{TMP_PREFIX}{id}_{:016x}", LockToken::random().0 as u64));
        let result = (|| {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&tmp)?;
            f.write_all(data)?;
            drop(f);
            fs::rename(&tmp, &path)
        })();
        result.map_err(|e| {
            let _ = fs::remove_file(&tmp);
            err(format!("cannot write {} (the previous data is kept)", path.display()), e)
        })
    }

    fn touch_data(&self, id: &SessionId) -> Result<()> {
        let path = self.data_path(id);
        let f = match File::options().write(true).custom_flags(libc::O_NOFOLLOW).open(&path) {
            Ok(f) => f,
            // Nothing to refresh; the engine writes when there was no data.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(err(format!("cannot open {}", path.display()), e)),
        };
        f.set_modified(SystemTime::now()).map_err(|e| err(format!("cannot touch {}", path.display()), e))
    }

    /// Releases a held lock: closing the file frees the flock.
    fn release(&mut self, id: &SessionId) {
        self.held.remove(id);
    }
}

impl Store for FilesStore {
    fn name(&self) -> &'static str {
        NAME
    }

    fn lock_and_read(&mut self, id: &SessionId, req: &LockRequest, ttl: Duration) -> Result<Locked> {
        if self.held.contains_key(id) {
            // Taken again by the same process (e.g. session_reset()): hand
            // out a new token, the flock is already ours.
            self.release(id);
        }
        let deadline = Instant::now() + req.wait;
        let Some(file) = self.acquire(id, deadline)? else {
            return Ok(Locked::TimedOut { holder: self.lock_holder(id)? });
        };
        // Record who we are for lock_info() and other waiters' warnings:
        // overwrite, then cut, so a reader never sees an empty file.
        let holder = serde_json::to_vec(&req.holder).unwrap_or_default();
        let _ = file.write_all_at(&holder, 0).and_then(|_| file.set_len(holder.len() as u64));
        let token = LockToken::random();
        self.held.insert(id.clone(), (token, file));
        match self.read_data(id, ttl) {
            Ok(data) => Ok(Locked::Acquired { token, data }),
            Err(e) => {
                self.release(id);
                Err(e)
            }
        }
    }

    fn read(&mut self, id: &SessionId, ttl: Duration) -> Result<Option<Vec<u8>>> {
        self.read_data(id, ttl)
    }

    fn save(&mut self, id: &SessionId, what: Save<'_>, _ttl: Duration, lock: Option<(LockToken, bool)>) -> Result<()> {
        if let Some((token, _)) = lock {
            if self.held.get(id).map(|(t, _)| *t) != Some(token) {
                return Err(StoreError::LockLost);
            }
        }
        let result = match what {
            Save::Write(data) => self.write_data(id, data),
            Save::Touch => self.touch_data(id),
        };
        if let Some((_, true)) = lock {
            self.release(id);
        }
        result
    }

    fn unlock(&mut self, id: &SessionId, token: LockToken) -> Result<()> {
        if self.held.get(id).map(|(t, _)| *t) == Some(token) {
            self.release(id);
        }
        Ok(())
    }

    fn destroy(&mut self, id: &SessionId) -> Result<bool> {
        let path = self.data_path(id);
        remove_if_exists(&path).map_err(|e| err(format!("cannot remove {}", path.display()), e))
    }

    fn exists(&mut self, id: &SessionId) -> Result<bool> {
        let path = self.data_path(id);
        match fs::symlink_metadata(&path) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(err(format!("stat {}", path.display()), e)),
        }
    }

    fn gc(&mut self, max_idle: Duration) -> Result<u64> {
        let entries = fs::read_dir(&self.dir).map_err(|e| err(format!("cannot list {}", self.dir.display()), e))?;
        let mut removed = 0;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Ok(meta) = entry.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            if name.starts_with(TMP_PREFIX) {
                if idle_longer_than(&meta, TMP_MAX_AGE) {
                    let _ = fs::remove_file(entry.path());
                }
            } else if let Some(id) = name.strip_prefix(DATA_PREFIX) {
                if let Some(id) = id.strip_suffix(LOCK_SUFFIX) {
                    if idle_longer_than(&meta, max_idle) {
                        self.remove_stale_lock(id);
                    }
                } else if idle_longer_than(&meta, max_idle) && remove_if_exists(&entry.path()).unwrap_or(false) {
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }

    fn lock_holder(&mut self, id: &SessionId) -> Result<Option<Holder>> {
        let path = self.lock_path(id);
        let mut file = match File::options().read(true).custom_flags(libc::O_NOFOLLOW).open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(err(format!("cannot open {}", path.display()), e)),
        };
        // A shared lock succeeds only when nobody holds the exclusive one.
        if flock(&file, libc::LOCK_SH | libc::LOCK_NB).is_ok() {
            return Ok(None);
        }
        let mut text = Vec::new();
        let _ = file.read_to_end(&mut text);
        Ok(Some(serde_json::from_slice(&text).unwrap_or(Holder {
            host: "?".into(),
            pid: 0,
            uri: "?".into(),
            since_ms: 0,
        })))
    }
}

impl FilesStore {
    /// Removes an idle lock file. Only a file we can lock ourselves is
    /// removed, and it is unlinked while locked, so nobody holds it then.
    fn remove_stale_lock(&self, id: &str) {
        let Some(id) = SessionId::parse(id.as_bytes()) else { return };
        if self.held.contains_key(&id) {
            return;
        }
        let path = self.lock_path(&id);
        let Ok(file) = File::options().read(true).custom_flags(libc::O_NOFOLLOW).open(&path) else { return };
        if flock(&file, libc::LOCK_EX | libc::LOCK_NB).is_ok() && same_file(&file, &path) {
            let _ = fs::remove_file(&path);
        }
    }
}

fn flock(file: &File, op: libc::c_int) -> io::Result<()> {
    loop {
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), op) } == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Blocks on the lock in a helper thread until it is ours or `deadline`
/// passes (None). A helper that wins after the deadline drops the file,
/// which frees the lock at once.
fn wait_for_lock(file: File, deadline: Instant) -> Option<Result<File>> {
    let remaining = deadline.saturating_duration_since(Instant::now());
    if remaining.is_zero() {
        return None;
    }
    let (tx, rx) = mpsc::sync_channel(1);
    let spawned = std::thread::Builder::new().name("rsession-flock".into()).spawn(move || {
        let result = flock(&file, libc::LOCK_EX).map(|()| file);
        let _ = tx.send(result);
    });
    if let Err(e) = spawned {
        return Some(Err(err("cannot start the lock waiter thread", e)));
    }
    match rx.recv_timeout(remaining) {
        Ok(result) => Some(result.map_err(|e| err("flock", e))),
        Err(_) => None,
    }
}

/// Whether the open file is still the one at `path`.
fn same_file(file: &File, path: &Path) -> bool {
    match (file.metadata(), fs::symlink_metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

fn idle_longer_than(meta: &fs::Metadata, limit: Duration) -> bool {
    meta.modified()
        .ok()
        .and_then(|m| SystemTime::now().duration_since(m).ok())
        .is_some_and(|idle| idle > limit)
}

fn remove_if_exists(path: &Path) -> io::Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{TTL, id, req};




    #[test]
    fn round_trip_binary_and_atomic() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = FilesStore::open(&dir.path().join("new")).unwrap();
        let mode = fs::metadata(dir.path().join("new")).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let a = id("abc");
        let Locked::Acquired { token, data: None } = s.lock_and_read(&a, &req(0, 10_000), TTL).unwrap() else { panic!() };
        s.save(&a, Save::Write(b"x\0y"), TTL, Some((token, true))).unwrap();
        assert_eq!(s.read(&a, TTL).unwrap().as_deref(), Some(&b"x\0y"[..]));
        let mode = fs::metadata(s.data_path(&a)).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // Released: no temp files left; the lock file stays, unlocked.
        let mut names: Vec<_> = fs::read_dir(&s.dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        assert_eq!(names, vec![std::ffi::OsString::from("sess_abc"), "sess_abc.lock".into()]);
        assert!(s.lock_holder(&a).unwrap().is_none());
    }

    #[test]
    fn second_store_waits_and_times_out_naming_holder() {
        let dir = tempfile::tempdir().unwrap();
        let mut s1 = FilesStore::open(dir.path()).unwrap();
        let mut s2 = FilesStore::open(dir.path()).unwrap();
        let a = id("abc");
        let Locked::Acquired { token, .. } = s1.lock_and_read(&a, &req(0, 10_000), TTL).unwrap() else { panic!() };
        let t = Instant::now();
        let Locked::TimedOut { holder: Some(h) } = s2.lock_and_read(&a, &req(100, 10_000), TTL).unwrap() else { panic!() };
        assert!(t.elapsed() >= Duration::from_millis(100));
        assert_eq!(h.pid, 7);
        assert!(s2.lock_holder(&a).unwrap().is_some());
        s1.unlock(&a, token).unwrap();
        assert!(s2.lock_holder(&a).unwrap().is_none());
        assert!(matches!(s2.lock_and_read(&a, &req(0, 10_000), TTL).unwrap(), Locked::Acquired { .. }));
    }

    #[test]
    fn waiter_gets_lock_when_holder_releases() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        let mut s1 = FilesStore::open(&path).unwrap();
        let a = id("abc");
        let Locked::Acquired { token, .. } = s1.lock_and_read(&a, &req(0, 10_000), TTL).unwrap() else { panic!() };
        let waiter = std::thread::spawn(move || {
            let mut s2 = FilesStore::open(&path).unwrap();
            let a = id("abc");
            match s2.lock_and_read(&a, &req(5000, 10_000), TTL).unwrap() {
                Locked::Acquired { data, .. } => data,
                Locked::TimedOut { .. } => panic!("timed out"),
            }
        });
        std::thread::sleep(Duration::from_millis(50));
        s1.save(&a, Save::Write(b"first"), TTL, Some((token, true))).unwrap();
        assert_eq!(waiter.join().unwrap().as_deref(), Some(&b"first"[..]));
    }

    #[test]
    fn wrong_token_is_refused_and_data_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = FilesStore::open(dir.path()).unwrap();
        let a = id("abc");
        s.save(&a, Save::Write(b"keep"), TTL, None).unwrap();
        let Locked::Acquired { token, .. } = s.lock_and_read(&a, &req(0, 10_000), TTL).unwrap() else { panic!() };
        let e = s.save(&a, Save::Write(b"lost"), TTL, Some((LockToken(token.0 ^ 1), true)));
        assert!(matches!(e, Err(StoreError::LockLost)));
        assert_eq!(s.read(&a, TTL).unwrap().as_deref(), Some(&b"keep"[..]));
    }

    #[test]
    fn gc_and_idle_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = FilesStore::open(dir.path()).unwrap();
        let (old, new) = (id("old"), id("new"));
        s.save(&old, Save::Write(b"1"), TTL, None).unwrap();
        s.save(&new, Save::Write(b"2"), TTL, None).unwrap();
        let past = SystemTime::now() - Duration::from_secs(100);
        File::options().write(true).open(s.data_path(&old)).unwrap().set_modified(past).unwrap();
        // Read with a long idle timeout: this read must not expire it yet.
        let long = Duration::from_secs(1000);
        let Locked::Acquired { token, .. } = s.lock_and_read(&old, &req(0, 10_000), long).unwrap() else { panic!() };
        s.unlock(&old, token).unwrap();
        File::options().write(true).open(s.lock_path(&old)).unwrap().set_modified(past).unwrap();
        File::options().write(true).open(s.data_path(&old)).unwrap().set_modified(past).unwrap();
        assert_eq!(s.gc(Duration::from_secs(50)).unwrap(), 1);
        assert!(!s.exists(&old).unwrap());
        assert!(!s.lock_path(&old).exists(), "an idle, unheld lock file is removed");
        assert!(s.exists(&new).unwrap());
        File::options().write(true).open(s.data_path(&new)).unwrap().set_modified(past).unwrap();
        assert_eq!(s.read(&new, Duration::from_secs(50)).unwrap(), None);
        assert!(!s.exists(&new).unwrap());
    }
}

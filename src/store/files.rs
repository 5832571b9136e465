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
//! - Each session file is an envelope: metadata, then the data (see
//!   `meta::envelope`). A file without one (written by PHP's `files`) reads
//!   as data without metadata.
//! - `users/<md5 of user>/<id>`: the per-user index, one empty file per
//!   session, so listing a user's sessions reads only that directory.
//!   Entries whose session is gone are dropped when listed and by gc.
//! - `.generation`: `kill_all_sessions()` increments it; sessions created
//!   under an older generation read as missing and are removed on sight.
//! - A write over a session read earlier swaps the new file in with
//!   `renameat2(RENAME_EXCHANGE)`, which fails if the session was removed
//!   meanwhile (a kill): nothing is recreated.
//!
//! Waiting: a contended lock is awaited by a blocking `flock` on a helper
//! thread, so the handoff happens the instant the holder releases (no
//! polling); the request gives up when `lock_wait` runs out, and the helper
//! then drops the lock as soon as it gets it. Helpers left waiting so are
//! capped per process; past the cap, waits poll.

use std::collections::HashMap;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use md5::{Digest, Md5};

use super::{
    Backoff, Holder, Listed, LockRequest, LockToken, Locked, Meta, Put, Record, Registry, Result, Save, SessionId, Store,
    UserChange, now_secs,
};
use crate::error::StoreError;
use crate::meta::envelope;

const NAME: &str = "files";
const DATA_PREFIX: &str = "sess_";
const LOCK_SUFFIX: &str = ".lock";
const TMP_PREFIX: &str = ".tmp_";
const USERS_DIR: &str = "users";
const GENERATION_FILE: &str = ".generation";
/// Enough of a session file to hold its envelope header in most cases.
const HEADER_PROBE: usize = 512;
/// Longest wait for the flock around a write-through's fenced write (the
/// holder of the store's own lock holds it for a whole request).
const FENCE_LOCK_WAIT: Duration = Duration::from_secs(10);
/// Temporary files older than this are leftovers of a crash; gc removes them.
const TMP_MAX_AGE: Duration = Duration::from_secs(3600);

pub struct FilesStore {
    dir: PathBuf,
    /// Locks this process holds: the token handed out and the locked file.
    held: HashMap<SessionId, (LockToken, File)>,
    /// The generation file's (inode, mtime ns) and value, read again only
    /// when the file changes (one stat per request instead of a read).
    generation: Option<((u64, i64), u64)>,
}

fn err(context: impl Into<String>, e: io::Error) -> StoreError {
    StoreError::io(NAME, context, e)
}

impl FilesStore {
    /// Opens the store in `dir`, creating it (0700) if missing. A directory
    /// that exists must be trusted: owned by this process's user and not
    /// writable by group or others, or anyone who can write there could
    /// plant a session file that strict mode would then adopt (the default
    /// `sys_get_temp_dir()/rsession` is a predictable name in a world-writable
    /// place).
    pub fn open(dir: &Path) -> Result<FilesStore> {
        match fs::symlink_metadata(dir) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| err(format!("cannot create save directory {}", dir.display()), e))?,
            Err(e) => return Err(err(format!("save path {}", dir.display()), e)),
        }
        check_trusted(dir)?;
        Ok(FilesStore { dir: dir.to_path_buf(), held: HashMap::new(), generation: None })
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

    /// The site-wide generation (0 before any kill_all).
    fn current_generation(&mut self) -> Result<u64> {
        let path = self.dir.join(GENERATION_FILE);
        let stamp = match fs::metadata(&path) {
            Ok(m) => (m.ino(), m.mtime() * 1_000_000_000 + m.mtime_nsec()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(err(format!("stat {}", path.display()), e)),
        };
        if let Some((seen, value)) = self.generation {
            if seen == stamp {
                return Ok(value);
            }
        }
        let text = fs::read_to_string(&path).map_err(|e| err(format!("cannot read {}", path.display()), e))?;
        let value = text.trim().parse().map_err(|_| {
            err(format!("{} holds {:?}, not a number", path.display(), text.trim()), io::ErrorKind::InvalidData.into())
        })?;
        self.generation = Some((stamp, value));
        Ok(value)
    }

    /// Reads a session: its envelope, with the file's mtime as last access.
    /// A session of an older generation is removed and reads as missing.
    fn read_record(&mut self, id: &SessionId) -> Result<Option<Record>> {
        let path = self.data_path(id);
        let mut f = match open_no_follow(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(err(format!("cannot open {}", path.display()), e)),
        };
        let stat = f.metadata().map_err(|e| err(format!("stat {}", path.display()), e))?;
        let mut item = Vec::with_capacity(stat.len() as usize);
        f.read_to_end(&mut item).map_err(|e| err(format!("cannot read {}", path.display()), e))?;
        let (meta, data) = envelope::decode(&item).map_err(|e| StoreError::corrupt(NAME, id, e))?;
        let mut meta = meta.unwrap_or_else(|| foreign_meta(&stat));
        meta.last_access = mtime_secs(&stat);
        if meta.generation < self.current_generation()? {
            self.remove_session(id, meta.user.as_deref())?;
            return Ok(None);
        }
        Ok(Some(Record { meta, data: data.to_vec() }))
    }

    /// Reads only the metadata of a session file (gc, listings).
    fn read_meta(&self, path: &Path) -> io::Result<Option<Meta>> {
        let f = open_no_follow(path)?;
        let stat = f.metadata()?;
        let mut head = vec![0u8; HEADER_PROBE];
        let n = f.read_at(&mut head, 0)?;
        head.truncate(n);
        let meta = match envelope::header_len(&head) {
            None => Some(foreign_meta(&stat)),
            Some(len) => {
                if len > head.len() {
                    head.resize(len, 0);
                    f.read_exact_at(&mut head, 0)?;
                }
                envelope::decode(&head).ok().and_then(|(m, _)| m)
            }
        };
        Ok(meta.map(|mut m| {
            m.last_access = mtime_secs(&stat);
            m
        }))
    }

    /// Writes a whole session: into a temporary file, then renamed (or, when
    /// `replace_existing`, swapped) into place.
    fn write_record(&self, id: &SessionId, meta: &Meta, data: &[u8], replace_existing: bool) -> Result<()> {
        let path = self.data_path(id);
        let tmp = self.dir.join(format!("{TMP_PREFIX}{id}_{:016x}", LockToken::random().0 as u64));
        let item = envelope::encode(meta, data);
        let written = (|| {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&tmp)?;
            f.write_all(&item)
        })();
        let placed = written.and_then(|()| if replace_existing { exchange(&tmp, &path) } else { fs::rename(&tmp, &path) });
        // After an exchange the old session sits at the temporary name.
        let _ = fs::remove_file(&tmp);
        match placed {
            Ok(()) => Ok(()),
            Err(e) if replace_existing && e.kind() == io::ErrorKind::NotFound => Err(StoreError::Killed),
            Err(e) => Err(err(format!("cannot write {} (the previous data is kept)", path.display()), e)),
        }
    }

    /// Records an access: the mtime is the last access.
    fn touch_record(&self, id: &SessionId) -> Result<()> {
        let path = self.data_path(id);
        let f = match File::options().write(true).custom_flags(libc::O_NOFOLLOW).open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(StoreError::Killed),
            Err(e) => return Err(err(format!("cannot open {}", path.display()), e)),
        };
        f.set_modified(SystemTime::now()).map_err(|e| err(format!("cannot touch {}", path.display()), e))
    }

    fn user_dir(&self, user: &str) -> PathBuf {
        self.dir.join(USERS_DIR).join(format!("{:x}", Md5::digest(user.as_bytes())))
    }

    fn index_add(&self, user: &str, id: &SessionId) -> Result<()> {
        let dir = self.user_dir(user);
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .and_then(|()| {
                OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .mode(0o600)
                    .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                    .open(dir.join(id.as_str()))
                    .map(drop)
            })
            .map_err(|e| err(format!("cannot add to the user index {}", dir.display()), e))
    }

    fn index_remove(&self, user: &str, id: &SessionId) {
        let _ = remove_if_exists(&self.user_dir(user).join(id.as_str()));
    }

    /// Removes a session's file and its index entry; whether it existed.
    fn remove_session(&self, id: &SessionId, user: Option<&str>) -> Result<bool> {
        let path = self.data_path(id);
        let existed = remove_if_exists(&path).map_err(|e| err(format!("cannot remove {}", path.display()), e))?;
        if let Some(u) = user {
            self.index_remove(u, id);
        }
        Ok(existed)
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

    fn lock_and_read(&mut self, id: &SessionId, req: &LockRequest) -> Result<Locked> {
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
        match self.read_record(id) {
            Ok(record) => Ok(Locked::Acquired { token, record }),
            Err(e) => {
                self.release(id);
                Err(e)
            }
        }
    }

    fn read(&mut self, id: &SessionId) -> Result<Option<Record>> {
        self.read_record(id)
    }

    fn save(&mut self, id: &SessionId, put: &Put<'_>) -> Result<u64> {
        if let Some(token) = put.lock.token() {
            if self.held.get(id).map(|(t, _)| *t) != Some(token) {
                return Err(StoreError::LockLost);
            }
        }
        let result = match (put.expect_version, put.what) {
            (Some(version), Save::Write(_)) => self.place_fenced(id, put, version),
            (Some(_), Save::Touch) => self.touch_checked(id, put),
            _ => self.place(id, put),
        };
        if put.lock.releases() {
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
        let generation = self.current_generation()?;
        let meta = self.read_meta(&self.data_path(id)).ok().flatten();
        let live = meta.as_ref().is_none_or(|m| m.generation >= generation);
        let removed = self.remove_session(id, meta.and_then(|m| m.user).as_deref())?;
        Ok(removed && live)
    }

    fn exists(&mut self, id: &SessionId) -> Result<bool> {
        let path = self.data_path(id);
        match self.read_meta(&path) {
            Ok(Some(m)) if m.generation < self.current_generation()? => Ok(false),
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(err(format!("cannot read {}", path.display()), e)),
        }
    }

    fn gc(&mut self, default_timeout: u32) -> Result<u64> {
        let generation = self.current_generation()?;
        let lock_idle = Duration::from_secs(u64::from(default_timeout.max(1)));
        let entries = fs::read_dir(&self.dir).map_err(|e| err(format!("cannot list {}", self.dir.display()), e))?;
        let now = now_secs();
        let mut removed = 0;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Ok(stat) = entry.metadata() else { continue };
            if !stat.is_file() {
                continue;
            }
            if name.starts_with(TMP_PREFIX) {
                if idle_longer_than(&stat, TMP_MAX_AGE) {
                    let _ = fs::remove_file(entry.path());
                }
            } else if let Some(id) = name.strip_prefix(DATA_PREFIX) {
                if let Some(id) = id.strip_suffix(LOCK_SUFFIX) {
                    if idle_longer_than(&stat, lock_idle) {
                        self.remove_stale_lock(id);
                    }
                } else if let Some(id) = SessionId::parse(id.as_bytes()) {
                    // Unreadable metadata is kept: gc never destroys what it
                    // cannot judge.
                    let Ok(Some(meta)) = self.read_meta(&entry.path()) else { continue };
                    // A session whose lock is held is in use: its request
                    // writes it at close, whatever its last access says.
                    let stale = meta.generation < generation;
                    if (stale || (meta.expired(now, default_timeout) && !self.is_locked(&id)))
                        && self.remove_session(&id, meta.user.as_deref()).unwrap_or(false)
                    {
                        removed += 1;
                    }
                }
            }
        }
        self.prune_index();
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
        Ok(Some(serde_json::from_slice(&text).unwrap_or_else(|_| Holder::unknown())))
    }

}

impl Registry for FilesStore {
    fn user_sessions(&mut self, user: &str) -> Result<Vec<Listed>> {
        let dir = self.user_dir(user);
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(err(format!("cannot list {}", dir.display()), e)),
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let Some(id) = entry.file_name().to_str().and_then(|n| SessionId::parse(n.as_bytes())) else { continue };
            match self.read_record(&id)? {
                Some(r) if r.meta.user.as_deref() == Some(user) => out.push(Listed { id, meta: r.meta }),
                _ => {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
        Ok(out)
    }

    fn kill_user(&mut self, user: &str, keep: Option<&SessionId>) -> Result<u64> {
        let mut killed = 0;
        for l in self.user_sessions(user)? {
            if Some(&l.id) != keep && self.remove_session(&l.id, Some(user))? {
                killed += 1;
            }
        }
        Ok(killed)
    }

    fn kill_all(&mut self) -> Result<i64> {
        let next = self.current_generation()? + 1;
        let path = self.dir.join(GENERATION_FILE);
        let tmp = self.dir.join(format!("{TMP_PREFIX}generation_{:016x}", LockToken::random().0 as u64));
        fs::write(&tmp, format!("{next}\n"))
            .and_then(|()| fs::rename(&tmp, &path))
            .map_err(|e| {
                let _ = fs::remove_file(&tmp);
                err(format!("cannot write {}", path.display()), e)
            })?;
        Ok(-1)
    }
}

impl FilesStore {
    /// The part of a save that touches the files (the lock checked).
    fn place(&mut self, id: &SessionId, put: &Put<'_>) -> Result<u64> {
        let generation = self.current_generation()?;
        if put.existed && put.meta.generation < generation {
            // Ended by a kill_all since it was read.
            return Err(StoreError::Killed);
        }
        match put.what {
            Save::Write(data) => {
                let mut meta = put.meta.clone();
                if !put.existed {
                    meta.generation = generation;
                }
                self.write_record(id, &meta, data, put.existed)?;
                if let UserChange::From(previous) = put.user {
                    if let Some(old) = previous {
                        self.index_remove(old, id);
                    }
                    if let Some(new) = &put.meta.user {
                        self.index_add(new, id)?;
                    }
                }
                Ok(meta.generation)
            }
            Save::Touch => {
                self.touch_record(id)?;
                Ok(put.meta.generation)
            }
        }
    }

    /// A write-through's fenced write: under the session's flock (ours
    /// already, or taken for the moment), only over the version the request
    /// read, of the same live session.
    fn place_fenced(&mut self, id: &SessionId, put: &Put<'_>, version: u64) -> Result<u64> {
        let _flock = match put.lock.token() {
            Some(_) => None,
            None => match self.acquire(id, Instant::now() + FENCE_LOCK_WAIT)? {
                Some(f) => Some(f),
                None => {
                    return Err(StoreError::Backend {
                        store: NAME,
                        message: format!("session lock not free within {} s for a fenced write", FENCE_LOCK_WAIT.as_secs()),
                    });
                }
            },
        };
        let path = self.data_path(id);
        let stored = match self.read_meta(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(err(format!("cannot read {}", path.display()), e)),
        };
        let generation = self.current_generation()?;
        match stored {
            None if put.existed => return Err(StoreError::Killed),
            None => {}
            // A new session that someone else created meanwhile.
            Some(m) if !put.existed && m.generation >= generation => return Err(StoreError::LockLost),
            Some(_) if !put.existed => {}
            Some(m) if put.existed && (m.generation < generation || m.incarnation != put.meta.incarnation) => {
                return Err(StoreError::Killed);
            }
            Some(m) if m.version != version => return Err(StoreError::LockLost),
            Some(m) => {
                // Kill checks are done: keep the stored generation.
                let meta = Meta { generation: m.generation, ..put.meta.clone() };
                return self.place(id, &Put { meta: &meta, existed: false, ..*put }).map(|_| m.generation);
            }
        }
        self.place(id, put)
    }

    /// A write-through's touch: its metadata's generation is the cache's,
    /// so the stored one tells whether the session still lives.
    fn touch_checked(&mut self, id: &SessionId, put: &Put<'_>) -> Result<u64> {
        let path = self.data_path(id);
        let generation = self.current_generation()?;
        match self.read_meta(&path) {
            Ok(Some(m)) if m.generation >= generation && (!put.existed || m.incarnation == put.meta.incarnation) => {
                self.touch_record(id)?;
                Ok(m.generation)
            }
            Ok(_) => Err(StoreError::Killed),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(StoreError::Killed),
            Err(e) => Err(err(format!("cannot read {}", path.display()), e)),
        }
    }

    /// Drops index entries whose session is gone, and empty user directories.
    fn prune_index(&self) {
        let Ok(users) = fs::read_dir(self.dir.join(USERS_DIR)) else { return };
        for user in users.flatten() {
            let Ok(entries) = fs::read_dir(user.path()) else { continue };
            for e in entries.flatten() {
                let gone = e.file_name().to_str().and_then(|n| SessionId::parse(n.as_bytes())).is_none_or(|id| !self.data_path(&id).exists());
                if gone {
                    let _ = fs::remove_file(e.path());
                }
            }
            let _ = fs::remove_dir(user.path()); // only succeeds when empty
        }
    }

    /// Whether some request (this process or another) holds the lock now.
    fn is_locked(&self, id: &SessionId) -> bool {
        if self.held.contains_key(id) {
            return true;
        }
        let Ok(file) = open_no_follow(&self.lock_path(id)) else { return false };
        matches!(flock(&file, libc::LOCK_SH | libc::LOCK_NB), Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK))
    }

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

/// Refuses a save directory that someone else could write into (see
/// [`FilesStore::open`]); a symbolic link to it must be ours (or root's) too.
fn check_trusted(dir: &Path) -> Result<()> {
    // SAFETY: no arguments, cannot fail.
    let me = unsafe { libc::geteuid() };
    let refuse = |why: String| {
        err(
            format!("save directory {} is not safe to use", dir.display()),
            io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("{why}: anyone who can write there could plant sessions; remove it or choose another session.save_path"),
            ),
        )
    };
    let link = fs::symlink_metadata(dir).map_err(|e| err(format!("save path {}", dir.display()), e))?;
    if link.file_type().is_symlink() && link.uid() != me && link.uid() != 0 {
        return Err(refuse(format!("it is a symbolic link owned by uid {}, not by this process (uid {me})", link.uid())));
    }
    let m = fs::metadata(dir).map_err(|e| err(format!("save path {}", dir.display()), e))?;
    if !m.is_dir() {
        return Err(err(
            format!("save path {}", dir.display()),
            io::Error::new(io::ErrorKind::NotADirectory, "exists but is not a directory"),
        ));
    }
    if m.uid() != me {
        return Err(refuse(format!("it is owned by uid {}, not by this process (uid {me})", m.uid())));
    }
    if m.mode() & 0o022 != 0 {
        return Err(refuse(format!("group or others may write into it (mode {:o})", m.mode() & 0o7777)));
    }
    Ok(())
}

/// Opens an existing file for reading, never through a symbolic link.
fn open_no_follow(path: &Path) -> io::Result<File> {
    OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC).open(path)
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

/// Helper threads alive in this process (see [`wait_for_lock`]).
static WAITER_THREADS: AtomicUsize = AtomicUsize::new(0);
/// Past this many, waits poll instead of starting another thread.
const MAX_WAITER_THREADS: usize = 8;

/// Blocks on the lock in a helper thread until it is ours or `deadline`
/// passes (None). A helper that wins after the deadline drops the file,
/// which frees the lock at once. Until then it outlives its request, so a
/// lock held for hours would pile up one thread per timed-out wait: past
/// [`MAX_WAITER_THREADS`] such threads, waits poll instead.
fn wait_for_lock(file: File, deadline: Instant) -> Option<Result<File>> {
    let remaining = deadline.saturating_duration_since(Instant::now());
    if remaining.is_zero() {
        return None;
    }
    let room = WAITER_THREADS.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < MAX_WAITER_THREADS).then_some(n + 1));
    if room.is_err() {
        return poll_for_lock(file, deadline);
    }
    let (tx, rx) = mpsc::sync_channel(1);
    let spawned = std::thread::Builder::new().name("rsession-flock".into()).spawn(move || {
        let result = flock(&file, libc::LOCK_EX).map(|()| file);
        let _ = tx.send(result);
        WAITER_THREADS.fetch_sub(1, Ordering::AcqRel);
    });
    if let Err(e) = spawned {
        WAITER_THREADS.fetch_sub(1, Ordering::AcqRel);
        return Some(Err(err("cannot start the lock waiter thread", e)));
    }
    match rx.recv_timeout(remaining) {
        Ok(result) => Some(result.map_err(|e| err("flock", e))),
        Err(_) => None,
    }
}

/// The fallback wait: non-blocking tries with [`Backoff`] until `deadline`.
fn poll_for_lock(file: File, deadline: Instant) -> Option<Result<File>> {
    let mut backoff = Backoff::default();
    loop {
        match flock(&file, libc::LOCK_EX | libc::LOCK_NB) {
            Ok(()) => return Some(Ok(file)),
            Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => {}
            Err(e) => return Some(Err(err("flock", e))),
        }
        if Instant::now() >= deadline {
            return None;
        }
        backoff.sleep(deadline);
    }
}

/// Whether the open file is still the one at `path`.
fn same_file(file: &File, path: &Path) -> bool {
    match (file.metadata(), fs::symlink_metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

fn mtime_secs(stat: &fs::Metadata) -> u64 {
    stat.mtime().max(0) as u64
}

/// Metadata for a session file without any: PHP's `files` wrote it.
fn foreign_meta(stat: &fs::Metadata) -> Meta {
    let t = mtime_secs(stat);
    Meta { created: t, last_access: t, ..Meta::default() }
}

/// Swaps `new` into `target` atomically; fails with NotFound if `target`
/// does not exist (any more). On filesystems without RENAME_EXCHANGE, checks
/// and renames (a kill landing between the two is then not noticed).
fn exchange(new: &Path, target: &Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(|_| io::ErrorKind::InvalidInput);
    let (a, b) = (c(new)?, c(target)?);
    // SAFETY: two NUL-terminated paths, both relative to nothing (absolute
    // or cwd-relative as given).
    let rc = unsafe { libc::renameat2(libc::AT_FDCWD, a.as_ptr(), libc::AT_FDCWD, b.as_ptr(), libc::RENAME_EXCHANGE) };
    if rc == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP) => {
            fs::symlink_metadata(target)?;
            fs::rename(new, target)
        }
        _ => Err(e),
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
    use crate::store::LockUse;
    use crate::store::testing::{TTL, data, id, meta, put, read_data, registry_contract, req, write};

    fn release_write(s: &mut FilesStore, sid: &SessionId, d: &[u8], token: LockToken, existed: bool) -> Result<u64> {
        let m = meta();
        s.save(sid, &Put { existed, ..put(Save::Write(d), &m, TTL, LockUse::Release(token)) })
    }

    #[test]
    fn round_trip_binary_and_atomic() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = FilesStore::open(&dir.path().join("new")).unwrap();
        let mode = fs::metadata(dir.path().join("new")).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let a = id("abc");
        let Locked::Acquired { token, record: None } = s.lock_and_read(&a, &req(0, 10_000)).unwrap() else { panic!() };
        release_write(&mut s, &a, b"x\0y", token, false).unwrap();
        assert_eq!(read_data(&mut s, &a).as_deref(), Some(&b"x\0y"[..]));
        let mode = fs::metadata(s.data_path(&a)).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // Released: no temp files left; the lock file stays, unlocked.
        let mut names: Vec<_> = fs::read_dir(&s.dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        assert_eq!(names, vec![std::ffi::OsString::from("sess_abc"), "sess_abc.lock".into()]);
        assert!(s.lock_holder(&a).unwrap().is_none());
    }

    #[test]
    fn data_written_by_php_files_reads_as_data() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = FilesStore::open(dir.path()).unwrap();
        fs::write(dir.path().join("sess_php"), b"a|i:1;").unwrap();
        let r = s.read(&id("php")).unwrap().unwrap();
        assert_eq!((r.data.as_slice(), r.meta.user), (&b"a|i:1;"[..], None));
        fs::write(dir.path().join("sess_bad"), b"\0RS\x05\0\0\0\x01\xff").unwrap();
        assert!(matches!(s.read(&id("bad")), Err(StoreError::Corrupt { .. })));
        assert_eq!(s.gc(1).unwrap(), 0, "gc keeps what it cannot judge");
    }

    #[test]
    fn second_store_waits_and_times_out_naming_holder() {
        let dir = tempfile::tempdir().unwrap();
        let mut s1 = FilesStore::open(dir.path()).unwrap();
        let mut s2 = FilesStore::open(dir.path()).unwrap();
        let a = id("abc");
        let Locked::Acquired { token, .. } = s1.lock_and_read(&a, &req(0, 10_000)).unwrap() else { panic!() };
        let t = Instant::now();
        let Locked::TimedOut { holder: Some(h) } = s2.lock_and_read(&a, &req(100, 10_000)).unwrap() else { panic!() };
        assert!(t.elapsed() >= Duration::from_millis(100));
        assert_eq!(h.pid, 7);
        assert!(s2.lock_holder(&a).unwrap().is_some());
        s1.unlock(&a, token).unwrap();
        assert!(s2.lock_holder(&a).unwrap().is_none());
        assert!(matches!(s2.lock_and_read(&a, &req(0, 10_000)).unwrap(), Locked::Acquired { .. }));
    }

    #[test]
    fn waiter_gets_lock_when_holder_releases() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        let mut s1 = FilesStore::open(&path).unwrap();
        let a = id("abc");
        let Locked::Acquired { token, .. } = s1.lock_and_read(&a, &req(0, 10_000)).unwrap() else { panic!() };
        let waiter = std::thread::spawn(move || {
            let mut s2 = FilesStore::open(&path).unwrap();
            match s2.lock_and_read(&id("abc"), &req(5000, 10_000)).unwrap() {
                Locked::Acquired { record, .. } => data(record),
                Locked::TimedOut { .. } => panic!("timed out"),
            }
        });
        std::thread::sleep(Duration::from_millis(50));
        release_write(&mut s1, &a, b"first", token, false).unwrap();
        assert_eq!(waiter.join().unwrap().as_deref(), Some(&b"first"[..]));
    }

    #[test]
    fn waits_that_time_out_on_a_long_held_lock_leave_a_bounded_number_of_threads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        let mut holder = FilesStore::open(&path).unwrap();
        let a = id("stuck");
        let Locked::Acquired { token, .. } = holder.lock_and_read(&a, &req(0, 10_000)).unwrap() else { panic!() };
        let mut waiter = FilesStore::open(&path).unwrap();
        for _ in 0..MAX_WAITER_THREADS + 4 {
            assert!(matches!(waiter.lock_and_read(&a, &req(5, 10_000)).unwrap(), Locked::TimedOut { .. }));
            // Other tests' waits count too; the cap holds for all of them.
            assert!(WAITER_THREADS.load(Ordering::Acquire) <= MAX_WAITER_THREADS);
        }
        // Past the cap a wait polls, and still gets the lock when it is freed.
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            holder.unlock(&id("stuck"), token).unwrap();
        });
        let t = Instant::now();
        assert!(matches!(waiter.lock_and_read(&a, &req(5000, 10_000)).unwrap(), Locked::Acquired { .. }));
        assert!(t.elapsed() < Duration::from_millis(2000), "{:?}", t.elapsed());
        release.join().unwrap();
    }

    #[test]
    fn wrong_token_is_refused_and_data_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = FilesStore::open(dir.path()).unwrap();
        let a = id("abc");
        write(&mut s, &a, b"keep");
        let Locked::Acquired { token, .. } = s.lock_and_read(&a, &req(0, 10_000)).unwrap() else { panic!() };
        let e = release_write(&mut s, &a, b"lost", LockToken(token.0 ^ 1), true);
        assert!(matches!(e, Err(StoreError::LockLost)));
        assert_eq!(read_data(&mut s, &a).as_deref(), Some(&b"keep"[..]));
    }

    #[test]
    fn gc_follows_each_sessions_own_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = FilesStore::open(dir.path()).unwrap();
        let (old, new, never) = (id("old"), id("new"), id("never"));
        write(&mut s, &old, b"1");
        write(&mut s, &new, b"2");
        let m = Meta { timeout: 0, timeout_set: true, ..meta() };
        s.save(&never, &put(Save::Write(b"3"), &m, TTL, LockUse::Unlocked)).unwrap();
        let past = SystemTime::now() - Duration::from_secs(100);
        let Locked::Acquired { token, .. } = s.lock_and_read(&old, &req(0, 10_000)).unwrap() else { panic!() };
        s.unlock(&old, token).unwrap();
        for p in [s.lock_path(&old), s.data_path(&old), s.data_path(&never)] {
            File::options().write(true).open(p).unwrap().set_modified(past).unwrap();
        }
        assert_eq!(s.gc(50).unwrap(), 1);
        assert!(!s.exists(&old).unwrap());
        assert!(!s.lock_path(&old).exists(), "an idle, unheld lock file is removed");
        assert!(s.exists(&new).unwrap());
        assert!(s.exists(&never).unwrap(), "timeout 0 survives gc");
        assert_eq!(s.read(&never).unwrap().unwrap().meta.last_access, mtime_secs(&fs::metadata(s.data_path(&never)).unwrap()));
    }

    #[test]
    fn a_save_directory_others_can_write_into_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let planted = dir.path().join("rsession");
        fs::create_dir(&planted).unwrap();
        fs::set_permissions(&planted, fs::Permissions::from_mode(0o777)).unwrap();
        fs::write(planted.join("sess_adopted"), b"is_admin|b:1;").unwrap();
        let e = FilesStore::open(&planted).err().expect("a 0777 directory must be refused").to_string();
        assert!(e.contains("not safe") && e.contains("777") && e.contains("plant"), "{e}");
        fs::set_permissions(&planted, fs::Permissions::from_mode(0o720)).unwrap();
        assert!(FilesStore::open(&planted).is_err(), "group-writable");
        fs::set_permissions(&planted, fs::Permissions::from_mode(0o700)).unwrap();
        assert!(FilesStore::open(&planted).is_ok());
        // SAFETY: no arguments.
        if unsafe { libc::geteuid() } == 0 {
            // Owned by another user (nobody): refused even at 0700.
            std::os::unix::fs::chown(&planted, Some(65534), Some(65534)).unwrap();
            let e = FilesStore::open(&planted).err().expect("another user's directory must be refused").to_string();
            assert!(e.contains("owned by uid 65534"), "{e}");
            let link = dir.path().join("link");
            std::os::unix::fs::symlink(&planted, &link).unwrap();
            std::os::unix::fs::lchown(&link, Some(65534), Some(65534)).unwrap();
            assert!(FilesStore::open(&link).is_err(), "a link owned by another user");
        }
    }

    #[test]
    fn session_files_are_never_read_through_a_symbolic_link() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = FilesStore::open(dir.path()).unwrap();
        let elsewhere = dir.path().join("elsewhere");
        fs::write(&elsewhere, b"is_admin|b:1;").unwrap();
        std::os::unix::fs::symlink(&elsewhere, s.data_path(&id("linked"))).unwrap();
        assert!(s.read(&id("linked")).is_err(), "a symlinked session file must not be read");
        assert!(!s.exists(&id("linked")).unwrap_or(false));
    }

    #[test]
    fn gc_leaves_a_session_whose_lock_is_held() {
        let dir = tempfile::tempdir().unwrap();
        let (mut holder, mut other) = (FilesStore::open(dir.path()).unwrap(), FilesStore::open(dir.path()).unwrap());
        let busy = id("busy");
        write(&mut holder, &busy, b"in use");
        let Locked::Acquired { token, record: Some(rec) } = holder.lock_and_read(&busy, &req(0, 10_000)).unwrap() else { panic!() };
        let past = SystemTime::now() - Duration::from_secs(100);
        File::options().write(true).open(holder.data_path(&busy)).unwrap().set_modified(past).unwrap();
        assert_eq!(other.gc(50).unwrap(), 0, "another process's gc");
        assert_eq!(holder.gc(50).unwrap(), 0, "the holder's own gc");
        let p = Put { existed: true, ..put(Save::Write(b"written at close"), &rec.meta, TTL, LockUse::Release(token)) };
        holder.save(&busy, &p).expect("the long request's write lands");
        assert_eq!(read_data(&mut other, &busy).as_deref(), Some(&b"written at close"[..]));
    }

    #[test]
    fn registry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        registry_contract(&|| Box::new(FilesStore::open(&path).unwrap()));
        // gc drops index entries of sessions removed behind its back.
        let mut s = FilesStore::open(&path).unwrap();
        crate::store::testing::write_for(&mut s, &id("x1"), "erin", b"");
        fs::remove_file(s.data_path(&id("x1"))).unwrap();
        s.gc(1000).unwrap();
        assert!(!s.user_dir("erin").exists());
    }
}

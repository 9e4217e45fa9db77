//! One run per plan at a time: a lock file that names its holder.
//!
//! The lock file appears whole or not at all: it is written and synced under a temporary name in
//! the locks directory, then hard-linked to `PLAN.lock`, which fails when a lock is there (`link(2)`
//! never replaces a file). So a reader never sees an empty lock from a live writer, and an empty or
//! unreadable lock on disk (a full disk, an older drctl) is refused, never taken over silently.
//! Taking over a lock (its holder is proven dead, or `--break-lock`) and releasing one happen under
//! an exclusive `flock` of the locks directory after reading the file again, so two processes
//! never both take over the same stale lock, and nobody removes a lock that is not the one they read.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use super::process;

/// Who holds a plan's lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolder {
    pub run_id: String,
    pub host: String,
    pub pid: u32,
    #[serde(with = "super::time")]
    pub since: SystemTime,
    /// When the holding process started (clock ticks since boot, Linux): tells the holder apart
    /// from a later process that reused its pid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_start: Option<u64>,
    /// Who runs the holding process (`$USER`); written by leases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// When the holder's lease ends unless renewed (leases on S3; a local lock has none).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "super::time_opt")]
    pub expires_at: Option<SystemTime>,
    /// Grows by one at each takeover of a lease: who took over from whom, in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<u64>,
}

impl LockHolder {
    /// This process, holding the lock for `run_id` from `since`.
    pub fn this_process(run_id: &str, since: SystemTime) -> Self {
        let pid = std::process::id();
        LockHolder {
            run_id: run_id.to_string(),
            host: hostname(),
            pid,
            since,
            process_start: process::start_ticks(pid),
            user: std::env::var("USER").ok().filter(|u| !u.is_empty()),
            expires_at: None,
            token: None,
        }
    }

    /// Whether `other` is the same process holding the lock for the same run.
    pub fn same_holder(&self, other: &LockHolder) -> bool {
        (&self.run_id, &self.host, self.pid) == (&other.run_id, &other.host, other.pid)
    }

    /// Whether the holder is proven gone: a process of this host that no longer runs (or whose pid
    /// now belongs to a process started later). A holder on another host is never presumed dead.
    pub fn is_dead(&self) -> bool {
        if self.host != hostname() {
            return false;
        }
        if !process::alive(self.pid) {
            return true;
        }
        matches!((self.process_start, process::start_ticks(self.pid)), (Some(was), Some(now)) if was != now)
    }

    /// "run R (host H, pid P, since T)", with the user and the lease's end when known.
    pub fn describe(&self) -> String {
        let since = crate::clock::rfc3339(self.since);
        let user = self.user.as_ref().map(|u| format!("user {u}, ")).unwrap_or_default();
        let lease = match self.expires_at {
            Some(end) => format!(", lease ends {}", crate::clock::rfc3339(end)),
            None => String::new(),
        };
        format!("run {} ({user}host {}, pid {}, since {since}{lease})", self.run_id, self.host, self.pid)
    }

    /// Whether the holder's lease has ended at `now` (a holder without a lease never expires).
    pub fn expired(&self, now: SystemTime) -> bool {
        self.expires_at.is_some_and(|end| end <= now)
    }
}

/// What the operator allows when a plan's lock is held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LockPolicy {
    /// `--break-lock`: take over a lock whose holder cannot be proven alive (another host, or an
    /// unreadable lock file).
    pub break_lock: bool,
    /// `--force` with `--break-lock`: take the lock even from a live process of this host.
    pub force: bool,
}

/// Why a lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another run holds the lock and may be running.
    #[error("{}", held_message(.plan, .holder, *.live_here, *.break_asked))]
    Held { plan: String, holder: Box<LockHolder>, live_here: bool, break_asked: bool },
    /// A lock file is there but names nobody.
    #[error(
        "{path}: {reason}, so nothing says who holds the lock of plan `{plan}` (a full disk or an older drctl leaves \
         such a file). If no run of the plan is under way (check `drctl status` and the other machines), pass \
         --break-lock to take it over"
    )]
    Unreadable { plan: String, path: PathBuf, reason: String },
    /// The locks directory cannot be used.
    #[error("cannot take the lock {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// The remote store holding the lock cannot be reached, or the lease was lost.
    #[error("the lock of plan `{plan}` at {location}: {message}")]
    Remote { plan: String, location: String, message: String },
}

fn held_message(plan: &str, holder: &LockHolder, live_here: bool, break_asked: bool) -> String {
    let who = holder.describe();
    if let Some(end) = holder.expires_at {
        return format!(
            "plan `{plan}` is locked by {who}; only one run per plan at a time. Its holder renews the lease while it \
             runs: if that run is dead, the lock is free once the lease ends ({}), or pass --break-lock to take it \
             over now",
            crate::clock::rfc3339(end)
        );
    }
    match (live_here, break_asked) {
        (true, true) => format!(
            "plan `{plan}` is locked by {who}, and pid {} is running on this host: --break-lock does not take a lock \
             from a live process. Stop that run (Ctrl-C journals it as interrupted), or, if pid {} is not that run \
             (its pid was reused), add --force",
            holder.pid, holder.pid
        ),
        (true, false) => {
            format!("plan `{plan}` is locked by {who}, a process running on this host; only one run per plan at a time")
        }
        (false, _) => format!(
            "plan `{plan}` is locked by {who}; only one run per plan at a time. A holder on another host is never \
             presumed dead: if that machine is down and the run is not going on, pass --break-lock"
        ),
    }
}

/// A held lock, whatever store holds it; released when dropped.
#[derive(Debug)]
pub struct PlanLock {
    held: Box<dyn HeldLock>,
    taken_over: Option<TakenOver>,
}

/// A lock this process took over from another holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TakenOver {
    pub previous: LockHolder,
    /// Why: `expired`, `--break-lock`, or that the holder is proven dead on this host.
    pub reason: String,
}

/// What a store's held lock does; releasing happens when it is dropped.
pub trait HeldLock: Send + Sync + std::fmt::Debug {
    /// Who holds it (this process).
    fn holder(&self) -> &LockHolder;
    /// Makes the lock name `run_id` instead, failing if it is no longer ours.
    fn retarget(&mut self, run_id: &str) -> Result<(), LockError>;
}

impl PlanLock {
    /// A lock held through `held`, taken over from someone if `taken_over`.
    pub fn new(held: Box<dyn HeldLock>, taken_over: Option<TakenOver>) -> PlanLock {
        PlanLock { held, taken_over }
    }

    /// Makes the held lock name `run_id` instead (the run turned out to be a resume).
    pub fn retarget(&mut self, run_id: &str) -> Result<(), LockError> {
        self.held.retarget(run_id)
    }

    /// Who holds this lock.
    pub fn holder(&self) -> &LockHolder {
        self.held.holder()
    }

    /// From whom this process took the lock over, if it did (to be journaled once).
    pub fn take_over_note(&mut self) -> Option<TakenOver> {
        self.taken_over.take()
    }
}

/// A lock file in a local state directory.
#[derive(Debug)]
struct FileLock {
    path: PathBuf,
    holder: LockHolder,
}

/// Lock files larger than this are not read (drctl writes about 150 bytes).
const MAX_LOCK_BYTES: u64 = 64 * 1024;

impl PlanLock {
    /// Takes the lock of `plan` at `path` for `holder`. A holder proven dead is replaced (with a
    /// warning); anything else is refused unless `policy` allows it.
    // Another process's link races this one in real time: the 10 s bound is wall time, not the run's clock.
    #[allow(clippy::disallowed_methods)]
    pub fn acquire(path: &Path, plan: &str, holder: LockHolder, policy: LockPolicy) -> Result<PlanLock, LockError> {
        let io = |source| LockError::Io { path: path.to_path_buf(), source };
        let dir = locks_dir(path).map_err(io)?;
        remove_stale_temporaries(&dir);
        let temp = TempFile::write(&dir, path, &holder).map_err(io)?;
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut taken_over = None;
        while Instant::now() < deadline {
            match std::fs::hard_link(&temp.0, path) {
                Ok(()) => {
                    sync_dir(&dir).map_err(io)?;
                    let held = FileLock { path: path.to_path_buf(), holder };
                    return Ok(PlanLock::new(Box::new(held), taken_over));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io(e)),
            }
            let bytes = match read_lock(path) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue, // released meanwhile
                Err(e) => return Err(io(e)),
            };
            match parse_holder(&bytes) {
                Ok(existing) if existing.same_holder(&holder) => {
                    let held = FileLock { path: path.to_path_buf(), holder: existing };
                    return Ok(PlanLock::new(Box::new(held), None));
                }
                Ok(existing) => {
                    let reason = takeover_reason(plan, &existing, policy)?;
                    tracing::warn!("taking over the lock of plan `{plan}` from {}: {reason}", existing.describe());
                    taken_over = Some(TakenOver { previous: existing, reason: reason.to_string() });
                }
                Err(reason) if policy.break_lock => {
                    tracing::warn!("taking over the lock {} ({reason}), as --break-lock asks", path.display());
                }
                Err(reason) => {
                    return Err(LockError::Unreadable { plan: plan.to_string(), path: path.to_path_buf(), reason });
                }
            }
            remove_if_unchanged(&dir, path, &bytes).map_err(io)?;
        }
        Err(io(std::io::Error::other("the lock kept changing hands for 10 s; try again")))
    }

    /// The current holder of the lock at `path`, if any can be read.
    pub fn holder_of(path: &Path) -> Option<LockHolder> {
        parse_holder(&read_lock(path).ok()?).ok()
    }
}

impl HeldLock for FileLock {
    fn retarget(&mut self, run_id: &str) -> Result<(), LockError> {
        let io = |source| LockError::Io { path: self.path.clone(), source };
        let dir = locks_dir(&self.path).map_err(io)?;
        let holder = LockHolder { run_id: run_id.to_string(), ..self.holder.clone() };
        let temp = TempFile::write(&dir, &self.path, &holder).map_err(io)?;
        let _guard = DirGuard::lock(&dir).map_err(io)?;
        let current = read_lock(&self.path).ok().and_then(|b| parse_holder(&b).ok());
        match current {
            Some(h) if h.same_holder(&self.holder) => {}
            other => {
                let who = other.map_or("nobody".to_string(), |h| h.describe());
                return Err(io(std::io::Error::other(format!("the lock was taken over by {who}"))));
            }
        }
        std::fs::rename(&temp.0, &self.path).map_err(io)?;
        sync_dir(&dir).map_err(io)?;
        self.holder = holder;
        Ok(())
    }

    fn holder(&self) -> &LockHolder {
        &self.holder
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        let Some(dir) = self.path.parent() else { return };
        let Ok(_guard) = DirGuard::lock(dir) else { return };
        let ours = read_lock(&self.path).ok().and_then(|b| parse_holder(&b).ok());
        if ours.is_some_and(|h| h.same_holder(&self.holder)) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Whether `existing` may be replaced under `policy`, and why; otherwise the refusal.
fn takeover_reason(plan: &str, existing: &LockHolder, policy: LockPolicy) -> Result<&'static str, LockError> {
    let held = |live_here| LockError::Held {
        plan: plan.to_string(),
        holder: Box::new(existing.clone()),
        live_here,
        break_asked: policy.break_lock,
    };
    if existing.is_dead() {
        Ok("that process is no longer running on this host")
    } else if existing.host == hostname() {
        if policy.break_lock && policy.force { Ok("--break-lock --force") } else { Err(held(true)) }
    } else if policy.break_lock {
        Ok("--break-lock")
    } else {
        Err(held(false))
    }
}

/// Reads a lock file's holder. Errors say what is wrong with it, for messages.
pub fn parse_holder(bytes: &[u8]) -> Result<LockHolder, String> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err("the lock file is empty".into());
    }
    let holder: LockHolder =
        serde_json::from_slice(bytes).map_err(|e| format!("the lock file is not a lock drctl wrote ({e})"))?;
    if holder.run_id.is_empty() || holder.host.is_empty() || holder.pid == 0 {
        return Err("the lock file names no run, host or pid".into());
    }
    Ok(holder)
}

fn read_lock(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    File::open(path)?.take(MAX_LOCK_BYTES + 1).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The locks directory of the lock at `path`, created if missing.
fn locks_dir(path: &Path) -> std::io::Result<PathBuf> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
    if dir.exists() && !dir.is_dir() {
        return Err(std::io::Error::other(format!("{} is a file, not a directory", dir.display())));
    }
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Removes the lock at `path` if it still holds `expected` (under the directory's flock).
fn remove_if_unchanged(dir: &Path, path: &Path, expected: &[u8]) -> std::io::Result<()> {
    let _guard = DirGuard::lock(dir)?;
    match read_lock(path) {
        Ok(current) if current == expected => std::fs::remove_file(path).or_else(ignore_not_found),
        Ok(_) => Ok(()), // someone else got there first: look again
        Err(e) => ignore_not_found(e),
    }
}

fn ignore_not_found(e: std::io::Error) -> std::io::Result<()> {
    if e.kind() == std::io::ErrorKind::NotFound { Ok(()) } else { Err(e) }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// A holder written and synced under a temporary name in the locks directory; removed when dropped.
struct TempFile(PathBuf);

const TEMP_SUFFIX: &str = ".tmp";

impl TempFile {
    fn write(dir: &Path, lock: &Path, holder: &LockHolder) -> std::io::Result<TempFile> {
        let name = lock.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let path = dir.join(format!(".{name}.{}.{:08x}{TEMP_SUFFIX}", std::process::id(), fastrand::u32(..)));
        let temp = TempFile(path);
        let mut file = File::options().write(true).create_new(true).open(&temp.0)?;
        let text = serde_json::to_vec(holder).expect("lock holders serialize");
        file.write_all(&text)?;
        file.sync_all()?;
        Ok(temp)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Removes temporary lock files left by processes of this host that died before linking them.
fn remove_stale_temporaries(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(inner) = name.strip_prefix('.').and_then(|n| n.strip_suffix(TEMP_SUFFIX)) else { continue };
        let pid = inner.rsplit('.').nth(1).and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|pid| !process::alive(pid)) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// An exclusive `flock` of a directory, held while a lock is replaced or released.
struct DirGuard(File);

impl DirGuard {
    // Another process holds the flock in real time: the 10 s bound is wall time, not the run's clock.
    #[allow(clippy::disallowed_methods)]
    fn lock(dir: &Path) -> std::io::Result<DirGuard> {
        use std::os::fd::AsRawFd;
        let file = File::open(dir)?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            // SAFETY: flock on a descriptor this function owns; it has no memory effects.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
                return Ok(DirGuard(file));
            }
            let error = std::io::Error::last_os_error();
            if error.raw_os_error() != Some(libc::EWOULDBLOCK) || Instant::now() > deadline {
                return Err(error);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for DirGuard {
    fn drop(&mut self) {
        use std::os::fd::AsRawFd;
        // SAFETY: as above; closing the file would release the lock too.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

/// This machine's host name.
pub fn hostname() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

#[cfg(test)]
#[path = "lock_tests.rs"]
mod tests;

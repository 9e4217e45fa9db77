//! One run per plan at a time: a lock file that names its holder.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// Who holds a plan's lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolder {
    pub run_id: String,
    pub host: String,
    pub pid: u32,
    #[serde(with = "super::time")]
    pub since: SystemTime,
}

impl LockHolder {
    /// This process, holding the lock for `run_id` from `since`.
    pub fn this_process(run_id: &str, since: SystemTime) -> Self {
        LockHolder { run_id: run_id.to_string(), host: hostname(), pid: std::process::id(), since }
    }

    /// Whether `other` is the same process holding the lock for the same run.
    pub fn same_holder(&self, other: &LockHolder) -> bool {
        (&self.run_id, &self.host, self.pid) == (&other.run_id, &other.host, other.pid)
    }

    /// Whether the holder is known to be gone: a process of this host that no longer runs.
    /// A holder on another host is never presumed dead.
    pub fn is_dead(&self) -> bool {
        self.host == hostname() && !process_alive(self.pid)
    }
}

/// Why a lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{}", held_message(.holder, .plan))]
    Held { plan: String, holder: LockHolder },
    #[error("cannot take the lock {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

fn held_message(holder: &LockHolder, plan: &str) -> String {
    let since = crate::clock::rfc3339(holder.since);
    let who = format!("run {} (host {}, pid {}, since {since})", holder.run_id, holder.host, holder.pid);
    if holder.is_dead() {
        format!(
            "plan `{plan}` is locked by {who}, but that process is no longer running; pass --break-lock to take over"
        )
    } else {
        format!(
            "plan `{plan}` is locked by {who}; only one run per plan at a time. If that process is gone (its machine died), pass --break-lock"
        )
    }
}

/// A held lock; released when dropped.
#[derive(Debug)]
pub struct PlanLock {
    path: PathBuf,
    holder: LockHolder,
}

impl PlanLock {
    /// Takes the lock at `path` for `holder`; with `break_existing`, replaces a lock someone else holds.
    pub fn acquire(path: &Path, plan: &str, holder: LockHolder, break_existing: bool) -> Result<PlanLock, LockError> {
        let io = |source| LockError::Io { path: path.to_path_buf(), source };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        loop {
            match OpenOptions::new().write(true).create_new(true).open(path) {
                Ok(mut file) => {
                    let text = serde_json::to_string(&holder).expect("lock holders serialize");
                    file.write_all(text.as_bytes()).and_then(|_| file.sync_all()).map_err(io)?;
                    return Ok(PlanLock { path: path.to_path_buf(), holder });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let existing = read_holder(path);
                    match existing {
                        Some(h) if h.same_holder(&holder) => return Ok(PlanLock { path: path.to_path_buf(), holder }),
                        Some(h) if !break_existing => {
                            return Err(LockError::Held { plan: plan.to_string(), holder: h });
                        }
                        _ => {
                            tracing::warn!(lock = %path.display(), "breaking the lock of {:?}", existing.map(|h| h.run_id));
                            std::fs::remove_file(path).or_else(ignore_not_found).map_err(io)?;
                        }
                    }
                }
                Err(e) => return Err(io(e)),
            }
        }
    }

    /// The current holder of the lock at `path`, if any.
    pub fn holder_of(path: &Path) -> Option<LockHolder> {
        read_holder(path)
    }
}

impl Drop for PlanLock {
    fn drop(&mut self) {
        if read_holder(&self.path).is_some_and(|h| h.same_holder(&self.holder)) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn read_holder(path: &Path) -> Option<LockHolder> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

fn ignore_not_found(e: std::io::Error) -> std::io::Result<()> {
    if e.kind() == std::io::ErrorKind::NotFound { Ok(()) } else { Err(e) }
}

/// This machine's host name.
pub fn hostname() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return false };
    // SAFETY: kill with signal 0 only checks that the process exists and may be signalled.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_holders_name() {
        let dir = crate::journal::tests::tempdir();
        let path = dir.join("p.lock");
        let now = SystemTime::now();
        let first = PlanLock::acquire(&path, "p", LockHolder::this_process("run-1", now), false).unwrap();
        let err = PlanLock::acquire(&path, "p", LockHolder::this_process("run-2", now), false).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("run-1") && msg.contains(&format!("pid {}", std::process::id())), "{msg}");
        drop(first);
        PlanLock::acquire(&path, "p", LockHolder::this_process("run-2", now), false).unwrap();
    }

    #[test]
    fn a_dead_holder_is_named_as_such_and_can_be_broken() {
        let dir = crate::journal::tests::tempdir();
        let path = dir.join("p.lock");
        let dead = LockHolder { run_id: "old".into(), host: hostname(), pid: u32::MAX - 1, since: SystemTime::now() };
        std::fs::write(&path, serde_json::to_string(&dead).unwrap()).unwrap();
        let me = LockHolder::this_process("new", SystemTime::now());
        let msg = PlanLock::acquire(&path, "p", me.clone(), false).unwrap_err().to_string();
        assert!(msg.contains("no longer running") && msg.contains("--break-lock"), "{msg}");
        PlanLock::acquire(&path, "p", me.clone(), true).unwrap();
    }
}

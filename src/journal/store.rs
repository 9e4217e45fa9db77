//! The state directory (default `.drctl/`): one folder per run with its journal, and plan locks.
//!
//! ```text
//! .drctl/
//!   runs/<run-id>/journal.jsonl
//!   locks/<plan>.lock
//! ```

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::plan::Direction;

/// Where runs and locks are kept.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

/// A run found in the state directory.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub run_id: String,
    pub journal: PathBuf,
}

impl StateDir {
    /// The state directory at `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        StateDir { root: root.into() }
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The journal file of `run_id`.
    pub fn journal_path(&self, run_id: &str) -> PathBuf {
        self.root.join("runs").join(run_id).join("journal.jsonl")
    }

    /// The lock file of plan `plan`.
    pub fn lock_path(&self, plan: &str) -> PathBuf {
        self.root.join("locks").join(format!("{plan}.lock"))
    }

    /// A new, sortable run id: `<plan>-<direction>-<UTC time>-<random>`.
    pub fn new_run_id(plan: &str, direction: Direction, now: SystemTime) -> String {
        let stamp: String =
            humantime::format_rfc3339_seconds(now).to_string().chars().filter(|c| !"-:".contains(*c)).collect();
        format!("{plan}-{direction}-{stamp}-{:04x}", fastrand::u16(..))
    }

    /// Every run with a non-empty journal, oldest first. Problems are left out; [`StateDir::scan`]
    /// reports them.
    pub fn runs(&self) -> Vec<RunSummary> {
        let Ok(dirs) = self.scan() else { return Vec::new() };
        let mut runs: Vec<RunSummary> = dirs
            .into_iter()
            .filter_map(|d| match d {
                RunDir::Journal { run_id, journal } => {
                    let started = std::fs::metadata(&journal).is_ok_and(|m| m.len() > 0);
                    started.then_some(RunSummary { run_id, journal })
                }
                RunDir::Broken { .. } => None,
            })
            .collect();
        runs.sort_by_key(|r| {
            let started = std::fs::metadata(&r.journal).and_then(|m| m.created().or_else(|_| m.modified())).ok();
            (started, r.run_id.clone())
        });
        runs
    }

    /// Every entry of `runs/`, by name: a journal to read, or what is wrong with it. Leftovers of
    /// a process of this host killed while creating a journal (`journal.new-PID`) are removed on
    /// the way, with their directory if nothing else is in it. A missing state directory holds no
    /// runs; a state directory or `runs` that is not a directory is an error.
    pub fn scan(&self) -> Result<Vec<RunDir>, StateError> {
        for dir in [self.root.clone(), self.root.join("runs")] {
            match std::fs::metadata(&dir) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => return Err(StateError::NotADirectory(dir)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(source) => return Err(StateError::Io { path: dir, source }),
            }
        }
        let runs = self.root.join("runs");
        let io = |source| StateError::Io { path: runs.clone(), source };
        let mut found = Vec::new();
        for entry in std::fs::read_dir(&runs).map_err(io)? {
            let entry = entry.map_err(io)?;
            let run_id = entry.file_name().to_string_lossy().into_owned();
            let dir = entry.path();
            if !dir.is_dir() {
                found.push(RunDir::Broken {
                    run_id,
                    path: dir,
                    problem: "a file where a run directory belongs".into(),
                });
                continue;
            }
            remove_dead_side_files(&dir);
            let journal = dir.join("journal.jsonl");
            match std::fs::metadata(&journal) {
                Ok(m) if m.is_file() => found.push(RunDir::Journal { run_id, journal }),
                Ok(_) => found.push(RunDir::Broken { run_id, path: journal, problem: "not a file".into() }),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    // An empty directory is a journal being created right now, or a leftover.
                    if std::fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_some()) {
                        found.push(RunDir::Broken { run_id, path: journal, problem: "missing".into() });
                    }
                }
                Err(e) => found.push(RunDir::Broken { run_id, path: journal, problem: e.to_string() }),
            }
        }
        found.sort_by(|a, b| a.run_id().cmp(b.run_id()));
        Ok(found)
    }
}

/// One entry of the state directory's `runs/`.
#[derive(Debug, Clone)]
pub enum RunDir {
    /// A run directory with its journal file (not yet read).
    Journal { run_id: String, journal: PathBuf },
    /// Something that should be a run and cannot be read as one.
    Broken { run_id: String, path: PathBuf, problem: String },
}

impl RunDir {
    /// The run id its directory name gives.
    pub fn run_id(&self) -> &str {
        match self {
            RunDir::Journal { run_id, .. } | RunDir::Broken { run_id, .. } => run_id,
        }
    }
}

/// The state directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{0} is a file, not a directory; point --state-dir at a directory, or move the file away")]
    NotADirectory(PathBuf),
    #[error("cannot read the state directory {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// The plan and direction a run id names (`<plan>-<direction>-<UTC time>-<random>`).
pub fn parse_run_id(run_id: &str) -> Option<(&str, Direction)> {
    let mut parts = run_id.rsplitn(3, '-');
    let (_random, _stamp, rest) = (parts.next()?, parts.next()?, parts.next()?);
    [Direction::Failover, Direction::Failback].into_iter().find_map(|direction| {
        let plan = rest.strip_suffix(&format!("-{direction}"))?;
        (!plan.is_empty()).then_some((plan, direction))
    })
}

/// Removes `journal.new-PID` files whose process is gone (killed while creating the journal: the
/// journal never appeared, so nothing ran), and the directory if that leaves it empty.
fn remove_dead_side_files(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut removed = false;
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix("journal.new-").and_then(|p| p.parse::<u32>().ok()) else { continue };
        if !super::process::alive(pid) && std::fs::remove_file(entry.path()).is_ok() {
            tracing::info!("removed {}, left by a process killed while creating its journal", entry.path().display());
            removed = true;
        }
    }
    if removed {
        let _ = std::fs::remove_dir(dir); // fails, harmlessly, if anything else is there
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_name_their_plan_and_direction() {
        let now = SystemTime::UNIX_EPOCH;
        for plan in ["p", "us-west-2", "a-failover", "x-failback-y"] {
            for direction in [Direction::Failover, Direction::Failback] {
                let id = StateDir::new_run_id(plan, direction, now);
                assert_eq!(parse_run_id(&id), Some((plan, direction)), "{id}");
            }
        }
        assert_eq!(parse_run_id("nonsense"), None);
        assert_eq!(parse_run_id("-failover-1-2"), None);
    }

    #[test]
    fn scan_reports_what_is_not_a_run_and_removes_dead_side_files() {
        let root = crate::journal::tests::tempdir();
        let state = StateDir::new(&root);
        assert!(state.scan().unwrap().is_empty(), "no runs directory: no runs");
        let runs = root.join("runs");
        std::fs::create_dir_all(runs.join("ok")).unwrap();
        std::fs::write(runs.join("ok/journal.jsonl"), "x\n").unwrap();
        std::fs::write(runs.join("afile"), "").unwrap();
        std::fs::create_dir_all(runs.join("nojournal")).unwrap();
        std::fs::write(runs.join("nojournal/notes"), "").unwrap();
        std::fs::create_dir_all(runs.join("killed")).unwrap();
        std::fs::write(runs.join("killed/journal.new-4294967294"), "{}").unwrap();
        let found = state.scan().unwrap();
        let names: Vec<(&str, bool)> =
            found.iter().map(|d| (d.run_id(), matches!(d, RunDir::Journal { .. }))).collect();
        assert_eq!(names, vec![("afile", false), ("nojournal", false), ("ok", true)], "{found:?}");
        assert!(!runs.join("killed").exists(), "the dead side file and its directory are gone");

        std::fs::remove_dir_all(&runs).unwrap();
        std::fs::write(&runs, "").unwrap();
        assert!(matches!(state.scan(), Err(StateError::NotADirectory(p)) if p == runs));
        let file_root = root.join("runs");
        assert!(matches!(StateDir::new(&file_root).scan(), Err(StateError::NotADirectory(_))));
    }
}

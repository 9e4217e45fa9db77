//! The local state store, a directory (default `.drctl/`): one folder per run with its journal,
//! and plan locks.
//!
//! ```text
//! .drctl/
//!   runs/<run-id>/journal.jsonl
//!   locks/<plan>.lock
//! ```

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::store::{RunDir, RunSummary, StateError, StateStore, Store, StoreInfo};
use super::{Entry, Journal, JournalError, LockError, LockHolder, LockPolicy, PlanLock, Record, Scan};
use crate::plan::Direction;

/// Where runs and locks are kept.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
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

    /// Every run whose journal can be looked at, by run id (see [`StateStore::runs`]).
    pub fn runs(&self) -> Vec<RunSummary> {
        StateStore::from(self.clone()).runs()
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
                    location: dir.display().to_string(),
                    problem: "a file where a run directory belongs".into(),
                });
                continue;
            }
            remove_dead_side_files(&dir);
            let journal = dir.join("journal.jsonl");
            match std::fs::metadata(&journal) {
                Ok(m) if m.is_file() => found.push(RunDir::Journal { run_id, location: journal.display().to_string() }),
                Ok(_) => found.push(RunDir::Broken {
                    run_id,
                    location: journal.display().to_string(),
                    problem: "not a file".into(),
                }),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    // An empty directory is a journal being created right now, or a leftover.
                    if std::fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_some()) {
                        found.push(RunDir::Broken {
                            run_id,
                            location: journal.display().to_string(),
                            problem: "missing".into(),
                        });
                    }
                }
                Err(e) => found.push(RunDir::Broken {
                    run_id,
                    location: journal.display().to_string(),
                    problem: e.to_string(),
                }),
            }
        }
        found.sort_by(|a, b| a.run_id().cmp(b.run_id()));
        Ok(found)
    }
}

impl Store for StateDir {
    fn info(&self) -> StoreInfo {
        let root = std::path::absolute(&self.root).unwrap_or_else(|_| self.root.clone());
        StoreInfo { kind: "local", location: root.display().to_string(), region: None }
    }

    fn scan(&self) -> Result<Vec<RunDir>, StateError> {
        StateDir::scan(self)
    }

    fn find_run(&self, run_id: &str) -> Option<RunDir> {
        let journal = self.journal_path(run_id);
        let run_dir = journal.parent().unwrap_or(Path::new("."));
        match std::fs::metadata(run_dir) {
            Err(_) => None,
            Ok(m) if !m.is_dir() => Some(RunDir::Broken {
                run_id: run_id.to_string(),
                location: run_dir.display().to_string(),
                problem: "a file where a run directory belongs".into(),
            }),
            Ok(_) if !journal.exists() => None,
            Ok(_) => Some(RunDir::Journal { run_id: run_id.to_string(), location: journal.display().to_string() }),
        }
    }

    fn run_exists(&self, run_id: &str) -> bool {
        self.journal_path(run_id).parent().is_some_and(|d| d.exists())
    }

    fn read_journal(&self, run_id: &str) -> Result<Scan, JournalError> {
        super::scan_file(&self.journal_path(run_id))
    }

    fn create_journal(
        &self,
        run_id: &str,
        at: SystemTime,
        first: Record,
    ) -> Result<(Journal, Vec<Entry>), JournalError> {
        Journal::create(&self.journal_path(run_id), at, first)
    }

    fn open_journal(&self, run_id: &str, damaged_ok: bool) -> Result<(Journal, Scan), JournalError> {
        let path = self.journal_path(run_id);
        if damaged_ok {
            return Journal::open_damaged(&path);
        }
        let (journal, entries) = Journal::open(&path)?;
        Ok((journal, Scan { entries, ..Scan::default() }))
    }

    fn lock(&self, plan: &str, holder: LockHolder, policy: LockPolicy) -> Result<PlanLock, LockError> {
        PlanLock::acquire(&self.lock_path(plan), plan, holder, policy)
    }

    fn lock_holder(&self, plan: &str) -> Option<LockHolder> {
        PlanLock::holder_of(&self.lock_path(plan))
    }

    fn holder_live(&self, holder: &LockHolder) -> bool {
        !holder.is_dead()
    }

    fn plans_locked(&self) -> Result<Vec<String>, StateError> {
        let dir = self.root.join("locks");
        let Ok(entries) = std::fs::read_dir(&dir) else { return Ok(Vec::new()) };
        let mut plans: Vec<String> = entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().to_string_lossy().strip_suffix(".lock").map(str::to_string))
            .filter(|name| !name.starts_with('.'))
            .collect();
        plans.sort();
        Ok(plans)
    }

    fn create_drill_file(&self, path: &str, body: &[u8]) -> Result<bool, StateError> {
        let target = self.root.join("drills").join(path);
        let io = |source| StateError::Io { path: target.clone(), source };
        if target.exists() {
            return Ok(false);
        }
        let dir = target.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(io)?;
        // Written aside, then linked into place: the link fails if a file is there, and a reader
        // sees no file or the whole one.
        let temp = dir.join(format!(".{}.{}.tmp", path.rsplit('/').next().unwrap_or("report"), std::process::id()));
        let written = std::fs::File::create(&temp).and_then(|mut f| {
            std::io::Write::write_all(&mut f, body)?;
            f.sync_all()
        });
        let linked = written.and_then(|()| std::fs::hard_link(&temp, &target));
        let _ = std::fs::remove_file(&temp);
        match linked {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(io(e)),
        }
    }

    fn read_drill_file(&self, path: &str) -> Result<Option<Vec<u8>>, StateError> {
        let target = self.root.join("drills").join(path);
        match std::fs::read(&target) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StateError::Io { path: target, source }),
        }
    }

    fn drill_files(&self) -> Result<Vec<String>, StateError> {
        let mut found = Vec::new();
        let root = self.root.join("drills");
        for drill in names(&root)? {
            for stamp in names(&root.join(&drill))? {
                for name in names(&root.join(&drill).join(&stamp))? {
                    found.push(format!("{drill}/{stamp}/{name}"));
                }
            }
        }
        found.sort();
        Ok(found)
    }
}

/// The names in `dir` that are not hidden (temporary files are); none if it is not a directory.
fn names(dir: &Path) -> Result<Vec<String>, StateError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory) => {
            return Ok(Vec::new());
        }
        Err(source) => return Err(StateError::Io { path: dir.to_path_buf(), source }),
    };
    Ok(entries
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with('.'))
        .collect())
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
    use crate::journal::parse_run_id;

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

//! The state store seam: where runs' journals and plans' locks live. Two stores implement
//! [`Store`], the local directory ([`super::StateDir`], the default) and S3
//! ([`crate::state_s3::S3Store`], outside this module: the journal names no cloud crate); the engine and the run lifecycle hold a [`StateStore`] and never know
//! which one it is.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use serde::Serialize;

use super::{Entry, Journal, JournalError, LockError, LockHolder, LockPolicy, PlanLock, Record, Scan};
use crate::plan::Direction;

/// Where a store lives: what `drctl check` and messages show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoreInfo {
    /// `local` or `s3`.
    pub kind: &'static str,
    /// An absolute directory, or `s3://bucket/prefix/`.
    pub location: String,
    /// The S3 bucket's region (as configured for the client); `None` for a local directory.
    pub region: Option<String>,
}

/// What a state store does. Implementations keep every write durable before returning and never
/// overwrite a committed journal record.
pub trait Store: Send + Sync + fmt::Debug {
    /// Where the store lives.
    fn info(&self) -> StoreInfo;
    /// Every run, by id: a journal to read, or what is wrong with it. Sorted by run id.
    fn scan(&self) -> Result<Vec<RunDir>, StateError>;
    /// Run `run_id` alone (the id is already checked to be a plain name); `None` if absent.
    fn find_run(&self, run_id: &str) -> Option<RunDir>;
    /// Whether anything at all is stored under `run_id` (so a new run must take another id).
    fn run_exists(&self, run_id: &str) -> bool;
    /// Reads run `run_id`'s journal without stopping at damage.
    fn read_journal(&self, run_id: &str) -> Result<Scan, JournalError>;
    /// Creates the journal of a new run holding `first`; fails if the run has one.
    fn create_journal(
        &self,
        run_id: &str,
        at: SystemTime,
        first: Record,
    ) -> Result<(Journal, Vec<Entry>), JournalError>;
    /// Opens run `run_id`'s journal for appending, with what it holds. Damage is an error unless
    /// `damaged_ok` (to record an abandonment after it).
    fn open_journal(&self, run_id: &str, damaged_ok: bool) -> Result<(Journal, Scan), JournalError>;
    /// Takes the lock of `plan` for `holder`.
    fn lock(&self, plan: &str, holder: LockHolder, policy: LockPolicy) -> Result<PlanLock, LockError>;
    /// The current holder of `plan`'s lock, if one can be read.
    fn lock_holder(&self, plan: &str) -> Option<LockHolder>;
    /// Whether `holder` may still be running its run (not proven dead, lease not expired).
    fn holder_live(&self, holder: &LockHolder) -> bool;
    /// The plans that have a lock stored (held or left behind).
    fn plans_locked(&self) -> Result<Vec<String>, StateError>;
    /// Creates drill-report file `drills/PATH` (`PATH` is `DRILL/STAMP/NAME`, checked) unless one
    /// is there: `Ok(false)` when one is (it is left as it is).
    fn create_drill_file(&self, path: &str, body: &[u8]) -> Result<bool, StateError>;
    /// Drill-report file `drills/PATH`, if there is one.
    fn read_drill_file(&self, path: &str) -> Result<Option<Vec<u8>>, StateError>;
    /// Every drill-report file, as `DRILL/STAMP/NAME` under `drills/`, sorted.
    fn drill_files(&self) -> Result<Vec<String>, StateError>;
}

/// The state store a command works with: cheap to clone, shared by threads.
#[derive(Clone)]
pub struct StateStore(Arc<dyn Store>);

impl fmt::Debug for StateStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<S: Store + 'static> From<S> for StateStore {
    fn from(store: S) -> Self {
        StateStore(Arc::new(store))
    }
}

impl StateStore {
    /// The local state directory at `root`.
    pub fn local(root: impl Into<PathBuf>) -> StateStore {
        super::StateDir::new(root).into()
    }

    /// Where the store lives and, for S3, its region: for `drctl check` and messages.
    pub fn describe(&self) -> StoreInfo {
        self.0.info()
    }

    /// Whether the store can be read now (one listing of its locks on S3; the directory locally):
    /// for `drctl check`.
    pub fn reachable(&self) -> Result<(), StateError> {
        self.0.plans_locked().map(|_| ())
    }

    /// Every run, by id (see [`Store::scan`]).
    pub fn scan(&self) -> Result<Vec<RunDir>, StateError> {
        self.0.scan()
    }

    /// Run `run_id`, if the store has it; `None` also for ids that cannot name a run.
    pub fn find_run(&self, run_id: &str) -> Option<RunDir> {
        if run_id.is_empty() || run_id.contains('/') || run_id.starts_with('.') {
            return None;
        }
        self.0.find_run(run_id)
    }

    /// Whether anything is stored under `run_id`.
    pub fn run_exists(&self, run_id: &str) -> bool {
        self.0.run_exists(run_id)
    }

    /// Every run whose journal can be looked at, by run id (problems are left out; `scan` reports them).
    pub fn runs(&self) -> Vec<RunSummary> {
        let Ok(dirs) = self.scan() else { return Vec::new() };
        dirs.into_iter()
            .filter_map(|d| match d {
                RunDir::Journal { run_id, location } => Some(RunSummary { run_id, journal: location }),
                RunDir::Broken { .. } => None,
            })
            .collect()
    }

    /// Reads run `run_id`'s journal without stopping at damage.
    pub fn read_journal(&self, run_id: &str) -> Result<Scan, JournalError> {
        self.0.read_journal(run_id)
    }

    /// Run `run_id`'s entries; damage is an error naming where it is.
    pub fn read_entries(&self, run_id: &str) -> Result<Vec<Entry>, JournalError> {
        let location = self.find_run(run_id).map(|d| d.location().to_string()).unwrap_or_default();
        let scan = self.read_journal(run_id)?;
        match scan.damage.first() {
            Some(d) => Err(JournalError::Corrupt { path: location.into(), line: d.line, message: d.message.clone() }),
            None => Ok(scan.entries),
        }
    }

    /// Creates the journal of a new run holding `first`.
    pub fn create_journal(
        &self,
        run_id: &str,
        at: SystemTime,
        first: Record,
    ) -> Result<(Journal, Vec<Entry>), JournalError> {
        self.0.create_journal(run_id, at, first)
    }

    /// Opens a sound journal for appending, with its entries.
    pub fn open_journal(&self, run_id: &str) -> Result<(Journal, Vec<Entry>), JournalError> {
        let (journal, scan) = self.0.open_journal(run_id, false)?;
        Ok((journal, scan.entries))
    }

    /// Opens a journal for appending even though it is damaged, with what could be read.
    pub fn open_damaged_journal(&self, run_id: &str) -> Result<(Journal, Scan), JournalError> {
        self.0.open_journal(run_id, true)
    }

    /// Takes the lock of `plan`.
    pub fn lock(&self, plan: &str, holder: LockHolder, policy: LockPolicy) -> Result<PlanLock, LockError> {
        self.0.lock(plan, holder, policy)
    }

    /// The holder of `plan`'s lock, if any.
    pub fn lock_holder(&self, plan: &str) -> Option<LockHolder> {
        self.0.lock_holder(plan)
    }

    /// Whether `holder` may still be running.
    pub fn holder_live(&self, holder: &LockHolder) -> bool {
        self.0.holder_live(holder)
    }

    /// The plans with a stored lock.
    pub fn plans_locked(&self) -> Result<Vec<String>, StateError> {
        self.0.plans_locked()
    }

    /// Saves drill-report file `DRILL/STAMP/NAME` (never replacing one): `Ok(true)` if written,
    /// `Ok(false)` if the store already held these very bytes, an error if it holds others.
    pub fn save_drill_file(&self, path: &str, body: &[u8]) -> Result<bool, StateError> {
        check_drill_path(path).map_err(|message| self.drill_error(path, message))?;
        if self.0.create_drill_file(path, body)? {
            return Ok(true);
        }
        match self.0.read_drill_file(path)? {
            Some(there) if there == body => Ok(false),
            _ => Err(self.drill_error(path, "holds another report already; it was left as it is".into())),
        }
    }

    /// Drill-report file `DRILL/STAMP/NAME`, if the store has it.
    pub fn read_drill_file(&self, path: &str) -> Result<Option<Vec<u8>>, StateError> {
        check_drill_path(path).map_err(|message| self.drill_error(path, message))?;
        self.0.read_drill_file(path)
    }

    /// Every drill-report file (`DRILL/STAMP/NAME`), sorted.
    pub fn drill_files(&self) -> Result<Vec<String>, StateError> {
        Ok(self.0.drill_files()?.into_iter().filter(|p| check_drill_path(p).is_ok()).collect())
    }

    fn drill_error(&self, path: &str, message: String) -> StateError {
        let location = format!("{}/drills/{path}", self.describe().location.trim_end_matches('/'));
        StateError::DrillFile { location, message }
    }
}

/// A drill-report file's path is `DRILL/STAMP/NAME`, three plain names.
fn check_drill_path(path: &str) -> Result<(), String> {
    let parts: Vec<&str> = path.split('/').collect();
    let plain = |p: &&str| !p.is_empty() && !p.starts_with('.') && !p.contains('\\');
    if parts.len() == 3 && parts.iter().all(plain) {
        Ok(())
    } else {
        Err(format!("`{path}` is not DRILL/STAMP/NAME (three plain names)"))
    }
}

/// A run found in the state store.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub run_id: String,
    /// Where its journal is, for messages.
    pub journal: String,
}

/// One run of the store's `runs/`.
#[derive(Debug, Clone)]
pub enum RunDir {
    /// A run with its journal (not yet read), and where the journal is.
    Journal { run_id: String, location: String },
    /// Something that should be a run and cannot be read as one.
    Broken { run_id: String, location: String, problem: String },
}

impl RunDir {
    /// The run id its directory (or S3 prefix) name gives.
    pub fn run_id(&self) -> &str {
        match self {
            RunDir::Journal { run_id, .. } | RunDir::Broken { run_id, .. } => run_id,
        }
    }

    /// Where it is, for messages.
    pub fn location(&self) -> &str {
        match self {
            RunDir::Journal { location, .. } | RunDir::Broken { location, .. } => location,
        }
    }
}

/// The state store cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{0} is a file, not a directory; point --state-dir at a directory, or move the file away")]
    NotADirectory(PathBuf),
    #[error("cannot read the state directory {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("cannot read the state store {location}: {message}")]
    Remote { location: String, message: String },
    #[error("drill report {location}: {message}")]
    DrillFile { location: String, message: String },
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

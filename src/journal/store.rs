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

    /// Every run with a non-empty journal, oldest first.
    pub fn runs(&self) -> Vec<RunSummary> {
        let Ok(dir) = std::fs::read_dir(self.root.join("runs")) else { return Vec::new() };
        let mut runs: Vec<RunSummary> = dir
            .filter_map(Result::ok)
            .filter_map(|e| {
                let run_id = e.file_name().to_string_lossy().into_owned();
                let journal = e.path().join("journal.jsonl");
                // An empty journal is no run: it never recorded a start, so nothing can have acted.
                let started = std::fs::metadata(&journal).is_ok_and(|m| m.len() > 0);
                started.then_some(RunSummary { run_id, journal })
            })
            .collect();
        runs.sort_by_key(|r| {
            let started = std::fs::metadata(&r.journal).and_then(|m| m.created().or_else(|_| m.modified())).ok();
            (started, r.run_id.clone())
        });
        runs
    }
}

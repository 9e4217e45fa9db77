//! `drctl state migrate`: copies runs from one state store to another (local → S3, and back).
//!
//! Each run's journal is copied record for record (numbers and times kept) and read back from the
//! target before the run counts as copied. Nothing is copied while a run holds a lock in the source:
//! its journal is still growing. Runs already in the target with the same records are left as they
//! are, so a migration that stopped half-way can be run again. Drill reports (`drills/`) are copied
//! file by file the same way: created once, left alone when the target already has them.

use super::store::{RunDir, StateStore};
use super::{Entry, JournalError, StateError};

/// What a migration did, run by run.
#[derive(Debug, Default)]
pub struct Migrated {
    /// Runs copied.
    pub copied: Vec<String>,
    /// Runs the target already held, with the same records.
    pub already_there: Vec<String>,
    /// Runs left behind, with why (damaged journals: repair or abandon them first).
    pub skipped: Vec<(String, String)>,
    /// Locks left behind by runs no longer going on, not copied (a lock only matters while its run goes on).
    pub stale_locks: Vec<String>,
    /// Drill-report files (`DRILL/STAMP/NAME`) copied.
    pub drill_files_copied: Vec<String>,
    /// Drill-report files the target already held, byte for byte.
    pub drill_files_already_there: Vec<String>,
    /// Drill-report files left behind, with why (the target holds another file by that name).
    pub drill_files_skipped: Vec<(String, String)>,
}

/// Why a migration stopped.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(
        "plan `{plan}` is locked by {holder} in {from}: a run is going on, and its journal is still growing. Let it \
         finish (or `drctl abandon` it), then migrate"
    )]
    RunGoingOn { plan: String, holder: String, from: String },
    #[error(
        "run {run_id} is in both stores with different records ({to} has {target} records, {from} has {in_source}); \
         it was run on both. Keep one: move the other store's copy away, then migrate"
    )]
    Diverged { run_id: String, from: String, to: String, in_source: usize, target: usize },
    #[error("the source and the target are the same store ({0})")]
    SameStore(String),
}

/// Copies every run of `from` into `to`.
pub fn migrate(from: &StateStore, to: &StateStore) -> Result<Migrated, MigrateError> {
    let (source, target) = (from.describe(), to.describe());
    if source == target {
        return Err(MigrateError::SameStore(source.location));
    }
    let mut done = Migrated::default();
    for plan in from.plans_locked()? {
        match from.lock_holder(&plan) {
            Some(holder) if from.holder_live(&holder) => {
                let (holder, from) = (holder.describe(), source.location.clone());
                return Err(MigrateError::RunGoingOn { plan, holder, from });
            }
            _ => done.stale_locks.push(plan),
        }
    }
    for dir in from.scan()? {
        let run_id = match dir {
            RunDir::Broken { run_id, location, problem } => {
                done.skipped.push((run_id, format!("{location}: {problem}")));
                continue;
            }
            RunDir::Journal { run_id, .. } => run_id,
        };
        let scan = from.read_journal(&run_id)?;
        if let Some(damage) = scan.damage.first() {
            let why = format!("its journal is damaged at line {} ({})", damage.line, damage.message);
            done.skipped.push((run_id, why));
            continue;
        }
        if scan.entries.is_empty() {
            done.skipped.push((run_id, "its journal is empty".into()));
            continue;
        }
        if to.find_run(&run_id).is_some() {
            let existing = to.read_entries(&run_id)?;
            if existing == scan.entries {
                done.already_there.push(run_id);
                continue;
            }
            return Err(MigrateError::Diverged {
                run_id,
                from: source.location.clone(),
                to: target.location.clone(),
                in_source: scan.entries.len(),
                target: existing.len(),
            });
        }
        copy(to, &run_id, &scan.entries)?;
        if to.read_entries(&run_id)? != scan.entries {
            return Err(MigrateError::Journal(JournalError::Remote {
                location: target.location.clone(),
                message: format!(
                    "run {run_id} reads back differently after copying; nothing was removed from the source"
                ),
            }));
        }
        done.copied.push(run_id);
    }
    copy_drill_files(from, to, &mut done)?;
    Ok(done)
}

/// Copies every drill-report file of `from` that `to` lacks; files already there are compared.
fn copy_drill_files(from: &StateStore, to: &StateStore, done: &mut Migrated) -> Result<(), StateError> {
    for path in from.drill_files()? {
        let Some(body) = from.read_drill_file(&path)? else { continue };
        match to.save_drill_file(&path, &body) {
            Ok(true) => done.drill_files_copied.push(path),
            Ok(false) => done.drill_files_already_there.push(path),
            Err(e @ StateError::DrillFile { .. }) => done.drill_files_skipped.push((path, e.to_string())),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Writes `entries` as run `run_id`'s journal in `to`: the first record, then the rest in one commit.
fn copy(to: &StateStore, run_id: &str, entries: &[Entry]) -> Result<(), JournalError> {
    let first = &entries[0];
    let (mut journal, _) = to.create_journal(run_id, first.at, first.record.clone())?;
    journal.write(&entries[1..])
}

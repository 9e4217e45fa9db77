//! The journal: an append-only, fsynced record of a run. Every state transition and every step's
//! outputs are written and synced before the run proceeds, so a crashed run can be rebuilt from it
//! (see [`crate::engine::state`]) and resumed, on this machine or another.

mod local;
pub mod location;
pub mod lock;
pub mod migrate;
mod process;
pub mod read;
mod store;

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

pub use local::StateDir;
pub use lock::{LockError, LockHolder, LockPolicy, PlanLock, hostname, parse_holder};
pub use read::{Damage, Ending, Scan, scan_bytes};
pub use store::{RunDir, RunSummary, StateError, StateStore, Store, StoreInfo, parse_run_id};

use crate::plan::Direction;
use crate::step::{Outputs, Receipt};

/// What happened: one line of the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Record {
    /// A new run of `plan` in `direction`.
    RunStarted {
        run_id: String,
        plan: String,
        plan_path: String,
        plan_digest: String,
        direction: Direction,
        /// When the outage began, if the operator said; RTO is measured from it.
        #[serde(default, with = "time_opt")]
        incident_start: Option<SystemTime>,
        host: String,
        pid: u32,
        drctl_version: String,
        /// The step ids of the direction, in plan order.
        steps: Vec<String>,
        /// The plan's variables as this run resolved them, with where each value came from
        /// (absent in journals written before plans had variables).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        vars: Vec<crate::plan::vars::ResolvedVar>,
    },
    /// The run continues after a crash, an interruption or a failure.
    RunResumed {
        host: String,
        pid: u32,
        plan_digest: String,
        /// The plan changed since the run started and the operator forced the resume.
        plan_changed: bool,
        /// With a changed plan, its step ids in order: the run continues with these steps (those
        /// that already succeeded keep their results). Empty when the plan is unchanged.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        steps: Vec<String>,
    },
    /// A step attempt begins (it observes first).
    StepStarted { step: String, attempt: u32 },
    /// Observation found the effect absent; the step is about to change the world.
    StepActing { step: String, attempt: u32 },
    /// The step acted and learned `receipt`, which its later phases (and a resumed run) get back.
    /// Only steps whose receipt holds something write it.
    StepActed { step: String, attempt: u32, receipt: Receipt },
    /// A look at whether the step's effect is real failed (`consecutive` in a row); the engine
    /// tolerates a few before the attempt fails.
    StepWaitError { step: String, attempt: u32, error: String, consecutive: u32 },
    /// An attempt failed with a retryable error; another follows after `delay_ms`.
    StepRetrying { step: String, attempt: u32, error: String, delay_ms: u64 },
    /// The step's effect is in place.
    StepSucceeded {
        step: String,
        outputs: Outputs,
        /// Observation found the effect already there; nothing was changed.
        already_done: bool,
        /// A pure check passed (absent in journals written before checks were told apart).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        passed: bool,
    },
    /// The step failed for good.
    StepFailed {
        step: String,
        error: String,
        /// The step's `on_failure` is `continue`: the run goes on, the steps after it included.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        continued: bool,
    },
    /// The step will not run in this attempt of the run (a dependency failed).
    StepSkipped { step: String, reason: String },
    /// The operator stopped the run (Ctrl-C, SIGTERM); running steps were cancelled.
    RunInterrupted { reason: String },
    /// The run ended.
    RunFinished { succeeded: bool, message: String },
    /// The operator gave up on the run; it will not be resumed.
    RunAbandoned {
        by: String,
        /// The journal's damaged lines the operator saw when abandoning (empty for a sound journal).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        damaged_lines: Vec<usize>,
    },
    /// This process took the plan's lock over from `previous`, whose lease had expired or which
    /// `--break-lock` displaced; `previous` may still be running until its next journal write is refused.
    LockTakenOver {
        previous: String,
        /// `expired` or `--break-lock` (or, on a local state directory, why the holder was replaced).
        reason: String,
    },
}

impl Record {
    /// The record's name as the journal spells it: `step_succeeded`, `run_finished`...
    pub fn event(&self) -> &'static str {
        match self {
            Record::RunStarted { .. } => "run_started",
            Record::RunResumed { .. } => "run_resumed",
            Record::StepStarted { .. } => "step_started",
            Record::StepActing { .. } => "step_acting",
            Record::StepActed { .. } => "step_acted",
            Record::StepWaitError { .. } => "step_wait_error",
            Record::StepRetrying { .. } => "step_retrying",
            Record::StepSucceeded { .. } => "step_succeeded",
            Record::StepFailed { .. } => "step_failed",
            Record::StepSkipped { .. } => "step_skipped",
            Record::RunInterrupted { .. } => "run_interrupted",
            Record::RunFinished { .. } => "run_finished",
            Record::RunAbandoned { .. } => "run_abandoned",
            Record::LockTakenOver { .. } => "lock_taken_over",
        }
    }
}

/// A record with its sequence number and wall-clock time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub seq: u64,
    #[serde(with = "time")]
    pub at: SystemTime,
    #[serde(flatten)]
    pub record: Record,
}

/// Appends records to one run's journal, wherever the state store keeps it.
pub struct Journal {
    sink: Box<dyn Sink>,
    location: String,
    next_seq: u64,
}

/// Where a journal's commits go: a local file, or one S3 object per commit.
pub trait Sink: Send {
    /// Stores `bytes` (whole JSON lines, the entries numbered from `first_seq`) durably, or fails
    /// without storing anything that a reader would take for committed.
    fn commit(&mut self, first_seq: u64, bytes: &[u8]) -> Result<(), JournalError>;
}

/// A journal that cannot be read back or written.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot access the journal {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error(
        "{path}:{line}: the journal is damaged ({message}); it was edited, or not written by this version of drctl"
    )]
    Corrupt { path: PathBuf, line: usize, message: String },
    /// The remote store could not be reached or refused the request.
    #[error("cannot access the journal {location}: {message}")]
    Remote { location: String, message: String },
    /// Another process wrote to this run: this one lost its lease and must act no further.
    #[error("{location}: {message}")]
    Fenced { location: String, message: String },
}

impl Journal {
    /// A journal that commits through `sink`, whose next entry is numbered `next_seq`.
    pub fn with_sink(sink: Box<dyn Sink>, location: String, next_seq: u64) -> Journal {
        Journal { sink, location, next_seq }
    }

    /// Creates a new journal holding `first` (a run's `run_started`); fails if one exists at `path`.
    /// The journal appears whole or not at all: the record is written and synced to a side file that
    /// is then linked into place, so a crash never leaves an empty journal behind.
    pub fn create(path: &Path, at: SystemTime, first: Record) -> Result<(Journal, Vec<Entry>), JournalError> {
        let io = |source| JournalError::Io { path: path.to_path_buf(), source };
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(io)?;
        let side = path.with_extension(format!("new-{}", std::process::id()));
        let entry = Entry { seq: 1, at, record: first };
        let line = encode(std::slice::from_ref(&entry));
        let written = File::create(&side).and_then(|mut f| f.write_all(&line).and_then(|_| f.sync_all()));
        let linked = written.and_then(|_| std::fs::hard_link(&side, path));
        let _ = std::fs::remove_file(&side);
        linked.map_err(io)?;
        // The new directory entry must survive a crash too.
        File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
        let file = OpenOptions::new().append(true).open(path).map_err(io)?;
        Ok((Journal::file(file, path, 2), vec![entry]))
    }

    fn file(file: File, path: &Path, next_seq: u64) -> Journal {
        let sink = FileSink { file, path: path.to_path_buf() };
        Journal { sink: Box::new(sink), location: path.display().to_string(), next_seq }
    }

    /// Opens an existing journal for appending after reading its entries. A torn last line (a crash
    /// in the middle of a write) is cut off; a damaged line is an error naming it.
    pub fn open(path: &Path) -> Result<(Journal, Vec<Entry>), JournalError> {
        let scan = scan_file(path)?;
        if let Some(damage) = scan.damage.first() {
            return Err(corrupt(path, damage));
        }
        let (journal, scan) = Journal::open_scanned(path, scan)?;
        Ok((journal, scan.entries))
    }

    /// Opens a journal for appending even though it has damaged lines (to record its abandonment),
    /// with what could be read. A torn last line is cut off.
    pub fn open_damaged(path: &Path) -> Result<(Journal, Scan), JournalError> {
        let scan = scan_file(path)?;
        Journal::open_scanned(path, scan)
    }

    fn open_scanned(path: &Path, scan: Scan) -> Result<(Journal, Scan), JournalError> {
        let io = |source| JournalError::Io { path: path.to_path_buf(), source };
        let file = OpenOptions::new().append(true).open(path).map_err(io)?;
        if file.metadata().map_err(io)?.len() != scan.valid_len {
            file.set_len(scan.valid_len).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        let next_seq = scan.entries.last().map_or(1, |e| e.seq + 1);
        Ok((Journal::file(file, path, next_seq), scan))
    }

    /// Appends records stamped `at` and syncs them to disk before returning (one sync for the batch).
    pub fn append(&mut self, at: SystemTime, records: Vec<Record>) -> Result<Vec<Entry>, JournalError> {
        let first = self.next_seq;
        let entries: Vec<Entry> =
            records.into_iter().zip(first..).map(|(record, seq)| Entry { seq, at, record }).collect();
        self.write(&entries)?;
        Ok(entries)
    }

    /// The sequence number the next entry must carry.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Appends entries already numbered from [`Journal::next_seq`] and makes them durable before
    /// returning (one commit for the batch: concurrent steps' records are group-committed).
    pub fn write(&mut self, entries: &[Entry]) -> Result<(), JournalError> {
        if entries.is_empty() {
            return Ok(());
        }
        for (entry, seq) in entries.iter().zip(self.next_seq..) {
            assert_eq!(entry.seq, seq, "journal entries are numbered in order");
        }
        self.sink.commit(self.next_seq, &encode(entries))?;
        self.next_seq += entries.len() as u64;
        Ok(())
    }

    /// Where the journal lives (a file, or `s3://bucket/prefix/runs/RUN/journal/`).
    pub fn location(&self) -> &str {
        &self.location
    }
}

/// Entries as journal lines, each ending in a newline.
pub fn encode(entries: &[Entry]) -> Vec<u8> {
    let mut buffer = Vec::new();
    for entry in entries {
        serde_json::to_writer(&mut buffer, entry).expect("journal records always serialize");
        buffer.push(b'\n');
    }
    buffer
}

/// A local journal file: appended to, then `fdatasync`ed.
struct FileSink {
    file: File,
    path: PathBuf,
}

impl Sink for FileSink {
    fn commit(&mut self, _first_seq: u64, bytes: &[u8]) -> Result<(), JournalError> {
        let io = |source| JournalError::Io { path: self.path.clone(), source };
        self.file.write_all(bytes).map_err(io)?;
        self.file.sync_data().map_err(io)
    }
}

/// Reads every entry of the journal at `path` (a torn last line is ignored); a damaged line is an
/// error naming the file and the line.
pub fn read(path: &Path) -> Result<Vec<Entry>, JournalError> {
    let scan = scan_file(path)?;
    match scan.damage.first() {
        Some(damage) => Err(corrupt(path, damage)),
        None => Ok(scan.entries),
    }
}

/// Reads the journal at `path` without stopping at damage (see [`scan_bytes`]).
pub fn scan_file(path: &Path) -> Result<Scan, JournalError> {
    let bytes = std::fs::read(path).map_err(|source| JournalError::Io { path: path.to_path_buf(), source })?;
    Ok(scan_bytes(&bytes))
}

fn corrupt(path: &Path, damage: &Damage) -> JournalError {
    JournalError::Corrupt { path: path.to_path_buf(), line: damage.line, message: damage.message.clone() }
}

/// RFC 3339 timestamps in the journal, readable by people and by other tools.
pub mod time {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes a time as RFC 3339 with milliseconds.
    pub fn serialize<S: Serializer>(time: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::clock::rfc3339(*time))
    }

    /// Reads an RFC 3339 time.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_rfc3339_weak(&text).map_err(serde::de::Error::custom)
    }
}

pub(crate) mod time_opt {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(time: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
        match time {
            Some(t) => super::time::serialize(t, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SystemTime>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|text| humantime::parse_rfc3339_weak(&text).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Duration;

    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
    }

    #[test]
    fn appends_and_reads_back() {
        let dir = tempdir();
        let path = dir.join("journal.jsonl");
        let (mut journal, _) = Journal::create(&path, at(0), started()).unwrap();
        journal.append(at(1), vec![Record::StepSkipped { step: "b".into(), reason: "x".into() }]).unwrap();
        let entries = read(&path).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1].seq, 2);
        assert_eq!(entries[1].at, at(1));
        assert!(Journal::create(&path, at(2), started()).is_err(), "an existing journal is never overwritten");
        assert_eq!(read(&path).unwrap().len(), 2);
        let leftovers = std::fs::read_dir(&dir).unwrap().count();
        assert_eq!(leftovers, 1, "no side file is left behind");
    }

    #[test]
    fn a_torn_tail_is_cut_and_appending_continues() {
        let dir = tempdir();
        let path = dir.join("journal.jsonl");
        let (journal, _) = Journal::create(&path, at(0), started()).unwrap();
        drop(journal);
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"{\"seq\":2,\"at\":\"20").unwrap();
        let (mut journal, entries) = Journal::open(&path).unwrap();
        assert_eq!(entries.len(), 1);
        journal.append(at(2), vec![Record::RunInterrupted { reason: "test".into() }]).unwrap();
        let entries = read(&path).unwrap();
        assert_eq!(entries.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 2]);
    }

    #[test]
    fn a_damaged_middle_line_is_an_error_naming_the_line() {
        let dir = tempdir();
        let path = dir.join("journal.jsonl");
        std::fs::write(&path, "not json\n").unwrap();
        let err = read(&path).unwrap_err().to_string();
        assert!(err.contains("journal.jsonl:1"), "{err}");
    }

    fn started() -> Record {
        Record::StepStarted { step: "a".into(), attempt: 1 }
    }

    pub(crate) fn tempdir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("drctl-test-{}-{}", std::process::id(), fastrand::u64(..)));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}

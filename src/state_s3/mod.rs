//! The S3 state store: every journal commit is one object created with `If-None-Match: *`, and
//! the plan lock is a lease renewed with `If-Match` (see [`lease`]).
//!
//! ```text
//! s3://BUCKET/PREFIX/
//!   runs/<run-id>/journal/000000000001.json   one object per commit: JSON lines from record 1
//!   runs/<run-id>/journal/000000000002.json   ...named by the number of their first record
//!   locks/<plan>.json                         the lease: holder, expires_at, token
//!   drills/<drill>/<stamp>/report.json        drill reports, each created with If-None-Match: *
//! ```
//!
//! A record number is written once: a process that lost its lease without knowing it (paused,
//! partitioned) finds its next commit refused with 412 by the record the new holder wrote, and stops.
//! The store's requests run on a small runtime of their own, so the synchronous [`Store`] calls work
//! from inside the engine's runtime as a local file's `fsync` does.

mod client;
mod journal;
pub mod lease;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

pub use crate::journal::location::{DEFAULT_LEASE, S3Location};
pub use client::{Failure, block};

use crate::journal::{
    Entry, Journal, JournalError, LockError, LockHolder, LockPolicy, PlanLock, Record, Scan, parse_run_id,
};
use crate::journal::{RunDir, StateError, Store, StoreInfo};
use lease::LeaseState;

/// State kept in an S3 bucket under a prefix.
#[derive(Debug, Clone)]
pub struct S3Store {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: aws_sdk_s3::Client,
    location: S3Location,
    region: Option<String>,
    /// The leases this process holds, by plan: journal commits check theirs first.
    leases: Mutex<HashMap<String, Weak<LeaseState>>>,
}

impl S3Store {
    /// Connects to the bucket of `location` through the standard credential chain (no request is
    /// made until the store is used).
    pub fn open(location: S3Location) -> S3Store {
        let (client, region) = client::connect(&location);
        S3Store::with_client(client, region, location)
    }

    /// A store using `client` (tests give a mocked one).
    pub fn with_client(client: aws_sdk_s3::Client, region: Option<String>, location: S3Location) -> S3Store {
        S3Store { inner: Arc::new(Inner { client, location, region, leases: Mutex::new(HashMap::new()) }) }
    }

    fn key(&self, rest: &str) -> String {
        format!("{}{rest}", self.inner.location.prefix)
    }

    fn url(&self, rest: &str) -> String {
        format!("s3://{}/{}", self.inner.location.bucket, self.key(rest))
    }

    fn journal_prefix(&self, run_id: &str) -> String {
        format!("runs/{run_id}/journal/")
    }

    fn lease_of(&self, run_id: &str) -> Option<Arc<LeaseState>> {
        let (plan, _) = parse_run_id(run_id)?;
        self.inner.leases.lock().expect("not poisoned").get(plan).and_then(Weak::upgrade)
    }

    /// Keys under `rest` (relative to the prefix), relative to the prefix, sorted.
    fn list(&self, rest: &str, max: Option<i32>) -> Result<Vec<String>, String> {
        let client = self.inner.client.clone();
        let bucket = self.inner.location.bucket.clone();
        let prefix = self.key(rest);
        let strip = self.inner.location.prefix.len();
        block(async move { client::list(&client, &bucket, &prefix, max).await })
            .map(|keys| keys.into_iter().map(|k| k[strip.min(k.len())..].to_string()).collect())
    }

    fn remote(&self, message: String) -> StateError {
        StateError::Remote { location: self.url(""), message }
    }

    /// Reads an object (relative to the prefix): `None` if absent.
    fn get(&self, rest: &str) -> Result<Option<(Vec<u8>, String)>, Failure> {
        let client = self.inner.client.clone();
        let bucket = self.inner.location.bucket.clone();
        let key = self.key(rest);
        block(async move { client::get(&client, &bucket, &key).await })
    }

    /// Creates an object that must not exist (relative to the prefix).
    fn put_new(&self, rest: &str, body: Vec<u8>) -> Result<String, Failure> {
        let client = self.inner.client.clone();
        let bucket = self.inner.location.bucket.clone();
        let key = self.key(rest);
        block(async move { client::put(&client, &bucket, &key, body, client::Condition::Absent).await })
    }

    /// Where the store lives, as `s3://bucket/prefix/`.
    pub fn location(&self) -> &S3Location {
        &self.inner.location
    }
}

impl Store for S3Store {
    fn info(&self) -> StoreInfo {
        StoreInfo { kind: "s3", location: self.url(""), region: self.inner.region.clone() }
    }

    fn scan(&self) -> Result<Vec<RunDir>, StateError> {
        let keys = self.list("runs/", None).map_err(|m| self.remote(m))?;
        let mut runs: BTreeMap<String, (bool, Vec<String>)> = BTreeMap::new();
        for key in keys {
            let Some(rest) = key.strip_prefix("runs/") else { continue };
            let (run_id, inside) = rest.split_once('/').unwrap_or((rest, ""));
            let entry = runs.entry(run_id.to_string()).or_default();
            if inside.starts_with("journal/") {
                entry.0 = true;
            } else {
                entry.1.push(inside.to_string());
            }
        }
        Ok(runs
            .into_iter()
            .map(|(run_id, (journal, others))| {
                let location = self.url(&self.journal_prefix(&run_id));
                if journal {
                    RunDir::Journal { run_id, location }
                } else {
                    let problem = format!("no journal objects, only {}", others.join(", "));
                    RunDir::Broken { run_id, location, problem }
                }
            })
            .collect())
    }

    fn find_run(&self, run_id: &str) -> Option<RunDir> {
        let location = self.url(&self.journal_prefix(run_id));
        match self.list(&self.journal_prefix(run_id), Some(1)) {
            Ok(keys) if !keys.is_empty() => Some(RunDir::Journal { run_id: run_id.to_string(), location }),
            Ok(_) if self.run_exists(run_id) => {
                let problem = "no journal objects".to_string();
                Some(RunDir::Broken { run_id: run_id.to_string(), location, problem })
            }
            Ok(_) => None,
            Err(problem) => Some(RunDir::Broken { run_id: run_id.to_string(), location, problem }),
        }
    }

    fn run_exists(&self, run_id: &str) -> bool {
        // Unreadable counts as existing: a new run then takes another id rather than risk a clash.
        !matches!(self.list(&format!("runs/{run_id}/"), Some(1)), Ok(keys) if keys.is_empty())
    }

    fn read_journal(&self, run_id: &str) -> Result<Scan, JournalError> {
        journal::read(self, run_id)
    }

    fn create_journal(
        &self,
        run_id: &str,
        at: SystemTime,
        first: Record,
    ) -> Result<(Journal, Vec<Entry>), JournalError> {
        let entry = Entry { seq: 1, at, record: first };
        let mut sink = journal::ObjectSink::new(self.clone(), run_id, self.lease_of(run_id));
        crate::journal::Sink::commit(&mut sink, 1, &crate::journal::encode(std::slice::from_ref(&entry)))?;
        let location = self.url(&self.journal_prefix(run_id));
        Ok((Journal::with_sink(Box::new(sink), location, 2), vec![entry]))
    }

    fn open_journal(&self, run_id: &str, damaged_ok: bool) -> Result<(Journal, Scan), JournalError> {
        let listed = journal::read_with_keys(self, run_id)?;
        let location = self.url(&self.journal_prefix(run_id));
        if let Some(damage) = listed.scan.damage.first().filter(|_| !damaged_ok) {
            let (path, line, message) = (location.clone().into(), damage.line, damage.message.clone());
            return Err(JournalError::Corrupt { path, line, message });
        }
        let next_seq = listed.next_seq();
        let sink = journal::ObjectSink::new(self.clone(), run_id, self.lease_of(run_id));
        Ok((Journal::with_sink(Box::new(sink), location, next_seq), listed.scan))
    }

    fn lock(&self, plan: &str, holder: LockHolder, policy: LockPolicy) -> Result<PlanLock, LockError> {
        let (lock, state) = lease::acquire(self, plan, holder, policy)?;
        self.inner.leases.lock().expect("not poisoned").insert(plan.to_string(), Arc::downgrade(&state));
        Ok(lock)
    }

    fn lock_holder(&self, plan: &str) -> Option<LockHolder> {
        let (bytes, _) = self.get(&lease::key(plan)).ok()??;
        crate::journal::parse_holder(&bytes).ok()
    }

    fn holder_live(&self, holder: &LockHolder) -> bool {
        !holder.expired(crate::clock::wall_now())
    }

    fn plans_locked(&self) -> Result<Vec<String>, StateError> {
        let keys = self.list("locks/", None).map_err(|m| self.remote(m))?;
        Ok(keys
            .iter()
            .filter_map(|k| k.strip_prefix("locks/")?.strip_suffix(".json").map(str::to_string))
            .filter(|p| !p.contains('/'))
            .collect())
    }

    fn create_drill_file(&self, path: &str, body: &[u8]) -> Result<bool, StateError> {
        loop {
            return match self.put_new(&format!("drills/{path}"), body.to_vec()) {
                Ok(_) => Ok(true),
                Err(Failure::PreconditionFailed) => Ok(false),
                Err(Failure::Conflict) => {
                    std::thread::sleep(conflict_pause());
                    continue;
                }
                Err(failure) => Err(self.remote(format!("cannot save drills/{path}: {failure}"))),
            };
        }
    }

    fn read_drill_file(&self, path: &str) -> Result<Option<Vec<u8>>, StateError> {
        let got = self.get(&format!("drills/{path}")).map_err(|f| self.remote(format!("drills/{path}: {f}")))?;
        Ok(got.map(|(bytes, _)| bytes))
    }

    fn drill_files(&self) -> Result<Vec<String>, StateError> {
        let keys = self.list("drills/", None).map_err(|m| self.remote(m))?;
        Ok(keys.into_iter().filter_map(|k| k.strip_prefix("drills/").map(str::to_string)).collect())
    }
}

/// How long to wait before trying again after a 409 ConditionalRequestConflict (a concurrent
/// conditional write to the same key): a little, with jitter, so contenders spread out.
fn conflict_pause() -> Duration {
    Duration::from_millis(20 + fastrand::u64(..80))
}

#[cfg(test)]
mod tests;

//! A run's journal on S3: one object per commit, `runs/RUN/journal/SEQ.json`, created with
//! `If-None-Match: *`. Reading lists the objects and fetches them concurrently; a missing record,
//! an object that is not a commit, or a damaged one is reported as damage, never skipped.

use std::sync::Arc;

use futures::StreamExt;

use super::client::{self, Failure, block};
use super::lease::LeaseState;
use super::{S3Store, conflict_pause};
use crate::journal::read::{Damage, Scan, scan_bytes};
use crate::journal::{JournalError, Sink};

/// Digits of the record number in an object's name: sorted by name is sorted by number.
const SEQ_DIGITS: usize = 12;

/// How many objects are fetched at once when reading a journal.
const CONCURRENT_GETS: usize = 16;

/// The object name of the commit whose first record is `seq`.
pub fn object_name(seq: u64) -> String {
    format!("{seq:0SEQ_DIGITS$}.json")
}

/// Commits of one run, each a new object.
pub struct ObjectSink {
    store: S3Store,
    run_id: String,
    /// The plan lease this process holds for the run, checked before each commit.
    lease: Option<Arc<LeaseState>>,
}

impl ObjectSink {
    pub fn new(store: S3Store, run_id: &str, lease: Option<Arc<LeaseState>>) -> ObjectSink {
        ObjectSink { store, run_id: run_id.to_string(), lease }
    }

    fn fenced(&self, message: String) -> JournalError {
        JournalError::Fenced { location: self.store.url(&self.store.journal_prefix(&self.run_id)), message }
    }
}

impl Sink for ObjectSink {
    fn commit(&mut self, first_seq: u64, bytes: &[u8]) -> Result<(), JournalError> {
        if let Some(lease) = &self.lease
            && let Err(why) = lease.check(crate::clock::wall_now())
        {
            return Err(self.fenced(format!("{why}; this process stops here and acts no further")));
        }
        let rest = format!("{}{}", self.store.journal_prefix(&self.run_id), object_name(first_seq));
        loop {
            match self.store.put_new(&rest, bytes.to_vec()) {
                Ok(_) => return Ok(()),
                Err(Failure::PreconditionFailed) => {}
                Err(Failure::Conflict) => std::thread::sleep(conflict_pause()),
                Err(Failure::Other(message)) => {
                    let location = self.store.url(&rest);
                    return Err(JournalError::Remote { location, message });
                }
            }
            // The number is taken: by our own earlier attempt whose answer was lost, or by another process.
            match self.store.get(&rest) {
                Ok(Some((existing, _))) if existing == bytes => return Ok(()),
                Ok(Some(_)) => {
                    if let Some(lease) = &self.lease {
                        lease.mark_lost("another process wrote to this run");
                    }
                    return Err(self.fenced(format!(
                        "record {first_seq} of run {} was already written by another process (the write was refused \
                         with 412): this process lost the plan's lock, its lease having expired or been broken \
                         while it was paused or cut off, and another run took over. It stops here and acts no \
                         further; `drctl status {}` shows the run",
                        self.run_id, self.run_id
                    )));
                }
                Ok(None) => {} // a conflicting write went away: try again
                Err(e) => {
                    return Err(JournalError::Remote { location: self.store.url(&rest), message: e.to_string() });
                }
            }
        }
    }
}

/// An object's bytes and ETag.
type Object = (Vec<u8>, String);

/// A journal read from its objects, with the object names.
pub struct Listed {
    pub scan: Scan,
    /// The record numbers the object names give.
    pub seqs: Vec<u64>,
}

impl Listed {
    /// The number a new commit takes: after every record read and every object seen.
    pub fn next_seq(&self) -> u64 {
        let after_entries = self.scan.entries.last().map_or(1, |e| e.seq + 1);
        let after_objects = self.seqs.iter().max().map_or(1, |s| s + 1);
        after_entries.max(after_objects)
    }
}

/// Reads run `run_id`'s journal.
pub fn read(store: &S3Store, run_id: &str) -> Result<Scan, JournalError> {
    Ok(read_with_keys(store, run_id)?.scan)
}

/// Reads run `run_id`'s journal: lists its objects, fetches them concurrently, and reads them in
/// order as one journal; damage names the object it is in.
pub fn read_with_keys(store: &S3Store, run_id: &str) -> Result<Listed, JournalError> {
    let prefix = store.journal_prefix(run_id);
    let location = store.url(&prefix);
    let remote = |message: String| JournalError::Remote { location: location.clone(), message };
    let names: Vec<String> =
        store.list(&prefix, None).map_err(remote)?.iter().map(|k| k[prefix.len()..].to_string()).collect();
    let client = store.inner.client.clone();
    let bucket = store.inner.location.bucket.clone();
    let keys: Vec<String> = names.iter().map(|n| store.key(&format!("{prefix}{n}"))).collect();
    let bodies: Vec<Result<Option<Object>, Failure>> = block(async move {
        futures::stream::iter(keys)
            .map(|key| {
                let client = client.clone();
                let bucket = bucket.clone();
                async move { client::get(&client, &bucket, &key).await }
            })
            .buffered(CONCURRENT_GETS)
            .collect()
            .await
    });
    let mut bytes = Vec::new();
    let mut objects: Vec<(usize, String)> = Vec::new(); // (first line, name)
    let mut problems: Vec<Damage> = Vec::new();
    let mut seqs = Vec::new();
    let mut lines = 0usize;
    for (name, body) in names.iter().zip(bodies) {
        let body = match body.map_err(|e| remote(e.to_string()))? {
            Some((body, _)) => body,
            None => continue, // deleted between the listing and the read
        };
        let Some(seq) = name.strip_suffix(".json").and_then(|n| n.parse::<u64>().ok()) else {
            problems.push(Damage {
                line: lines + 1,
                message: format!("{name}: an object that is not a journal commit (its name is not a record number)"),
            });
            continue;
        };
        seqs.push(seq);
        objects.push((lines + 1, name.clone()));
        if let Some(first) = first_seq(&body).filter(|first| *first != seq) {
            problems.push(Damage {
                line: lines + 1,
                message: format!("{name} holds record {first}, not record {seq}: it was copied or renamed"),
            });
        }
        bytes.extend_from_slice(&body);
        if body.last() != Some(&b'\n') {
            bytes.push(b'\n'); // an object is written whole: a missing newline is damage, not a torn write
        }
        lines = bytes.iter().filter(|b| **b == b'\n').count();
    }
    let mut scan = scan_bytes(&bytes);
    for damage in &mut scan.damage {
        if let Some((_, name)) = objects.iter().rev().find(|(first, _)| *first <= damage.line) {
            damage.message = format!("in {name}: {}", damage.message);
        }
    }
    scan.damage.extend(problems);
    scan.damage.sort_by_key(|d| d.line);
    Ok(Listed { scan, seqs })
}

/// The `seq` of an object's first line, if it can be read.
fn first_seq(body: &[u8]) -> Option<u64> {
    let line = body.split(|b| *b == b'\n').next()?;
    serde_json::from_slice::<serde_json::Value>(line).ok()?.get("seq")?.as_u64()
}

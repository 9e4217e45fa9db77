//! One conformance suite for both state stores: the local directory and S3 (moto's, which
//! implements If-None-Match / If-Match on PutObject and If-Match on DeleteObject). S3 runs it on a
//! plain bucket, a versioned one, and one with Object Lock (default retention), which refuses
//! writes without a checksum header.
// Real processes and servers run in real time here: wall and monotonic clocks are the point.
#![allow(clippy::disallowed_methods)]

mod support;

use std::time::{Duration, SystemTime};

use drctl::journal::{Entry, JournalError, LockError, LockHolder, LockPolicy, Record, RunDir, StateStore, encode};
use drctl::plan::Direction;
use drctl::state_s3::{S3Location, S3Store};
use support::TestDir;
use support::s3::S3;

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
}

fn started(run_id: &str) -> Record {
    Record::RunStarted {
        run_id: run_id.into(),
        plan: "p".into(),
        plan_path: "/plans/p.yaml".into(),
        plan_digest: "d".into(),
        direction: Direction::Failover,
        incident_start: None,
        host: "h".into(),
        pid: 1,
        drctl_version: "0".into(),
        steps: vec!["a".into(), "b".into()],
        vars: Vec::new(),
    }
}

fn step(name: &str) -> Record {
    Record::StepStarted { step: name.into(), attempt: 1 }
}

const BREAK: LockPolicy = LockPolicy { break_lock: true, force: true };

/// How a test damages a run's stored journal: append a garbage commit after the records.
type Damage<'a> = &'a dyn Fn(&str);

/// What both stores must do alike.
fn conformance(store: &StateStore, damage: Damage<'_>) {
    let run = "p-failover-20270115T080000Z-0001";
    assert!(store.find_run(run).is_none() && !store.run_exists(run), "an empty store has no run");
    assert!(store.scan().unwrap().is_empty());
    store.reachable().unwrap();

    // Create, append in batches (group commits), read back exactly.
    let (mut journal, first) = store.create_journal(run, at(0), started(run)).unwrap();
    assert_eq!(first.len(), 1);
    journal.append(at(1), vec![step("a"), step("b")]).unwrap();
    journal.append(at(2), vec![Record::StepSkipped { step: "a".into(), reason: "x".into() }]).unwrap();
    let entries = store.read_entries(run).unwrap();
    assert_eq!(entries.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
    assert_eq!(entries[1].at, at(1));
    assert_eq!(entries[3].record, Record::StepSkipped { step: "a".into(), reason: "x".into() });
    assert!(store.run_exists(run));
    assert!(matches!(store.find_run(run), Some(RunDir::Journal { .. })));
    assert_eq!(store.runs().iter().map(|r| r.run_id.as_str()).collect::<Vec<_>>(), vec![run]);
    assert!(store.create_journal(run, at(3), started(run)).is_err(), "a run's journal is never created twice");
    assert_eq!(store.read_entries(run).unwrap().len(), 4, "and the refused create changed nothing");

    // Reopen and continue the numbering.
    drop(journal);
    let (mut journal, entries) = store.open_journal(run).unwrap();
    assert_eq!(entries.len(), 4);
    assert_eq!(journal.next_seq(), 5);
    journal.append(at(4), vec![Record::RunInterrupted { reason: "test".into() }]).unwrap();
    assert_eq!(store.read_entries(run).unwrap().last().unwrap().seq, 5);
    for bad in ["", "../x", ".hidden", "a/b"] {
        assert!(store.find_run(bad).is_none(), "`{bad}` names no run");
    }

    // Damage is reported where it is, never skipped; the damaged journal can still be appended to.
    damage(run);
    let scan = store.read_journal(run).unwrap();
    assert_eq!(scan.entries.len(), 5, "the records before the damage are read");
    assert_eq!(scan.damage.len(), 1, "{:?}", scan.damage);
    assert!(matches!(store.read_entries(run), Err(JournalError::Corrupt { .. })));
    assert!(store.open_journal(run).is_err(), "a damaged journal is not opened for running");
    let (mut journal, scan) = store.open_damaged_journal(run).unwrap();
    assert_eq!(scan.damage.len(), 1);
    journal.append(at(5), vec![Record::RunAbandoned { by: "me".into(), damaged_lines: vec![6] }]).unwrap();
    let scan = store.read_journal(run).unwrap();
    assert!(scan.damage_acknowledged(), "{scan:?}");

    lock_conformance(store);
}

fn holder(run_id: &str) -> LockHolder {
    LockHolder::this_process(run_id, SystemTime::now())
}

fn lock_conformance(store: &StateStore) {
    let first = store.lock("p", holder("p-failover-1-a"), LockPolicy::default()).unwrap();
    assert_eq!(store.lock_holder("p").unwrap().run_id, "p-failover-1-a");
    assert!(store.holder_live(&store.lock_holder("p").unwrap()));
    assert_eq!(store.plans_locked().unwrap(), vec!["p".to_string()]);
    match store.lock("p", holder("p-failover-1-b"), LockPolicy::default()) {
        Err(e @ LockError::Held { .. }) => assert!(e.to_string().contains("p-failover-1-a"), "{e}"),
        other => panic!("a held lock is refused naming its holder, got {other:?}"),
    }
    // The same run of the same process gets it back (a retry after a lost answer).
    drop(first);
    assert!(store.lock_holder("p").is_none(), "released on drop");
    let mut second = store.lock("p", holder("p-failover-1-b"), LockPolicy::default()).unwrap();
    assert!(second.take_over_note().is_none(), "a free lock is taken, not taken over");
    second.retarget("p-failover-1-c").unwrap();
    assert_eq!(store.lock_holder("p").unwrap().run_id, "p-failover-1-c");
    // --break-lock takes over, and says from whom.
    let mut third = store.lock("p", holder("p-failover-1-d"), BREAK).unwrap();
    let note = third.take_over_note().expect("a takeover is noted for the journal");
    assert_eq!(note.previous.run_id, "p-failover-1-c");
    assert_eq!(store.lock_holder("p").unwrap().run_id, "p-failover-1-d");
    drop(second); // the displaced holder's release must not remove the new holder's lock
    assert_eq!(store.lock_holder("p").unwrap().run_id, "p-failover-1-d");
    drop(third);
    assert!(store.lock_holder("p").is_none());
}

#[test]
fn the_local_directory_passes_the_conformance_suite() {
    let dir = TestDir::new("conformance-local");
    let root = dir.state();
    let store = StateStore::local(&root);
    let damage = |run: &str| {
        let path = root.join("runs").join(run).join("journal.jsonl");
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("{text}garbage\n")).unwrap();
    };
    conformance(&store, &damage);
}

/// Appends a commit after the last one that is not a record.
fn damage(s3: &S3, bucket: &str, prefix: &str, run: &str) {
    let key = format!("{prefix}runs/{run}/journal/000000000006.json");
    s3.put(bucket, &key, b"garbage\n");
}
fn s3_conformance(versioned: bool, object_lock: bool) {
    let s3 = S3::start();
    let bucket = "drctl-state";
    s3.bucket(bucket, versioned, object_lock);
    let store = s3.store(bucket, "team/prod");
    assert_eq!(store.describe().location, "s3://drctl-state/team/prod/");
    assert_eq!(store.describe().region.as_deref(), Some("us-west-2"));
    conformance(&store, &|run| damage(&s3, bucket, "team/prod/", run));
}

#[test]
fn s3_passes_the_conformance_suite() {
    s3_conformance(false, false);
}

#[test]
fn s3_on_a_versioned_bucket_passes_the_conformance_suite() {
    s3_conformance(true, false);
}

#[test]
fn s3_on_an_object_lock_bucket_passes_the_conformance_suite() {
    s3_conformance(true, true);
}

#[test]
fn a_gap_and_a_misnamed_commit_on_s3_are_damage_naming_the_object() {
    let s3 = S3::start();
    s3.bucket("gaps", false, false);
    let store = s3.store("gaps", "");
    let run = "p-failover-20270115T080000Z-0002";
    let (mut journal, _) = store.create_journal(run, at(0), started(run)).unwrap();
    journal.append(at(1), vec![step("a")]).unwrap();
    journal.append(at(2), vec![step("b")]).unwrap();
    // Record 2's commit disappears (deleted by hand): the gap is reported, record 3 still read.
    let delete = s3.client.delete_object().bucket("gaps").key(format!("runs/{run}/journal/000000000002.json"));
    s3.runtime.block_on(delete.send()).unwrap();
    let scan = store.read_journal(run).unwrap();
    assert_eq!(scan.entries.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 3]);
    assert!(scan.damage[0].message.contains("record number 3 where 2 was expected"), "{:?}", scan.damage);
    assert!(scan.damage[0].message.contains("000000000003.json"), "{:?}", scan.damage);
    // A commit copied under another number is damage too.
    let entry = Entry { seq: 1, at: at(0), record: started(run) };
    s3.put("gaps", &format!("runs/{run}/journal/000000000004.json"), &encode(&[entry]));
    let scan = store.read_journal(run).unwrap();
    assert!(scan.damage.iter().any(|d| d.message.contains("000000000004.json holds record 1")), "{:?}", scan.damage);
}

#[test]
fn a_second_writer_of_the_same_record_number_on_s3_is_fenced() {
    let s3 = S3::start();
    s3.bucket("fence", false, false);
    let store = s3.store("fence", "x");
    let run = "p-failover-20270115T080000Z-0003";
    store.create_journal(run, at(0), started(run)).unwrap();
    // Two processes opened the journal at the same point (the zombie and its successor).
    let (mut zombie, _) = store.open_journal(run).unwrap();
    let (mut successor, _) = store.open_journal(run).unwrap();
    successor.append(at(1), vec![step("a")]).unwrap();
    let refused = zombie.append(at(2), vec![step("b")]).unwrap_err();
    assert!(matches!(refused, JournalError::Fenced { .. }), "{refused}");
    assert!(refused.to_string().contains("record 2") && refused.to_string().contains("acts no further"), "{refused}");
    let entries = store.read_entries(run).unwrap();
    assert_eq!(entries[1].record, step("a"), "the successor's record stands");
    // The very same bytes written again (an SDK retry after a lost answer) are not a conflict.
    let (mut once, _) = store.open_journal(run).unwrap();
    let (mut again, _) = store.open_journal(run).unwrap();
    let same = Entry { seq: 3, at: at(3), record: step("b") };
    once.write(std::slice::from_ref(&same)).unwrap();
    again.write(std::slice::from_ref(&same)).unwrap();
    assert_eq!(store.read_entries(run).unwrap().len(), 3);
}

#[test]
fn an_expired_lease_is_taken_over_with_the_next_token_and_a_live_one_is_refused_until_it_ends() {
    let s3 = S3::start();
    s3.bucket("lease", false, false);
    let mut location = S3Location::parse("s3://lease/x").unwrap();
    location.lease = Duration::from_millis(900);
    let store: StateStore = S3Store::with_client(s3.client.clone(), None, location).into();
    let first = store.lock("p", holder("p-failover-1-a"), LockPolicy::default()).unwrap();
    let lease = store.lock_holder("p").unwrap();
    assert_eq!(lease.token, Some(1));
    assert!(lease.expires_at.is_some() && lease.user.is_some() || std::env::var("USER").is_err());
    let refused = store.lock("p", holder("p-failover-1-b"), LockPolicy::default()).unwrap_err().to_string();
    assert!(refused.contains("p-failover-1-a") && refused.contains("lease ends"), "{refused}");
    // The holder renews every third of the lease: after two leases it is still held.
    std::thread::sleep(Duration::from_millis(1800));
    assert!(store.lock("p", holder("p-failover-1-b"), LockPolicy::default()).is_err(), "renewed, still held");
    // A holder that stops renewing (a paused process, here forgotten) expires and is taken over.
    std::mem::forget(first);
    let stale = LockHolder { expires_at: Some(SystemTime::now() - Duration::from_secs(1)), ..lease.clone() };
    let key = "x/locks/p.json";
    s3.put("lease", key, &serde_json::to_vec(&stale).unwrap());
    let mut taker = store.lock("p", holder("p-failover-1-b"), LockPolicy::default()).unwrap();
    let note = taker.take_over_note().unwrap();
    assert_eq!((note.previous.run_id.as_str(), note.reason.as_str()), ("p-failover-1-a", "expired"));
    assert_eq!(store.lock_holder("p").unwrap().token, Some(2));
}

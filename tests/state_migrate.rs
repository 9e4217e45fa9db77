//! `drctl state migrate`: local runs to S3 and back, record for record; `status` reads them there;
//! a run going on stops the migration.
// Real processes and servers run in real time here: wall and monotonic clocks are the point.
#![allow(clippy::disallowed_methods)]

mod support;

use drctl::journal::{LockHolder, StateStore};
use support::s3::S3;
use support::{TestDir, drctl, plan, run};

#[test]
fn runs_migrate_to_s3_and_back_record_for_record_and_a_running_plan_stops_it() {
    let s3 = S3::start();
    s3.bucket("migrate", true, false);
    let dir = TestDir::new("state-migrate");
    let steps = "  - id: a\n    type: wait\n    with: {duration: 1ms}\n";
    let path = dir.write_plan("m.yaml", &plan("m", steps));
    let command = |args: &[&str]| {
        let mut c = drctl(&dir);
        for (name, value) in s3.env() {
            c.env(name, value);
        }
        c.args(args);
        c
    };
    run(command(&["failover", "--yes", "--plan", path.to_str().unwrap()])).expect_code(0, "a local failover");
    run(command(&["failback", "--yes", "--plan", path.to_str().unwrap()])).expect_code(0, "a local failback");
    let local = StateStore::local(dir.state());
    let ids: Vec<String> = local.runs().into_iter().map(|r| r.run_id).collect();
    assert_eq!(ids.len(), 2);

    let to_s3 = run(command(&["state", "migrate", "--to", "s3://migrate/team"]));
    to_s3.expect_code(0, "migrated");
    assert!(to_s3.stdout.contains("copied 2 runs"), "{to_s3}");
    let remote = s3.store("migrate", "team");
    for id in &ids {
        assert_eq!(remote.read_entries(id).unwrap(), local.read_entries(id).unwrap(), "{id} copied as it was");
    }
    let again = run(command(&["state", "migrate", "--to", "s3://migrate/team"]));
    assert!(again.stdout.contains("copied 0 runs") && again.stdout.contains("2 were already there"), "{again}");
    let status = run(command(&["--state", "s3://migrate/team", "status"]));
    status.expect_code(0, "status on S3");
    assert!(ids.iter().all(|id| status.stdout.contains(id.as_str())), "{status}");

    let back = dir.path().join("back");
    let to_local = run(command(&["--state", "s3://migrate/team", "state", "migrate", "--to", back.to_str().unwrap()]));
    to_local.expect_code(0, "migrated back");
    let returned = StateStore::local(&back);
    for id in &ids {
        assert_eq!(returned.read_entries(id).unwrap(), local.read_entries(id).unwrap(), "{id} came back as it was");
    }

    // A plan locked by a live process: its run is going on, so nothing is migrated.
    let holder = LockHolder::this_process("m-failover-20270101T000000Z-0001", std::time::SystemTime::now());
    std::fs::create_dir_all(dir.state().join("locks")).unwrap();
    std::fs::write(dir.state().join("locks/m.lock"), serde_json::to_vec(&holder).unwrap()).unwrap();
    let refused = run(command(&["state", "migrate", "--to", "s3://migrate/other"]));
    assert_eq!(refused.code(), Some(4), "{refused}");
    assert!(refused.stderr.contains("a run is going on"), "{refused}");
    assert!(s3.keys("migrate", "other/").is_empty(), "nothing was copied");
}

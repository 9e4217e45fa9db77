//! `drctl` runs with S3 state (moto), through the built binary: the race of two failovers, the
//! zombie whose lease was taken over while it was stopped, a resume from another machine after
//! SIGKILL, and runs behind a proxy that throttles and fails 30% of S3 requests. The recording HTTP
//! server's effect counters prove who acted, and how often.
// Real processes and servers run in real time here: wall and monotonic clocks are the point.
#![allow(clippy::disallowed_methods)]

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use drctl::journal::{Record, StateStore};
use support::fault_proxy::{FaultProxy, Reply, random_faults};
use support::s3::S3;
use support::{Background, Server, TestDir, drctl, plan, run, wait_until};

const BUCKET: &str = "drctl-state";

/// drctl with S3 state at `s3://drctl-state/PREFIX` through `endpoint`, in `dir`, with HOME there.
fn drctl_s3(dir: &TestDir, s3: &S3, endpoint: &str, prefix: &str) -> Command {
    let mut command = drctl(dir);
    command.arg("--state").arg(format!("s3://{BUCKET}/{prefix}"));
    for (name, value) in s3.env() {
        command.env(name, value);
    }
    command.env("AWS_ENDPOINT_URL", endpoint).env("HOME", dir.path());
    command
}

fn http_step(id: &str, method: &str, url: &str, after: Option<&str>) -> String {
    let after = after.map(|a| format!("    after: [{a}]\n")).unwrap_or_default();
    format!("  - id: {id}\n    type: http.request\n    with:\n      method: {method}\n      url: {url}\n{after}")
}

fn only_run(store: &StateStore) -> String {
    let runs = store.runs();
    assert_eq!(runs.len(), 1, "exactly one run: {runs:?}");
    runs[0].run_id.clone()
}

#[test]
fn twenty_pairs_of_simultaneous_failovers_on_s3_state_run_one_at_a_time() {
    let (s3, server) = (S3::start(), Server::start());
    s3.bucket(BUCKET, false, false);
    let dir = TestDir::new("s3-race");
    let mut refusals = Vec::new();
    for round in 1..=20u32 {
        let url = server.url(&format!("/effects/race-{round}?delay_ms=700"));
        let plan_path =
            dir.write_plan(&format!("race-{round}.yaml"), &plan("race", &http_step("act", "POST", &url, None)));
        let prefix = format!("race-{round}");
        let start = || {
            let mut command = drctl_s3(&dir, &s3, &s3.moto.url(), &prefix);
            command.arg("failover").arg("--plan").arg(&plan_path).arg("--yes");
            Background::spawn(command)
        };
        let began = Instant::now();
        let (a, b) = (start(), start());
        let (a, b) = (a.finish(), b.finish());
        let ctx = format!("round {round}\nfirst:\n{a}second:\n{b}");
        let runs = s3.store(BUCKET, &prefix).runs();
        assert_eq!(runs.len(), 1, "exactly one run: {runs:?}\n{ctx}");
        let run_id = runs[0].run_id.clone();
        let mut codes = [a.code(), b.code()];
        codes.sort();
        assert_eq!(codes, [Some(0), Some(4)], "one runs, the other is refused\n{ctx}");
        let loser = if a.code() == Some(4) { &a } else { &b };
        assert!(loser.stderr.contains(&run_id) && loser.stderr.contains("lease ends"), "names the holder\n{ctx}");
        assert_eq!(server.effect_count(&format!("race-{round}")), 1, "the effect applied once\n{ctx}");
        refusals.push(began.elapsed());
    }
    let slowest = refusals.iter().max().unwrap();
    eprintln!("20 races on S3 state: each pair done within {} ms", slowest.as_millis());
}

#[test]
fn a_zombie_whose_lease_was_taken_over_is_fenced_at_its_next_write_and_acts_no_more() {
    let (s3, server) = (S3::start(), Server::start());
    s3.bucket(BUCKET, false, false);
    let dir = TestDir::new("s3-zombie");
    let steps = [
        http_step("first", "POST", &server.url("/effects/zombie-first"), None),
        http_step("slow", "GET", &server.url("/slow/3000/zombie"), Some("first")),
        http_step("last", "POST", &server.url("/effects/zombie-last"), Some("slow")),
    ]
    .concat();
    let plan_path = dir.write_plan("zombie.yaml", &plan("zombie", &steps));
    let failover = || {
        let mut command = drctl_s3(&dir, &s3, &s3.moto.url(), "z");
        command.env("DRCTL_STATE_LEASE", "2s").arg("failover").arg("--plan").arg(&plan_path).arg("--yes");
        command
    };
    let zombie = Background::spawn(failover());
    assert!(wait_until(Duration::from_secs(20), || !server.requests_to("/slow/3000/zombie").is_empty()));
    zombie.signal("STOP");
    std::thread::sleep(Duration::from_millis(2500)); // past the 2 s lease: no renewal while stopped
    let successor = run(failover());
    let store = s3.store(BUCKET, "z");
    let run_id = only_run(&store);
    let entries = store.read_entries(&run_id).unwrap();
    successor.expect_code(0, "the successor takes the expired lease over and finishes the run");
    let took_over = entries.iter().find_map(|e| match &e.record {
        Record::LockTakenOver { previous, reason } => Some((previous.clone(), reason.clone())),
        _ => None,
    });
    let (previous, reason) = took_over.expect("lock_taken_over is journaled");
    assert!(previous.contains(&format!("pid {}", zombie.pid())) && reason == "expired", "{previous} ({reason})");
    let before = entries.len();
    zombie.signal("CONT");
    let zombie = zombie.finish();
    assert_eq!(zombie.code(), Some(4), "the zombie stops, refused\n{zombie}");
    assert!(zombie.stderr.contains("acts no further"), "and says why\n{zombie}");
    assert_eq!(server.effect_count("zombie-first"), 1, "{}", server.log());
    assert_eq!(server.effect_count("zombie-last"), 1, "only the successor acted\n{}", server.log());
    assert_eq!(store.read_entries(&run_id).unwrap().len(), before, "the zombie wrote nothing after its lease");
}

#[test]
fn a_run_killed_mid_failover_is_resumed_from_another_machine_with_each_effect_once() {
    let (s3, server) = (S3::start(), Server::start());
    s3.bucket(BUCKET, false, false);
    let (laptop, bastion) = (TestDir::new("s3-laptop"), TestDir::new("s3-bastion"));
    let steps = [
        http_step("first", "POST", &server.url("/effects/machine-first"), None),
        http_step("slow", "GET", &server.url("/slow/2000/machine"), Some("first")),
        http_step("last", "POST", &server.url("/effects/machine-last"), Some("slow")),
    ]
    .concat();
    let text = plan("machine", &steps);
    let on = |dir: &TestDir, file: &str| {
        let path = dir.write_plan(file, &text);
        let mut command = drctl_s3(dir, &s3, &s3.moto.url(), "m");
        command.env("DRCTL_STATE_LEASE", "2s").arg("failover").arg("--plan").arg(path).arg("--yes");
        command
    };
    let doomed = Background::spawn(on(&laptop, "machine.yaml"));
    assert!(wait_until(Duration::from_secs(20), || !server.requests_to("/slow/2000/machine").is_empty()));
    doomed.signal("KILL");
    let doomed = doomed.finish();
    std::fs::remove_dir_all(laptop.path()).unwrap(); // the laptop is gone, its files with it
    std::thread::sleep(Duration::from_millis(2200)); // its lease runs out
    let resumed = run(on(&bastion, "copy-of-machine.yaml"));
    resumed.expect_code(0, &format!("resumed elsewhere\nkilled:\n{doomed}"));
    assert!(!bastion.state().exists(), "nothing local was written on the other machine");
    let store = s3.store(BUCKET, "m");
    let events: Vec<&str> = store.read_entries(&only_run(&store)).unwrap().iter().map(|e| e.record.event()).collect();
    assert!(events.contains(&"run_resumed") && events.contains(&"lock_taken_over"), "{events:?}");
    assert_eq!(server.effect_count("machine-first"), 1, "{}", server.log());
    assert_eq!(server.effect_count("machine-last"), 1, "{}", server.log());
}

#[test]
fn runs_complete_behind_30_percent_s3_throttling_and_503s_with_no_lost_or_duplicated_record() {
    let (s3, server) = (S3::start(), Server::start());
    s3.bucket(BUCKET, false, false);
    let faults = vec![Reply::s3_slow_down(), Reply::service_unavailable()];
    let proxy = FaultProxy::start(&s3.moto.url(), random_faults(15, 0.3, faults));
    let dir = TestDir::new("s3-faults");
    let wide: String =
        (0..12).map(|i| http_step(&format!("s{i}"), "POST", &server.url(&format!("/effects/f{i}")), None)).collect();
    let joined = http_step("end", "POST", &server.url("/effects/f-end"), Some("s0, s5, s11"));
    let plan_path = dir.write_plan("faults.yaml", &plan("faults", &format!("{wide}{joined}")));
    let mut command = drctl_s3(&dir, &s3, &proxy.url(), "f");
    command.arg("failover").arg("--plan").arg(&plan_path).arg("--yes");
    let out = run(command);
    out.expect_code(0, &format!("faulted {} of {} S3 requests", proxy.faulted(), proxy.total()));
    assert!(proxy.faulted() >= 5, "the proxy faulted {} of {}", proxy.faulted(), proxy.total());
    let store = s3.store(BUCKET, "f");
    let scan = store.read_journal(&only_run(&store)).unwrap();
    assert!(scan.damage.is_empty(), "{:?}", scan.damage);
    let seqs: Vec<u64> = scan.entries.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "no record lost or repeated");
    for i in (0..12).map(|i| format!("s{i}")).chain(["end".to_string()]) {
        let succeeded = scan
            .entries
            .iter()
            .filter(|e| matches!(&e.record, Record::StepSucceeded { step, .. } if *step == i))
            .count();
        assert_eq!(succeeded, 1, "step {i} succeeded once in the journal");
        let name = if i == "end" { "f-end".to_string() } else { format!("f{}", &i[1..]) };
        assert_eq!(server.effect_count(&name), 1, "effect {name} applied once");
    }
    eprintln!("faults: {} of {} S3 requests faulted; the run completed", proxy.faulted(), proxy.total());
}

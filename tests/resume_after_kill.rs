//! Crash safety: `drctl failover` is SIGKILLed at a random moment, then `drctl resume --break-lock`
//! is repeated (and sometimes killed again) until the run succeeds. Every effect must have been
//! applied exactly once and the journal must replay to a succeeded run.
//!
//! Each trial prints its seed. To replay a failing trial: `DRCTL_KILL_SEED=<seed> cargo test --test
//! resume_after_kill first_half -- --nocapture`: its trial 0 uses `<seed>` (then `<seed>+1`, ...).
//! The seed fixes the kill delays and which resume is killed; the processes' own timing still varies.

// Real time is the point here: tests wait on real servers and processes, not a run's clock.
#![allow(clippy::disallowed_methods)]

mod support;

use std::time::{Duration, SystemTime};

use serde_json::Value;
use support::{Background, Out, Server, TestDir, drctl, events, plan, records, run, show};

/// Trials per test function; the two functions run in parallel.
const TRIALS: u64 = 12;
/// Kills land uniformly in `[0, KILL_WINDOW_MS)` after the process starts: across the whole run
/// (~1.4 s with process start-up) and, rarely, just after its end.
const KILL_WINDOW_MS: u64 = 1500;
/// A resume is killed too, with this probability, within `[0, RESUME_KILL_WINDOW_MS)`.
const RESUME_KILL_PROBABILITY: f64 = 0.4;
const RESUME_KILL_WINDOW_MS: u64 = 900;
/// More than enough: at most one resume is killed.
const MAX_RESUMES: usize = 5;

const EFFECTS: [&str; 6] = ["e1", "e2", "e3", "e4", "e5", "e6"];

/// Ten steps mixing chains and concurrency, ~1.4 s end to end. Each effect's POST is answered only
/// after a delay, so kills also land between "applied on the server" and "journaled as done".
fn crash_plan(server: &Server) -> String {
    let effect = |id: &str, after: &[&str], delay_ms: u32| {
        let after = if after.is_empty() { String::new() } else { format!("    after: [{}]\n", after.join(", ")) };
        let post = server.url(&format!("/effects/{id}?delay_ms={delay_ms}"));
        let observe = server.url(&format!("/effects/{id}"));
        format!(
            "  - id: {id}\n    type: http.request\n{after}    with:\n      method: POST\n      url: \"{post}\"\n      \
             body: apply\n      observe:\n        url: {observe}\n"
        )
    };
    let wait = |id: &str, after: &[&str], ms: u32| {
        let after = if after.is_empty() { String::new() } else { format!("    after: [{}]\n", after.join(", ")) };
        format!("  - id: {id}\n    type: wait\n{after}    with:\n      duration: {ms}ms\n")
    };
    let check = |id: &str, after: &str, url: String| {
        format!(
            "  - id: {id}\n    type: http.check\n    after: [{after}]\n    with:\n      url: {url}\n      attempts: 1\n"
        )
    };
    [
        effect("e1", &[], 150),
        wait("w1", &[], 400),
        effect("e2", &["e1"], 150),
        effect("e3", &["e1"], 100),
        wait("w2", &["e2"], 300),
        check("check-e3", "e3", server.url("/effects/e3")),
        effect("e4", &["w1", "w2", "check-e3"], 150),
        wait("w3", &["e4"], 400),
        effect("e5", &["w3"], 100),
        effect("e6", &["e4"], 200),
    ]
    .concat()
}

fn base_seed() -> u64 {
    match std::env::var("DRCTL_KILL_SEED") {
        Ok(text) => text.trim().parse().expect("DRCTL_KILL_SEED is a number"),
        Err(_) => SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64),
    }
}

/// Whether every journal in the state directory holds at least one complete record.
fn journals_with_no_record(dir: &TestDir) -> Vec<String> {
    dir.run_ids().into_iter().filter(|id| dir.journal_path(id).exists() && dir.journal(id).is_empty()).collect()
}

/// One trial: start, kill, resume until done, check. Panics with the seed and everything seen.
fn trial(index: u64, seed: u64) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let server = Server::start();
    let dir = TestDir::new(&format!("kill-{index}"));
    let plan_path = dir.write_plan("crash.yaml", &plan("crash", &crash_plan(&server)));
    let kill_after = Duration::from_millis(rng.u64(0..KILL_WINDOW_MS));
    let kill_resume = rng.f64() < RESUME_KILL_PROBABILITY;
    let resume_kill_after = Duration::from_millis(rng.u64(0..RESUME_KILL_WINDOW_MS));
    let mut log = vec![format!(
        "trial {index} seed {seed}: kill the run after {kill_after:?}{}",
        if kill_resume { format!(", the first resume after {resume_kill_after:?}") } else { String::new() }
    )];
    println!("{}", log[0]);
    let fail = |log: &[String], what: &str, dir: &TestDir, server: &Server| -> ! {
        panic!(
            "trial {index} (seed {seed}; replay: DRCTL_KILL_SEED={seed}, test `..._first_half`, trial 0): {what}\n\
             {}\n{}--- server requests:\n{}",
            log.join("\n"),
            dir.journals_text(),
            server.log()
        )
    };

    // The first run, killed.
    let mut command = drctl(&dir);
    command.arg("failover").arg("--plan").arg(&plan_path).arg("--yes");
    let first = Background::spawn(command);
    std::thread::sleep(kill_after);
    first.signal("KILL");
    let first = first.finish();
    log.push(format!("{first}"));
    let mut done = first.code() == Some(0);
    if !done && first.code().is_some() {
        fail(&log, "the first run failed on its own", &dir, &server);
    }

    // Resume until it succeeds.
    let mut resumes = 0;
    // A kill can land after `run_finished` was journaled but before the process released its lock
    // and exited: the run succeeded and there is nothing to resume.
    let finished_in_journal = |dir: &TestDir| {
        dir.run_ids().first().is_some_and(|id| {
            dir.journal(id).last().is_some_and(|r| r["event"] == "run_finished" && r["succeeded"] == true)
        })
    };
    let mut killed_after_finish = false;
    while !done {
        if finished_in_journal(&dir) {
            log.push("the kill landed after the run finished: nothing to resume".into());
            println!("trial {index} seed {seed}: the kill landed after the run finished");
            killed_after_finish = true;
            break;
        }
        if resumes == MAX_RESUMES {
            fail(&log, &format!("not done after {MAX_RESUMES} resumes"), &dir, &server);
        }
        let empty = journals_with_no_record(&dir);
        if !empty.is_empty() {
            fail(
                &log,
                &format!(
                    "the kill left journals without a single record ({empty:?}); no drctl command can read past \
                     them (see the test a_crash_before_the_first_journal_record_does_not_wedge_the_state_dir)"
                ),
                &dir,
                &server,
            );
        }
        let mut command = drctl(&dir);
        match dir.run_ids().first() {
            Some(run_id) => command.arg("resume").arg(run_id).args(["--break-lock", "--yes"]),
            // Killed before its journal existed: the operator starts it again.
            None => command.arg("failover").arg("--plan").arg(&plan_path).args(["--break-lock", "--yes"]),
        };
        let process = Background::spawn(command);
        if resumes == 0 && kill_resume {
            std::thread::sleep(resume_kill_after);
            process.signal("KILL");
        }
        let out: Out = process.finish();
        log.push(format!("{out}"));
        resumes += 1;
        match out.code() {
            Some(0) => done = true,
            None => {} // killed by the test
            Some(_) => fail(&log, "a resume failed", &dir, &server),
        }
    }

    // Every effect exactly once.
    let counts: Vec<(&str, u32)> = EFFECTS.iter().map(|e| (*e, server.effect_count(e))).collect();
    if counts.iter().any(|(_, n)| *n != 1) || server.effects().len() != EFFECTS.len() {
        fail(
            &log,
            &format!("effects not applied exactly once: {counts:?} (all: {:?})", server.effects()),
            &dir,
            &server,
        );
    }

    // The journal replays cleanly to a succeeded run.
    let run_id = dir.only_run_id();
    let journal = dir.journal(&run_id);
    let seqs: Vec<u64> = journal.iter().map(|r| r["seq"].as_u64().unwrap_or(0)).collect();
    if seqs != (1..=journal.len() as u64).collect::<Vec<_>>() {
        fail(&log, &format!("journal sequence numbers are not 1..n: {seqs:?}"), &dir, &server);
    }
    let last = journal.last().cloned().unwrap_or(Value::Null);
    if last["event"] != "run_finished" || last["succeeded"] != true {
        fail(
            &log,
            &format!("the journal does not end with a successful run_finished:\n{}", show(&journal)),
            &dir,
            &server,
        );
    }
    for step in EFFECTS {
        if records(&journal, "step_succeeded", Some(step)).len() != 1 {
            fail(&log, &format!("step {step} did not succeed exactly once in the journal"), &dir, &server);
        }
    }
    let mut command = drctl(&dir);
    command.args(["status", &run_id, "--output", "json"]);
    let status = run(command);
    log.push(format!("{status}"));
    if status.code() != Some(0) {
        fail(&log, "status of the run failed", &dir, &server);
    }
    let summary = status.json_lines().into_iter().next().unwrap_or(Value::Null);
    if summary["state"] != "succeeded" {
        fail(&log, "drctl status does not say succeeded", &dir, &server);
    }
    let unfinished: Vec<&Value> = summary["steps"]
        .as_array()
        .map(|steps| {
            steps
                .iter()
                .filter(|s| s["state"] != "succeeded" && s["state"] != "passed" && s["state"] != "already done")
                .collect()
        })
        .unwrap_or_default();
    if !unfinished.is_empty() {
        fail(&log, &format!("steps not done in the summary: {unfinished:?}"), &dir, &server);
    }
    // Killed between `run_finished` and the lock's release, the lock stays behind naming a dead
    // process, which the next run of the plan takes over without --break-lock.
    let lock = dir.state().join("locks").join("crash.lock");
    if lock.exists() && !killed_after_finish {
        fail(&log, "the plan lock is still held after the run succeeded", &dir, &server);
    }
    if lock.exists() {
        let holder: Value = std::fs::read(&lock).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
        let pid = holder["pid"].as_u64().unwrap_or(0);
        if holder["run_id"] != run_id.as_str() || pid == 0 || std::path::Path::new(&format!("/proc/{pid}")).exists() {
            fail(&log, &format!("the lock left behind does not name this run's dead process: {holder}"), &dir, &server);
        }
    }
    let resumed = records(&journal, "run_resumed", None).len();
    let kinds = events(&journal);
    println!(
        "trial {index} seed {seed}: ok after {resumes} resume command(s); journal: {} records, {resumed} run_resumed, \
         {} already done; {} ms from start to finish",
        kinds.len(),
        journal.iter().filter(|r| r["event"] == "step_succeeded" && r["already_done"] == true).count(),
        summary["rto"]["measured_ms"]
    );
}

fn trials(offset: u64) {
    let base = base_seed();
    println!("base seed {base} (DRCTL_KILL_SEED={base} replays these trials)");
    for i in 0..TRIALS {
        let index = offset + i;
        trial(index, base.wrapping_add(index));
    }
}

#[test]
fn killed_runs_resume_to_apply_every_effect_exactly_once_first_half() {
    trials(0);
}

#[test]
fn killed_runs_resume_to_apply_every_effect_exactly_once_second_half() {
    trials(TRIALS);
}

/// `drctl failover` creates the run's journal file, then appends its first record. A crash between
/// the two (SIGKILL, power loss) leaves an empty journal. No step ran, so nothing needs resuming;
/// the plan (and every other plan of the state directory) must still be able to run.
#[test]
fn a_crash_before_the_first_journal_record_does_not_wedge_the_state_dir() {
    let server = Server::start();
    let dir = TestDir::new("empty-journal");
    let plan_path = dir.write_plan("crash.yaml", &plan("crash", &crash_plan(&server)));
    // An empty journal: drctl creates journals atomically now, but a copied state directory or an
    // older version can still leave one, and it must not block anything.
    let crashed = dir.state().join("runs").join("crash-failover-20260101T000000Z-dead");
    std::fs::create_dir_all(&crashed).unwrap();
    std::fs::write(crashed.join("journal.jsonl"), "").unwrap();

    let mut command = drctl(&dir);
    command.arg("failover").arg("--plan").arg(&plan_path).args(["--break-lock", "--yes"]);
    let out = run(command);
    let ctx = format!("{out}{}--- server requests:\n{}", dir.journals_text(), server.log());
    assert_eq!(
        out.code(),
        Some(0),
        "a journal left empty by a crash blocks every later run of the state directory\n{ctx}"
    );
    assert!(EFFECTS.iter().all(|e| server.effect_count(e) == 1), "{ctx}");
}

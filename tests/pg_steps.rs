//! The `pg.*` step types end to end: the real binary against real PostgreSQL servers (a primary
//! from `initdb` and a streaming standby from `pg_basebackup`, see `support::postgres`), with the
//! faults a failover meets: a primary that stops hard, a standby that has not replayed what it
//! received, a wrong password. Assertions look at the servers after the run, not only at exit codes.

// Real time is the point here: tests wait on real servers and processes, not a run's clock.
#![allow(clippy::disallowed_methods)]

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::postgres::Postgres;
use support::{Out, TestDir, drctl, plan, records, run, show};

/// `drctl failover --plan <file> --yes <extra...>` with `env`.
fn failover(dir: &TestDir, plan_file: &str, env: &[(&str, &str)], extra: &[&str]) -> Out {
    let mut command = drctl(dir);
    command.args(["failover", "--plan", plan_file, "--yes"]).args(extra);
    for (key, value) in env {
        command.env(key, value);
    }
    run(command)
}

fn context(out: &Out, dir: &TestDir) -> String {
    format!("{out}{}", dir.journals_text())
}

/// The outputs journaled with `step`'s success, and whether it was already done.
fn succeeded(journal: &[Value], step: &str) -> (serde_json::Map<String, Value>, bool) {
    let records = records(journal, "step_succeeded", Some(step));
    assert_eq!(records.len(), 1, "one success of {step}\n{}", show(journal));
    let outputs = records[0]["outputs"].as_object().cloned().unwrap_or_default();
    (outputs, records[0]["already_done"] == true)
}

fn output<'a>(outputs: &'a serde_json::Map<String, Value>, name: &str) -> &'a str {
    outputs.get(name).and_then(Value::as_str).unwrap_or_else(|| panic!("no output {name}: {outputs:?}"))
}

#[test]
fn promotes_a_caught_up_standby_once() {
    let dir = TestDir::new("pg-promote");
    let primary = Postgres::primary(dir.path());
    primary.query("CREATE TABLE orders (id int PRIMARY KEY, note text)");
    let standby = Postgres::standby_of(&primary, dir.path(), None);
    primary.query("INSERT INTO orders VALUES (1, 'before the promotion')");
    standby.wait_for_replay_of(&primary);
    assert!(standby.in_recovery());

    let steps = format!(
        "  - id: promote\n    type: pg.promote\n    with:\n      dsn_env: PG_STANDBY_DSN\n      primary_dsn: {}\n",
        primary.dsn()
    );
    let file = dir.write_plan("pg.yaml", &plan("pg", &steps));
    let file = file.to_str().unwrap();
    let env = [("PG_STANDBY_DSN", standby.dsn())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();

    let started = Instant::now();
    let out = failover(&dir, file, &env, &[]);
    let ctx = context(&out, &dir);
    out.expect_code(0, &ctx);
    assert!(started.elapsed() < Duration::from_secs(10), "the promotion took {:?}\n{ctx}", started.elapsed());
    let first = dir.only_run_id();
    let journal = dir.journal(&first);
    let (outputs, already_done) = succeeded(&journal, "promote");
    assert!(!already_done, "{ctx}");
    let lag: f64 = output(&outputs, "lag_s").parse().expect("lag_s is a number");
    assert!(lag < 5.0, "a caught-up standby lags {lag}s\n{ctx}");
    assert_eq!(outputs.get("accepted_data_loss_s"), None, "no loss accepted: absent\n{ctx}");
    assert_eq!(output(&outputs, "replay_delay_bytes"), "0", "{ctx}");
    assert_eq!(output(&outputs, "timeline"), "2", "a promotion starts timeline 2\n{ctx}");
    assert!(output(&outputs, "promoted_lsn").contains('/'), "{ctx}");

    // What the server became: writable, with the primary's row.
    assert!(!standby.in_recovery(), "{}", standby.log_text());
    assert_eq!(standby.query("SELECT note FROM orders WHERE id = 1"), "before the promotion");
    standby.query("INSERT INTO orders VALUES (2, 'after the promotion')");
    assert_eq!(standby.query("SELECT count(*) FROM pg_class WHERE relname = 'drctl_write_probe'"), "0");

    // Again: found promoted, no second pg_promote (no act), the same timeline.
    let out = failover(&dir, file, &env, &["--new-run"]);
    let ctx = context(&out, &dir);
    out.expect_code(0, &ctx);
    let second = dir.run_ids().into_iter().find(|id| *id != first).expect("a second run");
    let journal = dir.journal(&second);
    let (outputs, already_done) = succeeded(&journal, "promote");
    assert!(already_done, "{ctx}");
    assert!(records(&journal, "step_acting", Some("promote")).is_empty(), "{ctx}");
    assert_eq!(output(&outputs, "timeline"), "2", "promoted twice?\n{ctx}");
    assert_eq!(outputs.get("lag_s"), None, "this run measured nothing\n{ctx}");
}

#[test]
fn a_lagging_standby_is_refused_until_the_loss_is_accepted() {
    let dir = TestDir::new("pg-lag");
    let primary = Postgres::primary(dir.path());
    primary.query("CREATE TABLE orders (id int PRIMARY KEY, note text)");
    let standby = Postgres::standby_of(&primary, dir.path(), None);
    // One transaction replayed (the lag is measured from it), then the standby falls behind:
    // what it receives from now on waits an hour before it is replayed.
    primary.query("INSERT INTO orders VALUES (1, 'replayed')");
    let replayed_at = Instant::now();
    standby.wait_for_replay_of(&primary);
    standby.set_apply_delay(Duration::from_secs(3600));
    std::thread::sleep(Duration::from_secs(2).saturating_sub(replayed_at.elapsed()));
    primary.query("INSERT INTO orders VALUES (2, 'received, not replayed')");
    standby.wait_for_receipt_of(&primary);
    assert_eq!(standby.query("SELECT count(*) FROM orders"), "1", "the delay holds the second row back");
    primary.stop_hard();

    let steps = format!(
        "  - id: promote\n    type: pg.promote\n    with:\n      dsn: {}\n      primary_dsn: {}\n      max_lag: 1s\n",
        standby.dsn(),
        primary.dsn()
    );
    let file = dir.write_plan("pg.yaml", &plan("pg-lag", &steps));
    let out = failover(&dir, file.to_str().unwrap(), &[], &[]);
    let ctx = context(&out, &dir);
    assert_ne!(out.code(), Some(0), "{ctx}");
    let all = out.all();
    for part in ["lags ", "more than `with.max_lag` of 1s", "--accept-data-loss", "the primary does not answer"] {
        assert!(all.contains(part), "the refusal does not say {part:?}\n{ctx}");
    }
    let run_id = dir.only_run_id();
    let journal = dir.journal(&run_id);
    assert!(records(&journal, "step_acting", Some("promote")).is_empty(), "refused before acting\n{ctx}");
    assert!(standby.in_recovery(), "the refused standby was promoted anyway");

    let out = run({
        let mut command = drctl(&dir);
        command.args(["resume", &run_id, "--yes", "--accept-data-loss", "1m"]);
        command
    });
    let ctx = context(&out, &dir);
    out.expect_code(0, &ctx);
    let journal = dir.journal(&run_id);
    let (outputs, already_done) = succeeded(&journal, "promote");
    assert!(!already_done, "{ctx}");
    let lag: f64 = output(&outputs, "lag_s").parse().expect("lag_s is a number");
    assert!((2.0..60.0).contains(&lag), "the lag is the age of the replayed row: {lag}\n{ctx}");
    assert_eq!(output(&outputs, "accepted_data_loss_s"), output(&outputs, "lag_s"), "journaled\n{ctx}");
    let unreplayed: u64 = output(&outputs, "replay_delay_bytes").parse().expect("a byte count");
    assert!(unreplayed > 0, "{ctx}");
    assert_eq!(output(&outputs, "timeline"), "2", "{ctx}");
    assert!(!standby.in_recovery(), "{}", standby.log_text());
    // PostgreSQL replays what it received before it leaves recovery (the apply delay is cut short):
    // the lag guard counted that WAL as at risk, which is conservative.
    assert_eq!(standby.query("SELECT count(*) FROM orders"), "2", "{}", standby.log_text());
}

#[test]
fn checks_pass_on_the_right_roles_and_time_out_saying_what_is_wrong() {
    let dir = TestDir::new("pg-check");
    let primary = Postgres::primary(dir.path());
    let standby = Postgres::standby_of(&primary, dir.path(), None);
    standby.wait_for_replay_of(&primary);

    let steps = format!(
        "  - id: primary\n    type: pg.check\n    with:\n      dsn: {}\n      role: primary\n      writable: true\n\
         \x20 - id: standby\n    type: pg.check\n    with:\n      dsn: {}\n      role: standby\n      max_lag: 1m\n      \
         primary_dsn: {}\n",
        primary.dsn(),
        standby.dsn(),
        primary.dsn()
    );
    let file = dir.write_plan("ok.yaml", &plan("pg-check-ok", &steps));
    let out = failover(&dir, file.to_str().unwrap(), &[], &[]);
    let ctx = context(&out, &dir);
    out.expect_code(0, &ctx);
    let journal = dir.only_journal();
    let (outputs, already_done) = succeeded(&journal, "primary");
    assert!(!already_done, "a passing check is not \"already done\"\n{ctx}");
    let passed =
        journal.iter().any(|r| r["event"] == "step_succeeded" && r["step"] == "primary" && r["passed"] == true);
    assert!(passed, "a passing check is \"passed\"\n{ctx}");
    assert_eq!((output(&outputs, "role"), output(&outputs, "in_recovery")), ("primary", "false"), "{ctx}");
    let (outputs, _) = succeeded(&journal, "standby");
    assert_eq!((output(&outputs, "role"), output(&outputs, "in_recovery")), ("standby", "true"), "{ctx}");
    let lag: f64 = output(&outputs, "lag_s").parse().expect("lag_s is a number");
    assert!(lag < 60.0, "{ctx}");

    // The standby taken for a primary: waited for, then the timeout says why.
    let steps = format!(
        "  - id: wrong\n    type: pg.check\n    timeout: 2s\n    with:\n      dsn: {}\n      role: primary\n",
        standby.dsn()
    );
    let file = dir.write_plan("wrong.yaml", &plan("pg-check-wrong", &steps));
    let started = Instant::now();
    let out = failover(&dir, file.to_str().unwrap(), &[], &[]);
    let ctx = context(&out, &dir);
    assert_ne!(out.code(), Some(0), "{ctx}");
    assert!(started.elapsed() < Duration::from_secs(10), "{ctx}");
    let all = out.all();
    assert!(all.contains("timed out after 2") && all.contains("is in recovery (a standby), not a primary"), "{ctx}");
}

#[test]
fn passwords_stay_out_of_plans_and_output() {
    let dir = TestDir::new("pg-password");

    // In a plan: refused when the plan is checked, naming the field and the way out.
    let steps = "  - id: promote\n    type: pg.promote\n    with:\n      \
                 dsn: postgres://drctl:plan-pw-0c4e@127.0.0.1:5432/postgres\n";
    let file = dir.write_plan("bad.yaml", &plan("pg-bad", steps));
    let out = run({
        let mut command = drctl(&dir);
        command.args(["plan", "validate", file.to_str().unwrap()]);
        command
    });
    assert_ne!(out.code(), Some(0), "{out}");
    assert!(out.all().contains("`dsn` contains a password") && out.all().contains("`dsn_env`"), "{out}");

    // In the environment: the right one connects (scram-sha-256); a wrong one fails fast, unretried,
    // and appears nowhere: not in the output, not in the state directory.
    const WRONG: &str = "WRONG-pw-9c1e";
    let primary = Postgres::primary(dir.path());
    primary.create_password_user("right-pw-51aa");
    let steps = "  - id: right\n    type: pg.check\n    with:\n      dsn_env: PG_RIGHT\n      role: primary\n      \
                 writable: true\n\
                 \x20 - id: wrong\n    type: pg.check\n    after: [right]\n    retries: 2\n    with:\n      \
                 dsn_env: PG_WRONG\n      role: primary\n";
    let file = dir.write_plan("env.yaml", &plan("pg-env", steps));
    let (right, wrong) = (primary.dsn_with_password("right-pw-51aa"), primary.dsn_with_password(WRONG));
    let started = Instant::now();
    let out = failover(&dir, file.to_str().unwrap(), &[("PG_RIGHT", &right), ("PG_WRONG", &wrong)], &[]);
    let ctx = context(&out, &dir);
    assert_ne!(out.code(), Some(0), "{ctx}");
    assert!(started.elapsed() < Duration::from_secs(10), "an authentication failure is not waited for\n{ctx}");
    let journal = dir.only_journal();
    succeeded(&journal, "right");
    assert!(records(&journal, "step_retrying", Some("wrong")).is_empty(), "fatal, not retried\n{ctx}");
    let all = out.all();
    assert!(all.contains("Authentication failed") && all.contains("$PG_WRONG"), "{ctx}");
    assert!(!all.contains(WRONG), "the password was printed\n{ctx}");
    for entry in walk(&dir.state()) {
        let text = String::from_utf8_lossy(&std::fs::read(&entry).unwrap_or_default()).into_owned();
        assert!(!text.contains(WRONG), "{} holds the password", entry.display());
    }
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return files };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        if path.is_dir() { files.extend(walk(&path)) } else { files.push(path) }
    }
    files
}

//! Damaged and surprising state directories, through the built binary: unreadable locks, damaged
//! journals, things where runs belong, leftovers of killed processes, a finished failover run again,
//! and resuming from elsewhere. Each case checks the exit code and that the message names the file
//! and says what to do.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use support::{Background, Out, Server, TestDir, drctl, events, plan, run, wait_until};

/// `drctl ARGS...` in `dir`.
fn cmd(dir: &TestDir, args: &[&str]) -> Out {
    let mut command = drctl(dir);
    command.args(args);
    run(command)
}

/// `drctl DIRECTION --plan PLAN --yes EXTRA...`.
fn go(dir: &TestDir, direction: &str, plan_path: &Path, extra: &[&str]) -> Out {
    let mut command = drctl(dir);
    command.arg(direction).arg("--plan").arg(plan_path).arg("--yes").args(extra);
    run(command)
}

/// A plan `name` with one quick step.
fn quick_plan(dir: &TestDir, name: &str) -> PathBuf {
    let steps = "  - id: pause\n    type: wait\n    with:\n      duration: 1ms\n";
    dir.write_plan(&format!("{name}.yaml"), &plan(name, steps))
}

/// A plan `name` whose failover fails until the server's switch `name` is on.
fn gated_plan(dir: &TestDir, server: &Server, name: &str) -> PathBuf {
    let url = server.url(&format!("/switch/{name}"));
    let steps = format!("  - id: gate\n    type: http.request\n    with:\n      method: GET\n      url: {url}\n");
    dir.write_plan(&format!("{name}.yaml"), &plan(name, &steps))
}

/// A failed (so unfinished) failover run of a gated plan: its id.
fn failed_run(dir: &TestDir, server: &Server, name: &str) -> (String, PathBuf) {
    let plan_path = gated_plan(dir, server, name);
    go(dir, "failover", &plan_path, &[]).expect_code(1, "a gated failover fails");
    (dir.run_ids().into_iter().find(|id| id.starts_with(name)).expect("the run"), plan_path)
}

fn insert_line(path: &Path, at: usize, line: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.insert(at - 1, line);
    std::fs::write(path, format!("{}\n", lines.join("\n"))).unwrap();
}

/// The pid of a process that has exited and been reaped.
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

fn hostname() -> String {
    let out = std::process::Command::new("hostname").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn an_empty_or_garbage_lock_is_refused_naming_the_file_until_break_lock() {
    let dir = TestDir::new("empty-lock");
    let plan_path = quick_plan(&dir, "p");
    let lock = dir.state().join("locks").join("p.lock");
    std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
    for content in ["", "garbage{"] {
        std::fs::write(&lock, content).unwrap();
        let out = go(&dir, "failover", &plan_path, &[]);
        out.expect_code(4, "an unreadable lock");
        assert!(out.stderr.contains(&lock.display().to_string()), "names the lock file\n{out}");
        assert!(out.stderr.contains("--break-lock"), "says what to do\n{out}");
        assert!(dir.run_ids().is_empty(), "nothing started\n{out}");
    }
    go(&dir, "failover", &plan_path, &["--break-lock"]).expect_code(0, "--break-lock takes it over");
    assert!(!lock.exists(), "released at the end");
}

#[test]
fn a_damaged_finished_journal_does_not_block_the_plan_and_status_reports_it() {
    let dir = TestDir::new("damaged-finished");
    let plan_path = quick_plan(&dir, "p");
    go(&dir, "failover", &plan_path, &[]).expect_code(0, "failover");
    let run_id = dir.only_run_id();
    let journal = dir.journal_path(&run_id);
    insert_line(&journal, 2, "this is not a record");

    let out = go(&dir, "failback", &plan_path, &[]);
    out.expect_code(0, "a finished run's damage does not block");
    assert!(out.stderr.contains(&format!("{}:2:", journal.display())), "the damage is mentioned\n{out}");

    let listing = cmd(&dir, &["status"]);
    listing.expect_code(5, "status with a damaged journal");
    assert!(listing.stdout.lines().any(|l| l.contains(&run_id) && l.contains("damaged")), "{listing}");
    assert!(listing.stderr.contains(&format!("{}:2:", journal.display())), "{listing}");
    let one = cmd(&dir, &["status", &run_id]);
    one.expect_code(5, "status RUN of a damaged journal");
    assert!(one.stderr.contains(&format!("{}:2:", journal.display())), "{one}");
}

#[test]
fn a_damaged_unfinished_journal_blocks_until_abandoned_which_records_it() {
    let server = Server::start();
    let dir = TestDir::new("damaged-open");
    let (run_id, plan_path) = failed_run(&dir, &server, "p");
    let journal = dir.journal_path(&run_id);
    let lines = std::fs::read_to_string(&journal).unwrap().lines().count();
    insert_line(&journal, lines + 1, "{\"seq\": garbage");
    let damaged_at = format!("{}:{}:", journal.display(), lines + 1);

    for out in [go(&dir, "failover", &plan_path, &[]), cmd(&dir, &["resume", &run_id, "--yes"])] {
        out.expect_code(5, "a damaged unfinished run");
        assert!(out.stderr.contains(&damaged_at), "names file and line\n{out}");
    }
    let refused = go(&dir, "failover", &plan_path, &[]);
    assert!(refused.stderr.contains(&format!("drctl abandon {run_id}")), "offers a way out\n{refused}");

    let out = cmd(&dir, &["abandon", &run_id]);
    out.expect_code(0, "abandon works on a damaged journal");
    assert!(out.stdout.contains(&format!("lines {}", lines + 1)), "{out}");
    let last = std::fs::read_to_string(&journal).unwrap().lines().last().unwrap().to_string();
    assert!(
        last.contains("\"run_abandoned\"") && last.contains(&format!("\"damaged_lines\":[{}]", lines + 1)),
        "{last}"
    );

    let listing = cmd(&dir, &["status"]);
    listing.expect_code(0, "acknowledged damage is no longer an error");
    assert!(listing.stdout.lines().any(|l| l.contains(&run_id) && l.contains("abandoned (damaged)")), "{listing}");
    server.set_switch("p", true);
    go(&dir, "failover", &plan_path, &[]).expect_code(0, "the plan runs afresh");
    assert_eq!(dir.run_ids().len(), 2);
}

#[test]
fn status_reports_what_it_cannot_read_instead_of_no_runs() {
    let dir = TestDir::new("status-damage");
    let runs = dir.state().join("runs");
    std::fs::create_dir_all(runs.join("p-failover-20260101T000000Z-0001")).unwrap();
    std::fs::write(runs.join("p-failover-20260101T000000Z-0001/journal.jsonl"), "").unwrap();
    std::fs::write(runs.join("p-failover-20260101T000000Z-0002"), "").unwrap();
    let out = cmd(&dir, &["status"]);
    out.expect_code(5, "an empty journal and a file for a run directory");
    assert!(!out.stdout.contains("no runs"), "{out}");
    assert!(out.stderr.contains("journal is empty") && out.stderr.contains("a file where a run directory"), "{out}");
    assert_eq!(out.stdout.lines().filter(|l| l.contains("damaged")).count(), 2, "{out}");
    let json = cmd(&dir, &["status", "--output", "json"]);
    json.expect_code(5, "json");
    assert!(json.json_lines().iter().all(|l| l["state"] == "damaged" && l["problem"].is_string()), "{json}");

    std::fs::remove_dir_all(&runs).unwrap();
    std::fs::write(&runs, "").unwrap();
    let out = cmd(&dir, &["status"]);
    out.expect_code(5, "runs is a file");
    assert!(out.stderr.contains("is a file, not a directory") && !out.stdout.contains("no runs"), "{out}");

    std::fs::remove_dir_all(dir.state()).unwrap();
    std::fs::write(dir.state(), "").unwrap();
    let plan_path = quick_plan(&dir, "p");
    for out in [cmd(&dir, &["status"]), go(&dir, "failover", &plan_path, &[])] {
        out.expect_code(5, "the state directory is a file");
        assert!(out.stderr.contains(&dir.state().display().to_string()), "{out}");
    }
}

#[test]
fn a_locks_file_in_the_way_is_a_state_error() {
    let dir = TestDir::new("locks-file");
    let plan_path = quick_plan(&dir, "p");
    std::fs::create_dir_all(dir.state()).unwrap();
    std::fs::write(dir.state().join("locks"), "").unwrap();
    let out = go(&dir, "failover", &plan_path, &[]);
    out.expect_code(5, "locks is a file");
    assert!(out.stderr.contains("is a file, not a directory"), "{out}");
}

#[test]
fn a_journal_copied_into_another_runs_directory_is_reported_and_does_not_hide_the_crashed_run() {
    let server = Server::start();
    let dir = TestDir::new("mismatch");
    let (real, plan_path) = failed_run(&dir, &server, "p");
    let other_plan = quick_plan(&dir, "q");
    go(&dir, "failover", &other_plan, &[]).expect_code(0, "q");
    let q_run = dir.run_ids().into_iter().find(|id| id.starts_with("q-")).unwrap();
    let stray = "p-failover-29990101T000000Z-ffff";
    std::fs::create_dir_all(dir.state().join("runs").join(stray)).unwrap();
    std::fs::copy(dir.journal_path(&q_run), dir.journal_path(stray)).unwrap();

    let listing = cmd(&dir, &["status"]);
    listing.expect_code(5, "a misplaced journal");
    assert!(listing.stderr.contains(&format!("journal of run {q_run}")), "{listing}");
    cmd(&dir, &["status", stray]).expect_code(5, "status of the stray directory");

    server.set_switch("p", true);
    let out = go(&dir, "failover", &plan_path, &[]);
    out.expect_code(0, "the real unfinished run is resumed");
    assert_eq!(events(&dir.journal(&real)).iter().filter(|e| *e == "run_resumed").count(), 1, "{out}");
    assert_eq!(dir.run_ids().len(), 3, "no new run started\n{out}");
}

#[test]
fn status_of_one_run_shows_a_crash_as_status_does() {
    let dir = TestDir::new("crashed-one");
    let plan_path = quick_plan(&dir, "p");
    go(&dir, "failover", &plan_path, &[]).expect_code(0, "failover");
    let run_id = dir.only_run_id();
    let journal = dir.journal_path(&run_id);
    let first = std::fs::read_to_string(&journal).unwrap().lines().next().unwrap().to_string();
    std::fs::write(&journal, format!("{first}\n")).unwrap(); // started, then nothing: a crash
    let one = cmd(&dir, &["status", &run_id, "--output", "json"]);
    one.expect_code(0, "status RUN");
    assert_eq!(one.json_lines()[0]["state"], "crashed (resumable)", "{one}");
    let listing = cmd(&dir, &["status"]);
    assert!(listing.stdout.contains("crashed (resumable)"), "{listing}");
    let header = listing.stdout.lines().next().unwrap_or_default();
    for column in ["RUN", "DIRECTION", "STATE", "STEPS", "RTO", "STARTED"] {
        assert!(header.contains(column), "the header names {column}\n{listing}");
    }
}

#[test]
fn the_plan_path_is_journaled_absolute_so_resume_works_from_elsewhere() {
    let server = Server::start();
    let dir = TestDir::new("elsewhere");
    gated_plan(&dir, &server, "p");
    let mut command = drctl(&dir);
    command.args(["failover", "--plan", "p.yaml", "--yes"]); // relative to the test directory
    run(command).expect_code(1, "a gated failover fails");
    let run_id = dir.only_run_id();
    let journaled = dir.journal(&run_id)[0]["plan_path"].as_str().unwrap().to_string();
    assert!(Path::new(&journaled).is_absolute(), "{journaled}");

    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    server.set_switch("p", true);
    let mut command = drctl(&dir);
    command.current_dir(&elsewhere).args(["resume", &run_id, "--yes"]);
    run(command).expect_code(0, "resume from another directory");

    let (failed, plan_path) = failed_run(&dir, &server, "gone");
    std::fs::rename(&plan_path, dir.path().join("moved.yaml")).unwrap();
    let out = cmd(&dir, &["resume", &failed, "--yes"]);
    out.expect_code(3, "the plan file is gone");
    assert!(out.stderr.contains("--plan PATH"), "{out}");
}

#[test]
fn a_succeeded_failover_is_not_run_again_unless_new_run() {
    let dir = TestDir::new("again");
    let plan_path = quick_plan(&dir, "p");
    go(&dir, "failover", &plan_path, &[]).expect_code(0, "failover");
    let first = dir.only_run_id();
    // A crash after run_finished, before the lock was released: the lock names a dead pid.
    let lock = dir.state().join("locks").join("p.lock");
    std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
    let holder = format!(
        "{{\"run_id\":\"{first}\",\"host\":\"{}\",\"pid\":{},\"since\":\"2026-01-01T00:00:00Z\"}}",
        hostname(),
        dead_pid()
    );
    std::fs::write(&lock, holder).unwrap();

    let out = go(&dir, "failover", &plan_path, &[]);
    out.expect_code(4, "the failover already succeeded");
    assert!(out.stderr.contains("already succeeded") && out.stderr.contains(&first), "{out}");
    assert!(out.stderr.contains("--new-run"), "{out}");
    assert!(!lock.exists(), "the dead holder's lock was released without anyone's action\n{out}");
    assert_eq!(dir.run_ids().len(), 1);

    go(&dir, "failback", &plan_path, &[]).expect_code(0, "failback");
    go(&dir, "failover", &plan_path, &[]).expect_code(0, "after a failback, failover runs again");
    go(&dir, "failover", &plan_path, &["--new-run"]).expect_code(0, "--new-run runs it anyway");
    assert_eq!(dir.run_ids().len(), 4);
}

#[test]
fn a_side_file_left_by_a_kill_during_journal_creation_is_removed() {
    let dir = TestDir::new("side-file");
    let run_dir = dir.state().join("runs").join("p-failover-20260101T000000Z-0001");
    std::fs::create_dir_all(&run_dir).unwrap();
    std::fs::write(run_dir.join(format!("journal.new-{}", dead_pid())), "{\"seq\":1").unwrap();
    let out = cmd(&dir, &["status"]);
    out.expect_code(0, "status");
    assert!(out.stdout.contains("no runs"), "{out}");
    assert!(!run_dir.exists(), "the leftover and its directory are gone");
}

#[test]
fn break_lock_does_not_take_a_lock_from_a_live_process_without_force() {
    let dir = TestDir::new("live-break");
    let steps = "  - id: pause\n    type: wait\n    with:\n      duration: 3s\n";
    let plan_path = dir.write_plan("p.yaml", &plan("p", steps));
    let mut command = drctl(&dir);
    command.arg("failover").arg("--plan").arg(&plan_path).arg("--yes");
    let first = Background::spawn(command);
    let lock = dir.state().join("locks").join("p.lock");
    assert!(wait_until(Duration::from_secs(20), || lock.exists()), "the first run never locked");
    let out = go(&dir, "failover", &plan_path, &["--break-lock"]);
    let pid = first.pid();
    let first = first.finish();
    out.expect_code(4, "--break-lock against a live holder");
    assert!(out.stderr.contains(&format!("pid {pid} is running")) && out.stderr.contains("--force"), "{out}");
    first.expect_code(0, "the first run was left alone");
    let usage = go(&dir, "failover", &plan_path, &["--force"]);
    usage.expect_code(2, "--force needs --break-lock");
}

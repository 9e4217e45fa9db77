//! The built binary against misuse that used to end it with a panic (exit 101 and a backtrace):
//! output into a pipe whose reader has gone, `--incident-start` times out of range, a `wait` too
//! long for the clock, and colour codes where nobody is looking at a terminal.
//!
//! A closed pipe here is one whose reading end is dropped before drctl starts: every write fails
//! with EPIPE from the first byte, as it does behind `| head -0`, `| true` or `| head` once the
//! reader has exited, but without depending on which process gets there first.

// Real time is the point here: tests wait on real servers and processes, not a run's clock.
#![allow(clippy::disallowed_methods)]

mod support;

use std::process::{Command, Stdio};

use support::{TestDir, drctl, events, plan, records, run, show};

/// The writing end of a pipe nobody reads.
fn closed_pipe() -> std::io::PipeWriter {
    let (reader, writer) = std::io::pipe().expect("create a pipe");
    drop(reader);
    writer
}

/// `command` with standard output into a closed pipe (`drctl ... | head -0`).
fn stdout_closed(mut command: Command) -> Command {
    command.stdout(Stdio::from(closed_pipe()));
    command
}

/// `command` with standard output and standard error into one closed pipe (`drctl ... 2>&1 | true`).
fn both_closed(mut command: Command) -> Command {
    let pipe = closed_pipe();
    command.stderr(Stdio::from(pipe.try_clone().expect("clone the pipe"))).stdout(Stdio::from(pipe));
    command
}

/// Fails unless drctl ended by itself with `code`, and without a panic in what it could print.
#[track_caller]
fn expect_quiet_exit(out: &support::Out, code: i32, context: &str) {
    assert!(!out.all().contains("panicked"), "{context}: drctl panicked\n{out}");
    assert_eq!(out.code(), Some(code), "{context}: exit code (101 is a panic)\n{out}");
}

/// A plan whose failover waits a moment and then leaves `marker` behind, so a test can tell that
/// the run went all the way, and whose failback does nothing.
fn marker_plan(dir: &TestDir, marker: &std::path::Path) -> std::path::PathBuf {
    let steps = format!(
        "  - id: settle\n    type: wait\n    with: {{duration: 50ms}}\n\
         \x20 - id: mark\n    type: command\n    after: [settle]\n    with: {{run: [touch, \"{}\"]}}\n",
        marker.display()
    );
    dir.write_plan("p.yaml", &plan("p", &steps))
}

fn failover(dir: &TestDir, plan: &std::path::Path, extra: &[&str]) -> Command {
    let mut command = drctl(dir);
    command.arg("failover").arg("--plan").arg(plan).arg("--yes").args(extra);
    command
}

#[test]
fn a_failover_whose_stdout_is_closed_finishes_and_exits_with_its_own_code() {
    let dir = TestDir::new("pipe-failover");
    let marker = dir.path().join("marked");
    let plan = marker_plan(&dir, &marker);
    let out = run(stdout_closed(failover(&dir, &plan, &[])));
    expect_quiet_exit(&out, 0, "failover | head -0");
    assert!(marker.exists(), "the last step ran\n{out}");
    let journal = dir.only_journal();
    let finished = records(&journal, "run_finished", None);
    assert_eq!(finished.len(), 1, "journaled to the end\n{}", show(&journal));
    assert_eq!(finished[0]["succeeded"], true, "{}", show(&journal));
    assert!(out.stderr.contains("✓ mark"), "progress still goes to stderr\n{out}");
}

#[test]
fn a_failover_with_every_output_closed_still_finishes_even_with_logs_and_json() {
    for extra in [&["-vv"][..], &["--output", "json"][..]] {
        let dir = TestDir::new("pipe-failover-all");
        let marker = dir.path().join("marked");
        let plan = marker_plan(&dir, &marker);
        let out = run(both_closed(failover(&dir, &plan, extra)));
        expect_quiet_exit(&out, 0, &format!("failover {extra:?} 2>&1 | true"));
        assert!(marker.exists(), "{extra:?}: the last step ran");
        let journal = dir.only_journal();
        assert_eq!(events(&journal).last().map(String::as_str), Some("run_finished"), "{}", show(&journal));
    }
}

#[test]
fn a_failed_run_behind_a_closed_pipe_exits_1_not_101() {
    let dir = TestDir::new("pipe-failed");
    let plan = dir.write_plan("p.yaml", &plan("p", "  - id: boom\n    type: command\n    with: {run: [\"false\"]}\n"));
    let out = run(stdout_closed(failover(&dir, &plan, &[])));
    expect_quiet_exit(&out, 1, "failing failover | head -0");
    assert!(out.stderr.contains("✗ boom"), "{out}");
    let journal = dir.only_journal();
    assert_eq!(records(&journal, "run_finished", None)[0]["succeeded"], false, "{}", show(&journal));
}

#[test]
fn read_only_commands_into_a_closed_pipe_end_quietly() {
    let dir = TestDir::new("pipe-commands");
    let marker = dir.path().join("marked");
    let plan = marker_plan(&dir, &marker);
    run(failover(&dir, &plan, &[])).expect_code(0, "a run for status to list");
    let bad = dir.write_plan("bad.yaml", "name: [\n");
    let path = |p: &std::path::Path| p.to_string_lossy().into_owned();
    let cases: Vec<(Vec<String>, i32)> = vec![
        (vec!["status".into()], 0),
        (vec!["status".into(), dir.only_run_id()], 0),
        (vec!["status".into(), "--output".into(), "json".into()], 0),
        (vec!["plan".into(), "validate".into(), path(&bad)], 3),
        (vec!["plan".into(), "validate".into(), path(&plan), path(&bad)], 3),
        (vec!["plan".into(), "show".into(), path(&plan)], 0),
        (vec!["plan".into(), "schema".into()], 0),
        (vec!["failover".into(), "--plan".into(), path(&plan), "--dry-run".into()], 0),
        (vec!["completions".into(), "bash".into()], 0),
        (vec!["completions".into(), "zsh".into()], 0),
        (vec!["drill".into(), "history".into()], 0),
        (vec!["--help".into()], 0),
        (vec!["--version".into()], 0),
        (vec!["status".into(), "--no-such-flag".into()], 2),
    ];
    for (args, code) in cases {
        for (how, command) in [("| head -0", stdout_closed(drctl(&dir))), ("2>&1 | head -1", both_closed(drctl(&dir)))]
        {
            let mut command = command;
            command.args(&args);
            expect_quiet_exit(&run(command), code, &format!("drctl {} {how}", args.join(" ")));
        }
    }
}

#[test]
fn incident_starts_before_1970_or_in_the_future_are_usage_errors_that_say_why() {
    let dir = TestDir::new("incident-start");
    let marker = dir.path().join("marked");
    let plan = marker_plan(&dir, &marker);
    for (start, why) in [
        ("1000y", "`1000y` ago is before 1970"),
        ("99999999h", "`99999999h` ago is before 1970"),
        ("1900-01-01T00:00:00Z", "the year must be 1970 or later"),
        ("2999-01-01T00:00:00Z", "in the future (this machine's clock says"),
    ] {
        let out = run(failover(&dir, &plan, &["--incident-start", start]));
        expect_quiet_exit(&out, 2, &format!("--incident-start {start}"));
        assert!(out.stderr.contains(why), "--incident-start {start}: {why}\n{out}");
        assert!(out.stderr.contains("--incident-start"), "names the option\n{out}");
    }
    assert!(dir.run_ids().is_empty(), "nothing ran");
    assert!(!marker.exists());

    // A few seconds ahead is clock skew, and counts as now.
    let soon = humantime::format_rfc3339_seconds(std::time::SystemTime::now() + std::time::Duration::from_secs(5));
    let out = run(failover(&dir, &plan, &["--incident-start", &soon.to_string()]));
    expect_quiet_exit(&out, 0, "--incident-start 5 s ahead");
    assert!(!out.stdout.contains("not reached"), "{out}");
}

#[test]
fn a_wait_too_long_for_the_clock_times_out_instead_of_overflowing() {
    let dir = TestDir::new("long-wait");
    let steps = "  - id: forever\n    type: wait\n    timeout: 1s\n    with: {duration: 4000000000000000h}\n";
    let plan = dir.write_plan("p.yaml", &plan("p", steps));
    let out = run(failover(&dir, &plan, &[]));
    assert!(!out.all().contains("panicked") && !out.all().contains("a bug in drctl"), "{out}");
    // Validation may refuse such a duration outright (exit 3); a run that starts must time out.
    match out.code() {
        Some(3) => assert!(out.stderr.contains("forever") || out.stderr.contains("duration"), "{out}"),
        _ => {
            expect_quiet_exit(&out, 1, "wait 4000000000000000h with timeout 1s");
            assert!(out.all().contains("timed out after 1.0s"), "{out}");
        }
    }
}

#[test]
fn logs_and_help_carry_no_colour_codes_or_rust_debug_text_when_not_on_a_terminal() {
    let dir = TestDir::new("no-colour");
    let marker = dir.path().join("marked");
    let plan = marker_plan(&dir, &marker);
    let mut verbose = failover(&dir, &plan, &["-vv"]);
    verbose.env("RUST_LOG", "debug");
    let out = run(verbose);
    out.expect_code(0, "failover -vv");
    assert!(out.stderr.contains("DEBUG"), "logs were written\n{out}");
    for debug_text in ["Some(", "None"] {
        assert!(!out.stderr.contains(debug_text), "a log line shows Rust's `{debug_text}`\n{out}");
    }
    let mut usage = drctl(&dir);
    usage.args(["failover", "--plan"]);
    let mut help = drctl(&dir);
    help.args(["failover", "--help"]);
    for out in [out, run(usage), run(help)] {
        assert!(!out.all().contains('\x1b'), "an escape code in output that is not a terminal\n{out}");
    }
}

//! SIGKILL trials for the local step types with a receipt (`command`, `http.check`, `approval`):
//! killed inside `act` and after the receipt (see `support::kill`), resumed, and compared with an
//! uninterrupted run of the same plan in a fresh world.

// Real time is the point here: tests wait on real servers and processes, not a run's clock.
#![allow(clippy::disallowed_methods)]

mod support;

use std::process::Command;
use std::time::Duration;

use support::kill::{
    DelayProxy, Hold, KillPoint, assert_same_outputs, crash_image, kill_and_resume, kill_when_and_resume, outputs,
};
use support::{Server, TestDir, drctl, plan, records, run, show};

/// A command step whose `run` appends a line to `effects` (the effect in the world) and takes
/// `run_s` seconds; its `observe` finds the line, its `verify` takes `verify_s` seconds.
fn command_plan(run_s: &str, verify_s: &str) -> String {
    let steps = format!(
        "  - id: cmd\n    type: command\n    with:\n      \
         run: [sh, -c, \"echo promoted >> effects && sleep {run_s} && tail -1 effects\"]\n      \
         observe: [sh, -c, \"test -f effects && tail -1 effects\"]\n      \
         verify: [sh, -c, \"sleep {verify_s} && test -f effects\"]\n"
    );
    plan("cmd", &steps)
}

fn failover(dir: &TestDir, plan_file: &str) -> Command {
    let mut command = drctl(dir);
    command.args(["failover", "--plan", plan_file, "--yes"]);
    command
}

fn resume(dir: &TestDir) -> impl Fn(&str) -> Command + '_ {
    move |run_id| {
        let mut command = drctl(dir);
        command.args(["resume", run_id, "--break-lock", "--yes"]);
        command
    }
}

/// The step's outputs in an uninterrupted run of `yaml` in a fresh directory.
fn uninterrupted(yaml: &str, step: &str) -> serde_json::Map<String, serde_json::Value> {
    let dir = TestDir::new("kill-fresh");
    let file = dir.write_plan("plan.yaml", yaml);
    let out = run(failover(&dir, file.to_str().unwrap()));
    out.expect_code(0, &dir.journals_text());
    outputs(&dir.only_journal(), step)
}

fn effect_lines(dir: &TestDir) -> usize {
    std::fs::read_to_string(dir.path().join("effects")).unwrap_or_default().lines().count()
}

#[test]
fn a_command_killed_while_running_is_observed_done_on_resume_and_not_run_again() {
    let yaml = command_plan("0.5", "0");
    let fresh = uninterrupted(&yaml, "cmd");
    let dir = TestDir::new("kill-command-acting");
    let file = dir.write_plan("plan.yaml", &yaml);
    // Killed once the command's effect is there, before it exits (and before any receipt).
    let effect_done = || effect_lines(&dir) > 0;
    let failover = failover(&dir, file.to_str().unwrap());
    let trial = kill_when_and_resume(&dir, failover, KillPoint::AfterActing("cmd"), effect_done, resume(&dir));
    trial.check_journal();
    assert_eq!(effect_lines(&dir), 1, "the command's effect happened once\n{}", trial.show());
    assert!(!trial.acted_again(), "observe found the effect: no second run\n{}", trial.show());
    assert_same_outputs(&trial.outputs("cmd"), &fresh, &[], &trial.show());
}

#[test]
fn a_command_killed_while_verifying_keeps_its_receipt_and_is_not_run_again() {
    let yaml = command_plan("0", "0.5");
    let fresh = uninterrupted(&yaml, "cmd");
    let dir = TestDir::new("kill-command-acted");
    let file = dir.write_plan("plan.yaml", &yaml);
    let trial =
        kill_and_resume(&dir, failover(&dir, file.to_str().unwrap()), KillPoint::AfterActed("cmd"), resume(&dir));
    trial.check_journal();
    assert_eq!(effect_lines(&dir), 1, "the command's effect happened once\n{}", trial.show());
    assert_same_outputs(&trial.outputs("cmd"), &fresh, &[], &trial.show());
}

/// An `http.check` of `url`, probing every 10 ms.
fn check_plan(url: &str) -> String {
    let steps = format!("  - id: health\n    type: http.check\n    with:\n      url: {url}\n      interval: 10ms\n");
    plan("check", &steps)
}

#[test]
fn an_http_check_killed_while_probing_probes_again_with_the_same_outputs() {
    let server = Server::start();
    // `/flaky/NAME/1` answers 503 once (observation finds the endpoint down, so the step acts), then 200.
    let fresh = uninterrupted(&check_plan(&server.url("/flaky/fresh/1")), "health");
    // act's probe (the second request) is held 3 s on its way: the kill lands inside act.
    let proxy = DelayProxy::start(
        &server.url("").replace("http://", ""),
        vec![Hold::request("/flaky/trial/1", Duration::from_secs(3)).only_match(2)],
    );
    let dir = TestDir::new("kill-check-acting");
    let file = dir.write_plan("plan.yaml", &check_plan(&format!("{}/flaky/trial/1", proxy.url())));
    // Killed once act's probe has reached the proxy (and waits there).
    let probing = || proxy.matched(0) >= 2;
    let failover = failover(&dir, file.to_str().unwrap());
    let trial = kill_when_and_resume(&dir, failover, KillPoint::AfterActing("health"), probing, resume(&dir));
    trial.check_journal();
    assert!(
        proxy.matched(0) >= 3,
        "observe, the killed probe, the resumed observe: {}\n{}{}",
        proxy.matched(0),
        proxy.log(),
        trial.show()
    );
    // latency_ms measures time: it is compared for presence only.
    assert_same_outputs(&trial.outputs("health"), &fresh, &["latency_ms"], &trial.show());
}

/// `http.check` and `approval` verify from their receipt alone, so no world keeps them between
/// `step_acted` and `step_succeeded` long enough for a kill: these trials resume the crash image
/// of that moment (the journal cut right after `step_acted`).
#[test]
fn an_http_check_resumed_after_its_receipt_reports_the_journaled_probe_without_probing_again() {
    let server = Server::start();
    let dir = TestDir::new("kill-check-acted");
    let file = dir.write_plan("plan.yaml", &check_plan(&server.url("/flaky/trial/1")));
    run(failover(&dir, file.to_str().unwrap())).expect_code(0, &dir.journals_text());
    let run_id = dir.only_run_id();
    let fresh = outputs(&dir.journal(&run_id), "health");
    let probes = server.requests().len();
    let image = crash_image(&dir, &run_id, "step_acted", "health");
    let receipt = records(&image, "step_acted", Some("health"))[0]["receipt"].clone();

    let out = run(resume(&dir)(&run_id));
    out.expect_code(0, &dir.journals_text());
    let journal = dir.journal(&run_id);
    let resumed = outputs(&journal, "health");
    // Every output, latency_ms included: they are the journaled probe's, not a new one's.
    assert_same_outputs(&resumed, &fresh, &[], &show(&journal));
    assert_eq!(serde_json::Value::Object(resumed), receipt, "{}", show(&journal));
    assert_eq!(server.requests().len(), probes, "the resumed step did not probe again\n{}", server.log());
    assert!(records(&journal, "step_acting", Some("health")).len() == 1, "{}", show(&journal));
}

#[test]
fn an_approval_resumed_after_its_receipt_is_not_asked_again() {
    let steps = "  - id: go\n    type: approval\n    with: {message: \"Fail over?\"}\n";
    let dir = TestDir::new("kill-approval-acted");
    let file = dir.write_plan("plan.yaml", &plan("approve", steps));
    run(failover(&dir, file.to_str().unwrap())).expect_code(0, &dir.journals_text());
    let run_id = dir.only_run_id();
    let fresh = outputs(&dir.journal(&run_id), "go");
    crash_image(&dir, &run_id, "step_acted", "go");

    // Without --yes and without a terminal an approval that asked again would refuse.
    let mut command = drctl(&dir);
    command.args(["resume", &run_id, "--break-lock"]);
    let out = run(command);
    out.expect_code(0, &dir.journals_text());
    let journal = dir.journal(&run_id);
    assert_same_outputs(&outputs(&journal, "go"), &fresh, &[], &show(&journal));
    assert_eq!(outputs(&journal, "go")["approved_via"], "--yes", "{}", show(&journal));
    assert_eq!(records(&journal, "step_acting", Some("go")).len(), 1, "{}", show(&journal));
}

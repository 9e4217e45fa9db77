//! A chat webhook that fails must not stop a failover: `notify.webhook` continues on failure by
//! default (`on_failure: continue`). The run completes, and the failure is a warning in the progress,
//! the summary, the journal and `drctl status`.

mod support;

use support::{Server, TestDir, drctl, plan, run};

/// A failover that announces on a webhook (the recording server answers 404 for it) and then
/// switches "DNS" (an effect on the same server), which marks recovery.
fn failover_plan(server: &Server, announce_extra: &str) -> String {
    plan(
        "webhook-down",
        &format!(
            "  - id: announce\n    type: notify.webhook\n{announce_extra}    with:\n      url: \"{}\"\n      template: incident_detected\n      severity: P0\n      service: app\n      impact: east is down\n\
             \x20 - id: dns\n    type: http.request\n    after: [announce]\n    marks_recovery: true\n    with: {{method: POST, url: \"{}\"}}",
            server.url("/hooks/chat"),
            server.url("/effects/dns"),
        ),
    )
}

#[test]
fn a_webhook_answering_404_is_a_warning_and_the_failover_completes() {
    let server = Server::start();
    let dir = TestDir::new("webhook-404");
    let path = dir.write_plan("p.yaml", &failover_plan(&server, ""));
    let out = run({
        let mut c = drctl(&dir);
        c.args(["failover", "--plan"]).arg(&path);
        c
    });
    out.expect_code(0, "the failover completes although the webhook failed");
    assert_eq!(server.requests_to("/hooks/chat").len(), 1, "{}", server.log());
    assert_eq!(server.effect_count("dns"), 1, "the step after the webhook ran\n{}", server.log());
    // The progress (standard error) and the summary (standard output) both say so.
    assert!(out.stderr.contains("⚠ announce failed after"), "{out}");
    assert!(out.stderr.contains("the run goes on (on_failure: continue)"), "{out}");
    assert!(out.stdout.contains(": succeeded"), "{out}");
    assert!(
        out.stdout.contains("⚠ warning: step `announce` failed and the run went on (on_failure: continue): "),
        "{out}"
    );
    assert!(out.stdout.contains("404"), "the warning says what the webhook answered\n{out}");
    assert!(out.stdout.contains(": met), from "), "RTO measured\n{out}");
    assert!(out.stdout.contains("to success of step `dns`"), "RTO measured to the DNS step\n{out}");

    // The journal records the failure as continued, and the run as succeeded with a warning.
    let journal = dir.only_journal();
    let failed: Vec<_> = journal.iter().filter(|r| r["event"] == "step_failed").collect();
    assert_eq!(failed.len(), 1, "{}", dir.journals_text());
    assert_eq!((failed[0]["step"].as_str(), failed[0]["continued"].as_bool()), (Some("announce"), Some(true)));
    let finished = journal.last().unwrap();
    assert_eq!(finished["event"], "run_finished");
    assert_eq!(finished["succeeded"], true);
    assert!(finished["message"].as_str().unwrap().contains("completed with warnings"), "{finished}");

    // `drctl status RUN` shows the same warning.
    let status = run({
        let mut c = drctl(&dir);
        c.args(["status", &dir.only_run_id()]);
        c
    });
    status.expect_code(0, "status");
    assert!(status.stdout.contains("⚠ warning: step `announce` failed"), "{status}");
}

#[test]
fn json_output_marks_the_failure_as_continued_and_the_summary_lists_the_warning() {
    let server = Server::start();
    let dir = TestDir::new("webhook-404-json");
    let path = dir.write_plan("p.yaml", &failover_plan(&server, ""));
    let out = run({
        let mut c = drctl(&dir);
        c.args(["--output", "json", "failover", "--plan"]).arg(&path);
        c
    });
    out.expect_code(0, "json run");
    let lines = out.json_lines();
    let failed = lines.iter().find(|l| l["event"] == "step_failed").expect("a step_failed event");
    assert_eq!(failed["continued"], true, "{failed}");
    let summary = &lines.iter().find(|l| l["event"] == "run_summary").expect("a run summary")["summary"];
    assert_eq!(summary["state"], "succeeded");
    assert_eq!(summary["warnings"].as_array().map(Vec::len), Some(1), "{summary}");
}

#[test]
fn with_on_failure_stop_the_same_webhook_stops_the_failover() {
    let server = Server::start();
    let dir = TestDir::new("webhook-404-stop");
    let path = dir.write_plan("p.yaml", &failover_plan(&server, "    on_failure: stop\n"));
    let out = run({
        let mut c = drctl(&dir);
        c.args(["failover", "--plan"]).arg(&path);
        c
    });
    out.expect_code(1, "a stop step's failure fails the run");
    assert_eq!(server.effect_count("dns"), 0, "{}", server.log());
    assert!(out.stdout.contains("skipped"), "{out}");
    assert!(!out.stdout.contains("⚠ warning"), "{out}");
}

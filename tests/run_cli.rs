//! End-to-end tests of `drctl failover`, `resume`, `status` and friends: the real binary against a
//! recording HTTP server, one temp state directory per test. Assertions use server-side
//! timestamps and journal records, never absolute elapsed times.

mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use support::{Background, Out, Server, TestDir, drctl, events, plan, records, run, show, wait_until};

/// `drctl failover --plan <path> --yes` plus `extra` arguments.
fn failover(dir: &TestDir, plan_path: &std::path::Path, extra: &[&str]) -> Out {
    let mut command = drctl(dir);
    command.arg("failover").arg("--plan").arg(plan_path).arg("--yes").args(extra);
    run(command)
}

fn resume(dir: &TestDir, run_id: &str, extra: &[&str]) -> Out {
    let mut command = drctl(dir);
    command.arg("resume").arg(run_id).arg("--yes").args(extra);
    run(command)
}

/// `drctl status RUN_ID --output json`, parsed.
fn status_json(dir: &TestDir, run_id: &str) -> Value {
    let mut command = drctl(dir);
    command.args(["status", run_id, "--output", "json"]);
    let out = run(command);
    out.expect_code(0, "status --output json");
    let lines = out.json_lines();
    assert_eq!(lines.len(), 1, "one summary line\n{out}");
    lines.into_iter().next().unwrap()
}

/// Step id → state label from a run summary.
fn step_states(summary: &Value) -> BTreeMap<String, String> {
    summary["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| (s["id"].as_str().unwrap().to_string(), s["state"].as_str().unwrap().to_string()))
        .collect()
}

/// Everything worth seeing when a test fails.
fn context(out: &Out, dir: &TestDir, server: &Server) -> String {
    format!("{out}{}--- server requests:\n{}", dir.journals_text(), server.log())
}

/// An `http.request` step that POSTs effect `name` and observes `GET /effects/<name>`.
fn effect_step(server: &Server, id: &str, name: &str, after: &[&str]) -> String {
    let after = after_line(after);
    let post = server.url(&format!("/effects/{name}"));
    format!(
        "  - id: {id}\n    type: http.request\n{after}    with:\n      method: POST\n      url: {post}\n      \
         body: apply\n      observe:\n        url: {post}\n"
    )
}

/// `after: [...]` for a step, or nothing.
fn after_line(after: &[&str]) -> String {
    if after.is_empty() { String::new() } else { format!("    after: [{}]\n", after.join(", ")) }
}

/// An `http.request` step that GETs `url` (no observe).
fn get_step(id: &str, after: &[&str], url: &str) -> String {
    let after = after_line(after);
    format!("  - id: {id}\n    type: http.request\n{after}    with:\n      method: GET\n      url: {url}\n")
}

/// An `http.check` step that probes `url` once.
fn check_step(id: &str, after: &[&str], url: &str) -> String {
    let after = after_line(after);
    format!("  - id: {id}\n    type: http.check\n{after}    with:\n      url: {url}\n      attempts: 1\n")
}

/// Whether process `pid` is gone (or a zombie nobody reaped yet).
fn process_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
    }
}

#[test]
fn independent_steps_run_concurrently() {
    let server = Server::start();
    let dir = TestDir::new("overlap");
    let (a, b) = (server.url("/slow/700/a"), server.url("/slow/700/b"));
    let steps = format!(
        "  - id: slow-a\n    type: http.request\n    with:\n      method: GET\n      url: {a}\n\
         \x20 - id: slow-b\n    type: http.check\n    with:\n      url: {b}\n      attempts: 1\n"
    );
    let plan_path = dir.write_plan("overlap.yaml", &plan("overlap", &steps));
    let out = failover(&dir, &plan_path, &[]);
    let ctx = context(&out, &dir, &server);
    out.expect_code(0, &ctx);

    let (ra, rb) = (server.requests_to("/slow/700/a"), server.requests_to("/slow/700/b"));
    assert_eq!((ra.len(), rb.len()), (1, 1), "one request each\n{ctx}");
    let (ra, rb) = (&ra[0], &rb[0]);
    let (a_end, b_end) = (ra.completed.expect("a answered"), rb.completed.expect("b answered"));
    assert!(ra.arrived < b_end && rb.arrived < a_end, "the two slow requests did not overlap\n{ctx}");
    // Both 700 ms answers were served within less than their sum: the run did not serialize them.
    let span = a_end.max(b_end) - ra.arrived.min(rb.arrived);
    let sum = (a_end - ra.arrived) + (b_end - rb.arrived);
    assert!(span < sum, "span {span:?} is not under the sum {sum:?}\n{ctx}");

    // The journal agrees: both steps started before either finished.
    let journal = dir.only_journal();
    let ev = events(&journal);
    let last_start = ev.iter().rposition(|e| e == "step_started").unwrap();
    let first_success = ev.iter().position(|e| e == "step_succeeded").unwrap();
    assert!(last_start < first_success, "steps ran one after the other\n{}", show(&journal));
}

#[test]
fn a_failing_step_is_retried_until_it_succeeds() {
    let server = Server::start();
    let dir = TestDir::new("retry");
    let url = server.url("/flaky/x/2");
    let steps = format!(
        "  - id: flaky\n    type: http.request\n    retries: 2\n    with:\n      method: GET\n      url: {url}\n"
    );
    let plan_path = dir.write_plan("retry.yaml", &plan("retry", &steps));
    let out = failover(&dir, &plan_path, &[]);
    let ctx = context(&out, &dir, &server);
    out.expect_code(0, &ctx);

    let requests = server.requests_to("/flaky/x/2");
    assert_eq!(requests.len(), 3, "two failures and one success\n{ctx}");
    assert_eq!(requests.iter().map(|r| r.status).collect::<Vec<_>>(), vec![503, 503, 200], "{ctx}");

    let journal = dir.only_journal();
    let retrying = records(&journal, "step_retrying", Some("flaky"));
    assert_eq!(retrying.len(), 2, "two step_retrying records\n{}", show(&journal));
    assert_eq!(retrying.iter().map(|r| r["attempt"].as_u64().unwrap()).collect::<Vec<_>>(), vec![1, 2]);
    assert!(retrying.iter().all(|r| r["error"].as_str().unwrap().contains("503")), "{}", show(&journal));
    // Backoff: base 1 s doubling, jittered into the upper half of each delay.
    let delays: Vec<u64> = retrying.iter().map(|r| r["delay_ms"].as_u64().unwrap()).collect();
    assert!((500..=1000).contains(&delays[0]) && (1000..=2000).contains(&delays[1]), "delays {delays:?}");
    // The requests were really spaced by at least the journaled delays (a lower bound only).
    for (i, delay) in delays.iter().enumerate() {
        let gap = requests[i + 1].arrived - requests[i].arrived;
        assert!(
            gap >= Duration::from_millis(*delay),
            "request {} came {gap:?} after the previous, before the {delay} ms backoff\n{ctx}",
            i + 2
        );
    }
    let started: Vec<u64> =
        records(&journal, "step_started", Some("flaky")).iter().map(|r| r["attempt"].as_u64().unwrap()).collect();
    assert_eq!(started, vec![1, 2, 3]);
    assert_eq!(records(&journal, "step_succeeded", Some("flaky")).len(), 1);
}

#[test]
fn a_step_past_its_timeout_fails_the_run() {
    let server = Server::start();
    let dir = TestDir::new("timeout");
    let hang = server.url("/hang");
    let pid_file = dir.path().join("sleep.pid");
    let pid_file = pid_file.display();
    let steps = format!(
        "  - id: hang-http\n    type: http.request\n    timeout: 1s\n    with:\n      method: GET\n      url: {hang}\n\
         \x20 - id: hang-cmd\n    type: command\n    timeout: 1s\n    with:\n      \
         run: [sh, -c, \"echo $$ > {pid_file}; exec sleep 30\"]\n\
         \x20 - id: after-hang\n    type: wait\n    after: [hang-http]\n    with:\n      duration: 1ms\n"
    );
    let plan_path = dir.write_plan("timeout.yaml", &plan("timeout", &steps));
    let out = failover(&dir, &plan_path, &[]);
    let ctx = context(&out, &dir, &server);
    out.expect_code(1, &ctx);
    assert!(out.all().contains("hang-http") && out.all().contains("hang-cmd"), "the output names the steps\n{ctx}");
    assert!(out.all().contains("timed out"), "the output says why\n{ctx}");

    let journal = dir.only_journal();
    for step in ["hang-http", "hang-cmd"] {
        let failed = records(&journal, "step_failed", Some(step));
        assert_eq!(failed.len(), 1, "{step} failed once\n{}", show(&journal));
        let error = failed[0]["error"].as_str().unwrap();
        assert!(error.contains("timed out after 1"), "{step}: {error}");
    }
    assert_eq!(records(&journal, "step_skipped", Some("after-hang")).len(), 1, "{}", show(&journal));
    assert_eq!(events(&journal).last().map(String::as_str), Some("run_finished"));
    assert_eq!(journal.last().unwrap()["succeeded"], false);
    assert_eq!(server.requests_to("/hang").len(), 1, "{ctx}");

    // The timed-out command was killed, not left running.
    let pid: u32 = std::fs::read_to_string(dir.path().join("sleep.pid"))
        .expect("the command wrote its pid")
        .trim()
        .parse()
        .expect("a pid");
    assert!(
        wait_until(Duration::from_secs(5), || process_gone(pid)),
        "`sleep 30` (pid {pid}) still runs after the timeout"
    );
}

#[test]
fn a_failed_step_skips_its_dependants_and_resume_finishes_without_repeating() {
    let server = Server::start();
    let dir = TestDir::new("skip-resume");
    let gate = server.url("/switch/gate");
    let check = server.url("/effects/b");
    let steps = [
        effect_step(&server, "effect-a", "a", &[]),
        effect_step(&server, "effect-d", "d", &[]),
        get_step("gate", &["effect-a"], &gate),
        effect_step(&server, "effect-b", "b", &["gate"]),
        check_step("check-b", &["effect-b"], &check),
    ]
    .concat();
    let plan_path = dir.write_plan("skip.yaml", &plan("skip", &steps));
    let out = failover(&dir, &plan_path, &[]);
    let ctx = context(&out, &dir, &server);
    out.expect_code(1, &ctx);
    assert!(out.all().contains("gate"), "the output names the failed step\n{ctx}");
    let run_id = dir.only_run_id();
    assert!(out.stdout.contains(&format!("drctl resume {run_id}")), "the output says how to continue\n{ctx}");

    let journal = dir.only_journal();
    assert_eq!(records(&journal, "step_failed", Some("gate")).len(), 1, "{}", show(&journal));
    for step in ["effect-b", "check-b"] {
        let skipped = records(&journal, "step_skipped", Some(step));
        assert_eq!(skipped.len(), 1, "{step} skipped\n{}", show(&journal));
        assert_eq!(records(&journal, "step_started", Some(step)).len(), 0, "{step} never started");
    }
    assert_eq!((server.effect_count("a"), server.effect_count("d"), server.effect_count("b")), (1, 1, 0), "{ctx}");

    // `drctl status RUN_ID` shows the failure and the skipped steps.
    let mut command = drctl(&dir);
    command.args(["status", &run_id]);
    let status = run(command);
    status.expect_code(0, "status");
    for (step, state) in [
        ("effect-a", "succeeded"),
        ("effect-d", "succeeded"),
        ("gate", "failed"),
        ("effect-b", "skipped"),
        ("check-b", "skipped"),
    ] {
        assert!(
            status.stdout.lines().any(|l| l.contains(step) && l.contains(state)),
            "status does not show {step} as {state}\n{status}"
        );
    }
    let summary = status_json(&dir, &run_id);
    assert_eq!(summary["state"], "failed", "{summary}");
    let states = step_states(&summary);
    assert_eq!(states["effect-b"], "skipped");
    assert_eq!(states["check-b"], "skipped");
    assert_eq!(states["gate"], "failed");

    // Fix the cause and resume: the rest runs, what succeeded is not repeated.
    server.set_switch("gate", true);
    let requests_before = server.requests().len();
    let out = resume(&dir, &run_id, &[]);
    let ctx = context(&out, &dir, &server);
    out.expect_code(0, &ctx);
    assert_eq!((server.effect_count("a"), server.effect_count("d"), server.effect_count("b")), (1, 1, 1), "{ctx}");
    let after: Vec<_> = server.requests()[requests_before..].iter().map(|r| r.path.clone()).collect();
    assert!(
        !after.iter().any(|p| p == "/effects/a" || p == "/effects/d"),
        "succeeded steps were touched again: {after:?}\n{ctx}"
    );

    let journal = dir.only_journal();
    for step in ["effect-a", "effect-d"] {
        assert_eq!(records(&journal, "step_started", Some(step)).len(), 1, "{step} started again\n{}", show(&journal));
    }
    assert_eq!(records(&journal, "run_resumed", None).len(), 1);
    assert_eq!(journal.last().unwrap()["event"], "run_finished");
    assert_eq!(journal.last().unwrap()["succeeded"], true);
    let summary = status_json(&dir, &run_id);
    assert_eq!(summary["state"], "succeeded", "{summary}");
    assert_eq!(summary["resumes"], 1);
    // `check-b` observes first and finds /effects/b already healthy: a check that "passed".
    assert!(
        step_states(&summary).values().all(|s| ["succeeded", "passed", "already done"].contains(&s.as_str())),
        "{summary}"
    );
}

#[test]
fn dry_run_changes_nothing_and_lists_every_step() {
    let server = Server::start();
    let dir = TestDir::new("dry-run");
    let touched = dir.path().join("touched");
    let touched = touched.display();
    let health = server.url("/slow/1");
    let steps = [
        effect_step(&server, "effect-a", "a", &[]),
        format!("  - id: check\n    type: http.check\n    after: [effect-a]\n    with:\n      url: {health}\n"),
        "  - id: pause\n    type: wait\n    with:\n      duration: 5s\n".to_string(),
        format!("  - id: touch\n    type: command\n    after: [pause]\n    with:\n      run: [touch, {touched}]\n"),
    ]
    .concat();
    let plan_path = dir.write_plan("dry.yaml", &plan("dry", &steps));
    let ids = ["effect-a", "check", "pause", "touch"];

    let out = failover(&dir, &plan_path, &["--dry-run"]);
    let ctx = context(&out, &dir, &server);
    out.expect_code(0, &ctx);
    for id in ids {
        assert!(out.stdout.lines().any(|l| l.contains(id)), "{id} is not listed\n{ctx}");
    }
    assert!(out.stdout.contains("POST") && out.stdout.contains("/effects/a"), "the action is described\n{ctx}");

    let mut command = drctl(&dir);
    command.arg("failover").arg("--plan").arg(&plan_path).args(["--dry-run", "--output", "json"]);
    let json = run(command);
    json.expect_code(0, "dry run as JSON");
    // The steps, then the preflight's report as one `preflight` event.
    let (events, steps): (Vec<Value>, Vec<Value>) =
        json.json_lines().into_iter().partition(|l| l.get("event").is_some());
    assert_eq!(events.len(), 1, "{json}");
    assert_eq!((&events[0]["event"], &events[0]["report"]["ready"]), (&Value::from("preflight"), &Value::from(true)));
    let mut listed: Vec<String> = steps.iter().map(|l| l["id"].as_str().unwrap_or_default().to_string()).collect();
    listed.sort();
    let mut expected: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(listed, expected, "{json}");

    assert!(server.requests().is_empty(), "a dry run sent requests\n{}", server.log());
    assert!(dir.run_ids().is_empty(), "a dry run created a run\n{}", dir.journals_text());
    assert!(!dir.path().join("touched").exists(), "a dry run ran a command");
}

#[test]
fn json_output_is_one_object_per_line() {
    let server = Server::start();
    let dir = TestDir::new("json");
    let steps = [
        effect_step(&server, "effect-a", "a", &[]),
        "  - id: pause\n    type: wait\n    after: [effect-a]\n    with:\n      duration: 10ms\n".to_string(),
    ]
    .concat();
    let plan_path = dir.write_plan("json.yaml", &plan("json", &steps));
    let out = failover(&dir, &plan_path, &["--output", "json"]);
    let ctx = context(&out, &dir, &server);
    out.expect_code(0, &ctx);
    let lines = out.json_lines();
    let names: Vec<&str> = lines.iter().map(|l| l["event"].as_str().unwrap_or_default()).collect();
    assert!(names.iter().all(|n| !n.is_empty()), "every line has an event: {names:?}\n{ctx}");
    assert_eq!(names.first(), Some(&"run_started"), "{ctx}");
    let started = &lines[0];
    assert_eq!(started["run_id"], dir.only_run_id().as_str());
    assert_eq!(started["steps"].as_array().map(Vec::len), Some(2), "{started}");
    for step in ["effect-a", "pause"] {
        assert!(
            lines.iter().any(|l| l["event"] == "step_succeeded" && l["step"] == step),
            "no step_succeeded for {step}\n{ctx}"
        );
    }
    let finished = lines.iter().position(|l| l["event"] == "run_finished").expect("run_finished");
    assert_eq!(lines[finished]["succeeded"], true);
    let summary = lines.last().unwrap();
    assert_eq!(summary["event"], "run_summary", "the summary comes last\n{ctx}");
    assert!(finished < lines.len() - 1);
    assert_eq!(summary["summary"]["state"], "succeeded", "{summary}");
    assert_eq!(summary["summary"]["steps"].as_array().map(Vec::len), Some(2), "{summary}");
    assert!(
        lines.iter().all(|l| l.get("at").is_some() || l["event"] == "run_summary"),
        "events carry their time\n{ctx}"
    );
}

#[test]
fn a_second_concurrent_run_of_the_plan_is_refused_naming_the_holder() {
    let server = Server::start();
    let dir = TestDir::new("lock");
    let (first, plan_path) = start_paused_failover(&server, &dir, "lock", "3s");
    let started = wait_until(Duration::from_secs(20), || {
        dir.run_ids().first().is_some_and(|id| events(&dir.journal(id)).iter().any(|e| e == "step_started"))
    });
    assert!(started, "the first run did not start\n{}", dir.journals_text());
    let run_id = dir.only_run_id();
    let host = dir.journal(&run_id)[0]["host"].as_str().expect("run_started names its host").to_string();

    let second = failover(&dir, &plan_path, &[]);
    let resumed = resume(&dir, &run_id, &[]);
    let mut command = drctl(&dir);
    command.arg("status");
    let listing = run(command);
    let journal_during = dir.journal(&run_id);
    let first_pid = first.pid();
    let first = first.finish();
    listing.expect_code(0, "status while running");
    let running_line = format!("running (pid {first_pid} on {host})");
    assert!(
        listing.stdout.lines().any(|l| l.contains(&run_id) && l.contains(&running_line)),
        "status does not show the run as `{running_line}`\n{listing}"
    );
    let ctx = format!("first run:\n{first}second run:\n{second}resume:\n{resumed}{}", dir.journals_text());
    for out in [&second, &resumed] {
        out.expect_code(4, &ctx);
        assert!(out.stderr.contains("locked"), "the refusal says the plan is locked\n{ctx}");
        assert!(out.stderr.contains(&format!("pid {first_pid}")), "the refusal names the pid\n{ctx}");
        assert!(out.stderr.contains(&format!("host {host}")), "the refusal names the host\n{ctx}");
        assert!(out.stderr.contains(&run_id), "the refusal names the run\n{ctx}");
    }
    first.expect_code(0, &ctx);
    assert_eq!(dir.run_ids().len(), 1, "{ctx}");
    assert!(records(&journal_during, "run_resumed", None).is_empty(), "a refused command wrote to the journal\n{ctx}");
    assert_eq!(journal_during[0]["pid"].as_u64(), Some(u64::from(first_pid)), "the journal names the first run's pid");
    assert_eq!(server.effect_count("a"), 1);
}

#[test]
fn sigint_interrupts_the_run_and_resume_completes_it() {
    interrupt_and_resume("INT", "SIGINT");
}

#[test]
fn sigterm_interrupts_the_run_like_sigint() {
    interrupt_and_resume("TERM", "SIGTERM");
}

/// Sends `signal` to a run in the middle of a wait: exit 130, `run_interrupted` naming `reason`,
/// and `drctl resume` completes the run.
fn interrupt_and_resume(signal: &str, reason: &str) {
    let server = Server::start();
    let dir = TestDir::new(&format!("sig{signal}"));
    let (running, _) = start_paused_failover(&server, &dir, "sigint", "2s");
    // `step_acting` is committed by the engine loop, which has by then installed its signal handlers.
    let acting = wait_until(Duration::from_secs(20), || {
        dir.run_ids().first().is_some_and(|id| !records(&dir.journal(id), "step_acting", Some("pause")).is_empty())
    });
    assert!(acting, "the wait step never started acting\n{}", dir.journals_text());
    running.signal(signal);
    let out = running.finish();
    let ctx = context(&out, &dir, &server);
    out.expect_code(130, &ctx);
    let run_id = dir.only_run_id();
    assert!(out.stdout.contains(&format!("drctl resume {run_id}")), "{ctx}");
    let journal = dir.only_journal();
    assert_eq!(events(&journal).last().map(String::as_str), Some("run_interrupted"), "{ctx}");
    assert!(journal.last().unwrap()["reason"].as_str().unwrap().contains(reason), "{ctx}");
    assert_eq!(server.effect_count("a"), 0, "{ctx}");
    assert_eq!(status_json(&dir, &run_id)["state"], "interrupted");

    let out = resume(&dir, &run_id, &[]);
    let ctx = context(&out, &dir, &server);
    out.expect_code(0, &ctx);
    assert_eq!(server.effect_count("a"), 1, "{ctx}");
    let journal = dir.only_journal();
    assert_eq!(journal.last().unwrap()["event"], "run_finished", "{ctx}");
    assert_eq!(journal.last().unwrap()["succeeded"], true, "{ctx}");
    assert_eq!(status_json(&dir, &run_id)["state"], "succeeded");
}

#[test]
fn a_killed_run_leaves_its_lock_which_resume_takes_over_as_its_holder_is_dead() {
    let server = Server::start();
    let dir = TestDir::new("kill-lock");
    let (running, _) = start_paused_failover(&server, &dir, "killed", "2s");
    let acting = wait_until(Duration::from_secs(20), || {
        dir.run_ids().first().is_some_and(|id| !records(&dir.journal(id), "step_acting", Some("pause")).is_empty())
    });
    assert!(acting, "the wait step never started acting\n{}", dir.journals_text());
    running.signal("KILL");
    let killed = running.finish();
    assert_eq!(killed.code(), None, "killed by a signal\n{killed}");
    let run_id = dir.only_run_id();

    let mut command = drctl(&dir);
    command.arg("status");
    let listing = run(command);
    listing.expect_code(0, "status");
    assert!(listing.stdout.lines().any(|l| l.contains(&run_id) && l.contains("crashed")), "{listing}");

    // The lock names a pid of this host that is gone: taken over without --break-lock, and said so.
    let out = resume(&dir, &run_id, &[]);
    let ctx = context(&out, &dir, &server);
    out.expect_code(0, &ctx);
    assert!(out.stderr.contains("no longer running"), "{ctx}");
    assert_eq!(server.effect_count("a"), 1, "{ctx}");
    assert_eq!(status_json(&dir, &run_id)["state"], "succeeded");
}

#[test]
fn resuming_with_a_changed_plan_is_refused_unless_allowed() {
    let server = Server::start();
    let dir = TestDir::new("plan-change");
    let gate = server.url("/switch/gate");
    let steps = [effect_step(&server, "effect-a", "a", &[]), get_step("gate", &["effect-a"], &gate)].concat();
    let yaml = plan("changing", &steps);
    let plan_path = dir.write_plan("changing.yaml", &yaml);
    let out = failover(&dir, &plan_path, &[]);
    out.expect_code(1, &context(&out, &dir, &server));
    let run_id = dir.only_run_id();

    dir.write_plan("changing.yaml", &format!("{yaml}# edited after the run started\n"));
    server.set_switch("gate", true);
    let refused = resume(&dir, &run_id, &[]);
    let ctx = context(&refused, &dir, &server);
    refused.expect_code(4, &ctx);
    assert!(refused.stderr.contains("changed since run"), "the refusal says the plan changed\n{ctx}");
    assert!(refused.stderr.contains("--allow-plan-change"), "the refusal says how to proceed\n{ctx}");
    assert!(
        records(&dir.only_journal(), "run_resumed", None).is_empty(),
        "a refused resume wrote to the journal\n{ctx}"
    );
    assert_eq!(server.requests_to("/switch/gate").len(), 1, "a refused resume ran steps\n{ctx}");

    let out = resume(&dir, &run_id, &["--allow-plan-change"]);
    let ctx = context(&out, &dir, &server);
    out.expect_code(0, &ctx);
    let journal = dir.only_journal();
    let resumed = records(&journal, "run_resumed", None);
    assert_eq!(resumed.len(), 1, "{ctx}");
    assert_eq!(resumed[0]["plan_changed"], true, "{ctx}");
    assert_eq!(server.effect_count("a"), 1, "{ctx}");
    assert_eq!(status_json(&dir, &run_id)["state"], "succeeded");
}

#[test]
fn status_lists_runs() {
    let dir = TestDir::new("status");
    let mut command = drctl(&dir);
    command.arg("status");
    let empty = run(command);
    empty.expect_code(0, "status without runs");
    assert!(empty.stdout.contains("no runs"), "{empty}");

    let steps = "  - id: pause\n    type: wait\n    with:\n      duration: 1ms\n";
    let plan_path = dir.write_plan("listed.yaml", &plan("listed", steps));
    failover(&dir, &plan_path, &[]).expect_code(0, "failover");
    let mut command = drctl(&dir);
    command.arg("failback").arg("--plan").arg(&plan_path).arg("--yes");
    run(command).expect_code(0, "failback");
    let ids = dir.run_ids();
    assert_eq!(ids.len(), 2, "{}", dir.journals_text());

    let mut command = drctl(&dir);
    command.arg("status");
    let listing = run(command);
    listing.expect_code(0, "status");
    for id in &ids {
        let line = listing.stdout.lines().find(|l| l.contains(id.as_str()));
        let line = line.unwrap_or_else(|| panic!("run {id} is not listed\n{listing}"));
        assert!(line.contains("succeeded"), "{line}");
    }
    assert!(listing.stdout.contains("failover") && listing.stdout.contains("failback"), "{listing}");

    let mut command = drctl(&dir);
    command.args(["status", "--output", "json"]);
    let json = run(command);
    json.expect_code(0, "status --output json");
    let lines = json.json_lines();
    let mut listed: Vec<String> = lines.iter().map(|l| l["run_id"].as_str().unwrap_or_default().to_string()).collect();
    listed.sort();
    assert_eq!(listed, ids, "{json}");
    assert!(lines.iter().all(|l| l["state"] == "succeeded" && l["steps_done"] == l["steps"]), "{json}");
    let mut directions: Vec<&str> = lines.iter().map(|l| l["direction"].as_str().unwrap_or_default()).collect();
    directions.sort();
    assert_eq!(directions, ["failback", "failover"], "{json}");

    let mut command = drctl(&dir);
    command.args(["status", "no-such-run"]);
    let unknown = run(command);
    unknown.expect_code(4, "status of an unknown run");
    assert!(unknown.stderr.contains("no-such-run"), "{unknown}");
}

/// Starts, in the background, a failover of plan `name` that waits `pause` and then applies effect
/// `effect-a`: a run that stays in the middle long enough to be locked, signalled or killed.
fn start_paused_failover(server: &Server, dir: &TestDir, name: &str, pause: &str) -> (Background, PathBuf) {
    let steps = [
        format!("  - id: pause\n    type: wait\n    with:\n      duration: {pause}\n"),
        effect_step(server, "effect-a", "a", &["pause"]),
    ]
    .concat();
    let plan_path = dir.write_plan(&format!("{name}.yaml"), &plan(name, &steps));
    let mut command = drctl(dir);
    command.arg("failover").arg("--plan").arg(&plan_path).arg("--yes");
    (Background::spawn(command), plan_path)
}

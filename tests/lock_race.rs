//! Two `drctl failover` of one plan started at the same moment: exactly one runs, the other is
//! refused (exit 4) naming the run that holds the plan. Driven through the built binary, twenty
//! times, against the recording HTTP server, whose request count proves how many runs acted.

mod support;

use support::{Background, Server, TestDir, drctl, plan};

#[test]
fn twenty_pairs_of_simultaneous_failovers_run_one_at_a_time() {
    let server = Server::start();
    let dir = TestDir::new("lock-race");
    // One step that takes a moment: a POST the server holds for 700 ms before answering. No
    // `observe`, so every run that gets to act POSTs once.
    let url = server.url("/effects/race?delay_ms=700");
    let steps = format!("  - id: act\n    type: http.request\n    with:\n      method: POST\n      url: {url}\n");
    let plan_path = dir.write_plan("race.yaml", &plan("race", &steps));
    for round in 1..=20u32 {
        let before = dir.run_ids();
        let start = || {
            let mut command = drctl(&dir);
            // --new-run: each round re-runs a failover that the previous round completed.
            command.arg("failover").arg("--plan").arg(&plan_path).args(["--yes", "--new-run"]);
            Background::spawn(command)
        };
        let (a, b) = (start(), start());
        let (a, b) = (a.finish(), b.finish());
        let new_runs: Vec<String> = dir.run_ids().into_iter().filter(|id| !before.contains(id)).collect();
        let ctx = format!("round {round}\nfirst:\n{a}second:\n{b}{}", dir.journals_text());
        assert_eq!(new_runs.len(), 1, "exactly one run started\n{ctx}");
        let winner = &new_runs[0];
        let (ran, refused) = match (a.code(), b.code()) {
            (Some(0), Some(4)) => (&a, &b),
            (Some(4), Some(0)) => (&b, &a),
            codes => panic!("expected one exit 0 and one exit 4, got {codes:?}\n{ctx}"),
        };
        assert!(ran.stdout.contains(winner.as_str()) || dir.journal(winner).len() > 1, "{ctx}");
        assert!(refused.stderr.contains("locked by run"), "the refusal says the plan is locked\n{ctx}");
        assert!(refused.stderr.contains(winner.as_str()), "the refusal names the running run {winner}\n{ctx}");
        assert!(!refused.stderr.contains("taking over"), "nobody took a lock over\n{ctx}");
        assert_eq!(server.effect_count("race"), round, "one run acted in round {round}\n{ctx}");
    }
    assert!(
        !dir.state().join("locks").join("race.lock").exists(),
        "the lock is released after the last run"
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.state().join("locks")).unwrap().collect();
    assert!(leftovers.is_empty(), "no temporary lock files are left: {leftovers:?}");
}

//! Two `drctl failover` of one plan started at the same moment: exactly one runs, the other is
//! refused (exit 4) naming the run that holds the plan. Driven through the built binary, twenty
//! times, against the recording HTTP server, whose request count proves how many runs acted.

mod support;

use support::{Background, Server, TestDir, drctl, plan};

#[test]
fn twenty_pairs_of_simultaneous_failovers_run_one_at_a_time() {
    let server = Server::start();
    for round in 1..=20u32 {
        // A state directory of its own each round: a plan whose failover succeeded is not run again.
        let dir = TestDir::new(&format!("lock-race-{round}"));
        // One step that takes a moment: a POST the server holds for 700 ms before answering. No
        // `observe`, so every run that gets to act POSTs once.
        let url = server.url(&format!("/effects/race-{round}?delay_ms=700"));
        let steps = format!("  - id: act\n    type: http.request\n    with:\n      method: POST\n      url: {url}\n");
        let plan_path = dir.write_plan("race.yaml", &plan("race", &steps));
        let start = || {
            let mut command = drctl(&dir);
            command.arg("failover").arg("--plan").arg(&plan_path).arg("--yes");
            Background::spawn(command)
        };
        let (a, b) = (start(), start());
        let (a, b) = (a.finish(), b.finish());
        let ctx = format!("round {round}\nfirst:\n{a}second:\n{b}{}", dir.journals_text());
        let runs = dir.run_ids();
        assert_eq!(runs.len(), 1, "exactly one run started\n{ctx}");
        let winner = &runs[0];
        let refused = match (a.code(), b.code()) {
            (Some(0), Some(4)) => &b,
            (Some(4), Some(0)) => &a,
            codes => panic!("expected one exit 0 and one exit 4, got {codes:?}\n{ctx}"),
        };
        assert!(refused.stderr.contains("locked by run"), "the refusal says the plan is locked\n{ctx}");
        assert!(refused.stderr.contains(winner.as_str()), "the refusal names the running run {winner}\n{ctx}");
        assert!(!refused.stderr.contains("taking over"), "nobody took a lock over\n{ctx}");
        assert_eq!(server.effect_count(&format!("race-{round}")), 1, "one run acted\n{ctx}");
        let locks: Vec<_> = std::fs::read_dir(dir.state().join("locks")).unwrap().collect();
        assert!(locks.is_empty(), "the lock is released and no temporary lock file is left: {locks:?}");
    }
}

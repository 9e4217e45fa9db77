//! Plan variables end to end: the values a run resolved are journaled with their sources, and a
//! resumed run keeps them (refusing other values the operator passes).

mod support;

use support::{TestDir, drctl, run};

const STEPS: &str = "  - id: gate\n    type: command\n    with: {run: [test, -f, \"{{ vars.gate }}\"]}\n  - id: mark\n    type: command\n    after: [gate]\n    with: {run: [sh, -c, \"echo {{ vars.colour }} > {{ vars.out }}\"]}\n";

fn plan(dir: &TestDir) -> std::path::PathBuf {
    let gate = dir.path().join("gate");
    let out = dir.path().join("out");
    let text = format!(
        "vars:\n  colour: {{value: red, description: what mark writes}}\n  gate: {{value: '{}'}}\n  out: {{value: '{}'}}\n{}",
        gate.display(),
        out.display(),
        support::plan("vars", STEPS)
    );
    dir.write_plan("vars.yaml", &text)
}

#[test]
fn a_resumed_run_keeps_its_journaled_values_and_refuses_others() {
    let dir = TestDir::new("plan-vars-resume");
    let path = plan(&dir);
    let mut failover = drctl(&dir);
    failover.arg("failover").arg("--plan").arg(&path).args(["--yes", "--var", "colour=blue"]);
    run(failover).expect_code(1, "the gate is closed");
    let run_id = dir.only_run_id();
    let started = &dir.journal(&run_id)[0];
    assert_eq!(started["event"], "run_started");
    let vars = started["vars"].as_array().expect("journaled vars");
    let colour = vars.iter().find(|v| v["name"] == "colour").unwrap();
    assert_eq!(colour["value"], "blue");
    assert_eq!(colour["source"]["kind"], "command_line");
    assert_eq!(vars.iter().find(|v| v["name"] == "out").unwrap()["source"]["kind"], "plan");

    std::fs::write(dir.path().join("gate"), "").unwrap();
    let mut other = drctl(&dir);
    other.args(["resume", &run_id, "--yes", "--var", "colour=green"]);
    let refused = run(other);
    refused.expect_code(4, "other values are refused");
    assert!(
        refused.stderr.contains("`colour` was `blue` (command line) when the run started, now `green` (command line)"),
        "{refused}"
    );
    let mut resume = drctl(&dir);
    resume.args(["resume", &run_id, "--yes"]);
    run(resume).expect_code(0, "the resume uses the journaled values");
    assert_eq!(std::fs::read_to_string(dir.path().join("out")).unwrap().trim(), "blue");
}

#[test]
fn journals_without_vars_still_read() {
    let line = r#"{"seq":1,"at":"2026-11-01T00:00:00Z","event":"run_started","run_id":"r","plan":"p","plan_path":"/p.yaml","plan_digest":"d","direction":"failover","host":"h","pid":1,"drctl_version":"0.1.0","steps":["a"]}"#;
    let entry: drctl::journal::Entry = serde_json::from_str(line).expect("an old journal line");
    let view = drctl::engine::state::RunView::replay(&[entry]).unwrap();
    assert!(view.vars.is_empty());
}

//! What a new user reads and runs first says what is true: the help names files that exist, the
//! README counts the drills there are and says how to put drctl on the PATH, and the demo script
//! runs the drctl it is given.

mod support;

use std::path::Path;
use std::process::Command;

use support::{TestDir, drctl, run};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn readme() -> String {
    std::fs::read_to_string(repo().join("README.md")).expect("README.md")
}

#[test]
fn plan_schema_help_names_the_schema_file_the_plans_use() {
    let dir = TestDir::new("schema-help");
    let mut help = drctl(&dir);
    help.args(["plan", "schema", "--help"]);
    let out = run(help);
    out.expect_code(0, "plan schema --help");
    let text = out.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(text.contains("plans/drctl-plan.schema.json"), "{out}");
    let named = text.split("$schema=").nth(1).and_then(|rest| rest.split(['`', ' ']).next()).expect("a $schema= line");
    assert!(repo().join("plans").join(named).is_file(), "plans/{named} exists\n{out}");
    let plan = std::fs::read_to_string(repo().join("plans/us-west-2.yaml")).unwrap();
    assert!(plan.starts_with(&format!("# yaml-language-server: $schema={named}\n")), "the plans use it");
}

#[test]
fn the_readme_counts_the_drills_that_come_with_the_repository() {
    let drills = std::fs::read_dir(repo().join("drills"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "yaml"))
        .count();
    let words = ["zero", "One", "Two", "Three", "Four", "Five", "Six", "Seven", "Eight", "Nine"];
    let sentence = format!("{} drills come with the repository", words[drills]);
    assert!(readme().contains(&sentence), "the README says `{sentence}`");
    for stale in ["Drill\nmode is the next issue", "Drill mode is the next issue", "arrive with the AWS issue"] {
        assert!(!readme().contains(stale), "the README still says `{stale}`");
    }
}

#[test]
fn the_readme_says_how_to_put_drctl_on_the_path() {
    let readme = readme();
    let building = readme.split("## Building").nth(1).expect("a Building section");
    let building = &building[..building.find("\n## ").unwrap_or(building.len())];
    assert!(building.contains("cargo install --locked --path ."), "{building}");
    assert!(building.contains("export PATH=\"$PWD/target/release:$PATH\""), "{building}");
}

#[test]
fn the_demo_runs_the_drctl_it_is_given() {
    let dir = TestDir::new("demo-drctl");
    let calls = dir.path().join("calls");
    let wrapper = dir.path().join("drctl-wrapper");
    std::fs::write(
        &wrapper,
        format!("#!/bin/sh\necho \"$1\" >> '{}'\nexec '{}' \"$@\"\n", calls.display(), env!("CARGO_BIN_EXE_drctl")),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut demo = Command::new(repo().join("localstack/demo.sh"));
    demo.env("DRCTL", &wrapper)
        .env("DRCTL_STATE_DIR", dir.state())
        .env("CI", "1")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env_remove("RUST_LOG");
    let out = run(demo);
    out.expect_code(0, "localstack/demo.sh");
    assert!(!out.all().contains("building drctl"), "nothing is built when DRCTL is given\n{out}");
    let calls = std::fs::read_to_string(&calls).unwrap_or_default();
    assert_eq!(calls.lines().collect::<Vec<_>>(), ["failover", "failback", "status"], "{out}");
}

#[test]
fn the_drill_script_says_what_each_phase_is_doing_before_it_starts() {
    let dir = TestDir::new("drill-phases");
    let drill = support::drill_script(&dir, "no-such-drill");
    let out = run(drill);
    assert_eq!(out.code(), Some(3), "drctl refuses the unknown drill\n{out}");
    let at = |text: &str| out.stderr.find(text).unwrap_or_else(|| panic!("stderr says `{text}`\n{out}"));
    let installing = at("drill.sh: installing what the environment lacks");
    let up = at("the environment is up");
    let running = at("drill.sh: running the drill no-such-drill");
    let stopping = at("drill.sh: stopping the environment");
    let down = at("is down");
    assert!(installing < up && up < running && running < stopping && stopping < down, "{out}");
}

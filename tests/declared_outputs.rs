//! Every step type's outputs are checked against its declaration whenever it runs through the
//! engine (`src/engine/outputs.rs` fails a step that leaves out a required output, sets an
//! undeclared one, or sets one that does not parse as its type). This test makes sure every
//! registered step type does run through the engine somewhere in the integration tests, so that
//! check has seen it: a type registered without such a test fails here. Types still covered only
//! by their unit tests are listed, with what covers them, and the list may only shrink.

use std::path::Path;

use drctl::steps::{Services, builtin};

/// Integration tests that only validate or describe plans: they never run a step.
const NOT_RUNNING: &[&str] = &[
    "architecture.rs",
    "cli_docs.rs",
    "declared_outputs.rs",
    "explain.rs",
    "plan_corpus.rs",
    "plan_fuzz.rs",
    "plan_schema.rs",
];

/// Step types no integration test runs yet, and what checks their outputs instead.
const UNIT_TESTS_ONLY: &[(&str, &str)] =
    &[("aws.secrets.rotate", "src/steps/aws_secrets/rotate.rs's tests, on mocked SDK answers")];

/// Each running integration test's source, with the plan files it names (`plans/X.yaml`,
/// `drills/fixtures/X.yaml`) appended.
fn running_tests(root: &Path) -> Vec<(String, String)> {
    let mut plans = Vec::new();
    for dir in ["plans", "drills/fixtures"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml") {
                let name = path.file_name().unwrap().to_string_lossy().to_string();
                plans.push((name, std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    let mut tests = Vec::new();
    for entry in std::fs::read_dir(root.join("tests")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.ends_with(".rs") || NOT_RUNNING.contains(&name.as_str()) {
            continue;
        }
        let mut text = std::fs::read_to_string(&path).unwrap();
        for (plan, yaml) in &plans {
            if text.contains(plan.as_str()) {
                text.push_str(yaml);
            }
        }
        tests.push((name, text));
    }
    tests
}

/// Whether `text` has a step of type `name`: `type: NAME` in YAML (block or flow style).
fn names_type(text: &str, name: &str) -> bool {
    text.match_indices(name).any(|(at, _)| {
        let before = text[..at].trim_end_matches(['"', '\'']).trim_end();
        let after = text[at + name.len()..].chars().next();
        before.ends_with("type:") && !after.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.')
    })
}

#[test]
fn every_registered_step_type_runs_through_the_engine_in_an_integration_test() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tests = running_tests(root);
    let registry = builtin(&Services::for_checking());
    let mut uncovered = Vec::new();
    for kind in registry.kinds() {
        let name = kind.name();
        let runners: Vec<&str> = tests.iter().filter(|(_, t)| names_type(t, name)).map(|(f, _)| f.as_str()).collect();
        if runners.is_empty() {
            uncovered.push(name);
        }
    }
    let listed: Vec<&str> = UNIT_TESTS_ONLY.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        uncovered, listed,
        "step types no integration test runs (their outputs are never checked against their declaration by \
         the engine): add a test that runs each new type, or, while only unit tests cover it, list it in \
         UNIT_TESTS_ONLY with what covers it; a type that a test now runs leaves the list"
    );
    for (name, covered_by) in UNIT_TESTS_ONLY {
        let file = covered_by.split('\'').next().unwrap();
        let source = std::fs::read_to_string(root.join(file)).unwrap_or_default();
        assert!(source.contains("#[cfg(test)]"), "{name}: {file} has no tests");
    }
}

#[test]
fn a_type_is_found_only_as_a_step_type() {
    assert!(names_type("  - id: a\n    type: kube.scale\n", "kube.scale"));
    assert!(names_type("{id: a, type: \"kube.scale\", with: {}}", "kube.scale"));
    assert!(!names_type("  - id: a\n    type: kube.scale_up\n", "kube.scale"));
    assert!(!names_type("kube.scale is mentioned in prose", "kube.scale"));
    assert!(!names_type("type: aws.rds.promote_replica_x", "aws.rds.promote_replica"));
}

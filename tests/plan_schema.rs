//! The published JSON Schema agrees with the validator: valid plans pass it, and the mistakes an
//! editor should flag (unknown keys, unknown step types, wrong parameters) fail it.

use std::path::Path;

use drctl::plan::schema::plan_schema;
use drctl::plan::yaml;
use drctl::steps::{Services, builtin};

fn registry() -> drctl::step::Registry {
    builtin(&Services::for_checking())
}

fn as_json(text: &str) -> serde_json::Value {
    yaml::parse(text).expect("test YAML parses").to_json()
}

fn validator() -> jsonschema::Validator {
    let schema = plan_schema(&registry());
    jsonschema::meta::validate(&schema).expect("the schema is a valid JSON Schema");
    jsonschema::validator_for(&schema).expect("the schema compiles")
}

#[test]
fn every_plan_in_plans_matches_the_schema() {
    let validator = validator();
    let mut checked = 0;
    for entry in std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("plans")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&path).unwrap();
            drctl::plan::parse(&path, &text, &registry()).unwrap_or_else(|e| panic!("{e}"));
            let errors: Vec<String> =
                validator.iter_errors(&as_json(&text)).map(|e| format!("{} at {}", e, e.instance_path())).collect();
            assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
            checked += 1;
        }
    }
    assert!(checked > 0, "no plan in plans/");
}

const BASE: &str = "name: p\nregions: {primary: a, secondary: b}\nobjectives: {rto: 15m, rpo: 5m}\nfailback: [{id: w, type: wait, with: {duration: 1s}}]\n";

#[test]
fn the_schema_flags_what_the_validator_rejects() {
    let validator = validator();
    let cases = [
        ("unknown step key", "failover: [{id: a, type: wait, retires: 2, with: {duration: 1s}}]"),
        ("unknown step type", "failover: [{id: a, type: http.chek, with: {url: x}}]"),
        ("unknown parameter", "failover: [{id: a, type: http.check, with: {url: x, statsu: 200}}]"),
        ("missing parameter", "failover: [{id: a, type: http.check, with: {}}]"),
        ("parameter of the wrong type", "failover: [{id: a, type: http.check, with: {url: x, attempts: many}}]"),
        ("bad duration", "failover: [{id: a, type: wait, with: {duration: 1s}, timeout: 15 minutez}]"),
        ("bad objective", "failover: [{id: a, type: wait, with: {duration: 1s}}]\nobjectives: {rto: soon, rpo: 5m}"),
    ];
    for (what, failover) in cases {
        let text = format!("{BASE}{failover}\n").replace(
            "objectives: {rto: 15m, rpo: 5m}\n",
            if failover.contains("objectives") { "" } else { "objectives: {rto: 15m, rpo: 5m}\n" },
        );
        assert!(
            drctl::plan::parse(Path::new("t.yaml"), &text, &registry()).is_err(),
            "{what}: the validator accepts it"
        );
        assert!(!validator.is_valid(&as_json(&text)), "{what}: the schema accepts it");
    }
    let good = format!(
        "{BASE}failover: [{{id: a, type: http.check, with: {{url: 'http://x/health', attempts: 3, interval: 1s}}}}]\n"
    );
    assert!(validator.is_valid(&as_json(&good)));
}

#[test]
fn the_committed_schema_is_the_one_drctl_prints() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/drctl-plan.schema.json");
    let printed = serde_json::to_string_pretty(&plan_schema(&registry())).unwrap() + "\n";
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &printed).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == printed,
        "{} is out of date: run `drctl plan schema > plans/drctl-plan.schema.json` (or UPDATE_SNAPSHOTS=1 cargo test --test plan_schema)",
        path.display()
    );
}

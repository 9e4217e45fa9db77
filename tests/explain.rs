//! `drctl explain` documents every step type from the structs that parse it, in words an operator
//! reads (no Rust type names), and `docs/steps.md` is exactly what it prints.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use drctl::plan::explain;
use drctl::steps::{Services, builtin};

fn registry() -> drctl::step::Registry {
    builtin(&Services::for_checking())
}

fn drctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_drctl")).args(args).env_remove("RUST_LOG").output().expect("drctl runs")
}

fn stdout(args: &[&str]) -> String {
    let out = drctl(args);
    assert!(out.status.success(), "drctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn every_registered_step_type_is_listed_and_has_a_full_section() {
    let listing = stdout(&["explain"]);
    let markdown = std::fs::read_to_string(root().join("docs/steps.md")).unwrap_or_default();
    for kind in registry().kinds() {
        let name = kind.name();
        assert!(listing.contains(&format!("  {name}  ")), "`drctl explain` does not list {name}:\n{listing}");
        assert!(markdown.contains(&format!("\n## {name}\n")), "docs/steps.md has no section for {name}");
        let docs = kind.docs();
        assert!(!docs.description.is_empty(), "{name}: StepDocs has no description");
        assert!(kind.outputs().iter().all(|o| !o.description.is_empty()), "{name}: an output without a description");
        let reference = explain::reference(kind);
        assert!(
            reference.parameters.iter().all(|p| !p.description.is_empty()),
            "{name}: a parameter without a doc comment"
        );
        let text = stdout(&["explain", name]);
        for part in ["PARAMETERS (with:):", "EXAMPLE:", &format!("    type: {name}\n"), "OUTPUTS"] {
            assert!(text.contains(part), "`drctl explain {name}` lacks {part:?}:\n{text}");
        }
    }
}

#[test]
fn every_example_is_a_valid_with_block() {
    for kind in registry().kinds() {
        let example = kind.docs().example;
        assert!(!example.trim().is_empty(), "{}: no example", kind.name());
        let node =
            drctl::plan::yaml::parse(example).unwrap_or_else(|e| panic!("{}: example is not YAML: {e:?}", kind.name()));
        if let Err(e) = kind.check(&node) {
            panic!(
                "{}: the example's with: is invalid: {} at {}: {}\n{example}",
                kind.name(),
                e.path,
                e.pos,
                e.message
            );
        }
    }
}

#[test]
fn explain_route53_shows_zone_id_with_its_description_example_and_outputs() {
    let text = stdout(&["explain", "aws.route53.upsert_record"]);
    for part in [
        "TYPE: aws.route53.upsert_record\n",
        "  zone_id <string>, required\n      The id of the hosted zone that holds the record (`Z1234567890ABC`).\n",
        "  alias.dns_name <string>, required\n",
        "  weight <whole number from 0 to 255>\n",
        "  - exactly one of `alias` and `values`\n",
        "  - `weight` needs `set_identifier`\n",
        "EXAMPLE:\n  - id: upsert-record\n    type: aws.route53.upsert_record\n    with:\n      zone_id: Z1234567890ABC\n",
        "  previous_target (string, may be absent)\n      What the record pointed at when the step first looked",
        "ON FAILURE:\n  Throttling, 5xx answers",
    ] {
        assert!(text.contains(part), "missing {part:?} in:\n{text}");
    }
}

#[test]
fn kube_types_say_lists_of_objects_and_durations_in_words() {
    let check = stdout(&["explain", "kube.check_cluster"]);
    assert!(check.contains("  workloads <list of {kind, name}>\n"), "{check}");
    assert!(check.contains("  workloads[].kind <one of deployment or statefulset>, default deployment\n"), "{check}");
    let wait = stdout(&["explain", "wait"]);
    assert!(wait.contains("  duration <duration such as 30s or 5m>, required\n"), "{wait}");
    let http = stdout(&["explain", "http.check"]);
    assert!(
        http.contains("  expect_status <whole number from 100 to 599, or a list of them>, default 200\n"),
        "{http}"
    );
}

/// Every multi-word type name declared in `src/` (`UpsertRecordFields`, `HumanDuration`...).
fn rust_type_names() -> Vec<String> {
    fn walk(dir: &Path, names: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, names);
            } else if path.extension().is_some_and(|e| e == "rs") {
                for line in std::fs::read_to_string(&path).unwrap().lines() {
                    let words: Vec<&str> = line.split(|c: char| !c.is_alphanumeric() && c != '_').collect();
                    for pair in words.windows(2) {
                        if matches!(pair[0], "struct" | "enum" | "trait" | "type") && is_camel_case(pair[1]) {
                            names.push(pair[1].to_string());
                        }
                    }
                }
            }
        }
    }
    let mut names = Vec::new();
    walk(&root().join("src"), &mut names);
    names.sort();
    names.dedup();
    names
}

/// `WorkloadName`: an upper-case letter, lower-case ones, then another upper-case letter.
fn is_camel_case(word: &str) -> bool {
    let mut chars = word.chars();
    chars.next().is_some_and(|c| c.is_ascii_uppercase())
        && word.chars().any(|c| c.is_ascii_lowercase())
        && word.chars().skip(1).any(|c| c.is_ascii_uppercase())
}

#[test]
fn no_rust_type_name_appears_in_any_output() {
    let names = rust_type_names();
    assert!(names.iter().any(|n| n == "UpsertRecordFields") && names.iter().any(|n| n == "WorkloadName"), "{names:?}");
    let mut outputs =
        vec![stdout(&["explain"]), stdout(&["explain", "--markdown"]), stdout(&["--output", "json", "explain"])];
    for kind in registry().kinds() {
        outputs.push(stdout(&["explain", kind.name()]));
        outputs.push(stdout(&["--output", "json", "explain", kind.name()]));
    }
    for output in &outputs {
        for word in output.split(|c: char| !c.is_alphanumeric() && c != '_') {
            assert!(!names.iter().any(|n| n == word), "Rust type name `{word}` in:\n{output}");
        }
    }
}

#[test]
fn an_unknown_type_exits_2_and_suggests_the_nearest() {
    let out = drctl(&["explain", "kube.scael"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unknown step type `kube.scael`") && stderr.contains("did you mean `kube.scale`?"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
    let out = drctl(&["explain", "route53"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("did you mean `aws.route53.upsert_record`?"));
    let out = drctl(&["explain", "nothing-like-it"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`drctl explain` lists every step type"));
}

#[test]
fn json_output_carries_the_same_reference() {
    let listing = stdout(&["--output", "json", "explain"]);
    let lines: Vec<serde_json::Value> = listing.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), registry().names().len());
    assert!(lines.iter().all(|l| l["type"].is_string() && l["summary"].is_string()));
    let scale: serde_json::Value =
        serde_json::from_str(&stdout(&["--output", "json", "explain", "kube.scale"])).unwrap();
    let reference = explain::reference(registry().get("kube.scale").unwrap());
    assert_eq!(scale, serde_json::to_value(&reference).unwrap());
    let replicas = scale["parameters"].as_array().unwrap().iter().find(|p| p["name"] == "replicas").unwrap();
    assert_eq!(replicas["type"], "whole number from 0 to 100000");
    assert_eq!(replicas["required"], true);
    assert_eq!(scale["outputs"][1]["name"], "previous_replicas");
}

#[test]
fn docs_steps_md_is_what_drctl_explain_prints() {
    let path = root().join("docs/steps.md");
    let printed = stdout(&["explain", "--markdown"]);
    assert_eq!(printed, explain::markdown(&explain::references(&registry())));
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &printed).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == printed,
        "{} is out of date: run `drctl explain --markdown > docs/steps.md` (or UPDATE_SNAPSHOTS=1 cargo test --test explain)",
        path.display()
    );
}

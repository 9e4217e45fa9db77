//! Snapshot tests of plan validation messages: every `tests/plans/invalid/NAME.yaml` holds one kind of
//! mistake (a few hold several, to show that one pass reports them all), and `NAME.expected` holds
//! exactly what `drctl plan validate` prints for it.
//!
//! To (re)write the `.expected` files after a deliberate change of wording, run
//! `UPDATE_SNAPSHOTS=1 cargo test --test plan_corpus`, then read every changed file before
//! committing it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use drctl::step::Registry;
use drctl::steps::{Services, builtin};

/// The corpus folder, relative to the package root (the tests' working directory), as it is given
/// to the validator and therefore as it appears in messages.
const CORPUS: &str = "tests/plans/invalid";

/// The fewest entries the corpus may have.
const MIN_ENTRIES: usize = 20;

fn registry() -> Registry {
    builtin(&Services::for_checking())
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.yaml` of the corpus as the relative path used in messages, sorted by name.
fn corpus() -> Vec<PathBuf> {
    let dir = root().join(CORPUS);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("a readable directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| Path::new(CORPUS).join(p.file_name().expect("a file name")))
        .collect();
    files.sort();
    files
}

fn expected_path(yaml: &Path) -> PathBuf {
    yaml.with_extension("expected")
}

/// The snapshot of `yaml` and its text when it exists.
fn snapshot(yaml: &Path) -> (PathBuf, Option<String>) {
    let path = expected_path(yaml);
    let text = std::fs::read_to_string(root().join(&path)).ok();
    (path, text)
}

fn read(relative: &Path) -> String {
    let path = root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// What the validator says about `yaml`, or why it said nothing. The file is read as `drctl`
/// reads it (bytes, then UTF-8), so files in other encodings belong in the corpus too, and paths
/// in parameters resolve against the corpus folder.
fn actual(yaml: &Path, registry: &Registry) -> Result<String, String> {
    match drctl::plan::load(yaml, registry) {
        Ok(plan) => Err(format!(
            "{}: the validator accepted it (plan `{}`), but it is meant to be invalid",
            yaml.display(),
            plan.name
        )),
        Err(errors) => Ok(errors.to_string()),
    }
}

/// A line diff of `expected` and `actual` in the unified style (no hunks: the outputs are short).
fn diff(expected_label: &str, actual_label: &str, expected: &str, actual: &str) -> String {
    let a: Vec<&str> = expected.lines().collect();
    let b: Vec<&str> = actual.lines().collect();
    // Longest common subsequence table, filled from the end.
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    let mut out = format!("--- {expected_label} (expected)\n+++ {actual_label} (actual)\n");
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            let _ = writeln!(out, " {}", a[i]);
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            let _ = writeln!(out, "-{}", a[i]);
            i += 1;
        } else {
            let _ = writeln!(out, "+{}", b[j]);
            j += 1;
        }
    }
    if expected.ends_with('\n') != actual.ends_with('\n') {
        out.push_str("\\ the outputs differ in their final newline\n");
    }
    out
}

fn updating() -> bool {
    std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v == "1")
}

#[test]
fn every_invalid_plan_gets_its_expected_messages() {
    let registry = registry();
    let update = updating();
    let mut failures = Vec::new();
    for yaml in corpus() {
        let expected_file = expected_path(&yaml);
        let actual = match actual(&yaml, &registry) {
            Ok(text) => text,
            Err(problem) => {
                failures.push(problem);
                continue;
            }
        };
        if update {
            let path = root().join(&expected_file);
            let old = std::fs::read_to_string(&path).ok();
            if old.as_deref() != Some(actual.as_str()) {
                std::fs::write(&path, &actual).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
                eprintln!("updated {}", expected_file.display());
            }
            continue;
        }
        match std::fs::read_to_string(root().join(&expected_file)) {
            Ok(expected) if expected == actual => {}
            Ok(expected) => {
                failures.push(diff(&expected_file.display().to_string(), &yaml.display().to_string(), &expected, &actual))
            }
            Err(e) => failures.push(format!(
                "{}: cannot read it ({e}); run `UPDATE_SNAPSHOTS=1 cargo test --test plan_corpus` and review the new file",
                expected_file.display()
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of the invalid plans do not get their expected messages \
         (after a deliberate change: UPDATE_SNAPSHOTS=1 cargo test --test plan_corpus, then review):\n\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_corpus_is_large_and_every_plan_has_a_snapshot() {
    let files = corpus();
    assert!(files.len() >= MIN_ENTRIES, "only {} invalid plans in {CORPUS}; keep at least {MIN_ENTRIES}", files.len());
    if updating() {
        return;
    }
    let dir = root().join(CORPUS);
    let mut orphans: Vec<String> = std::fs::read_dir(&dir)
        .expect("the corpus folder")
        .map(|entry| entry.expect("a readable directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "expected"))
        .filter(|p| !p.with_extension("yaml").exists())
        .map(|p| p.display().to_string())
        .collect();
    orphans.sort();
    assert!(orphans.is_empty(), "snapshots without a plan: {orphans:?}");
    let missing: Vec<String> = files
        .iter()
        .filter(|f| !root().join(expected_path(f)).exists())
        .map(|f| expected_path(f).display().to_string())
        .collect();
    assert!(missing.is_empty(), "plans without a snapshot (UPDATE_SNAPSHOTS=1 writes them): {missing:?}");
}

/// Whether `line` is `FILE:LINE:COL: error: ...` for this file, with positive line and column.
fn is_located_error(line: &str, file: &str) -> bool {
    let Some(rest) = line.strip_prefix(file).and_then(|r| r.strip_prefix(':')) else { return false };
    let mut parts = rest.splitn(3, ':');
    let number = |p: Option<&str>| p.and_then(|p| p.parse::<usize>().ok()).is_some_and(|n| n >= 1);
    number(parts.next()) && number(parts.next()) && parts.next().is_some_and(|m| m.starts_with(" error: "))
}

#[test]
fn every_snapshot_names_its_own_file_with_line_and_column() {
    if updating() {
        return;
    }
    let mut problems = Vec::new();
    for yaml in corpus() {
        let (expected_file, Some(expected)) = snapshot(&yaml) else { continue };
        let file = yaml.display().to_string();
        let lines: Vec<&str> = expected.lines().collect();
        let errors: Vec<&str> = lines.iter().copied().filter(|l| l.contains(": error: ")).collect();
        if errors.is_empty() {
            problems.push(format!("{}: no `{file}:LINE:COL: error:` line", expected_file.display()));
        }
        for line in &errors {
            if !is_located_error(line, &file) {
                problems.push(format!(
                    "{}: `{line}` does not start with `{file}:LINE:COL: error: `",
                    expected_file.display()
                ));
            }
        }
        let count = errors.len();
        let summary = format!("{file}: {count} problem{}", if count == 1 { "" } else { "s" });
        if lines.last() != Some(&summary.as_str()) {
            problems.push(format!("{}: the last line should be `{summary}`", expected_file.display()));
        }
        if lines.first().is_none_or(|l| !is_located_error(l, &file)) {
            problems.push(format!("{}: the first line should be the first located error", expected_file.display()));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn drctl() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_drctl"));
    command.current_dir(root()).env_remove("RUST_LOG").env_remove("DRCTL_PLANS_DIR").env_remove("DRCTL_STATE_DIR");
    command
}

#[test]
fn drctl_plan_validate_prints_the_snapshot_and_exits_3() {
    if updating() {
        return; // the snapshot may be being written right now
    }
    let yaml = Path::new(CORPUS).join("after_unknown_step.yaml");
    let expected = read(&expected_path(&yaml));
    let output = drctl().args(["plan", "validate"]).arg(&yaml).output().expect("drctl runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(3),
        "exit status of `drctl plan validate {}`; stderr:\n{stderr}",
        yaml.display()
    );
    assert!(
        output.stdout.is_empty(),
        "nothing on stdout for an invalid plan: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    let printed = format!("{expected}\n");
    assert!(stderr == printed, "{}", diff(&expected_path(&yaml).display().to_string(), "stderr", &printed, &stderr));
}

#[test]
fn drctl_plan_validate_accepts_a_valid_plan() {
    let dir = std::env::temp_dir().join(format!("drctl-plan-corpus-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    let plan = dir.join("us-west-2.yaml");
    std::fs::write(
        &plan,
        r#"name: us-west-2
description: Fail over to us-west-2 and back.
regions: {primary: us-east-1, secondary: us-west-2}
objectives: {rto: 15m, rpo: 5m}
defaults: {timeout: 5m, retries: 2}
failover:
  - id: approve
    type: approval
    with: {message: "Fail over {{ plan.name }} to {{ plan.regions.secondary }}?"}
  - id: check
    name: DR region healthy
    type: http.check
    after: [approve]
    marks_recovery: true
    with: {url: "http://127.0.0.1:9/health", expect_status: [200, 204], interval: 500ms}
  - id: settle
    type: wait
    after: [check]
    with: {duration: 1s, reason: "health answered {{ steps.check.outputs.status }}"}
failback:
  - id: back
    type: wait
    timeout: 1m
    retries: 0
    with: {duration: 1s}
"#,
    )
    .expect("the plan is written");
    let output = drctl().args(["plan", "validate"]).arg(&plan).output().expect("drctl runs");
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains(&format!("{}: ok", plan.display())), "stdout:\n{stdout}");
    assert!(stderr.is_empty(), "stderr:\n{stderr}");
}

#[test]
fn the_diff_shows_removed_and_added_lines() {
    let d = diff("x.expected", "x.yaml", "a\nb\nc\nd", "a\nB\nc\nd\ne");
    assert_eq!(d, "--- x.expected (expected)\n+++ x.yaml (actual)\n a\n-b\n+B\n c\n d\n+e\n");
}

/// The `with:` keys of each step type, from the plans' JSON Schema.
fn parameter_keys(registry: &Registry) -> Vec<(String, Vec<String>)> {
    let schema = drctl::plan::schema::plan_schema(registry);
    let resolve = |node: &serde_json::Value| -> serde_json::Value {
        match node.get("$ref").and_then(|r| r.as_str()) {
            Some(reference) => {
                let name = reference.rsplit('/').next().expect("a definition name");
                schema["$defs"][name].clone()
            }
            None => node.clone(),
        }
    };
    let mut found = Vec::new();
    let text = schema.to_string();
    for kind in registry.kinds() {
        let params = kind.params_schema(&mut schemars::generate::SchemaSettings::draft2020_12().into_generator());
        let params = resolve(&serde_json::to_value(&params).expect("a schema is JSON"));
        let mut keys: Vec<String> =
            params["properties"].as_object().map(|p| p.keys().cloned().collect()).unwrap_or_default();
        if keys.is_empty() {
            // Types whose parameters are defined elsewhere in the plan schema.
            keys = vec!["x".to_string()];
        }
        assert!(!text.is_empty());
        found.push((kind.name().to_string(), keys));
    }
    found
}

/// A word such as `WorkloadName`: capitals inside a word, as Rust type names have.
fn camel_case_words(text: &str) -> Vec<&str> {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| {
            let mut chars = w.chars();
            chars.next().is_some_and(|c| c.is_ascii_uppercase())
                && w.chars().any(|c| c.is_ascii_lowercase())
                && w.chars().skip(1).any(|c| c.is_ascii_uppercase())
        })
        .collect()
}

#[test]
fn parameter_errors_never_name_rust_types() {
    // Kubernetes and AWS names that are CamelCase in their own right.
    const ALLOWED: &[&str] = &["StatefulSet", "ConfigMap", "DaemonSet", "ReplicaSet", "ReplicaLag", "PrometheusRule"];
    let registry = registry();
    let wrong_values = [
        "x",
        "1",
        "-1",
        "1.5",
        "true",
        "null",
        "[x]",
        "[[x]]",
        "{a: 1}",
        "[{a: 1}]",
        "[{a: [x]}]",
        "{a: [x]}",
        "{a: {b: [1]}}",
        "[1, {a: b}]",
    ];
    let mut leaks = Vec::new();
    let mut checked = 0;
    for (name, keys) in parameter_keys(&registry) {
        let kind = registry.get(&name).expect("a registered type");
        for key in &keys {
            for value in wrong_values {
                let with = drctl::plan::yaml::parse(&format!("{key}: {value}\n")).expect("valid YAML");
                let Err(e) = kind.check(&with) else { continue };
                checked += 1;
                for word in camel_case_words(&e.message) {
                    if !ALLOWED.contains(&word) && !value.contains(word) {
                        leaks.push(format!("{name}: `{key}: {value}`: {}", e.message));
                    }
                }
            }
        }
    }
    assert!(checked > 500, "only {checked} errors were looked at");
    assert!(leaks.is_empty(), "errors that name Rust types:\n{}", leaks.join("\n"));
}

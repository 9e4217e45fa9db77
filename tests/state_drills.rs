//! Drill reports on the state store: saved to S3 once (If-None-Match), listed by `drill history
//! --state s3://...`, read by `drctl check`'s drill age, and copied by `state migrate` both ways.
// Real processes and servers run in real time here: wall and monotonic clocks are the point.
#![allow(clippy::disallowed_methods)]

mod support;

use std::path::Path;

use drctl::drill::report::model::DrillReport;
use drctl::journal::StateStore;
use serde_json::json;
use support::s3::S3;
use support::{TestDir, drctl, plan, run};

/// A passed drill of plan `plan` that started at `started` and measured an RTO of `rto` seconds.
fn report(drill: &str, plan: &str, started: &str, rto: f64) -> DrillReport {
    let measurement = |objective: f64, measured: f64| json!({"objective_s": objective, "measured_s": measured, "met": true, "detail": "measured"});
    serde_json::from_value(json!({
        "schema_version": 2, "drill": drill, "plan": plan, "environment": "local", "host": "runner",
        "provenance": {
            "user": "oncall", "approval": "--yes", "drctl_version": "0.1.0", "git_commit": null,
            "plan_file": "plans/p.yaml", "plan_sha256": "a".repeat(64),
            "drill_file": "drills/d.yaml", "drill_sha256": "b".repeat(64), "inventory": {},
        },
        "started_at": started, "finished_at": started,
        "fault": {"kind": "database_stop", "description": "stopped", "injected_at": started},
        "objectives": {"rto": measurement(120.0, rto), "rpo": measurement(0.0, 0.0), "dr_ready_s": null},
        "client": {
            "interval_ms": 100, "dns_ttl": "1s", "attempts": 10, "acknowledged": 10, "failed": 0,
            "lost_writes": 0, "split_brain_writes": 0, "allow_split_brain": false, "writes": [],
        },
        "runs": [], "checks": [], "outcome": {"passed": true, "failures": []},
        "deviations": [], "remediation": [],
    }))
    .expect("a DrillReport")
}

/// Writes `report`'s files the way `drctl drill run` does, under `root/DRILL/STAMP/`.
fn write_locally(root: &Path, report: &DrillReport, stamp: &str) {
    drctl::drill::report::write_all(report, &root.join(&report.drill).join(stamp)).unwrap();
}

#[test]
fn drill_reports_are_saved_to_s3_listed_from_there_and_migrated_both_ways() {
    let s3 = S3::start();
    s3.bucket("drills", true, true);
    let dir = TestDir::new("state-drills");
    let command = |args: &[&str]| {
        let mut c = drctl(&dir);
        for (name, value) in s3.env() {
            c.env(name, value);
        }
        c.args(args);
        c
    };
    let local_root = dir.state().join("drills");
    write_locally(&local_root, &report("monthly", "p", "2026-10-22T07:00:00.000Z", 20.0), "20261022T070000Z");
    write_locally(&local_root, &report("monthly", "p", "2026-11-22T07:00:00.000Z", 12.0), "20261122T070000Z");

    // Local → S3: the five files of each report, once.
    let to_s3 = run(command(&["state", "migrate", "--to", "s3://drills/team"]));
    to_s3.expect_code(0, "migrated");
    assert!(to_s3.stdout.contains("copied 10 drill report files (0 were already there)"), "{to_s3}");
    let keys = s3.keys("drills", "team/drills/");
    assert_eq!(keys.len(), 10, "{keys:?}");
    assert!(keys.contains(&"team/drills/monthly/20261122T070000Z/report.json".to_string()), "{keys:?}");
    let again = run(command(&["state", "migrate", "--to", "s3://drills/team"]));
    again.expect_code(0, "migrated again");
    assert!(again.stdout.contains("copied 0 drill report files (10 were already there)"), "{again}");

    // History reads S3, not the local directory (gone now).
    std::fs::remove_dir_all(&local_root).unwrap();
    let history = run(command(&["--state", "s3://drills/team", "drill", "history"]));
    history.expect_code(0, "history on S3");
    let lines: Vec<&str> = history.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{history}");
    assert!(lines[1].starts_with("2026-10-22 07:00:00  monthly"), "{history}");
    assert!(lines[2].contains("RTO ↓ 8 s since the previous drill"), "{history}");
    let local = run(command(&["drill", "history"]));
    assert!(local.stdout.starts_with("no drill reports in "), "the local state has none: {local}");

    // Saved through the store: created once; the same bytes again are fine, others refused.
    let store = s3.store("drills", "team");
    let body = serde_json::to_vec_pretty(&report("weekly", "p", "2026-11-29T07:00:00.000Z", 9.0)).unwrap();
    assert!(store.save_drill_file("weekly/20261129T070000Z/report.json", &body).unwrap());
    assert!(!store.save_drill_file("weekly/20261129T070000Z/report.json", &body).unwrap());
    let other = store.save_drill_file("weekly/20261129T070000Z/report.json", b"{}").unwrap_err().to_string();
    assert!(other.contains("holds another report already"), "{other}");
    assert!(store.save_drill_file("../x/report.json", &body).is_err(), "only DRILL/STAMP/NAME");
    let weekly = run(command(&["--state", "s3://drills/team", "drill", "history", "weekly"]));
    assert_eq!(weekly.stdout.lines().count(), 2, "{weekly}");

    // `drctl check`'s drill age reads the same reports.
    let plan_path = dir.write_plan("p.yaml", &plan("p", steps()));
    let drill_age = |state: &str, max_age: &str| {
        let args = ["--state", state, "--output", "json", "check", "--plan", plan_path.to_str().unwrap()];
        let out = run(command(&[&args[..], &["--max-drill-age", max_age]].concat()));
        let report: serde_json::Value =
            serde_json::from_str(out.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
        let items = report["items"].as_array().unwrap().clone();
        items.into_iter().find(|i| i["check"] == "drill_age").unwrap_or_else(|| panic!("no drill_age: {out}"))
    };
    let recent = drill_age("s3://drills/team", "3650d");
    assert_eq!(recent["severity"], "ok", "{recent}");
    assert!(recent["message"].as_str().unwrap().contains("the last passing drill of plan `p` started"), "{recent}");
    let old = drill_age("s3://drills/team", "1s");
    assert_eq!(old["severity"], "problem", "{old}");
    let none = drill_age(dir.state().to_str().unwrap(), "3650d");
    assert!(none["message"].as_str().unwrap().starts_with("no passing drill of plan `p`"), "{none}");

    // S3 → local: every file comes back byte for byte.
    let back = dir.path().join("back");
    let to_local = run(command(&["--state", "s3://drills/team", "state", "migrate", "--to", back.to_str().unwrap()]));
    to_local.expect_code(0, "migrated back");
    assert!(to_local.stdout.contains("copied 11 drill report files"), "{to_local}");
    let returned = StateStore::local(&back);
    assert_eq!(returned.drill_files().unwrap(), store.drill_files().unwrap());
    for path in store.drill_files().unwrap() {
        assert_eq!(returned.read_drill_file(&path).unwrap(), store.read_drill_file(&path).unwrap(), "{path}");
    }
    let history_back = run(command(&["--state", back.to_str().unwrap(), "drill", "history"]));
    assert_eq!(history_back.stdout.lines().count(), 4, "{history_back}");
}

fn steps() -> &'static str {
    "  - id: a\n    type: wait\n    with: {duration: 1ms}\n"
}

//! Unit tests of what readiness decides without the world: variables, DNS TTL and timeouts against
//! the RTO, the drill age, the verdict, and the three renderings.

use std::path::Path;
use std::time::Duration;

use super::plan_checks::{dns_ttl, drill_age, timeout_budget};
use super::steps::{named_variables, unset_variables};
use super::{ANY_DIRECTION, Item, Report, metrics, render};
use crate::drill::report::history::Reports;
use crate::plan::{Direction, Plan};
use crate::step::{Finding, Severity};

fn plan(rto: &str, failover: &str) -> Plan {
    let text = format!(
        "name: p\nregions: {{primary: us-east-1, secondary: us-west-2}}\nobjectives: {{rto: {rto}, rpo: 5m}}\n\
         failover:\n{failover}\nfailback:\n  - id: back\n    type: wait\n    with: {{duration: 1ms}}\n"
    );
    let registry = crate::steps::builtin(&crate::steps::Services::for_checking());
    crate::plan::parse(Path::new("p.yaml"), &text, &registry).unwrap_or_else(|e| panic!("{e}"))
}

const DNS: &str = "  - id: dns\n    type: aws.route53.upsert_record\n    timeout: 2m\n    with:\n      zone_id: Z1\n      \
                   name: api.example.com\n      type: A\n      values: [192.0.2.1]\n      ttl: TTL\n";

#[test]
fn variables_named_by_templates_and_env_parameters_are_found_and_unset_ones_are_problems() {
    let with = crate::plan::yaml::parse(
        "url_env: DRCTL_TEST_SET_VARIABLE\ndsn_env: DRCTL_TEST_UNSET_VARIABLE\nbody: \"{{ env.DRCTL_TEST_UNSET_TOO }} {{ steps.a.outputs.b }}\"\n",
    )
    .unwrap();
    let names: Vec<String> = named_variables(&with).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["DRCTL_TEST_SET_VARIABLE", "DRCTL_TEST_UNSET_TOO", "DRCTL_TEST_UNSET_VARIABLE"]);
    // SAFETY: no other test reads or writes this variable.
    unsafe { std::env::set_var("DRCTL_TEST_SET_VARIABLE", "http://x") };
    let unset = unset_variables(&with);
    assert_eq!(unset.len(), 2, "{unset:#?}");
    assert!(unset.iter().all(|f| f.severity == Severity::Problem && f.check == "env_set"));
    assert_eq!(unset[1].message, "the environment variable DRCTL_TEST_UNSET_VARIABLE (`with.dsn_env`) is not set");
    assert_eq!(
        unset[0].fix,
        "export DRCTL_TEST_UNSET_TOO in the environment that runs drctl (shell, systemd unit, CronJob)"
    );
}

#[test]
fn a_ttl_that_eats_the_rto_warns_and_one_past_it_is_a_problem() {
    let severity =
        |rto: &str, ttl: &str| dns_ttl(&plan(rto, &DNS.replace("TTL", ttl)), Direction::Failover)[0].severity;
    assert_eq!(severity("15m", "60"), Severity::Ok);
    assert_eq!(severity("15m", "600"), Severity::Warning, "10 min of a 15 min RTO");
    assert_eq!(severity("15m", "900"), Severity::Problem, "15 min TTL + 1 min propagation > 15 min");
    let finding = &dns_ttl(&plan("15m", &DNS.replace("TTL", "600")), Direction::Failover)[0];
    assert!(finding.message.contains("the TTL alone takes 67% of the RTO"), "{}", finding.message);
}

#[test]
fn the_critical_paths_timeouts_are_weighed_against_the_rto() {
    let p = plan("1m", &DNS.replace("TTL", "10"));
    let finding = &timeout_budget(&p, Direction::Failover)[0];
    assert_eq!(finding.severity, Severity::Warning);
    assert!(
        finding.message.contains("the critical path dns may take 2m 00s of timeouts, 1m 00s over the RTO"),
        "{}",
        finding.message
    );
    assert!(timeout_budget(&p, Direction::Failback).is_empty(), "the RTO is the failover's");
}

#[test]
fn the_last_passing_drill_must_be_recent() {
    let p = plan("15m", &DNS.replace("TTL", "60"));
    let dir = std::env::temp_dir().join(format!("drctl-readiness-drills-{}", std::process::id()));
    let missing = drill_age(&p, &Reports::Dir(dir), Duration::from_secs(86400), crate::clock::wall_now());
    assert_eq!(missing.severity, Severity::Problem);
    assert!(missing.message.starts_with("no passing drill of plan `p`"), "{}", missing.message);
}

fn report(findings: Vec<(&str, &str, Finding)>) -> Report {
    Report {
        plan: "p".into(),
        directions: vec![Direction::Failover],
        items: findings
            .into_iter()
            .map(|(direction, step, finding)| Item {
                direction: direction.into(),
                step: step.into(),
                step_type: String::new(),
                duration_s: 0.0,
                finding,
            })
            .collect(),
        last_drills: vec![super::LastDrill { drill: "monthly".into(), started_at_s: 1700000000.0 }],
        duration_s: 0.25,
        checked_at_s: 1700000100.0,
    }
}

#[test]
fn warnings_alone_are_ready_unless_strict_and_any_problem_is_not() {
    let warned = report(vec![
        ("failover", "a", Finding::warning("c", "m", "f")),
        (ANY_DIRECTION, "plan", Finding::ok("x", "y")),
    ]);
    assert!(warned.ready(false) && !warned.ready(true));
    assert!(warned.ready_in(Direction::Failover, false));
    let broken = report(vec![(ANY_DIRECTION, "plan", Finding::problem("x", "down", "fix it"))]);
    assert!(
        !broken.ready(false) && !broken.ready_in(Direction::Failover, false),
        "a plan-wide problem counts for both"
    );
    let table = render::table(&broken, false, false);
    assert!(table.contains("PROBLEM  any  plan  x  down\n") && table.contains("fix: fix it"), "{table}");
    assert!(table.contains("NOT READY: plan p (failover): 1 problem(s), 0 warning(s)"), "{table}");
}

#[test]
fn metrics_keep_the_worst_finding_per_series_and_escape_labels() {
    let r = report(vec![
        ("failover", "scale", Finding::ok("rbac", "get")),
        ("failover", "scale", Finding::problem("rbac", "patch denied", "grant")),
        ("failover", "promote \"db\"", Finding::ok("replica_lag", "0s").with_lag(1.5)),
    ]);
    let text = metrics::render(&r);
    assert!(
        text.contains("drctl_check_ok{plan=\"p\",direction=\"failover\",step=\"scale\",check=\"rbac\"} 0\n"),
        "{text}"
    );
    assert_eq!(text.matches("step=\"scale\",check=\"rbac\"} ").count(), 2, "one ok and one warning series\n{text}");
    assert!(text.contains("drctl_replica_lag_seconds{plan=\"p\",step=\"promote \\\"db\\\"\"} 1.5\n"), "{text}");
    assert!(text.contains("drctl_check_ready{plan=\"p\",direction=\"failover\"} 0\n"), "{text}");
    assert!(text.contains("drctl_last_drill_timestamp_seconds{plan=\"p\",drill=\"monthly\"} 1700000000\n"), "{text}");
}

#[test]
fn junit_fails_problems_and_escapes_xml() {
    let r = report(vec![
        ("failover", "a", Finding::problem("c", "x < y & \"z\"", "do <this>")),
        ("failover", "b", Finding::warning("w", "meh", "later")),
    ]);
    let xml = render::junit(&r, false);
    assert!(xml.contains("failures=\"1\""), "{xml}");
    assert!(xml.contains("<failure message=\"x &lt; y &amp; &quot;z&quot;\">"), "{xml}");
    assert!(xml.contains("<system-out>warning: meh\nfix: later</system-out>"), "{xml}");
    assert!(render::junit(&r, true).contains("failures=\"2\""), "strict fails warnings too");
}

//! Hand-built reports for the renderers' tests: [`sample`] passed; [`sample_failed`] missed its RPO
//! by 2.3 s, and its failback failed on a step whose error has markup in it.

use super::model::*;

fn at(seconds_after_07_12: f64) -> String {
    let base = humantime::parse_rfc3339("2026-11-22T07:12:00Z").unwrap();
    humantime::format_rfc3339_millis(base + std::time::Duration::from_secs_f64(seconds_after_07_12)).to_string()
}

fn step(id: &str, name: &str, step_type: &str, times: Option<(f64, f64)>, after: &[&str]) -> StepReport {
    StepReport {
        id: id.into(),
        name: name.into(),
        step_type: step_type.into(),
        state: if times.is_some() { "succeeded" } else { "pending" }.into(),
        started_at: times.map(|(s, _)| at(s)),
        finished_at: times.map(|(_, f)| at(f)),
        duration_s: times.map(|(s, f)| ((f - s) * 1000.0).round() / 1000.0),
        attempts: u32::from(times.is_some()),
        already_done: false,
        error: None,
        continued: false,
        approval: None,
        after: after.iter().map(|s| s.to_string()).collect(),
    }
}

fn failover() -> RunReport {
    let mut lag = step("check-lag", "Check replica lag", "pg.check", Some((6.3, 6.35)), &["freeze-writes"]);
    lag.state = "passed".into();
    let mut promote =
        step("promote-db", "Promote the DR database", "pg.promote", Some((6.4, 10.9)), &["freeze-writes"]);
    promote.attempts = 2;
    RunReport {
        direction: "failover".into(),
        run_id: "us-west-2-failover-20261122T071205Z-3fa1".into(),
        state: "succeeded".into(),
        started_at: at(5.0),
        finished_at: Some(at(17.0)),
        rto_s: Some(11.42),
        critical_path: ["freeze-writes", "promote-db", "switch-dns", "dr-health"].map(String::from).to_vec(),
        steps: vec![
            step("freeze-writes", "Freeze writes on the primary", "kube.scale", Some((5.1, 6.3)), &[]),
            lag,
            promote,
            step("switch-dns", "Point DNS at us-east-1", "aws.route53.switch", Some((11.0, 13.5)), &["promote-db"]),
            step("dr-health", "DR region healthy", "http.check", Some((13.6, 16.42)), &["switch-dns"]),
        ],
    }
}

fn failback() -> RunReport {
    RunReport {
        direction: "failback".into(),
        run_id: "us-west-2-failback-20261122T071240Z-9c2e".into(),
        state: "succeeded".into(),
        started_at: at(40.0),
        finished_at: Some(at(57.2)),
        rto_s: Some(16.9),
        critical_path: ["resync", "dns-back", "primary-health"].map(String::from).to_vec(),
        steps: vec![
            step("resync", "Resync the old primary", "command", Some((40.1, 52.0)), &[]),
            step("dns-back", "Point DNS back at us-west-2", "aws.route53.switch", Some((52.1, 54.0)), &["resync"]),
            step("notify", "Notify #incidents", "notify.webhook", Some((54.0, 54.4)), &["dns-back"]),
            step("primary-health", "Primary region healthy", "http.check", Some((54.1, 56.9)), &["dns-back"]),
        ],
    }
}

fn measurement(objective_s: f64, measured_s: f64, detail: &str) -> Measurement {
    Measurement {
        objective_s,
        measured_s: Some(measured_s),
        met: Some(measured_s <= objective_s),
        detail: detail.into(),
    }
}

/// A drill that passed: RTO 12.3 s against 120 s, RPO 0.8 s against 5 s.
pub(crate) fn sample() -> DrillReport {
    DrillReport {
        schema_version: SCHEMA_VERSION,
        drill: "us-west-2-monthly".into(),
        plan: "us-west-2-local".into(),
        environment: "local".into(),
        host: "drill-runner-1".into(),
        started_at: at(0.0),
        finished_at: at(60.0),
        fault: FaultReport {
            kind: "database_stop".into(),
            description: "the primary database (127.0.0.1:5433) stopped hard (pg_ctl stop -m immediate)".into(),
            injected_at: at(4.12),
        },
        objectives: ObjectivesReport {
            rto: measurement(120.0, 12.3, "from the fault to the first healthy answer of http://127.0.0.1:8081/health"),
            rpo: measurement(
                5.0,
                0.8,
                "from the last heartbeat committed on the old primary to the last one present on the new",
            ),
        },
        heartbeats: HeartbeatReport {
            interval_ms: 100,
            committed: 412,
            last_committed_seq: Some(412),
            last_committed_at: Some(at(4.1)),
            last_present_seq: Some(404),
            last_present_at: Some(at(3.3)),
            lost: 8,
        },
        runs: vec![failover(), failback()],
        checks: vec![
            CheckReport {
                name: "primary serves writes".into(),
                passed: true,
                detail: "INSERT on 127.0.0.1:5433 committed".into(),
            },
            CheckReport { name: "nothing left behind".into(), passed: true, detail: "no drill objects remain".into() },
        ],
        outcome: Outcome { passed: true, failures: Vec::new() },
    }
}

/// A drill that failed: RPO 2.3 s against 0 s, a failback step failed with `<&>` in its error and
/// the step after it was skipped, and a check failed.
pub(crate) fn sample_failed() -> DrillReport {
    let mut report = sample();
    report.drill = "us-west-2-zero-rpo".into();
    report.objectives.rpo = measurement(
        0.0,
        2.3,
        "from the last heartbeat committed on the old primary to the last one present on the new",
    );
    report.heartbeats.last_present_seq = Some(389);
    report.heartbeats.last_present_at = Some(at(1.8));
    report.heartbeats.lost = 23;
    let failback = &mut report.runs[1];
    failback.state = "failed".into();
    failback.rto_s = None;
    let notify = &mut failback.steps[2];
    notify.state = "failed".into();
    notify.attempts = 3;
    notify.error = Some("POST https://hooks.example/x?a=1&b=2 answered 500: <error code=\"E1\"> & 'retry'".into());
    let health = &mut failback.steps[3];
    health.after = vec!["notify".into()];
    (health.state, health.started_at, health.finished_at, health.duration_s) = ("skipped".into(), None, None, None);
    (health.attempts, health.error) = (0, Some("a step it depends on failed".into()));
    report.checks[1].passed = false;
    report.checks[1].detail = "the scaled-down deployment api-dr still has 0 replicas & <none> ready".into();
    report.outcome = Outcome {
        passed: false,
        failures: vec![
            "RPO missed: 2.3 s of writes lost against an objective of 0 s (2.3 s over)".into(),
            "the failback run failed: step notify: POST https://hooks.example/x?a=1&b=2 answered 500".into(),
            "check failed: nothing left behind".into(),
        ],
    };
    report
}

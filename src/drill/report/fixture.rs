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
        state: if times.is_some() { StepStatus::Succeeded } else { StepStatus::Pending },
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
    lag.state = StepStatus::Passed;
    let mut promote =
        step("promote-db", "Promote the DR database", "pg.promote", Some((6.4, 10.9)), &["freeze-writes"]);
    promote.attempts = 2;
    RunReport {
        direction: "failover".into(),
        run_id: "us-west-2-failover-20261122T071205Z-3fa1".into(),
        state: RunStatus::Succeeded,
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
        state: RunStatus::Succeeded,
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

/// The client's record: writes every 100 ms from 3.0 s; those from 3.3 s to 4.0 s acknowledged and
/// lost, refused through us-east-1 from the fault at 4.12 s, then surviving through us-west-2 from
/// 16.4 s (recovered at 16.42 s: an RTO of 12.3 s).
fn client() -> ClientReport {
    let writes: Vec<ClientWrite> = (0..150_u32)
        .map(|i| {
            let t = 3.0 + f64::from(i) * 0.1;
            let (region, fate) = match t {
                t if t < 3.3 => ("us-east-1", "survived"),
                t if t < 4.05 => ("us-east-1", "lost"),
                t if t < 16.35 => ("us-east-1", "failed"),
                _ => ("us-west-2", "survived"),
            };
            ClientWrite {
                seq: u64::from(i) + 1,
                at: at(t),
                region: Some(region.into()),
                fate: fate.into(),
                error: (fate == "failed").then(|| "us-east-1: no answer (connection failed)".into()),
            }
        })
        .collect();
    ClientReport {
        interval_ms: 100,
        dns_ttl: "5s (client_dns_ttl)".into(),
        attempts: 150,
        acknowledged: 27,
        failed: 123,
        outage_started_at: Some(at(4.2)),
        recovered_at: Some(at(16.42)),
        promoted_at: Some(at(10.9)),
        final_primary: Some("us-west-2".into()),
        lost_writes: 8,
        lost_first_at: Some(at(3.3)),
        lost_last_at: Some(at(4.1)),
        split_brain_writes: 0,
        allow_split_brain: false,
        writes,
    }
}

/// A drill that passed: RTO 12.3 s against 120 s, RPO 0.8 s against 5 s.
pub(crate) fn sample() -> DrillReport {
    DrillReport {
        schema_version: SCHEMA_VERSION,
        drill: "us-west-2-monthly".into(),
        plan: "us-west-2".into(),
        environment: "local".into(),
        host: "drill-runner-1".into(),
        provenance: Provenance {
            user: "oncall".into(),
            approval: "`--yes` on the command line: a drill runs its plan unattended".into(),
            drctl_version: "0.1.0".into(),
            git_commit: Some("5493c94f00dfeedbeef5493c94f00dfeedbeef00".into()),
            plan_file: "plans/us-west-2.yaml".into(),
            plan_sha256: "a".repeat(64),
            drill_file: "drills/us-west-2-monthly.yaml".into(),
            drill_sha256: "b".repeat(64),
            inventory: [("route53".to_string(), vec!["example.com. api.example.com. A".to_string()])].into(),
        },
        started_at: at(0.0),
        finished_at: at(60.0),
        fault: FaultReport {
            kind: "database_stop".into(),
            description: "the primary database (127.0.0.1:5433) stopped hard (pg_ctl stop -m immediate)".into(),
            injected_at: at(4.12),
        },
        objectives: ObjectivesReport {
            rto: measurement(120.0, 12.3, "from the fault to the first acknowledged client write after the outage"),
            rpo: measurement(5.0, 0.8, "8 acknowledged client writes missing from the final primary (us-west-2)"),
            dr_ready_s: Some(6.8),
        },
        client: client(),
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
        deviations: vec!["failover step `promote-db` took 2 attempts".into()],
        remediation: Vec::new(),
        timing: None,
    }
}

/// A drill that failed: RPO 2.3 s against 0 s, a failback step failed with `<&>` in its error and
/// the step after it was skipped, and a check failed.
pub(crate) fn sample_failed() -> DrillReport {
    let mut report = sample();
    report.drill = "us-west-2-zero-rpo".into();
    report.objectives.rpo = measurement(0.0, 2.3, "23 acknowledged client writes missing from the final primary");
    report.client.lost_writes = 23;
    report.client.split_brain_writes = 3;
    for write in &mut report.client.writes[80..83] {
        write.fate = "split_brain".into();
        write.error = None;
    }
    let failback = &mut report.runs[1];
    failback.state = RunStatus::Failed;
    failback.rto_s = None;
    let notify = &mut failback.steps[2];
    notify.state = StepStatus::Failed;
    notify.attempts = 3;
    notify.error = Some("POST https://hooks.example/x?a=1&b=2 answered 500: <error code=\"E1\"> & 'retry'".into());
    let health = &mut failback.steps[3];
    health.after = vec!["notify".into()];
    (health.state, health.started_at, health.finished_at, health.duration_s) = (StepStatus::Skipped, None, None, None);
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
    report.remediation = report
        .outcome
        .failures
        .iter()
        .map(|f| RemediationItem { item: f.clone(), owner: String::new(), due: String::new() })
        .collect();
    report
}

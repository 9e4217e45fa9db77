use std::path::Path;

use super::*;
use crate::steps::{Services, builtin};

const PROFILE: &str = "name: t\noperations:\n  route53.change: {p50: 60s, p95: 120s}\n  rds.promote_read_replica: {p50: 5m, p95: 15m}\n  kube.pod_ready: {p50: 15s, p95: 1m}\n";

fn plan(text: &str) -> Plan {
    crate::plan::parse(Path::new("p.yaml"), text, &builtin(&Services::for_checking())).unwrap()
}

const PLAN: &str = "name: p\nregions: {primary: us-east-1, secondary: us-west-2}\nkubernetes: {primary: a, secondary: b}\nobjectives: {rto: 15m, rpo: 5m}\nfailover:\n  - {id: approve, type: approval, with: {message: go}}\n  - {id: promote, type: aws.rds.promote_replica, after: [approve], timeout: 10m, with: {replica: r, region: us-west-2}}\n  - {id: scale, type: kube.scale, after: [approve], with: {namespace: n, name: app, replicas: 3}}\n  - {id: settle, type: wait, after: [scale], timeout: 10m, with: {duration: 6m}}\n  - {id: check, type: http.check, after: [promote, settle], with: {url: 'http://127.0.0.1:1/h', attempts: 5, interval: 2s}}\n  - {id: dns, type: aws.route53.upsert_record, after: [check], timeout: 3m, with: {zone_id: Z1, name: a.example.com, type: A, ttl: 60, values: [1.2.3.4]}}\n  - {id: public, type: http.check, after: [dns], marks_recovery: true, with: {url: 'http://127.0.0.1:1/h'}}\n  - {id: after, type: aws.secrets.read, after: [public], with: {secret_id: s, region: us-west-2}}\nfailback:\n  - {id: back, type: wait, with: {duration: 1s}}\n";

#[test]
fn the_critical_path_sums_profiled_and_fixed_times_and_bounds_the_rest() {
    let profile = profile::parse(Path::new("t.yaml"), PROFILE).unwrap();
    let f = forecast(&plan(PLAN), Direction::Failover, &profile);
    let ids: Vec<&str> = f.path.iter().map(|s| s.id.as_str()).collect();
    // By p50 the scale-up (15s) and its 6m wait outweigh the promotion (5m).
    assert_eq!(ids, ["approve", "scale", "settle", "check", "dns", "public"]);
    assert_eq!(f.p50, Duration::from_secs(15 + 360 + 60));
    // By p95 the promotion (15m) is the longer branch: the totals take their own paths.
    assert_eq!(f.p95, Duration::from_secs(900 + 120));
    // Bound: approval's 30m default timeout, the promotion's p95, the check's 5 × 2s, the DNS
    // change's p95, the last check's timeout (the plan default 5m: no attempts given).
    assert_eq!(f.bound, Duration::from_secs(1800 + 900 + 10 + 120 + 300));
    assert_eq!(f.path[0].basis, Basis::Approval);
    assert_eq!(f.path[3].basis, Basis::Check);
    let text = render(&f, &profile);
    assert!(text.contains("forecast p50 7m 15s: within, 7m 45s to spare the RTO of 15m 00s"), "{text}");
    assert!(text.contains("forecast p95 17m 00s: OVER by 2m 00s"), "{text}");
}

#[test]
fn an_operation_the_profile_lacks_is_not_modelled_and_bounded_by_the_timeout() {
    let profile = profile::parse(Path::new("t.yaml"), "name: t\noperations: {}\n").unwrap();
    let p = plan(PLAN);
    let promote = step(&p.failover[1], &profile);
    assert_eq!(promote.basis, Basis::NotModelled);
    assert_eq!((promote.p50, promote.bound), (Duration::ZERO, Duration::from_secs(600)));
}

#[test]
fn a_bad_profile_gets_positioned_errors() {
    let text = "name: t\noperations:\n  route53.chang: {p50: 60s, p95: 120s}\n  kube.pod_ready: {p50: 2m, p95: 1m}\n  rds.promote_read_replica: {p50: 5, p95: 10m}\n";
    let e = profile::parse(Path::new("bad.yaml"), text).unwrap_err().to_string();
    assert!(e.contains("bad.yaml:3:3: error: operations.route53.chang: unknown operation `route53.chang`"), "{e}");
    assert!(e.contains("did you mean `route53.change`?"), "{e}");
    assert!(e.contains("bad.yaml:4:19: error: operations.kube.pod_ready: p50 is above p95"), "{e}");
    assert!(
        e.contains(
            "bad.yaml:5:35: error: operations.rds.promote_read_replica.p50: expected a duration, found an integer"
        ),
        "{e}"
    );
}

#[test]
fn the_shipped_profile_parses() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("drills/profiles/aws-typical.yaml");
    let profile = profile::load(&path).unwrap();
    assert_eq!(profile.name, "aws-typical");
    for (op, _) in profile::OPERATIONS {
        assert!(profile.operations.contains_key(*op), "{op}");
    }
}

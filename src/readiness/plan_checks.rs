//! The checks of a plan as a whole, on top of the steps' preflights: the credentials of each region
//! answer (STS GetCallerIdentity), each Kubernetes context answers, DNS TTL and the critical path's
//! timeouts fit the RTO, the state store is reachable (and not in the primary region), and the last
//! passing drill is recent enough. All read-only.

use std::path::Path;
use std::time::{Duration, SystemTime};

use super::{ANY_DIRECTION, Item, Options, PLAN_STEP, bounded};
use crate::clock::human_duration;
use crate::drill::report::history::Reports;
use crate::plan::graph::Graph;
use crate::plan::{Direction, Plan};
use crate::step::Finding;

/// How long Route53 takes to apply a change on all its name servers, by its own documentation
/// ("within 60 seconds").
pub const ROUTE53_PROPAGATION: Duration = Duration::from_secs(60);

/// The TTL an alias record answers with: its target's (60 s for an ELB).
const ALIAS_TTL: Duration = Duration::from_secs(60);

/// Every plan-level check, concurrently.
pub async fn all(plan: &Plan, options: &Options) -> Vec<Item> {
    // Credentials matter only to a plan that talks to AWS in the directions checked.
    let uses_aws = options.directions.iter().any(|&d| plan.steps(d).iter().any(|s| s.step_type.starts_with("aws.")));
    let regions = if uses_aws { vec![&plan.regions.primary, &plan.regions.secondary] } else { Vec::new() };
    let credentials = futures::future::join_all(regions.into_iter().map(|r| credentials(plan, options, r)));
    let contexts = kube_contexts(plan);
    let (credentials, contexts) = futures::join!(credentials, contexts);
    let mut findings: Vec<Finding> = credentials.into_iter().flatten().collect();
    findings.extend(contexts);
    findings.extend(state_store(&options.state_dir, plan));
    if let Some(max_age) = options.max_drill_age {
        findings.push(drill_age(plan, &options.reports, max_age, crate::clock::wall_now()));
    }
    let mut items: Vec<Item> = findings.into_iter().map(|f| item(ANY_DIRECTION, f)).collect();
    for &direction in &options.directions {
        for finding in dns_ttl(plan, direction).into_iter().chain(timeout_budget(plan, direction)) {
            items.push(item(&direction.to_string(), finding));
        }
    }
    items
}

fn item(direction: &str, finding: Finding) -> Item {
    Item { direction: direction.into(), step: PLAN_STEP.into(), step_type: String::new(), duration_s: 0.0, finding }
}

/// STS GetCallerIdentity in `region` with the plan's AWS settings.
async fn credentials(plan: &Plan, options: &Options, region: &str) -> Vec<Finding> {
    let check = format!("aws_credentials_{region}");
    let what = format!("STS in {region}");
    bounded(&check.clone(), &what, async move {
        let aws = crate::aws::Aws::new(options.endpoint_url.clone());
        let client = aws_sdk_sts::Client::new(&aws.config(region, &plan.aws).await);
        match client.get_caller_identity().send().await {
            Ok(identity) => vec![Finding::ok(
                &check,
                format!("the AWS credentials answer in {region} as {}", identity.arn().unwrap_or("?")),
            )],
            Err(e) => {
                let error = crate::aws::step_error(&e, &format!("call STS GetCallerIdentity in {region}"), "aws");
                vec![Finding::problem(
                    &check,
                    error.message,
                    "give the machine that runs drctl credentials (AWS_PROFILE, an instance role, SSO login) that \
                     work in this region",
                )]
            }
        }
    })
    .await
}

/// Each of the plan's `kubernetes:` contexts answers.
async fn kube_contexts(plan: &Plan) -> Vec<Finding> {
    let Some(contexts) = &plan.kubernetes else { return Vec::new() };
    let kube = crate::k8s::Kube::default();
    let checks = [&contexts.primary, &contexts.secondary].map(|name| {
        let kube = &kube;
        async move {
            let check = format!("kube_context_{name}");
            bounded(&check.clone(), &format!("context {name}"), async move {
                let fix = "fix the kubeconfig (KUBECONFIG) or the plan's `kubernetes:` contexts, and check that the \
                           cluster's API server is up";
                let client = match kube.client(Some(name)).await {
                    Ok(client) => client,
                    Err(e) => return vec![Finding::problem(&check, e.message, fix)],
                };
                match client.apiserver_version().await {
                    Ok(v) => vec![Finding::ok(
                        &check,
                        format!("context {name} answers (Kubernetes {}.{})", v.major, v.minor),
                    )],
                    Err(e) => vec![Finding::problem(&check, format!("context {name} does not answer: {e}"), fix)],
                }
            })
            .await
        }
    });
    futures::future::join_all(checks).await.into_iter().flatten().collect()
}

/// The TTL clients cache a record for, from a Route53 step's parameters.
fn record_ttl(with: &crate::plan::yaml::Node) -> Duration {
    if with.get("alias").is_some() {
        return ALIAS_TTL;
    }
    let ttl = with.get("ttl").and_then(|n| match n.value {
        crate::plan::yaml::Value::Int(i) => u64::try_from(i).ok(),
        _ => None,
    });
    Duration::from_secs(ttl.unwrap_or(60))
}

/// DNS: for each record a direction moves, its TTL plus Route53's propagation against the RTO.
/// A TTL alone over a third of the RTO is a warning; TTL plus propagation over the RTO a problem.
pub fn dns_ttl(plan: &Plan, direction: Direction) -> Vec<Finding> {
    let rto = plan.objectives.rto;
    let check = "dns_ttl";
    plan.steps(direction)
        .iter()
        .filter(|s| s.step_type == "aws.route53.upsert_record")
        .map(|s| {
            let ttl = record_ttl(&s.with);
            let total = ttl + ROUTE53_PROPAGATION;
            let share = ttl.as_secs_f64() / rto.as_secs_f64().max(1.0);
            let said = format!(
                "step `{}`: TTL {} plus Route53 propagation {} = {} against the RTO of {}",
                s.id,
                human_duration(ttl),
                human_duration(ROUTE53_PROPAGATION),
                human_duration(total),
                human_duration(rto)
            );
            if total > rto {
                Finding::problem(
                    check,
                    format!("{said}: clients keep the old answer past the RTO"),
                    "lower the record's TTL",
                )
            } else if share > 1.0 / 3.0 {
                Finding::warning(
                    check,
                    format!("{said}: the TTL alone takes {:.0}% of the RTO", share * 100.0),
                    "lower the record's TTL (60s is common for failover records)",
                )
            } else {
                Finding::ok(check, said)
            }
        })
        .collect()
}

/// The failover's critical path by timeouts against the RTO (what `drctl plan show` warns of).
pub fn timeout_budget(plan: &Plan, direction: Direction) -> Vec<Finding> {
    if direction != Direction::Failover {
        return Vec::new();
    }
    let steps = plan.steps(direction);
    let graph = Graph::of(steps);
    let Ok(order) = graph.order() else { return Vec::new() };
    let recovery = steps.iter().rposition(|s| s.marks_recovery);
    let (critical, budget) = graph.critical_path(&order, recovery, |i| steps[i].timeout);
    let path: Vec<&str> = critical.iter().map(|&i| steps[i].id.as_str()).collect();
    let rto = plan.objectives.rto;
    let said = format!("the critical path {} may take {} of timeouts", path.join(" → "), human_duration(budget));
    vec![if budget > rto {
        Finding::warning(
            "timeout_budget",
            format!("{said}, {} over the RTO of {}", human_duration(budget.saturating_sub(rto)), human_duration(rto)),
            "shorten the timeouts on the critical path (`drctl plan show` marks it), or run more steps in parallel",
        )
    } else {
        Finding::ok("timeout_budget", format!("{said}, within the RTO of {}", human_duration(rto)))
    }]
}

/// The state store (journals, locks) is reachable and, once shared, not in the primary region.
/// Today the store is a local directory: it must exist (or be creatable) and be writable, checked
/// with access(2), never by writing.
pub fn state_store(state_dir: &Path, _plan: &Plan) -> Vec<Finding> {
    let check = "state_store";
    let existing = state_dir.ancestors().find(|p| p.exists()).unwrap_or(Path::new("."));
    let Ok(c_path) = std::ffi::CString::new(existing.as_os_str().as_encoded_bytes()) else {
        return vec![Finding::problem(check, "the state directory's path holds a NUL byte", "fix --state-dir")];
    };
    // SAFETY: access(2) reads a NUL-terminated path and changes nothing.
    let writable = unsafe { libc::access(c_path.as_ptr(), libc::W_OK | libc::X_OK) } == 0;
    if !existing.is_dir() || !writable {
        return vec![Finding::problem(
            check,
            format!(
                "the state directory {} cannot be written ({} is not a writable directory)",
                state_dir.display(),
                existing.display()
            ),
            "point --state-dir (DRCTL_STATE_DIR) at a writable directory",
        )];
    }
    vec![Finding::ok(
        check,
        format!("the state directory {} is writable (a local directory, in no AWS region)", state_dir.display()),
    )]
}

/// The newest passing drill of each drill that ran `plan`, or why the reports cannot be read.
pub fn last_passing_drills(plan: &Plan, reports: &Reports) -> Result<Vec<super::LastDrill>, String> {
    let found = reports.load(None)?;
    let mut latest: std::collections::BTreeMap<String, f64> = Default::default();
    for (_, report) in found.reports.iter().filter(|(_, r)| r.plan == plan.name && r.outcome.passed) {
        let Some(at) = crate::drill::report::text::time(Some(&report.started_at)) else { continue };
        let at = at.duration_since(SystemTime::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
        let entry = latest.entry(report.drill.clone()).or_insert(at);
        *entry = entry.max(at);
    }
    Ok(latest.into_iter().map(|(drill, started_at_s)| super::LastDrill { drill, started_at_s }).collect())
}

/// The last passing drill of the plan is at most `max_age` old.
pub fn drill_age(plan: &Plan, reports: &Reports, max_age: Duration, now: SystemTime) -> Finding {
    let check = "drill_age";
    let drills = match last_passing_drills(plan, reports) {
        Ok(drills) => drills,
        Err(e) => {
            let said = format!("cannot read the drill reports in {}: {e}", reports.describe());
            return Finding::problem(check, said, "make the reports readable (or point --reports-dir at them)");
        }
    };
    let newest =
        drills.into_iter().map(|d| d.started_at_s).fold(None, |a: Option<f64>, b| Some(a.map_or(b, |a| a.max(b))));
    let fix = format!(
        "run a drill of this plan (`drctl drill run ...`); the limit is --max-drill-age {}",
        human_duration(max_age)
    );
    let Some(newest) = newest else {
        return Finding::problem(
            check,
            format!("no passing drill of plan `{}` in {}", plan.name, reports.describe()),
            fix,
        );
    };
    let now_s = now.duration_since(SystemTime::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
    let age = Duration::from_secs_f64((now_s - newest).max(0.0));
    let said = format!("the last passing drill of plan `{}` started {} ago", plan.name, human_duration(age));
    if age > max_age {
        Finding::problem(check, format!("{said}, more than {}", human_duration(max_age)), fix)
    } else {
        Finding::ok(check, said)
    }
}

//! What `aws.rds.promote_replica` checks before a run, read-only: the replica exists and is a
//! replicating read replica, and its lag (the same CloudWatch `ReplicaLag` query the promotion
//! uses) is within the limit.

use super::{PromoteStep, Standing, standing};
use crate::step::{Finding, StepContext};
use crate::steps::lag_gate::{Lag, seconds};

impl PromoteStep {
    /// DescribeDBInstances, then GetMetricStatistics: never a write.
    pub(super) async fn preflight_findings(&self, ctx: &StepContext) -> Vec<Finding> {
        let rds = self.clients.rds(&self.region).await;
        let (replica, region) = (&self.replica, &self.region);
        let instance = match self.describe_replica(&rds).await {
            Ok(instance) => instance,
            Err(e) => {
                let fix = format!(
                    "recreate the read replica `{replica}` in {region} (aws.rds.create_replica), or fix `with.replica`"
                );
                return vec![Finding::problem("replica_exists", e.message, fix)];
            }
        };
        let mut findings = vec![Finding::ok("replica_exists", format!("read replica `{replica}` exists in {region}"))];
        match standing(&instance, false) {
            Standing::Replica => {
                findings.push(Finding::ok("replica_streaming", format!("`{replica}` is a replicating read replica")))
            }
            Standing::Writable => {
                findings.push(Finding::ok(
                    "replica_streaming",
                    format!("`{replica}` is already standalone: the promotion would find its effect in place"),
                ));
                return findings;
            }
            other => {
                findings.push(Finding::problem(
                    "replica_streaming",
                    format!("read replica `{replica}` in {region} is {other}"),
                    "repair or recreate the replica before a failover needs it",
                ));
                return findings;
            }
        }
        let limit = &self.limit;
        findings.push(match self.measure_lag(ctx).await {
            Ok(Lag::Seconds(s)) if s <= limit.max.as_secs_f64() => {
                Finding::ok("replica_lag", format!("`{replica}` lags {}s, within {}", seconds(s), limit.what))
                    .with_lag(s)
            }
            Ok(Lag::Seconds(s)) => Finding::problem(
                "replica_lag",
                format!("`{replica}` lags {}s, more than {}: a promotion now would be refused", seconds(s), limit.what),
                "find why the replica falls behind (write load, instance class, network) and let it catch up",
            )
            .with_lag(s),
            Ok(Lag::Unknown(why)) => Finding::warning(
                "replica_lag",
                format!("the lag of `{replica}` is unknown ({why}): a promotion now would be refused"),
                "check that CloudWatch receives the replica's ReplicaLag metric",
            ),
            Err(e) => Finding::problem("replica_lag", e.message, "allow cloudwatch:GetMetricStatistics"),
        });
        findings
    }
}

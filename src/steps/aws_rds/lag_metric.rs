//! Reads a lag from CloudWatch for the RPO gate: the Maximum of the latest one-minute datapoint in
//! the last five minutes of one `AWS/RDS` metric. `aws.rds.promote_replica` reads `ReplicaLag`
//! (seconds, per instance); `aws.rds.global_failover` reads `AuroraGlobalDBRPOLag` (milliseconds,
//! on the secondary cluster). Against an emulator that does not speak the SDK's CBOR protocol the
//! Query protocol is used instead (see the parent module).

use std::time::Duration;

use aws_sdk_cloudwatch::types::{Dimension, Statistic};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::Response as HttpResponse;
use aws_smithy_types::DateTime;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::Clients;
use super::query::MetricQuery;
use crate::aws::step_error;
use crate::step::{StepContext, StepError};
use crate::steps::HumanDuration;
use crate::steps::lag_gate::Lag;

/// How far back to look for a datapoint.
pub(super) const LAG_WINDOW: Duration = Duration::from_secs(300);

/// Which metric holds the lag, and how to read it.
pub(super) struct LagMetric<'a> {
    /// `ReplicaLag`, `AuroraGlobalDBRPOLag`.
    pub metric: &'a str,
    /// The one dimension that selects the database: (`DBInstanceIdentifier`, `app-db`).
    pub dimension: (&'a str, &'a str),
    /// The metric's unit in seconds: 1 for seconds, 0.001 for milliseconds.
    pub seconds_per_unit: f64,
    /// The parameter an error about the database names (`with.replica`).
    pub field: &'a str,
}

/// Whether CloudWatch's answer says the endpoint does not know the RPC v2 CBOR protocol: a 404
/// with no AWS error code (moto 5.2.5). AWS itself answers these calls.
fn speaks_no_cbor<E: ProvideErrorMetadata>(error: &SdkError<E, HttpResponse>) -> bool {
    match error {
        SdkError::ServiceError(context) => context.err().code().is_none() && context.raw().status().as_u16() == 404,
        _ => false,
    }
}

impl LagMetric<'_> {
    /// The latest lag in seconds, or why it is unknown (no datapoint, or a negative value: the
    /// database does not replicate).
    pub(super) async fn read(
        &self,
        clients: &Clients,
        http: &reqwest::Client,
        region: &str,
        ctx: &StepContext,
    ) -> Result<Lag, StepError> {
        let now = ctx.clock.now();
        let (start, end) = (now - LAG_WINDOW, now + Duration::from_secs(60));
        let cloudwatch = clients.cloudwatch(region).await;
        let (name, value) = self.dimension;
        let answer = cloudwatch
            .get_metric_statistics()
            .namespace("AWS/RDS")
            .metric_name(self.metric)
            .dimensions(Dimension::builder().name(name).value(value).build())
            .start_time(DateTime::from(start))
            .end_time(DateTime::from(end))
            .period(60)
            .statistics(Statistic::Maximum)
            .send()
            .await;
        let points: Vec<(f64, f64)> = match answer {
            Ok(answer) => {
                answer.datapoints().iter().filter_map(|d| Some((d.timestamp()?.as_secs_f64(), d.maximum()?))).collect()
            }
            Err(e) => match clients.endpoint() {
                Some(endpoint) if speaks_no_cbor(&e) => {
                    let query = MetricQuery {
                        endpoint: &endpoint,
                        region,
                        namespace: "AWS/RDS",
                        metric: self.metric,
                        dimension: self.dimension,
                        start,
                        end,
                        period_s: 60,
                    };
                    let credentials = clients.credentials(region).await?;
                    query.send(http, &credentials, now).await?
                }
                _ => {
                    let action = format!("read the {} of `{value}` from CloudWatch in {region}", self.metric);
                    return Err(step_error(&e, &action, self.field));
                }
            },
        };
        let latest = points.into_iter().max_by(|a, b| a.0.total_cmp(&b.0));
        Ok(match latest {
            None => Lag::Unknown(format!(
                "CloudWatch has no {} datapoint for it in the last {}",
                self.metric,
                HumanDuration(LAG_WINDOW)
            )),
            Some((_, lag)) if lag < 0.0 => {
                Lag::Unknown(format!("{} is {lag}: replication is not running", self.metric))
            }
            Some((_, lag)) => Lag::Seconds(lag * self.seconds_per_unit),
        })
    }
}

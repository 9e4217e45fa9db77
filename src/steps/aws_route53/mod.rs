//! `aws.route53.upsert_record`: points one DNS record at a target, an alias (a load balancer, a
//! CloudFront distribution) or plain values, with a Route53 UPSERT, then waits until the change is
//! `INSYNC`.
//!
//! Observation reads the record first: a record already at the target is left alone, so a resumed
//! or repeated run changes nothing. A record is at the target when its alias (zone, DNS name,
//! evaluate_target_health) or its values and TTL, its weight or failover role and its health check
//! all match; names compare without regard to case or a final dot.
//!
//! Outputs: `change_id` (empty when nothing was changed), `target` (the alias's DNS name, or the
//! values joined by `,`) and `previous_target`, what the record pointed at just before the UPSERT
//! (empty if it did not exist; equal to `target` if it was already there), for the operator or a
//! failback plan to point it back. Both come from the step's receipt, so a run resumed after a
//! crash reports the record's value from before the run, not the target it then finds.
//!
//! - [`params`]: the `with:` parameters and their checks across fields;
//! - [`dns`]: DNS names and targets compared as DNS does (pure);
//! - [`client`]: the Route53 calls;
//! - [`step`]: the phases.

mod client;
mod dns;
mod params;
mod preflight;
mod step;
#[cfg(test)]
mod tests;

use std::sync::Arc;

pub use params::{AliasParams, FailoverRole, RecordType, UpsertRecordFields, UpsertRecordParams};

use crate::aws::Aws;
use crate::step::{BuildContext, OutputSpec, Step, TypedStep};
use client::Route53Client;
use step::UpsertRecordStep;

/// The `aws.route53.upsert_record` step type.
pub struct Route53Upsert {
    pub aws: Arc<Aws>,
}

/// Route53 is global; its API is signed for us-east-1 in the commercial partition.
pub(crate) const DEFAULT_REGION: &str = "us-east-1";

impl TypedStep for Route53Upsert {
    const DOCS: crate::step::StepDocs = crate::step::StepDocs {
        description: "Points one DNS record at a target with a Route53 UPSERT, then waits until the change is INSYNC. \
            The target is an alias (a load balancer, CloudFront, another record of the zone) or plain `values` with a \
            `ttl`; `set_identifier` with `weight` or `failover` picks the record under a routing policy. A record \
            already at the target (alias or values and TTL, routing and health check all equal; names compared \
            without regard to case or a final dot) is left alone, so a resumed or repeated run changes nothing.",
        example: r#"
zone_id: Z1234567890ABC
name: api.example.com
type: A
alias:
  zone_id: Z1H1FL5HABSF5
  dns_name: dr-lb.us-west-2.elb.amazonaws.com
  evaluate_target_health: true
"#,
        failure: crate::aws::STEP_FAILURES,
    };
    type Params = UpsertRecordParams;
    const NAME: &'static str = "aws.route53.upsert_record";
    const SUMMARY: &'static str =
        "Points a Route53 record at an alias target or values (UPSERT) and waits until the change is INSYNC.";
    const OUTPUTS: &'static [OutputSpec] = &[
        OutputSpec::string("change_id", "The Route53 change id; absent when the record was already at the target.")
            .optional(),
        OutputSpec::string(
            "previous_target",
            "What the record pointed at when the step first looked (an alias's DNS name, or the \
                values joined by `,`); absent if the record did not exist. For the operator or a failback plan to \
                point it back.",
        )
        .optional(),
        OutputSpec::string(
            "target",
            "What the record points at now: the alias's DNS name, or the values joined by `,`.",
        ),
    ];

    fn build(&self, params: UpsertRecordParams, context: &BuildContext) -> Box<dyn Step> {
        let region = params.region.unwrap_or_else(|| DEFAULT_REGION.to_string());
        let client = Route53Client::new(self.aws.clone(), context.plan.aws.clone(), region);
        Box::new(UpsertRecordStep::new(client, params.zone_id, params.record))
    }
}

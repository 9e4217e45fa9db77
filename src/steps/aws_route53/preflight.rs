//! What `aws.route53.upsert_record` checks before a run, read-only (ListResourceRecordSets): the
//! hosted zone answers and the record exists.

use super::step::{UpsertRecordStep, describe_found};
use crate::step::Finding;

impl UpsertRecordStep {
    /// The zone answers and the record is there (an absent record is only a warning: the upsert
    /// creates it, but a DR record that vanished usually means someone changed the zone).
    pub(super) async fn preflight_findings(&self) -> Vec<Finding> {
        let label = self.record_label();
        match self.find().await {
            Ok(Some(found)) => vec![
                Finding::ok("zone_exists", format!("hosted zone {} answers", self.zone_id)),
                Finding::ok("record_exists", format!("record {label} exists ({})", describe_found(&found))),
            ],
            Ok(None) => vec![
                Finding::ok("zone_exists", format!("hosted zone {} answers", self.zone_id)),
                Finding::warning(
                    "record_exists",
                    format!("record {label} does not exist in hosted zone {}; the step would create it", self.zone_id),
                    "check that the plan names the record clients resolve (`with.name`, `with.type`)",
                ),
            ],
            Err(e) => vec![Finding::problem(
                "zone_exists",
                e.message,
                "fix `with.zone_id` (the hosted zone's id, as `aws route53 list-hosted-zones` shows it) or the credentials",
            )],
        }
    }
}

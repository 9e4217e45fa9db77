//! The phases of `aws.route53.upsert_record`. What `act` learns (the change id and what the record
//! pointed at before it) is the step's receipt, so its outputs survive a crash.

use std::fmt::Write as _;

use async_trait::async_trait;
use aws_sdk_route53::error::ProvideErrorMetadata;
use aws_sdk_route53::types::{
    AliasTarget, Change, ChangeAction, ChangeBatch, ChangeStatus, ResourceRecord, ResourceRecordSet,
};
use serde::{Deserialize, Serialize};

use super::client::{Found, Route53Client};
use super::dns::{normalise_name, same_target, short_change_id};
use super::params::{FailoverRole, Record, Target};
use crate::aws::step_error;
use crate::step::{Observation, Outputs, Progress, Receipt, Step, StepContext, StepError};

/// How often, at most, the engine asks whether the change is `INSYNC`.
pub(super) const POLL_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);
/// Pages of records of one name and type read before giving up (Route53 pages hold up to 300).
const MAX_PAGES: usize = 20;

/// What the UPSERT learned: journaled, and handed to `poll` and `verify` (after a crash too).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Upserted {
    /// The change Route53 accepted.
    pub change_id: String,
    /// What the record pointed at just before the UPSERT ("" when it did not exist).
    pub previous_target: String,
}

pub(super) struct UpsertRecordStep {
    pub(super) route53: Route53Client,
    pub(super) zone_id: String,
    pub(super) record: Record,
}

impl UpsertRecordStep {
    pub(super) fn new(route53: Route53Client, zone_id: String, record: Record) -> Self {
        UpsertRecordStep { route53, zone_id, record }
    }

    /// `api.example.com A` or `api.example.com A (set blue)`.
    pub(super) fn record_label(&self) -> String {
        let mut label = format!("{} {}", self.record.name, self.record.record_type.as_str());
        if let Some(id) = &self.record.routing.set_identifier {
            let _ = write!(label, " (set {id})");
        }
        label
    }

    /// Reads the record of this name, type and set identifier, if there is one.
    pub(super) async fn find(&self) -> Result<Option<Found>, StepError> {
        let client = self.route53.get().await;
        let wanted = normalise_name(&self.record.name);
        let rr_type = self.record.record_type.rr_type();
        let set_identifier = self.record.routing.set_identifier.as_deref();
        let action = format!("read the record {} in hosted zone {}", self.record_label(), self.zone_id);
        let mut start_identifier: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = client
                .list_resource_record_sets()
                .hosted_zone_id(&self.zone_id)
                .start_record_name(&wanted)
                .start_record_type(rr_type.clone())
                .set_start_record_identifier(start_identifier.clone())
                .send()
                .await
                .map_err(|e| step_error(&e, &action, "with.zone_id"))?;
            // Records come in DNS order from the start name: past the first other name or type,
            // there is no record of ours.
            for set in page.resource_record_sets() {
                if normalise_name(set.name()) != wanted || *set.r#type() != rr_type {
                    return Ok(None);
                }
                if set.set_identifier() == set_identifier {
                    return Ok(Some(Found::from_sdk(set)));
                }
            }
            let more_of_ours = page.is_truncated()
                && page.next_record_name().is_some_and(|n| normalise_name(n) == wanted)
                && page.next_record_type() == Some(&rr_type);
            let next = page.next_record_identifier().map(str::to_string);
            if !more_of_ours || next.is_none() || next == start_identifier {
                return Ok(None);
            }
            start_identifier = next;
        }
        Err(StepError::fatal(format!(
            "cannot {action}: more than {MAX_PAGES} pages of {} records; check `with.name`",
            self.record.record_type.as_str()
        )))
    }

    /// Whether `found` is what the plan asks for.
    pub(super) fn at_target(&self, found: &Found) -> bool {
        let want = &self.record;
        found.target.as_ref().is_some_and(|t| same_target(want.record_type, &want.target, t))
            && found.routing == want.routing
    }

    /// The record set to UPSERT, named `name`.
    fn record_set(&self, name: &str) -> Result<ResourceRecordSet, StepError> {
        let invalid = |e: aws_sdk_route53::error::BuildError| StepError::fatal(format!("cannot build the change: {e}"));
        let routing = &self.record.routing;
        let mut set = ResourceRecordSet::builder()
            .name(name)
            .r#type(self.record.record_type.rr_type())
            .set_set_identifier(routing.set_identifier.clone())
            .set_weight(routing.weight)
            .set_failover(routing.failover.map(FailoverRole::to_sdk))
            .set_health_check_id(routing.health_check_id.clone());
        match &self.record.target {
            Target::Alias { zone_id, dns_name, evaluate_target_health } => {
                let alias = AliasTarget::builder()
                    .hosted_zone_id(zone_id)
                    .dns_name(dns_name)
                    .evaluate_target_health(*evaluate_target_health)
                    .build()
                    .map_err(invalid)?;
                set = set.alias_target(alias);
            }
            Target::Values { values, ttl } => {
                set = set.ttl(*ttl);
                for value in values {
                    set = set.resource_records(ResourceRecord::builder().value(value).build().map_err(invalid)?);
                }
            }
        }
        set.build().map_err(invalid)
    }

    /// The outputs; an empty change id (nothing changed) or previous target (no record) is absent.
    fn outputs(&self, change_id: &str, previous_target: &str) -> Outputs {
        let mut outputs = Outputs::from([("target".to_string(), self.record.target.shown())]);
        let present = [("change_id", change_id), ("previous_target", previous_target)];
        outputs.extend(present.into_iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| (k.to_string(), v.to_string())));
        outputs
    }
}

#[async_trait]
impl Step for UpsertRecordStep {
    async fn preflight(&self, _ctx: &StepContext) -> Vec<crate::step::Finding> {
        self.preflight_findings().await
    }

    fn describe(&self) -> String {
        let record = &self.record;
        let mut text = format!("UPSERT {} {}", record.name, record.record_type.as_str());
        let routing = &record.routing;
        let mut policy = Vec::new();
        if let Some(id) = &routing.set_identifier {
            policy.push(format!("set {id}"));
        }
        if let Some(weight) = routing.weight {
            policy.push(format!("weight {weight}"));
        }
        if let Some(role) = routing.failover {
            policy.push(format!("failover {}", role.as_str()));
        }
        if let Some(check) = &routing.health_check_id {
            policy.push(format!("health check {check}"));
        }
        if !policy.is_empty() {
            let _ = write!(text, " [{}]", policy.join(", "));
        }
        match &record.target {
            Target::Alias { dns_name, .. } => {
                let _ = write!(text, " → alias {dns_name} (zone {})", self.zone_id);
            }
            Target::Values { values, ttl } => {
                let _ = write!(text, " → {} (TTL {ttl}, zone {})", values.join(", "), self.zone_id);
            }
        }
        text
    }

    /// Reads the record: at the target it is done, and was already there.
    async fn observe(&self, _ctx: &StepContext) -> Result<Observation, StepError> {
        Ok(match self.find().await? {
            Some(found) if self.at_target(&found) => Observation::Done(self.outputs("", &found.shown())),
            _ => Observation::NotDone,
        })
    }

    /// Reads the record again (what it points at now is the previous target), then UPSERTs it.
    async fn act(&self, ctx: &StepContext) -> Result<Receipt, StepError> {
        let found = self.find().await?;
        let previous_target = found.as_ref().map(Found::shown).unwrap_or_default();
        // The record's own spelling when it exists, else the name as DNS compares it (Route53
        // keeps names in lower case).
        let name = found.map(|f| f.name).unwrap_or_else(|| normalise_name(&self.record.name));
        let change = Change::builder()
            .action(ChangeAction::Upsert)
            .resource_record_set(self.record_set(&name)?)
            .build()
            .map_err(|e| StepError::fatal(format!("cannot build the change: {e}")))?;
        let batch = ChangeBatch::builder()
            .comment(format!("drctl run {} step {}", ctx.run_id, ctx.step_id))
            .changes(change)
            .build()
            .map_err(|e| StepError::fatal(format!("cannot build the change: {e}")))?;
        let action = format!("UPSERT {} in hosted zone {}", self.record_label(), self.zone_id);
        let output = self
            .route53
            .get()
            .await
            .change_resource_record_sets()
            .hosted_zone_id(&self.zone_id)
            .change_batch(batch)
            .send()
            .await
            .map_err(|e| {
                let code = e.as_service_error().and_then(|s| s.code()).unwrap_or_default();
                let message = e.as_service_error().and_then(|s| s.message()).unwrap_or_default();
                step_error(&e, &action, change_field(code, message, &self.record.target))
            })?;
        let change_id = output.change_info().map(|c| short_change_id(c.id())).unwrap_or_default();
        Ok(Receipt::of(&Upserted { change_id, previous_target }))
    }

    /// Asks whether the change is `INSYNC`.
    async fn poll(&self, _ctx: &StepContext, receipt: &Receipt) -> Progress {
        Progress::of(self.in_sync(receipt).await)
    }

    fn poll_interval(&self) -> std::time::Duration {
        POLL_INTERVAL
    }

    /// Reads the record again: it must be at the target.
    async fn verify(&self, _ctx: &StepContext, receipt: &Receipt) -> Result<Outputs, StepError> {
        let upserted: Upserted = receipt.read()?;
        match self.find().await? {
            Some(found) if self.at_target(&found) => Ok(self.outputs(&upserted.change_id, &upserted.previous_target)),
            Some(found) => Err(StepError::retryable(format!(
                "the record {} does not show the change: it points at {}",
                self.record_label(),
                describe_found(&found)
            ))),
            None => Err(StepError::retryable(format!(
                "the record {} is not in hosted zone {} after the UPSERT",
                self.record_label(),
                self.zone_id
            ))),
        }
    }
}

impl UpsertRecordStep {
    /// One `GetChange`: done when `INSYNC`.
    async fn in_sync(&self, receipt: &Receipt) -> Result<Progress, StepError> {
        let Upserted { change_id, .. } = receipt.read()?;
        if change_id.is_empty() {
            return Ok(Progress::Done);
        }
        let action = format!("check whether Route53 change {change_id} is INSYNC");
        let output = self
            .route53
            .get()
            .await
            .get_change()
            .id(&change_id)
            .send()
            .await
            .map_err(|e| step_error(&e, &action, "with.zone_id"))?;
        Ok(match output.change_info().map(|c| c.status()) {
            Some(ChangeStatus::Insync) => Progress::Done,
            status => Progress::Waiting(format!(
                "{} change {change_id} to be INSYNC ({})",
                self.record_label(),
                status.map_or("no status", |s| s.as_str())
            )),
        })
    }
}

/// What a found record points at, for messages.
pub(super) fn describe_found(found: &Found) -> String {
    let target = match &found.target {
        Some(Target::Alias { dns_name, zone_id, .. }) => format!("alias {} (zone {zone_id})", normalise_name(dns_name)),
        Some(Target::Values { values, ttl }) => format!("{} (TTL {ttl})", values.join(", ")),
        None => "something this step does not manage".to_string(),
    };
    let routing = &found.routing;
    match (routing.weight, routing.failover) {
        (Some(weight), _) => format!("{target} with weight {weight}"),
        (_, Some(role)) => format!("{target} as failover {}", role.as_str()),
        _ => target,
    }
}

/// The plan field to check when Route53 refuses a change with `code` and `message`.
pub(super) fn change_field(code: &str, message: &str, target: &Target) -> &'static str {
    match code {
        "NoSuchHostedZone" => "with.zone_id",
        "NoSuchHealthCheck" => "with.health_check_id",
        _ if message.contains("alias") => "with.alias",
        _ if code.contains("DnsName") || message.contains("DNS name") => "with.name",
        _ => match target {
            Target::Alias { .. } => "with.alias",
            Target::Values { .. } => "with.values",
        },
    }
}

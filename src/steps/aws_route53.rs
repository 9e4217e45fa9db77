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
//! values joined by `,`) and `previous_target`, what the record pointed at when the step first
//! looked (empty if it did not exist; equal to `target` if it was already there), for the operator
//! or a failback plan to point it back. Retries in one process keep the first look; a run resumed
//! after a crash between the UPSERT and its journal record sees the new target instead.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_route53::Client;
use aws_sdk_route53::error::ProvideErrorMetadata;
use aws_sdk_route53::types::{
    AliasTarget, Change, ChangeAction, ChangeBatch, ChangeStatus, ResourceRecord, ResourceRecordSet,
    ResourceRecordSetFailover, RrType,
};
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::Deserialize;
use tokio::sync::OnceCell;

use crate::aws::{Aws, step_error};
use crate::plan::AwsSettings;
use crate::step::{BuildContext, Observation, OutputSpec, Outputs, Step, StepContext, StepError, TypedStep};

mod preflight;

/// The `aws.route53.upsert_record` step type.
pub struct Route53Upsert {
    pub aws: Arc<Aws>,
}

/// Route53 is global; its API is signed for us-east-1 in the commercial partition.
const DEFAULT_REGION: &str = "us-east-1";
/// The TTL of a `values` record unless the plan says otherwise.
const DEFAULT_TTL: u32 = 60;
/// How often `wait` asks whether the change is `INSYNC`.
const POLL_INTERVAL: Duration = Duration::from_secs(2);
/// Failed `GetChange` polls in a row that `wait` sits out before failing the attempt.
const POLL_FAILURES: u32 = 3;
/// Pages of records of one name and type read before giving up (Route53 pages hold up to 300).
const MAX_PAGES: usize = 20;

/// `with:` of an `aws.route53.upsert_record` step, checked across fields: `alias` or `values`, and
/// at most one routing policy. Its JSON Schema is that of [`UpsertRecordFields`].
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "UpsertRecordFields")]
pub struct UpsertRecordParams {
    zone_id: String,
    record: Record,
    region: Option<String>,
}

/// The fields of [`UpsertRecordParams`], before checks across fields.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(description = "`with:` of an `aws.route53.upsert_record` step.")]
#[schemars(extend(
    "oneOf" = [{ "required": ["alias"] }, { "required": ["values"] }],
    "dependentRequired" = { "weight": ["set_identifier"], "failover": ["set_identifier"], "ttl": ["values"] }
))]
pub struct UpsertRecordFields {
    /// The id of the hosted zone that holds the record (`Z1234567890ABC`).
    pub zone_id: String,
    /// The record's name (`api.example.com`). Compared without regard to case or a final dot.
    pub name: String,
    /// The record's type.
    #[serde(rename = "type")]
    pub record_type: RecordType,
    /// Point the record at an AWS resource (a load balancer, CloudFront, another record of the
    /// zone). Excludes `values`.
    #[serde(default)]
    pub alias: Option<AliasParams>,
    /// The record's values (`[203.0.113.10]`, `["\"v=spf1 -all\""]`). Excludes `alias`.
    #[serde(default)]
    pub values: Option<Vec<String>>,
    /// With `values`: how long resolvers cache the answer, in seconds (default 60).
    #[serde(default)]
    pub ttl: Option<u32>,
    /// Tells apart the records of one name and type under a routing policy (`blue`, `primary`).
    /// Needed with `weight` or `failover`.
    #[serde(default)]
    pub set_identifier: Option<String>,
    /// Weighted routing: this record's share of answers, 0 (none) to 255.
    #[serde(default)]
    #[schemars(range(max = 255))]
    pub weight: Option<u32>,
    /// Failover routing: PRIMARY answers while healthy, SECONDARY otherwise.
    #[serde(default)]
    pub failover: Option<FailoverRole>,
    /// The Route53 health check that decides whether this record is answered.
    #[serde(default)]
    pub health_check_id: Option<String>,
    /// The region API calls are signed for (default us-east-1; Route53 itself is global).
    #[serde(default)]
    pub region: Option<String>,
}

/// Where an alias record points.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AliasParams {
    /// The hosted zone of the alias target: a load balancer's canonical hosted zone id, or the
    /// record's own zone for an alias to another record.
    pub zone_id: String,
    /// The alias target's DNS name (`dr-lb.us-west-2.elb.amazonaws.com`).
    pub dns_name: String,
    /// Answer only while the target is healthy (default false).
    #[serde(default)]
    pub evaluate_target_health: bool,
}

/// A DNS record type Route53 can UPSERT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum RecordType {
    A,
    Aaaa,
    Caa,
    Cname,
    Ds,
    Https,
    Mx,
    Naptr,
    Ns,
    Ptr,
    Spf,
    Srv,
    Sshfp,
    Svcb,
    Tlsa,
    Txt,
}

impl RecordType {
    /// The type as Route53 and plans spell it.
    fn as_str(self) -> &'static str {
        match self {
            RecordType::A => "A",
            RecordType::Aaaa => "AAAA",
            RecordType::Caa => "CAA",
            RecordType::Cname => "CNAME",
            RecordType::Ds => "DS",
            RecordType::Https => "HTTPS",
            RecordType::Mx => "MX",
            RecordType::Naptr => "NAPTR",
            RecordType::Ns => "NS",
            RecordType::Ptr => "PTR",
            RecordType::Spf => "SPF",
            RecordType::Srv => "SRV",
            RecordType::Sshfp => "SSHFP",
            RecordType::Svcb => "SVCB",
            RecordType::Tlsa => "TLSA",
            RecordType::Txt => "TXT",
        }
    }

    fn rr_type(self) -> RrType {
        RrType::from(self.as_str())
    }

    /// Whether values end in a domain name, which DNS compares without regard to case or a final dot.
    fn values_are_names(self) -> bool {
        matches!(self, RecordType::Cname | RecordType::Mx | RecordType::Ns | RecordType::Ptr | RecordType::Srv)
    }
}

/// The role of a record under failover routing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum FailoverRole {
    Primary,
    Secondary,
}

impl FailoverRole {
    fn as_str(self) -> &'static str {
        match self {
            FailoverRole::Primary => "PRIMARY",
            FailoverRole::Secondary => "SECONDARY",
        }
    }

    fn from_sdk(value: &ResourceRecordSetFailover) -> Option<FailoverRole> {
        match value {
            ResourceRecordSetFailover::Primary => Some(FailoverRole::Primary),
            ResourceRecordSetFailover::Secondary => Some(FailoverRole::Secondary),
            _ => None,
        }
    }

    fn to_sdk(self) -> ResourceRecordSetFailover {
        match self {
            FailoverRole::Primary => ResourceRecordSetFailover::Primary,
            FailoverRole::Secondary => ResourceRecordSetFailover::Secondary,
        }
    }
}

/// What a record answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Alias { zone_id: String, dns_name: String, evaluate_target_health: bool },
    Values { values: Vec<String>, ttl: i64 },
}

impl Target {
    /// The target as outputs show it: the alias's DNS name (normalised), or the values joined by `,`.
    fn shown(&self) -> String {
        match self {
            Target::Alias { dns_name, .. } => normalise_name(dns_name),
            Target::Values { values, .. } => values.join(","),
        }
    }
}

/// A record's routing policy and health check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Routing {
    set_identifier: Option<String>,
    weight: Option<i64>,
    failover: Option<FailoverRole>,
    health_check_id: Option<String>,
}

/// The record as the plan wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Record {
    name: String,
    record_type: RecordType,
    target: Target,
    routing: Routing,
}

/// A record as Route53 has it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Found {
    /// The name as Route53 spells it.
    name: String,
    /// `None` for what this step does not manage (a traffic-policy record).
    target: Option<Target>,
    routing: Routing,
}

impl Found {
    fn from_sdk(set: &ResourceRecordSet) -> Found {
        let target = if let Some(alias) = set.alias_target() {
            Some(Target::Alias {
                zone_id: alias.hosted_zone_id().to_string(),
                dns_name: alias.dns_name().to_string(),
                evaluate_target_health: alias.evaluate_target_health(),
            })
        } else if !set.resource_records().is_empty() {
            let values = set.resource_records().iter().map(|r| r.value().to_string()).collect();
            Some(Target::Values { values, ttl: set.ttl().unwrap_or_default() })
        } else {
            None
        };
        let routing = Routing {
            set_identifier: set.set_identifier().map(str::to_string),
            weight: set.weight(),
            failover: set.failover().and_then(FailoverRole::from_sdk),
            health_check_id: set.health_check_id().map(str::to_string),
        };
        Found { name: set.name().to_string(), target, routing }
    }

    fn shown(&self) -> String {
        self.target.as_ref().map(Target::shown).unwrap_or_default()
    }
}

impl TryFrom<UpsertRecordFields> for UpsertRecordParams {
    type Error = String;
    fn try_from(f: UpsertRecordFields) -> Result<Self, String> {
        let empty = |field: &str, value: &str| match value.trim().is_empty() {
            true => Err(format!("`{field}` is empty")),
            false => Ok(()),
        };
        empty("zone_id", &f.zone_id)?;
        empty("name", &f.name)?;
        let target = match (f.alias, f.values) {
            (Some(_), Some(_)) => return Err("set `alias` or `values`, not both".into()),
            (None, None) => {
                return Err("set `alias` (to point at a load balancer or another AWS resource) or `values`".into());
            }
            (Some(alias), None) => {
                if f.ttl.is_some() {
                    return Err("`ttl` applies to `values` only: an alias record answers with its target's TTL".into());
                }
                empty("alias.zone_id", &alias.zone_id)?;
                empty("alias.dns_name", &alias.dns_name)?;
                Target::Alias {
                    zone_id: alias.zone_id,
                    dns_name: alias.dns_name,
                    evaluate_target_health: alias.evaluate_target_health,
                }
            }
            (None, Some(values)) => {
                if values.is_empty() {
                    return Err("`values` is empty: give the record at least one value".into());
                }
                Target::Values { values, ttl: f.ttl.unwrap_or(DEFAULT_TTL).into() }
            }
        };
        if f.weight.is_some_and(|w| w > 255) {
            return Err("`weight` must be between 0 and 255".into());
        }
        match (&f.set_identifier, f.weight, f.failover) {
            (_, Some(_), Some(_)) => {
                return Err("set `weight` or `failover`, not both: a record has one routing policy".into());
            }
            (None, Some(_), None) => {
                return Err("`weight` needs `set_identifier`, which tells the weighted records of a name apart".into());
            }
            (None, None, Some(_)) => {
                return Err(
                    "`failover` needs `set_identifier`, which tells the PRIMARY and SECONDARY records apart".into()
                );
            }
            (Some(_), None, None) => {
                return Err("`set_identifier` needs a routing policy: set `weight` or `failover`".into());
            }
            _ => {}
        }
        let routing = Routing {
            set_identifier: f.set_identifier,
            weight: f.weight.map(i64::from),
            failover: f.failover,
            health_check_id: f.health_check_id,
        };
        let record = Record { name: f.name, record_type: f.record_type, target, routing };
        Ok(UpsertRecordParams { zone_id: f.zone_id, record, region: f.region })
    }
}

/// The parameters' schema is that of the fields they are read from.
impl JsonSchema for UpsertRecordParams {
    fn schema_name() -> Cow<'static, str> {
        UpsertRecordFields::schema_name()
    }
    fn schema_id() -> Cow<'static, str> {
        UpsertRecordFields::schema_id()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        UpsertRecordFields::json_schema(generator)
    }
}

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

/// The Route53 client a step uses, made on first use from the run's AWS settings.
struct Route53Client {
    client: OnceCell<Client>,
    aws: Arc<Aws>,
    settings: AwsSettings,
    region: String,
}

impl Route53Client {
    fn new(aws: Arc<Aws>, settings: AwsSettings, region: String) -> Self {
        Route53Client { client: OnceCell::new(), aws, settings, region }
    }

    async fn get(&self) -> &Client {
        self.client.get_or_init(|| async { Client::new(&self.aws.config(&self.region, &self.settings).await) }).await
    }
}

/// What a step learned in earlier phases and attempts of this process.
#[derive(Debug, Default)]
struct Memory {
    /// What the record pointed at when first observed ("" when it did not exist).
    previous: Option<String>,
    /// The record's name as Route53 spells it, when it exists: the UPSERT replaces that record.
    existing_name: Option<String>,
    /// The change `act` submitted.
    change_id: Option<String>,
    /// Whether that change was seen `INSYNC`.
    in_sync: bool,
}

struct UpsertRecordStep {
    route53: Route53Client,
    zone_id: String,
    record: Record,
    memory: Mutex<Memory>,
}

impl UpsertRecordStep {
    fn new(route53: Route53Client, zone_id: String, record: Record) -> Self {
        UpsertRecordStep { route53, zone_id, record, memory: Mutex::default() }
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.memory.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `api.example.com A` or `api.example.com A (set blue)`.
    fn record_label(&self) -> String {
        let mut label = format!("{} {}", self.record.name, self.record.record_type.as_str());
        if let Some(id) = &self.record.routing.set_identifier {
            let _ = write!(label, " (set {id})");
        }
        label
    }

    /// Reads the record of this name, type and set identifier, if there is one.
    async fn find(&self) -> Result<Option<Found>, StepError> {
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
    fn at_target(&self, found: &Found) -> bool {
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

    /// Asks about `change_id` every [`POLL_INTERVAL`] until it is `INSYNC`; the step's timeout
    /// bounds the wait. A throttled or failed poll is asked again at the next interval (Route53
    /// allows few calls per second per account), up to [`POLL_FAILURES`] in a row.
    async fn wait_in_sync(&self, ctx: &StepContext, change_id: &str) -> Result<(), StepError> {
        let client = self.route53.get().await;
        let action = format!("check whether Route53 change {change_id} is INSYNC");
        let mut failures = 0;
        loop {
            match client.get_change().id(change_id).send().await {
                Ok(output) if output.change_info().is_some_and(|c| *c.status() == ChangeStatus::Insync) => {
                    self.memory().in_sync = true;
                    return Ok(());
                }
                Ok(_) => failures = 0,
                Err(e) => {
                    let error = step_error(&e, &action, "with.zone_id");
                    failures += 1;
                    if !error.is_retryable() || failures >= POLL_FAILURES {
                        return Err(error);
                    }
                }
            }
            ctx.sleep(POLL_INTERVAL).await;
        }
    }

    fn outputs(&self) -> Outputs {
        let memory = self.memory();
        let mut outputs = Outputs::from([("target".to_string(), self.record.target.shown())]);
        outputs.extend(memory.change_id.clone().map(|v| ("change_id".to_string(), v)));
        // "" is what the first observation remembers of a record that did not exist: absent.
        let previous = memory.previous.clone().filter(|v| !v.is_empty());
        outputs.extend(previous.map(|v| ("previous_target".to_string(), v)));
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

    /// Reads the record. At the target it is done (after the change an earlier attempt made is
    /// `INSYNC`); otherwise remembers what it pointed at, for `previous_target`.
    async fn observe(&self, ctx: &StepContext) -> Result<Observation, StepError> {
        let found = self.find().await?;
        let done = found.as_ref().is_some_and(|f| self.at_target(f));
        let pending = {
            let mut memory = self.memory();
            memory.previous.get_or_insert_with(|| found.as_ref().map(Found::shown).unwrap_or_default());
            memory.existing_name = found.map(|f| f.name);
            memory.change_id.clone().filter(|_| !memory.in_sync)
        };
        if !done {
            return Ok(Observation::NotDone);
        }
        if let Some(change_id) = pending {
            self.wait_in_sync(ctx, &change_id).await?;
        }
        Ok(Observation::Done(self.outputs()))
    }

    async fn act(&self, ctx: &StepContext) -> Result<(), StepError> {
        // The record's own spelling when it exists, else the name as DNS compares it (Route53
        // keeps names in lower case).
        let name = self.memory().existing_name.clone().unwrap_or_else(|| normalise_name(&self.record.name));
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
        let mut memory = self.memory();
        memory.change_id = Some(change_id);
        memory.in_sync = false;
        Ok(())
    }

    async fn wait(&self, ctx: &StepContext) -> Result<(), StepError> {
        let pending = {
            let memory = self.memory();
            memory.change_id.clone().filter(|id| !memory.in_sync && !id.is_empty())
        };
        match pending {
            Some(change_id) => self.wait_in_sync(ctx, &change_id).await,
            None => Ok(()),
        }
    }

    /// Reads the record again: it must be at the target.
    async fn verify(&self, _ctx: &StepContext) -> Result<Outputs, StepError> {
        match self.find().await? {
            Some(found) if self.at_target(&found) => Ok(self.outputs()),
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

/// What a found record points at, for messages.
fn describe_found(found: &Found) -> String {
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
fn change_field(code: &str, message: &str, target: &Target) -> &'static str {
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

/// `C2682N5HXP0BZ4` from `/change/C2682N5HXP0BZ4`.
fn short_change_id(id: &str) -> String {
    id.trim_start_matches('/').trim_start_matches("change/").to_string()
}

/// A zone id without the `/hostedzone/` prefix Route53 sometimes adds.
fn short_zone_id(id: &str) -> &str {
    id.trim_start_matches('/').trim_start_matches("hostedzone/")
}

/// A DNS name as DNS compares it: ASCII case folded, without the final dot, with Route53's `\ddd`
/// octal escapes (`\052` for `*`) decoded.
fn normalise_name(name: &str) -> String {
    let bytes = name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escape =
            bytes.get(i + 1..i + 4).filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match escape.map(|d| d.iter().fold(0u32, |n, b| n * 8 + u32::from(b - b'0'))) {
            Some(code) if code <= 0x7f => {
                out.push(code as u8);
                i += 4;
            }
            _ => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    let mut text = String::from_utf8_lossy(&out).to_ascii_lowercase();
    if text.ends_with('.') {
        text.pop();
    }
    text
}

/// Whether two targets answer the same: alias names and name-valued records compared as DNS names,
/// values in any order.
fn same_target(record_type: RecordType, want: &Target, have: &Target) -> bool {
    match (want, have) {
        (
            Target::Alias { zone_id, dns_name, evaluate_target_health },
            Target::Alias { zone_id: have_zone, dns_name: have_name, evaluate_target_health: have_health },
        ) => {
            short_zone_id(zone_id).eq_ignore_ascii_case(short_zone_id(have_zone))
                && normalise_name(dns_name) == normalise_name(have_name)
                && evaluate_target_health == have_health
        }
        (Target::Values { values, ttl }, Target::Values { values: have_values, ttl: have_ttl }) => {
            let sorted = |values: &[String]| {
                let mut values: Vec<String> =
                    values
                        .iter()
                        .map(|v| {
                            if record_type.values_are_names() { normalise_name(v.trim()) } else { v.trim().to_string() }
                        })
                        .collect();
                values.sort();
                values
            };
            ttl == have_ttl && sorted(values) == sorted(have_values)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_route53::config::retry::RetryConfig;
    use aws_sdk_route53::config::{BehaviorVersion, Credentials, Region};
    use aws_sdk_route53::error::ErrorMetadata;
    use aws_sdk_route53::operation::change_resource_record_sets::ChangeResourceRecordSetsOutput;
    use aws_sdk_route53::operation::get_change::{GetChangeError, GetChangeOutput};
    use aws_sdk_route53::operation::list_resource_record_sets::{
        ListResourceRecordSetsError, ListResourceRecordSetsOutput,
    };
    use aws_sdk_route53::types::ChangeInfo;
    use aws_sdk_route53::types::error::NoSuchHostedZone;
    use aws_smithy_mocks::{MockResponseInterceptor, Rule, RuleMode, create_mock_http_client, mock};

    use super::*;
    use crate::steps::test_server::{build, build_error, ctx};

    fn kind() -> Route53Upsert {
        Route53Upsert { aws: Arc::new(Aws::default()) }
    }

    const ALIAS: &str = "zone_id: Z123\nname: api.example.com\ntype: A\nalias: {zone_id: ZLB, dns_name: dr-lb.us-west-2.elb.amazonaws.com}\n";

    fn params(yaml: &str) -> UpsertRecordParams {
        crate::plan::de::from_node(&crate::plan::yaml::parse(yaml).unwrap()).unwrap()
    }

    fn alias(dns_name: &str) -> Target {
        Target::Alias { zone_id: "ZLB".into(), dns_name: dns_name.into(), evaluate_target_health: false }
    }

    fn values(values: &[&str], ttl: i64) -> Target {
        Target::Values { values: values.iter().map(|v| v.to_string()).collect(), ttl }
    }

    #[test]
    fn names_compare_without_case_final_dot_or_escapes() {
        assert_eq!(normalise_name("API.Example.com."), "api.example.com");
        assert_eq!(normalise_name("\\052.example.com."), "*.example.com");
        assert_eq!(normalise_name("a\\05x.example.com"), "a\\05x.example.com", "not an escape");
        assert_eq!(normalise_name("."), "");
        assert_eq!(short_change_id("/change/C2682N5HXP0BZ4"), "C2682N5HXP0BZ4");
        assert_eq!(short_zone_id("/hostedzone/Z123"), "Z123");
    }

    #[test]
    fn refused_changes_point_at_the_field_to_fix() {
        let lb = alias("dr-lb.example.com");
        assert_eq!(change_field("NoSuchHostedZone", "", &lb), "with.zone_id");
        assert_eq!(change_field("NoSuchHealthCheck", "", &lb), "with.health_check_id");
        let name = "RRSet with DNS name x.other.com. is not permitted in zone example.com.";
        assert_eq!(change_field("InvalidChangeBatch", name, &lb), "with.name");
        let alias_msg = "Tried to create an alias that targets x., type A in zone Z, but the alias target name does not lie within the target zone";
        assert_eq!(change_field("InvalidChangeBatch", alias_msg, &lb), "with.alias");
        assert_eq!(change_field("InvalidChangeBatch", "bad", &values(&["x"], 60)), "with.values");
    }

    #[test]
    fn targets_compare_as_dns_does() {
        let want = alias("dr-lb.us-west-2.elb.amazonaws.com");
        assert!(same_target(RecordType::A, &want, &alias("DR-LB.us-west-2.elb.amazonaws.com.")));
        assert!(!same_target(RecordType::A, &want, &alias("primary-lb.us-east-1.elb.amazonaws.com.")));
        let mut health = alias("dr-lb.us-west-2.elb.amazonaws.com");
        if let Target::Alias { evaluate_target_health, zone_id, .. } = &mut health {
            *evaluate_target_health = true;
            *zone_id = "/hostedzone/ZLB".into();
        }
        assert!(!same_target(RecordType::A, &want, &health), "evaluate_target_health differs");

        let ips = values(&["10.0.0.1", "10.0.0.2"], 60);
        assert!(same_target(RecordType::A, &ips, &values(&["10.0.0.2", "10.0.0.1"], 60)), "any order");
        assert!(!same_target(RecordType::A, &ips, &values(&["10.0.0.1", "10.0.0.2"], 300)), "ttl differs");
        assert!(!same_target(RecordType::A, &ips, &values(&["10.0.0.1"], 60)));
        assert!(!same_target(RecordType::A, &ips, &want));
        let cname = values(&["dr.example.com"], 60);
        assert!(same_target(RecordType::Cname, &cname, &values(&["DR.example.com."], 60)));
        let txt = values(&["\"Hello\""], 60);
        assert!(!same_target(RecordType::Txt, &txt, &values(&["\"hello\""], 60)), "TXT is case-sensitive");
    }

    #[test]
    fn routing_must_match_too() {
        let p = params(&format!("{ALIAS}set_identifier: blue\nweight: 100\n"));
        let step = UpsertRecordStep::new(
            Route53Client::new(Arc::new(Aws::default()), AwsSettings::default(), DEFAULT_REGION.into()),
            p.zone_id,
            p.record,
        );
        let routing = Routing { set_identifier: Some("blue".into()), weight: Some(100), ..Routing::default() };
        let found =
            |dns: &str, routing: Routing| Found { name: "api.example.com.".into(), target: Some(alias(dns)), routing };
        assert!(step.at_target(&found("dr-lb.us-west-2.elb.amazonaws.com.", routing.clone())));
        let zero = Routing { weight: Some(0), ..routing.clone() };
        assert!(!step.at_target(&found("dr-lb.us-west-2.elb.amazonaws.com.", zero)));
        let checked = Routing { health_check_id: Some("hc".into()), ..routing.clone() };
        assert!(!step.at_target(&found("dr-lb.us-west-2.elb.amazonaws.com.", checked)), "a health check to remove");
        assert!(!step.at_target(&Found { target: None, ..found("x", routing) }));
    }

    #[test]
    fn describe_says_what_changes() {
        let step = build(&kind(), ALIAS);
        assert_eq!(step.describe(), "UPSERT api.example.com A → alias dr-lb.us-west-2.elb.amazonaws.com (zone Z123)");
        let weighted = "zone_id: Z123\nname: www.example.com\ntype: CNAME\nvalues: [blue.example.com]\nttl: 30\n\
                        set_identifier: blue\nweight: 100\nhealth_check_id: hc-1\n";
        assert_eq!(
            build(&kind(), weighted).describe(),
            "UPSERT www.example.com CNAME [set blue, weight 100, health check hc-1] → blue.example.com (TTL 30, zone Z123)"
        );
        let failover = format!("{ALIAS}set_identifier: dr\nfailover: SECONDARY\n");
        assert!(build(&kind(), &failover).describe().contains("[set dr, failover SECONDARY] → alias"));
    }

    #[test]
    fn params_default_and_check_across_fields() {
        let p = params("zone_id: Z1\nname: a.example.com\ntype: TXT\nvalues: ['\"x\"']\n");
        assert_eq!(p.record.target, values(&["\"x\""], 60));
        assert_eq!(p.region, None);
        let e = |yaml: &str| build_error(&kind(), yaml);
        let base = "zone_id: Z1\nname: a.example.com\ntype: A\n";
        assert!(e(&format!("{base}values: [10.0.0.1]\nalias: {{zone_id: Z, dns_name: x}}")).contains("not both"));
        assert!(e(base).starts_with("set `alias` (to point at a load balancer"));
        assert!(e(&format!("{base}values: []")).contains("`values` is empty"));
        assert!(e(&format!("{ALIAS}ttl: 60")).contains("`ttl` applies to `values` only"));
        assert!(e(&format!("{ALIAS}weight: 10")).contains("`weight` needs `set_identifier`"));
        assert!(e(&format!("{ALIAS}failover: PRIMARY")).contains("`failover` needs `set_identifier`"));
        assert!(e(&format!("{ALIAS}set_identifier: a\nweight: 1\nfailover: PRIMARY")).contains("not both"));
        assert!(e(&format!("{ALIAS}set_identifier: a")).contains("needs a routing policy"));
        assert!(e(&format!("{ALIAS}set_identifier: a\nweight: 256")).contains("between 0 and 255"));
        assert!(e(&format!("{ALIAS}failover: primary\nset_identifier: a")).contains("unknown variant `primary`"));
        assert!(e("zone_id: Z1\nname: a\ntype: a\nvalues: [x]").contains("unknown variant `a`"));
        assert!(e(&format!("{ALIAS}zone: Z")).contains("unknown field `zone`"));
        assert!(e("zone_id: ''\nname: a\ntype: A\nvalues: [x]").contains("`zone_id` is empty"));
        let alias_typo = "zone_id: Z1\nname: a\ntype: A\nalias: {zone_id: Z, dnsname: x}";
        assert!(e(alias_typo).contains("unknown field `dnsname`"));
    }

    #[test]
    fn the_schema_requires_alias_or_values() {
        let schema = schemars::SchemaGenerator::default().into_root_schema_for::<UpsertRecordParams>();
        let text = serde_json::to_string(&schema).unwrap();
        assert!(text.contains(r#""oneOf":[{"required":["alias"]},{"required":["values"]}]"#), "{text}");
        assert!(text.contains(r#""weight":["set_identifier"]"#), "{text}");
        assert!(text.contains("\"maximum\":255"), "{text}");
    }

    /// A step whose Route53 client answers from `rules`, in order.
    fn mocked(yaml: &str, rules: &[&Rule]) -> UpsertRecordStep {
        let mut interceptor = MockResponseInterceptor::new().rule_mode(RuleMode::Sequential);
        for rule in rules {
            interceptor = interceptor.with_rule(rule);
        }
        let config = aws_sdk_route53::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(DEFAULT_REGION))
            .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
            .http_client(create_mock_http_client())
            .retry_config(RetryConfig::disabled())
            .interceptor(interceptor)
            .build();
        let p = params(yaml);
        let route53 = Route53Client::new(Arc::new(Aws::default()), AwsSettings::default(), DEFAULT_REGION.into());
        route53.client.set(Client::from_conf(config)).unwrap();
        UpsertRecordStep::new(route53, p.zone_id, p.record)
    }

    fn listing(sets: Vec<ResourceRecordSet>) -> ListResourceRecordSetsOutput {
        ListResourceRecordSetsOutput::builder()
            .set_resource_record_sets(Some(sets))
            .is_truncated(false)
            .max_items(300)
            .build()
            .unwrap()
    }

    fn alias_set(name: &str, dns_name: &str) -> ResourceRecordSet {
        let target = AliasTarget::builder().hosted_zone_id("ZLB").dns_name(dns_name).evaluate_target_health(false);
        ResourceRecordSet::builder().name(name).r#type(RrType::A).alias_target(target.build().unwrap()).build().unwrap()
    }

    fn change(status: ChangeStatus) -> ChangeInfo {
        let submitted = aws_smithy_types::DateTime::from_secs(0);
        ChangeInfo::builder().id("/change/C1").status(status).submitted_at(submitted).build().unwrap()
    }

    fn throttled() -> GetChangeError {
        GetChangeError::generic(ErrorMetadata::builder().code("Throttling").message("Rate exceeded").build())
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_gives_up_after_failed_polls_in_a_row() {
        let polls = mock!(Client::get_change).sequence().error(throttled).times(POLL_FAILURES as usize).build();
        let step = mocked(ALIAS, &[&polls]);
        step.memory().change_id = Some("C1".into());
        let started = tokio::time::Instant::now();
        let e = step.wait(&ctx()).await.unwrap_err();
        assert!(e.is_retryable() && e.message.contains("AWS answered Throttling"), "{e}");
        assert_eq!(started.elapsed(), (POLL_FAILURES - 1) * POLL_INTERVAL);
    }

    #[tokio::test(start_paused = true)]
    async fn upserts_then_waits_until_insync() {
        let list_before = mock!(Client::list_resource_record_sets).then_output(|| {
            listing(vec![
                alias_set("api.example.com.", "primary-lb.us-east-1.elb.amazonaws.com."),
                alias_set("www.example.com.", "dr-lb.us-west-2.elb.amazonaws.com."),
            ])
        });
        let upsert = mock!(Client::change_resource_record_sets)
            .match_requests(|r| {
                let set = r.change_batch().unwrap().changes()[0].resource_record_set().unwrap();
                set.name() == "api.example.com." && set.alias_target().unwrap().dns_name().starts_with("dr-lb")
            })
            .then_output(|| {
                ChangeResourceRecordSetsOutput::builder().change_info(change(ChangeStatus::Pending)).build()
            });
        let polls = mock!(Client::get_change)
            .sequence()
            .output(|| GetChangeOutput::builder().change_info(change(ChangeStatus::Pending)).build())
            .error(throttled)
            .output(|| GetChangeOutput::builder().change_info(change(ChangeStatus::Insync)).build())
            .build();
        let list_after = mock!(Client::list_resource_record_sets)
            .then_output(|| listing(vec![alias_set("api.example.com.", "dr-lb.us-west-2.elb.amazonaws.com.")]));
        let step = mocked(ALIAS, &[&list_before, &upsert, &polls, &list_after]);
        let ctx = ctx();
        assert_eq!(step.observe(&ctx).await.unwrap(), Observation::NotDone);
        step.act(&ctx).await.unwrap();
        let started = tokio::time::Instant::now();
        step.wait(&ctx).await.unwrap();
        assert_eq!(started.elapsed(), 2 * POLL_INTERVAL, "PENDING, then throttled: two pauses");
        assert_eq!(polls.num_calls(), 3);
        let outputs = step.verify(&ctx).await.unwrap();
        assert_eq!(outputs["change_id"], "C1");
        assert_eq!(outputs["previous_target"], "primary-lb.us-east-1.elb.amazonaws.com");
        assert_eq!(outputs["target"], "dr-lb.us-west-2.elb.amazonaws.com");
    }

    #[tokio::test]
    async fn a_record_at_the_target_is_done_and_others_are_not_ours() {
        let list = mock!(Client::list_resource_record_sets)
            .then_output(|| listing(vec![alias_set("API.example.com.", "dr-lb.us-west-2.elb.amazonaws.com.")]));
        let step = mocked(ALIAS, &[&list]);
        let Observation::Done(outputs) = step.observe(&ctx()).await.unwrap() else { panic!("not done") };
        assert_eq!(outputs.get("change_id"), None, "nothing changed: no change id");
        assert_eq!(outputs["previous_target"], "dr-lb.us-west-2.elb.amazonaws.com");

        // Weighted records of the name, none with our set identifier: absent, nothing to report.
        let list = mock!(Client::list_resource_record_sets).then_output(|| {
            let mut other = alias_set("api.example.com.", "dr-lb.us-west-2.elb.amazonaws.com.");
            other.set_identifier = Some("green".into());
            other.weight = Some(1);
            listing(vec![other, alias_set("api2.example.com.", "x.")])
        });
        let step = mocked(&format!("{ALIAS}set_identifier: blue\nweight: 1\n"), &[&list]);
        assert_eq!(step.observe(&ctx()).await.unwrap(), Observation::NotDone);
        assert_eq!(step.memory().previous.as_deref(), Some(""));
        assert_eq!(step.memory().existing_name, None);
    }

    #[tokio::test]
    async fn a_missing_zone_fails_fast_naming_the_field() {
        let list = mock!(Client::list_resource_record_sets).then_error(|| {
            let message = "No hosted zone found with ID: Z123";
            let meta = ErrorMetadata::builder().code("NoSuchHostedZone").message(message).build();
            let e = NoSuchHostedZone::builder().message(message).meta(meta).build();
            ListResourceRecordSetsError::NoSuchHostedZone(e)
        });
        let e = mocked(ALIAS, &[&list]).observe(&ctx()).await.unwrap_err();
        assert!(!e.is_retryable(), "{e}");
        assert!(e.message.contains("NoSuchHostedZone") && e.message.contains("`with.zone_id`"), "{e}");
    }
}

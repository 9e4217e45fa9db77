//! The `with:` parameters of `aws.route53.upsert_record`, and the record they describe.

use std::borrow::Cow;

use aws_sdk_route53::types::{ResourceRecordSetFailover, RrType};
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::Deserialize;

/// The TTL of a `values` record unless the plan says otherwise.
const DEFAULT_TTL: u32 = 60;

/// A rule across the optional fields of `with:`, written once: the serde check
/// ([`CrossField::broken_by`]) and the JSON Schema ([`CrossField::schema`]) both read [`RULES`].
enum CrossField {
    /// Exactly one of two fields: the message when neither is set, and when both are.
    ExactlyOne([&'static str; 2], &'static str, &'static str),
    /// At most one of two fields.
    AtMostOne([&'static str; 2], &'static str),
    /// The first field needs the second.
    Requires(&'static str, &'static str, &'static str),
    /// The first field needs one of the others.
    RequiresAny(&'static str, &'static [&'static str], &'static str),
}

/// The cross-field rules of `aws.route53.upsert_record`, in the order they are checked.
const RULES: &[CrossField] = &[
    CrossField::ExactlyOne(
        ["alias", "values"],
        "set `alias` (to point at a load balancer or another AWS resource) or `values`",
        "set `alias` or `values`, not both",
    ),
    CrossField::Requires(
        "ttl",
        "values",
        "`ttl` applies to `values` only: an alias record answers with its target's TTL",
    ),
    CrossField::AtMostOne(
        ["weight", "failover"],
        "set `weight` or `failover`, not both: a record has one routing policy",
    ),
    CrossField::Requires(
        "weight",
        "set_identifier",
        "`weight` needs `set_identifier`, which tells the weighted records of a name apart",
    ),
    CrossField::Requires(
        "failover",
        "set_identifier",
        "`failover` needs `set_identifier`, which tells the PRIMARY and SECONDARY records apart",
    ),
    CrossField::RequiresAny(
        "set_identifier",
        &["weight", "failover"],
        "`set_identifier` needs a routing policy: set `weight` or `failover`",
    ),
];

impl CrossField {
    /// The message of this rule if the fields that are set break it.
    fn broken_by(&self, set: &[&str]) -> Option<&'static str> {
        let has = |field: &str| set.contains(&field);
        match *self {
            CrossField::ExactlyOne([a, b], neither, both) => match (has(a), has(b)) {
                (false, false) => Some(neither),
                (true, true) => Some(both),
                _ => None,
            },
            CrossField::AtMostOne([a, b], both) => (has(a) && has(b)).then_some(both),
            CrossField::Requires(field, needs, message) => (has(field) && !has(needs)).then_some(message),
            CrossField::RequiresAny(field, any, message) => {
                (has(field) && !any.iter().any(|f| has(f))).then_some(message)
            }
        }
    }

    /// This rule as a JSON Schema condition on the object.
    fn schema(&self) -> serde_json::Value {
        use serde_json::json;
        let required = |field: &str| json!({ "required": [field] });
        match *self {
            CrossField::ExactlyOne([a, b], ..) => json!({ "oneOf": [required(a), required(b)] }),
            CrossField::AtMostOne([a, b], _) => json!({ "not": { "required": [a, b] } }),
            CrossField::Requires(field, needs, _) => json!({ "dependentRequired": { field: [needs] } }),
            CrossField::RequiresAny(field, any, _) => {
                let any: Vec<_> = any.iter().map(|f| required(f)).collect();
                json!({ "dependentSchemas": { field: { "anyOf": any } } })
            }
        }
    }
}

/// `with:` of an `aws.route53.upsert_record` step, checked across fields: `alias` or `values`, and
/// at most one routing policy. Its JSON Schema is that of [`UpsertRecordFields`].
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "UpsertRecordFields")]
pub struct UpsertRecordParams {
    pub(super) zone_id: String,
    pub(super) record: Record,
    pub(super) region: Option<String>,
}

/// The fields of [`UpsertRecordParams`], before checks across fields.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(description = "`with:` of an `aws.route53.upsert_record` step.")]
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
    pub(super) fn as_str(self) -> &'static str {
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

    pub(super) fn rr_type(self) -> RrType {
        RrType::from(self.as_str())
    }

    /// Whether values end in a domain name, which DNS compares without regard to case or a final dot.
    pub(super) fn values_are_names(self) -> bool {
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
    pub(super) fn as_str(self) -> &'static str {
        match self {
            FailoverRole::Primary => "PRIMARY",
            FailoverRole::Secondary => "SECONDARY",
        }
    }

    pub(super) fn from_sdk(value: &ResourceRecordSetFailover) -> Option<FailoverRole> {
        match value {
            ResourceRecordSetFailover::Primary => Some(FailoverRole::Primary),
            ResourceRecordSetFailover::Secondary => Some(FailoverRole::Secondary),
            _ => None,
        }
    }

    pub(super) fn to_sdk(self) -> ResourceRecordSetFailover {
        match self {
            FailoverRole::Primary => ResourceRecordSetFailover::Primary,
            FailoverRole::Secondary => ResourceRecordSetFailover::Secondary,
        }
    }
}

/// What a record answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Target {
    Alias { zone_id: String, dns_name: String, evaluate_target_health: bool },
    Values { values: Vec<String>, ttl: i64 },
}

impl Target {
    /// The target as outputs show it: the alias's DNS name (normalised), or the values joined by `,`.
    pub(super) fn shown(&self) -> String {
        match self {
            Target::Alias { dns_name, .. } => super::dns::normalise_name(dns_name),
            Target::Values { values, .. } => values.join(","),
        }
    }
}

/// A record's routing policy and health check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Routing {
    pub(super) set_identifier: Option<String>,
    pub(super) weight: Option<i64>,
    pub(super) failover: Option<FailoverRole>,
    pub(super) health_check_id: Option<String>,
}

/// The record as the plan wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Record {
    pub(super) name: String,
    pub(super) record_type: RecordType,
    pub(super) target: Target,
    pub(super) routing: Routing,
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
        let set: Vec<&str> = [
            ("alias", f.alias.is_some()),
            ("values", f.values.is_some()),
            ("ttl", f.ttl.is_some()),
            ("set_identifier", f.set_identifier.is_some()),
            ("weight", f.weight.is_some()),
            ("failover", f.failover.is_some()),
        ]
        .into_iter()
        .filter_map(|(field, is_set)| is_set.then_some(field))
        .collect();
        if let Some(message) = RULES.iter().find_map(|rule| rule.broken_by(&set)) {
            return Err(message.into());
        }
        let target = match (f.alias, f.values) {
            (Some(alias), _) => {
                empty("alias.zone_id", &alias.zone_id)?;
                empty("alias.dns_name", &alias.dns_name)?;
                Target::Alias {
                    zone_id: alias.zone_id,
                    dns_name: alias.dns_name,
                    evaluate_target_health: alias.evaluate_target_health,
                }
            }
            // RULES made sure `values` is set: an absent one is as empty as `[]`.
            (None, values) => {
                let values = values.unwrap_or_default();
                if values.is_empty() {
                    return Err("`values` is empty: give the record at least one value".into());
                }
                Target::Values { values, ttl: f.ttl.unwrap_or(DEFAULT_TTL).into() }
            }
        };
        if f.weight.is_some_and(|w| w > 255) {
            return Err("`weight` must be between 0 and 255".into());
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

/// The parameters' schema is that of the fields they are read from, with [`RULES`] as top-level
/// keywords (`oneOf`, `not`, `dependentRequired`...; a keyword already used goes into `allOf`),
/// which `drctl explain` lists.
impl JsonSchema for UpsertRecordParams {
    fn schema_name() -> Cow<'static, str> {
        UpsertRecordFields::schema_name()
    }
    fn schema_id() -> Cow<'static, str> {
        UpsertRecordFields::schema_id()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let mut schema = UpsertRecordFields::json_schema(generator);
        let mut all_of = Vec::new();
        for rule in RULES {
            let serde_json::Value::Object(condition) = rule.schema() else { continue };
            for (keyword, value) in condition {
                match (schema.get_mut(&keyword), value) {
                    // One map per keyword: `dependentRequired`, `dependentSchemas`.
                    (Some(serde_json::Value::Object(merged)), serde_json::Value::Object(more)) => merged.extend(more),
                    (Some(_), value) => all_of.push(serde_json::json!({ keyword: value })),
                    (None, value) => {
                        schema.insert(keyword, value);
                    }
                }
            }
        }
        if !all_of.is_empty() {
            schema.insert("allOf".into(), all_of.into());
        }
        schema
    }
}

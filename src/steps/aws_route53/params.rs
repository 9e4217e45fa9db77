//! The `with:` parameters of `aws.route53.upsert_record`, and the record they describe.

use std::borrow::Cow;

use aws_sdk_route53::types::{ResourceRecordSetFailover, RrType};
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::Deserialize;

/// The TTL of a `values` record unless the plan says otherwise.
const DEFAULT_TTL: u32 = 60;

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

//! The built-in step types: `wait`, `http.check`, `http.request`, `notify.webhook`, `command`,
//! `approval`, and the AWS (`aws.*`) and Kubernetes (`kube.*`) ones. Each lives in its own module;
//! this one wires them into a [`Registry`] and holds the parameter types they share
//! ([`HumanDuration`], [`StatusList`]).

pub mod approval;
#[cfg(test)]
mod aws_mocks;
pub mod aws_rds;
pub mod aws_route53;
pub mod aws_secrets;
pub mod command;
mod http;
pub mod http_check;
pub mod http_request;
pub mod k8s;
mod lag_gate;
pub mod notify_webhook;
pub mod pg;
mod preflight;
#[cfg(test)]
mod test_support;
pub mod wait;

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

pub use approval::{ApprovalRequest, Approver, AutoApprove, RefuseWithoutTerminal};

use crate::step::Registry;

/// What the built-in step types need from the outside world.
#[derive(Clone)]
pub struct Services {
    /// Shared by `http.check`, `http.request` and `notify.webhook` (connection pooling).
    pub http: reqwest::Client,
    /// Answers `approval` steps: a terminal prompt, [`AutoApprove`] for `--yes`, or
    /// [`RefuseWithoutTerminal`].
    pub approver: Arc<dyn Approver>,
    /// SDK configurations for the AWS step types.
    pub aws: Arc<crate::aws::Aws>,
    /// API clients for the Kubernetes step types.
    pub kube: Arc<crate::k8s::Kube>,
    /// `--accept-data-loss`: the data loss (as time) the operator accepts when a promotion would
    /// lose more than the plan's RPO.
    pub accept_data_loss: Option<Duration>,
}

impl Services {
    /// Services for reading and checking plans: nothing runs, so no approval is asked and no
    /// AWS call is made.
    pub fn for_checking() -> Services {
        Services {
            http: http_client(),
            approver: Arc::new(RefuseWithoutTerminal),
            aws: Arc::new(crate::aws::Aws::default()),
            kube: Arc::new(crate::k8s::Kube::default()),
            accept_data_loss: None,
        }
    }
}

/// Every built-in step type, ready for plan validation and runs.
pub fn builtin(services: &Services) -> Registry {
    let mut registry = Registry::default();
    registry
        .register(wait::Wait)
        .register(http_check::HttpCheck { http: services.http.clone() })
        .register(http_request::HttpRequest { http: services.http.clone() })
        .register(notify_webhook::NotifyWebhook { http: services.http.clone() })
        .register(command::Command)
        .register(approval::Approval { approver: services.approver.clone() })
        .register(aws_rds::PromoteReplica::new(services))
        .register(aws_rds::CreateReplica::new(services))
        .register(aws_rds::RestorePointInTime::new(services))
        .register(aws_rds::RestoreSnapshot::new(services))
        .register(aws_rds::GlobalFailover::new(services))
        .register(aws_rds::Fence::new(services))
        .register(aws_secrets::SecretsRead { aws: services.aws.clone() })
        .register(aws_secrets::SecretsPut { aws: services.aws.clone() })
        .register(aws_secrets::SecretsRestorePrevious { aws: services.aws.clone() })
        .register(aws_secrets::SecretsRotate { aws: services.aws.clone() })
        .register(aws_route53::Route53Upsert { aws: services.aws.clone() })
        .register(pg::Promote::new(services))
        .register(pg::Check::new(services))
        .register(pg::Fence::default());
    k8s::register(&mut registry, services);
    registry
}

/// The HTTP client drctl's steps use: a 10 s connect timeout, `drctl/<version>` as user agent, the
/// system's proxy settings. Per-request timeouts are set by each step.
///
/// # Panics
/// If the TLS backend cannot be initialised, which no retry would fix either.
pub fn http_client() -> reqwest::Client {
    client_builder().build().expect("the HTTP client (rustls) could not be initialised")
}

fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("drctl/", env!("CARGO_PKG_VERSION")))
}

/// A duration written for people in step parameters: `30s`, `15m`, `1h30m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HumanDuration(pub Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;
        impl Visitor<'_> for DurationVisitor {
            type Value = HumanDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as 30s, 15m or 1h30m")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<HumanDuration, E> {
                crate::plan::parse_duration(text)
                    .map(HumanDuration)
                    .map_err(|e| E::custom(format!("{e}; {}", crate::plan::DURATION_HELP)))
            }
        }
        deserializer.deserialize_str(DurationVisitor)
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&humantime::format_duration(self.0))
    }
}

impl JsonSchema for HumanDuration {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "pattern": crate::plan::schema::DURATION_PATTERN, "examples": ["30s", "15m", "1h30m"] })
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

/// Accepted HTTP statuses: `expect_status: 200` or `expect_status: [200, 204]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusList(pub Vec<u16>);

impl StatusList {
    /// Whether `status` is accepted.
    pub fn contains(&self, status: u16) -> bool {
        self.0.contains(&status)
    }
}

/// `200`, `200 or 204`, `200, 201, 202 or 204`.
impl fmt::Display for StatusList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        for (i, status) in self.0.iter().enumerate() {
            let sep = if i == 0 {
                ""
            } else if i + 1 == n {
                " or "
            } else {
                ", "
            };
            write!(f, "{sep}{status}")?;
        }
        Ok(())
    }
}

fn checked_status<E: de::Error>(value: i128) -> Result<u16, E> {
    match u16::try_from(value) {
        Ok(status @ 100..=599) => Ok(status),
        _ => Err(E::custom(format_args!("{value} is not an HTTP status (100 to 599)"))),
    }
}

impl<'de> Deserialize<'de> for StatusList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StatusVisitor;
        impl<'de> Visitor<'de> for StatusVisitor {
            type Value = StatusList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an HTTP status such as 200, or a list such as [200, 204]")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<StatusList, E> {
                Ok(StatusList(vec![checked_status(v.into())?]))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<StatusList, E> {
                Ok(StatusList(vec![checked_status(v.into())?]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StatusList, A::Error> {
                let mut statuses = Vec::new();
                while let Some(status) = seq.next_element::<i64>()? {
                    statuses.push(checked_status(status.into())?);
                }
                if statuses.is_empty() {
                    return Err(de::Error::custom("the list of statuses is empty"));
                }
                Ok(StatusList(statuses))
            }
        }
        deserializer.deserialize_any(StatusVisitor)
    }
}

impl Serialize for StatusList {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => serializer.serialize_u16(*one),
            many => many.serialize(serializer),
        }
    }
}

impl JsonSchema for StatusList {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "StatusList".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let status = serde_json::json!({ "type": "integer", "minimum": 100, "maximum": 599 });
        json_schema!({ "oneOf": [status, { "type": "array", "items": status, "minItems": 1 }] })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::de::from_node;
    use crate::plan::yaml::parse;

    #[derive(Debug, Deserialize)]
    struct P {
        d: Option<HumanDuration>,
        s: Option<StatusList>,
    }

    fn p(yaml: &str) -> Result<P, String> {
        from_node::<P>(&parse(yaml).unwrap()).map_err(|e| format!("{} at {}: {}", e.path, e.pos, e.message))
    }

    #[test]
    fn durations_parse_from_strings_only() {
        assert_eq!(p("d: 1h30m").unwrap().d, Some(HumanDuration(Duration::from_secs(5400))));
        assert!(p("d: 30").unwrap_err().contains("expected a duration such as 30s"), "{:?}", p("d: 30"));
        assert!(p("d: soon").unwrap_err().contains("is not a duration"));
        assert_eq!(HumanDuration(Duration::from_secs(90)).to_string(), "1m 30s");
    }

    #[test]
    fn statuses_are_one_or_a_list() {
        assert_eq!(p("s: 204").unwrap().s, Some(StatusList(vec![204])));
        assert_eq!(p("s: [200, 204]").unwrap().s, Some(StatusList(vec![200, 204])));
        assert!(p("s: 2000").unwrap_err().contains("not an HTTP status"));
        assert!(p("s: []").unwrap_err().contains("empty"));
        assert_eq!(StatusList(vec![200, 201, 202, 204]).to_string(), "200, 201, 202 or 204");
        assert_eq!(StatusList(vec![200, 204]).to_string(), "200 or 204");
    }

    #[test]
    fn every_builtin_type_is_registered_with_a_schema() {
        let registry = builtin(&Services { approver: Arc::new(AutoApprove), ..Services::for_checking() });
        assert_eq!(
            registry.names(),
            [
                "approval",
                "aws.rds.create_replica",
                "aws.rds.fence",
                "aws.rds.global_failover",
                "aws.rds.promote_replica",
                "aws.rds.restore_point_in_time",
                "aws.rds.restore_snapshot",
                "aws.route53.upsert_record",
                "aws.secrets.put",
                "aws.secrets.read",
                "aws.secrets.restore_previous",
                "aws.secrets.rotate",
                "command",
                "http.check",
                "http.request",
                "kube.apply",
                "kube.check_cluster",
                "kube.delete",
                "kube.rollout_restart",
                "kube.rollout_undo",
                "kube.scale",
                "kube.set_env",
                "kube.write_secret",
                "notify.webhook",
                "pg.check",
                "pg.fence",
                "pg.promote",
                "wait",
            ]
        );
        let schema = crate::plan::schema::plan_schema(&registry);
        let text = schema.to_string();
        assert!(text.contains("\"pattern\""), "durations have a pattern");
        assert!(text.contains("incident_detected"), "notify templates are listed");
    }
}

//! `aws.rds.restore_point_in_time` and `aws.rds.restore_snapshot`: the runbook's "Database
//! Recovery" restores (`restore-db-instance-to-point-in-time`, `restore-db-instance-from-db-snapshot`).
//!
//! A restore creates a new instance, `target`; a target that already exists is taken as the
//! restore's result (RDS records no link from an instance back to what it was restored from), so a
//! resumed or repeated run waits for it instead of failing on "already exists".

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_smithy_types::DateTime;
use schemars::JsonSchema;
use serde::Deserialize;

use super::{Clients, Source, available_outputs, existing, field_for, find_instance, poll_available};
use crate::aws::step_error;
use crate::step::{
    BuildContext, Observation, OutputSpec, Outputs, Progress, Receipt, Step, StepContext, StepError, TypedStep,
};
use crate::steps::{HumanDuration, Services};

/// The `aws.rds.restore_point_in_time` step type.
pub struct RestorePointInTime {
    source: Source,
}

impl RestorePointInTime {
    pub fn new(services: &Services) -> Self {
        RestorePointInTime { source: Source::Aws(services.aws.clone()) }
    }
}

/// The `aws.rds.restore_snapshot` step type.
pub struct RestoreSnapshot {
    source: Source,
}

impl RestoreSnapshot {
    pub fn new(services: &Services) -> Self {
        RestoreSnapshot { source: Source::Aws(services.aws.clone()) }
    }
}

/// `with:` of an `aws.rds.restore_point_in_time` step (`restore_time` or `latest: true`).
#[derive(Deserialize, JsonSchema)]
#[serde(try_from = "PointInTimeFields")]
pub struct PointInTimeParams {
    fields: PointInTimeFields,
    time: Option<SystemTime>,
}

/// The fields of [`PointInTimeParams`], before checks across fields.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PointInTimeFields {
    /// The instance whose backups to restore from.
    pub source: String,
    /// The new instance's identifier.
    pub target: String,
    /// The time to restore to, RFC 3339 in UTC (`2026-05-01T12:00:00Z`).
    #[serde(default)]
    pub restore_time: Option<String>,
    /// Restore to the latest restorable time instead.
    #[serde(default)]
    pub latest: bool,
    /// The region of both instances (default: the region the run moves to).
    #[serde(default)]
    pub region: Option<String>,
    /// The new instance's class (default: the source's).
    #[serde(default)]
    pub instance_class: Option<String>,
    /// How often to look while the instance is created (default 5s).
    #[serde(default = "super::default_poll")]
    pub poll_interval: HumanDuration,
}

impl TryFrom<PointInTimeFields> for PointInTimeParams {
    type Error = String;
    fn try_from(fields: PointInTimeFields) -> Result<Self, String> {
        let time = match (&fields.restore_time, fields.latest) {
            (Some(_), true) => return Err("set `restore_time` or `latest: true`, not both".into()),
            (None, false) => return Err("set `restore_time` (RFC 3339) or `latest: true`".into()),
            (Some(text), false) => Some(humantime::parse_rfc3339(text.trim()).map_err(|_| {
                format!("`restore_time` {text:?} is not an RFC 3339 UTC time such as 2026-05-01T12:00:00Z")
            })?),
            (None, true) => None,
        };
        Ok(PointInTimeParams { fields, time })
    }
}

/// `with:` of an `aws.rds.restore_snapshot` step.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SnapshotParams {
    /// The DB snapshot to restore (identifier, or ARN for a shared snapshot).
    pub snapshot: String,
    /// The new instance's identifier.
    pub target: String,
    /// The region of the snapshot and the new instance (default: the region the run moves to).
    #[serde(default)]
    pub region: Option<String>,
    /// The new instance's class (default: the snapshot's).
    #[serde(default)]
    pub instance_class: Option<String>,
    /// How often to look while the instance is created (default 5s).
    #[serde(default = "super::default_poll")]
    pub poll_interval: HumanDuration,
}

impl TypedStep for RestorePointInTime {
    const DOCS: crate::step::StepDocs = crate::step::StepDocs {
        description: "The runbook's point-in-time restore (`aws rds restore-db-instance-to-point-in-time`): creates \
            `target` from `source`'s backups as of `restore_time`, or the latest restorable time with `latest: true`, \
            and waits until it is available. A `target` that already exists is taken as the restore's result and \
            waited for.",
        example: r#"
source: app-db
target: app-db-restored
latest: true
"#,
        failure: crate::aws::STEP_FAILURES,
    };
    type Params = PointInTimeParams;
    const NAME: &'static str = "aws.rds.restore_point_in_time";
    const SUMMARY: &'static str =
        "Restores an RDS instance to a point in time as a new instance and waits until it is available.";
    const OUTPUTS: &'static [OutputSpec] = &[
        OutputSpec::string("endpoint", "The new instance's endpoint address (host name)."),
        OutputSpec::integer("port", "The port it listens on."),
        OutputSpec::reference("arn", "The new instance's ARN."),
    ];

    fn build(&self, p: PointInTimeParams, context: &BuildContext) -> Box<dyn Step> {
        let f = p.fields;
        Box::new(RestoreStep {
            clients: Clients::new(&self.source, context),
            from: From::PointInTime { source: f.source, time: p.time },
            target: f.target,
            region: f.region.unwrap_or_else(|| context.target_region().to_string()),
            instance_class: f.instance_class,
            poll: f.poll_interval.0,
        })
    }
}

impl TypedStep for RestoreSnapshot {
    const DOCS: crate::step::StepDocs = crate::step::StepDocs {
        description: "The runbook's snapshot restore (`aws rds restore-db-instance-from-db-snapshot`): creates \
            `target` from a DB snapshot and waits until it is available. A `target` that already exists is taken as \
            the restore's result and waited for.",
        example: r#"
snapshot: app-db-nightly
target: app-db-restored
"#,
        failure: crate::aws::STEP_FAILURES,
    };
    type Params = SnapshotParams;
    const NAME: &'static str = "aws.rds.restore_snapshot";
    const SUMMARY: &'static str = "Restores an RDS DB snapshot as a new instance and waits until it is available.";
    const OUTPUTS: &'static [OutputSpec] = &[
        OutputSpec::string("endpoint", "The new instance's endpoint address (host name)."),
        OutputSpec::integer("port", "The port it listens on."),
        OutputSpec::reference("arn", "The new instance's ARN."),
    ];

    fn build(&self, p: SnapshotParams, context: &BuildContext) -> Box<dyn Step> {
        Box::new(RestoreStep {
            clients: Clients::new(&self.source, context),
            from: From::Snapshot(p.snapshot),
            target: p.target,
            region: p.region.unwrap_or_else(|| context.target_region().to_string()),
            instance_class: p.instance_class,
            poll: p.poll_interval.0,
        })
    }
}

/// What a restore starts from.
enum From {
    /// An instance's backups, at `time` or (`None`) the latest restorable time.
    PointInTime {
        source: String,
        time: Option<SystemTime>,
    },
    Snapshot(String),
}

/// The target appeared between observing and acting (an earlier attempt's answer was lost): the
/// next attempt observes it instead of failing.
fn already_exists(error: StepError) -> StepError {
    StepError::retryable(error.message)
}

struct RestoreStep {
    clients: Clients,
    from: From,
    target: String,
    region: String,
    instance_class: Option<String>,
    poll: Duration,
}

#[async_trait]
impl Step for RestoreStep {
    fn describe(&self) -> String {
        match &self.from {
            From::PointInTime { source, time: Some(time) } => format!(
                "restore {source} to {} as {} in {}",
                humantime::format_rfc3339_seconds(*time),
                self.target,
                self.region
            ),
            From::PointInTime { source, time: None } => {
                format!("restore {source} to its latest restorable time as {} in {}", self.target, self.region)
            }
            From::Snapshot(snapshot) => format!("restore snapshot {snapshot} as {} in {}", self.target, self.region),
        }
    }

    async fn observe(&self, _ctx: &StepContext) -> Result<Observation, StepError> {
        let rds = self.clients.rds(&self.region).await;
        match find_instance(&rds, &self.target, &self.region, "with.target").await? {
            None => Ok(Observation::NotDone),
            Some(instance) => existing(&instance, &self.target, &self.region, "with.target"),
        }
    }

    async fn act(&self, _ctx: &StepContext) -> Result<Receipt, StepError> {
        let rds = self.clients.rds(&self.region).await;
        match &self.from {
            From::PointInTime { source, time } => {
                let action = format!("restore `{source}` as `{}` in {}", self.target, self.region);
                let result = rds
                    .restore_db_instance_to_point_in_time()
                    .source_db_instance_identifier(source)
                    .target_db_instance_identifier(&self.target)
                    .set_restore_time(time.map(DateTime::from))
                    .set_use_latest_restorable_time(time.is_none().then_some(true))
                    .set_db_instance_class(self.instance_class.clone())
                    .send()
                    .await;
                result.map(|_| Receipt::NONE).map_err(|e| {
                    if e.as_service_error().is_some_and(|s| s.is_db_instance_already_exists_fault()) {
                        return already_exists(step_error(&e, &action, "with.target"));
                    }
                    let code = super::code(&e);
                    let other = match code {
                        Some(c) if c.contains("PointInTime") || c.contains("InvalidRestore") => {
                            if time.is_some() {
                                "with.restore_time"
                            } else {
                                "with.source"
                            }
                        }
                        _ => "with.target",
                    };
                    step_error(&e, &action, field_for(code, "with.source", other))
                })
            }
            From::Snapshot(snapshot) => {
                let action = format!("restore snapshot `{snapshot}` as `{}` in {}", self.target, self.region);
                let result = rds
                    .restore_db_instance_from_db_snapshot()
                    .db_snapshot_identifier(snapshot)
                    .db_instance_identifier(&self.target)
                    .set_db_instance_class(self.instance_class.clone())
                    .send()
                    .await;
                result.map(|_| Receipt::NONE).map_err(|e| {
                    if e.as_service_error().is_some_and(|s| s.is_db_instance_already_exists_fault()) {
                        return already_exists(step_error(&e, &action, "with.target"));
                    }
                    step_error(&e, &action, field_for(super::code(&e), "with.snapshot", "with.target"))
                })
            }
        }
    }

    async fn poll(&self, _ctx: &StepContext, _receipt: &Receipt) -> Progress {
        let rds = self.clients.rds(&self.region).await;
        poll_available(&rds, &self.target, &self.region, "with.target").await
    }

    fn poll_interval(&self) -> Duration {
        self.poll
    }

    async fn verify(&self, _ctx: &StepContext, _receipt: &Receipt) -> Result<Outputs, StepError> {
        let rds = self.clients.rds(&self.region).await;
        available_outputs(&rds, &self.target, &self.region, "with.target").await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::test_support::build_error;

    fn kind() -> RestorePointInTime {
        RestorePointInTime { source: Source::Aws(Default::default()) }
    }

    #[test]
    fn a_point_in_time_needs_exactly_one_of_time_and_latest() {
        assert!(build_error(&kind(), "source: a\ntarget: b").contains("`latest: true`"));
        assert!(
            build_error(&kind(), "source: a\ntarget: b\nlatest: true\nrestore_time: 2026-01-01T00:00:00Z")
                .contains("not both")
        );
        assert!(build_error(&kind(), "source: a\ntarget: b\nrestore_time: yesterday").contains("RFC 3339"));
    }

    #[test]
    fn descriptions_say_what_is_restored() {
        let step = crate::steps::test_support::build(
            &kind(),
            "source: prod\ntarget: prod-restored\nrestore_time: 2026-01-01T00:00:00Z",
        );
        assert_eq!(step.describe(), "restore prod to 2026-01-01T00:00:00Z as prod-restored in us-west-2");
        let step = crate::steps::test_support::build(
            &RestoreSnapshot { source: Source::Aws(Default::default()) },
            "snapshot: nightly\ntarget: prod-restored\nregion: us-east-1",
        );
        assert_eq!(step.describe(), "restore snapshot nightly as prod-restored in us-east-1");
    }
}

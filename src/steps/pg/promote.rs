//! `pg.promote`: promotes a self-managed PostgreSQL streaming standby (`pg_promote`), refusing to
//! lose more data than the RPO.
//!
//! Observation connects to the standby: not in recovery (`pg_is_in_recovery()` false) means it is
//! already promoted, and the step is done without acting, so a resumed or repeated run never
//! promotes twice. Otherwise it measures the lag (see the module above for exactly what) and refuses
//! when it exceeds `max_lag` (the plan's RPO by default), unless `--accept-data-loss` covers it;
//! the accepted loss goes into the outputs, which the journal keeps.
//!
//! Acting is `SELECT pg_promote(wait => false)`; waiting polls every 500 ms until the server is out
//! of recovery *and* commits a write (see [`super::write_probe`]); the step's timeout bounds it.
//!
//! Outputs: `lag_s` and `accepted_data_loss_s` (empty when the server was found promoted and this
//! process measured nothing), `replay_delay_bytes`, `promoted_lsn` (`pg_current_wal_lsn()` when
//! verified) and `timeline` (the timeline the server writes on, from
//! `pg_walfile_name(pg_current_wal_lsn())`: `pg_control_checkpoint()` shows the new timeline only
//! after the first checkpoint following the promotion).

use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

use super::{
    AuthKind, Dsn, EnvLookup, StepAuth, Target, check_auth, check_dsn_fields, connect_server, dsn_from, measure,
    pg_error, primary_view, process_env, status, write_probe,
};
use crate::step::{
    BuildContext, Observation, OutputSpec, Outputs, Progress, Receipt, Step, StepContext, StepError, TypedStep,
};
use crate::steps::lag_gate::{Assessment, Limit, Subject, decide};
use crate::steps::{HumanDuration, Services};

/// How often to look while the promotion completes.
const POLL: Duration = Duration::from_millis(500);

/// The `pg.promote` step type.
pub struct Promote {
    accept_data_loss: Option<Duration>,
    env: EnvLookup,
    aws: std::sync::Arc<crate::aws::Aws>,
}

impl Promote {
    pub fn new(services: &Services) -> Self {
        Promote { accept_data_loss: services.accept_data_loss, env: process_env(), aws: services.aws.clone() }
    }
}

/// `with:` of a `pg.promote` step (exactly one of `dsn_env` and `dsn`; at most one of
/// `primary_dsn_env` and `primary_dsn`).
#[derive(Deserialize, JsonSchema)]
#[serde(try_from = "PromoteFields")]
pub struct PromoteParams(PromoteFields);

/// The fields of [`PromoteParams`], before checks across fields.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PromoteFields {
    /// The environment variable holding the standby's libpq connection string or URL (password
    /// included); the string is never shown.
    #[serde(default)]
    pub dsn_env: Option<String>,
    /// The standby's connection URL without a password, e.g.
    /// `postgres://drctl@10.0.0.5:5432/postgres`; one with a password is refused (use `dsn_env`).
    #[serde(default)]
    pub dsn: Option<String>,
    /// The environment variable holding the primary's connection string. When the primary answers,
    /// the lag is measured against its WAL position; when it does not (it failed), from the standby
    /// alone.
    #[serde(default)]
    pub primary_dsn_env: Option<String>,
    /// The primary's connection URL without a password (see `primary_dsn_env`).
    #[serde(default)]
    pub primary_dsn: Option<String>,
    /// The most lag (data loss, as time) to promote with (default: the plan's RPO); more needs
    /// `--accept-data-loss`.
    #[serde(default)]
    pub max_lag: Option<HumanDuration>,
    /// `password` (default: as the connection strings say) or `iam` (an RDS IAM token from the
    /// standard AWS credential chain, over TLS).
    #[serde(default)]
    pub auth: AuthKind,
    /// With `auth: iam`: the standby's AWS region (default: from an RDS endpoint's host name).
    #[serde(default)]
    pub region: Option<String>,
    /// With `auth: iam`: the primary's AWS region (default: from an RDS endpoint's host name).
    #[serde(default)]
    pub primary_region: Option<String>,
}

/// The checked parameters.
struct Checked {
    standby: Dsn,
    primary: Option<Dsn>,
    max_lag: Option<HumanDuration>,
    auth: AuthKind,
    region: Option<String>,
    primary_region: Option<String>,
}

impl TryFrom<PromoteFields> for PromoteParams {
    type Error = String;
    fn try_from(f: PromoteFields) -> Result<Self, String> {
        check_dsn_fields(&f.dsn, &f.dsn_env, &f.primary_dsn, &f.primary_dsn_env)?;
        check_auth(f.auth, &f.region, &f.primary_region, &[(&f.dsn, "dsn"), (&f.primary_dsn, "primary_dsn")])?;
        Ok(PromoteParams(f))
    }
}

impl PromoteParams {
    fn checked(self) -> Checked {
        let f = self.0;
        // Checked in `try_from`.
        let standby = dsn_from(f.dsn, f.dsn_env, ("with.dsn", "with.dsn_env"), true).ok().flatten();
        let primary = dsn_from(f.primary_dsn, f.primary_dsn_env, ("with.primary_dsn", "with.primary_dsn_env"), false);
        Checked {
            standby: standby.unwrap_or(Dsn::Env { name: String::new(), field: "with.dsn_env" }),
            primary: primary.ok().flatten(),
            max_lag: f.max_lag,
            auth: f.auth,
            region: f.region,
            primary_region: f.primary_region,
        }
    }
}

impl TypedStep for Promote {
    const DOCS: crate::step::StepDocs = crate::step::StepDocs {
        description: "Promotes a self-managed PostgreSQL streaming standby (`pg_promote`) and waits until it commits a \
            write. Before promoting it measures the lag (the age of the last replayed transaction, when the standby \
            has WAL received but not replayed or the primary answers and is ahead) and refuses when it exceeds \
            `max_lag` (the plan's RPO by default) unless `--accept-data-loss` covers it. A server already out of \
            recovery is left alone, so it is never promoted twice.",
        example: r#"
dsn_env: DR_DATABASE_DSN
primary_dsn_env: PRIMARY_DATABASE_DSN
max_lag: 5s
"#,
        failure: "A lag beyond `max_lag`, or one that cannot be measured, fails the step at once unless \
            `--accept-data-loss` covers it; the message says how much would be lost and the flag that accepts it. A \
            refused connection, a timeout or a server starting up are retried; a failed authentication or a malformed \
            DSN fail at once, with a hint.",
    };
    type Params = PromoteParams;
    const NAME: &'static str = "pg.promote";
    const SUMMARY: &'static str = "Promotes a self-managed PostgreSQL streaming standby (pg_promote) and waits until \
                                   it accepts writes, refusing if it lags more than the RPO unless \
                                   --accept-data-loss covers it.";
    const OUTPUTS: &'static [OutputSpec] = &[
        OutputSpec::duration("lag_s", "The lag in seconds measured before promoting; absent when it could not be measured (and \
                `--accept-data-loss` was given) or the server was found already promoted.").optional(),
        OutputSpec::duration("accepted_data_loss_s", "The data loss in seconds accepted with `--accept-data-loss`; absent when the lag was within \
                `max_lag` or could not be measured.").optional(),
        OutputSpec::integer("replay_delay_bytes", "WAL the standby had received but not replayed, in bytes; absent when the server was found already promoted.").optional(),
        OutputSpec::string("promoted_lsn", "The server's WAL position (`pg_current_wal_lsn()`) when the promotion was verified."),
        OutputSpec::integer("timeline", "The timeline the promoted server writes on."),
    ];

    fn build(&self, params: PromoteParams, context: &BuildContext) -> Box<dyn Step> {
        let p = params.checked();
        let limit = Limit::of(p.max_lag.map(|m| m.0), context.plan.objectives.rpo);
        let aws_settings = &context.plan.aws;
        Box::new(PromoteStep {
            auth: StepAuth::new(p.auth, p.region, &self.aws, aws_settings),
            primary_auth: StepAuth::new(p.auth, p.primary_region, &self.aws, aws_settings),
            standby: p.standby,
            primary: p.primary,
            limit,
            accept: self.accept_data_loss,
            env: self.env.clone(),
        })
    }
}

/// What an accepted promotion learned: the lag the RPO gate let it through with. The receipt.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
struct Promoted {
    assessment: Assessment,
    /// Received but not replayed WAL when promoted.
    replay_delay_bytes: String,
}

struct PromoteStep {
    standby: Dsn,
    primary: Option<Dsn>,
    auth: StepAuth,
    primary_auth: StepAuth,
    limit: Limit,
    accept: Option<Duration>,
    env: EnvLookup,
}

impl PromoteStep {
    async fn connect(&self) -> Result<(Client, Target), StepError> {
        connect_server(&self.standby, "standby", &self.env, &self.auth).await
    }

    /// The outputs of a promoted server, with what the promotion was let through with (nothing when
    /// it was found promoted).
    async fn outputs(&self, client: &Client, target: &Target, promoted: Promoted) -> Result<Outputs, StepError> {
        let row = client
            .query_one("SELECT pg_current_wal_lsn()::text, pg_walfile_name(pg_current_wal_lsn())", &[])
            .await
            .map_err(|e| pg_error(&e, "read the WAL position of", target))?;
        let (lsn, walfile): (String, String) = (row.get(0), row.get(1));
        let timeline = walfile.get(..8).and_then(|t| u32::from_str_radix(t, 16).ok()).map(|t| t.to_string());
        let Promoted { assessment, replay_delay_bytes } = promoted;
        let outputs = [
            ("lag_s".into(), assessment.lag_s),
            ("accepted_data_loss_s".into(), assessment.accepted_s),
            ("replay_delay_bytes".into(), replay_delay_bytes),
            ("promoted_lsn".into(), lsn),
            ("timeline".into(), timeline.unwrap_or_default()),
        ];
        // Unknown is absent: the assessment's "" and "unknown" are not values.
        Ok(outputs.into_iter().filter(|(_, v): &(String, String)| !matches!(v.as_str(), "" | "unknown")).collect())
    }

    /// Measures the lag of the standby in `state` and asks the RPO gate.
    async fn gate(&self, state: &super::lag::Status, target: &Target) -> Result<Promoted, StepError> {
        let primary = primary_view(self.primary.as_ref(), &self.env, &self.primary_auth).await?;
        let measurement = measure(state, &primary);
        let what = format!("standby {}", target.label);
        let subject = Subject { what: &what, behind: "its primary", basis: Some(&measurement.basis) };
        let assessment = decide(&subject, &measurement.lag, &self.limit, self.accept)?;
        if !assessment.accepted_s.is_empty() {
            tracing::warn!(
                "promoting {target} with a lag of {}s: data loss accepted with --accept-data-loss ({})",
                assessment.lag_s,
                measurement.basis
            );
        }
        Ok(Promoted { assessment, replay_delay_bytes: measurement.replay_delay_bytes.to_string() })
    }

    /// Whether the server is out of recovery and commits a write; `Err` with what is missing.
    async fn writable(&self, client: &Client, target: &Target) -> Result<(), StepError> {
        let in_recovery = status(client, target).await?.in_recovery;
        if in_recovery {
            return Err(StepError::retryable(format!("{target} is still in recovery (promotion requested)")));
        }
        write_probe(client, target).await
    }
}

#[async_trait]
impl Step for PromoteStep {
    async fn preflight(&self, _ctx: &StepContext) -> Vec<crate::step::Finding> {
        let auths = (&self.auth, &self.primary_auth);
        super::preflight::standby(
            &self.standby,
            self.primary.as_ref(),
            &self.env,
            auths,
            self.limit.max,
            &self.limit.what,
        )
        .await
    }

    fn describe(&self) -> String {
        let accept = match self.accept {
            Some(a) => format!("; --accept-data-loss allows up to {}", HumanDuration(a)),
            None => String::new(),
        };
        format!(
            "promote PostgreSQL standby {} (refuses if it lags more than {}{accept})",
            self.standby.label(),
            HumanDuration(self.limit.max)
        )
    }

    /// Done when the server is out of recovery; else asks the RPO gate, refusing here, before
    /// anything is journaled as acting (`act` asks again, with the lag it promotes with).
    async fn observe(&self, _ctx: &StepContext) -> Result<Observation, StepError> {
        let (client, target) = self.connect().await?;
        let state = status(&client, &target).await?;
        if state.in_recovery {
            self.gate(&state, &target).await?;
            return Ok(Observation::NotDone);
        }
        Ok(Observation::Done(self.outputs(&client, &target, Promoted::default()).await?))
    }

    /// Measures the lag and asks the RPO gate again (refusing changes nothing), then `pg_promote`.
    async fn act(&self, _ctx: &StepContext) -> Result<Receipt, StepError> {
        let (client, target) = self.connect().await?;
        let state = status(&client, &target).await?;
        let promoted = Receipt::of(&self.gate(&state, &target).await?);
        match client.query_one("SELECT pg_promote(wait => false)", &[]).await {
            Ok(row) if row.get::<_, bool>(0) => Ok(promoted),
            Ok(_) => Err(StepError::retryable(format!("{target} did not accept the promotion (pg_promote: false)"))),
            // Promoted meanwhile (by someone else, or an earlier attempt): polling confirms it.
            Err(e) if e.code() == Some(&SqlState::OBJECT_NOT_IN_PREREQUISITE_STATE) => Ok(promoted),
            Err(e) => Err(pg_error(&e, "promote", &target)),
        }
    }

    /// Done once the server is out of recovery and commits a write.
    async fn poll(&self, _ctx: &StepContext, _receipt: &Receipt) -> Progress {
        let (client, target) = match self.connect().await {
            Ok(connected) => connected,
            Err(e) => return Progress::Failed(e),
        };
        match status(&client, &target).await {
            Ok(state) if state.in_recovery => {
                return Progress::Waiting(format!("{target} to leave recovery (promotion requested)"));
            }
            Ok(_) => {}
            Err(e) => return Progress::Failed(e),
        }
        match write_probe(&client, &target).await {
            Ok(()) => Progress::Done,
            Err(e) => Progress::Failed(e),
        }
    }

    fn poll_interval(&self) -> Duration {
        POLL
    }

    async fn verify(&self, _ctx: &StepContext, receipt: &Receipt) -> Result<Outputs, StepError> {
        let (client, target) = self.connect().await?;
        self.writable(&client, &target).await?;
        self.outputs(&client, &target, receipt.read()?).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::test_support::build_error;

    #[test]
    fn parameters_need_a_dsn_without_a_password() {
        let kind = Promote { accept_data_loss: None, env: process_env(), aws: Default::default() };
        let e = build_error(&kind, "dsn: postgres://drctl:hunter2@127.0.0.1:5433/postgres");
        assert!(e.contains("`dsn` contains a password") && e.contains("`dsn_env`"), "{e}");
        let e = build_error(&kind, "dsn_env: PG\nprimary_dsn: host=db password=x");
        assert!(e.contains("`primary_dsn` contains a password") && e.contains("`primary_dsn_env`"), "{e}");
        assert!(build_error(&kind, "max_lag: 1m").contains("set `dsn_env`"));
        assert!(build_error(&kind, "dsn_env: PG\nrole: primary").contains("unknown field"));
        let step = crate::steps::test_support::build(&kind, "dsn: postgres://drctl@10.0.0.5:5432/postgres");
        assert_eq!(
            step.describe(),
            "promote PostgreSQL standby drctl@10.0.0.5:5432/postgres (refuses if it lags more than 5m)"
        );
    }
}

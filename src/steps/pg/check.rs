//! `pg.check`: a PostgreSQL server is what the plan expects: a primary (out of recovery), one that
//! commits a write (`writable: true`, see [`super::write_probe`]), or a standby (in recovery) within
//! `max_lag` (the lag `pg.promote` measures, see the module above).
//!
//! Observation checks once: passing, the step is done. Otherwise acting does nothing and waiting
//! checks again every second, saying what is missing (the engine quotes it if the step times
//! out); a server that does not answer yet counts as not passing. Verification checks again.
//! Outputs: `role` (what the server is: `primary` or `standby`), `in_recovery` (`true`/`false`) and
//! `lag_s` (a standby's, seconds or `unknown`; empty for a primary).

use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;

use super::{
    AuthKind, Dsn, EnvLookup, Lag, StepAuth, check_auth, check_dsn_fields, connect_server, dsn_from, measure,
    primary_view, process_env, seconds, status, write_probe,
};
use crate::step::{
    BuildContext, Observation, OutputSpec, Outputs, Progress, Receipt, Step, StepContext, StepError, TypedStep,
};
use crate::steps::HumanDuration;

/// How often `wait` checks again.
const POLL: Duration = Duration::from_secs(1);

/// The `pg.check` step type.
pub struct Check {
    env: EnvLookup,
    aws: std::sync::Arc<crate::aws::Aws>,
}

impl Check {
    pub fn new(services: &crate::steps::Services) -> Self {
        Check { env: process_env(), aws: services.aws.clone() }
    }
}

impl Default for Check {
    fn default() -> Self {
        Check { env: process_env(), aws: Default::default() }
    }
}

/// What the server must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Out of recovery: it takes writes (with `writable: true`, proven by a committed write).
    Primary,
    /// In recovery: a streaming (or archive-replaying) standby.
    Standby,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::Standby => "standby",
        }
    }
}

/// `with:` of a `pg.check` step (exactly one of `dsn_env` and `dsn`).
#[derive(Deserialize, JsonSchema)]
#[serde(try_from = "CheckFields")]
pub struct CheckParams(CheckFields);

/// The fields of [`CheckParams`], before checks across fields.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckFields {
    /// The environment variable holding the server's libpq connection string or URL (password
    /// included); the string is never shown.
    #[serde(default)]
    pub dsn_env: Option<String>,
    /// The server's connection URL without a password, e.g. `postgres://drctl@10.0.0.5:5432/postgres`;
    /// one with a password is refused (use `dsn_env`).
    #[serde(default)]
    pub dsn: Option<String>,
    /// What the server must be: `primary` or `standby`.
    pub role: Role,
    /// A primary must also commit a write (a temporary table in a transaction; nothing is left).
    #[serde(default)]
    pub writable: bool,
    /// A standby must lag at most this much (as `pg.promote` measures it).
    #[serde(default)]
    pub max_lag: Option<HumanDuration>,
    /// For a standby's lag: the environment variable holding its primary's connection string.
    #[serde(default)]
    pub primary_dsn_env: Option<String>,
    /// For a standby's lag: its primary's connection URL without a password.
    #[serde(default)]
    pub primary_dsn: Option<String>,
    /// `password` (default: as the connection strings say) or `iam` (an RDS IAM token from the
    /// standard AWS credential chain, over TLS).
    #[serde(default)]
    pub auth: AuthKind,
    /// With `auth: iam`: the server's AWS region (default: from an RDS endpoint's host name).
    #[serde(default)]
    pub region: Option<String>,
    /// With `auth: iam`: the primary's AWS region (default: from an RDS endpoint's host name).
    #[serde(default)]
    pub primary_region: Option<String>,
}

impl TryFrom<CheckFields> for CheckParams {
    type Error = String;
    fn try_from(f: CheckFields) -> Result<Self, String> {
        check_dsn_fields(&f.dsn, &f.dsn_env, &f.primary_dsn, &f.primary_dsn_env)?;
        check_auth(f.auth, &f.region, &f.primary_region, &[(&f.dsn, "dsn"), (&f.primary_dsn, "primary_dsn")])?;
        if f.role == Role::Standby && f.writable {
            return Err("`writable` is for `role: primary`: a standby never takes writes".into());
        }
        let standby_only = f.max_lag.is_some() || f.primary_dsn.is_some() || f.primary_dsn_env.is_some();
        if f.role == Role::Primary && standby_only {
            return Err("`max_lag`, `primary_dsn` and `primary_dsn_env` are for `role: standby`".into());
        }
        Ok(CheckParams(f))
    }
}

impl TypedStep for Check {
    const DOCS: crate::step::StepDocs = crate::step::StepDocs {
        description: "Checks that a PostgreSQL server is what the plan expects: a `primary` (out of recovery; with \
            `writable: true`, one that commits a write) or a `standby` (in recovery) lagging at most `max_lag`. It \
            checks every second until the server passes; a server that does not answer yet counts as not passing. \
            Read-only.",
        example: r#"
dsn_env: DR_DATABASE_DSN
role: primary
writable: true
"#,
        failure: "A refused connection, a timeout, a server starting up or shutting down are retried; a failed \
            authentication, a missing database or a malformed DSN fail at once, with a hint.",
    };
    type Params = CheckParams;
    const NAME: &'static str = "pg.check";
    const SUMMARY: &'static str = "Checks that a PostgreSQL server is a primary (optionally writable) or a standby \
                                   within a lag, waiting until it is.";
    const OUTPUTS: &'static [OutputSpec] = &[
        OutputSpec::string("role", "What the server is: `primary` or `standby`."),
        OutputSpec::duration(
            "lag_s",
            "A standby's lag in seconds; absent for a primary or when it cannot be measured.",
        )
        .optional(),
        OutputSpec::boolean("in_recovery", "`true` or `false`, as `pg_is_in_recovery()` says."),
    ];
    const POLICY: crate::step::TypePolicy = crate::step::TypePolicy::CHECK;

    fn build(&self, CheckParams(f): CheckParams, context: &BuildContext) -> Box<dyn Step> {
        // Checked in `try_from`.
        let server = dsn_from(f.dsn, f.dsn_env, ("with.dsn", "with.dsn_env"), true).ok().flatten();
        let primary = dsn_from(f.primary_dsn, f.primary_dsn_env, ("with.primary_dsn", "with.primary_dsn_env"), false);
        Box::new(CheckStep {
            auth: StepAuth::new(f.auth, f.region, &self.aws, &context.plan.aws),
            primary_auth: StepAuth::new(f.auth, f.primary_region, &self.aws, &context.plan.aws),
            server: server.unwrap_or(Dsn::Env { name: String::new(), field: "with.dsn_env" }),
            primary: primary.ok().flatten(),
            role: f.role,
            writable: f.writable,
            max_lag: f.max_lag,
            env: self.env.clone(),
        })
    }
}

struct CheckStep {
    server: Dsn,
    primary: Option<Dsn>,
    auth: StepAuth,
    primary_auth: StepAuth,
    role: Role,
    writable: bool,
    max_lag: Option<HumanDuration>,
    env: EnvLookup,
}

/// One check's result: passing with outputs, or what is missing.
enum Verdict {
    Pass(Outputs),
    Missing(String),
}

impl CheckStep {
    /// Checks once. Fatal errors (a bad DSN, a failed authentication) are errors; anything a later
    /// check may find otherwise is [`Verdict::Missing`].
    async fn check(&self) -> Result<Verdict, StepError> {
        match self.look().await {
            Ok(verdict) => Ok(verdict),
            Err(e) if e.is_retryable() => Ok(Verdict::Missing(e.message)),
            Err(e) => Err(e),
        }
    }

    async fn look(&self) -> Result<Verdict, StepError> {
        let (client, target) = connect_server(&self.server, self.role.as_str(), &self.env, &self.auth).await?;
        let state = status(&client, &target).await?;
        let found = if state.in_recovery { Role::Standby } else { Role::Primary };
        let mut outputs = Outputs::from([
            ("role".into(), found.as_str().to_string()),
            ("in_recovery".into(), state.in_recovery.to_string()),
        ]);
        match (self.role, found) {
            (Role::Primary, Role::Standby) => {
                return Ok(Verdict::Missing(format!("{} is in recovery (a standby), not a primary", target.label)));
            }
            (Role::Standby, Role::Primary) => {
                return Ok(Verdict::Missing(format!(
                    "{} is not in recovery: it is a primary, not a standby",
                    target.label
                )));
            }
            (Role::Primary, _) => {
                if self.writable {
                    write_probe(&client, &target).await?;
                }
            }
            (Role::Standby, _) => {
                let primary = primary_view(self.primary.as_ref(), &self.env, &self.primary_auth).await?;
                let m = measure(&state, &primary);
                outputs.extend(Some(("lag_s".into(), m.lag_s())).filter(|(_, v)| v != "unknown"));
                match (&m.lag, self.max_lag) {
                    (Lag::Unknown(why), Some(max)) => {
                        return Ok(Verdict::Missing(format!(
                            "{target}: its lag is unknown ({why}), so `max_lag` of {max} cannot be checked"
                        )));
                    }
                    (Lag::Seconds(s), Some(max)) if *s > max.0.as_secs_f64() => {
                        return Ok(Verdict::Missing(format!(
                            "{target} lags {}s, more than `max_lag` of {max} ({})",
                            seconds(*s),
                            m.basis
                        )));
                    }
                    _ => {}
                }
            }
        }
        Ok(Verdict::Pass(outputs))
    }
}

#[async_trait]
impl Step for CheckStep {
    async fn preflight(&self, _ctx: &StepContext) -> Vec<crate::step::Finding> {
        super::preflight::server(&self.server, &self.env, &self.auth, "server", true).await
    }

    fn describe(&self) -> String {
        let what = match (self.role, self.writable, self.max_lag) {
            (Role::Primary, true, _) => "a writable primary".to_string(),
            (Role::Primary, false, _) => "a primary".to_string(),
            (Role::Standby, _, Some(max)) => format!("a standby lagging at most {max}"),
            (Role::Standby, _, None) => "a standby".to_string(),
        };
        format!("check that PostgreSQL {} is {what}", self.server.label())
    }

    async fn observe(&self, _ctx: &StepContext) -> Result<Observation, StepError> {
        match self.check().await? {
            Verdict::Pass(outputs) => Ok(Observation::Done(outputs)),
            Verdict::Missing(_) => Ok(Observation::NotDone),
        }
    }

    async fn act(&self, _ctx: &StepContext) -> Result<Receipt, StepError> {
        Ok(Receipt::NONE)
    }

    async fn poll(&self, _ctx: &StepContext, _receipt: &Receipt) -> Progress {
        match self.check().await {
            Ok(Verdict::Pass(_)) => Progress::Done,
            Ok(Verdict::Missing(what)) => Progress::Waiting(what),
            Err(e) => Progress::Failed(e),
        }
    }

    fn poll_interval(&self) -> Duration {
        POLL
    }

    async fn verify(&self, _ctx: &StepContext, _receipt: &Receipt) -> Result<Outputs, StepError> {
        match self.check().await? {
            Verdict::Pass(outputs) => Ok(outputs),
            Verdict::Missing(what) => Err(StepError::retryable(what)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::test_support::{build, build_error};

    #[test]
    fn parameters_are_checked_across_fields() {
        let kind = Check::default();
        assert!(build_error(&kind, "dsn_env: PG").contains("missing field `role`"));
        assert!(build_error(&kind, "dsn_env: PG\nrole: leader").contains("unknown variant"));
        assert!(build_error(&kind, "dsn_env: PG\nrole: standby\nwritable: true").contains("`writable` is for"));
        assert!(build_error(&kind, "dsn_env: PG\nrole: primary\nmax_lag: 1s").contains("for `role: standby`"));
        let e = build_error(&kind, "dsn: postgres://a:hunter2@db/x\nrole: primary");
        assert!(e.contains("`dsn` contains a password") && !e.contains("hunter2"), "{e}");
        let step = build(&kind, "dsn: postgres://drctl@db:5433/postgres\nrole: standby\nmax_lag: 30s");
        assert_eq!(step.describe(), "check that PostgreSQL drctl@db:5433/postgres is a standby lagging at most 30s");
        let step = build(&kind, "dsn_env: PG_PRIMARY\nrole: primary\nwritable: true");
        assert_eq!(step.describe(), "check that PostgreSQL $PG_PRIMARY is a writable primary");
    }

    #[tokio::test]
    async fn a_server_that_does_not_answer_is_waited_for_and_a_missing_variable_is_fatal() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let kind = Check::default();
        let step = build(&kind, &format!("dsn: postgres://drctl@127.0.0.1:{port}/postgres\nrole: primary"));
        let ctx = crate::steps::test_support::ctx();
        assert_eq!(step.observe(&ctx).await.unwrap(), Observation::NotDone);
        let Progress::Waiting(waiting) = step.poll(&ctx, &Receipt::NONE).await else { panic!("not waiting") };
        assert!(waiting.contains("cannot connect to primary drctl@127.0.0.1"), "{waiting}");
        assert!(step.verify(&ctx, &Receipt::NONE).await.unwrap_err().is_retryable());

        let step = build(&kind, "dsn_env: DRCTL_TEST_SURELY_UNSET_PG\nrole: primary");
        let e = step.observe(&ctx).await.unwrap_err();
        assert!(!e.is_retryable() && e.message.contains("DRCTL_TEST_SURELY_UNSET_PG"), "{e}");
    }
}

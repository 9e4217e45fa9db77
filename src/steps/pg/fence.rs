//! `pg.fence`: a self-managed PostgreSQL primary that is being replaced stops accepting writes, so
//! clients that still reach it (cached DNS, a partition that hides it from the DR side) cannot
//! write data that the promoted database will never have (split brain).
//!
//! Observation connects to the old primary: a standby, or a server whose new sessions start
//! read-only (`default_transaction_read_only` is on), is fenced already and the step is done.
//! Acting sets `default_transaction_read_only = on` with `ALTER SYSTEM` (kept in
//! `postgresql.auto.conf`, so a restart keeps the fence), reloads the configuration
//! (`pg_reload_conf()`), and terminates the open sessions of the application role (`app_role`), so
//! its connection pools reconnect into read-only sessions. Waiting and verifying open a new session
//! and try a write that must fail as read-only.
//!
//! A dead primary needs no fence: with `required: false`, a server that cannot be reached (a refused
//! connection, a timeout) ends the step successfully with `unreachable: true` and `fenced: false` in
//! the outputs, which the journal keeps as evidence. With `required: true` (the default) the engine
//! retries and the step fails. A server that answers but refuses (authentication, permissions) always
//! fails the step.
//!
//! The fence binds clients that do not override the default themselves (a session may still `SET
//! default_transaction_read_only = off`): the application's ordinary writes. Superusers are not
//! locked out, so an operator can still repair or unfence (`ALTER SYSTEM RESET
//! default_transaction_read_only; SELECT pg_reload_conf()`); rebuilding the server as a standby of
//! the new primary, as a failback does, undoes it too.
//!
//! Outputs: `fenced` and `unreachable` (`true`/`false`), `terminated_sessions` (sessions of
//! `app_role` this step terminated; absent when it did not act).

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

use super::errors::chain;
use super::{Dsn, EnvLookup, StepAuth, Target, connect_server, dsn_from, pg_error, process_env, status};
use crate::step::{
    BuildContext, Observation, OutputSpec, Outputs, Progress, Receipt, Step, StepContext, StepError, TypedStep,
};

/// The `pg.fence` step type.
pub struct Fence {
    env: EnvLookup,
}

impl Default for Fence {
    fn default() -> Self {
        Fence { env: process_env() }
    }
}

/// `with:` of a `pg.fence` step (exactly one of `dsn_env` and `dsn`).
#[derive(Deserialize, JsonSchema)]
#[serde(try_from = "FenceFields")]
pub struct FenceParams(FenceFields);

/// The fields of [`FenceParams`], before checks across fields.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FenceFields {
    /// The environment variable holding the old primary's connection string (a superuser, or a
    /// role allowed to `ALTER SYSTEM` and to terminate the application's sessions).
    #[serde(default)]
    pub dsn_env: Option<String>,
    /// The old primary's connection URL without a password (see `dsn_env`).
    #[serde(default)]
    pub dsn: Option<String>,
    /// The application's database role, whose open sessions are terminated.
    pub app_role: String,
    /// Whether the step fails when the old primary cannot be reached (default true). `false` for a
    /// best-effort fence: a dead primary needs none.
    #[serde(default = "yes")]
    pub required: bool,
}

fn yes() -> bool {
    true
}

impl TryFrom<FenceFields> for FenceParams {
    type Error = String;
    fn try_from(f: FenceFields) -> Result<Self, String> {
        dsn_from(f.dsn.clone(), f.dsn_env.clone(), ("with.dsn", "with.dsn_env"), true)?;
        if f.app_role.trim().is_empty() {
            return Err("`app_role` is empty: name the application's database role".into());
        }
        Ok(FenceParams(f))
    }
}

impl TypedStep for Fence {
    type Params = FenceParams;
    const NAME: &'static str = "pg.fence";
    const SUMMARY: &'static str = "Fences a self-managed PostgreSQL primary: new sessions start read-only \
                                   (ALTER SYSTEM default_transaction_read_only, pg_reload_conf) and the \
                                   application role's sessions are terminated; verified with a write that must \
                                   fail. `required: false` goes on when the server cannot be reached.";
    const OUTPUTS: &'static [OutputSpec] = &[
        OutputSpec::boolean(
            "fenced",
            "`true` when the server now refuses the application's writes; `false` when it was unreachable.",
        ),
        OutputSpec::boolean(
            "unreachable",
            "`true` when the server could not be reached and `required: false` let the run go on.",
        ),
        OutputSpec::integer(
            "terminated_sessions",
            "How many of `app_role`'s sessions were terminated (absent when none were needed).",
        )
        .optional(),
    ];
    const DOCS: crate::step::StepDocs = crate::step::StepDocs {
        description: "Stops a self-managed PostgreSQL primary from accepting the application's writes before the \
            DR database is promoted, so no write lands on both sides (split brain). It first observes: a server \
            already read-only or in recovery is fenced already. Otherwise it sets `default_transaction_read_only` \
            with `ALTER SYSTEM` and `pg_reload_conf()`, terminates the open sessions of `app_role` (new sessions \
            start read-only), and verifies with a write that must fail. With `required: false`, a server that cannot \
            be reached (it is down: a dead primary needs no fence) lets the run go on, and `unreachable: true` is \
            journaled as evidence.",
        example: r#"
dsn_env: OLD_PRIMARY_ADMIN_DSN
app_role: portfolio
required: false
"#,
        failure: "A server that answers but refuses (authentication, permissions) always fails the step. A server \
            that cannot be reached fails it too unless `required: false`. A write that still commits after the fence \
            fails the step: the primary is not fenced.",
    };

    fn build(&self, params: FenceParams, _context: &BuildContext) -> Box<dyn Step> {
        let f = params.0;
        // Checked in `try_from`.
        let dsn = dsn_from(f.dsn, f.dsn_env, ("with.dsn", "with.dsn_env"), true).ok().flatten();
        Box::new(FenceStep {
            dsn: dsn.unwrap_or(Dsn::Env { name: String::new(), field: "with.dsn_env" }),
            app_role: f.app_role,
            required: f.required,
            env: self.env.clone(),
        })
    }
}

struct FenceStep {
    dsn: Dsn,
    app_role: String,
    required: bool,
    env: EnvLookup,
}

fn outputs(fenced: bool, unreachable: bool, terminated: Option<i64>) -> Outputs {
    let mut outputs =
        Outputs::from([("fenced".into(), fenced.to_string()), ("unreachable".into(), unreachable.to_string())]);
    outputs.extend(terminated.map(|n| ("terminated_sessions".into(), n.to_string())));
    outputs
}

/// Whether a new session on the server refuses writes: `Ok(true)` when fenced (read-only or in
/// recovery), `Ok(false)` when it committed a write.
async fn refuses_writes(client: &Client, target: &Target) -> Result<bool, StepError> {
    let probe = "BEGIN; CREATE TEMP TABLE drctl_fence_probe (x int) ON COMMIT DROP; COMMIT";
    match client.batch_execute(probe).await {
        Ok(()) => Ok(false),
        Err(e)
            if e.code().is_some_and(|c| {
                *c == SqlState::READ_ONLY_SQL_TRANSACTION || *c == SqlState::OBJECT_NOT_IN_PREREQUISITE_STATE
            }) =>
        {
            Ok(true)
        }
        Err(e) => Err(pg_error(&e, "try a write on", target)),
    }
}

impl FenceStep {
    async fn connect(&self) -> Result<(Client, Target), StepError> {
        // The old primary is fenced as its DSN authenticates (a superuser); IAM tokens are for the app.
        connect_server(&self.dsn, "old primary", &self.env, &StepAuth::Dsn).await
    }
}

#[async_trait]
impl Step for FenceStep {
    async fn preflight(&self, _ctx: &StepContext) -> Vec<crate::step::Finding> {
        super::preflight::server(&self.dsn, &self.env, &StepAuth::Dsn, "old primary", self.required).await
    }

    fn describe(&self) -> String {
        let best_effort = if self.required { "" } else { " (best effort: skipped when unreachable)" };
        format!(
            "fence PostgreSQL {}: new sessions read-only, sessions of role {} terminated{best_effort}",
            self.dsn.label(),
            self.app_role
        )
    }

    async fn observe(&self, _ctx: &StepContext) -> Result<Observation, StepError> {
        let (client, target) = match self.connect().await {
            Ok(connected) => connected,
            Err(e) if e.is_retryable() && !self.required => {
                tracing::warn!("the old primary cannot be reached, so it is not fenced (required: false): {e}");
                return Ok(Observation::Done(outputs(false, true, None)));
            }
            Err(e) => return Err(e),
        };
        if status(&client, &target).await?.in_recovery {
            return Ok(Observation::Done(outputs(true, false, None)));
        }
        let read_only = client
            .query_one("SELECT current_setting('default_transaction_read_only') = 'on'", &[])
            .await
            .map_err(|e| pg_error(&e, "read the settings of", &target))?;
        match read_only.get::<_, bool>(0) {
            true => Ok(Observation::Done(outputs(true, false, None))),
            false => Ok(Observation::NotDone),
        }
    }

    async fn act(&self, _ctx: &StepContext) -> Result<Receipt, StepError> {
        let (client, target) = self.connect().await?;
        let fail = |e: tokio_postgres::Error| pg_error(&e, "fence", &target);
        // ALTER SYSTEM refuses to run inside a transaction block: one statement per call.
        client.batch_execute("ALTER SYSTEM SET default_transaction_read_only = on").await.map_err(fail)?;
        client.batch_execute("SELECT pg_reload_conf()").await.map_err(fail)?;
        let row = client
            .query_one(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE usename = $1 AND pid <> pg_backend_pid()",
                &[&self.app_role],
            )
            .await
            .map_err(|e| {
                StepError::retryable(format!("cannot terminate the sessions of {}: {}", self.app_role, chain(&e)))
            })?;
        // The receipt: how many sessions this step terminated.
        Ok(Receipt::of(&row.get::<_, i64>(0)))
    }

    async fn poll(&self, _ctx: &StepContext, _receipt: &Receipt) -> Progress {
        let (client, target) = match self.connect().await {
            Ok(connected) => connected,
            Err(e) => return Progress::Failed(e),
        };
        match refuses_writes(&client, &target).await {
            Ok(true) => Progress::Done,
            Ok(false) => Progress::Waiting(format!("{target} to refuse writes after the configuration reload")),
            Err(e) => Progress::Failed(e),
        }
    }

    fn poll_interval(&self) -> std::time::Duration {
        std::time::Duration::from_millis(100)
    }

    async fn verify(&self, _ctx: &StepContext, receipt: &Receipt) -> Result<Outputs, StepError> {
        let terminated: i64 = receipt.read()?;
        let (client, target) = self.connect().await?;
        match refuses_writes(&client, &target).await? {
            true => Ok(outputs(true, false, Some(terminated))),
            false => Err(StepError::retryable(format!("{target} still commits writes after the fence"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::test_support::{build, build_error};

    #[test]
    fn parameters_name_the_server_and_the_app_role() {
        let kind = Fence::default();
        assert!(build_error(&kind, "app_role: app").contains("set `dsn_env`"));
        let e = build_error(&kind, "dsn: postgres://drctl:pw@db/x\napp_role: app");
        assert!(e.contains("contains a password"), "{e}");
        assert!(build_error(&kind, "dsn_env: PG").contains("app_role"));
        assert!(build_error(&kind, "dsn_env: PG\napp_role: ' '").contains("`app_role` is empty"));
        let step = build(&kind, "dsn: postgres://drctl@10.0.0.5:5432/postgres\napp_role: portfolio\nrequired: false");
        assert_eq!(
            step.describe(),
            "fence PostgreSQL drctl@10.0.0.5:5432/postgres: new sessions read-only, sessions of role portfolio \
             terminated (best effort: skipped when unreachable)"
        );
    }
}

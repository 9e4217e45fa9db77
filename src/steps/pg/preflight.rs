//! What the PostgreSQL steps' `preflight` checks, read-only: the connection string's variable is
//! set, the server answers, and for a promotion that the standby is in recovery, receives WAL from a
//! primary (a WAL receiver is running) and lags no more than the limit, measured as the promotion
//! measures it ([`super::lag`]).

use std::time::Duration;

use super::{Dsn, EnvLookup, Lag, StepAuth, connect_server, measure, primary_view, seconds, status};
use crate::step::{Finding, StepError};

/// The check name and fix for a server that cannot be reached.
fn unreachable(error: &StepError, role: &str) -> Finding {
    let fix = if error.message.contains("is not set") {
        "export the variable (the connection string) in the environment that runs drctl".to_string()
    } else {
        format!("make the {role} reachable from where drctl runs, or fix its connection string")
    };
    let check = if error.message.contains("is not set") { "env_set" } else { "connect" };
    Finding::problem(check, error.message.clone(), fix)
}

/// A server the step only connects to (`pg.check`, `pg.fence`): it answers. With `required` false
/// an unreachable server is only a warning (the step tolerates it).
pub(super) async fn server(
    dsn: &Dsn,
    env: &EnvLookup,
    auth: &StepAuth,
    role: &'static str,
    required: bool,
) -> Vec<Finding> {
    match connect_server(dsn, role, env, auth).await {
        Ok((_, target)) => vec![Finding::ok("connect", format!("{target} answers"))],
        Err(e) if !required && !e.message.contains("is not set") => vec![Finding::warning(
            "connect",
            format!("{} (the step tolerates this: `required: false`)", e.message),
            format!("make the {role} reachable if it is meant to be fenced"),
        )],
        Err(e) => vec![unreachable(&e, role)],
    }
}

/// `pg.promote`: the standby answers, is in recovery, streams from a primary, and its lag is
/// within `max` (`what` names the limit: "the plan's RPO (5m)").
pub(super) async fn standby(
    standby: &Dsn,
    primary: Option<&Dsn>,
    env: &EnvLookup,
    auth: (&StepAuth, &StepAuth),
    max: Duration,
    what: &str,
) -> Vec<Finding> {
    let (client, target) = match connect_server(standby, "standby", env, auth.0).await {
        Ok(pair) => pair,
        Err(e) => return vec![unreachable(&e, "standby")],
    };
    let mut findings = vec![Finding::ok("connect", format!("{target} answers"))];
    let state = match status(&client, &target).await {
        Ok(state) => state,
        Err(e) => {
            findings.push(Finding::problem("replica_state", e.message, "grant the role pg_monitor, or fix the DSN"));
            return findings;
        }
    };
    if !state.in_recovery {
        findings.push(Finding::ok(
            "replica_state",
            format!("{target} is already a primary: the promotion would find its effect in place"),
        ));
        return findings;
    }
    let receiver = client.query_opt("SELECT status FROM pg_stat_wal_receiver", &[]).await;
    findings.push(match receiver {
        Ok(Some(row)) => {
            Finding::ok("replica_streaming", format!("{target} receives WAL ({})", row.get::<_, String>(0)))
        }
        Ok(None) => Finding::problem(
            "replica_streaming",
            format!("{target} is in recovery but receives no WAL: no WAL receiver runs, so replication is cut"),
            "restore replication (the standby's primary_conninfo, the network, the primary's replication slot) \
             before a failover needs it",
        ),
        Err(e) => Finding::warning(
            "replica_streaming",
            format!("cannot read pg_stat_wal_receiver on {target}: {e}"),
            "grant the role pg_monitor",
        ),
    });
    let primary = match primary_view(primary, env, auth.1).await {
        Ok(view) => view,
        Err(e) => {
            findings.push(unreachable(&e, "primary"));
            return findings;
        }
    };
    let m = measure(&state, &primary);
    findings.push(match m.lag {
        Lag::Seconds(s) if s <= max.as_secs_f64() => {
            Finding::ok("replica_lag", format!("{target} lags {}s, within {what}", seconds(s))).with_lag(s)
        }
        Lag::Seconds(s) => Finding::problem(
            "replica_lag",
            format!("{target} lags {}s, more than {what} ({}): a promotion now would be refused", seconds(s), m.basis),
            "find why the standby falls behind (replication cut, network, replay conflicts) and let it catch up",
        )
        .with_lag(s),
        Lag::Unknown(why) => Finding::problem(
            "replica_lag",
            format!("the lag of {target} is unknown ({why}): a promotion now would be refused"),
            "make sure replication runs and the primary is named (`primary_dsn_env`)",
        ),
    });
    findings
}

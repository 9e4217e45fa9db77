//! The replication state of a standby and the lag a promotion would lose (see the module docs of
//! [`super`]).

use tokio_postgres::Client;

use super::auth::StepAuth;
use super::dsn::{Dsn, EnvLookup, Target, connect_server};
use super::errors::pg_error;
use crate::step::StepError;

/// A WAL position (`16/B374D848`) as a number.
pub(crate) fn parse_lsn(text: &str) -> Option<u64> {
    let (high, low) = text.split_once('/')?;
    Some((u64::from_str_radix(high, 16).ok()? << 32) | u64::from_str_radix(low, 16).ok()?)
}

/// What a server says of its replication state.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Status {
    pub in_recovery: bool,
    /// `pg_last_wal_receive_lsn()` (standby; `None` when nothing was streamed since it started).
    pub receive_lsn: Option<String>,
    /// `pg_last_wal_replay_lsn()` (standby).
    pub replay_lsn: Option<String>,
    /// WAL received but not replayed, in bytes (standby; 0 when unknown).
    pub replay_delay_bytes: u64,
    /// Seconds since the last replayed transaction committed on the primary (standby).
    pub last_replay_age_s: Option<f64>,
}

/// Reads [`Status`] in one query.
pub(crate) async fn status(client: &Client, target: &Target) -> Result<Status, StepError> {
    let row = client
        .query_one(
            "SELECT pg_is_in_recovery(), pg_last_wal_receive_lsn()::text, pg_last_wal_replay_lsn()::text, \
             greatest(coalesce(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), 0), 0)::float8, \
             extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp())::float8",
            &[],
        )
        .await
        .map_err(|e| pg_error(&e, "read the replication state of", target))?;
    let delay: f64 = row.get(3);
    Ok(Status {
        in_recovery: row.get(0),
        receive_lsn: row.get(1),
        replay_lsn: row.get(2),
        replay_delay_bytes: delay.max(0.0) as u64,
        last_replay_age_s: row.get::<_, Option<f64>>(4).map(|age| age.max(0.0)),
    })
}

/// What the primary said, if anything.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PrimaryView {
    /// No primary named.
    NotNamed,
    /// It did not answer as a primary: why.
    Unreachable(String),
    /// Its `pg_current_wal_lsn()`.
    At(String),
}

/// Asks the primary for its WAL position; any failure to get one is [`PrimaryView::Unreachable`],
/// except a fatal error (bad DSN, authentication), which the operator must fix.
pub(crate) async fn primary_view(
    primary: Option<&Dsn>,
    env: &EnvLookup,
    auth: &StepAuth,
) -> Result<PrimaryView, StepError> {
    let Some(dsn) = primary else { return Ok(PrimaryView::NotNamed) };
    let (client, target) = match connect_server(dsn, "primary", env, auth).await {
        Ok(pair) => pair,
        Err(e) if e.is_retryable() => return Ok(PrimaryView::Unreachable(e.message)),
        Err(e) => return Err(e),
    };
    let row = client
        .query_one(
            "SELECT pg_is_in_recovery(), CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END",
            &[],
        )
        .await;
    match row {
        Ok(row) if row.get::<_, bool>(0) => {
            Ok(PrimaryView::Unreachable(format!("{target} is in recovery itself, not a primary")))
        }
        Ok(row) => Ok(PrimaryView::At(row.get::<_, Option<String>>(1).unwrap_or_default())),
        Err(e) => {
            let error = pg_error(&e, "read the WAL position of", &target);
            if error.is_retryable() { Ok(PrimaryView::Unreachable(error.message)) } else { Err(error) }
        }
    }
}

/// The data a promotion would lose, as time (see the module docs).
pub(crate) use crate::steps::lag_gate::{Lag, seconds};

/// The lag and how it was found, for outputs and messages.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Measurement {
    pub lag: Lag,
    pub replay_delay_bytes: u64,
    /// How the lag was found, for messages: "the primary is ahead at 0/3000060; ...".
    pub basis: String,
}

impl Measurement {
    /// `lag_s`: seconds, or `unknown`.
    pub fn lag_s(&self) -> String {
        match self.lag {
            Lag::Seconds(s) => seconds(s),
            Lag::Unknown(_) => "unknown".into(),
        }
    }
}

/// The lag of a standby whose state is `status`, given what the primary said.
pub(crate) fn measure(status: &Status, primary: &PrimaryView) -> Measurement {
    let replay = status.replay_lsn.as_deref().and_then(parse_lsn);
    let age = status.last_replay_age_s;
    let unreplayed = status.replay_delay_bytes;
    let (behind, basis) = match primary {
        PrimaryView::At(lsn) => {
            let ahead = match (parse_lsn(lsn), replay) {
                (Some(p), Some(r)) => p > r,
                _ => true,
            };
            let replay = status.replay_lsn.as_deref().unwrap_or("nothing");
            if ahead {
                (true, format!("the primary is at {lsn}, ahead of the standby's replay position {replay}"))
            } else {
                (false, format!("the standby has replayed up to the primary's position {lsn}"))
            }
        }
        other => {
            let primary = match other {
                PrimaryView::Unreachable(why) => format!("the primary does not answer ({why})"),
                _ => "no primary is named (`primary_dsn_env`)".to_string(),
            };
            if unreplayed > 0 {
                (true, format!("{primary}; the standby has {unreplayed} bytes of WAL received but not replayed"))
            } else {
                (false, format!("{primary}; the standby has replayed all the WAL it received"))
            }
        }
    };
    let lag = match (behind, age) {
        (false, _) => Lag::Seconds(0.0),
        (true, Some(age)) => Lag::Seconds(age),
        (true, None) => Lag::Unknown(format!("{basis}, and it has replayed no transaction since it started")),
    };
    let basis = match (&lag, age) {
        (Lag::Seconds(_), Some(age)) if behind => {
            format!("{basis}; its last replayed transaction committed {}s ago", seconds(age))
        }
        _ => basis,
    };
    Measurement { lag, replay_delay_bytes: unreplayed, basis }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn standby(replayed: &str, unreplayed: u64, age: Option<f64>) -> Status {
        Status {
            in_recovery: true,
            receive_lsn: Some("0/3000100".into()),
            replay_lsn: Some(replayed.into()),
            replay_delay_bytes: unreplayed,
            last_replay_age_s: age,
        }
    }

    #[test]
    fn the_lag_counts_only_what_the_standby_is_behind() {
        let down = PrimaryView::Unreachable("connection refused".into());
        // Primary down, everything received replayed: nothing known to be lost.
        let m = measure(&standby("0/3000100", 0, Some(40.0)), &down);
        assert_eq!((m.lag.clone(), m.lag_s()), (Lag::Seconds(0.0), "0".into()));
        assert!(m.basis.contains("does not answer (connection refused)"), "{}", m.basis);
        // Primary down, WAL received but not replayed: the age of the last replayed transaction.
        let m = measure(&standby("0/3000000", 256, Some(3.24)), &down);
        assert_eq!((m.lag_s(), m.replay_delay_bytes), ("3.2".into(), 256));
        assert!(m.basis.contains("256 bytes") && m.basis.contains("committed 3.2s ago"), "{}", m.basis);
        // Primary up and ahead.
        let m = measure(&standby("0/3000100", 0, Some(7.0)), &PrimaryView::At("0/3000200".into()));
        assert_eq!(m.lag, Lag::Seconds(7.0));
        // Primary up, replayed up to it.
        let m = measure(&standby("0/3000200", 0, Some(7.0)), &PrimaryView::At("0/3000200".into()));
        assert_eq!(m.lag, Lag::Seconds(0.0));
        // Behind, but nothing replayed since the standby started.
        let m = measure(&standby("0/3000000", 10, None), &PrimaryView::NotNamed);
        assert!(matches!(&m.lag, Lag::Unknown(why) if why.contains("no transaction")), "{m:?}");
        assert_eq!(m.lag_s(), "unknown");
        assert_eq!(parse_lsn("16/B374D848"), Some(0x16_B374_D848));
    }
}

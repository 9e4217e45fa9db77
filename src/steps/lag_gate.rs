//! The RPO gate: whether a promotion may go ahead given how far the database lags, the limit (the
//! step's `max_lag`, else the plan's RPO) and the operator's `--accept-data-loss`. Written once for
//! every step that promotes (`aws.rds.promote_replica`, `aws.rds.global_failover`, `pg.promote`);
//! each measures its lag its own way and asks this module.
//!
//! The policy: a lag within the limit promotes; beyond it, only with `--accept-data-loss` at least
//! as large; an unknown lag only with `--accept-data-loss` (any value). A refusal for a lag beyond
//! the limit is fatal (no retry makes the lag smaller soon enough to be worth an automatic retry)
//! and says how much would be lost and the flag value that accepts it. An unknown lag is refused as
//! retryable: a replica created moments ago (the failback's re-protection) has no `ReplicaLag`
//! datapoint yet, and the step's retries give CloudWatch time to publish one.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::step::StepError;
use crate::steps::HumanDuration;

/// What is known of the data a promotion would lose, as time.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Lag {
    Seconds(f64),
    /// Why it is unknown.
    Unknown(String),
}

/// The lag a promotion may lose without the operator's consent, and how messages name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Limit {
    pub max: Duration,
    pub what: String,
}

impl Limit {
    /// The step's `max_lag` when set, else the plan's RPO.
    pub fn of(max_lag: Option<Duration>, rpo: Duration) -> Limit {
        match max_lag {
            Some(max) => Limit { max, what: format!("`with.max_lag` of {}", HumanDuration(max)) },
            None => Limit { max: rpo, what: format!("the plan's RPO of {}", HumanDuration(rpo)) },
        }
    }
}

/// What the gate measured and let through, as the outputs show it (and the receipt keeps it).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub(crate) struct Assessment {
    /// Seconds, or `unknown`.
    pub lag_s: String,
    /// Seconds (the measured lag), `unknown`, or empty when no loss beyond the limit was accepted.
    pub accepted_s: String,
}

/// What is promoted, for messages: `read replica `app-db``, and behind what it lags.
pub(crate) struct Subject<'a> {
    pub what: &'a str,
    pub behind: &'a str,
    /// How the lag was found, when the step can say (`pg.promote`).
    pub basis: Option<&'a str>,
}

/// Whether to promote, given the lag, the limit and `--accept-data-loss`.
pub(crate) fn decide(
    subject: &Subject,
    lag: &Lag,
    limit: &Limit,
    accept: Option<Duration>,
) -> Result<Assessment, StepError> {
    let Subject { what, behind, .. } = subject;
    let basis = subject.basis.map(|b| format!(" ({b})")).unwrap_or_default();
    match lag {
        Lag::Seconds(s) if *s <= limit.max.as_secs_f64() => {
            Ok(Assessment { lag_s: seconds(*s), accepted_s: String::new() })
        }
        Lag::Seconds(s) => {
            let (lag, limit_what, cover) = (seconds(*s), &limit.what, covering(*s));
            match accept {
                Some(a) if a.as_secs_f64() >= *s => Ok(Assessment { lag_s: lag.clone(), accepted_s: lag }),
                Some(a) => Err(StepError::fatal(format!(
                    "{what} lags {lag}s behind {behind}, more than {limit_what}, and `--accept-data-loss {}` does not \
                     cover it: promoting now would lose up to {lag}s of writes{basis}. Wait for it to catch up, or \
                     resume with `--accept-data-loss {cover}` to accept that loss",
                    HumanDuration(a),
                ))),
                None => Err(StepError::fatal(format!(
                    "{what} lags {lag}s behind {behind}, more than {limit_what}: promoting now would lose up to \
                     {lag}s of writes{basis}. Wait for it to catch up, or resume with `--accept-data-loss {cover}` to \
                     accept that loss"
                ))),
            }
        }
        Lag::Unknown(_) if accept.is_some() => Ok(Assessment { lag_s: "unknown".into(), accepted_s: "unknown".into() }),
        Lag::Unknown(why) => Err(StepError::retryable(format!(
            "the lag of {what} is unknown ({why}), so the data a promotion would lose cannot be checked against {}. \
             Find out why (is replication running?), or accept an unknown loss with `--accept-data-loss <duration>`",
            limit.what
        ))),
    }
}

/// `420` for 420.0, `12.5` for 12.5.
pub(crate) fn seconds(lag: f64) -> String {
    format!("{}", (lag * 10.0).round() / 10.0)
}

/// A value for `--accept-data-loss` that covers `lag`: whole seconds under a minute, else whole minutes.
fn covering(lag: f64) -> String {
    let secs = lag.ceil().max(1.0) as u64;
    if secs < 60 { format!("{secs}s") } else { format!("{}m", secs.div_ceil(60)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPLICA: Subject = Subject { what: "read replica `db`", behind: "its source", basis: None };

    fn limit() -> Limit {
        Limit::of(None, Duration::from_secs(300))
    }

    /// (case, lag, --accept-data-loss, Ok((lag_s, accepted_s)) or the parts of the refusal)
    #[test]
    fn the_rpo_policy() {
        let s = |secs: u64| Some(Duration::from_secs(secs));
        let unknown = || Lag::Unknown("no datapoint".into());
        type Case<'a> = (&'a str, Lag, Option<Duration>, Result<(&'a str, &'a str), Vec<&'a str>>);
        let cases: Vec<Case> = vec![
            ("within the limit", Lag::Seconds(12.0), None, Ok(("12", ""))),
            ("sub-second (Aurora global's RPO lag, read in ms)", Lag::Seconds(0.4), None, Ok(("0.4", ""))),
            ("at the limit", Lag::Seconds(300.0), None, Ok(("300", ""))),
            ("within, with consent given anyway", Lag::Seconds(3.0), s(600), Ok(("3", ""))),
            (
                "beyond, no consent",
                Lag::Seconds(420.0),
                None,
                Err(vec!["lags 420s behind its source", "the plan's RPO of 5m", "`--accept-data-loss 7m`"]),
            ),
            (
                "beyond, consent too small",
                Lag::Seconds(420.5),
                s(300),
                Err(vec!["`--accept-data-loss 5m` does not cover it", "lose up to 420.5s"]),
            ),
            ("beyond, covered", Lag::Seconds(420.0), s(600), Ok(("420", "420"))),
            ("unknown, no consent", unknown(), None, Err(vec!["is unknown (no datapoint)", "--accept-data-loss"])),
            ("unknown, any consent", unknown(), s(1), Ok(("unknown", "unknown"))),
        ];
        for (case, lag, accept, expected) in cases {
            match (decide(&REPLICA, &lag, &limit(), accept), expected) {
                (Ok(a), Ok((lag_s, accepted_s))) => {
                    assert_eq!((a.lag_s.as_str(), a.accepted_s.as_str()), (lag_s, accepted_s), "{case}")
                }
                (Err(e), Err(parts)) => {
                    // A lag beyond the limit is final; an unknown one may be a datapoint not yet published.
                    assert_eq!(e.is_retryable(), case.starts_with("unknown"), "{case}: retryable only when unknown");
                    for part in parts {
                        assert!(e.message.contains(part), "{case}: {part} not in {e}");
                    }
                }
                (got, want) => panic!("{case}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn the_limit_is_max_lag_else_the_rpo_and_the_basis_is_quoted() {
        assert_eq!(Limit::of(Some(Duration::from_secs(30)), Duration::from_secs(300)).what, "`with.max_lag` of 30s");
        let standby =
            Subject { what: "standby db:5432", behind: "its primary", basis: Some("the primary does not answer") };
        let e = decide(&standby, &Lag::Seconds(400.0), &limit(), None).unwrap_err();
        assert!(e.message.contains("of writes (the primary does not answer)."), "{e}");
        assert_eq!((covering(0.2), covering(3.4), covering(61.0)), ("1s".into(), "4s".into(), "2m".into()));
        assert_eq!((seconds(420.0), seconds(12.54)), ("420".into(), "12.5".into()));
    }
}

//! Self-managed PostgreSQL step types: `pg.promote` (promote a streaming standby, refusing to lose
//! more data than the RPO) and `pg.check` (a server is a primary, writable, or a standby within a
//! lag).
//!
//! # Connecting
//! A plan never holds a password. Each server is named by `dsn_env` (an environment variable of
//! the drctl process holding a libpq connection string or URL, password included) or by `dsn` (a
//! URL or `key=value` string *without* a password, e.g. `postgres://drctl@10.0.0.5:5432/postgres`,
//! for trust, peer-less or certificate-free setups). A `dsn` with a password is refused when the plan
//! is checked. Messages name a server by `user@host:port/database` and, for `dsn_env`, the
//! variable's name; any `user:password@` or `password=` that reaches a message is redacted.
//!
//! Connections are plain TCP (or a unix socket): TLS is not compiled in yet, so a DSN with
//! `sslmode=require` fails with a hint. The connect timeout is 5 s unless the DSN sets
//! `connect_timeout`.
//!
//! Errors: a refused connection, a timeout, a server starting up or shutting down, too many
//! connections are retryable; a failed authentication, a permission denied, a missing database or
//! a malformed DSN are fatal, with a hint.
//!
//! # The lag: the data a promotion would lose
//! Measured on the standby, in one query: `pg_last_wal_receive_lsn()` (WAL received),
//! `pg_last_wal_replay_lsn()` (WAL replayed), and `clock_timestamp() -
//! pg_last_xact_replay_timestamp()` (the age of the last transaction the standby replayed, by the
//! standby's clock against the primary's commit timestamp, so clock skew between them counts). When
//! a primary is named (`primary_dsn_env`/`primary_dsn`) and answers as a primary, its
//! `pg_current_wal_lsn()` is read too. Then:
//!
//! - the primary answers and the standby has replayed up to its `pg_current_wal_lsn()`: lag 0;
//! - the primary answers and is ahead of the standby's replay position: lag = the age of the last
//!   replayed transaction;
//! - no primary is named, or it does not answer (or is itself in recovery): lag = the age of the
//!   last replayed transaction if the standby has received WAL it has not replayed yet
//!   (`receive <> replay`), else 0.
//!
//! The age of the last replayed transaction bounds the loss from above: exact when writes are
//! continuous, more than the loss when the primary was idle before it failed. Counting WAL received
//! but not replayed is conservative: PostgreSQL replays what it received before it leaves recovery
//! (a `recovery_min_apply_delay` is cut short by a promotion), so such WAL delays the promotion
//! rather than being lost. What cannot be measured from the standby is WAL the primary never sent:
//! with asynchronous replication, a primary that died may have committed transactions no standby
//! received, even when the lag is 0. When the lag counts but no transaction was replayed since the
//! standby started, the lag is unknown; promoting then needs `--accept-data-loss`.
//!
//! `replay_delay_bytes` is the WAL received but not replayed (`pg_wal_lsn_diff(receive, replay)`,
//! 0 when nothing was received by streaming since the standby started).

mod check;
mod promote;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Config, NoTls};

pub use check::{Check, CheckParams, Role};
pub use promote::{Promote, PromoteParams};

use crate::step::StepError;

/// How long to wait for a connection when the DSN does not say (`connect_timeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a write probe may take before it counts as not accepted (a commit waiting for a
/// synchronous standby that is gone never ends).
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads an environment variable (replaceable in tests).
pub(crate) type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The process environment.
pub(crate) fn process_env() -> EnvLookup {
    Arc::new(|name| std::env::var(name).ok())
}

/// Where a server's connection string comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dsn {
    /// Written in the plan (checked to hold no password); `field` is `with.dsn` or the like.
    Literal { text: String, field: &'static str },
    /// The name of an environment variable of the drctl process; `field` is `with.dsn_env` or the like.
    Env { name: String, field: &'static str },
}

/// `dsn` or `dsn_env` (`prefix` is `""` or `"primary_"`): exactly one when `required`, else at
/// most one; a literal DSN must not hold a password.
pub(crate) fn dsn_from(
    literal: Option<String>,
    env: Option<String>,
    fields: (&'static str, &'static str),
    required: bool,
) -> Result<Option<Dsn>, String> {
    let (literal_field, env_field) = fields;
    let (literal_name, env_name) = (literal_field.trim_start_matches("with."), env_field.trim_start_matches("with."));
    match (literal, env) {
        (Some(_), Some(_)) => Err(format!("set only one of `{literal_name}` and `{env_name}`")),
        (None, None) if required => Err(format!(
            "set `{env_name}` (the name of an environment variable holding the connection string) or \
             `{literal_name}` (a connection URL without a password)"
        )),
        (None, None) => Ok(None),
        (Some(text), None) if has_password(&text) => Err(format!(
            "`{literal_name}` contains a password: a plan must never hold one. Put the connection string in an \
             environment variable and name it with `{env_name}`"
        )),
        (Some(text), None) => Ok(Some(Dsn::Literal { text, field: literal_field })),
        (None, Some(name)) if name.trim().is_empty() => Err(format!("`{env_name}` is empty")),
        (None, Some(name)) => Ok(Some(Dsn::Env { name, field: env_field })),
    }
}

/// Whether a libpq connection string (URL or `key=value` form) holds a password: a
/// `user:password@` in a URL, or a `password` parameter.
pub fn has_password(dsn: &str) -> bool {
    let lower = dsn.to_ascii_lowercase();
    let keyword = lower.match_indices("password").any(|(at, word)| {
        let before = lower[..at].chars().next_back();
        let boundary = before.is_none_or(|c| c.is_whitespace() || c == '?' || c == '&');
        boundary && lower[at + word.len()..].trim_start().starts_with('=')
    });
    keyword || url_userinfo(dsn).is_some_and(|(_, password)| password.is_some_and(|p| !p.is_empty()))
}

/// The user and password of a URL-form DSN (`scheme://user:password@host...`), as written.
fn url_userinfo(dsn: &str) -> Option<(&str, Option<&str>)> {
    let (_, rest) = dsn.split_once("://")?;
    let authority = rest.split(['?', '#']).next().unwrap_or(rest);
    let at = authority.rfind('@')?;
    let userinfo = &authority[..at];
    Some(match userinfo.split_once(':') {
        Some((user, password)) => (user, Some(password)),
        None => (userinfo, None),
    })
}

/// `text` with every `user:password@` of a URL and every `password=value` replaced by `***`.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    // URLs: scheme://user:password@host
    while let Some(at) = rest.find("://") {
        let start = at + 3;
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        let end = tail.find(|c: char| c.is_whitespace() || "'\"`<>".contains(c)).unwrap_or(tail.len());
        let candidate = &tail[..end];
        match candidate.rfind('@') {
            Some(at) if candidate[..at].contains(':') => {
                let user = candidate[..at].split(':').next().unwrap_or_default();
                out.push_str(user);
                out.push_str(":***");
                out.push_str(&candidate[at..]);
            }
            _ => out.push_str(candidate),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    redact_keywords(&out)
}

/// `password=value` (or `password = 'quoted value'`) → `password=***`.
fn redact_keywords(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for (at, word) in lower.match_indices("password") {
        if at < copied {
            continue;
        }
        let after = &text[at + word.len()..];
        let trimmed = after.trim_start();
        let Some(value) = trimmed.strip_prefix('=') else { continue };
        let value = value.trim_start();
        let value_start = text.len() - value.len();
        let value_len = if let Some(quoted) = value.strip_prefix('\'') {
            // A quoted value ends at the next unescaped quote.
            let mut escaped = false;
            let close = quoted.char_indices().find(|&(_, c)| {
                let end = !escaped && c == '\'';
                escaped = !escaped && c == '\\';
                end
            });
            close.map_or(value.len(), |(i, _)| i + 2)
        } else {
            value.find(|c: char| c.is_whitespace() || c == '&' || c == '"').unwrap_or(value.len())
        };
        out.push_str(&text[copied..at + word.len()]);
        out.push_str("=***");
        copied = value_start + value_len;
    }
    out.push_str(&text[copied..]);
    out
}

/// A server connected to, as messages name it: `standby drctl@10.0.0.5:5432/postgres
/// ($PG_STANDBY)`. Never a password.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// `standby`, `primary`, `server`.
    pub role: &'static str,
    /// `user@host:port/database`, plus `($NAME)` for `dsn_env`.
    pub label: String,
    /// The field to fix when the DSN is wrong.
    pub field: &'static str,
    /// The password, if any, to scrub from messages should a library repeat it.
    secret: Option<String>,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.role, self.label)
    }
}

impl Target {
    /// `text` without any password: URL and keyword forms, and this server's password as is.
    pub fn scrub(&self, text: &str) -> String {
        let text = redact(text);
        match &self.secret {
            Some(secret) if secret.len() >= 3 => text.replace(secret.as_str(), "***"),
            _ => text,
        }
    }
}

impl Dsn {
    /// How `describe` names the server: `drctl@10.0.0.5:5432/postgres`, or `$NAME`.
    pub fn label(&self) -> String {
        match self {
            Dsn::Literal { text, .. } => match text.parse::<Config>() {
                Ok(config) => config_label(&config),
                Err(_) => redact(text),
            },
            Dsn::Env { name, .. } => format!("${name}"),
        }
    }

    /// The connection string and the field that gave it.
    fn resolve(&self, env: &EnvLookup) -> Result<(String, &'static str), StepError> {
        match self {
            Dsn::Literal { text, field } => Ok((text.clone(), field)),
            Dsn::Env { name, field } => match env(name) {
                Some(text) if !text.trim().is_empty() => Ok((text, field)),
                _ => Err(StepError::fatal(format!(
                    "the environment variable `{name}` (`{field}`) is not set: export the connection string (a \
                     libpq URL such as postgres://user:password@host:5432/postgres) in it before running drctl"
                ))),
            },
        }
    }
}

/// `user@host:port/database` from a parsed configuration.
fn config_label(config: &Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let host = match host {
                tokio_postgres::config::Host::Tcp(name) => name.clone(),
                tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
            };
            let port = config.get_ports().get(i).or(config.get_ports().first()).copied().unwrap_or(5432);
            format!("{host}:{port}")
        })
        .collect();
    let hosts = if hosts.is_empty() { "localhost:5432".to_string() } else { hosts.join(",") };
    let user = config.get_user().map(|u| format!("{u}@")).unwrap_or_default();
    let database = config.get_dbname().or(config.get_user()).unwrap_or("postgres");
    format!("{user}{hosts}/{database}")
}

/// Connects to the server `dsn` names; `role` says what it should be, for messages.
pub(crate) async fn connect(dsn: &Dsn, role: &'static str, env: &EnvLookup) -> Result<(Client, Target), StepError> {
    let (text, field) = dsn.resolve(env)?;
    let mut config: Config = text.parse().map_err(|e: tokio_postgres::Error| {
        let why = redact(&chain(&e));
        let source = match dsn {
            Dsn::Literal { .. } => format!("`{field}`"),
            Dsn::Env { name, .. } => format!("the connection string in `{name}` (`{field}`)"),
        };
        StepError::fatal(format!(
            "{source} is not a valid libpq connection string: {why}. Write a URL such as \
             postgres://user@host:5432/database, or key=value pairs such as `host=... port=... user=...`"
        ))
    })?;
    let env_name = match dsn {
        Dsn::Env { name, .. } => format!(" (${name})"),
        Dsn::Literal { .. } => String::new(),
    };
    let target = Target {
        role,
        label: format!("{}{env_name}", config_label(&config)),
        field,
        secret: config.get_password().map(|p| String::from_utf8_lossy(p).into_owned()),
    };
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    if config.get_application_name().is_none() {
        config.application_name("drctl");
    }
    let budget = config.get_connect_timeout().copied().unwrap_or(CONNECT_TIMEOUT) + Duration::from_secs(5);
    let connecting = tokio::time::timeout(budget, config.connect(NoTls)).await;
    let (client, connection) = match connecting {
        Ok(Ok(pair)) => pair,
        Ok(Err(e)) => return Err(pg_error(&e, "connect to", &target)),
        Err(_) => {
            return Err(StepError::retryable(format!(
                "cannot connect to {target}: no answer within {}s",
                budget.as_secs()
            )));
        }
    };
    tokio::spawn(async move {
        // Ends when the client is dropped or the server goes away; errors surface on the client.
        let _ = connection.await;
    });
    Ok((client, target))
}

/// The error and its causes, `: `-separated; a server's error as `SEVERITY: message (HINT: ...)`.
fn chain(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut text = format!("{}: {}", db.severity(), db.message());
        if let Some(detail) = db.detail() {
            text.push_str(&format!(" (DETAIL: {detail})"));
        }
        if let Some(hint) = db.hint() {
            text.push_str(&format!(" (HINT: {hint})"));
        }
        return text;
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A step error for `e`, met while trying to `action` (`connect to`, `query`) `target`:
/// retryable when a later attempt may succeed, fatal with a hint when not. No password.
pub(crate) fn pg_error(e: &tokio_postgres::Error, action: &str, target: &Target) -> StepError {
    let what = target.scrub(&chain(e));
    let field = target.field;
    if let Some(code) = e.code() {
        let fatal = |hint: &str| StepError::fatal(format!("cannot {action} {target}: {what}. {hint}"));
        if *code == SqlState::INVALID_PASSWORD || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION {
            return fatal(&format!(
                "Authentication failed: check the user and password of the connection string (`{field}`) and the \
                 server's pg_hba.conf"
            ));
        }
        if *code == SqlState::INSUFFICIENT_PRIVILEGE {
            return fatal(&format!(
                "Permission denied: the user of `{field}` needs more rights (pg_promote needs a superuser or EXECUTE \
                 on pg_promote; the write check needs TEMP on the database)"
            ));
        }
        if *code == SqlState::INVALID_CATALOG_NAME {
            return fatal(&format!("The database does not exist: fix the database name in `{field}`"));
        }
        let transient = code.code().starts_with("08")
            || code.code().starts_with("57P")
            || code.code().starts_with("53")
            || *code == SqlState::T_R_SERIALIZATION_FAILURE
            || *code == SqlState::T_R_DEADLOCK_DETECTED;
        return if transient {
            StepError::retryable(format!("cannot {action} {target}: {what}"))
        } else {
            StepError::fatal(format!("cannot {action} {target}: {what}"))
        };
    }
    let top = e.to_string();
    if top.starts_with("authentication error") {
        return StepError::fatal(format!(
            "cannot {action} {target}: {what}. Authentication failed: check the password in the connection string \
             (`{field}`)"
        ));
    }
    if top.starts_with("invalid configuration") {
        let hint = if what.contains("password missing") {
            format!(
                "The server asks for a password and the connection string has none: put a URL with the password in \
                 an environment variable and name it with `{}`",
                env_field(field)
            )
        } else {
            format!("Fix the connection string (`{field}`)")
        };
        return StepError::fatal(format!("cannot {action} {target}: {what}. {hint}"));
    }
    if top.starts_with("error performing TLS handshake") {
        return StepError::fatal(format!(
            "cannot {action} {target}: {what}. drctl connects without TLS for now: a DSN with sslmode=require or \
             verify-* cannot be honoured"
        ));
    }
    // Connect, I/O, timeout, closed connection: the server may come back.
    StepError::retryable(format!("cannot {action} {target}: {what}"))
}

/// `with.dsn_env` for `with.dsn`, `with.primary_dsn_env` for `with.primary_dsn`.
fn env_field(field: &str) -> String {
    if field.ends_with("_env") { field.to_string() } else { format!("{field}_env") }
}

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
pub(crate) async fn primary_view(primary: Option<&Dsn>, env: &EnvLookup) -> Result<PrimaryView, StepError> {
    let Some(dsn) = primary else { return Ok(PrimaryView::NotNamed) };
    let (client, target) = match connect(dsn, "primary", env).await {
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
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Lag {
    Seconds(f64),
    /// Why it is unknown.
    Unknown(String),
}

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

/// `420` for 420.0, `12.5` for 12.5.
pub(crate) fn seconds(lag: f64) -> String {
    format!("{}", (lag * 10.0).round() / 10.0)
}

/// Proves the server accepts writes and leaves nothing behind: a transaction that takes a
/// transaction id (`txid_current()` fails in recovery) and creates a temporary table dropped at its
/// commit (refused in a read-only session, `default_transaction_read_only`), then commits (which
/// hangs when a synchronous standby is required and gone: bounded by [`WRITE_TIMEOUT`]).
pub(crate) async fn write_probe(client: &Client, target: &Target) -> Result<(), StepError> {
    let probe = client.batch_execute(
        "BEGIN; SELECT txid_current(); CREATE TEMP TABLE drctl_write_probe (x int) ON COMMIT DROP; COMMIT",
    );
    match tokio::time::timeout(WRITE_TIMEOUT, probe).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => {
            let read_only = e.code().is_some_and(|c| {
                *c == SqlState::READ_ONLY_SQL_TRANSACTION || *c == SqlState::OBJECT_NOT_IN_PREREQUISITE_STATE
            });
            if read_only {
                Err(StepError::retryable(format!("{target} does not accept writes: {}", target.scrub(&chain(&e)))))
            } else {
                Err(pg_error(&e, "write to", target))
            }
        }
        Err(_) => Err(StepError::retryable(format!(
            "{target} did not commit a write within {}s (does synchronous_standby_names wait for a standby that is \
             gone?)",
            WRITE_TIMEOUT.as_secs()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_found_in_urls_and_keywords() {
        for dsn in [
            "postgres://drctl:s3cret@10.0.0.5:5432/postgres",
            "postgresql://drctl:p%40ss@db/app?sslmode=disable",
            "postgres://u:pa@ss@host/db",
            "host=db user=drctl password=s3cret",
            "host=db password = 's3 cret'",
            "postgres://drctl@db/app?password=s3cret",
            "postgres://drctl@db/app?sslmode=disable&PASSWORD=s3cret",
        ] {
            assert!(has_password(dsn), "{dsn}");
        }
        for dsn in [
            "postgres://drctl@127.0.0.1:5433/postgres",
            "postgres://drctl:@db/app",
            "postgres://drctl@{{ steps.promote.outputs.endpoint }}:5432/app",
            "host=db user=drctl dbname=password_store",
            "postgres://db/app?passfile=/etc/pgpass",
        ] {
            assert!(!has_password(dsn), "{dsn}");
        }
    }

    #[test]
    fn redaction_hides_passwords_and_keeps_the_rest() {
        assert_eq!(
            redact("cannot connect to postgres://app:hunter2@db:5432/app: refused"),
            "cannot connect to postgres://app:***@db:5432/app: refused"
        );
        assert_eq!(redact("'postgres://app:p@ss@db/x' and http://h/x"), "'postgres://app:***@db/x' and http://h/x");
        assert_eq!(redact("host=db password=hunter2 user=app"), "host=db password=*** user=app");
        assert_eq!(redact("host=db password = 'hun ter\\'2' user=app"), "host=db password=*** user=app");
        assert_eq!(redact("postgres://app@db/x?password=hunter2&sslmode=disable"), {
            "postgres://app@db/x?password=***&sslmode=disable"
        });
        assert_eq!(redact("password authentication failed for user \"app\""), {
            "password authentication failed for user \"app\""
        });
        let target = Target {
            role: "standby",
            label: "app@db:5432/app".into(),
            field: "with.dsn_env",
            secret: Some("hunter2".into()),
        };
        assert_eq!(target.scrub("the server said hunter2"), "the server said ***");
    }

    #[test]
    fn dsn_fields_need_exactly_one_and_no_password() {
        let fields = ("with.dsn", "with.dsn_env");
        assert_eq!(
            dsn_from(None, Some("PG".into()), fields, true).unwrap(),
            Some(Dsn::Env { name: "PG".into(), field: "with.dsn_env" })
        );
        assert!(dsn_from(None, None, fields, true).unwrap_err().contains("set `dsn_env`"));
        assert_eq!(dsn_from(None, None, fields, false).unwrap(), None);
        assert!(dsn_from(Some("x".into()), Some("Y".into()), fields, true).unwrap_err().contains("only one"));
        let e = dsn_from(Some("postgres://a:b@h/d".into()), None, fields, true).unwrap_err();
        assert!(e.contains("`dsn` contains a password") && e.contains("`dsn_env`") && !e.contains("a:b"), "{e}");
    }

    #[test]
    fn labels_name_the_server_without_secrets() {
        let dsn = Dsn::Literal { text: "postgres://drctl@127.0.0.1:5433/postgres".into(), field: "with.dsn" };
        assert_eq!(dsn.label(), "drctl@127.0.0.1:5433/postgres");
        let dsn = Dsn::Literal { text: "host=db user=app".into(), field: "with.dsn" };
        assert_eq!(dsn.label(), "app@db:5432/app");
        assert_eq!(Dsn::Env { name: "PG_DR".into(), field: "with.dsn_env" }.label(), "$PG_DR");
    }

    #[tokio::test]
    async fn an_unset_variable_or_a_bad_dsn_is_fatal_and_quiet() {
        let env: EnvLookup = Arc::new(|name| (name == "BAD").then(|| "postgres://app:hunter2@db:notaport/x".into()));
        let e = connect(&Dsn::Env { name: "MISSING".into(), field: "with.dsn_env" }, "standby", &env).await.err();
        let e = e.expect("an error");
        assert!(!e.is_retryable() && e.message.contains("`MISSING` (`with.dsn_env`) is not set"), "{e}");
        let e = connect(&Dsn::Env { name: "BAD".into(), field: "with.dsn_env" }, "standby", &env).await.err();
        let e = e.expect("an error");
        assert!(!e.is_retryable() && e.message.contains("`BAD`") && !e.message.contains("hunter2"), "{e}");
    }

    #[tokio::test]
    async fn a_refused_connection_is_retryable() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let env: EnvLookup =
            Arc::new(move |_| Some(format!("postgres://app:hunter2@127.0.0.1:{port}/app?connect_timeout=2")));
        let dsn = Dsn::Env { name: "PG".into(), field: "with.dsn_env" };
        let Err(e) = connect(&dsn, "standby", &env).await else { panic!("nothing listens") };
        assert!(e.is_retryable(), "{e}");
        assert!(e.message.contains(&format!("standby app@127.0.0.1:{port}/app ($PG)")), "{e}");
        assert!(!e.message.contains("hunter2"), "{e}");
    }

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

//! Errors of the PostgreSQL client as step errors: retryable or fatal, with a hint, never a password.

use tokio_postgres::error::SqlState;

use super::dsn::Target;
use crate::step::StepError;

/// The error and its causes, `: `-separated; a server's error as `SEVERITY: message (HINT: ...)`.
pub(crate) fn chain(e: &tokio_postgres::Error) -> String {
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
        let without_tls = e.as_db_error().is_some_and(|db| db.message().ends_with("no encryption"));
        if *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION && without_tls {
            return fatal(&format!(
                "The server requires TLS for this connection (its pg_hba.conf has no entry without encryption), and \
                 the connection string (`{field}`) has sslmode=disable or the server does not offer TLS: set \
                 sslmode=verify-full with sslrootcert (or require)"
            ));
        }
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
        // Certificates and TLS settings do not fix themselves (see `tls::explain` for the details).
        return StepError::fatal(format!("cannot {action} {target}: {what}. Check the TLS settings of `{field}`"));
    }
    // Connect, I/O, timeout, closed connection: the server may come back.
    StepError::retryable(format!("cannot {action} {target}: {what}"))
}

/// `with.dsn_env` for `with.dsn`, `with.primary_dsn_env` for `with.primary_dsn`.
fn env_field(field: &str) -> String {
    if field.ends_with("_env") { field.to_string() } else { format!("{field}_env") }
}

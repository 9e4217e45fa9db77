//! The write probe: does a server accept writes?

use std::time::Duration;

use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

use super::dsn::Target;
use super::errors::{chain, pg_error};
use crate::step::StepError;

/// How long a write probe may take before it counts as not accepted (a commit waiting for a
/// synchronous standby that is gone never ends).
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

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

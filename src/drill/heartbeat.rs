//! Heartbeats: the drill's stand-in for the application's writes, and what makes its RPO a
//! measurement. A writer commits a numbered row to the primary database every interval and keeps
//! the last one the database acknowledged; after the failover, the last row present on the new
//! primary says how much committed data the failover lost.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::task::JoinHandle;
use tokio_postgres::Client;

use crate::steps::pg::errors::chain;
use crate::steps::pg::{Auth, connect as pg_connect};

/// The table the heartbeats go to; the drill drops it at the end.
pub const TABLE: &str = "drctl_drill_heartbeat";

/// One committed heartbeat: its number and the primary's commit time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Beat {
    pub seq: u64,
    pub at: SystemTime,
}

/// What the writer saw.
#[derive(Debug, Default, Clone)]
pub struct Written {
    /// Heartbeats the primary acknowledged.
    pub committed: u64,
    pub last: Option<Beat>,
    /// Why the writer stopped early (the primary went away).
    pub stopped_by: Option<String>,
}

/// A running heartbeat writer.
pub struct Writer {
    task: JoinHandle<()>,
    written: Arc<Mutex<Written>>,
}

/// A connection as the plan's steps make them: the DSN's TLS settings (`sslmode`, `sslrootcert`)
/// and its own authentication.
async fn connect(dsn: &str) -> Result<Client, String> {
    pg_connect(dsn, &Auth::Dsn).await.map_err(|e| format!("cannot connect for heartbeats: {}", e.message))
}

impl Writer {
    /// Creates the heartbeat table afresh on the primary at `dsn` and starts committing a row every
    /// `interval`.
    pub async fn start(dsn: &str, interval: Duration) -> Result<Writer, String> {
        let client = connect(dsn).await?;
        let create = format!(
            "DROP TABLE IF EXISTS {TABLE}; CREATE TABLE {TABLE} (seq bigint PRIMARY KEY, at timestamptz NOT NULL)"
        );
        client.batch_execute(&create).await.map_err(|e| format!("cannot create {TABLE}: {}", chain(&e)))?;
        let written = Arc::new(Mutex::new(Written::default()));
        let task = tokio::spawn(write_loop(client, interval, written.clone()));
        Ok(Writer { task, written })
    }

    /// What has been written so far.
    pub fn written(&self) -> Written {
        self.written.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Stops writing and returns what was written.
    pub fn stop(self) -> Written {
        self.task.abort();
        self.written()
    }
}

async fn write_loop(client: Client, interval: Duration, written: Arc<Mutex<Written>>) {
    let insert = format!(
        "INSERT INTO {TABLE} (seq, at) VALUES ($1, clock_timestamp()) RETURNING extract(epoch FROM at)::float8"
    );
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for seq in 1_i64.. {
        ticker.tick().await;
        match client.query_one(&insert, &[&seq]).await {
            Ok(row) => {
                let at = epoch(row.get::<_, f64>(0));
                let mut w = written.lock().unwrap_or_else(|e| e.into_inner());
                w.committed += 1;
                w.last = Some(Beat { seq: seq as u64, at });
            }
            Err(e) => {
                written.lock().unwrap_or_else(|e| e.into_inner()).stopped_by = Some(e.to_string());
                return;
            }
        }
    }
}

fn epoch(seconds: f64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs_f64(seconds.max(0.0))
}

/// The last heartbeat present on the database at `dsn` (the new primary after a failover).
pub async fn last_present(dsn: &str) -> Result<Option<Beat>, String> {
    let client = connect(dsn).await?;
    let query = format!("SELECT seq, extract(epoch FROM at)::float8 FROM {TABLE} ORDER BY seq DESC LIMIT 1");
    let rows = client.query(&query, &[]).await.map_err(|e| format!("cannot read {TABLE}: {}", chain(&e)))?;
    Ok(rows.first().map(|row| Beat { seq: row.get::<_, i64>(0) as u64, at: epoch(row.get::<_, f64>(1)) }))
}

/// Stops the standby at `dsn` from receiving WAL (its `primary_conninfo` emptied and reloaded), so
/// writes committed on the primary from now on never reach it. The environment's repair and restore
/// rebuild the standby, which undoes this.
pub async fn cut_replication(dsn: &str) -> Result<(), String> {
    let client = connect(dsn).await?;
    let cut = |e: tokio_postgres::Error| format!("cannot cut the standby off from its primary: {}", chain(&e));
    // ALTER SYSTEM refuses to run in a transaction, which a multi-statement batch is.
    client.batch_execute("ALTER SYSTEM SET primary_conninfo = ''").await.map_err(cut)?;
    client.batch_execute("SELECT pg_reload_conf()").await.map_err(cut).map(drop)
}

/// Drops the heartbeat table on the database at `dsn` (the primary, after the drill).
pub async fn drop_table(dsn: &str) -> Result<(), String> {
    let client = connect(dsn).await?;
    client
        .batch_execute(&format!("DROP TABLE IF EXISTS {TABLE}"))
        .await
        .map_err(|e| format!("cannot drop {TABLE}: {}", chain(&e)))
}

/// The data a failover lost: heartbeats committed on the old primary and missing on the new, and
/// the time between the last committed and the last present (0 when nothing was lost; `None` when
/// no heartbeat reached the new primary at all, so the loss has no lower end).
pub fn loss(last_committed: Option<Beat>, last_present: Option<Beat>) -> (u64, Option<Duration>) {
    match (last_committed, last_present) {
        (Some(committed), Some(present)) if committed.seq > present.seq => {
            (committed.seq - present.seq, Some(committed.at.duration_since(present.at).unwrap_or_default()))
        }
        (Some(committed), None) => (committed.seq, None),
        _ => (0, Some(Duration::ZERO)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn beat(seq: u64, ms: u64) -> Option<Beat> {
        Some(Beat { seq, at: SystemTime::UNIX_EPOCH + Duration::from_millis(ms) })
    }

    #[test]
    fn loss_is_what_was_committed_and_not_replicated() {
        assert_eq!(loss(beat(50, 5000), beat(50, 5000)), (0, Some(Duration::ZERO)));
        assert_eq!(loss(beat(50, 5000), beat(47, 4700)), (3, Some(Duration::from_millis(300))));
        assert_eq!(loss(beat(3, 300), None), (3, None));
        assert_eq!(loss(None, None), (0, Some(Duration::ZERO)));
    }
}

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
//! TLS follows the DSN's `sslmode` and `sslrootcert` as psql does (default `prefer`; see
//! [`tls`]). `auth: iam` authenticates with an RDS IAM token instead of a password (see
//! [`connect`]); `region` (and `primary_region` for the primary) name the region the token is
//! signed for when the host is not an RDS endpoint name. The connect timeout is 5 s unless the DSN
//! sets `connect_timeout`.
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

mod auth;
mod check;
pub mod connect;
mod dsn;
pub(crate) mod errors;
mod fence;
mod lag;
mod preflight;
mod probe;
mod promote;
pub mod tls;
mod verifiers;

pub use auth::AuthKind;
pub use check::{Check, CheckParams, Role};
pub use connect::{Auth, IamAuth, connect};
pub use dsn::{Dsn, has_password, literal_password, redact};
pub use fence::{Fence, FenceParams};
pub use promote::{Promote, PromoteParams};

pub(crate) use auth::{StepAuth, check_auth};
pub(crate) use dsn::{EnvLookup, Target, check_dsn_fields, connect_server, dsn_from, process_env};
pub(crate) use errors::pg_error;
pub(crate) use lag::{Lag, measure, primary_view, seconds, status};
pub(crate) use probe::write_probe;

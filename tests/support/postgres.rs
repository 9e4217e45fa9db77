//! Real PostgreSQL servers for integration tests (Debian's `postgresql` package, which
//! `localstack/setup.sh` installs): a primary made by `initdb`, streaming standbys made by
//! `pg_basebackup -R -X stream`, each on a free 127.0.0.1 port with its data directory and unix
//! socket inside the test's directory, stopped with `pg_ctl stop -m immediate` when dropped.
//!
//! Binaries: `DRCTL_PG_BINDIR`, else the newest `/usr/lib/postgresql/<version>/bin`, else
//! `pg_config --bindir`.
//!
//! # Running as root
//! `initdb` and `postgres` refuse to run as root. When the tests run as root (containers, CI), every
//! server binary (`initdb`, `pg_ctl`, `pg_basebackup`) runs as the unprivileged OS user
//! `DRCTL_PG_OS_USER` (default `postgres`, which Debian's package creates) through
//! `runuser -u USER --`, and the data and socket directories are created by the test and chowned to
//! that user. Test directories live under the system temp dir, whose parents are world-traversable.
//! `psql` is a client and runs as whoever runs the tests: it connects over TCP as the database
//! superuser `drctl` (created by `initdb -U drctl`), whatever the OS user is.
//!
//! Authentication is `trust` on 127.0.0.1 and the socket, except for the role [`PASSWORD_USER`],
//! which must give its password (scram-sha-256): tests of password handling use it.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// The database superuser every server has; trusted on 127.0.0.1.
pub const SUPERUSER: &str = "drctl";
/// A role that must authenticate with a password (see [`Postgres::create_password_user`]).
pub const PASSWORD_USER: &str = "drctl_pw";

/// A PostgreSQL server this test started.
pub struct Postgres {
    /// The data directory.
    pub data: PathBuf,
    /// Where the server's unix socket lives.
    pub socket_dir: PathBuf,
    pub port: u16,
    /// The server's log (`pg_ctl -l`).
    pub log: PathBuf,
}

/// Where the server binaries are.
pub fn bindir() -> PathBuf {
    static BINDIR: OnceLock<PathBuf> = OnceLock::new();
    BINDIR
        .get_or_init(|| {
            if let Some(dir) = std::env::var_os("DRCTL_PG_BINDIR") {
                return PathBuf::from(dir);
            }
            let newest = std::fs::read_dir("/usr/lib/postgresql").ok().and_then(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter_map(|e| {
                        let version: u32 = e.file_name().to_str()?.parse().ok()?;
                        let bin = e.path().join("bin");
                        bin.join("initdb").exists().then_some((version, bin))
                    })
                    .max_by_key(|(version, _)| *version)
                    .map(|(_, bin)| bin)
            });
            if let Some(bin) = newest {
                return bin;
            }
            let from_pg_config = Command::new("pg_config")
                .arg("--bindir")
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
                .filter(|bin| bin.join("initdb").exists());
            from_pg_config.unwrap_or_else(|| {
                panic!(
                    "PostgreSQL's server binaries (initdb, pg_ctl, pg_basebackup) are missing: \
                     localstack/setup.sh installs postgresql (or set DRCTL_PG_BINDIR)"
                )
            })
        })
        .clone()
}

/// The OS user the server binaries run as when the tests run as root; `None` when not root.
fn server_user() -> Option<&'static str> {
    static USER: OnceLock<Option<String>> = OnceLock::new();
    USER.get_or_init(|| {
        let uid = Command::new("id").arg("-u").output().expect("run id -u");
        if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
            return None;
        }
        let user = std::env::var("DRCTL_PG_OS_USER").unwrap_or_else(|_| "postgres".into());
        let exists = Command::new("id").arg("-u").arg(&user).output().is_ok_and(|o| o.status.success());
        assert!(
            exists,
            "the tests run as root, which initdb refuses, and there is no OS user `{user}` to run PostgreSQL as: \
             localstack/setup.sh installs postgresql (Debian's package creates `postgres`), or set DRCTL_PG_OS_USER"
        );
        Some(user)
    })
    .as_deref()
}

/// Makes `path` (a fresh directory) owned by the server's OS user, when that is not us.
fn hand_over(path: &Path) {
    std::fs::create_dir_all(path).expect("create a directory for PostgreSQL");
    if let Some(user) = server_user() {
        let out = Command::new("chown").arg("-R").arg(format!("{user}:")).arg(path).output().expect("run chown");
        assert!(out.status.success(), "chown {}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    }
}

/// A command running server binary `name`, as the server's OS user.
fn server_command(name: &str, cwd: &Path) -> Command {
    let program = bindir().join(name);
    let mut command = match server_user() {
        Some(user) => {
            let mut c = Command::new("runuser");
            c.args(["-u", user, "--"]).arg(program);
            c
        }
        None => Command::new(program),
    };
    command.current_dir(cwd).stdin(Stdio::null());
    for var in ["PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGPASSWORD", "PGSERVICE", "PGOPTIONS"] {
        command.env_remove(var);
    }
    command
}

fn output(mut command: Command, what: &str) -> Output {
    command.output().unwrap_or_else(|e| panic!("cannot run {what}: {e}"))
}

#[track_caller]
fn check(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({})\n--- stdout:\n{}\n--- stderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0").local_addr().expect("an address").port()
}

const CONFIG: &str = "\n# drctl tests\n\
    listen_addresses = '127.0.0.1'\n\
    wal_level = replica\n\
    max_wal_senders = 5\n\
    hot_standby = on\n\
    fsync = off\n\
    full_page_writes = off\n\
    shared_buffers = 16MB\n\
    max_connections = 30\n\
    wal_receiver_status_interval = 1s\n\
    logging_collector = off\n";

fn hba() -> String {
    format!(
        "local all all trust\n\
         host all {PASSWORD_USER} 127.0.0.1/32 scram-sha-256\n\
         host all all 127.0.0.1/32 trust\n\
         local replication all trust\n\
         host replication all 127.0.0.1/32 trust\n"
    )
}

impl Postgres {
    /// `initdb` in `<dir>/<name>` and a server started on a free port.
    pub fn primary(dir: &Path) -> Postgres {
        Self::primary_named(dir, "primary")
    }

    /// [`Postgres::primary`] with the data directory `<dir>/<name>`.
    pub fn primary_named(dir: &Path, name: &str) -> Postgres {
        let base = dir.join(format!("pg-{name}"));
        hand_over(&base);
        let data = base.join("data");
        let mut initdb = server_command("initdb", &base);
        initdb.arg("-D").arg(&data).args(["-U", SUPERUSER, "-A", "trust", "-E", "UTF8", "--locale=C", "-N"]);
        check(&output(initdb, "initdb"), "initdb");
        append(&data.join("postgresql.conf"), CONFIG);
        std::fs::write(data.join("pg_hba.conf"), hba()).expect("write pg_hba.conf");
        let mut server = Postgres { socket_dir: base.join("socket"), log: base.join("server.log"), data, port: 0 };
        hand_over(&server.socket_dir);
        server.start();
        server
    }

    /// A streaming standby of `primary` in `<dir>/<name>`: `pg_basebackup -R -X stream`, then
    /// started; with `recovery_min_apply_delay` when `apply_delay` is given (a lagging replica).
    /// Returns once it streams from the primary.
    pub fn standby_of(primary: &Postgres, dir: &Path, apply_delay: Option<Duration>) -> Postgres {
        Self::standby_named(primary, dir, "standby", apply_delay)
    }

    /// [`Postgres::standby_of`] with the data directory `<dir>/<name>`.
    pub fn standby_named(primary: &Postgres, dir: &Path, name: &str, apply_delay: Option<Duration>) -> Postgres {
        let base = dir.join(format!("pg-{name}"));
        hand_over(&base);
        let data = base.join("data");
        let mut backup = server_command("pg_basebackup", &base);
        backup
            .arg("-D")
            .arg(&data)
            .args(["-R", "-X", "stream", "-c", "fast", "-N", "-h", "127.0.0.1", "-U", SUPERUSER])
            .args(["-p", &primary.port.to_string()]);
        check(&output(backup, "pg_basebackup"), "pg_basebackup");
        if let Some(delay) = apply_delay {
            append(&data.join("postgresql.conf"), &format!("recovery_min_apply_delay = '{}ms'\n", delay.as_millis()));
        }
        let mut server = Postgres { socket_dir: base.join("socket"), log: base.join("server.log"), data, port: 0 };
        hand_over(&server.socket_dir);
        server.start();
        let streaming = super::wait_until(Duration::from_secs(20), || {
            server.try_query("SELECT status FROM pg_stat_wal_receiver").is_ok_and(|s| s == "streaming")
        });
        assert!(streaming, "the standby does not stream from the primary\n{}", server.log_text());
        server
    }

    /// Starts the server on a free port (another, if a test elsewhere took it in between).
    fn start(&mut self) {
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port();
            let options = format!("-p {port} -k {} -c listen_addresses=127.0.0.1", self.socket_dir.display());
            let mut start = server_command("pg_ctl", self.data.parent().unwrap());
            start.arg("-D").arg(&self.data).arg("-l").arg(&self.log).args(["-o", &options, "-w", "-t", "30", "start"]);
            let out = output(start, "pg_ctl start");
            if out.status.success() {
                self.port = port;
                return;
            }
            last = format!("{}{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr), {
                self.log_text()
            });
        }
        panic!("PostgreSQL in {} did not start:\n{last}", self.data.display());
    }

    /// `postgres://drctl@127.0.0.1:PORT/postgres`: no password (trust).
    pub fn dsn(&self) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/postgres", self.port)
    }

    /// A DSN for [`PASSWORD_USER`] with `password` (right or wrong).
    pub fn dsn_with_password(&self, password: &str) -> String {
        format!("postgres://{PASSWORD_USER}:{password}@127.0.0.1:{}/postgres", self.port)
    }

    /// Creates [`PASSWORD_USER`] with `password` (scram-sha-256, required from 127.0.0.1).
    pub fn create_password_user(&self, password: &str) {
        self.query(&format!("CREATE ROLE {PASSWORD_USER} LOGIN PASSWORD '{password}'"));
    }

    /// Runs `sql` with psql as the superuser; the unaligned, tuples-only output, trimmed.
    #[track_caller]
    pub fn query(&self, sql: &str) -> String {
        self.try_query(sql).unwrap_or_else(|e| panic!("{sql}: {e}\n--- server log:\n{}", self.log_text()))
    }

    /// [`Postgres::query`] returning psql's error instead of panicking.
    pub fn try_query(&self, sql: &str) -> Result<String, String> {
        let mut psql = Command::new(bindir().join("psql"));
        psql.args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-U", SUPERUSER])
            .args(["-p", &self.port.to_string(), "-d", "postgres", "-c", sql])
            .env("PGCONNECT_TIMEOUT", "5")
            .env_remove("PGPASSWORD")
            .env_remove("PGSERVICE")
            .stdin(Stdio::null());
        let out = psql.output().map_err(|e| format!("cannot run psql: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
        }
    }

    /// Whether the server is a standby (in recovery).
    pub fn in_recovery(&self) -> bool {
        self.query("SELECT pg_is_in_recovery()") == "t"
    }

    /// The server's current WAL position as a primary.
    pub fn current_lsn(&self) -> String {
        self.query("SELECT pg_current_wal_lsn()")
    }

    /// Sets `recovery_min_apply_delay` on this running standby (`ALTER SYSTEM`, reload) and waits
    /// until it is in force: WAL received from then on is replayed only `delay` after its commit.
    pub fn set_apply_delay(&self, delay: Duration) {
        let ms = delay.as_millis();
        self.query(&format!("ALTER SYSTEM SET recovery_min_apply_delay = '{ms}ms'"));
        self.query("SELECT pg_reload_conf()");
        let set = super::wait_until(Duration::from_secs(10), || {
            self.try_query("SELECT setting FROM pg_settings WHERE name = 'recovery_min_apply_delay'")
                .is_ok_and(|s| s == ms.to_string())
        });
        assert!(set, "recovery_min_apply_delay did not become {ms}ms\n{}", self.log_text());
    }

    /// Waits until this standby has replayed everything `primary` has written so far.
    #[track_caller]
    pub fn wait_for_replay_of(&self, primary: &Postgres) {
        let lsn = primary.current_lsn();
        let sql = format!("SELECT pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn");
        let caught_up = super::wait_until(Duration::from_secs(20), || self.try_query(&sql).is_ok_and(|s| s == "t"));
        assert!(caught_up, "the standby never replayed up to {lsn}\n{}", self.log_text());
    }

    /// Waits until this standby has received (not necessarily replayed) everything `primary` has
    /// written so far.
    #[track_caller]
    pub fn wait_for_receipt_of(&self, primary: &Postgres) {
        let lsn = primary.current_lsn();
        let sql = format!("SELECT pg_last_wal_receive_lsn() >= '{lsn}'::pg_lsn");
        let received = super::wait_until(Duration::from_secs(20), || self.try_query(&sql).is_ok_and(|s| s == "t"));
        assert!(received, "the standby never received up to {lsn}\n{}", self.log_text());
    }

    /// Stops the server at once, as a crash would (`pg_ctl stop -m immediate`): the "primary
    /// database stops hard" fault. Safe to call when already stopped.
    pub fn stop_hard(&self) {
        let mut stop = server_command("pg_ctl", self.data.parent().unwrap());
        stop.arg("-D").arg(&self.data).args(["-m", "immediate", "-w", "-t", "20", "stop"]);
        stop.stdout(Stdio::null()).stderr(Stdio::null());
        let stopped = stop.status().is_ok_and(|s| s.success());
        if !stopped && let Some(pid) = self.pid() {
            // pg_ctl could not stop it (or is missing): kill the postmaster by its PID.
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        }
    }

    /// The postmaster's PID from `postmaster.pid`, while it runs.
    pub fn pid(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.data.join("postmaster.pid")).ok()?;
        text.lines().next()?.trim().parse().ok()
    }

    /// The server's log, for failure messages.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_else(|e| format!("(no log at {}: {e})", self.log.display()))
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if self.pid().is_some() {
            self.stop_hard();
        }
    }
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new().append(true).open(path).expect("open the configuration");
    file.write_all(text.as_bytes()).expect("append to the configuration");
}

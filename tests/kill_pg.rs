//! SIGKILL trials for `pg.promote` and `pg.fence` against real PostgreSQL servers, reached through a
//! [`DelayProxy`] that holds the statement the kill should land in (or its answer): killed inside
//! `act` and after the receipt, resumed, and compared with an uninterrupted run of the same plan
//! on a server of its own.

// Real time is the point here: tests wait on real servers and processes, not a run's clock.
#![allow(clippy::disallowed_methods)]

mod support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Map, Value};
use support::kill::{DelayProxy, Hold, KillPoint, Trial, assert_same_outputs, kill_when_and_resume, outputs};
use support::postgres::{Postgres, bindir};
use support::{TestDir, drctl, plan, run, wait_until};

/// Long enough for the kill to land under load; the resumes do not go through the held proxy.
const HOLD: Duration = Duration::from_secs(5);

fn command(dir: &TestDir, dsn: &str, args: &[&str]) -> Command {
    let mut command = drctl(dir);
    command.env("PG_DSN", dsn).args(args).arg("--yes");
    command
}

/// Runs `yaml` against `dsn` uninterrupted in a directory of its own; the step's outputs.
fn uninterrupted(yaml: &str, dsn: &str, step: &str) -> Map<String, Value> {
    let dir = TestDir::new("kill-pg-fresh");
    let file = dir.write_plan("plan.yaml", yaml);
    let out = run(command(&dir, dsn, &["failover", "--plan", file.to_str().unwrap()]));
    out.expect_code(0, &dir.journals_text());
    outputs(&dir.only_journal(), step)
}

/// Runs `yaml` against `server` through a proxy with `holds`, killed at `point` once `world`
/// holds, and resumed (straight to the server).
fn proxied_trial(
    label: &str,
    yaml: &str,
    server: &Postgres,
    holds: Vec<Hold>,
    point: KillPoint,
    world: impl Fn(&DelayProxy) -> bool,
) -> (Trial, DelayProxy) {
    let dir = TestDir::new(label);
    let file = dir.write_plan("plan.yaml", yaml);
    let proxy = DelayProxy::start(&format!("127.0.0.1:{}", server.port), holds);
    let proxied = server.dsn().replace(&server.port.to_string(), &proxy.port.to_string());
    let failover = command(&dir, &proxied, &["failover", "--plan", file.to_str().unwrap()]);
    let resume = |run_id: &str| command(&dir, &server.dsn(), &["resume", run_id, "--break-lock"]);
    let trial = kill_when_and_resume(&dir, failover, point, || world(&proxy), resume);
    trial.check_journal();
    (trial, proxy)
}

#[test]
fn a_promotion_killed_inside_or_after_act_promotes_once() {
    let dir = TestDir::new("kill-pg-promote");
    let primary = Postgres::primary(dir.path());
    primary.query("CREATE TABLE orders (id int PRIMARY KEY)");
    let standbys: Vec<Postgres> =
        ["fresh", "acting", "acted"].iter().map(|n| Postgres::standby_named(&primary, dir.path(), n, None)).collect();
    primary.query("INSERT INTO orders VALUES (1)");
    standbys.iter().for_each(|s| s.wait_for_replay_of(&primary));
    let steps = format!(
        "  - id: promote\n    type: pg.promote\n    with:\n      dsn_env: PG_DSN\n      primary_dsn: {}\n",
        primary.dsn()
    );
    let yaml = plan("pg", &steps);
    let fresh = uninterrupted(&yaml, &standbys[0].dsn(), "promote");
    // lag_s is a measurement of time; promoted_lsn a WAL position of another server.
    let skip = ["lag_s", "promoted_lsn"];

    // After the receipt: the first poll of the promoted server is held, the kill lands meanwhile.
    let acted = &standbys[2];
    let holds = vec![Hold::request("pg_is_in_recovery", HOLD).only_match(3)];
    let (trial, proxy) = proxied_trial(
        "kill-pg-promote-acted",
        &yaml,
        acted,
        holds,
        KillPoint::AfterActed("promote"),
        |p: &DelayProxy| p.matched(0) == 3,
    );
    assert_eq!(trial.outputs("promote")["timeline"], "2", "promoted once\n{}{}", trial.show(), proxy.log());
    assert!(!acted.in_recovery());
    assert_same_outputs(&trial.outputs("promote"), &fresh, &skip, &trial.show());

    // Inside act: pg_promote has run and the server left recovery, its answer is held.
    let acting = &standbys[1];
    let holds = vec![Hold::answer("pg_promote", HOLD).chunks_later(1)];
    let promoted = |proxy: &DelayProxy| proxy.matched(0) == 1 && !acting.in_recovery();
    let (trial, _) =
        proxied_trial("kill-pg-promote-acting", &yaml, acting, holds, KillPoint::AfterActing("promote"), promoted);
    let resumed = trial.outputs("promote");
    assert_eq!(resumed["timeline"], "2", "promoted once\n{}", trial.show());
    assert!(!trial.acted_again(), "observe found it promoted\n{}", trial.show());
    // The receipt (the lag it was promoted with) died with the process before it was journaled,
    // and pg.promote leaves no marker: the resumed step reports the server as found, without the
    // lag. The outputs read from the server are an uninterrupted run's.
    assert_eq!(resumed.get("lag_s"), None, "{}", trial.show());
    assert_eq!(resumed.get("replay_delay_bytes"), None, "{}", trial.show());
    let read_from_the_server: Map<String, Value> = fresh
        .iter()
        .filter(|(k, _)| !["lag_s", "replay_delay_bytes"].contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert_same_outputs(&resumed, &read_from_the_server, &["promoted_lsn"], &trial.show());
}

/// A session of role `app` on `server`, open until killed.
fn app_session(server: &Postgres) -> Child {
    let session = Command::new(bindir().join("psql"))
        .args(["-X", "-q", "-h", "127.0.0.1", "-U", "app", "-d", "postgres", "-p", &server.port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("psql starts");
    let open = || server.query("SELECT count(*) FROM pg_stat_activity WHERE usename = 'app'") == "1";
    assert!(wait_until(Duration::from_secs(10), open), "the app's session did not open");
    session
}

/// Three primaries (one per world), each with role `app` and one open session of it.
fn fence_worlds(dir: &TestDir) -> Vec<(Postgres, Child)> {
    ["fresh", "acting", "acted"]
        .iter()
        .map(|name| {
            let server = Postgres::primary_named(dir.path(), name);
            server.query("CREATE ROLE app LOGIN");
            let session = app_session(&server);
            (server, session)
        })
        .collect()
}

fn refuses_writes(server: &Postgres) -> bool {
    server.try_query("CREATE TABLE after_the_fence (x int)").is_err_and(|e| e.contains("read-only"))
}

#[test]
fn a_fence_killed_inside_or_after_act_fences_once() {
    let dir = TestDir::new("kill-pg-fence");
    let mut worlds = fence_worlds(&dir);
    let steps = "  - id: fence\n    type: pg.fence\n    with: {dsn_env: PG_DSN, app_role: app}\n";
    let yaml = plan("fence", steps);
    let fresh = uninterrupted(&yaml, &worlds[0].0.dsn(), "fence");
    assert_eq!(fresh["terminated_sessions"], "1", "{fresh:?}");

    // After the receipt: the first write probe of the poll is held, the kill lands meanwhile.
    let acted = &worlds[2].0;
    let holds = vec![Hold::request("drctl_fence_probe", HOLD).only_match(1)];
    let (trial, proxy) =
        proxied_trial("kill-pg-fence-acted", &yaml, acted, holds, KillPoint::AfterActed("fence"), |p: &DelayProxy| {
            p.matched(0) == 1
        });
    assert!(proxy.matched(0) >= 1, "{}", proxy.log());
    assert!(refuses_writes(acted));
    assert_same_outputs(&trial.outputs("fence"), &fresh, &[], &trial.show());

    // Inside act: the configuration is reloaded and the app's session terminated; that answer is held.
    let acting = &worlds[1].0;
    let holds = vec![Hold::answer("pg_terminate_backend", HOLD).chunks_later(1)];
    let terminated =
        |_: &DelayProxy| acting.query("SELECT count(*) FROM pg_stat_activity WHERE usename = 'app'") == "0";
    let (trial, _) =
        proxied_trial("kill-pg-fence-acting", &yaml, acting, holds, KillPoint::AfterActing("fence"), terminated);
    assert!(refuses_writes(acting));
    assert!(!trial.acted_again(), "observe found it fenced\n{}", trial.show());
    // The receipt (how many sessions it terminated) died with the process before it was
    // journaled; pg.fence leaves no marker, so the resumed step reports the fence as found,
    // without terminated_sessions. The outputs read from the server are an uninterrupted run's.
    let resumed = trial.outputs("fence");
    assert_eq!(resumed.get("terminated_sessions"), None, "{}", trial.show());
    let mut read_from_the_server = fresh.clone();
    read_from_the_server.remove("terminated_sessions");
    assert_same_outputs(&resumed, &read_from_the_server, &[], &trial.show());
    for (_, session) in &mut worlds {
        let _ = session.kill();
        let _ = session.wait();
    }
}

//! The drill environment with TLS on (`DRCTL_ENV_PG_TLS=1`): both PostgreSQL servers run with
//! `ssl = on` and a certificate from the environment's own CA, pg_hba.conf lets drctl in over TCP
//! only with TLS, and the DSN variables carry `sslmode=verify-full` and that CA. The TLS drill
//! (drills/us-west-2-tls.yaml) passes: the plan's pg.promote and pg.check and the drill's
//! heartbeats all connected with verified TLS, since any other connection would have been refused.

mod support;

use support::{TestDir, run};

#[test]
fn the_tls_drill_passes_with_every_database_connection_verified() {
    let dir = TestDir::new("drill-tls");
    let mut command = support::drill_script(&dir, "us-west-2-tls");
    command.env("DRCTL_ENV_PG_TLS", "1");
    let out = run(command);
    out.expect_code(0, "the TLS drill passes");
    let all = out.all();
    assert!(all.contains("PostgreSQL with TLS (DRCTL_ENV_PG_TLS=1): drctl connects with sslmode=verify-full"), "{out}");
    assert!(all.contains("drill us-west-2-tls (plan us-west-2-pg, fault database_stop): PASSED"), "{out}");
}

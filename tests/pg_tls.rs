//! PostgreSQL over TLS against a real server (`ssl = on`, `hostssl`-only pg_hba.conf) whose
//! certificate comes from a CA this test makes with openssl: libpq's sslmodes, what each refuses
//! and says, RDS IAM tokens as passwords over TLS, and the `pg.check` step with a verify-full DSN.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use drctl::steps::pg::{Auth, IamAuth, connect};
use support::postgres::{Postgres, SUPERUSER};
use support::{TestDir, drctl, plan, run};

/// The server certificate's names: not `localhost`, which the wrong-name test connects to.
const SERVER_NAMES: &str = "DNS:db.drctl.test,IP:127.0.0.1";

/// Runs openssl with `args` in `dir`.
#[track_caller]
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl (Debian's package) runs");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A CA (`<name>.crt`, `<name>.key`) in `dir`.
fn make_ca(dir: &Path, name: &str) -> PathBuf {
    let subject = format!("/CN=drctl test {name}");
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &subject,
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.crt"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    dir.join(format!("{name}.crt"))
}

/// `server.crt` and `server.key` in `dir`, signed by CA `ca`, for [`SERVER_NAMES`].
fn make_server_cert(dir: &Path, ca: &str) {
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            "/CN=db.drctl.test",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    );
    std::fs::write(dir.join("server.ext"), format!("subjectAltName={SERVER_NAMES}\nextendedKeyUsage=serverAuth\n"))
        .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            &format!("{ca}.crt"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.crt",
        ],
    );
}

/// A primary with `ssl = on`, its certificate signed by a CA of the test, and pg_hba.conf
/// accepting TCP connections only over TLS (`hostssl`); `iam_user` authenticates with a password
/// (scram-sha-256), everyone else is trusted.
struct TlsServer {
    pg: Postgres,
    ca: PathBuf,
    other_ca: PathBuf,
}

impl TlsServer {
    fn start(dir: &TestDir) -> TlsServer {
        let certs = dir.path().join("certs");
        std::fs::create_dir_all(&certs).unwrap();
        let ca = make_ca(&certs, "ca");
        let other_ca = make_ca(&certs, "other-ca");
        make_server_cert(&certs, "ca");
        let pg = Postgres::primary(dir.path());
        // The server reads its key as its own OS user (see support::postgres on running as root).
        let data_owner = std::fs::metadata(&pg.data).unwrap();
        for file in ["server.crt", "server.key"] {
            let to = pg.data.join(file);
            std::fs::copy(certs.join(file), &to).unwrap();
            use std::os::unix::fs::{MetadataExt, PermissionsExt};
            std::os::unix::fs::chown(&to, Some(data_owner.uid()), Some(data_owner.gid())).unwrap();
            std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        std::fs::write(
            pg.data.join("pg_hba.conf"),
            "local all all trust\n\
             hostssl all iam_user 127.0.0.1/32 scram-sha-256\n\
             hostssl all all 127.0.0.1/32 trust\n\
             local replication all trust\n",
        )
        .unwrap();
        pg.query("ALTER SYSTEM SET ssl = on");
        pg.query("SELECT pg_reload_conf()");
        let on = support::wait_until(Duration::from_secs(10), || pg.try_query("SHOW ssl").is_ok_and(|s| s == "on"));
        assert!(on, "ssl did not turn on\n{}", pg.log_text());
        TlsServer { pg, ca, other_ca }
    }

    fn dsn(&self, host: &str, params: &str) -> String {
        format!("postgres://{SUPERUSER}@{host}:{}/postgres?connect_timeout=5&{params}", self.pg.port)
    }
}

/// Whether the connection `client` came over is encrypted, as the server sees it.
async fn encrypted(client: &tokio_postgres::Client) -> bool {
    let row = client.query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[]).await.unwrap();
    row.get(0)
}

#[tokio::test]
async fn each_sslmode_verifies_what_libpq_does_and_says_what_failed() {
    let dir = TestDir::new("pg-tls-modes");
    let server = TlsServer::start(&dir);
    let ca = server.ca.display().to_string();
    let other = server.other_ca.display().to_string();

    // verify-full against the right CA, by the IP address the certificate names.
    let dsn = server.dsn("127.0.0.1", &format!("sslmode=verify-full&sslrootcert={ca}"));
    let client = connect(&dsn, &Auth::Dsn).await.unwrap_or_else(|e| panic!("{e}\n{}", server.pg.log_text()));
    assert!(encrypted(&client).await);

    // A CA that did not sign it.
    let dsn = server.dsn("127.0.0.1", &format!("sslmode=verify-full&sslrootcert={other}"));
    let e = connect(&dsn, &Auth::Dsn).await.expect_err("a certificate of another CA is refused");
    assert!(!e.is_retryable(), "{e}");
    for part in ["127.0.0.1", "sslmode=verify-full", "the CA check", "not signed by a CA in sslrootcert", &other] {
        assert!(e.message.contains(part), "{part}: {e}");
    }
    // verify-ca checks the CA too.
    let dsn = server.dsn("127.0.0.1", &format!("sslmode=verify-ca&sslrootcert={other}"));
    assert!(connect(&dsn, &Auth::Dsn).await.expect_err("refused").message.contains("not signed by a CA"));

    // A name the certificate does not carry: verify-full refuses, verify-ca (the CA only) passes.
    let dsn = server.dsn("localhost", &format!("sslmode=verify-full&sslrootcert={ca}"));
    let e = connect(&dsn, &Auth::Dsn).await.expect_err("a wrong host name is refused");
    assert!(!e.is_retryable(), "{e}");
    for part in ["the host name check", "not valid for the host name `localhost`", "db.drctl.test", "verify-ca"] {
        assert!(e.message.contains(part), "{part}: {e}");
    }
    let dsn = server.dsn("localhost", &format!("sslmode=verify-ca&sslrootcert={ca}"));
    assert!(encrypted(&connect(&dsn, &Auth::Dsn).await.unwrap()).await);

    // require and the default (prefer) encrypt without checking the certificate.
    for params in ["sslmode=require", "application_name=drctl-test"] {
        let client = connect(&server.dsn("localhost", params), &Auth::Dsn).await.unwrap();
        assert!(encrypted(&client).await, "{params}");
    }

    // disable against a server that takes TLS connections only.
    let e = connect(&server.dsn("127.0.0.1", "sslmode=disable"), &Auth::Dsn).await.expect_err("refused");
    assert!(!e.is_retryable(), "{e}");
    assert!(e.message.contains("requires TLS") && e.message.contains("sslmode=disable"), "{e}");
}

/// The RDS IAM token is the password, sent over TLS: with fixed credentials and a fixed time the
/// token is known in advance, so a role whose password is that token lets the connection in, and
/// a token signed a second later does not.
#[tokio::test]
async fn an_iam_token_is_the_password_over_tls() {
    let dir = TestDir::new("pg-tls-iam");
    let server = TlsServer::start(&dir);
    let credentials = aws_sdk_rds::config::Credentials::new("AKIDEXAMPLE", "drctl-test-secret", None, None, "test");
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000);
    let token =
        drctl::aws::rds_auth_token("127.0.0.1", server.pg.port, "iam_user", "us-west-2", &credentials, at).unwrap();
    server.pg.query(&format!("CREATE ROLE iam_user LOGIN PASSWORD '{token}'"));
    let iam = |at| {
        Auth::Iam(IamAuth {
            region: Some("us-west-2".into()),
            credentials: aws_sdk_rds::config::SharedCredentialsProvider::new(credentials.clone()),
            at: Some(at),
        })
    };
    let ca = server.ca.display().to_string();
    let dsn = format!("postgres://iam_user@127.0.0.1:{}/postgres?sslmode=verify-full&sslrootcert={ca}", server.pg.port);
    let client = connect(&dsn, &iam(at)).await.unwrap_or_else(|e| panic!("{e}\n{}", server.pg.log_text()));
    assert!(encrypted(&client).await);
    let user: String = client.query_one("SELECT current_user::text", &[]).await.unwrap().get(0);
    assert_eq!(user, "iam_user");

    let e = connect(&dsn, &iam(at + Duration::from_secs(1))).await.expect_err("another token is refused");
    assert!(e.message.contains("Authentication failed") && !e.message.contains("X-Amz-Signature"), "{e}");
    let plain = format!("postgres://iam_user@127.0.0.1:{}/postgres?sslmode=disable", server.pg.port);
    let e = connect(&plain, &iam(at)).await.expect_err("IAM without TLS is refused");
    assert!(e.message.contains("sslmode=disable") && e.message.contains("IAM"), "{e}");
}

/// `pg.check` through the CLI with a verify-full DSN from the environment, then with the wrong CA:
/// the run fails at once (no retry can fix a certificate), saying why.
#[test]
fn the_check_step_connects_with_verify_full_and_fails_fast_on_the_wrong_ca() {
    let dir = TestDir::new("pg-tls-step");
    let server = TlsServer::start(&dir);
    let steps = "  - id: primary\n    type: pg.check\n    with:\n      dsn_env: PG_TLS_DSN\n      role: primary\n      \
                 writable: true\n";
    let file = dir.write_plan("tls.yaml", &plan("pg-tls", steps));
    let failover = |dsn: String| {
        let mut command = drctl(&dir);
        // The second failover of the plan is a new run on purpose (with another CA).
        command.args(["failover", "--plan", file.to_str().unwrap(), "--yes", "--new-run"]).env("PG_TLS_DSN", dsn);
        run(command)
    };
    let ca = server.ca.display().to_string();
    let out = failover(server.dsn("127.0.0.1", &format!("sslmode=verify-full&sslrootcert={ca}")));
    out.expect_code(0, "verify-full with the right CA");

    let other = server.other_ca.display().to_string();
    let out = failover(server.dsn("127.0.0.1", &format!("sslmode=verify-full&sslrootcert={other}")));
    assert_ne!(out.code(), Some(0), "{out}");
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(all.contains("not signed by a CA in sslrootcert") && all.contains("$PG_TLS_DSN"), "{out}");
}

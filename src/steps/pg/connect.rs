//! Opening a PostgreSQL connection: every connection drctl makes (the `pg.*` steps, the drill's
//! heartbeats and client traffic) goes through [`connect`] or [`open`], so TLS (libpq's
//! `sslmode`, see [`super::tls`]) and authentication ([`Auth`]) are the same everywhere.
//!
//! # RDS IAM authentication
//! With [`Auth::Iam`] the password is an RDS authentication token (see
//! [`crate::aws::rds_auth_token`]) for the DSN's user, host and port, signed with the standard AWS
//! credential chain for the database's region and valid 15 minutes; a fresh one is made for every
//! connection. The token is a credential, so IAM authentication insists on TLS: `sslmode=disable`
//! is refused and an unwritten `sslmode` (libpq's `prefer`, which would fall back to plain TCP)
//! means `require`. A DSN with a password of its own is refused (which one would count?).

use std::time::{Duration, SystemTime};

use tokio_postgres::config::Host;
use tokio_postgres::{Client, Config};

use super::dsn::{Target, config_label, redact};
use super::errors::{chain, pg_error};
use super::tls::{self, SslMode, TlsSettings};
use crate::step::StepError;

/// How long to wait for a connection when the DSN does not say (`connect_timeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How a connection authenticates.
#[derive(Clone, Default)]
pub enum Auth {
    /// As the connection string says: its password, or none (trust, peer).
    #[default]
    Dsn,
    /// An RDS IAM authentication token as the password.
    Iam(IamAuth),
}

/// What an RDS IAM authentication token is made from.
#[derive(Clone)]
pub struct IamAuth {
    /// The database's AWS region; `None`: read from an RDS endpoint's host name
    /// (`NAME.ID.REGION.rds.amazonaws.com`).
    pub region: Option<String>,
    /// The credentials that sign the token (the standard chain: environment, profile, SSO, role).
    pub credentials: aws_sdk_rds::config::SharedCredentialsProvider,
    /// When the token is signed; `None`: now (tests fix it).
    pub at: Option<SystemTime>,
}

/// The region of an RDS endpoint (`db.abc123.us-west-2.rds.amazonaws.com`, and the `.com.cn`
/// partition), if `host` is one.
pub fn rds_region(host: &str) -> Option<&str> {
    let host = host.trim_end_matches('.');
    let base = host.strip_suffix(".rds.amazonaws.com").or_else(|| host.strip_suffix(".rds.amazonaws.com.cn"))?;
    let region = base.rsplit('.').next()?;
    (region.contains('-') && base.contains('.')).then_some(region)
}

/// The first TCP host and port of a parsed connection string.
pub(crate) fn first_host(config: &Config) -> Option<(String, u16)> {
    let host = config.get_hosts().iter().find_map(|h| match h {
        Host::Tcp(name) => Some(name.clone()),
        Host::Unix(_) => None,
    })?;
    Some((host, config.get_ports().first().copied().unwrap_or(5432)))
}

/// Connects to the database `dsn` names (a libpq URL or `key=value` string, `sslmode` and
/// `sslrootcert` included) and authenticates with `auth`. Errors never hold a password; they
/// say whether a retry may help ([`StepError::is_retryable`]).
pub async fn connect(dsn: &str, auth: &Auth) -> Result<Client, StepError> {
    let (client, _) = open(dsn, auth, "database", "the connection string", None).await?;
    Ok(client)
}

/// [`connect`] for a step: `role` and `field` name the server and the plan field in messages,
/// `env_name` the variable the DSN came from. Returns how messages should name the server too.
pub(crate) async fn open(
    text: &str,
    auth: &Auth,
    role: &'static str,
    field: &'static str,
    env_name: Option<&str>,
) -> Result<(Client, Target), StepError> {
    let source = match env_name {
        Some(name) => format!("the connection string in `{name}` (`{field}`)"),
        None => format!("`{field}`"),
    };
    let (rest, settings) = tls::split(text).map_err(|why| StepError::fatal(format!("{source}: {why}")))?;
    let mut config: Config = rest.parse().map_err(|e: tokio_postgres::Error| {
        StepError::fatal(format!(
            "{source} is not a valid libpq connection string: {}. Write a URL such as \
             postgres://user@host:5432/database, or key=value pairs such as `host=... port=... user=...`",
            redact(&chain(&e))
        ))
    })?;
    let env_suffix = env_name.map(|name| format!(" (${name})")).unwrap_or_default();
    let settings = match auth {
        Auth::Dsn => settings,
        Auth::Iam(iam) => authenticate_with_iam(&mut config, settings, iam, &source).await?,
    };
    // After the IAM token went in as the password: messages scrub it like any password.
    let target = Target::new(role, format!("{}{env_suffix}", config_label(&config)), field, &config);
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    if config.get_application_name().is_none() {
        config.application_name("drctl");
    }
    let client = establish(&mut config, &settings, &target).await?;
    Ok((client, target))
}

/// Puts a fresh IAM token in `config` as the password; the TLS settings IAM needs.
async fn authenticate_with_iam(
    config: &mut Config,
    mut settings: TlsSettings,
    iam: &IamAuth,
    source: &str,
) -> Result<TlsSettings, StepError> {
    if settings.mode == SslMode::Disable {
        return Err(StepError::fatal(format!(
            "{source} sets sslmode=disable, but IAM authentication (`auth: iam`) sends a token that must not cross \
             the network unencrypted: use sslmode=verify-full with sslrootcert set to the RDS CA bundle"
        )));
    }
    if !settings.mode_given {
        settings.mode = SslMode::Require;
    }
    if config.get_password().is_some() {
        return Err(StepError::fatal(format!(
            "{source} holds a password, but `auth: iam` authenticates with an IAM token: remove the password"
        )));
    }
    if config.get_hosts().len() > 1 {
        return Err(StepError::fatal(format!(
            "{source} names several hosts; `auth: iam` signs a token for one host: name one"
        )));
    }
    let (host, port) = first_host(config).ok_or_else(|| {
        StepError::fatal(format!("{source} names no TCP host; `auth: iam` needs the RDS endpoint's host name"))
    })?;
    let user = config.get_user().map(str::to_string).ok_or_else(|| {
        StepError::fatal(format!("{source} names no user; `auth: iam` needs the database user the IAM policy allows"))
    })?;
    let region = match (&iam.region, rds_region(&host)) {
        (Some(region), _) => region.clone(),
        (None, Some(region)) => region.to_string(),
        (None, None) => {
            return Err(StepError::fatal(format!(
                "`auth: iam` needs the database's AWS region: {host} is not an RDS endpoint name, so set `with.region`"
            )));
        }
    };
    let token = iam_token(iam, &host, port, &user, &region).await?;
    config.password(token);
    Ok(settings)
}

/// An IAM token for `user` at `host:port` in `region`, from `iam`'s credentials.
pub(crate) async fn iam_token(
    iam: &IamAuth,
    host: &str,
    port: u16,
    user: &str,
    region: &str,
) -> Result<String, StepError> {
    use aws_sdk_rds::config::ProvideCredentials;
    let credentials = iam.credentials.provide_credentials().await.map_err(|e| {
        StepError::fatal(format!(
            "`auth: iam`: the AWS credentials could not be loaded ({e}): check the profile, `aws sso login`, or the \
             environment"
        ))
    })?;
    // AWS checks the token's signing time against its own clock: it must be the real wall time.
    #[allow(clippy::disallowed_methods)]
    let at = iam.at.unwrap_or_else(SystemTime::now);
    crate::aws::rds_auth_token(host, port, user, region, &credentials, at).map_err(StepError::fatal)
}

/// Connects with `settings`' TLS; for `prefer`, a failed handshake is retried without TLS, as
/// libpq does.
async fn establish(config: &mut Config, settings: &TlsSettings, target: &Target) -> Result<Client, StepError> {
    let connector = tls::connector(settings)
        .map_err(|why| StepError::fatal(format!("cannot connect to {target}: {why} (`{}`)", target.field)))?;
    config.ssl_mode(settings.mode.wire());
    let budget =
        config.get_connect_timeout().copied().unwrap_or(CONNECT_TIMEOUT).saturating_add(Duration::from_secs(5));
    let mut attempt = tokio::time::timeout(budget, config.connect(connector.clone())).await;
    if settings.mode == SslMode::Prefer && matches!(&attempt, Ok(Err(e)) if tls::is_tls_failure(e)) {
        config.ssl_mode(tokio_postgres::config::SslMode::Disable);
        attempt = tokio::time::timeout(budget, config.connect(connector)).await;
    }
    let (client, connection) = match attempt {
        Ok(Ok(pair)) => pair,
        Ok(Err(e)) => {
            let host = first_host(config).map_or_else(|| target.label.clone(), |(host, _)| host);
            return Err(match tls::explain(&e, &host, settings) {
                Some(why) => StepError::fatal(format!(
                    "cannot connect to {target}: {}. Fix `{}`",
                    target.scrub(&why),
                    target.field
                )),
                None => pg_error(&e, "connect to", target),
            });
        }
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
    Ok(client)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_rds::config::{Credentials, SharedCredentialsProvider};

    #[test]
    fn rds_endpoints_name_their_region() {
        assert_eq!(rds_region("portfolio.c9akciq32.us-west-2.rds.amazonaws.com"), Some("us-west-2"));
        assert_eq!(rds_region("db.x.cn-north-1.rds.amazonaws.com.cn"), Some("cn-north-1"));
        assert_eq!(rds_region("db.example.com"), None);
        assert_eq!(rds_region("rds.amazonaws.com"), None);
    }

    fn iam(region: Option<&str>) -> Auth {
        Auth::Iam(IamAuth {
            region: region.map(str::to_string),
            credentials: SharedCredentialsProvider::new(Credentials::new("AKID", "SECRET", None, None, "t")),
            at: None,
        })
    }

    #[tokio::test]
    async fn iam_refuses_what_would_leak_or_cannot_be_signed() {
        let e = connect("postgres://app@db.x.us-west-2.rds.amazonaws.com/app?sslmode=disable", &iam(None)).await;
        let e = e.expect_err("refused");
        assert!(!e.is_retryable() && e.message.contains("sslmode=disable") && e.message.contains("verify-full"), "{e}");
        let e = connect("postgres://app:hunter2@db.x.us-west-2.rds.amazonaws.com/app", &iam(None)).await;
        let e = e.expect_err("refused");
        assert!(e.message.contains("holds a password") && !e.message.contains("hunter2"), "{e}");
        let e = connect("postgres://app@10.0.0.5/app", &iam(None)).await.expect_err("refused");
        assert!(e.message.contains("set `with.region`") && e.message.contains("10.0.0.5"), "{e}");
        let e = connect("host=/tmp user=app", &iam(Some("us-west-2"))).await.expect_err("refused");
        assert!(e.message.contains("no TCP host"), "{e}");
    }

    #[tokio::test]
    async fn tls_settings_errors_name_the_field() {
        let e = connect("postgres://app@db/app?sslmode=verify-full&sslrootcert=/nonexistent/rds.pem", &Auth::Dsn).await;
        let e = e.expect_err("refused");
        assert!(!e.is_retryable() && e.message.contains("/nonexistent/rds.pem"), "{e}");
        let e = connect("postgres://app:hunter2@db/app?sslmode=sometimes", &Auth::Dsn).await.expect_err("refused");
        assert!(e.message.contains("sslmode `sometimes`") && !e.message.contains("hunter2"), "{e}");
    }

    /// A server that answers `N` to the TLS request: `prefer` goes on in plain TCP (and then
    /// fails on the closed socket, retryably), `require` stops with a clear message.
    #[tokio::test]
    async fn require_refuses_a_server_without_tls() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut request = [0u8; 8];
                if socket.read_exact(&mut request).await.is_ok() {
                    let _ = socket.write_all(b"N").await;
                }
            }
        });
        let dsn = format!("postgres://app@127.0.0.1:{port}/app?sslmode=require&connect_timeout=2");
        let e = connect(&dsn, &Auth::Dsn).await.expect_err("refused");
        assert!(!e.is_retryable(), "{e}");
        assert!(e.message.contains("does not accept TLS") && e.message.contains("sslmode=require"), "{e}");
        let dsn = format!("postgres://app@127.0.0.1:{port}/app?connect_timeout=2");
        let e = connect(&dsn, &Auth::Dsn).await.expect_err("no server behind");
        assert!(!e.message.contains("TLS"), "prefer went on without TLS: {e}");
    }
}

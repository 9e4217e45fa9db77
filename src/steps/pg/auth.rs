//! `auth`, `region` and `primary_region` of the `pg.*` steps: how a step's connections
//! authenticate (see [`super::connect`] for what `auth: iam` does on the wire).

use std::sync::Arc;

use schemars::JsonSchema;
use serde::Deserialize;

use super::connect::{Auth, IamAuth, first_host, rds_region};
use super::tls;
use crate::aws::Aws;
use crate::plan::AwsSettings;
use crate::step::StepError;

/// `with.auth` of the `pg.*` steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthKind {
    /// As the connection string says: its password, or none (trust).
    #[default]
    Password,
    /// RDS IAM database authentication: a token made from the standard AWS credential chain
    /// (environment, profile, SSO, instance role) for the DSN's user, valid 15 minutes, is the
    /// password. Needs TLS (sslmode=disable is refused; no sslmode means require).
    Iam,
}

/// Checks `auth`, `region` and `primary_region` together with the DSNs written in the plan.
pub(crate) fn check_auth(
    auth: AuthKind,
    region: &Option<String>,
    primary_region: &Option<String>,
    literal_dsns: &[(&Option<String>, &str)],
) -> Result<(), String> {
    if auth == AuthKind::Password {
        if region.is_some() || primary_region.is_some() {
            return Err("`region` and `primary_region` are for `auth: iam` (the region an RDS IAM token is signed \
                        for); remove them or set `auth: iam`"
                .into());
        }
        return Ok(());
    }
    for (dsn, name) in literal_dsns {
        let Some(text) = dsn else { continue };
        if let Ok((_, settings)) = tls::split(text)
            && settings.mode == tls::SslMode::Disable
        {
            return Err(format!(
                "`{name}` sets sslmode=disable, but `auth: iam` sends a token that must not cross the network \
                 unencrypted: use sslmode=verify-full with sslrootcert set to the RDS CA bundle"
            ));
        }
    }
    Ok(())
}

/// How one server of a step authenticates, resolved at each connection.
#[derive(Clone, Default)]
pub(crate) enum StepAuth {
    /// As the connection string says.
    #[default]
    Dsn,
    /// An RDS IAM token; credentials from the run's AWS configuration (the plan's profile).
    Iam { region: Option<String>, aws: Arc<Aws>, settings: AwsSettings },
}

impl StepAuth {
    /// `auth: iam` with `region` for a server, or the DSN's own authentication.
    pub fn new(kind: AuthKind, region: Option<String>, aws: &Arc<Aws>, settings: &AwsSettings) -> StepAuth {
        match kind {
            AuthKind::Password => StepAuth::Dsn,
            AuthKind::Iam => StepAuth::Iam { region, aws: aws.clone(), settings: settings.clone() },
        }
    }

    /// What [`super::connect::open`] needs to connect with `text`: for IAM, the credentials of
    /// the database's region (`region`, else the RDS endpoint's).
    pub async fn resolve(&self, text: &str) -> Result<Auth, StepError> {
        let StepAuth::Iam { region, aws, settings } = self else { return Ok(Auth::Dsn) };
        let from_host = || {
            let (rest, _) = tls::split(text).ok()?;
            let config: tokio_postgres::Config = rest.parse().ok()?;
            let (host, _) = first_host(&config)?;
            rds_region(&host).map(str::to_string)
        };
        let Some(region) = region.clone().or_else(from_host) else {
            // `open` names the host and says what to set.
            return Ok(Auth::Iam(IamAuth { region: None, credentials: no_credentials(), at: None }));
        };
        let config = aws.config(&region, settings).await;
        let credentials = config.credentials_provider().ok_or_else(|| {
            StepError::fatal(
                "`auth: iam`: no AWS credentials are configured: set a profile, `aws sso login`, or the environment",
            )
        })?;
        Ok(Auth::Iam(IamAuth { region: Some(region), credentials, at: None }))
    }
}

/// Credentials for a token that will not be signed (the region is missing, which `open` reports).
fn no_credentials() -> aws_sdk_rds::config::SharedCredentialsProvider {
    aws_sdk_rds::config::SharedCredentialsProvider::new(aws_sdk_rds::config::Credentials::new(
        "", "", None, None, "none",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_go_with_iam_and_iam_with_tls() {
        let none = None;
        assert!(check_auth(AuthKind::Password, &None, &None, &[]).is_ok());
        let e = check_auth(AuthKind::Password, &Some("us-west-2".into()), &None, &[]).unwrap_err();
        assert!(e.contains("for `auth: iam`"), "{e}");
        assert!(check_auth(AuthKind::Iam, &Some("us-west-2".into()), &None, &[(&none, "dsn")]).is_ok());
        let plain = Some("postgres://drctl@db/app?sslmode=disable".to_string());
        let e = check_auth(AuthKind::Iam, &None, &None, &[(&none, "dsn"), (&plain, "primary_dsn")]).unwrap_err();
        assert!(e.contains("`primary_dsn` sets sslmode=disable"), "{e}");
    }
}

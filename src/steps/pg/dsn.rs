//! Where a server's connection string comes from (`dsn`/`dsn_env`), keeping passwords out of plans
//! and messages, and connecting to it (through [`super::connect`]).

use std::fmt;
use std::sync::Arc;

use tokio_postgres::{Client, Config};

use super::auth::StepAuth;
use super::connect::open;
use crate::step::StepError;

/// Reads an environment variable (replaceable in tests).
pub(crate) type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The process environment.
pub(crate) fn process_env() -> EnvLookup {
    Arc::new(|name| std::env::var(name).ok())
}

/// Where a server's connection string comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dsn {
    /// Written in the plan (checked to hold no password); `field` is `with.dsn` or the like.
    Literal { text: String, field: &'static str },
    /// The name of an environment variable of the drctl process; `field` is `with.dsn_env` or the like.
    Env { name: String, field: &'static str },
}

/// `dsn` or `dsn_env` (`prefix` is `""` or `"primary_"`): exactly one when `required`, else at
/// most one; a literal DSN must not hold a password.
/// Checks the `dsn`/`dsn_env` pair (required) and the `primary_dsn`/`primary_dsn_env` pair
/// (optional) that `pg.promote` and `pg.check` both take.
pub(crate) fn check_dsn_fields(
    dsn: &Option<String>,
    dsn_env: &Option<String>,
    primary_dsn: &Option<String>,
    primary_dsn_env: &Option<String>,
) -> Result<(), String> {
    dsn_from(dsn.clone(), dsn_env.clone(), ("with.dsn", "with.dsn_env"), true)?;
    dsn_from(primary_dsn.clone(), primary_dsn_env.clone(), ("with.primary_dsn", "with.primary_dsn_env"), false)?;
    Ok(())
}

pub(crate) fn dsn_from(
    literal: Option<String>,
    env: Option<String>,
    fields: (&'static str, &'static str),
    required: bool,
) -> Result<Option<Dsn>, String> {
    let (literal_field, env_field) = fields;
    let (literal_name, env_name) = (literal_field.trim_start_matches("with."), env_field.trim_start_matches("with."));
    match (literal, env) {
        (Some(_), Some(_)) => Err(format!("set only one of `{literal_name}` and `{env_name}`")),
        (None, None) if required => Err(format!(
            "set `{env_name}` (the name of an environment variable holding the connection string) or \
             `{literal_name}` (a connection URL without a password)"
        )),
        (None, None) => Ok(None),
        (Some(text), None) if has_password(&text) => Err(format!(
            "`{literal_name}` contains a password: a plan must never hold one. Put the connection string in an \
             environment variable and name it with `{env_name}`"
        )),
        (Some(text), None) => Ok(Some(Dsn::Literal { text, field: literal_field })),
        (None, Some(name)) if name.trim().is_empty() => Err(format!("`{env_name}` is empty")),
        (None, Some(name)) => Ok(Some(Dsn::Env { name, field: env_field })),
    }
}

/// Whether a libpq connection string (URL or `key=value` form) holds a password: a
/// `user:password@` in a URL, or a `password` parameter.
pub fn has_password(dsn: &str) -> bool {
    literal_password(dsn, |_| false)
}

/// Whether `text` (a connection string, or any string that may hold one) writes a password
/// literally: the password of a `scheme://user:password@host` URL, or the value of a
/// `password=...` parameter, unless `stands_in` says the value is a placeholder for one.
pub fn literal_password(text: &str, stands_in: impl Fn(&str) -> bool) -> bool {
    let lower = text.to_ascii_lowercase();
    let keyword = lower.match_indices("password").any(|(at, word)| {
        let before = lower[..at].chars().next_back();
        let boundary = before.is_none_or(|c| c.is_whitespace() || c == '?' || c == '&');
        let Some(value) = text[at + word.len()..].trim_start().strip_prefix('=') else { return false };
        let value = value.trim_start();
        let value = match value.strip_prefix('\'') {
            Some(quoted) => quoted.split('\'').next().unwrap_or_default(),
            None => value.split(|c: char| c.is_whitespace() || c == '&').next().unwrap_or_default(),
        };
        boundary && !value.is_empty() && !stands_in(value)
    });
    keyword || url_userinfo(text).is_some_and(|(_, password)| password.is_some_and(|p| !p.is_empty() && !stands_in(p)))
}

/// The user and password of a URL-form DSN (`scheme://user:password@host...`), as written.
fn url_userinfo(dsn: &str) -> Option<(&str, Option<&str>)> {
    let (_, rest) = dsn.split_once("://")?;
    let authority = rest.split(['?', '#']).next().unwrap_or(rest);
    let at = authority.rfind('@')?;
    let userinfo = &authority[..at];
    Some(match userinfo.split_once(':') {
        Some((user, password)) => (user, Some(password)),
        None => (userinfo, None),
    })
}

/// `text` with every `user:password@` of a URL and every `password=value` replaced by `***`.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    // URLs: scheme://user:password@host
    while let Some(at) = rest.find("://") {
        let start = at + 3;
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        let end = tail.find(|c: char| c.is_whitespace() || "'\"`<>".contains(c)).unwrap_or(tail.len());
        let candidate = &tail[..end];
        match candidate.rfind('@') {
            Some(at) if candidate[..at].contains(':') => {
                let user = candidate[..at].split(':').next().unwrap_or_default();
                out.push_str(user);
                out.push_str(":***");
                out.push_str(&candidate[at..]);
            }
            _ => out.push_str(candidate),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    redact_keywords(&out)
}

/// `password=value` (or `password = 'quoted value'`) → `password=***`.
fn redact_keywords(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for (at, word) in lower.match_indices("password") {
        if at < copied {
            continue;
        }
        let after = &text[at + word.len()..];
        let trimmed = after.trim_start();
        let Some(value) = trimmed.strip_prefix('=') else { continue };
        let value = value.trim_start();
        let value_start = text.len() - value.len();
        let value_len = if let Some(quoted) = value.strip_prefix('\'') {
            // A quoted value ends at the next unescaped quote.
            let mut escaped = false;
            let close = quoted.char_indices().find(|&(_, c)| {
                let end = !escaped && c == '\'';
                escaped = !escaped && c == '\\';
                end
            });
            close.map_or(value.len(), |(i, _)| i + 2)
        } else {
            value.find(|c: char| c.is_whitespace() || c == '&' || c == '"').unwrap_or(value.len())
        };
        out.push_str(&text[copied..at + word.len()]);
        out.push_str("=***");
        copied = value_start + value_len;
    }
    out.push_str(&text[copied..]);
    out
}

/// A server connected to, as messages name it: `standby drctl@10.0.0.5:5432/postgres
/// ($PG_STANDBY)`. Never a password.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// `standby`, `primary`, `server`.
    pub role: &'static str,
    /// `user@host:port/database`, plus `($NAME)` for `dsn_env`.
    pub label: String,
    /// The field to fix when the DSN is wrong.
    pub field: &'static str,
    /// The password, if any, to scrub from messages should a library repeat it.
    secret: Option<String>,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.role, self.label)
    }
}

impl Target {
    /// How messages name the server `config` describes; `label` is its `user@host:port/database`.
    pub(crate) fn new(role: &'static str, label: String, field: &'static str, config: &Config) -> Target {
        let secret = config.get_password().map(|p| String::from_utf8_lossy(p).into_owned());
        Target { role, label, field, secret }
    }

    /// `text` without any password: URL and keyword forms, and this server's password as is.
    pub fn scrub(&self, text: &str) -> String {
        let text = redact(text);
        match &self.secret {
            Some(secret) if secret.len() >= 3 => text.replace(secret.as_str(), "***"),
            _ => text,
        }
    }
}

impl Dsn {
    /// How `describe` names the server: `drctl@10.0.0.5:5432/postgres`, or `$NAME`.
    pub fn label(&self) -> String {
        match self {
            Dsn::Literal { text, .. } => {
                match super::tls::split(text).ok().and_then(|(rest, _)| rest.parse::<Config>().ok()) {
                    Some(config) => config_label(&config),
                    None => redact(text),
                }
            }
            Dsn::Env { name, .. } => format!("${name}"),
        }
    }

    /// The connection string and the field that gave it.
    fn resolve(&self, env: &EnvLookup) -> Result<(String, &'static str), StepError> {
        match self {
            Dsn::Literal { text, field } => Ok((text.clone(), field)),
            Dsn::Env { name, field } => match env(name) {
                Some(text) if !text.trim().is_empty() => Ok((text, field)),
                _ => Err(StepError::fatal(format!(
                    "the environment variable `{name}` (`{field}`) is not set: export the connection string (a \
                     libpq URL such as postgres://user:password@host:5432/postgres) in it before running drctl"
                ))),
            },
        }
    }
}

/// `user@host:port/database` from a parsed configuration.
pub(crate) fn config_label(config: &Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let host = match host {
                tokio_postgres::config::Host::Tcp(name) => name.clone(),
                tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
            };
            let port = config.get_ports().get(i).or(config.get_ports().first()).copied().unwrap_or(5432);
            format!("{host}:{port}")
        })
        .collect();
    let hosts = if hosts.is_empty() { "localhost:5432".to_string() } else { hosts.join(",") };
    let user = config.get_user().map(|u| format!("{u}@")).unwrap_or_default();
    let database = config.get_dbname().or(config.get_user()).unwrap_or("postgres");
    format!("{user}{hosts}/{database}")
}

/// Connects to the server `dsn` names, authenticating with `auth`; `role` says what it should
/// be, for messages.
pub(crate) async fn connect_server(
    dsn: &Dsn,
    role: &'static str,
    env: &EnvLookup,
    auth: &StepAuth,
) -> Result<(Client, Target), StepError> {
    let (text, field) = dsn.resolve(env)?;
    let env_name = match dsn {
        Dsn::Env { name, .. } => Some(name.as_str()),
        Dsn::Literal { .. } => None,
    };
    let auth = auth.resolve(&text).await?;
    open(&text, &auth, role, field, env_name).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_found_in_urls_and_keywords() {
        for dsn in [
            "postgres://drctl:s3cret@10.0.0.5:5432/postgres",
            "postgresql://drctl:p%40ss@db/app?sslmode=disable",
            "postgres://u:pa@ss@host/db",
            "host=db user=drctl password=s3cret",
            "host=db password = 's3 cret'",
            "postgres://drctl@db/app?password=s3cret",
            "postgres://drctl@db/app?sslmode=disable&PASSWORD=s3cret",
        ] {
            assert!(has_password(dsn), "{dsn}");
        }
        for dsn in [
            "postgres://drctl@127.0.0.1:5433/postgres",
            "postgres://drctl:@db/app",
            "postgres://drctl@{{ steps.promote.outputs.endpoint }}:5432/app",
            "host=db user=drctl dbname=password_store",
            "postgres://db/app?passfile=/etc/pgpass",
        ] {
            assert!(!has_password(dsn), "{dsn}");
        }
    }

    #[test]
    fn redaction_hides_passwords_and_keeps_the_rest() {
        assert_eq!(
            redact("cannot connect to postgres://app:hunter2@db:5432/app: refused"),
            "cannot connect to postgres://app:***@db:5432/app: refused"
        );
        assert_eq!(redact("'postgres://app:p@ss@db/x' and http://h/x"), "'postgres://app:***@db/x' and http://h/x");
        assert_eq!(redact("host=db password=hunter2 user=app"), "host=db password=*** user=app");
        assert_eq!(redact("host=db password = 'hun ter\\'2' user=app"), "host=db password=*** user=app");
        assert_eq!(redact("postgres://app@db/x?password=hunter2&sslmode=disable"), {
            "postgres://app@db/x?password=***&sslmode=disable"
        });
        assert_eq!(redact("password authentication failed for user \"app\""), {
            "password authentication failed for user \"app\""
        });
        let target = Target {
            role: "standby",
            label: "app@db:5432/app".into(),
            field: "with.dsn_env",
            secret: Some("hunter2".into()),
        };
        assert_eq!(target.scrub("the server said hunter2"), "the server said ***");
    }

    #[test]
    fn dsn_fields_need_exactly_one_and_no_password() {
        let fields = ("with.dsn", "with.dsn_env");
        assert_eq!(
            dsn_from(None, Some("PG".into()), fields, true).unwrap(),
            Some(Dsn::Env { name: "PG".into(), field: "with.dsn_env" })
        );
        assert!(dsn_from(None, None, fields, true).unwrap_err().contains("set `dsn_env`"));
        assert_eq!(dsn_from(None, None, fields, false).unwrap(), None);
        assert!(dsn_from(Some("x".into()), Some("Y".into()), fields, true).unwrap_err().contains("only one"));
        let e = dsn_from(Some("postgres://a:b@h/d".into()), None, fields, true).unwrap_err();
        assert!(e.contains("`dsn` contains a password") && e.contains("`dsn_env`") && !e.contains("a:b"), "{e}");
    }

    #[test]
    fn labels_name_the_server_without_secrets() {
        let dsn = Dsn::Literal { text: "postgres://drctl@127.0.0.1:5433/postgres".into(), field: "with.dsn" };
        assert_eq!(dsn.label(), "drctl@127.0.0.1:5433/postgres");
        let dsn = Dsn::Literal { text: "host=db user=app".into(), field: "with.dsn" };
        assert_eq!(dsn.label(), "app@db:5432/app");
        assert_eq!(Dsn::Env { name: "PG_DR".into(), field: "with.dsn_env" }.label(), "$PG_DR");
    }

    #[tokio::test]
    async fn an_unset_variable_or_a_bad_dsn_is_fatal_and_quiet() {
        let env: EnvLookup = Arc::new(|name| (name == "BAD").then(|| "postgres://app:hunter2@db:notaport/x".into()));
        let e = connect_server(
            &Dsn::Env { name: "MISSING".into(), field: "with.dsn_env" },
            "standby",
            &env,
            &StepAuth::Dsn,
        )
        .await
        .err();
        let e = e.expect("an error");
        assert!(!e.is_retryable() && e.message.contains("`MISSING` (`with.dsn_env`) is not set"), "{e}");
        let e =
            connect_server(&Dsn::Env { name: "BAD".into(), field: "with.dsn_env" }, "standby", &env, &StepAuth::Dsn)
                .await
                .err();
        let e = e.expect("an error");
        assert!(!e.is_retryable() && e.message.contains("`BAD`") && !e.message.contains("hunter2"), "{e}");
    }

    #[tokio::test]
    async fn a_refused_connection_is_retryable() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let env: EnvLookup =
            Arc::new(move |_| Some(format!("postgres://app:hunter2@127.0.0.1:{port}/app?connect_timeout=2")));
        let dsn = Dsn::Env { name: "PG".into(), field: "with.dsn_env" };
        let Err(e) = connect_server(&dsn, "standby", &env, &StepAuth::Dsn).await else { panic!("nothing listens") };
        assert!(e.is_retryable(), "{e}");
        assert!(e.message.contains(&format!("standby app@127.0.0.1:{port}/app ($PG)")), "{e}");
        assert!(!e.message.contains("hunter2"), "{e}");
    }
}

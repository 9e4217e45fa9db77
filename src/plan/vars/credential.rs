//! Secrets never go in plan variables: they would be journaled, shown by `--dry-run` and copied
//! into reports. A value that looks like a credential is refused, and the plan keeps `url_env` /
//! `dsn_env` (an environment variable read at run time) or `${secret:...}` for it.

/// Why `value` looks like a credential, if it does.
pub fn looks_like_credential(value: &str) -> Option<&'static str> {
    if url_password(value) {
        return Some("it is a URL with a password (user:password@host)");
    }
    if value.contains("-----BEGIN") && value.contains("PRIVATE KEY") {
        return Some("it holds a PEM private key");
    }
    if aws_access_key(value) {
        return Some("it holds an AWS access key id (AKIA…/ASIA…)");
    }
    if value.contains("hooks.slack.com/services/") {
        return Some("it is a Slack incoming-webhook URL, which is itself the credential");
    }
    let lower = value.to_ascii_lowercase();
    if lower.starts_with("bearer ") || lower.starts_with("basic ") {
        return Some("it is an HTTP Authorization value");
    }
    const TOKEN_PREFIXES: &[&str] = &["ghp_", "gho_", "github_pat_", "xoxb-", "xoxp-", "glpat-", "sk_live_"];
    if TOKEN_PREFIXES.iter().any(|p| value.starts_with(p)) {
        return Some("it starts like an API token");
    }
    if keyword_password(&lower) {
        return Some("it sets a password (password=…)");
    }
    None
}

/// `scheme://user:password@host`, where the password is not a `${...}` reference.
fn url_password(value: &str) -> bool {
    let Some((_, rest)) = value.split_once("://") else { return false };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let Some((userinfo, _)) = authority.rsplit_once('@') else { return false };
    match userinfo.split_once(':') {
        Some((_, password)) => !password.is_empty() && !password.starts_with("${"),
        None => false,
    }
}

/// An AWS access key id: `AKIA` or `ASIA` and 16 upper-case letters or digits.
fn aws_access_key(value: &str) -> bool {
    let bytes = value.as_bytes();
    bytes.windows(20).any(|w| {
        (w.starts_with(b"AKIA") || w.starts_with(b"ASIA"))
            && w[4..].iter().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    })
}

/// A libpq keyword string or query string that sets a password.
fn keyword_password(lower: &str) -> bool {
    ["password=", "pwd=", "passwd="].iter().any(|k| {
        lower.match_indices(k).any(|(i, _)| {
            let before = lower[..i].chars().last();
            let after = &lower[i + k.len()..];
            before.is_none_or(|c| c == ' ' || c == '&' || c == '?' || c == ';')
                && !after.is_empty()
                && !after.starts_with(' ')
                && !after.starts_with("${")
        })
    })
}

#[cfg(test)]
mod tests {
    use super::looks_like_credential;

    #[test]
    fn credentials_are_recognised() {
        for value in [
            "postgres://portfolio:hunter2@db.example.com:5432/portfolio",
            "https://admin:s3cret@api.example.com/health",
            "-----BEGIN RSA PRIVATE KEY-----\nMIIE",
            "AKIAIOSFODNN7EXAMPLE",
            "https://hooks.slack.com/services/T000/B000/XXXX",
            "Bearer eyJhbGciOi",
            "ghp_0123456789abcdef",
            "host=db user=portfolio password=hunter2",
        ] {
            assert!(looks_like_credential(value).is_some(), "{value}");
        }
    }

    #[test]
    fn ordinary_values_and_references_pass() {
        for value in [
            "Z1234567890ABC",
            "https://api.example.com/health",
            "postgres://portfolio@db.example.com/portfolio",
            "postgres://portfolio:${secret:password}@db/portfolio",
            "portfolio-dr-replica",
            "sg-0fence0portfolio0db",
            "http://127.0.0.1:5000",
            "25",
            "the password= policy",
        ] {
            assert_eq!(looks_like_credential(value), None, "{value}");
        }
    }
}

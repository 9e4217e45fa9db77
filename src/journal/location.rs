//! Where S3 state lives: `s3://BUCKET/PREFIX` from `--state` / `DRCTL_STATE`, or a plan's `state:`.

use std::time::Duration;

/// The lease of a plan lock on S3 unless configured: renewed every third of it.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);

/// An S3 bucket and prefix, with how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    /// Empty, or ending in `/`.
    pub prefix: String,
    /// The bucket's region; otherwise the standard chain's (AWS_REGION, the profile).
    pub region: Option<String>,
    /// A shared-config profile for the credentials.
    pub profile: Option<String>,
    /// Another endpoint (moto, MinIO); otherwise the standard chain's (AWS_ENDPOINT_URL) or AWS.
    pub endpoint: Option<String>,
    /// How long a lock's holder may go without renewing before another process may take it over.
    pub lease: Duration,
}

impl S3Location {
    /// Parses `s3://BUCKET[/PREFIX]`. Errors say what is wrong and what a good one looks like.
    pub fn parse(text: &str) -> Result<S3Location, String> {
        let example = "s3://BUCKET/PREFIX, such as s3://acme-dr-state/drctl";
        let Some(rest) = text.strip_prefix("s3://") else {
            return Err(format!("`{text}` is not an S3 location: write {example}"));
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
            && !bucket.starts_with(['-', '.'])
            && !bucket.ends_with(['-', '.']);
        if !valid_bucket {
            return Err(format!(
                "`{bucket}` in `{text}` is not an S3 bucket name (3 to 63 lowercase letters, digits, `-` and `.`): \
                 write {example}"
            ));
        }
        let prefix = prefix.trim_matches('/');
        if prefix.split('/').any(|part| part == "." || part == "..") || prefix.contains("//") {
            return Err(format!("the prefix `{prefix}` in `{text}` has an empty, `.` or `..` part: write {example}"));
        }
        Ok(S3Location {
            bucket: bucket.to_string(),
            prefix: if prefix.is_empty() { String::new() } else { format!("{prefix}/") },
            region: None,
            profile: None,
            endpoint: None,
            lease: DEFAULT_LEASE,
        })
    }

    /// `s3://bucket/prefix/`.
    pub fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_and_bad_ones_say_what_to_write() {
        let l = S3Location::parse("s3://acme-dr/drctl/prod/").unwrap();
        assert_eq!((l.bucket.as_str(), l.prefix.as_str()), ("acme-dr", "drctl/prod/"));
        assert_eq!(S3Location::parse("s3://acme-dr").unwrap().prefix, "");
        assert_eq!(l.url(), "s3://acme-dr/drctl/prod/");
        for bad in ["acme", "s3://", "s3://A_B/x", "s3://ab/x", "s3://acme/../x", "s3://acme/a//b"] {
            let e = S3Location::parse(bad).unwrap_err();
            assert!(e.contains("s3://BUCKET/PREFIX"), "{bad}: {e}");
        }
    }
}

//! A plan's `state:`: the S3 bucket (and prefix, region, profile, endpoint, lease) where its runs'
//! journals and its lock live, so every operator and machine running the plan shares them.

use super::{Checker, join};
use crate::plan::StateSettings;
use crate::plan::yaml::Node;

const STATE_KEYS: &[&str] = &["bucket", "prefix", "region", "profile", "endpoint_url", "lease"];

impl Checker<'_> {
    pub(super) fn state(&mut self, node: &Node) -> Option<StateSettings> {
        let fields = self.mapping(node, "state", STATE_KEYS, &["bucket"])?;
        let text = |checker: &mut Self, key: &str| {
            fields.get(key).and_then(|n| checker.string(n, &join("state", key))).map(|s| s.trim().to_string())
        };
        let bucket = text(self, "bucket")?;
        let prefix = text(self, "prefix").unwrap_or_default();
        let (region, profile, endpoint_url) = (text(self, "region"), text(self, "profile"), text(self, "endpoint_url"));
        let location = format!("s3://{bucket}/{prefix}");
        if let Err(e) = crate::journal::location::S3Location::parse(&location) {
            let at = fields.get("prefix").filter(|_| !e.contains("bucket name")).unwrap_or(&fields["bucket"]);
            let key = if e.contains("bucket name") { "state.bucket" } else { "state.prefix" };
            self.error(at, key, e, "an S3 bucket name, and a prefix of `/`-separated names, such as drctl/prod");
            return None;
        }
        if let Some(url) = &endpoint_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            self.error(
                fields["endpoint_url"],
                "state.endpoint_url",
                format!("`{url}` is not an http:// or https:// URL"),
                "write the S3 endpoint's address, such as http://127.0.0.1:5000, or remove it to use AWS",
            );
            return None;
        }
        let lease = match fields.get("lease") {
            Some(n) => Some(self.duration(
                n,
                "state.lease",
                super::Zero::Refused(
                    "a lease of 0s expires at once, so any process could take the lock",
                    "write how long a holder may go without renewing, such as 60s",
                ),
            )?),
            None => None,
        };
        let prefix = prefix.trim_matches('/');
        let prefix = if prefix.is_empty() { String::new() } else { format!("{prefix}/") };
        Some(StateSettings { bucket, prefix, region, profile, endpoint_url, lease })
    }
}

//! Secret references: what a step hands on instead of a secret's value.
//!
//! `secretsmanager://REGION/SECRET_ID?version=VERSION_ID[&key=JSON_KEY]`
//!
//! - `REGION` is the AWS region the secret lives in (`us-west-2`);
//! - `SECRET_ID` is the secret's name or ARN, percent-encoded (everything but `A-Z a-z 0-9 - . _ ~`);
//! - `version` pins one version (a `VersionId`), so a consumer reads what the producing step saw
//!   even after the secret was rotated or put again;
//! - `key` names one key of a JSON secret; without it the reference means the whole secret string.
//!
//! A reference is safe to journal and show: it says where a value is, never what it is. Turn it
//! into the value at the moment of use with [`super::resolve`].

use std::fmt;
use std::str::FromStr;

/// The scheme every reference starts with.
pub const SCHEME: &str = "secretsmanager://";

/// A pinned version of a Secrets Manager secret, optionally one key of its JSON.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SecretRef {
    /// The region the secret lives in.
    pub region: String,
    /// The secret's name or ARN, as the producing step was given it.
    pub secret_id: String,
    /// The `VersionId` the reference is pinned to.
    pub version_id: String,
    /// One key of the secret's JSON object; `None` for the whole secret string.
    pub key: Option<String>,
}

impl SecretRef {
    /// Parses `secretsmanager://REGION/SECRET_ID?version=VERSION_ID[&key=JSON_KEY]`. Errors say what
    /// is wrong; a reference holds no secret, so they may quote it.
    pub fn parse(text: &str) -> Result<SecretRef, String> {
        let shape = "write it as secretsmanager://REGION/SECRET_ID?version=VERSION_ID[&key=JSON_KEY]";
        let rest = text.strip_prefix(SCHEME).ok_or_else(|| format!("`{text}` is not a secret reference; {shape}"))?;
        let (path, query) = rest.split_once('?').ok_or_else(|| format!("`{text}` has no `?version=`; {shape}"))?;
        let (region, id) = path.split_once('/').ok_or_else(|| format!("`{text}` has no secret id; {shape}"))?;
        if region.is_empty() || !region.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
            return Err(format!("`{text}`: `{region}` is not an AWS region such as us-west-2"));
        }
        let secret_id = decode(id).map_err(|e| format!("`{text}`: the secret id {e}"))?;
        if secret_id.is_empty() {
            return Err(format!("`{text}` has no secret id; {shape}"));
        }
        let (mut version_id, mut key) = (None, None);
        for pair in query.split('&') {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let slot = match name {
                "version" => &mut version_id,
                "key" => &mut key,
                other => return Err(format!("`{text}`: unknown parameter `{other}` (only `version` and `key`)")),
            };
            if slot.is_some() {
                return Err(format!("`{text}`: `{name}` is given twice"));
            }
            let value = decode(value).map_err(|e| format!("`{text}`: `{name}` {e}"))?;
            if value.is_empty() {
                return Err(format!("`{text}`: `{name}` is empty"));
            }
            *slot = Some(value);
        }
        let version_id = version_id.ok_or_else(|| format!("`{text}` has no `version=`; {shape}"))?;
        Ok(SecretRef { region: region.to_string(), secret_id, version_id, key })
    }

    /// The reference as text; [`SecretRef::parse`] reads it back.
    pub fn format(&self) -> String {
        let mut text =
            format!("{SCHEME}{}/{}?version={}", self.region, encode(&self.secret_id), encode(&self.version_id));
        if let Some(key) = &self.key {
            text.push_str("&key=");
            text.push_str(&encode(key));
        }
        text
    }

    /// What the reference points at, for messages: `secret `ID` (version V, key `K`) in REGION`.
    pub fn describe(&self) -> String {
        let key = self.key.as_ref().map(|k| format!(", key `{k}`")).unwrap_or_default();
        format!("secret `{}` (version {}{key}) in {}", self.secret_id, self.version_id, self.region)
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.format())
    }
}

impl FromStr for SecretRef {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        SecretRef::parse(text)
    }
}

/// Percent-encodes every byte but the unreserved characters of RFC 3986.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes; the result must be UTF-8.
fn decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3).ok_or("has a `%` without two hex digits after it")?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| format!("has `%{hex}`, which is not a hex escape"))?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "does not decode to UTF-8".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(secret_id: &str, key: Option<&str>) -> SecretRef {
        SecretRef {
            region: "us-west-2".into(),
            secret_id: secret_id.into(),
            version_id: "a1b2c3d4-0000-4000-8000-000000000001".into(),
            key: key.map(Into::into),
        }
    }

    #[test]
    fn formats_and_parses_back() {
        let plain = r("dr-database-url", Some("DATABASE_URL"));
        let text = plain.format();
        assert_eq!(
            text,
            "secretsmanager://us-west-2/dr-database-url?version=a1b2c3d4-0000-4000-8000-000000000001&key=DATABASE_URL"
        );
        assert_eq!(SecretRef::parse(&text).unwrap(), plain);
        assert_eq!(text.parse::<SecretRef>().unwrap().to_string(), text);

        let whole = r("dr-database-url", None);
        assert!(!whole.format().contains("key="));
        assert_eq!(SecretRef::parse(&whole.format()).unwrap(), whole);
    }

    #[test]
    fn arns_and_odd_keys_are_percent_encoded() {
        let arn = "arn:aws:secretsmanager:us-west-2:123456789012:secret:prod/db url+x=y&z-AbCdEf";
        let odd = r(arn, Some("a key/with?&=%é"));
        let text = odd.format();
        let after_scheme = &text[SCHEME.len()..];
        assert_eq!(after_scheme.matches('/').count(), 1, "only the region separator: {text}");
        assert_eq!(text.matches('?').count(), 1, "{text}");
        assert_eq!(text.matches('&').count(), 1, "{text}");
        assert!(text.contains("arn%3Aaws%3Asecretsmanager%3Aus-west-2%3A123456789012%3Asecret%3Aprod%2Fdb%20url"));
        assert_eq!(SecretRef::parse(&text).unwrap(), odd);
    }

    #[test]
    fn bad_references_say_what_is_wrong() {
        let err = |t: &str| SecretRef::parse(t).unwrap_err();
        assert!(err("https://x/y?version=1").contains("not a secret reference"));
        assert!(err("secretsmanager://us-west-2/db").contains("no `?version=`"));
        assert!(err("secretsmanager://us-west-2?version=1").contains("no secret id"));
        assert!(err("secretsmanager://us-west-2/?version=1").contains("no secret id"));
        assert!(err("secretsmanager://US_WEST/db?version=1").contains("not an AWS region"));
        assert!(err("secretsmanager://us-west-2/db?key=k").contains("no `version=`"));
        assert!(err("secretsmanager://us-west-2/db?version=1&stage=AWSCURRENT").contains("unknown parameter `stage`"));
        assert!(err("secretsmanager://us-west-2/db?version=1&version=2").contains("given twice"));
        assert!(err("secretsmanager://us-west-2/db?version=1&key=").contains("`key` is empty"));
        assert!(err("secretsmanager://us-west-2/d%zzb?version=1").contains("not a hex escape"));
        assert!(err("secretsmanager://us-west-2/db%?version=1").contains("without two hex digits"));
        assert!(err("secretsmanager://us-west-2/db%FF?version=1").contains("UTF-8"));
    }

    #[test]
    fn describe_names_id_version_and_key() {
        assert_eq!(
            r("db", Some("password")).describe(),
            "secret `db` (version a1b2c3d4-0000-4000-8000-000000000001, key `password`) in us-west-2"
        );
    }
}

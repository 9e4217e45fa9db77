//! TLS for PostgreSQL connections with libpq's `sslmode` and `sslrootcert`, as psql reads them:
//!
//! | `sslmode` | TLS | certificate checked |
//! | --- | --- | --- |
//! | `disable` | never | — |
//! | `prefer` (default) | when the server offers it; a failed handshake is retried without TLS | only when a root certificate file is found (then as `verify-ca`) |
//! | `require` | always | only when a root certificate file is found (then as `verify-ca`) |
//! | `verify-ca` | always | signed by a CA in `sslrootcert` |
//! | `verify-full` | always | signed by a CA in `sslrootcert` *and* valid for the host name (its subjectAltName) |
//!
//! `sslrootcert` is a PEM file of CA certificates (a path relative to drctl's working directory),
//! default `~/.postgresql/root.crt`; `sslrootcert=system` takes the system's trusted roots and
//! requires `verify-full` (its default then), as libpq 16 does. Client certificates (`sslcert`,
//! `sslkey`) are not supported. tokio-postgres parses the rest of the connection string; it knows
//! neither `verify-*` nor `sslrootcert`, so [`split`] takes them out first.
//!
//! Certificates are checked by rustls with the aws-lc-rs provider (the AWS SDK's), not the
//! process-wide default, so no provider has to be installed. Unlike libpq, a certificate's
//! common name is not consulted for the host name: only its subjectAltNames, as RFC 6125 says.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{CertificateError, ClientConfig, RootCertStore};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::verifiers::{ChainOnly, Unverified};

/// libpq's `sslmode` values drctl honours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(text: &str) -> Result<SslMode, String> {
        match text {
            "disable" => Ok(SslMode::Disable),
            "prefer" => Ok(SslMode::Prefer),
            "require" => Ok(SslMode::Require),
            "verify-ca" => Ok(SslMode::VerifyCa),
            "verify-full" => Ok(SslMode::VerifyFull),
            "allow" => {
                Err("sslmode=allow is not supported: use prefer (TLS when the server offers it) or disable".into())
            }
            other => Err(format!(
                "sslmode `{other}` is not one of disable, prefer, require, verify-ca, verify-full (libpq's values)"
            )),
        }
    }

    /// As written in a connection string.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// What tokio-postgres is told: whether to ask for TLS and whether to insist.
    pub fn wire(self) -> tokio_postgres::config::SslMode {
        match self {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => tokio_postgres::config::SslMode::Require,
        }
    }
}

/// Where the CA certificates come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCert {
    /// A PEM file (`sslrootcert=PATH`, or libpq's default `~/.postgresql/root.crt`).
    File(PathBuf),
    /// The system's trusted roots (`sslrootcert=system`).
    System,
}

/// The TLS settings of one connection string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    pub mode: SslMode,
    /// Whether `sslmode` was written (IAM authentication turns an implicit `prefer` into `require`).
    pub mode_given: bool,
    /// `sslrootcert` as written (`None`: libpq's default file, if it exists).
    pub rootcert: Option<RootCert>,
}

/// Parameters drctl cannot honour, with why.
const UNSUPPORTED: &[(&str, &str)] = &[
    ("sslcert", "client certificates are not supported"),
    ("sslkey", "client certificates are not supported"),
    ("sslpassword", "client certificates are not supported"),
    ("sslcrl", "certificate revocation lists are not supported"),
    ("sslcrldir", "certificate revocation lists are not supported"),
];

/// Takes `sslmode` and `sslrootcert` out of a libpq connection string (URL or `key=value` form):
/// the rest, for tokio-postgres, and the TLS settings. Errors name the parameter, never a value
/// other than the ones taken out.
pub fn split(dsn: &str) -> Result<(String, TlsSettings), String> {
    let is_url = dsn.starts_with("postgres://") || dsn.starts_with("postgresql://");
    let (rest, params) = if is_url { split_url(dsn) } else { split_keywords(dsn)? };
    let mut mode = None;
    let mut rootcert = None;
    for (key, value) in params {
        match key.as_str() {
            "sslmode" => mode = Some(SslMode::parse(&value)?),
            "sslrootcert" if value == "system" => rootcert = Some(RootCert::System),
            "sslrootcert" => rootcert = Some(RootCert::File(PathBuf::from(value))),
            other => {
                let why = UNSUPPORTED.iter().find(|(k, _)| *k == other).map_or("it is not supported", |(_, w)| w);
                return Err(format!("the connection string sets `{other}`: {why} by drctl; remove it"));
            }
        }
    }
    let mode_given = mode.is_some();
    let mode = match (mode, &rootcert) {
        (None, Some(RootCert::System)) => SslMode::VerifyFull,
        (Some(m), Some(RootCert::System)) if m != SslMode::VerifyFull => {
            return Err(format!(
                "sslrootcert=system needs sslmode=verify-full (a weaker sslmode `{}` would trust any server the \
                 system's roots vouch for, under any name); write sslmode=verify-full",
                m.as_str()
            ));
        }
        (m, _) => m.unwrap_or(SslMode::Prefer),
    };
    Ok((rest, TlsSettings { mode, mode_given, rootcert }))
}

/// Whether a parameter is one [`split`] takes out.
fn is_tls_key(key: &str) -> bool {
    key == "sslmode" || key == "sslrootcert" || UNSUPPORTED.iter().any(|(k, _)| *k == key)
}

fn split_url(dsn: &str) -> (String, Vec<(String, String)>) {
    let Some((base, query)) = dsn.split_once('?') else { return (dsn.to_string(), Vec::new()) };
    let mut kept = Vec::new();
    let mut taken = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = percent_decode(key);
        if is_tls_key(&key) {
            taken.push((key, percent_decode(value)));
        } else {
            kept.push(pair);
        }
    }
    let rest = if kept.is_empty() { base.to_string() } else { format!("{base}?{}", kept.join("&")) };
    (rest, taken)
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |at: usize| bytes.get(at).and_then(|b| (*b as char).to_digit(16));
        if bytes[i] == b'%'
            && let (Some(high), Some(low)) = (hex(i + 1), hex(i + 2))
        {
            out.push((high * 16 + low) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `key = value` pairs of a libpq keyword string: the string without the TLS ones, and those.
fn split_keywords(dsn: &str) -> Result<(String, Vec<(String, String)>), String> {
    let mut kept: Vec<&str> = Vec::new();
    let mut taken = Vec::new();
    let mut rest = dsn.trim_start();
    while !rest.is_empty() {
        let start = rest;
        let key_end = rest.find(|c: char| c == '=' || c.is_whitespace()).unwrap_or(rest.len());
        let key = &rest[..key_end];
        rest = rest[key_end..].trim_start();
        let Some(after) = rest.strip_prefix('=') else {
            // Not ours to judge: tokio-postgres says what is wrong with it.
            return Ok((dsn.to_string(), Vec::new()));
        };
        rest = after.trim_start();
        let (value, len) = keyword_value(rest);
        rest = &rest[len..];
        let pair = &start[..start.len() - rest.len()];
        if is_tls_key(key) {
            taken.push((key.to_string(), value));
        } else {
            kept.push(pair);
        }
        rest = rest.trim_start();
    }
    Ok((kept.join(" "), taken))
}

/// A keyword value (quoted with `'`, or up to the next whitespace; `\` escapes) and its length.
fn keyword_value(text: &str) -> (String, usize) {
    let mut value = String::new();
    let quoted = text.starts_with('\'');
    let mut chars = text.char_indices().skip(usize::from(quoted));
    while let Some((at, c)) = chars.next() {
        match c {
            '\\' => {
                if let Some((_, escaped)) = chars.next() {
                    value.push(escaped);
                }
            }
            '\'' if quoted => return (value, at + 1),
            c if !quoted && c.is_whitespace() => return (value, at),
            c => value.push(c),
        }
    }
    (value, text.len())
}

/// libpq's default root certificate file: `~/.postgresql/root.crt`.
fn default_rootcert() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|home| Path::new(&home).join(".postgresql/root.crt"))
}

/// The provider every PostgreSQL TLS connection uses (the AWS SDK's).
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The CA certificates of `settings`, if any: the file given, or libpq's default file when it
/// exists. Errors say what to do.
fn roots(settings: &TlsSettings) -> Result<Option<(RootCertStore, String)>, String> {
    let path = match &settings.rootcert {
        Some(RootCert::System) => {
            let found = rustls_native_certs::load_native_certs();
            let mut store = RootCertStore::empty();
            let (added, _) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err("sslrootcert=system: no trusted root certificate was found on this system".into());
            }
            return Ok(Some((store, "the system's trusted roots".into())));
        }
        Some(RootCert::File(path)) => path.clone(),
        None => match default_rootcert() {
            Some(path) if path.exists() => path,
            Some(path) if matches!(settings.mode, SslMode::VerifyCa | SslMode::VerifyFull) => {
                return Err(format!(
                    "sslmode={} checks the server's certificate, but no CA is given: set sslrootcert to the PEM file \
                     of the CA that signed it (none at libpq's default {})",
                    settings.mode.as_str(),
                    path.display()
                ));
            }
            _ => return Ok(None),
        },
    };
    let certs = CertificateDer::pem_file_iter(&path).map_err(|e| {
        format!(
            "sslrootcert {} cannot be read ({e}): give the path (relative to drctl's working directory) of the PEM \
             file of the server's CA",
            path.display()
        )
    })?;
    let mut store = RootCertStore::empty();
    for cert in certs {
        let cert = cert.map_err(|e| format!("sslrootcert {} is not a PEM certificate file ({e})", path.display()))?;
        store
            .add(cert)
            .map_err(|e| format!("sslrootcert {} holds a certificate rustls cannot use ({e})", path.display()))?;
    }
    if store.is_empty() {
        return Err(format!(
            "sslrootcert {} holds no certificate (expected PEM `BEGIN CERTIFICATE` blocks)",
            path.display()
        ));
    }
    Ok(Some((store, format!("sslrootcert {}", path.display()))))
}

/// The TLS connector for `settings`: the certificate checks its mode asks for.
pub fn connector(settings: &TlsSettings) -> Result<MakeRustlsConnect, String> {
    let provider = provider();
    let roots = if settings.mode == SslMode::Disable { None } else { roots(settings)? };
    let verifier: Arc<dyn ServerCertVerifier> = match roots {
        None => Arc::new(Unverified::new(provider.signature_verification_algorithms)),
        Some((store, _)) => {
            let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider.clone())
                .build()
                .map_err(|e| format!("the CA certificates cannot be used: {e}"))?;
            if settings.mode == SslMode::VerifyFull { webpki } else { Arc::new(ChainOnly::new(webpki)) }
        }
    };
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS cannot be set up: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// The rustls error behind a failed handshake, if that is what `e` is.
pub fn rustls_error(e: &tokio_postgres::Error) -> Option<&rustls::Error> {
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        if let Some(found) = cause.downcast_ref::<rustls::Error>() {
            return Some(found);
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>()
            && let Some(found) = io.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Some(found);
        }
        source = cause.source();
    }
    None
}

/// Whether `e` is a failure to set up TLS (as opposed to a refused or lost connection).
pub fn is_tls_failure(e: &tokio_postgres::Error) -> bool {
    e.to_string().starts_with("error performing TLS handshake")
}

/// What went wrong setting up TLS with `host`, and what to do, for `settings`. `None` when `e` is
/// not a TLS failure.
pub fn explain(e: &tokio_postgres::Error, host: &str, settings: &TlsSettings) -> Option<String> {
    if !is_tls_failure(e) {
        return None;
    }
    let mode = settings.mode.as_str();
    let cas = match &settings.rootcert {
        Some(RootCert::System) => "the system's trusted roots".to_string(),
        Some(RootCert::File(path)) => format!("sslrootcert {}", path.display()),
        None => "libpq's default root certificate file".to_string(),
    };
    let chain = |why: &str| {
        format!(
            "the server's certificate failed verification (sslmode={mode}, the CA check): {why}. Set sslrootcert to the \
             PEM file of the CA that signed the server's certificate (for RDS, the bundle from \
             https://truststore.pki.rds.amazonaws.com), or lower sslmode to require to skip the check"
        )
    };
    let text = match rustls_error(e) {
        None if super::errors::chain(e).contains("server does not support TLS") => format!(
            "the server at {host} does not accept TLS connections, and sslmode={mode} requires TLS: turn on `ssl` \
             on the server, or set sslmode=prefer or disable"
        ),
        None => format!("TLS with {host} could not be set up (sslmode={mode}): {}", super::errors::chain(e)),
        Some(rustls::Error::InvalidCertificate(cert)) => match cert {
            CertificateError::UnknownIssuer => chain(&format!("it is not signed by a CA in {cas}")),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                let presented = match cert {
                    CertificateError::NotValidForNameContext { presented, .. } if !presented.is_empty() => {
                        format!(" (it is for {})", presented.join(", "))
                    }
                    _ => String::new(),
                };
                format!(
                    "the server's certificate failed verification (sslmode=verify-full, the host name check): it is \
                     not valid for the host name `{host}`{presented}. Connect with a name the certificate carries, \
                     or use sslmode=verify-ca to check the CA only"
                )
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                chain(&format!("the certificate of {host} has expired"))
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                chain(&format!("the certificate of {host} is not valid yet (check the clocks)"))
            }
            other => chain(&format!("{other:?}")),
        },
        Some(other) => format!("the TLS handshake with {host} failed (sslmode={mode}): {other}"),
    };
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(dsn: &str) -> TlsSettings {
        split(dsn).unwrap().1
    }

    #[test]
    fn tls_parameters_are_taken_out_of_urls() {
        let (rest, tls) = split(
            "postgres://app:p%40ss@db:5432/app?sslmode=verify-full&sslrootcert=%2Fetc%2Frds.pem&connect_timeout=3",
        )
        .unwrap();
        assert_eq!(rest, "postgres://app:p%40ss@db:5432/app?connect_timeout=3");
        assert_eq!(tls.mode, SslMode::VerifyFull);
        assert_eq!(tls.rootcert, Some(RootCert::File("/etc/rds.pem".into())));
        assert!(tls.mode_given);
        let (rest, tls) = split("postgresql://db/app?sslmode=require").unwrap();
        assert_eq!((rest.as_str(), tls.mode), ("postgresql://db/app", SslMode::Require));
        let (rest, tls) = split("postgres://db/app").unwrap();
        assert_eq!((rest.as_str(), tls.mode, tls.mode_given), ("postgres://db/app", SslMode::Prefer, false));
    }

    #[test]
    fn tls_parameters_are_taken_out_of_keyword_strings() {
        let (rest, tls) =
            split("host=db sslmode = verify-ca  password='a b\\'c' sslrootcert='/etc/my ca.pem' user=app").unwrap();
        assert_eq!(rest, "host=db password='a b\\'c' user=app");
        assert_eq!(tls.mode, SslMode::VerifyCa);
        assert_eq!(tls.rootcert, Some(RootCert::File("/etc/my ca.pem".into())));
    }

    #[test]
    fn modes_are_libpqs() {
        assert_eq!(settings("postgres://db/x?sslmode=disable").mode, SslMode::Disable);
        assert!(split("postgres://db/x?sslmode=allow").unwrap_err().contains("not supported"));
        assert!(split("postgres://db/x?sslmode=strict").unwrap_err().contains("not one of"));
        let e = split("host=db sslcert=/c.pem sslkey=/k.pem").unwrap_err();
        assert!(e.contains("`sslcert`") && e.contains("client certificates"), "{e}");
        // sslrootcert=system means verify-full, and refuses weaker modes.
        assert_eq!(settings("postgres://db/x?sslrootcert=system").mode, SslMode::VerifyFull);
        assert!(split("postgres://db/x?sslrootcert=system&sslmode=require").unwrap_err().contains("verify-full"));
    }

    #[test]
    fn a_missing_ca_file_is_named() {
        let tls = settings("postgres://db/x?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem");
        let e = connector(&tls).err().expect("an error");
        assert!(e.contains("/nonexistent/ca.pem") && e.contains("cannot be read"), "{e}");
        let empty = std::env::temp_dir().join(format!("drctl-empty-ca-{}.pem", std::process::id()));
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let tls = settings(&format!("postgres://db/x?sslmode=verify-ca&sslrootcert={}", empty.display()));
        let e = connector(&tls).err().expect("an error");
        assert!(e.contains("holds no certificate"), "{e}");
        std::fs::remove_file(empty).unwrap();
        // Without a CA, prefer and require connect without checking; disable never needs one.
        assert!(connector(&settings("postgres://db/x?sslmode=require")).is_ok());
        assert!(connector(&settings("postgres://db/x?sslmode=disable&sslrootcert=/nonexistent")).is_ok());
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("%2Fetc%2fa%20b"), "/etc/a b");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}

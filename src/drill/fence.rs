//! The safety fence: a drill refuses to run unless every endpoint it or its plan will touch is an
//! emulator on this machine (a loopback address), except those `--allow-live` names. A drill must
//! never fail over production by accident.

/// The host part of a URL (`http://127.0.0.1:8080/x` → `127.0.0.1`) or of `host:port`.
fn host_of(endpoint: &str) -> &str {
    let rest = endpoint.split_once("://").map_or(endpoint, |(_, rest)| rest);
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    let authority = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    if let Some(bracketed) = authority.strip_prefix('[') {
        return bracketed.split(']').next().unwrap_or(bracketed);
    }
    authority.rsplit_once(':').map_or(authority, |(host, _)| host)
}

/// Whether `host` is this machine: `localhost`, 127.0.0.0/8 or ::1.
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Checks `endpoints` (name, URL or host:port); returns one line per endpoint that is not local
/// and not allowed, or `Ok` when the drill may run.
pub fn check(endpoints: &[(String, String)], allow_live: &[String]) -> Result<(), Vec<String>> {
    let refused: Vec<String> = endpoints
        .iter()
        .filter(|(name, endpoint)| !is_loopback(host_of(endpoint)) && !allow_live.iter().any(|a| a == name))
        .map(|(name, endpoint)| {
            format!(
                "{name} is {endpoint}, not an emulator on this machine (pass `--allow-live {name}` to drill it anyway)"
            )
        })
        .collect();
    if refused.is_empty() { Ok(()) } else { Err(refused) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(name: &str, url: &str) -> (String, String) {
        (name.into(), url.into())
    }

    #[test]
    fn only_loopback_endpoints_pass() {
        let local = [e("aws", "http://127.0.0.1:5000"), e("pg", "127.0.0.1:5433"), e("k", "https://[::1]:6443/x")];
        assert_eq!(check(&local, &[]), Ok(()));
        let live = [e("aws", "https://rds.us-west-2.amazonaws.com"), e("k", "http://localhost:80")];
        let refused = check(&live, &[]).unwrap_err();
        assert_eq!(refused.len(), 1);
        assert!(refused[0].contains("--allow-live aws"), "{refused:?}");
        assert_eq!(check(&live, &["aws".into()]), Ok(()));
        assert!(check(&[e("pg", "10.0.0.5:5432")], &[]).is_err());
        assert!(check(&[e("x", "http://user:pw@127.0.0.1.evil.com/")], &[]).is_err());
    }
}

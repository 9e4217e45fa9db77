//! DNS names and record targets compared as DNS compares them. Pure: no Route53 calls.

use super::params::{RecordType, Target};

/// `C2682N5HXP0BZ4` from `/change/C2682N5HXP0BZ4`.
pub(super) fn short_change_id(id: &str) -> String {
    id.trim_start_matches('/').trim_start_matches("change/").to_string()
}

/// A zone id without the `/hostedzone/` prefix Route53 sometimes adds.
pub(super) fn short_zone_id(id: &str) -> &str {
    id.trim_start_matches('/').trim_start_matches("hostedzone/")
}

/// A DNS name as DNS compares it: ASCII case folded, without the final dot, with Route53's `\ddd`
/// octal escapes (`\052` for `*`) decoded.
pub(super) fn normalise_name(name: &str) -> String {
    let bytes = name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escape =
            bytes.get(i + 1..i + 4).filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match escape.map(|d| d.iter().fold(0u32, |n, b| n * 8 + u32::from(b - b'0'))) {
            Some(code) if code <= 0x7f => {
                out.push(code as u8);
                i += 4;
            }
            _ => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    let mut text = String::from_utf8_lossy(&out).to_ascii_lowercase();
    if text.ends_with('.') {
        text.pop();
    }
    text
}

/// Whether two targets answer the same: alias names and name-valued records compared as DNS names,
/// values in any order.
pub(super) fn same_target(record_type: RecordType, want: &Target, have: &Target) -> bool {
    match (want, have) {
        (
            Target::Alias { zone_id, dns_name, evaluate_target_health },
            Target::Alias { zone_id: have_zone, dns_name: have_name, evaluate_target_health: have_health },
        ) => {
            short_zone_id(zone_id).eq_ignore_ascii_case(short_zone_id(have_zone))
                && normalise_name(dns_name) == normalise_name(have_name)
                && evaluate_target_health == have_health
        }
        (Target::Values { values, ttl }, Target::Values { values: have_values, ttl: have_ttl }) => {
            let sorted = |values: &[String]| {
                let mut values: Vec<String> =
                    values
                        .iter()
                        .map(|v| {
                            if record_type.values_are_names() { normalise_name(v.trim()) } else { v.trim().to_string() }
                        })
                        .collect();
                values.sort();
                values
            };
            ttl == have_ttl && sorted(values) == sorted(have_values)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alias(dns_name: &str) -> Target {
        Target::Alias { zone_id: "ZLB".into(), dns_name: dns_name.into(), evaluate_target_health: false }
    }

    fn values(values: &[&str], ttl: i64) -> Target {
        Target::Values { values: values.iter().map(|v| v.to_string()).collect(), ttl }
    }

    #[test]
    fn names_compare_without_case_final_dot_or_escapes() {
        assert_eq!(normalise_name("API.Example.com."), "api.example.com");
        assert_eq!(normalise_name("\\052.example.com."), "*.example.com");
        assert_eq!(normalise_name("a\\05x.example.com"), "a\\05x.example.com", "not an escape");
        assert_eq!(normalise_name("."), "");
        assert_eq!(short_change_id("/change/C2682N5HXP0BZ4"), "C2682N5HXP0BZ4");
        assert_eq!(short_zone_id("/hostedzone/Z123"), "Z123");
    }

    #[test]
    fn targets_compare_as_dns_does() {
        let want = alias("dr-lb.us-west-2.elb.amazonaws.com");
        assert!(same_target(RecordType::A, &want, &alias("DR-LB.us-west-2.elb.amazonaws.com.")));
        assert!(!same_target(RecordType::A, &want, &alias("primary-lb.us-east-1.elb.amazonaws.com.")));
        let mut health = alias("dr-lb.us-west-2.elb.amazonaws.com");
        if let Target::Alias { evaluate_target_health, zone_id, .. } = &mut health {
            *evaluate_target_health = true;
            *zone_id = "/hostedzone/ZLB".into();
        }
        assert!(!same_target(RecordType::A, &want, &health), "evaluate_target_health differs");

        let ips = values(&["10.0.0.1", "10.0.0.2"], 60);
        assert!(same_target(RecordType::A, &ips, &values(&["10.0.0.2", "10.0.0.1"], 60)), "any order");
        assert!(!same_target(RecordType::A, &ips, &values(&["10.0.0.1", "10.0.0.2"], 300)), "ttl differs");
        assert!(!same_target(RecordType::A, &ips, &values(&["10.0.0.1"], 60)));
        assert!(!same_target(RecordType::A, &ips, &want));
        let cname = values(&["dr.example.com"], 60);
        assert!(same_target(RecordType::Cname, &cname, &values(&["DR.example.com."], 60)));
        let txt = values(&["\"Hello\""], 60);
        assert!(!same_target(RecordType::Txt, &txt, &values(&["\"hello\""], 60)), "TXT is case-sensitive");
    }
}

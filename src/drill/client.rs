//! The drill's synthetic client: what users live through. Every interval it resolves the public
//! name as a client would, from the Route53 record in the emulated AWS, caching each answer for the
//! record's TTL (or the drill's `client_dns_ttl`), then commits one numbered write through the app of
//! the region it resolved (`POST <app>/regions/<region>/write`). Every attempt is recorded, acknowledged or
//! not; [`super::measure`] turns the record into the RTO, the RPO and the split-brain count.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_sdk_route53::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_route53::types::RrType;
use tokio::task::JoinHandle;
use tokio_postgres::Client as PgClient;

use super::heartbeat::TABLE;
use super::measure::Attempt;
use crate::clock::Clock;
use crate::steps::pg::errors::chain;

/// The TTL of an alias record, which has none of its own: Route53 answers with the target's, 60 s
/// for an Elastic Load Balancing load balancer.
pub const ALIAS_TTL: Duration = Duration::from_secs(60);

/// How long one write may take before it counts as failed.
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// A cached DNS answer: the region the name resolved to, until when.
#[derive(Debug, Clone, Default)]
pub struct DnsCache {
    answer: Option<(String, SystemTime)>,
}

impl DnsCache {
    /// The cached region, while its TTL runs.
    pub fn get(&self, now: SystemTime) -> Option<&str> {
        self.answer.as_ref().filter(|(_, until)| now < *until).map(|(region, _)| region.as_str())
    }

    /// Caches `region` for `ttl` from `now`.
    pub fn put(&mut self, region: &str, ttl: Duration, now: SystemTime) {
        self.answer = Some((region.to_string(), now + ttl));
    }
}

/// Where the client resolves and writes.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    pub interval: Duration,
    /// Overrides the record's TTL.
    pub dns_ttl: Option<Duration>,
    /// The AWS endpoint (the emulator) and its access key.
    pub aws_endpoint: String,
    pub aws_access_key: (String, String),
    pub zone_id: String,
    /// `api.example.com`.
    pub record: String,
    /// The regions a record can point at (named in the target's DNS name or value).
    pub regions: Vec<String>,
    /// The apps' base URL: writes go to `<app_url>/regions/<region>/write`.
    pub app_url: String,
}

/// A running client.
pub struct Client {
    task: JoinHandle<()>,
    attempts: Arc<Mutex<Vec<Attempt>>>,
}

impl Client {
    /// Starts writing now; attempts are timed on `clock`, the drill's one source of time.
    pub fn start(http: reqwest::Client, settings: ClientSettings, clock: Arc<dyn Clock>) -> Client {
        let attempts = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn(write_loop(http, settings, attempts.clone(), clock));
        Client { task, attempts }
    }

    /// Stops writing; returns every attempt, in order.
    pub fn stop(self) -> Vec<Attempt> {
        self.task.abort();
        std::mem::take(&mut *self.attempts.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

async fn write_loop(
    http: reqwest::Client,
    settings: ClientSettings,
    attempts: Arc<Mutex<Vec<Attempt>>>,
    clock: Arc<dyn Clock>,
) {
    let (key, secret) = &settings.aws_access_key;
    let config = aws_sdk_route53::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&settings.aws_endpoint)
        .credentials_provider(Credentials::new(key, secret, None, None, "drill"))
        .build();
    let route53 = aws_sdk_route53::Client::from_conf(config);
    let mut cache = DnsCache::default();
    let mut ticker = tokio::time::interval(settings.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for seq in 1_u64.. {
        ticker.tick().await;
        let sent_at = clock.now();
        let region = match cache.get(sent_at) {
            Some(region) => Ok(region.to_string()),
            None => resolve(&route53, &settings).await.map(|(region, ttl)| {
                cache.put(&region, settings.dns_ttl.unwrap_or(ttl), sent_at);
                region
            }),
        };
        let result = match &region {
            Ok(region) => write(&http, &settings.app_url, region, seq).await,
            Err(e) => Err(e.clone()),
        };
        let attempt = Attempt { seq, sent_at, answered_at: clock.now(), region: region.ok(), result };
        attempts.lock().unwrap_or_else(|e| e.into_inner()).push(attempt);
    }
}

/// The region `settings.record` points at and the answer's TTL.
async fn resolve(route53: &aws_sdk_route53::Client, settings: &ClientSettings) -> Result<(String, Duration), String> {
    let name = format!("{}.", settings.record.trim_end_matches('.'));
    let answer = route53
        .list_resource_record_sets()
        .hosted_zone_id(&settings.zone_id)
        .start_record_name(&name)
        .start_record_type(RrType::A)
        .max_items(1)
        .send()
        .await
        .map_err(|e| {
            format!("cannot resolve {}: {}", settings.record, aws_sdk_route53::error::DisplayErrorContext(e))
        })?;
    let record = answer
        .resource_record_sets()
        .iter()
        .find(|r| r.name() == name && *r.r#type() == RrType::A)
        .ok_or_else(|| format!("{} has no A record", settings.record))?;
    let (targets, ttl): (Vec<String>, Duration) = match record.alias_target() {
        Some(alias) => (vec![alias.dns_name().to_string()], ALIAS_TTL),
        None => (
            record.resource_records().iter().map(|r| r.value().to_string()).collect(),
            Duration::from_secs(record.ttl().unwrap_or(0).max(0) as u64),
        ),
    };
    let region =
        settings.regions.iter().find(|region| targets.iter().any(|t| t.contains(region.as_str()))).ok_or_else(
            || format!("{} points at {}, in none of the plan's regions", settings.record, targets.join(", ")),
        )?;
    Ok((region.clone(), ttl))
}

/// One write through `region`'s app; the commit time it reports, or why not.
async fn write(http: &reqwest::Client, app_url: &str, region: &str, seq: u64) -> Result<SystemTime, String> {
    let url = format!("{}/regions/{region}/write", app_url.trim_end_matches('/'));
    let answer =
        http.post(&url).json(&serde_json::json!({ "seq": seq })).timeout(WRITE_TIMEOUT).send().await.map_err(|e| {
            format!("{region}: no answer ({})", if e.is_timeout() { "timed out" } else { "connection failed" })
        })?;
    let status = answer.status();
    let body: serde_json::Value = answer.json().await.unwrap_or_default();
    match body["committed_at_us"].as_u64() {
        Some(us) if status.is_success() => Ok(SystemTime::UNIX_EPOCH + Duration::from_micros(us)),
        _ => Err(format!("{region}: {status}: {}", body["error"].as_str().unwrap_or("no reason given"))),
    }
}

async fn connect(dsn: &str) -> Result<PgClient, String> {
    // The same connection as every other drctl connection: libpq's sslmode and sslrootcert honoured.
    crate::steps::pg::connect(dsn, &crate::steps::pg::Auth::Dsn)
        .await
        .map_err(|e| format!("cannot connect for the client's writes: {e}"))
}

/// Creates the client's table afresh on the primary at `dsn` (the drill's superuser) and lets
/// `app_role` insert into it; it replicates to the DR database.
pub async fn prepare_table(dsn: &str, app_role: &str) -> Result<(), String> {
    let client = connect(dsn).await?;
    let create = format!(
        "DROP TABLE IF EXISTS {TABLE}; CREATE TABLE {TABLE} (seq bigint PRIMARY KEY, at timestamptz NOT NULL); \
         GRANT SELECT, INSERT ON {TABLE} TO \"{}\"",
        app_role.replace('"', "\"\"")
    );
    client.batch_execute(&create).await.map_err(|e| format!("cannot create {TABLE}: {}", chain(&e)))
}

/// Whether the server at `dsn` answers and is a primary.
pub async fn is_primary(dsn: &str) -> bool {
    match connect(dsn).await {
        Ok(client) => client.query_one("SELECT NOT pg_is_in_recovery()", &[]).await.is_ok_and(|r| r.get::<_, bool>(0)),
        Err(_) => false,
    }
}

/// The sequence numbers present in the client's table at `dsn`.
pub async fn present(dsn: &str) -> Result<BTreeSet<u64>, String> {
    let client = connect(dsn).await?;
    let rows = client
        .query(&format!("SELECT seq FROM {TABLE}"), &[])
        .await
        .map_err(|e| format!("cannot read {TABLE}: {}", chain(&e)))?;
    Ok(rows.iter().map(|r| r.get::<_, i64>(0) as u64).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drill::measure::{Facts, measure};

    fn at(ms: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(ms)
    }

    #[test]
    fn a_cached_answer_lasts_its_ttl() {
        let mut cache = DnsCache::default();
        assert_eq!(cache.get(at(0)), None);
        cache.put("us-east-1", Duration::from_secs(5), at(1000));
        assert_eq!(cache.get(at(5999)), Some("us-east-1"));
        assert_eq!(cache.get(at(6000)), None);
    }

    /// The client's loop without I/O: DNS moves to us-west-2 at `dns_moves_ms`; us-east-1 refuses
    /// writes from the fault at 1000 ms, us-west-2 accepts them from the promotion at 1500 ms.
    fn traffic(ttl: Duration, dns_moves_ms: u64) -> Vec<Attempt> {
        let mut cache = DnsCache::default();
        (0..150)
            .map(|i| {
                let now = at(i * 100);
                let region = match cache.get(now) {
                    Some(region) => region.to_string(),
                    None => {
                        let truth = if i * 100 < dns_moves_ms { "us-east-1" } else { "us-west-2" };
                        cache.put(truth, ttl, now);
                        truth.to_string()
                    }
                };
                let ok = if region == "us-east-1" { i * 100 < 1000 } else { i * 100 >= 1500 };
                let result = if ok { Ok(now + Duration::from_millis(2)) } else { Err("refused".to_string()) };
                Attempt {
                    seq: i + 1,
                    sent_at: now,
                    answered_at: now + Duration::from_millis(5),
                    region: Some(region),
                    result,
                }
            })
            .collect()
    }

    #[test]
    fn a_dns_ttl_delays_recovery_past_the_dns_change() {
        let measure_with = |ttl: Duration| {
            let attempts = traffic(ttl, 2000);
            let present: BTreeSet<u64> = attempts.iter().filter(|a| a.result.is_ok()).map(|a| a.seq).collect();
            let facts = Facts {
                fault_at: at(1000),
                promoted_at: Some(at(1500)),
                old_primary_region: "us-east-1",
                present: &present,
            };
            measure(&attempts, &facts).rto.unwrap()
        };
        // Without caching, clients recover with the first write after DNS moved.
        assert_eq!(measure_with(Duration::ZERO), Duration::from_millis(1005));
        // Cached for 5 s from the answer at 0 ms: us-east-1 until 5000 ms, 3 s after DNS moved.
        assert_eq!(measure_with(Duration::from_secs(5)), Duration::from_millis(4005));
        // The record's 60 s would outlast the whole run: no recovery seen at all.
        let attempts = traffic(ALIAS_TTL, 2000);
        let present = BTreeSet::new();
        let facts = Facts { fault_at: at(1000), promoted_at: None, old_primary_region: "us-east-1", present: &present };
        assert_eq!(measure(&attempts, &facts).rto, None);
    }
}

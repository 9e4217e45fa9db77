//! AWS calls under faults: drctl runs Route53 steps through [`FaultProxy`], which answers a seeded
//! ~30% of the calls with throttling (400) or 503 and forwards the rest to moto. The runs must
//! finish with the records right, the retries journaled, and no change applied twice. Also checks
//! that the proxy forwards requests faithfully, as the RDS and Secrets Manager tests rely on it.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;

use aws_sdk_route53::Client;
use aws_sdk_route53::config::Credentials;
use aws_sdk_route53::types::{ResourceRecordSet, RrType};
use serde_json::Value;
use support::fault_proxy::{FaultProxy, ProxiedRequest, Reply, random_faults};
use support::moto::Moto;
use support::{Out, TestDir, drctl, records, run, show};

/// The share of calls the proxy faults.
const SHARE: f64 = 0.3;

/// moto with one hosted zone, and an SDK client to read it back.
struct Route53 {
    moto: Moto,
    runtime: tokio::runtime::Runtime,
    client: Client,
    zone: String,
}

impl Route53 {
    fn start() -> Route53 {
        let moto = Moto::start();
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("a runtime");
        let (client, zone) = runtime.block_on(async {
            let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
                .endpoint_url(moto.url())
                .region("us-east-1")
                .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
                .load()
                .await;
            let client = Client::new(&config);
            let created = client.create_hosted_zone().name("example.com").caller_reference("z").send().await;
            let zone = created.expect("create the hosted zone").hosted_zone().expect("a zone").id().to_string();
            (client, zone.trim_start_matches("/hostedzone/").to_string())
        });
        Route53 { moto, runtime, client, zone }
    }

    /// The only record `name` of `rr_type` with `set_identifier`.
    fn record(&self, name: &str, rr_type: RrType, set_identifier: Option<&str>) -> ResourceRecordSet {
        let listed = self
            .runtime
            .block_on(self.client.list_resource_record_sets().hosted_zone_id(&self.zone).send())
            .expect("list the records");
        let found: Vec<_> = listed
            .resource_record_sets()
            .iter()
            .filter(|r| r.name().trim_end_matches('.') == name && *r.r#type() == rr_type)
            .filter(|r| r.set_identifier() == set_identifier)
            .cloned()
            .collect();
        assert_eq!(found.len(), 1, "one {name} {rr_type} record with set {set_identifier:?}: {found:#?}");
        found.into_iter().next().unwrap()
    }

    /// A failover of four record changes, one after the other (so the seeded faults hit the same
    /// calls on every run), each with 5 retries.
    fn plan(&self) -> String {
        let zone = &self.zone;
        let step = |id: &str, after: &str, with: &str| {
            format!(
                "  - id: {id}\n    type: aws.route53.upsert_record\n{after}    with:\n      zone_id: {zone}\n{with}"
            )
        };
        let steps = [
            step(
                "api",
                "",
                "      name: api.example.com\n      type: A\n      alias: {zone_id: Z1H1FL5HABSF5, dns_name: dr-lb.us-west-2.elb.amazonaws.com}\n",
            ),
            step(
                "blue",
                "    after: [api]\n",
                "      name: app.example.com\n      type: A\n      values: [10.0.0.1]\n      set_identifier: blue\n      weight: 0\n",
            ),
            step(
                "green",
                "    after: [blue]\n",
                "      name: app.example.com\n      type: A\n      values: [10.0.1.1]\n      set_identifier: green\n      weight: 100\n",
            ),
            step("www", "    after: [green]\n", "      name: www.example.com\n      type: CNAME\n      values: [app.example.com]\n"),
        ]
        .concat();
        format!(
            "name: faults\n\
             regions: {{primary: us-east-1, secondary: us-west-2}}\n\
             objectives: {{rto: 15m, rpo: 5m}}\n\
             defaults: {{timeout: 2m, retries: 5}}\n\
             failover:\n{steps}\
             failback:\n  - id: back\n    type: wait\n    with: {{duration: 1ms}}\n"
        )
    }

    /// Every record of the plan is at its target.
    fn assert_failed_over(&self, ctx: &str) {
        let api = self.record("api.example.com", RrType::A, None);
        let alias = api.alias_target().expect("an alias").dns_name().trim_end_matches('.');
        assert_eq!(alias, "dr-lb.us-west-2.elb.amazonaws.com", "{ctx}");
        let blue = self.record("app.example.com", RrType::A, Some("blue"));
        let green = self.record("app.example.com", RrType::A, Some("green"));
        assert_eq!((blue.weight(), green.weight()), (Some(0), Some(100)), "{ctx}");
        assert_eq!(green.resource_records()[0].value(), "10.0.1.1", "{ctx}");
        let www = self.record("www.example.com", RrType::Cname, None);
        assert_eq!((www.resource_records()[0].value(), www.ttl()), ("app.example.com", Some(60)), "{ctx}");
    }
}

/// Throttling or 503, half and half.
fn faults(seed: u64) -> impl FnMut(&ProxiedRequest) -> Option<Reply> + Send {
    random_faults(seed, SHARE, vec![Reply::xml_throttling(), Reply::service_unavailable()])
}

/// `drctl failover` of `plan` through `proxy`, with moto's environment and `env` on top.
fn failover(dir: &TestDir, plan: &Path, route53: &Route53, proxy: &FaultProxy, env: &[(&str, &str)]) -> Out {
    let mut command = drctl(dir);
    command.arg("failover").arg("--plan").arg(plan).arg("--yes").arg("--endpoint-url").arg(proxy.url());
    command.envs(route53.moto.env()).env_remove("AWS_MAX_ATTEMPTS").env_remove("AWS_RETRY_MODE");
    command.envs(env.iter().copied());
    run(command)
}

fn context(out: &Out, dir: &TestDir, proxy: &FaultProxy) -> String {
    format!("{out}{}--- {} of {} calls faulted:\n{}", dir.journals_text(), proxy.faulted(), proxy.total(), proxy.log())
}

/// UPSERTs that reached moto (faulted ones never do).
fn applied_upserts(proxy: &FaultProxy) -> usize {
    proxy.exchanges().iter().filter(|e| !e.faulted && e.method == "POST" && e.target.contains("/rrset")).count()
}

/// The ids of the steps that succeeded.
fn succeeded(journal: &[Value]) -> Vec<String> {
    records(journal, "step_succeeded", None).iter().map(|r| r["step"].as_str().unwrap().to_string()).collect()
}

/// With the SDK's own retries off (`AWS_MAX_ATTEMPTS=1`) every fault reaches the engine: the steps
/// retry, the retries are journaled, and a change that went through is not sent again.
#[test]
fn route53_upserts_complete_through_throttling_and_503s() {
    let route53 = Route53::start();
    // Seed 9 faults 7 of the 23 calls, both kinds, and no step needs more than 2 retries. (At 30%,
    // about one seed in ten ends with fewer than 15% faulted or a step out of its 5 retries.)
    let proxy = FaultProxy::start(&route53.moto.url(), faults(9));
    let dir = TestDir::new("faults-engine");
    let plan = dir.write_plan("faults.yaml", &route53.plan());
    let out = failover(&dir, &plan, &route53, &proxy, &[("AWS_MAX_ATTEMPTS", "1")]);
    let ctx = context(&out, &dir, &proxy);
    out.expect_code(0, &ctx);
    route53.assert_failed_over(&ctx);

    let share = proxy.faulted() as f64 / proxy.total() as f64;
    assert!((0.15..=0.5).contains(&share), "{} of {} calls faulted\n{ctx}", proxy.faulted(), proxy.total());
    let statuses: Vec<u16> = proxy.exchanges().iter().filter(|e| e.faulted).map(|e| e.status).collect();
    assert!(statuses.contains(&400) && statuses.contains(&503), "both kinds of fault: {statuses:?}\n{ctx}");

    let journal = dir.only_journal();
    let retrying = records(&journal, "step_retrying", None);
    assert!(!retrying.is_empty(), "no step_retrying records\n{}", show(&journal));
    for record in &retrying {
        let error = record["error"].as_str().unwrap();
        assert!(error.contains("Throttling") || error.contains("503") || error.contains("Unknown"), "{error}");
    }
    assert!(retrying.iter().any(|r| r["error"].as_str().unwrap().contains("AWS answered Throttling")), "{ctx}");
    assert_eq!(succeeded(&journal), ["api", "blue", "green", "www"], "{}", show(&journal));
    assert_eq!(applied_upserts(&proxy), 4, "an UPSERT was applied twice\n{ctx}");
    eprintln!("{} of {} calls faulted; {} step retries", proxy.faulted(), proxy.total(), retrying.len());
    // The first observation's value survives retries: `api` had no record, the others neither.
    let api = &records(&journal, "step_succeeded", Some("api"))[0]["outputs"];
    assert_eq!(
        (api["previous_target"].as_str(), api["target"].as_str()),
        (None, Some("dr-lb.us-west-2.elb.amazonaws.com"))
    );
}

/// With the SDK's default retries (3 attempts), most faults never reach the engine; the run still
/// ends with every record right.
#[test]
fn route53_upserts_complete_with_the_sdk_retrying_by_default() {
    let route53 = Route53::start();
    let proxy = FaultProxy::start(&route53.moto.url(), faults(5));
    let dir = TestDir::new("faults-sdk");
    let plan = dir.write_plan("faults.yaml", &route53.plan());
    let out = failover(&dir, &plan, &route53, &proxy, &[]);
    let ctx = context(&out, &dir, &proxy);
    out.expect_code(0, &ctx);
    route53.assert_failed_over(&ctx);
    assert!(proxy.faulted() >= 2, "{ctx}");
    let journal = dir.only_journal();
    assert_eq!(succeeded(&journal), ["api", "blue", "green", "www"], "{}", show(&journal));
    assert_eq!(applied_upserts(&proxy), 4, "{ctx}");
    let retries = records(&journal, "step_retrying", None).len();
    eprintln!("{} of {} calls faulted; {retries} step retries", proxy.faulted(), proxy.total());
}

/// A one-shot upstream on 127.0.0.1 that keeps the raw request and answers `response`.
fn raw_upstream(response: &'static str) -> (String, std::thread::JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let thread = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = Vec::new();
        let mut chunk = [0u8; 4096];
        while !String::from_utf8_lossy(&request).contains("\r\n\r\nhello") {
            let n = stream.read(&mut chunk).unwrap();
            assert!(n > 0, "the proxy closed before sending the body");
            request.extend_from_slice(&chunk[..n]);
        }
        stream.write_all(response.as_bytes()).unwrap();
        request
    });
    (url, thread)
}

/// Sends `request` to `url` and reads the answer until the proxy closes.
fn send(url: &str, request: &str) -> String {
    let mut stream = TcpStream::connect(url.trim_start_matches("http://")).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn the_proxy_forwards_requests_and_answers_unchanged() {
    // Upstream answers without a length, ending the body by closing, as some servers do.
    let (upstream, seen) =
        raw_upstream("HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nx-amzn-RequestId: r1\r\n\r\n<ok/>");
    let proxy = FaultProxy::start(&upstream, |_| None);
    let request = "POST /2013-04-01/hostedzone/Z1/rrset?x=1&y=2 HTTP/1.1\r\nHost: 127.0.0.1:9\r\n\
                   Authorization: AWS4-HMAC-SHA256 Credential=testing/x\r\nX-Amz-Date: 20250101T000000Z\r\n\
                   Content-Type: application/xml\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\nhello";
    let response = send(&proxy.url(), request);
    let seen = String::from_utf8(seen.join().unwrap()).unwrap();
    assert!(seen.starts_with("POST /2013-04-01/hostedzone/Z1/rrset?x=1&y=2 HTTP/1.1\r\n"), "{seen}");
    for header in [
        "Host: 127.0.0.1:9\r\n",
        "Authorization: AWS4-HMAC-SHA256 Credential=testing/x\r\n",
        "X-Amz-Date: 20250101T000000Z\r\n",
        "Content-Length: 5\r\n",
    ] {
        assert!(seen.contains(header), "{header:?} was not forwarded: {seen}");
    }
    assert!(seen.ends_with("\r\n\r\nhello"), "{seen}");
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(response.contains("x-amzn-RequestId: r1\r\n") && response.contains("Content-Length: 5\r\n"), "{response}");
    assert!(response.ends_with("\r\n\r\n<ok/>"), "{response}");
    let exchanges = proxy.exchanges();
    assert_eq!((exchanges.len(), exchanges[0].status, exchanges[0].faulted), (1, 200, false));
    assert_eq!(exchanges[0].operation, "POST /2013-04-01/hostedzone/Z1/rrset");
}

#[test]
fn faults_are_answered_by_the_proxy_alone() {
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    upstream.set_nonblocking(true).unwrap();
    let proxy =
        FaultProxy::start(&format!("http://{}", upstream.local_addr().unwrap()), |_| Some(Reply::json_throttling()));
    let request = "POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: secretsmanager.GetSecretValue\r\n\
                   Content-Type: application/x-amz-json-1.1\r\nContent-Length: 2\r\n\r\n{}";
    let response = send(&proxy.url(), request);
    assert!(response.starts_with("HTTP/1.1 400 "), "{response}");
    assert!(response.contains("x-amzn-ErrorType: ThrottlingException\r\n"), "{response}");
    assert!(response.ends_with(r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#), "{response}");
    assert!(upstream.accept().is_err(), "a faulted request reached upstream");
    let exchanges = proxy.exchanges();
    assert_eq!((exchanges[0].status, exchanges[0].faulted), (400, true));
    assert_eq!(exchanges[0].operation, "GetSecretValue");
    assert_eq!((proxy.total(), proxy.faulted()), (1, 1));
}

#[test]
fn seeded_faults_repeat_and_keep_to_their_share() {
    let request = ProxiedRequest { method: "GET".into(), target: "/".into(), headers: Vec::new(), body: Vec::new() };
    let decisions = |seed| {
        let mut decide = faults(seed);
        (0..1000).map(|_| decide(&request).map(|reply| reply.status)).collect::<Vec<_>>()
    };
    assert_eq!(decisions(11), decisions(11));
    assert_ne!(decisions(11), decisions(12));
    let faulted: Vec<u16> = decisions(11).into_iter().flatten().collect();
    assert!((250..350).contains(&faulted.len()), "{} of 1000", faulted.len());
    assert!(faulted.contains(&400) && faulted.contains(&503));
    let query = ProxiedRequest {
        method: "POST".into(),
        target: "/".into(),
        headers: vec![("Content-Type".into(), "application/x-www-form-urlencoded; charset=utf-8".into())],
        body: b"Action=PromoteReadReplica&Version=2014-10-31".to_vec(),
    };
    assert_eq!(query.operation(), "PromoteReadReplica");
}

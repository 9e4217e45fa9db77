//! `aws.route53.upsert_record` end to end: the drctl binary against moto, through a proxy that
//! faults nothing but counts the calls. Hosted zones and starting records are made with the AWS
//! SDK directly; the assertions read moto's records back, and the journal's outputs.

// Real time is the point here: tests wait on real servers and processes, not a run's clock.
#![allow(clippy::disallowed_methods)]

mod support;

use std::path::Path;

use aws_sdk_route53::Client;
use aws_sdk_route53::types::{
    AliasTarget, Change, ChangeAction, ChangeBatch, HealthCheckConfig, HealthCheckType, ResourceRecord,
    ResourceRecordSet, ResourceRecordSetFailover, RrType,
};
use serde_json::Value;
use support::fault_proxy::{FaultProxy, no_faults};
use support::moto::Moto;
use support::{Out, TestDir, drctl, records, run, show};

const PRIMARY_LB: &str = "primary-lb.us-east-1.elb.amazonaws.com";
const DR_LB: &str = "dr-lb.us-west-2.elb.amazonaws.com";
/// The canonical hosted zones of the two load balancers (alias targets' zones).
const PRIMARY_LB_ZONE: &str = "Z35SXDOTRQ7X7K";
const DR_LB_ZONE: &str = "Z1H1FL5HABSF5";

/// moto, a counting proxy in front of it, an SDK client for setup and checks, a state directory.
struct Fixture {
    moto: Moto,
    proxy: FaultProxy,
    runtime: tokio::runtime::Runtime,
    client: Client,
    dir: TestDir,
}

impl Fixture {
    fn new(label: &str) -> Fixture {
        let moto = Moto::start();
        let proxy = FaultProxy::start(&moto.url(), no_faults());
        let runtime = Moto::runtime();
        let client = Client::new(&moto.sdk_config(&runtime, "us-east-1"));
        Fixture { moto, proxy, runtime, client, dir: TestDir::new(label) }
    }

    /// Creates the hosted zone `name` and returns its id (without `/hostedzone/`).
    fn create_zone(&self, name: &str) -> String {
        let created = self
            .runtime
            .block_on(self.client.create_hosted_zone().name(name).caller_reference(name).send())
            .expect("create the hosted zone");
        let id = created.hosted_zone().expect("a hosted zone").id();
        id.trim_start_matches("/hostedzone/").to_string()
    }

    /// Creates a health check and returns its id.
    fn create_health_check(&self) -> String {
        let config = HealthCheckConfig::builder()
            .r#type(HealthCheckType::Https)
            .fully_qualified_domain_name(PRIMARY_LB)
            .resource_path("/health")
            .build()
            .unwrap();
        let created = self
            .runtime
            .block_on(self.client.create_health_check().caller_reference("hc").health_check_config(config).send())
            .expect("create the health check");
        created.health_check().expect("a health check").id().to_string()
    }

    /// UPSERTs `set` into `zone`, as someone did before drctl ran.
    fn put(&self, zone: &str, set: ResourceRecordSet) {
        let change = Change::builder().action(ChangeAction::Upsert).resource_record_set(set).build().unwrap();
        let batch = ChangeBatch::builder().changes(change).build().unwrap();
        self.runtime
            .block_on(self.client.change_resource_record_sets().hosted_zone_id(zone).change_batch(batch).send())
            .expect("put the starting record");
    }

    /// Every record of `zone`.
    fn records(&self, zone: &str) -> Vec<ResourceRecordSet> {
        let listed = self
            .runtime
            .block_on(self.client.list_resource_record_sets().hosted_zone_id(zone).send())
            .expect("list the records");
        listed.resource_record_sets().to_vec()
    }

    /// The records of `zone` named `name` (with or without the final dot) of type `rr_type`.
    fn named(&self, zone: &str, name: &str, rr_type: RrType) -> Vec<ResourceRecordSet> {
        let name = name.trim_end_matches('.');
        self.records(zone)
            .into_iter()
            .filter(|r| r.name().trim_end_matches('.').eq_ignore_ascii_case(name) && *r.r#type() == rr_type)
            .collect()
    }

    /// The only record named `name` of type `rr_type` with `set_identifier`.
    fn record(&self, zone: &str, name: &str, rr_type: RrType, set_identifier: Option<&str>) -> ResourceRecordSet {
        let mut found: Vec<_> =
            self.named(zone, name, rr_type).into_iter().filter(|r| r.set_identifier() == set_identifier).collect();
        assert_eq!(found.len(), 1, "one {name} record with set {set_identifier:?}: {found:#?}");
        found.remove(0)
    }

    /// `drctl <direction> --plan <plan> --yes --endpoint-url <proxy>` with moto's environment.
    fn drctl(&self, direction: &str, plan: &Path) -> Out {
        let mut command = drctl(&self.dir);
        command.arg(direction).arg("--plan").arg(plan).arg("--yes").arg("--endpoint-url").arg(self.proxy.url());
        command.arg("--new-run"); // the tests run a direction again on purpose, to see it change nothing
        command.envs(self.moto.env());
        run(command)
    }

    /// How many ChangeResourceRecordSets calls went through drctl's endpoint.
    fn upserts(&self) -> usize {
        self.proxy.exchanges().iter().filter(|e| e.method == "POST" && e.target.contains("/rrset")).count()
    }

    /// Everything worth seeing when a test fails.
    fn context(&self, out: &Out) -> String {
        format!("{out}{}--- calls through the proxy:\n{}", self.dir.journals_text(), self.proxy.log())
    }

    /// The journal of the run that is not among `before`.
    fn new_journal(&self, before: &[String]) -> Vec<Value> {
        let id = self.dir.run_ids().into_iter().find(|id| !before.contains(id)).expect("a new run");
        self.dir.journal(&id)
    }
}

fn alias_set(name: &str, dns_name: &str, lb_zone: &str) -> ResourceRecordSet {
    let target = AliasTarget::builder().hosted_zone_id(lb_zone).dns_name(dns_name).evaluate_target_health(true);
    ResourceRecordSet::builder().name(name).r#type(RrType::A).alias_target(target.build().unwrap()).build().unwrap()
}

fn weighted_set(set_identifier: &str, ip: &str, weight: i64) -> ResourceRecordSet {
    ResourceRecordSet::builder()
        .name("app.example.com")
        .r#type(RrType::A)
        .set_identifier(set_identifier)
        .weight(weight)
        .ttl(60)
        .resource_records(ResourceRecord::builder().value(ip).build().unwrap())
        .build()
        .unwrap()
}

/// The alias DNS name of `set`, without the final dot.
fn alias_of(set: &ResourceRecordSet) -> String {
    set.alias_target().expect("an alias record").dns_name().trim_end_matches('.').to_string()
}

/// A plan with `failover` and `failback` step lists (YAML list items indented by two spaces).
fn plan(failover: &str, failback: &str) -> String {
    format!(
        "name: dns\n\
         regions: {{primary: us-east-1, secondary: us-west-2}}\n\
         objectives: {{rto: 15m, rpo: 5m}}\n\
         defaults: {{timeout: 60s, retries: 3}}\n\
         failover:\n{failover}failback:\n{failback}"
    )
}

/// An `aws.route53.upsert_record` step `id` with `with` (lines indented by six spaces).
fn step(id: &str, with: &str) -> String {
    format!("  - id: {id}\n    type: aws.route53.upsert_record\n    with:\n{with}")
}

/// The alias step of the runbook: `name` A → `dns_name` in the load balancer's zone.
fn alias_step(zone: &str, name: &str, dns_name: &str, lb_zone: &str) -> String {
    step(
        "swap-dns",
        &format!(
            "      zone_id: {zone}\n      name: {name}\n      type: A\n      alias:\n        zone_id: {lb_zone}\n        \
             dns_name: {dns_name}\n        evaluate_target_health: true\n"
        ),
    )
}

/// The outputs and `already_done` of `step`'s `step_succeeded` record.
fn succeeded<'a>(journal: &'a [Value], step: &str) -> (&'a Value, bool) {
    let found = records(journal, "step_succeeded", Some(step));
    assert_eq!(found.len(), 1, "{step} succeeded once\n{}", show(journal));
    (&found[0]["outputs"], found[0]["already_done"].as_bool().expect("already_done"))
}

#[test]
fn failover_moves_the_alias_a_second_run_changes_nothing_and_failback_returns_it() {
    let f = Fixture::new("r53-alias");
    let zone = f.create_zone("example.com");
    f.put(&zone, alias_set("api.example.com", PRIMARY_LB, PRIMARY_LB_ZONE));
    // The failback spells the name differently: it must still replace the same record.
    let plan_text = plan(
        &alias_step(&zone, "api.example.com", DR_LB, DR_LB_ZONE),
        &alias_step(&zone, "API.Example.com.", PRIMARY_LB, PRIMARY_LB_ZONE),
    );
    let plan_path = f.dir.write_plan("dns.yaml", &plan_text);

    let out = f.drctl("failover", &plan_path);
    let ctx = f.context(&out);
    out.expect_code(0, &ctx);
    let record = f.record(&zone, "api.example.com", RrType::A, None);
    assert_eq!(alias_of(&record), DR_LB, "{ctx}");
    let alias = record.alias_target().unwrap();
    assert_eq!((alias.hosted_zone_id(), alias.evaluate_target_health()), (DR_LB_ZONE, true), "{ctx}");
    let journal = f.dir.only_journal();
    let (outputs, already_done) = succeeded(&journal, "swap-dns");
    assert!(!already_done, "{}", show(&journal));
    assert_eq!(outputs["previous_target"], PRIMARY_LB, "{}", show(&journal));
    assert_eq!(outputs["target"], DR_LB);
    assert!(!outputs["change_id"].as_str().unwrap().is_empty(), "{}", show(&journal));
    assert_eq!(f.upserts(), 1, "{ctx}");

    // Again: the record is already there, so nothing is changed.
    let before = f.dir.run_ids();
    let out = f.drctl("failover", &plan_path);
    let ctx = f.context(&out);
    out.expect_code(0, &ctx);
    let journal = f.new_journal(&before);
    let (outputs, already_done) = succeeded(&journal, "swap-dns");
    assert!(already_done, "{}", show(&journal));
    assert_eq!(outputs.get("change_id"), None, "nothing changed: no change id\n{}", show(&journal));
    assert_eq!(outputs["target"], DR_LB);
    assert!(records(&journal, "step_acting", None).is_empty(), "{}", show(&journal));
    assert_eq!(f.upserts(), 1, "a second UPSERT was sent\n{ctx}");

    // Failback points it back at the primary, and reports where it pointed.
    let before = f.dir.run_ids();
    let out = f.drctl("failback", &plan_path);
    let ctx = f.context(&out);
    out.expect_code(0, &ctx);
    let records_of_api = f.named(&zone, "api.example.com", RrType::A);
    assert_eq!(records_of_api.len(), 1, "the failback made a second record\n{records_of_api:#?}\n{ctx}");
    assert_eq!(alias_of(&records_of_api[0]), PRIMARY_LB, "{ctx}");
    assert_eq!(records_of_api[0].alias_target().unwrap().hosted_zone_id(), PRIMARY_LB_ZONE);
    let journal = f.new_journal(&before);
    let (outputs, already_done) = succeeded(&journal, "swap-dns");
    assert!(!already_done);
    assert_eq!(outputs["previous_target"], DR_LB, "{}", show(&journal));
    assert_eq!(outputs["target"], PRIMARY_LB);
    assert_eq!(f.upserts(), 2, "{ctx}");
}

#[test]
fn a_missing_hosted_zone_fails_fast_naming_the_field() {
    let f = Fixture::new("r53-no-zone");
    f.create_zone("example.com");
    let plan_text = plan(
        &alias_step("ZDOESNOTEXIST", "api.example.com", DR_LB, DR_LB_ZONE),
        &alias_step("ZDOESNOTEXIST", "api.example.com", PRIMARY_LB, PRIMARY_LB_ZONE),
    );
    let plan_path = f.dir.write_plan("dns.yaml", &plan_text);
    let started = std::time::Instant::now();
    let out = f.drctl("failover", &plan_path);
    let ctx = f.context(&out);
    out.expect_code(1, &ctx);
    assert!(out.all().contains("swap-dns") && out.all().contains("`with.zone_id`"), "{ctx}");
    let journal = f.dir.only_journal();
    let failed = records(&journal, "step_failed", Some("swap-dns"));
    assert_eq!(failed.len(), 1, "{}", show(&journal));
    let error = failed[0]["error"].as_str().unwrap();
    assert!(error.contains("NoSuchHostedZone") && error.contains("`with.zone_id`"), "{error}");
    // Fast: no retry (the plan allows 3), one call.
    assert!(records(&journal, "step_retrying", None).is_empty(), "{}", show(&journal));
    assert_eq!(f.proxy.total(), 1, "{ctx}");
    assert!(started.elapsed().as_secs() < 20, "took {:?}", started.elapsed());
}

#[test]
fn weighted_and_failover_records_are_set_by_their_identifiers() {
    let f = Fixture::new("r53-routing");
    let zone = f.create_zone("example.com");
    let health_check = f.create_health_check();
    f.put(&zone, weighted_set("blue", "10.0.0.1", 100));
    f.put(&zone, weighted_set("green", "10.0.1.1", 0));
    let weighted = |id: &str, set: &str, ip: &str, weight: u8| {
        step(
            id,
            &format!(
                "      zone_id: {zone}\n      name: app.example.com\n      type: A\n      values: [{ip}]\n      \
                 set_identifier: {set}\n      weight: {weight}\n"
            ),
        )
    };
    let failover_role = |id: &str, set: &str, role: &str, dns_name: &str, lb_zone: &str, check: &str| {
        step(
            id,
            &format!(
                "      zone_id: {zone}\n      name: db.example.com\n      type: A\n      alias: {{zone_id: {lb_zone}, \
                 dns_name: {dns_name}}}\n      set_identifier: {set}\n      failover: {role}\n{check}"
            ),
        )
    };
    let health = format!("      health_check_id: {health_check}\n");
    let cname = step(
        "www",
        &format!(
            "      zone_id: {zone}\n      name: www.example.com\n      type: CNAME\n      values: [app.example.com]\n      ttl: 300\n"
        ),
    );
    let failover = [
        weighted("drain-blue", "blue", "10.0.0.1", 0),
        weighted("fill-green", "green", "10.0.1.1", 100),
        failover_role("db-primary", "east", "PRIMARY", PRIMARY_LB, PRIMARY_LB_ZONE, &health),
        failover_role("db-secondary", "west", "SECONDARY", DR_LB, DR_LB_ZONE, ""),
        cname,
    ]
    .concat();
    let failback = weighted("fill-blue", "blue", "10.0.0.1", 100);
    let plan_path = f.dir.write_plan("routing.yaml", &plan(&failover, &failback));

    let out = f.drctl("failover", &plan_path);
    let ctx = f.context(&out);
    out.expect_code(0, &ctx);
    assert_eq!(f.upserts(), 5, "{ctx}");
    let blue = f.record(&zone, "app.example.com", RrType::A, Some("blue"));
    let green = f.record(&zone, "app.example.com", RrType::A, Some("green"));
    assert_eq!((blue.weight(), green.weight()), (Some(0), Some(100)), "{ctx}");
    assert_eq!(blue.resource_records()[0].value(), "10.0.0.1");
    assert_eq!(green.resource_records()[0].value(), "10.0.1.1");
    let east = f.record(&zone, "db.example.com", RrType::A, Some("east"));
    let west = f.record(&zone, "db.example.com", RrType::A, Some("west"));
    assert_eq!(east.failover(), Some(&ResourceRecordSetFailover::Primary), "{east:#?}");
    assert_eq!(east.health_check_id(), Some(health_check.as_str()), "{east:#?}");
    assert_eq!(alias_of(&east), PRIMARY_LB);
    assert_eq!(west.failover(), Some(&ResourceRecordSetFailover::Secondary), "{west:#?}");
    assert_eq!((west.health_check_id(), alias_of(&west)), (None, DR_LB.to_string()));
    let www = f.record(&zone, "www.example.com", RrType::Cname, None);
    assert_eq!((www.resource_records()[0].value(), www.ttl()), ("app.example.com", Some(300)));

    let journal = f.dir.only_journal();
    let (outputs, _) = succeeded(&journal, "drain-blue");
    assert_eq!((outputs["previous_target"].as_str(), outputs["target"].as_str()), (Some("10.0.0.1"), Some("10.0.0.1")));
    let (outputs, _) = succeeded(&journal, "db-primary");
    assert_eq!(outputs.get("previous_target"), None, "a new record had no target\n{}", show(&journal));

    // Every record is at its target now: a second run changes nothing.
    let before = f.dir.run_ids();
    let out = f.drctl("failover", &plan_path);
    out.expect_code(0, &f.context(&out));
    let journal = f.new_journal(&before);
    for id in ["drain-blue", "fill-green", "db-primary", "db-secondary", "www"] {
        assert!(succeeded(&journal, id).1, "{id} was not already done\n{}", show(&journal));
    }
    assert_eq!(f.upserts(), 5, "{}", f.context(&out));

    // Failback changes only the blue record's weight.
    let out = f.drctl("failback", &plan_path);
    out.expect_code(0, &f.context(&out));
    assert_eq!(f.record(&zone, "app.example.com", RrType::A, Some("blue")).weight(), Some(100));
    assert_eq!(f.record(&zone, "app.example.com", RrType::A, Some("green")).weight(), Some(100));
    assert_eq!(f.records(&zone).len(), 2 + 2 + 2 + 1, "SOA, NS, the weighted, failover and CNAME records");
}

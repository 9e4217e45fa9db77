//! SIGKILL between a step's `act` and its success: the resumed run gets the step's journaled
//! receipt back, so its outputs are those of an uninterrupted run. Route53 against moto, with a
//! proxy that answers `GetChange` with PENDING for a while so the kill lands while drctl polls.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_sdk_route53::Client;
use aws_sdk_route53::types::{AliasTarget, Change, ChangeAction, ChangeBatch, ResourceRecordSet, RrType};
use support::fault_proxy::{FaultProxy, Reply};
use support::moto::Moto;
use support::{Background, TestDir, drctl, plan, records, run, wait_until};

const PRIMARY_LB: &str = "primary-lb.us-east-1.elb.amazonaws.com";
const DR_LB: &str = "dr-lb.us-west-2.elb.amazonaws.com";
const LB_ZONE: &str = "Z1H1FL5HABSF5";
/// GetChange calls answered PENDING before moto answers (about 1.5 s of polling with the back-off).
const PENDING_POLLS: usize = 5;

fn pending_change() -> Reply {
    let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
        <GetChangeResponse xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\"><ChangeInfo>\
        <Id>/change/C1</Id><Status>PENDING</Status><SubmittedAt>2025-01-01T00:00:00Z</SubmittedAt>\
        </ChangeInfo></GetChangeResponse>";
    Reply::new(200, "text/xml", body)
}

fn alias_set(name: &str, dns_name: &str) -> ResourceRecordSet {
    let target = AliasTarget::builder().hosted_zone_id(LB_ZONE).dns_name(dns_name).evaluate_target_health(false);
    ResourceRecordSet::builder().name(name).r#type(RrType::A).alias_target(target.build().unwrap()).build().unwrap()
}

#[test]
fn a_route53_step_killed_while_polling_resumes_with_the_previous_target_from_before_the_run() {
    let moto = Moto::start();
    let polls = Arc::new(AtomicUsize::new(0));
    let counted = polls.clone();
    let proxy = FaultProxy::start(&moto.url(), move |request| {
        let get_change = request.method == "GET" && request.target.contains("/change/");
        (get_change && counted.fetch_add(1, Ordering::SeqCst) < PENDING_POLLS).then(pending_change)
    });
    let runtime = Moto::runtime();
    let client = Client::new(&moto.sdk_config(&runtime, "us-east-1"));
    let zone = runtime
        .block_on(client.create_hosted_zone().name("example.com").caller_reference("z").send())
        .expect("create the zone");
    let zone = zone.hosted_zone().unwrap().id().trim_start_matches("/hostedzone/").to_string();
    let change = Change::builder()
        .action(ChangeAction::Upsert)
        .resource_record_set(alias_set("api.example.com", PRIMARY_LB))
        .build()
        .unwrap();
    runtime
        .block_on(
            client
                .change_resource_record_sets()
                .hosted_zone_id(&zone)
                .change_batch(ChangeBatch::builder().changes(change).build().unwrap())
                .send(),
        )
        .expect("the starting record");

    let dir = TestDir::new("resume-receipt-route53");
    let steps = format!(
        "  - id: dns\n    type: aws.route53.upsert_record\n    with:\n      zone_id: {zone}\n      \
         name: api.example.com\n      type: A\n      alias: {{zone_id: {LB_ZONE}, dns_name: {DR_LB}}}\n"
    );
    let plan_path = dir.write_plan("dns.yaml", &plan("dns", &steps));
    let command = |args: &[&str]| {
        let mut command = drctl(&dir);
        command.args(args).arg("--yes").arg("--endpoint-url").arg(proxy.url());
        command.envs(moto.env());
        command
    };

    // Kill the run once its receipt is on disk and it polls a PENDING change.
    let first = Background::spawn(command(&["failover", "--plan", plan_path.to_str().unwrap()]));
    let acted = wait_until(Duration::from_secs(20), || {
        dir.run_ids().first().is_some_and(|id| dir.journal_text(id).contains("\"step_acted\""))
    });
    assert!(acted, "no step_acted record:\n{}", dir.journals_text());
    first.signal("KILL");
    first.finish();
    let journal = dir.only_journal();
    assert!(records(&journal, "step_succeeded", Some("dns")).is_empty(), "killed too late:\n{}", dir.journals_text());

    let run_id = dir.only_run_id();
    let resumed = run(command(&["resume", &run_id, "--break-lock"]));
    resumed.expect_code(0, &format!("{resumed}{}", dir.journals_text()));
    let journal = dir.only_journal();
    let succeeded = records(&journal, "step_succeeded", Some("dns"));
    let outputs = &succeeded[0]["outputs"];
    assert_eq!(outputs["previous_target"], PRIMARY_LB, "{}", dir.journals_text());
    assert_eq!(outputs["target"], DR_LB);
    assert!(!outputs["change_id"].as_str().unwrap().is_empty(), "{outputs}");
    let upserts = proxy.exchanges().iter().filter(|e| e.method == "POST" && e.target.contains("/rrset")).count();
    assert_eq!(upserts, 1, "the resumed run does not UPSERT again:\n{}", proxy.log());
    assert_eq!(records(&journal, "step_acted", Some("dns")).len(), 1);
}

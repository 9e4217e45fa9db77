use aws_sdk_route53::error::ErrorMetadata;
use aws_sdk_route53::operation::change_resource_record_sets::ChangeResourceRecordSetsOutput;
use aws_sdk_route53::operation::get_change::{GetChangeError, GetChangeOutput};
use aws_sdk_route53::operation::list_resource_record_sets::{
    ListResourceRecordSetsError, ListResourceRecordSetsOutput,
};
use aws_sdk_route53::types::ChangeInfo;
use aws_sdk_route53::types::error::NoSuchHostedZone;
use aws_smithy_mocks::{Rule, RuleMode, mock};

use std::sync::Arc;

use aws_sdk_route53::Client;
use aws_sdk_route53::types::{AliasTarget, ChangeStatus, ResourceRecordSet, RrType};

use super::client::{Found, Route53Client};
use super::params::{Routing, Target};
use super::step::{POLL_INTERVAL, UpsertRecordStep, Upserted, change_field};
use super::*;
use crate::plan::AwsSettings;
use crate::step::{Observation, Progress, Receipt};
use crate::steps::test_support::{build, build_error, ctx};

fn kind() -> Route53Upsert {
    Route53Upsert { aws: Arc::new(Aws::default()) }
}

const ALIAS: &str = "zone_id: Z123\nname: api.example.com\ntype: A\nalias: {zone_id: ZLB, dns_name: dr-lb.us-west-2.elb.amazonaws.com}\n";

fn params(yaml: &str) -> UpsertRecordParams {
    crate::plan::de::from_node(&crate::plan::yaml::parse(yaml).unwrap()).unwrap()
}

fn alias(dns_name: &str) -> Target {
    Target::Alias { zone_id: "ZLB".into(), dns_name: dns_name.into(), evaluate_target_health: false }
}

fn values(values: &[&str], ttl: i64) -> Target {
    Target::Values { values: values.iter().map(|v| v.to_string()).collect(), ttl }
}

#[test]
fn refused_changes_point_at_the_field_to_fix() {
    let lb = alias("dr-lb.example.com");
    assert_eq!(change_field("NoSuchHostedZone", "", &lb), "with.zone_id");
    assert_eq!(change_field("NoSuchHealthCheck", "", &lb), "with.health_check_id");
    let name = "RRSet with DNS name x.other.com. is not permitted in zone example.com.";
    assert_eq!(change_field("InvalidChangeBatch", name, &lb), "with.name");
    let alias_msg = "Tried to create an alias that targets x., type A in zone Z, but the alias target name does not lie within the target zone";
    assert_eq!(change_field("InvalidChangeBatch", alias_msg, &lb), "with.alias");
    assert_eq!(change_field("InvalidChangeBatch", "bad", &values(&["x"], 60)), "with.values");
}

#[test]
fn routing_must_match_too() {
    let p = params(&format!("{ALIAS}set_identifier: blue\nweight: 100\n"));
    let step = UpsertRecordStep::new(
        Route53Client::new(Arc::new(Aws::default()), AwsSettings::default(), DEFAULT_REGION.into()),
        p.zone_id,
        p.record,
    );
    let routing = Routing { set_identifier: Some("blue".into()), weight: Some(100), ..Routing::default() };
    let found =
        |dns: &str, routing: Routing| Found { name: "api.example.com.".into(), target: Some(alias(dns)), routing };
    assert!(step.at_target(&found("dr-lb.us-west-2.elb.amazonaws.com.", routing.clone())));
    let zero = Routing { weight: Some(0), ..routing.clone() };
    assert!(!step.at_target(&found("dr-lb.us-west-2.elb.amazonaws.com.", zero)));
    let checked = Routing { health_check_id: Some("hc".into()), ..routing.clone() };
    assert!(!step.at_target(&found("dr-lb.us-west-2.elb.amazonaws.com.", checked)), "a health check to remove");
    assert!(!step.at_target(&Found { target: None, ..found("x", routing) }));
}

#[test]
fn describe_says_what_changes() {
    let step = build(&kind(), ALIAS);
    assert_eq!(step.describe(), "UPSERT api.example.com A → alias dr-lb.us-west-2.elb.amazonaws.com (zone Z123)");
    let weighted = "zone_id: Z123\nname: www.example.com\ntype: CNAME\nvalues: [blue.example.com]\nttl: 30\n\
                    set_identifier: blue\nweight: 100\nhealth_check_id: hc-1\n";
    assert_eq!(
        build(&kind(), weighted).describe(),
        "UPSERT www.example.com CNAME [set blue, weight 100, health check hc-1] → blue.example.com (TTL 30, zone Z123)"
    );
    let failover = format!("{ALIAS}set_identifier: dr\nfailover: SECONDARY\n");
    assert!(build(&kind(), &failover).describe().contains("[set dr, failover SECONDARY] → alias"));
}

#[test]
fn params_default_and_check_across_fields() {
    let p = params("zone_id: Z1\nname: a.example.com\ntype: TXT\nvalues: ['\"x\"']\n");
    assert_eq!(p.record.target, values(&["\"x\""], 60));
    assert_eq!(p.region, None);
    let e = |yaml: &str| build_error(&kind(), yaml);
    let base = "zone_id: Z1\nname: a.example.com\ntype: A\n";
    assert!(e(&format!("{base}values: [10.0.0.1]\nalias: {{zone_id: Z, dns_name: x}}")).contains("not both"));
    assert!(e(base).starts_with("set `alias` (to point at a load balancer"));
    assert!(e(&format!("{base}values: []")).contains("`values` is empty"));
    assert!(e(&format!("{ALIAS}ttl: 60")).contains("`ttl` applies to `values` only"));
    assert!(e(&format!("{ALIAS}weight: 10")).contains("`weight` needs `set_identifier`"));
    assert!(e(&format!("{ALIAS}failover: PRIMARY")).contains("`failover` needs `set_identifier`"));
    assert!(e(&format!("{ALIAS}set_identifier: a\nweight: 1\nfailover: PRIMARY")).contains("not both"));
    assert!(e(&format!("{ALIAS}set_identifier: a")).contains("needs a routing policy"));
    assert!(e(&format!("{ALIAS}set_identifier: a\nweight: 256")).contains("between 0 and 255"));
    assert!(e(&format!("{ALIAS}failover: primary\nset_identifier: a")).contains("unknown variant `primary`"));
    assert!(e("zone_id: Z1\nname: a\ntype: a\nvalues: [x]").contains("unknown variant `a`"));
    assert!(e(&format!("{ALIAS}zone: Z")).contains("unknown field `zone`"));
    assert!(e("zone_id: ''\nname: a\ntype: A\nvalues: [x]").contains("`zone_id` is empty"));
    let alias_typo = "zone_id: Z1\nname: a\ntype: A\nalias: {zone_id: Z, dnsname: x}";
    assert!(e(alias_typo).contains("unknown field `dnsname`"));
}

#[test]
fn the_schema_requires_alias_or_values() {
    let schema = schemars::SchemaGenerator::default().into_root_schema_for::<UpsertRecordParams>();
    let text = serde_json::to_string(&schema).unwrap();
    assert!(text.contains(r#""oneOf":[{"required":["alias"]},{"required":["values"]}]"#), "{text}");
    assert!(text.contains(r#""weight":["set_identifier"]"#), "{text}");
    assert!(text.contains("\"maximum\":255"), "{text}");
}

/// The serde check and the JSON Schema agree on every combination of the optional fields the
/// cross-field rules speak of: both read one table, so a rule added to one is in the other.
#[test]
fn the_schema_and_the_check_accept_the_same_combinations() {
    let schema =
        serde_json::to_value(schemars::SchemaGenerator::default().into_root_schema_for::<UpsertRecordParams>())
            .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let fields = [
        ("alias", serde_json::json!({ "zone_id": "Z", "dns_name": "lb.example.com" })),
        ("values", serde_json::json!(["10.0.0.1"])),
        ("ttl", serde_json::json!(60)),
        ("set_identifier", serde_json::json!("blue")),
        ("weight", serde_json::json!(10)),
        ("failover", serde_json::json!("PRIMARY")),
    ];
    let mut accepted = 0;
    for mask in 0..(1u32 << fields.len()) {
        let mut with = serde_json::json!({ "zone_id": "Z1", "name": "a.example.com", "type": "A" });
        let set: Vec<&str> = (0..fields.len()).filter(|i| mask & (1 << i) != 0).map(|i| fields[i].0).collect();
        for (name, value) in fields.iter().filter(|(name, _)| set.contains(name)) {
            with[*name] = value.clone();
        }
        let by_serde = serde_json::from_value::<UpsertRecordParams>(with.clone());
        assert_eq!(by_serde.is_ok(), validator.is_valid(&with), "{set:?}: serde says {:?}", by_serde.err());
        accepted += usize::from(by_serde.is_ok());
    }
    // (alias, values, values with ttl) x (no routing, weight, failover; each with set_identifier).
    assert_eq!(accepted, 9);
}

/// A step whose Route53 client answers from `rules`, in order.
fn mocked(yaml: &str, rules: &[&Rule]) -> UpsertRecordStep {
    let p = params(yaml);
    let route53 = Route53Client::new(Arc::new(Aws::default()), AwsSettings::default(), DEFAULT_REGION.into());
    let client = crate::steps::aws_mocks::mock_client!(aws_sdk_route53, RuleMode::Sequential, rules);
    route53.client.set(client).unwrap();
    UpsertRecordStep::new(route53, p.zone_id, p.record)
}

fn listing(sets: Vec<ResourceRecordSet>) -> ListResourceRecordSetsOutput {
    ListResourceRecordSetsOutput::builder()
        .set_resource_record_sets(Some(sets))
        .is_truncated(false)
        .max_items(300)
        .build()
        .unwrap()
}

fn alias_set(name: &str, dns_name: &str) -> ResourceRecordSet {
    let target = AliasTarget::builder().hosted_zone_id("ZLB").dns_name(dns_name).evaluate_target_health(false);
    ResourceRecordSet::builder().name(name).r#type(RrType::A).alias_target(target.build().unwrap()).build().unwrap()
}

fn change(status: ChangeStatus) -> ChangeInfo {
    let submitted = aws_smithy_types::DateTime::from_secs(0);
    ChangeInfo::builder().id("/change/C1").status(status).submitted_at(submitted).build().unwrap()
}

fn throttled() -> GetChangeError {
    GetChangeError::generic(ErrorMetadata::builder().code("Throttling").message("Rate exceeded").build())
}

#[tokio::test]
async fn a_throttled_poll_is_a_retryable_failure_for_the_engine_to_sit_out() {
    let polls = mock!(Client::get_change).then_error(throttled);
    let step = mocked(ALIAS, &[&polls]);
    let receipt = Receipt::of(&Upserted { change_id: "C1".into(), previous_target: String::new() });
    let Progress::Failed(e) = step.poll(&ctx(), &receipt).await else { panic!("not a failure") };
    assert!(e.is_retryable() && e.message.contains("AWS answered Throttling"), "{e}");
    assert_eq!(step.poll_interval(), POLL_INTERVAL);
}

#[tokio::test]
async fn upserts_then_polls_until_insync() {
    let before = || {
        listing(vec![
            alias_set("api.example.com.", "primary-lb.us-east-1.elb.amazonaws.com."),
            alias_set("www.example.com.", "dr-lb.us-west-2.elb.amazonaws.com."),
        ])
    };
    let observed = mock!(Client::list_resource_record_sets).then_output(before);
    let read_before_upsert = mock!(Client::list_resource_record_sets).then_output(before);
    let upsert = mock!(Client::change_resource_record_sets)
        .match_requests(|r| {
            let set = r.change_batch().unwrap().changes()[0].resource_record_set().unwrap();
            set.name() == "api.example.com." && set.alias_target().unwrap().dns_name().starts_with("dr-lb")
        })
        .then_output(|| ChangeResourceRecordSetsOutput::builder().change_info(change(ChangeStatus::Pending)).build());
    let polls = mock!(Client::get_change)
        .sequence()
        .output(|| GetChangeOutput::builder().change_info(change(ChangeStatus::Pending)).build())
        .output(|| GetChangeOutput::builder().change_info(change(ChangeStatus::Insync)).build())
        .build();
    let list_after = mock!(Client::list_resource_record_sets)
        .then_output(|| listing(vec![alias_set("api.example.com.", "dr-lb.us-west-2.elb.amazonaws.com.")]));
    let step = mocked(ALIAS, &[&observed, &read_before_upsert, &upsert, &polls, &list_after]);
    let ctx = ctx();
    assert_eq!(step.observe(&ctx).await.unwrap(), Observation::NotDone);
    let receipt = step.act(&ctx).await.unwrap();
    let upserted: Upserted = receipt.read().unwrap();
    assert_eq!(upserted.change_id, "C1");
    assert_eq!(upserted.previous_target, "primary-lb.us-east-1.elb.amazonaws.com");
    let Progress::Waiting(why) = step.poll(&ctx, &receipt).await else { panic!("in sync at once") };
    assert_eq!(why, "api.example.com A change C1 to be INSYNC (PENDING)");
    assert_eq!(step.poll(&ctx, &receipt).await, Progress::Done);
    let outputs = step.verify(&ctx, &receipt).await.unwrap();
    assert_eq!(outputs["change_id"], "C1");
    assert_eq!(outputs["previous_target"], "primary-lb.us-east-1.elb.amazonaws.com");
    assert_eq!(outputs["target"], "dr-lb.us-west-2.elb.amazonaws.com");
}

#[tokio::test]
async fn a_resumed_step_reports_the_previous_target_from_its_receipt_not_the_record() {
    // The process died after the UPSERT: the record already points at the target, and a fresh
    // step (built again on resume) knows nothing but its journaled receipt.
    let list = mock!(Client::list_resource_record_sets)
        .then_output(|| listing(vec![alias_set("api.example.com.", "dr-lb.us-west-2.elb.amazonaws.com.")]));
    let step = mocked(ALIAS, &[&list]);
    let receipt = Receipt::of(&Upserted {
        change_id: "C1".into(),
        previous_target: "primary-lb.us-east-1.elb.amazonaws.com".into(),
    });
    let outputs = step.verify(&ctx(), &receipt).await.unwrap();
    assert_eq!(outputs["previous_target"], "primary-lb.us-east-1.elb.amazonaws.com");
    assert_eq!(outputs["change_id"], "C1");
}

#[tokio::test]
async fn a_record_at_the_target_is_done_and_others_are_not_ours() {
    let list = mock!(Client::list_resource_record_sets)
        .then_output(|| listing(vec![alias_set("API.example.com.", "dr-lb.us-west-2.elb.amazonaws.com.")]));
    let step = mocked(ALIAS, &[&list]);
    let Observation::Done(outputs) = step.observe(&ctx()).await.unwrap() else { panic!("not done") };
    assert_eq!(outputs.get("change_id"), None, "nothing changed: no change id");
    assert_eq!(outputs["previous_target"], "dr-lb.us-west-2.elb.amazonaws.com");

    // Weighted records of the name, none with our set identifier: absent, nothing to report.
    let list = mock!(Client::list_resource_record_sets).then_output(|| {
        let mut other = alias_set("api.example.com.", "dr-lb.us-west-2.elb.amazonaws.com.");
        other.set_identifier = Some("green".into());
        other.weight = Some(1);
        listing(vec![other, alias_set("api2.example.com.", "x.")])
    });
    let step = mocked(&format!("{ALIAS}set_identifier: blue\nweight: 1\n"), &[&list]);
    assert_eq!(step.observe(&ctx()).await.unwrap(), Observation::NotDone);
}

#[tokio::test]
async fn a_missing_zone_fails_fast_naming_the_field() {
    let list = mock!(Client::list_resource_record_sets).then_error(|| {
        let message = "No hosted zone found with ID: Z123";
        let meta = ErrorMetadata::builder().code("NoSuchHostedZone").message(message).build();
        let e = NoSuchHostedZone::builder().message(message).meta(meta).build();
        ListResourceRecordSetsError::NoSuchHostedZone(e)
    });
    let e = mocked(ALIAS, &[&list]).observe(&ctx()).await.unwrap_err();
    assert!(!e.is_retryable(), "{e}");
    assert!(e.message.contains("NoSuchHostedZone") && e.message.contains("`with.zone_id`"), "{e}");
}

//! The S3 store against scripted answers (aws-smithy-mocks): the cases moto never produces, a 409
//! ConditionalRequestConflict and a retry whose first attempt landed but whose answer was lost.

use std::time::SystemTime;

use aws_sdk_s3::Client;
use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::operation::put_object::PutObjectOutput;
use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_mocks::{MockResponseInterceptor, Rule, RuleMode, create_mock_http_client, mock};

use super::*;
use crate::journal::{LockHolder, LockPolicy, Record, StateStore, encode};

const CONFLICT: &str = "<Error><Code>ConditionalRequestConflict</Code><Message>A conflicting conditional \
                        operation is currently in progress against this resource.</Message></Error>";
const PRECONDITION: &str = "<Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you \
                            specified did not hold</Message></Error>";
const NO_SUCH_KEY: &str = "<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>";

fn client(rules: &[&Rule]) -> Client {
    let interceptor =
        rules.iter().fold(MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny), |i, r| i.with_rule(r));
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("eu-west-1"))
        .credentials_provider(aws_sdk_s3::config::Credentials::new("AKID", "SECRET", None, None, "test"))
        .http_client(create_mock_http_client())
        .interceptor(interceptor)
        .retry_config(aws_smithy_types::retry::RetryConfig::disabled())
        .build();
    Client::from_conf(config)
}

fn store(rules: &[&Rule]) -> StateStore {
    let location = S3Location::parse("s3://bucket/x").unwrap();
    S3Store::with_client(client(rules), Some("eu-west-1".into()), location).into()
}

fn put_ok() -> PutObjectOutput {
    PutObjectOutput::builder().e_tag("\"etag-1\"").build()
}

fn object(bytes: Vec<u8>) -> GetObjectOutput {
    GetObjectOutput::builder().body(ByteStream::from(bytes)).e_tag("\"etag-0\"").build()
}

const RUN: &str = "p-failover-20270115T080000Z-0001";

fn first_commit() -> Vec<u8> {
    encode(&[Entry { seq: 1, at: SystemTime::UNIX_EPOCH, record: Record::RunInterrupted { reason: "x".into() } }])
}

#[test]
fn a_409_on_taking_the_lock_is_read_again_and_retried() {
    let put = mock!(Client::put_object).sequence().http_status(409, Some(CONFLICT.into())).output(put_ok).build();
    let get = mock!(Client::get_object).sequence().http_status(404, Some(NO_SUCH_KEY.into())).build();
    let delete = mock!(Client::delete_object)
        .then_output(|| aws_sdk_s3::operation::delete_object::DeleteObjectOutput::builder().build());
    let store = store(&[&put, &get, &delete]);
    let holder = LockHolder::this_process(RUN, crate::clock::wall_now());
    let lock = store.lock("p", holder, LockPolicy::default()).unwrap();
    assert_eq!((put.num_calls(), get.num_calls()), (2, 1), "409: read the lock again, then retry the put");
    drop(lock);
    assert_eq!(delete.num_calls(), 1, "released with a conditional delete");
}

#[test]
fn a_409_on_a_journal_commit_is_read_again_and_retried() {
    let put = mock!(Client::put_object).sequence().http_status(409, Some(CONFLICT.into())).output(put_ok).build();
    let get = mock!(Client::get_object).sequence().http_status(404, Some(NO_SUCH_KEY.into())).build();
    let store = store(&[&put, &get]);
    let record = Record::RunInterrupted { reason: "x".into() };
    store.create_journal(RUN, SystemTime::UNIX_EPOCH, record).unwrap();
    assert_eq!((put.num_calls(), get.num_calls()), (2, 1));
}

#[test]
fn a_412_over_our_own_landed_commit_is_success_and_over_anothers_is_fenced() {
    // The first attempt landed, its answer was lost, and the retry met our own object.
    let put = mock!(Client::put_object).sequence().http_status(412, Some(PRECONDITION.into())).build();
    let ours = mock!(Client::get_object).then_output(|| object(first_commit()));
    let store_ours = store(&[&put, &ours]);
    let record = Record::RunInterrupted { reason: "x".into() };
    store_ours.create_journal(RUN, SystemTime::UNIX_EPOCH, record.clone()).unwrap();

    let put = mock!(Client::put_object).sequence().http_status(412, Some(PRECONDITION.into())).build();
    let theirs = mock!(Client::get_object).then_output(|| object(b"{\"seq\":1}\n".to_vec()));
    let store_theirs = store(&[&put, &theirs]);
    let refused = store_theirs.create_journal(RUN, SystemTime::UNIX_EPOCH, record).err().expect("refused");
    assert!(matches!(refused, JournalError::Fenced { .. }), "{refused}");
}

#[test]
fn a_412_on_the_lock_that_names_this_very_run_and_process_is_ours() {
    let holder = LockHolder::this_process(RUN, crate::clock::wall_now());
    let mut ours = holder.clone();
    ours.expires_at = Some(crate::clock::wall_now() + DEFAULT_LEASE);
    ours.token = Some(1);
    let body = serde_json::to_vec(&ours).unwrap();
    let put = mock!(Client::put_object).sequence().http_status(412, Some(PRECONDITION.into())).build();
    let get = mock!(Client::get_object).then_output(move || object(body.clone()));
    let delete = mock!(Client::delete_object)
        .then_output(|| aws_sdk_s3::operation::delete_object::DeleteObjectOutput::builder().build());
    let store = store(&[&put, &get, &delete]);
    let mut lock = store.lock("p", holder, LockPolicy::default()).unwrap();
    assert!(lock.take_over_note().is_none(), "a retry after a lost answer is no takeover");
    assert_eq!(put.num_calls(), 1, "no second put: the lock already names us");
    // Another run of this process is refused, naming the holder and when its lease ends.
    let other = LockHolder::this_process("p-failover-20270115T080000Z-0002", crate::clock::wall_now());
    let put = mock!(Client::put_object).sequence().http_status(412, Some(PRECONDITION.into())).build();
    let body = serde_json::to_vec(&ours).unwrap();
    let get = mock!(Client::get_object).then_output(move || object(body.clone()));
    let refused = crate::journal::StateStore::from(S3Store::with_client(
        client(&[&put, &get]),
        None,
        S3Location::parse("s3://bucket/x").unwrap(),
    ))
    .lock("p", other, LockPolicy::default())
    .unwrap_err()
    .to_string();
    assert!(refused.contains(RUN) && refused.contains("lease ends"), "{refused}");
}

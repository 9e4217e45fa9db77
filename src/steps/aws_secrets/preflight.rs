//! What the Secrets Manager steps' `preflight` checks, read-only (DescribeSecret): the secret
//! exists in its region, and has what the step will use.

use super::{AWSPREVIOUS, Secrets, describe};
use crate::step::Finding;

/// What a step needs of the secret beyond existing.
pub(super) enum Need {
    /// Only that it exists (`read`, `put` without `create_if_missing`, `rotate`).
    Exists,
    /// `put` with `create_if_missing`: absence is fine.
    MayBeCreated,
    /// `restore_previous`: a version labelled AWSPREVIOUS (unless a version is named).
    Previous,
}

/// DescribeSecret and what it says of `need`.
pub(super) async fn secret(secrets: &Secrets, secret_id: &str, need: Need) -> Vec<Finding> {
    let region = &secrets.region;
    let client = secrets.client().await;
    let described = describe(client, secret_id, region).await;
    // A secret scheduled for deletion still describes, but every write to it fails.
    if described.is_ok()
        && let Ok(output) = client.describe_secret().secret_id(secret_id).send().await
        && let Some(deleted) = output.deleted_date()
    {
        return vec![Finding::problem(
            "secret_exists",
            format!("secret `{secret_id}` in {region} is scheduled for deletion (on {deleted}): writes to it fail"),
            format!(
                "restore it (`aws secretsmanager restore-secret --secret-id {secret_id} --region {region}`), or \
                 recreate it"
            ),
        )];
    }
    let missing =
        |e: &crate::step::StepError| e.message.contains("ResourceNotFound") || e.message.contains("does not exist");
    match (described, need) {
        (Ok(_), Need::MayBeCreated | Need::Exists) => {
            vec![Finding::ok("secret_exists", format!("secret `{secret_id}` exists in {region}"))]
        }
        (Ok(d), Need::Previous) => {
            let exists = Finding::ok("secret_exists", format!("secret `{secret_id}` exists in {region}"));
            let previous = match d.holder(AWSPREVIOUS) {
                Some(v) => Finding::ok("secret_previous", format!("secret `{secret_id}` has a previous version ({v})")),
                None => Finding::warning(
                    "secret_previous",
                    format!("secret `{secret_id}` in {region} has no AWSPREVIOUS version to restore yet"),
                    "expected before the failover has written a new value; after one, find out who removed the label",
                ),
            };
            vec![exists, previous]
        }
        (Err(e), Need::MayBeCreated) if missing(&e) => vec![Finding::ok(
            "secret_exists",
            format!("secret `{secret_id}` does not exist in {region}; the step creates it (`create_if_missing`)"),
        )],
        (Err(e), _) => {
            let fix = if missing(&e) {
                format!(
                    "create secret `{secret_id}` in {region} (or restore it: it may be scheduled for deletion), or fix `with.secret_id`"
                )
            } else {
                "check the credentials and the IAM permission secretsmanager:DescribeSecret".to_string()
            };
            vec![Finding::problem("secret_exists", e.message, fix)]
        }
    }
}

//! The `PreSignedUrl` of an encrypted cross-region CreateDBInstanceReadReplica (see
//! [`super::replica`]): the request repeated for the source region, presigned with aws-sigv4.

use std::time::{Duration, SystemTime};

use crate::step::StepError;

/// The parameters a presigned CreateDBInstanceReadReplica repeats for the source region.
pub(super) struct PresignRequest<'a> {
    pub replica: &'a str,
    pub source_arn: &'a str,
    pub kms_key_id: &'a str,
    pub instance_class: Option<&'a str>,
    pub destination_region: &'a str,
}

/// How long the presigned URL is valid: an hour, as botocore makes it.
const PRESIGNED_URL_LIFETIME: Duration = Duration::from_secs(3600);

/// A SigV4-presigned `GET` of CreateDBInstanceReadReplica (Query protocol, API version
/// 2014-10-31) for `source_region`'s RDS endpoint (the SDK's endpoint resolver, or `endpoint` when
/// an emulator stands in), signed with `credentials` at `at`.
pub(super) async fn presigned_url(
    credentials: &aws_sdk_rds::config::Credentials,
    endpoint: Option<String>,
    source_region: &str,
    request: &PresignRequest<'_>,
    at: SystemTime,
) -> Result<String, StepError> {
    use aws_sdk_rds::config::endpoint::{Params, ResolveEndpoint};
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign};

    let what = format!("presign CreateDBInstanceReadReplica for {source_region}");
    let fail = |why: String| StepError::fatal(format!("cannot {what}: {why}"));
    let base = match endpoint {
        Some(url) => url,
        None => {
            let params = Params::builder().region(source_region).build().map_err(|e| fail(e.to_string()))?;
            let resolved = aws_sdk_rds::config::endpoint::DefaultResolver::new()
                .resolve_endpoint(&params)
                .await
                .map_err(|e| fail(format!("no RDS endpoint for the region ({e})")))?;
            resolved.url().to_string()
        }
    };
    let mut query = vec![
        ("Action", "CreateDBInstanceReadReplica"),
        ("Version", "2014-10-31"),
        ("DBInstanceIdentifier", request.replica),
        ("SourceDBInstanceIdentifier", request.source_arn),
        ("KmsKeyId", request.kms_key_id),
        ("DestinationRegion", request.destination_region),
    ];
    if let Some(class) = request.instance_class {
        query.push(("DBInstanceClass", class));
    }
    let query: Vec<String> = query.iter().map(|(k, v)| format!("{k}={}", crate::aws::sigv4_encode(v))).collect();
    let unsigned = format!("{}/?{}", base.trim_end_matches('/'), query.join("&"));

    let identity = credentials.clone().into();
    let mut settings = SigningSettings::default();
    settings.expires_in = Some(PRESIGNED_URL_LIFETIME);
    settings.signature_location = SignatureLocation::QueryParams;
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(source_region)
        .name("rds")
        .time(at)
        .settings(settings)
        .build()
        .map_err(|e| fail(e.to_string()))?
        .into();
    let signable = SignableRequest::new("GET", &unsigned, std::iter::empty(), SignableBody::empty())
        .map_err(|e| fail(e.to_string()))?;
    let (instructions, _) = sign(signable, &params).map_err(|e| fail(e.to_string()))?.into_parts();
    let mut url = unsigned;
    for (name, value) in instructions.params() {
        url.push_str(&format!("&{name}={}", crate::aws::sigv4_encode(value)));
    }
    Ok(url)
}

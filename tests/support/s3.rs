//! S3 state on moto for the state store's tests: a moto server, an SDK client for seeding and
//! checking it, buckets (plain, versioned, with Object Lock), and stores on them.

use drctl::journal::StateStore;
use drctl::state_s3::{S3Location, S3Store};

use super::moto::Moto;

/// A moto S3 and a client of the test's own.
pub struct S3 {
    pub moto: Moto,
    pub runtime: tokio::runtime::Runtime,
    pub client: aws_sdk_s3::Client,
}

impl S3 {
    /// Starts moto (region us-west-2).
    pub fn start() -> S3 {
        let moto = Moto::start();
        let runtime = Moto::runtime();
        let config = moto.sdk_config(&runtime, "us-west-2");
        // Checksums only where an operation requires them, so the Object Lock bucket proves the store
        // asks for one itself (as with AWS_REQUEST_CHECKSUM_CALCULATION=when_required).
        let when_required = aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired;
        let config = aws_sdk_s3::config::Builder::from(&config).force_path_style(true);
        let client = aws_sdk_s3::Client::from_conf(config.request_checksum_calculation(when_required).build());
        S3 { moto, runtime, client }
    }

    /// Creates bucket `name` in us-west-2, versioned and with Object Lock (one day of governance
    /// retention by default, so every put needs a checksum header) if asked.
    pub fn bucket(&self, name: &str, versioned: bool, object_lock: bool) {
        use aws_sdk_s3::types::*;
        let location =
            CreateBucketConfiguration::builder().location_constraint(BucketLocationConstraint::UsWest2).build();
        let create = self.client.create_bucket().bucket(name).create_bucket_configuration(location);
        self.runtime.block_on(create.object_lock_enabled_for_bucket(object_lock).send()).unwrap();
        if versioned {
            let on = VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build();
            let put = self.client.put_bucket_versioning().bucket(name).versioning_configuration(on);
            self.runtime.block_on(put.send()).unwrap();
        }
        if object_lock {
            let retention = DefaultRetention::builder().mode(ObjectLockRetentionMode::Governance).days(1).build();
            let rule = ObjectLockRule::builder().default_retention(retention).build();
            let config =
                ObjectLockConfiguration::builder().object_lock_enabled(ObjectLockEnabled::Enabled).rule(rule).build();
            let put = self.client.put_object_lock_configuration().bucket(name).object_lock_configuration(config);
            self.runtime.block_on(put.send()).unwrap();
        }
    }

    /// A store on `s3://bucket/prefix` through the test's client.
    pub fn store(&self, bucket: &str, prefix: &str) -> StateStore {
        let mut location = S3Location::parse(&format!("s3://{bucket}/{prefix}")).unwrap();
        location.endpoint = Some(self.moto.url());
        S3Store::with_client(self.client.clone(), Some("us-west-2".into()), location).into()
    }

    /// Puts an object as it is (with a checksum, which Object Lock buckets require).
    pub fn put(&self, bucket: &str, key: &str, body: &[u8]) {
        let put = self.client.put_object().bucket(bucket).key(key).body(body.to_vec().into());
        let put = put.checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Crc32);
        self.runtime.block_on(put.send()).unwrap();
    }

    /// Every key under `prefix`.
    pub fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let list = self.client.list_objects_v2().bucket(bucket).prefix(prefix).max_keys(1000);
        let page = self.runtime.block_on(list.send()).unwrap();
        page.contents().iter().filter_map(|o| o.key().map(str::to_string)).collect()
    }

    /// Environment for drctl: moto's endpoint and fake credentials, region us-west-2.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = self.moto.env();
        env.push(("AWS_REGION", "us-west-2".into()));
        env
    }
}

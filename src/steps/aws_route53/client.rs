//! The Route53 calls of the step: reading a record, submitting a change, asking whether it is in sync.

use std::sync::Arc;

use aws_sdk_route53::Client;
use aws_sdk_route53::types::ResourceRecordSet;
use tokio::sync::OnceCell;

use super::params::{FailoverRole, Routing, Target};
use crate::aws::Aws;
use crate::plan::AwsSettings;

/// A record as Route53 has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Found {
    /// The name as Route53 spells it.
    pub(super) name: String,
    /// `None` for what this step does not manage (a traffic-policy record).
    pub(super) target: Option<Target>,
    pub(super) routing: Routing,
}

impl Found {
    pub(super) fn from_sdk(set: &ResourceRecordSet) -> Found {
        let target = if let Some(alias) = set.alias_target() {
            Some(Target::Alias {
                zone_id: alias.hosted_zone_id().to_string(),
                dns_name: alias.dns_name().to_string(),
                evaluate_target_health: alias.evaluate_target_health(),
            })
        } else if !set.resource_records().is_empty() {
            let values = set.resource_records().iter().map(|r| r.value().to_string()).collect();
            Some(Target::Values { values, ttl: set.ttl().unwrap_or_default() })
        } else {
            None
        };
        let routing = Routing {
            set_identifier: set.set_identifier().map(str::to_string),
            weight: set.weight(),
            failover: set.failover().and_then(FailoverRole::from_sdk),
            health_check_id: set.health_check_id().map(str::to_string),
        };
        Found { name: set.name().to_string(), target, routing }
    }

    pub(super) fn shown(&self) -> String {
        self.target.as_ref().map(Target::shown).unwrap_or_default()
    }
}

/// The Route53 client a step uses, made on first use from the run's AWS settings.
pub(super) struct Route53Client {
    pub(super) client: OnceCell<Client>,
    aws: Arc<Aws>,
    settings: AwsSettings,
    region: String,
}

impl Route53Client {
    pub(super) fn new(aws: Arc<Aws>, settings: AwsSettings, region: String) -> Self {
        Route53Client { client: OnceCell::new(), aws, settings, region }
    }

    pub(super) async fn get(&self) -> &Client {
        self.client.get_or_init(|| async { Client::new(&self.aws.config(&self.region, &self.settings).await) }).await
    }
}

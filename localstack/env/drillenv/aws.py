"""The AWS side of the environment, on moto: seeding what plans/us-west-2.yaml touches (the hosted
zone and the api record, the RDS instance and its cross-region replica, the DATABASE_URL secret) and
reading it back for the checks. Secret values are compared, never printed."""

import hashlib
import json
import sys

import boto3
import botocore.exceptions

ZONE = "example.com."
RECORD = "api.example.com."
PRIMARY_REGION, DR_REGION = "us-east-1", "us-west-2"
PRIMARY_ALIAS = {"HostedZoneId": "Z35SXDOTRQ7X7K", "DNSName": "primary-lb.us-east-1.elb.amazonaws.com",
                 "EvaluateTargetHealth": True}
SECRET_ID = "dr-database-url"
DB_PRIMARY, DB_REPLICA = "portfolio-primary", "portfolio-dr"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def client(endpoint, service, region=PRIMARY_REGION):
    return boto3.client(service, endpoint_url=endpoint, region_name=region, **CREDENTIALS)


def fingerprint(value):
    """What the environment keeps of a secret value: enough to compare, nothing to read."""
    return hashlib.sha256(value.encode()).hexdigest()


def seed(endpoint, database_url, app_password):
    """Creates the runbook's AWS resources; returns what the checks need (the zone id, the secret's
    fingerprint)."""
    route53 = client(endpoint, "route53")
    zone_id = route53.create_hosted_zone(Name=ZONE, CallerReference="drctl-env")["HostedZone"]["Id"].split("/")[-1]
    route53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": [
        {"Action": "UPSERT", "ResourceRecordSet": {"Name": RECORD, "Type": "A", "AliasTarget": PRIMARY_ALIAS}},
        {"Action": "UPSERT", "ResourceRecordSet": {"Name": f"status.{ZONE}", "Type": "CNAME", "TTL": 60,
                                                   "ResourceRecords": [{"Value": "status.example.net"}]}},
    ]})

    seed_rds(endpoint, app_password)

    value = json.dumps({"DATABASE_URL": database_url, "password": app_password})
    client(endpoint, "secretsmanager", DR_REGION).create_secret(Name=SECRET_ID, SecretString=value)
    return {"zone_id": zone_id, "secret_fingerprint": fingerprint(value)}


def seed_rds(endpoint, app_password):
    """The RDS instance and its cross-region replica; skipped, saying so, where the emulator has no
    RDS (LocalStack's free edition)."""
    rds = client(endpoint, "rds", PRIMARY_REGION)
    try:
        source = rds.create_db_instance(
            DBInstanceIdentifier=DB_PRIMARY, Engine="postgres", DBInstanceClass="db.t3.micro", AllocatedStorage=20,
            MasterUsername="portfolio", MasterUserPassword=app_password, BackupRetentionPeriod=7)["DBInstance"]
    except botocore.exceptions.ClientError as e:
        if e.response["Error"]["Code"] not in ("InternalFailure", "NotImplemented", "UnknownOperationException"):
            raise
        print(f"== {endpoint} has no RDS ({e.response['Error']['Code']}): no RDS instances seeded", file=sys.stderr)
        return
    client(endpoint, "rds", DR_REGION).create_db_instance_read_replica(
        DBInstanceIdentifier=DB_REPLICA, SourceDBInstanceIdentifier=source["DBInstanceArn"],
        DBInstanceClass="db.t3.micro", SourceRegion=PRIMARY_REGION)


def api_alias(endpoint, zone_id):
    """Where api.example.com points: the alias target's DNS name (or None)."""
    records = client(endpoint, "route53").list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
    for record in records:
        if record["Name"] == RECORD and record["Type"] == "A":
            return record.get("AliasTarget", {}).get("DNSName", "").rstrip(".")
    return None


def current_secret_fingerprint(endpoint):
    # The stage is explicit: moto 5.2's GetSecretValue without one answers the version the secret was
    # created or last put with, not the one UpdateSecretVersionStage made AWSCURRENT.
    secrets = client(endpoint, "secretsmanager", DR_REGION)
    value = secrets.get_secret_value(SecretId=SECRET_ID, VersionStage="AWSCURRENT")["SecretString"]
    return fingerprint(value)


def inventory(endpoint):
    """Every AWS resource in the environment, by name, for the leak check."""
    route53 = client(endpoint, "route53")
    records = []
    for zone in route53.list_hosted_zones()["HostedZones"]:
        for r in route53.list_resource_record_sets(HostedZoneId=zone["Id"])["ResourceRecordSets"]:
            records.append(f"{zone['Name']} {r['Name']} {r['Type']}")
    found = {"route53": sorted(records)}
    for region in (PRIMARY_REGION, DR_REGION):
        try:
            instances = client(endpoint, "rds", region).describe_db_instances()["DBInstances"]
            found[f"rds.{region}"] = sorted(d["DBInstanceIdentifier"] for d in instances)
        except botocore.exceptions.ClientError:
            pass  # no RDS in this emulator: nothing to leak there
        secrets = client(endpoint, "secretsmanager", region)
        found[f"secretsmanager.{region}"] = sorted(s["Name"] for s in secrets.list_secrets()["SecretList"])
    return found

"""The AWS side of the environment, on moto: seeding what plans/us-west-2.yaml touches (the hosted
zone and the api record, the RDS instance and its cross-region replica, the DATABASE_URL secret) and
reading it back for the checks. Secret values are compared, never printed."""

import hashlib
import json
import sys
import time

import boto3
import botocore.exceptions

ZONE = "example.com."
RECORD = "api.example.com."
PRIMARY_REGION, DR_REGION = "us-east-1", "us-west-2"
PRIMARY_ALIAS = {"HostedZoneId": "Z35SXDOTRQ7X7K", "DNSName": "primary-lb.us-east-1.elb.amazonaws.com",
                 "EvaluateTargetHealth": True}
#: Where the failover points api.example.com: the DR load balancer (the health app maps an alias to
#: its region by the region in the DNS name).
DR_ALIAS = {"HostedZoneId": "Z1H1FL5HABSF5", "DNSName": "dr-lb.us-west-2.elb.amazonaws.com"}
SECRET_ID = "dr-database-url"
DB_PRIMARY, DB_REPLICA = "portfolio-primary", "portfolio-dr"
#: The failback's re-protection replica (in the primary region, of the promoted DR instance).
DB_REPROTECTED = "portfolio-prod-reprotected"
FENCE_GROUP_NAME = "portfolio-db-fence"
#: Tags the environment's own reset calls (see backing.RESET_TAG): no latency profile applies.
RESET_TAG = {"Key": "drctl-env:reset", "Value": "true"}
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
    route53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Comment": RESET_TAG["Key"], "Changes": [
        {"Action": "UPSERT", "ResourceRecordSet": {"Name": RECORD, "Type": "A", "AliasTarget": PRIMARY_ALIAS}},
        {"Action": "UPSERT", "ResourceRecordSet": {"Name": f"status.{ZONE}", "Type": "CNAME", "TTL": 60,
                                                   "ResourceRecords": [{"Value": "status.example.net"}]}},
    ]})

    seeded = seed_rds(endpoint, app_password)

    value = json.dumps({"DATABASE_URL": database_url, "password": app_password})
    client(endpoint, "secretsmanager", DR_REGION).create_secret(Name=SECRET_ID, SecretString=value)
    return {"zone_id": zone_id, "secret_fingerprint": fingerprint(value), **seeded}


def seed_fence_group(endpoint):
    """The security group with no inbound rules that `aws.rds.fence` puts on the old primary, in the
    primary region's default VPC; returns its id."""
    ec2 = client(endpoint, "ec2", PRIMARY_REGION)
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    return ec2.create_security_group(GroupName=FENCE_GROUP_NAME, VpcId=vpc,
                                     Description="no inbound rules: fences the old primary database")["GroupId"]


def seed_rds(endpoint, app_password):
    """The RDS instance, its cross-region replica and the fence group; returns the fence group's id and
    the primary's security groups. Skipped, saying so, where the emulator has no RDS (LocalStack's free
    edition)."""
    rds = client(endpoint, "rds", PRIMARY_REGION)
    try:
        source = rds.create_db_instance(
            DBInstanceIdentifier=DB_PRIMARY, Engine="postgres", DBInstanceClass="db.t3.micro", AllocatedStorage=20,
            MasterUsername="portfolio", MasterUserPassword=app_password, BackupRetentionPeriod=7)["DBInstance"]
    except botocore.exceptions.ClientError as e:
        if e.response["Error"]["Code"] not in ("InternalFailure", "NotImplemented", "UnknownOperationException"):
            raise
        print(f"== {endpoint} has no RDS ({e.response['Error']['Code']}): no RDS instances seeded", file=sys.stderr)
        return {}
    create_replica(endpoint, source["DBInstanceArn"], reset=True)
    return {"fence_security_group": seed_fence_group(endpoint),
            "primary_security_groups": [g["VpcSecurityGroupId"] for g in source["VpcSecurityGroups"]]}


def create_replica(endpoint, source_arn, reset=False):
    """portfolio-dr, the us-west-2 read replica of `source_arn`; `reset` marks the environment's own
    call (no latency profile)."""
    client(endpoint, "rds", DR_REGION).create_db_instance_read_replica(
        DBInstanceIdentifier=DB_REPLICA, SourceDBInstanceIdentifier=source_arn, DBInstanceClass="db.t3.micro",
        SourceRegion=PRIMARY_REGION, Tags=[RESET_TAG] if reset else [])


def wait_replica_available(endpoint, timeout=60.0):
    """Waits until portfolio-dr is `available` (moto's launcher rebuilds its standby meanwhile)."""
    rds = client(endpoint, "rds", DR_REGION)
    deadline = time.monotonic() + timeout
    while True:
        status = rds.describe_db_instances(DBInstanceIdentifier=DB_REPLICA)["DBInstances"][0]["DBInstanceStatus"]
        if status == "available":
            return
        if status == "failed" or time.monotonic() > deadline:
            raise RuntimeError(f"{DB_REPLICA} is {status}, not available (see moto's log)")
        time.sleep(0.1)


def reset_rds(endpoint, primary_security_groups):
    """The seeded RDS layout again, after a failback: instances the drill created deleted, the
    primary's security groups back (which lifts the fence on its server), and portfolio-dr recreated as
    the replica of portfolio-primary (its standby rebuilt by moto's launcher)."""
    seeded = {PRIMARY_REGION: {DB_PRIMARY}, DR_REGION: set()}
    for region, keep in seeded.items():
        rds = client(endpoint, "rds", region)
        for instance in rds.describe_db_instances()["DBInstances"]:
            if instance["DBInstanceIdentifier"] not in keep:
                rds.delete_db_instance(DBInstanceIdentifier=instance["DBInstanceIdentifier"], SkipFinalSnapshot=True)
    primary = client(endpoint, "rds", PRIMARY_REGION).modify_db_instance(
        DBInstanceIdentifier=DB_PRIMARY, VpcSecurityGroupIds=primary_security_groups, ApplyImmediately=True)
    create_replica(endpoint, primary["DBInstance"]["DBInstanceArn"], reset=True)
    wait_replica_available(endpoint)


def check_secrets_behaviour(endpoint):
    """Raises unless Secrets Manager at `endpoint` moves AWSCURRENT as AWS does: after the failback's
    UpdateSecretVersionStage and a new PutSecretValue, exactly one version is AWSCURRENT, the new
    one, and GetSecretValue answers it (moto 5.2 needs moto-server's fix for this). On a scratch
    secret, deleted afterwards."""
    secrets = client(endpoint, "secretsmanager", DR_REGION)
    name = "drctl-env-behaviour-check"
    first = secrets.create_secret(Name=name, SecretString="first")["VersionId"]
    try:
        second = secrets.put_secret_value(SecretId=name, SecretString="second")["VersionId"]
        secrets.update_secret_version_stage(SecretId=name, VersionStage="AWSCURRENT", MoveToVersionId=first,
                                            RemoveFromVersionId=second)
        third = secrets.put_secret_value(SecretId=name, SecretString="third")["VersionId"]
        current = [v["VersionId"] for v in secrets.list_secret_version_ids(SecretId=name)["Versions"]
                   if "AWSCURRENT" in (v.get("VersionStages") or [])]
        answered = secrets.get_secret_value(SecretId=name)["SecretString"]
    finally:
        secrets.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    if current != [third] or answered != "third":
        raise RuntimeError(
            f"Secrets Manager at {endpoint} does not move AWSCURRENT as AWS does: after UpdateSecretVersionStage and "
            f"PutSecretValue, {len(current)} version(s) are AWSCURRENT and GetSecretValue answers "
            f"{'the new value' if answered == 'third' else 'an old value'}; a second drill would read the first "
            "one's values. See localstack/env/README.md, \"moto's Secrets Manager fix\"")


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


def current_secret(endpoint):
    """The secret's AWSCURRENT value, parsed (it holds the app's password: never print it)."""
    secrets = client(endpoint, "secretsmanager", DR_REGION)
    return json.loads(secrets.get_secret_value(SecretId=SECRET_ID, VersionStage="AWSCURRENT")["SecretString"])


def instances_by_address(endpoint, fence_group):
    """Every RDS instance by "host:port" of its endpoint: its identifier, region, and whether it
    takes the app's writes (no replica, not fenced, available)."""
    found = {}
    for region in (PRIMARY_REGION, DR_REGION):
        for d in client(endpoint, "rds", region).describe_db_instances()["DBInstances"]:
            groups = [g["VpcSecurityGroupId"] for g in d.get("VpcSecurityGroups", [])]
            writable = (d["DBInstanceStatus"] == "available" and not d.get("ReadReplicaSourceDBInstanceIdentifier")
                        and groups != [fence_group])
            address = f"{d['Endpoint']['Address']}:{d['Endpoint']['Port']}"
            found[address] = {"instance": d["DBInstanceIdentifier"], "region": region, "writable": writable}
    return found


def restore_seeded_secret(endpoint, seeded_fingerprint):
    """Makes the version `up` seeded AWSCURRENT again (found by its fingerprint; Secrets Manager keeps
    the old versions), as the environment's own reset: UpdateSecretVersionStage, no new version and no
    profile delay. Returns the seeded value (it holds the app's password: never print it), or raises
    when no version has it."""
    secrets = client(endpoint, "secretsmanager", DR_REGION)
    versions = secrets.list_secret_version_ids(SecretId=SECRET_ID, IncludeDeprecated=True)["Versions"]
    current = next((v["VersionId"] for v in versions if "AWSCURRENT" in v.get("VersionStages", [])), None)
    for version in versions:
        value = secrets.get_secret_value(SecretId=SECRET_ID, VersionId=version["VersionId"])["SecretString"]
        if fingerprint(value) != seeded_fingerprint:
            continue
        if version["VersionId"] != current:
            secrets.update_secret_version_stage(SecretId=SECRET_ID, VersionStage="AWSCURRENT",
                                                MoveToVersionId=version["VersionId"], RemoveFromVersionId=current)
        return value
    raise RuntimeError(f"no version of {SECRET_ID} holds the value the environment seeded (compared by SHA-256)")


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

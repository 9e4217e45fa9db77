"""Seeds moto with what the runbook's failover expects, from nothing: the hosted zone with
api.example.com aliased to the primary's load balancer, portfolio-prod in us-east-1 and its read
replica portfolio-dr-replica in us-west-2 (with a small ReplicaLag in CloudWatch, which drctl checks
against the RPO), and the dr-database-url secret. Prints the hosted zone's id.

Usage: python seed.py ENDPOINT_URL   (moto's Python: .venv/bin/python)"""
import datetime
import sys
import urllib.request

import boto3

endpoint = sys.argv[1]
urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")).read()


def client(service, region):
    return boto3.client(service, region_name=region, endpoint_url=endpoint,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


route53 = client("route53", "us-east-1")
zone = route53.create_hosted_zone(Name="example.com.", CallerReference=str(datetime.datetime.now()))
zone_id = zone["HostedZone"]["Id"].split("/")[-1]
route53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": [{
    "Action": "UPSERT",
    "ResourceRecordSet": {"Name": "api.example.com", "Type": "A", "AliasTarget": {
        "HostedZoneId": "Z0123456789ABC", "DNSName": "prod-lb.us-east-1.elb.amazonaws.com",
        "EvaluateTargetHealth": True}}}]})

east = client("rds", "us-east-1")
source = east.create_db_instance(DBInstanceIdentifier="portfolio-prod", DBInstanceClass="db.t3.micro",
                                 Engine="postgres", MasterUsername="portfolio",
                                 MasterUserPassword="not-a-secret-1", AllocatedStorage=20)
client("rds", "us-west-2").create_db_instance_read_replica(
    DBInstanceIdentifier="portfolio-dr-replica",
    SourceDBInstanceIdentifier=source["DBInstance"]["DBInstanceArn"])

now = datetime.datetime.now(datetime.timezone.utc)
client("cloudwatch", "us-west-2").put_metric_data(Namespace="AWS/RDS", MetricData=[{
    "MetricName": "ReplicaLag", "Value": 2.0, "Unit": "Seconds", "Timestamp": now - datetime.timedelta(seconds=30),
    "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": "portfolio-dr-replica"}]}])

client("secretsmanager", "us-west-2").create_secret(
    Name="dr-database-url",
    SecretString='{"DATABASE_URL": "postgres://portfolio@portfolio-dr-replica.us-west-2.rds.amazonaws.com:5432/portfolio"}')
print(zone_id)

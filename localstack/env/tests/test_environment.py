"""The environment for real (moto, PostgreSQL, the Kubernetes emulator), under a small latency profile:
RDS backed by the servers (endpoints, fence, lag, promotion, re-protection, restore) and every
profiled operation taking its time, logged. One environment, steps in order (each needs the last)."""

import datetime
import json
import os
import shutil
import socket
import struct
import tempfile
import time
import unittest
import urllib.request

import boto3
import helpers  # noqa: F401
import warnings

from drillenv import actions, aws, environment, health, kube, postgres

#: p50 = p95 = 1 s at scale 1 (0.6 s for pods, faster), so each delay is measurable and deterministic.
PROFILE = """name: test
operations:
  route53.change: {p50: 1s, p95: 1s}
  rds.promote_read_replica: {p50: 1s, p95: 1s}
  rds.create_read_replica: {p50: 1s, p95: 1s}
  secretsmanager.put_secret_value: {p50: 1s, p95: 1s}
  kube.pod_ready: {p50: 600ms, p95: 600ms}
"""


def refused(port):
    """Whether a TCP connection to `port` is refused or reset before the server speaks: PostgreSQL
    answers an SSLRequest with one byte; a fenced instance's endpoint resets the connection."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(struct.pack("!ii", 8, 80877103))
            return s.recv(1) == b""
    except OSError:
        return True


def client(endpoint, service, region):
    return boto3.client(service, endpoint_url=endpoint, region_name=region, aws_access_key_id="testing",
                        aws_secret_access_key="testing")


class EnvironmentTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        warnings.simplefilter("ignore", ResourceWarning)  # the environment's servers outlive their Popen objects
        cls.dir = tempfile.mkdtemp(prefix="drctl-env-test-")
        profile = os.path.join(cls.dir, "profile.yaml")
        with open(profile, "w") as f:
            f.write(PROFILE)
        try:
            environment.up(os.path.join(cls.dir, "env"), profile, 1.0, None)
        except BaseException:
            environment.down(os.path.join(cls.dir, "env"))
            raise
        cls.env_dir = os.path.join(cls.dir, "env")
        cls.state = environment.load_state(cls.env_dir)
        with open(os.path.join(cls.env_dir, "env.json")) as f:
            cls.env = json.load(f)
        cls.aws = cls.state["aws_endpoint"]

    @classmethod
    def tearDownClass(cls):
        environment.down(cls.env_dir)
        shutil.rmtree(cls.dir, ignore_errors=True)

    def rds(self, region):
        return client(self.aws, "rds", region)

    def instance(self, region, name):
        return self.rds(region).describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0]

    def lag(self, name="portfolio-dr", region="us-west-2"):
        """The latest ReplicaLag datapoint's Maximum, as drctl's guard reads it (60 s periods)."""
        now = datetime.datetime.now(datetime.timezone.utc)
        points = client(self.aws, "cloudwatch", region).get_metric_statistics(
            Namespace="AWS/RDS", MetricName="ReplicaLag", Dimensions=[{"Name": "DBInstanceIdentifier", "Value": name}],
            StartTime=now - datetime.timedelta(minutes=5), EndTime=now + datetime.timedelta(minutes=1), Period=60,
            Statistics=["Maximum"])["Datapoints"]
        return max(points, key=lambda p: p["Timestamp"])["Maximum"] if points else None

    def health(self, region):
        try:
            with urllib.request.urlopen(f"{self.state['health_url']}/regions/{region}/health", timeout=5) as r:
                return json.load(r)
        except urllib.error.HTTPError as e:
            return json.load(e)

    def wait(self, what, predicate, timeout=30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.2)
        self.fail(f"{what} within {timeout} s")

    def delays(self, operation):
        with open(self.env["delays_log"]) as f:
            return [json.loads(line) for line in f if json.loads(line)["operation"] == operation]

    def test_a_scale_up_waits_the_profiles_pod_readiness(self):
        cluster = kube.Cluster(self.state["kubeconfig"], "dr")
        path = f"/apis/apps/v1/namespaces/{kube.NAMESPACE}/deployments/{kube.APP}"

        def scale(replicas):
            deployment = cluster.deployment()
            deployment["spec"]["replicas"] = replicas
            self.assertEqual(cluster.call("PUT", path, deployment)[0], 200)

        started = time.monotonic()
        scale(2)
        self.wait("2 ready pods", lambda: (cluster.deployment().get("status") or {}).get("readyReplicas") == 2)
        self.assertGreaterEqual(time.monotonic() - started, 0.6)
        (logged,) = self.delays("kube.pod_ready")
        self.assertEqual(logged["delay_s"], 0.6)
        self.assertTrue(logged["resource"].startswith(f"dr/{kube.NAMESPACE}/{kube.APP}-"), logged["resource"])
        scale(1)
        self.wait("1 ready pod", lambda: (cluster.deployment().get("status") or {}).get("readyReplicas") == 1)

    def test_the_rds_lifecycle_of_a_drill(self):
        pg = self.state["pg"]
        vars_ = self.env["vars"]
        self.assertEqual((vars_["primary_db_instance"], vars_["dr_replica_id"]), ("portfolio-primary", "portfolio-dr"))
        self.assertEqual(self.env["time_scale"], 1.0)

        # Each instance has its own endpoint (pinned for the seeded ones, which the seeded
        # DATABASE_URLs name), forwarding to its region's server.
        ports = self.state["instance_ports"]
        self.assertEqual(self.instance("us-east-1", "portfolio-primary")["Endpoint"],
                         {"Address": "127.0.0.1", "Port": ports["primary"]})
        self.assertEqual(self.instance("us-west-2", "portfolio-dr")["Endpoint"],
                         {"Address": "127.0.0.1", "Port": ports["dr"]})
        self.assertNotIn(ports["primary"], pg.values())
        self.assertEqual(vars_["primary_db_endpoint"], f"127.0.0.1:{ports['primary']}")

        # ReplicaLag of a caught-up standby: 0, published within a few seconds.
        self.assertEqual(self.wait("a ReplicaLag datapoint", lambda: self.lag() is not None and [self.lag()])[0], 0.0)

        # The fence: only the fence group → the app role is rejected; the old groups back → it is not.
        primary = self.rds("us-east-1")
        primary.modify_db_instance(DBInstanceIdentifier="portfolio-primary", ApplyImmediately=True,
                                   VpcSecurityGroupIds=[vars_["fence_security_group"]])
        self.assertIn("unreachable", self.health("us-east-1").get("reason", ""))
        # The instance's endpoint itself refuses (a security group), not only the server's pg_hba.conf.
        self.assertEqual(refused(ports["primary"]), True)
        self.assertEqual(refused(pg["primary"]), False)
        primary.modify_db_instance(DBInstanceIdentifier="portfolio-primary", ApplyImmediately=True,
                                   VpcSecurityGroupIds=self.state["primary_security_groups"])
        self.assertEqual(self.health("us-east-1")["status"], "ok")

        # The primary dies: the lag grows past a second, never back to 0.
        actions.inject(self.env_dir, "database_stop")
        self.wait("ReplicaLag above 1 s with the primary dead", lambda: (self.lag() or 0) > 1.0)

        # Promotion: modifying for the profile's second, then the real standby is promoted.
        started = time.monotonic()
        answer = self.rds("us-west-2").promote_read_replica(DBInstanceIdentifier="portfolio-dr")["DBInstance"]
        self.assertEqual(answer["DBInstanceStatus"], "modifying")
        self.assertTrue(postgres.psql(pg["dr"], "SELECT pg_is_in_recovery()") == "t", "promoted before the delay")
        self.wait("the promotion", lambda: self.instance("us-west-2", "portfolio-dr")["DBInstanceStatus"] == "available")
        self.assertGreaterEqual(time.monotonic() - started, 1.0)
        promoted = self.instance("us-west-2", "portfolio-dr")
        self.assertNotIn("ReadReplicaSourceDBInstanceIdentifier", promoted)
        self.assertEqual(postgres.psql(pg["dr"], "SELECT pg_is_in_recovery()"), "f")
        (logged,) = self.delays("rds.promote_read_replica")
        self.assertEqual((logged["resource"], logged["delay_s"], logged["scale"]), ("portfolio-dr", 1.0, 1.0))

        # Route53 and Secrets Manager take their time too.
        route53 = client(self.aws, "route53", "us-east-1")
        change = route53.change_resource_record_sets(HostedZoneId=self.state["zone_id"], ChangeBatch={"Changes": [
            {"Action": "UPSERT", "ResourceRecordSet": {"Name": "api.example.com.", "Type": "A", "AliasTarget": {
                "HostedZoneId": aws.DR_ALIAS["HostedZoneId"], "DNSName": aws.DR_ALIAS["DNSName"],
                "EvaluateTargetHealth": True}}}]})["ChangeInfo"]
        self.assertEqual(change["Status"], "PENDING")
        self.assertEqual(aws.api_alias(self.aws, self.state["zone_id"]), aws.PRIMARY_ALIAS["DNSName"],
                         "DNS answers the new record before the change is in sync")
        self.wait("INSYNC", lambda: route53.get_change(Id=change["Id"])["ChangeInfo"]["Status"] == "INSYNC")
        self.assertEqual(aws.api_alias(self.aws, self.state["zone_id"]), aws.DR_ALIAS["DNSName"])
        started = time.monotonic()
        client(self.aws, "secretsmanager", "us-west-2").put_secret_value(SecretId=aws.SECRET_ID, SecretString="{}")
        self.assertGreaterEqual(time.monotonic() - started, 1.0)
        self.assertEqual(len(self.delays("route53.change")), 1)
        self.assertEqual(len(self.delays("secretsmanager.put_secret_value")), 1)

        # Re-protection: a replica in us-east-1 rebuilds the primary server as a standby of the DR one.
        actions.repair(self.env_dir)
        created = self.rds("us-east-1").create_db_instance_read_replica(
            DBInstanceIdentifier=vars_["reprotect_replica_id"], SourceDBInstanceIdentifier=promoted["DBInstanceArn"])
        self.assertEqual(created["DBInstance"]["DBInstanceStatus"], "creating")
        self.wait("the re-protection replica", lambda: self.instance(
            "us-east-1", vars_["reprotect_replica_id"])["DBInstanceStatus"] == "available", timeout=60)
        self.assertEqual(postgres.streaming_from(pg["primary"]), pg["dr"])
        self.assertEqual(len(self.delays("rds.create_read_replica")), 1)
        # The re-protection replica is another instance of the same server, at its own address.
        reprotected = self.instance("us-east-1", vars_["reprotect_replica_id"])["Endpoint"]["Port"]
        self.assertNotIn(reprotected, [ports["primary"], ports["dr"], *pg.values()])

        # The failback promotes it; restore puts the seeded layout back.
        self.rds("us-east-1").promote_read_replica(DBInstanceIdentifier=vars_["reprotect_replica_id"])
        self.wait("the failback's promotion", lambda: self.instance(
            "us-east-1", vars_["reprotect_replica_id"])["DBInstanceStatus"] == "available")
        # The app reaches the promoted instance at its own address.
        seeded = kube.Cluster(self.state["kubeconfig"], "primary").database_url()
        at_reprotected = seeded.replace(f"@127.0.0.1:{ports['primary']}/", f"@127.0.0.1:{reprotected}/")
        self.assertNotEqual(at_reprotected, seeded)
        self.assertEqual(health.database_writable(at_reprotected), (True, "ok"))
        route53.change_resource_record_sets(HostedZoneId=self.state["zone_id"], ChangeBatch={"Changes": [
            {"Action": "UPSERT", "ResourceRecordSet": {"Name": "api.example.com.", "Type": "A",
                                                       "AliasTarget": aws.PRIMARY_ALIAS}}]})
        self.wait("DNS back on the primary", lambda: aws.api_alias(self.aws, self.state["zone_id"]) ==
                  aws.PRIMARY_ALIAS["DNSName"])
        secrets = client(self.aws, "secretsmanager", "us-west-2")
        versions = secrets.list_secret_version_ids(SecretId=aws.SECRET_ID)["Versions"]
        seeded = next(v["VersionId"] for v in versions if "AWSPREVIOUS" in v.get("VersionStages", []))
        current = next(v["VersionId"] for v in versions if "AWSCURRENT" in v.get("VersionStages", []))
        secrets.update_secret_version_stage(SecretId=aws.SECRET_ID, VersionStage="AWSCURRENT", MoveToVersionId=seeded,
                                            RemoveFromVersionId=current)
        actions.restore(self.env_dir)
        for check in ("dns-on-primary", "database-on-primary", "no-leftovers"):
            actions.check(self.env_dir, check)
        self.assertIn("ReadReplicaSourceDBInstanceIdentifier", self.instance("us-west-2", "portfolio-dr"))
        self.assertEqual(len(self.delays("rds.create_read_replica")), 1, "restore's own replica waited")


if __name__ == "__main__":
    unittest.main()

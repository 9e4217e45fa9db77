"""Breaks and restores the drill environment for tests/readiness.rs, and reads what it saw.

    readiness_world.py ENV_DIR COMMAND [ARGS...]

Commands (each prints JSON or nothing; a failure exits non-zero with the reason on stderr):
  delete-deployment CLUSTER NS NAME FILE   saves the Deployment to FILE, then deletes it
  create-from FILE CLUSTER                 recreates what FILE holds (a saved object)
  delete-secret REGION ID                  deletes the Secrets Manager secret (recoverable)
  restore-secret REGION ID                 restores it
  cut-replication / restore-replication    empties / restores the DR standby's primary_conninfo (and
                                           drops write-primary's table)
  write-primary                            commits a write on the primary database
  readonly-kubeconfig CONTEXT OUT          a kubeconfig whose CONTEXT uses CONTEXT-readonly's user
  kube-requests / kube-requests-reset      the emulator's request counts per cluster
  aws-state                                secrets' versions, records, RDS instances (to compare)
  parse-metrics                            Prometheus text on stdin -> [{name, labels, value}]
"""

import json
import os
import subprocess
import sys
import urllib.request

import yaml


def env(directory):
    with open(os.path.join(directory, "env.json")) as f:
        return json.load(f)


def kube(directory, cluster):
    """The API URL and the read-write token of a cluster."""
    with open(os.path.join(directory, "kubeconfig")) as f:
        config = yaml.safe_load(f)
    server = next(c["cluster"]["server"] for c in config["clusters"] if c["name"] == cluster)
    token = next(u["user"]["token"] for u in config["users"] if u["name"] == cluster)
    return server, token


def call(url, method="GET", token=None, body=None):
    request = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body is not None else None)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if body is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request) as response:
        text = response.read()
        return json.loads(text) if text else None


def aws(directory, service, region):
    import boto3
    endpoint = env(directory)["endpoints"]["aws"]
    return boto3.client(service, region_name=region, endpoint_url=endpoint, aws_access_key_id="testing",
                        aws_secret_access_key="testing")


def psql(directory, region, sql):
    host, port = env(directory)["endpoints"]["postgres"][region].rsplit(":", 1)
    out = subprocess.run(["psql", "-h", host, "-p", port, "-U", "drctl", "-d", "portfolio", "-Atc", sql],
                         check=True, capture_output=True, text=True)
    return out.stdout.strip()


def main(directory, command, *args):
    if command == "delete-deployment":
        cluster, namespace, name, path = args
        server, token = kube(directory, cluster)
        url = f"{server}/apis/apps/v1/namespaces/{namespace}/deployments/{name}"
        obj = call(url, token=token)
        for key in ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields"):
            obj["metadata"].pop(key, None)
        obj.pop("status", None)
        with open(path, "w") as f:
            json.dump(obj, f)
        call(url, method="DELETE", token=token)
    elif command == "create-from":
        path, cluster = args
        server, token = kube(directory, cluster)
        with open(path) as f:
            obj = json.load(f)
        namespace = obj["metadata"]["namespace"]
        call(f"{server}/apis/apps/v1/namespaces/{namespace}/deployments", method="POST", token=token, body=obj)
    elif command == "delete-secret":
        region, secret = args
        aws(directory, "secretsmanager", region).delete_secret(SecretId=secret, RecoveryWindowInDays=7)
    elif command == "restore-secret":
        region, secret = args
        aws(directory, "secretsmanager", region).restore_secret(SecretId=secret)
    elif command == "cut-replication":
        saved = psql(directory, "dr", "SHOW primary_conninfo")
        with open(os.path.join(directory, "readiness-conninfo"), "w") as f:
            f.write(saved)
        psql(directory, "dr", "ALTER SYSTEM SET primary_conninfo = ''")
        psql(directory, "dr", "SELECT pg_reload_conf()")
    elif command == "restore-replication":
        with open(os.path.join(directory, "readiness-conninfo")) as f:
            saved = f.read().replace("'", "''")
        psql(directory, "dr", f"ALTER SYSTEM SET primary_conninfo = '{saved}'")
        psql(directory, "dr", "SELECT pg_reload_conf()")
        psql(directory, "primary", "DROP TABLE IF EXISTS readiness_probe")
    elif command == "write-primary":
        psql(directory, "primary", "CREATE TABLE IF NOT EXISTS readiness_probe (at timestamptz); "
                                   "INSERT INTO readiness_probe VALUES (now())")
    elif command == "readonly-kubeconfig":
        context, out = args
        with open(os.path.join(directory, "kubeconfig")) as f:
            config = yaml.safe_load(f)
        for c in config["contexts"]:
            if c["name"] == context:
                c["context"]["user"] = f"{context}-readonly"
        with open(out, "w") as f:
            yaml.safe_dump(config, f)
    elif command in ("kube-requests", "kube-requests-reset"):
        counts = {}
        for cluster, server in env(directory)["endpoints"]["kubernetes"].items():
            method = "DELETE" if command == "kube-requests-reset" else "GET"
            counts[cluster] = (call(f"{server}/_emulator/requests", method=method) or {}).get("requests", {})
        print(json.dumps(counts))
    elif command == "aws-state":
        state = {}
        for region in ("us-east-1", "us-west-2"):
            sm = aws(directory, "secretsmanager", region)
            for s in sm.list_secrets()["SecretList"]:
                state[f"secret {region} {s['Name']}"] = sm.describe_secret(SecretId=s["ARN"]).get("VersionIdsToStages")
            rds = aws(directory, "rds", region)
            for db in rds.describe_db_instances()["DBInstances"]:
                state[f"rds {region} {db['DBInstanceIdentifier']}"] = [db["DBInstanceStatus"],
                                                                       db.get("ReadReplicaSourceDBInstanceIdentifier")]
        r53 = aws(directory, "route53", "us-east-1")
        for zone in r53.list_hosted_zones()["HostedZones"]:
            sets = r53.list_resource_record_sets(HostedZoneId=zone["Id"])["ResourceRecordSets"]
            state[f"zone {zone['Name']}"] = sets
        print(json.dumps(state, sort_keys=True, default=str))
    elif command == "parse-metrics":
        from prometheus_client.parser import text_string_to_metric_families
        samples = []
        for family in text_string_to_metric_families(sys.stdin.read()):
            for s in family.samples:
                samples.append({"name": s.name, "labels": s.labels, "value": s.value})
        print(json.dumps(samples))
    else:
        sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    main(*sys.argv[1:])

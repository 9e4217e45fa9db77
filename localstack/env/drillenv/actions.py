"""What a drill does to the environment: inject a fault into the primary region, repair the primary
after the failover (its database rebuilt as a standby of the promoted one), restore the starting
layout after the failback, and the checks that prove everything is back and nothing leaked. Each
check prints one line of detail and raises when it fails."""

import json
import os
import time
import urllib.parse
import urllib.request

from . import aws, kube, postgres
from .environment import FAULTS, inventory, load_state, save, servers

HEARTBEAT_TABLE = "drctl_drill_heartbeat"


class CheckFailed(Exception):
    pass


def post(url, method="POST"):
    urllib.request.urlopen(urllib.request.Request(url, method=method, data=b""), timeout=5).close()


def inject(directory, fault):
    state = load_state(directory)
    if fault == "database_stop":
        servers(state)["primary"].stop("immediate")
        return "the primary database was stopped with pg_ctl stop -m immediate"
    if fault == "health_fail":
        post(f"{state['health_url']}/_env/faults/us-east-1")
        return "the us-east-1 health endpoint answers 503"
    if fault == "api_fail":
        kube.Cluster(state["kubeconfig"], "primary").fail_everything()
        return "the primary cluster's API answers 503 to every request"
    if fault == "partition":
        return partition(state)
    raise ValueError(f"unknown fault {fault!r}: {', '.join(FAULTS)}")


def partition(state):
    """The network between the regions is cut: the DR database stops receiving WAL from the primary (its
    primary_conninfo emptied and reloaded, so its WAL receiver stops and does not reconnect) and the
    primary region's health fails, as seen from outside. The old primary database and its app stay up
    and writable: clients that still resolve to us-east-1 keep writing there."""
    pg = servers(state)
    postgres.psql(pg["dr"].port, "ALTER SYSTEM SET primary_conninfo = ''")
    postgres.psql(pg["dr"].port, "SELECT pg_reload_conf()")
    deadline = time.monotonic() + 10
    while postgres.streaming_from(pg["dr"].port) is not None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the DR database on :{pg['dr'].port} still streams from the primary")
        time.sleep(0.05)
    post(f"{state['health_url']}/_env/faults/us-east-1")
    return (f"the DR database on :{pg['dr'].port} no longer receives WAL from the primary, and the us-east-1 "
            "health endpoint answers 503; the primary database and app stay up and writable")


def clear_faults(state):
    post(f"{state['health_url']}/_env/faults", method="DELETE")
    for name in ("primary", "dr"):
        kube.Cluster(state["kubeconfig"], name).clear_faults()


def repair(directory):
    """The primary region comes back: faults cleared, its database rebuilt as a standby of the DR one."""
    state = load_state(directory)
    clear_faults(state)
    pg = servers(state)
    pg["primary"].rebuild_as_standby_of(pg["dr"].port)
    return f"faults cleared; the primary database streams from the DR one on :{pg['dr'].port}"


def restore(directory):
    """After the failback: the DR database rebuilt as a standby of the primary again. With RDS backed by
    the servers (moto), through RDS itself: the seeded instances back (see aws.reset_rds), which
    rebuilds the standby. The failback pointed the app at the instance it promoted, which this deletes:
    the secret's seeded version and the primary cluster's seeded DATABASE_URL (naming portfolio-primary)
    come back with it."""
    state = load_state(directory)
    clear_faults(state)
    pg = servers(state)
    if state.get("backing"):
        state["failback_app_database"] = app_databases(state)
        save(os.path.join(directory, "state.json"), state)
        aws.reset_rds(state["aws_endpoint"], state["primary_security_groups"])
        postgres.wait_streaming(pg["dr"].port, pg["primary"].port)
        seeded = json.loads(aws.restore_seeded_secret(state["aws_endpoint"], state["secret_fingerprint"]))
        kube.Cluster(state["kubeconfig"], "primary").write_database_url(seeded["DATABASE_URL"])
        return (f"RDS back to {aws.DB_PRIMARY} and its replica {aws.DB_REPLICA}; the DR database streams from "
                f"the primary on :{pg['primary'].port}; {aws.SECRET_ID} and the primary cluster's "
                f"{kube.DB_SECRET} name {aws.DB_PRIMARY} again")
    pg["dr"].rebuild_as_standby_of(pg["primary"].port)
    return f"the DR database streams from the primary on :{pg['primary'].port}"


def app_databases(state):
    """Which RDS instance the app's DATABASE_URL names, in Secrets Manager and in the primary
    cluster's Secret (`where` → identifier, region and whether it took writes, or None when the URL
    names no instance). Compares host:port; the URLs themselves are never kept or printed."""
    instances = aws.instances_by_address(state["aws_endpoint"], state.get("fence_security_group"))
    urls = {"Secrets Manager": aws.current_secret(state["aws_endpoint"]).get("DATABASE_URL"),
            "the primary cluster's Secret": kube.Cluster(state["kubeconfig"], "primary").database_url()}
    found = {}
    for where, url in urls.items():
        parts = urllib.parse.urlsplit(url or "")
        found[where] = instances.get(f"{parts.hostname}:{parts.port}")
    return found


def check(directory, name):
    state = load_state(directory)
    checks = {"dns-on-primary": dns_on_primary, "database-on-primary": database_on_primary,
              "app-database": app_database, "deployments": deployments, "no-leftovers": no_leftovers}
    if name not in checks:
        raise ValueError(f"no check {name!r}: {', '.join(checks)}")
    return checks[name](directory, state)


def dns_on_primary(directory, state):
    target = aws.api_alias(state["aws_endpoint"], state["zone_id"])
    if target != aws.PRIMARY_ALIAS["DNSName"]:
        raise CheckFailed(f"api.example.com points at {target}, not {aws.PRIMARY_ALIAS['DNSName']}")
    return f"api.example.com → {target}"


def database_on_primary(directory, state):
    pg = servers(state)
    if pg["primary"].in_recovery():
        raise CheckFailed(f"the primary database on :{pg['primary'].port} is still a standby")
    if not pg["dr"].in_recovery():
        raise CheckFailed(f"the DR database on :{pg['dr'].port} accepts writes: two primaries")
    source = postgres.streaming_from(pg["dr"].port)
    if source != pg["primary"].port:
        raise CheckFailed(f"the DR database streams from {source}, not from the primary on :{pg['primary'].port}")
    return f"the primary on :{pg['primary'].port} accepts writes; the DR standby on :{pg['dr'].port} streams from it"


def app_database(directory, state):
    """At the end of the failback (recorded by `restore`), DATABASE_URL in Secrets Manager and in the
    primary cluster's Secret named a us-east-1 instance taking writes (the one the failback promoted,
    not the fenced old primary); after `restore`, the secret is the seeded version again."""
    recorded = state.get("failback_app_database")
    if recorded is None:
        raise CheckFailed("no failback was restored: nothing recorded of the app's database after a failback")
    problems, named = [], []
    for where, instance in recorded.items():
        if instance is None:
            problems.append(f"DATABASE_URL in {where} named no RDS instance's endpoint")
        elif instance["region"] != aws.PRIMARY_REGION or not instance["writable"]:
            state_of = "taking writes" if instance["writable"] else "a replica, fenced or unavailable"
            problems.append(f"DATABASE_URL in {where} named {instance['instance']} ({instance['region']}, {state_of})")
        else:
            named.append(f"{where}: {instance['instance']}")
    if aws.current_secret_fingerprint(state["aws_endpoint"]) != state["secret_fingerprint"]:
        problems.append(f"{aws.SECRET_ID}'s AWSCURRENT value is not the seeded one after restore (by SHA-256)")
    if problems:
        raise CheckFailed("; ".join(problems))
    return (f"after the failback DATABASE_URL named the promoted us-east-1 database ({', '.join(named)}, compared "
            f"by host:port); {aws.SECRET_ID} is the seeded version again (by SHA-256)")


def deployments(directory, state):
    found = []
    for name, wanted in kube.STEADY_REPLICAS.items():
        deployment = kube.Cluster(state["kubeconfig"], name).deployment() or {}
        spec = deployment.get("spec", {}).get("replicas")
        ready = deployment.get("status", {}).get("readyReplicas", 0)
        if (spec, ready) != (wanted, wanted):
            raise CheckFailed(f"{name}: {kube.NAMESPACE}/{kube.APP} wants {spec} and has {ready} ready, not {wanted}")
        found.append(f"{name} {ready}/{wanted} ready")
    return f"{kube.NAMESPACE}/{kube.APP}: " + ", ".join(found)


def no_leftovers(directory, state):
    """No heartbeat table on either database (the standby replays the drop within 10 s), no fault still
    armed, and the same AWS and Kubernetes objects as when the environment came up."""
    pg = servers(state)
    query = f"SELECT count(*) FROM pg_tables WHERE tablename = '{HEARTBEAT_TABLE}'"
    deadline = time.monotonic() + 10
    while True:
        tables = {name: postgres.psql(s.port, query) for name, s in pg.items()}
        if all(count == "0" for count in tables.values()) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    problems = [f"{HEARTBEAT_TABLE} is still in the {name} database" for name, n in tables.items() if n != "0"]
    with urllib.request.urlopen(f"{state['health_url']}/_env/faults", timeout=5) as response:
        problems += [f"the health fault on {region} is still armed" for region in json.load(response)["faults"]]
    for name in ("primary", "dr"):
        if kube.Cluster(state["kubeconfig"], name).faults():
            problems.append(f"the {name} cluster still has API faults armed")
    with open(os.path.join(directory, "inventory.json")) as f:
        before = json.load(f)
    now = inventory(state)
    for kind in sorted(set(before) | set(now)):
        added = sorted(set(now.get(kind, [])) - set(before.get(kind, [])))
        removed = sorted(set(before.get(kind, [])) - set(now.get(kind, [])))
        problems += [f"{kind}: {item} was left behind" for item in added]
        problems += [f"{kind}: {item} is gone" for item in removed]
    if problems:
        raise CheckFailed("; ".join(problems))
    counted = sum(len(items) for items in now.values())
    return f"no heartbeat table, no armed fault, the same {counted} AWS and Kubernetes objects as at the start"

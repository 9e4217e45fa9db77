"""RDS backed by the environment's real PostgreSQL servers, inside moto's process (`moto-server`
installs it when DRCTL_ENV_BACKING names a backing file; see localstack/env/README.md, "RDS on real
PostgreSQL").

Each region with a server has its RDS instances backed by that server: `portfolio-primary`
(us-east-1) by the local primary, `portfolio-dr` (us-west-2) by the standby, and any instance the
plan creates in those regions likewise. moto keeps the control plane (identifiers, ARNs, tags); this
module makes the data plane follow it:

- each instance has an endpoint of its own, 127.0.0.1 and a port that forwards to the server and
  refuses new connections while the instance is fenced (see `endpoints.py`);
- PromoteReadReplica answers at once with `modifying`, then promotes the server (`pg_promote`,
  waited for) and reports `available`, no longer a replica;
- CreateDBInstanceReadReplica answers `creating`, rebuilds the replica region's server as a
  streaming standby of the source region's (pg_basebackup), then reports `available`;
- ModifyDBInstance that leaves only the fence security group on an instance fences its server (the
  app role rejected in pg_hba.conf, its sessions terminated) before answering; a later change that
  drops the fence group undoes it;
- CloudWatch `AWS/RDS` `ReplicaLag` of every backed replica is published every `lag_interval_s`
  (see `lag.py` for what the figure is, and why it never understates).

Slow operations wait the latency profile's time first (see `delays.py`)."""

import copy
import json
import os
import re
import threading
import time
import traceback
import uuid

from . import postgres
from .delays import Delays
from .endpoints import Endpoints

#: The tag that marks the environment's own reset calls (`envctl restore`): no profile delay.
RESET_TAG = "drctl-env:reset"
ACCOUNT = "123456789012"


def log(line):
    print(f"drctl-env backing: {line}", flush=True)


class Backing:
    """The mapping file, read once: `servers` (region → name and port), `instance_ports` (the seeded
    instances' endpoint ports, "region/identifier" → port), `pg_root`, `fence_security_group`,
    `lag_interval_s`, and the profile settings `delays.py` reads."""

    def __init__(self, path):
        self.path = path
        with open(path) as f:
            self.config = json.load(f)
        self.regions = self.config["servers"]
        self.delays = Delays(self.config)
        self.endpoints = Endpoints(self.config.get("instance_ports") or {})
        self.caught_up = {}  # replica key → wall time its server was last seen caught up
        self.busy = set()  # servers being rebuilt or promoted: no lag is read from them

    @property
    def fence_group(self):
        """The fence security group: the environment creates it in moto after moto starts, then
        writes it to the file, so it is read again until known."""
        if not self.config.get("fence_security_group"):
            with open(self.path) as f:
                self.config["fence_security_group"] = json.load(f).get("fence_security_group")
        return self.config["fence_security_group"]

    def server(self, region):
        entry = self.regions.get(region)
        return postgres.Server(self.config["pg_root"], entry["name"], entry["port"]) if entry else None

    def port(self, region):
        entry = self.regions.get(region)
        return entry["port"] if entry else None


def source_region(instance):
    """The region of a replica's source (its ARN's region, else the replica's own)."""
    source = instance.source_db_instance_identifier or ""
    match = re.match(r"arn:[^:]+:rds:([^:]+):", source)
    return match.group(1) if match else instance.region


def source_id(instance):
    return (instance.source_db_instance_identifier or "").split(":")[-1]


def install(path):
    """Patches moto's RDS models and starts the ReplicaLag publisher."""
    from moto.rds.exceptions import InvalidDBInstanceStateFault
    from moto.rds.models import DBInstance, RDSBackend, rds_backends

    backing = Backing(path)
    log(f"RDS backed by PostgreSQL: {json.dumps(backing.regions, sort_keys=True)}")

    def address(self):
        if backing.port(self.region):
            return "127.0.0.1"
        return f"{self.db_instance_identifier}.aaaaaaaaaa.{self.region}.rds.amazonaws.com"

    def endpoint(self):
        return {"Address": self.address, "Port": instance_port(self) or self.port}

    def instance_port(instance):
        """The instance's own port (its endpoint opened on first use), or None outside backed regions."""
        target = backing.port(instance.region)
        if not target:
            return None
        return backing.endpoints.of(instance.region, instance.db_instance_identifier, target).port

    DBInstance.address = property(address)
    DBInstance.endpoint = property(endpoint)

    original_create = RDSBackend.create_db_instance

    def create_db_instance(self, db_kwargs):
        instance = original_create(self, db_kwargs)
        instance_port(instance)  # listening before anyone asks, as the seeded DATABASE_URLs name it
        return instance

    original_promote = RDSBackend.promote_read_replica

    def promote_read_replica(self, db_kwargs):
        instance = self.describe_db_instances(db_kwargs["db_instance_identifier"])[0]
        server = backing.server(self.region_name)
        if server is None:
            return original_promote(self, db_kwargs)
        if not instance.is_replica:
            raise InvalidDBInstanceStateFault(f"DB Instance {instance.db_instance_identifier} is not a read replica.")
        if instance.status != "available":
            raise InvalidDBInstanceStateFault(
                f"DB Instance {instance.db_instance_identifier} is {instance.status}, not available.")
        instance.status = "modifying"
        backing.busy.add(server.name)
        threading.Thread(target=promote, args=(self, instance, server), daemon=True).start()
        return instance

    def promote(backend, instance, server):
        try:
            backing.delays.wait("rds.promote_read_replica", instance.db_instance_identifier)
            postgres.psql(server.port, "SELECT pg_promote(true, 60)")
            deadline = time.monotonic() + 60
            while server.in_recovery():
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{server.name} on :{server.port} is still in recovery after pg_promote")
                time.sleep(0.1)
            detach_from_source(instance)
            instance.status = "available"
            log(f"promoted {instance.db_instance_identifier} ({server.name} on :{server.port})")
        except Exception:
            instance.status = "failed"
            log(f"promoting {instance.db_instance_identifier} failed:\n{traceback.format_exc()}")
        finally:
            backing.busy.discard(server.name)

    def detach_from_source(instance):
        """As AWS: a promoted instance names no source, and its source no longer lists it."""
        region = source_region(instance)
        try:
            source = rds_backends[ACCOUNT][region].databases.get(source_id(instance))
        except KeyError:
            source = None
        if source is not None:
            source.replicas = [r for r in source.replicas
                               if r not in (instance.db_instance_identifier, instance.db_instance_arn)]
        instance.is_replica = False
        instance.source_db_instance_identifier = None

    original_create_replica = RDSBackend.create_db_instance_read_replica

    def create_db_instance_read_replica(self, db_kwargs):
        replica = original_create_replica(self, db_kwargs)
        # moto copies the source object: its own lists, and an identity of its own, as on AWS.
        replica.tags = copy.deepcopy(db_kwargs.get("tags") or [])
        replica.vpc_security_group_ids = list(replica.vpc_security_group_ids)
        replica.dbi_resource_id = "db-" + uuid.uuid4().hex[:26].upper()
        replica.created = replica.instance_create_time = utcnow()
        instance_port(replica)
        server, source = backing.server(self.region_name), backing.server(source_region(replica))
        if server is None or source is None or server.name == source.name:
            return replica
        replica.status = "creating"
        backing.busy.add(server.name)
        reset = any(t.get("Key") == RESET_TAG for t in replica.tags)
        threading.Thread(target=rebuild, args=(replica, server, source, reset), daemon=True).start()
        return replica

    def rebuild(replica, server, source, reset):
        try:
            if not reset:
                backing.delays.wait("rds.create_read_replica", replica.db_instance_identifier)
            done = "already streams from"
            if not (reset and postgres.streaming_from(server.port) == source.port):
                server.rebuild_as_standby_of(source.port)
                done = "rebuilt as a standby of"
            backing.caught_up.pop(key(replica), None)
            replica.status = "available"
            log(f"{replica.db_instance_identifier}: {server.name} on :{server.port} {done} {source.name} on "
                f":{source.port}")
        except Exception:
            replica.status = "failed"
            log(f"creating {replica.db_instance_identifier} failed:\n{traceback.format_exc()}")
        finally:
            backing.busy.discard(server.name)

    original_modify = RDSBackend.modify_db_instance

    def modify_db_instance(self, db_instance_identifier, db_kwargs):
        instance = original_modify(self, db_instance_identifier, db_kwargs)
        groups = db_kwargs.get("vpc_security_group_ids")
        server = backing.server(self.region_name)
        if server is not None and groups:
            endpoint = backing.endpoints.of(self.region_name, instance.db_instance_identifier, server.port)
            if list(groups) == [backing.fence_group]:
                endpoint.fenced = True
                fence(server, True)
                log(f"{instance.db_instance_identifier} fenced: {server.name} on :{server.port} rejects "
                    f"{postgres.APP_ROLE}")
            elif backing.fence_group not in groups:
                endpoint.fenced = False
                fence(server, False)
        return instance

    original_delete = RDSBackend.delete_db_instance

    def delete_db_instance(self, db_instance_identifier, *args, **kwargs):
        instance = self.databases.get(db_instance_identifier)
        if instance is not None and instance.is_replica and source_region(instance) != self.region_name:
            detach_from_source(instance)  # moto cannot find a cross-region source by identifier
        deleted = original_delete(self, db_instance_identifier, *args, **kwargs)
        backing.endpoints.close(self.region_name, db_instance_identifier)
        return deleted

    RDSBackend.create_db_instance = create_db_instance
    RDSBackend.promote_read_replica = promote_read_replica
    RDSBackend.create_db_instance_read_replica = create_db_instance_read_replica
    RDSBackend.modify_db_instance = modify_db_instance
    RDSBackend.delete_db_instance = delete_db_instance

    if backing.delays.profile:
        from . import cloud_delays
        cloud_delays.install(backing.delays)
        log(f"latency profile at time scale {backing.delays.scale}"
            + (f", sampled with seed {backing.delays.seed}" if backing.delays.seed is not None else ", p50"))

    from . import lag
    threading.Thread(target=lag.publish_forever, args=(backing, rds_backends, ACCOUNT), daemon=True).start()
    return backing


def key(instance):
    return (instance.region, instance.db_instance_identifier, id(instance))


def utcnow():
    from moto.core.utils import utcnow as moto_now
    return moto_now()


def fence(server, on):
    """Fences the server (`on`) or lifts the fence: the app role's pg_hba.conf line rejects or
    authenticates, reloaded; fencing also terminates the role's sessions. pg_hba.conf is not
    replicated, so the standby is untouched. A stopped server gets the file and starts with it."""
    path = os.path.join(server.data, "pg_hba.conf")
    with open(path) as f:
        lines = f.read().splitlines()
    pattern = re.compile(rf"^host\s+all\s+{postgres.APP_ROLE}\s+127\.0\.0\.1/32\s+\S+")
    method = "reject" if on else "scram-sha-256"
    updated = [f"host all {postgres.APP_ROLE} 127.0.0.1/32 {method}" if pattern.match(line) else line
               for line in lines]
    if updated != lines:
        with open(path, "w") as f:  # in place: the owner (the server's OS user) stays
            f.write("\n".join(updated) + "\n")
    if not server.running():
        return
    postgres.server("pg_ctl", "-D", server.data, "reload", check=False)
    if on:
        terminate = (f"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                     f"WHERE usename = '{postgres.APP_ROLE}'")
        # The reload is a signal: sessions that connect before the postmaster rereads the file are
        # terminated by the second pass.
        for pause in (0.2, 0.3):
            time.sleep(pause)
            postgres.psql(server.port, terminate, check=False)

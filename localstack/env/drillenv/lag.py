"""CloudWatch `AWS/RDS` `ReplicaLag` of the backed read replicas, from the real servers, published
into moto (or LocalStack's CloudWatch, with `up --aws localstack`) every `lag_interval_s` (1 s in the environment; drctl's guard reads the Maximum of the latest
minute).

The figure is an upper bound of the data a promotion would lose, in seconds, so the guard is never
optimistic:

- the standby has replayed all the WAL its source had when last asked: 0 (and that moment is
  remembered as the last time it was caught up);
- otherwise: now minus the later of the last replayed commit's timestamp
  (`pg_last_xact_replay_timestamp()`) and the last moment it was seen caught up. Every write
  committed before that point is on the standby; any later one may not be. While the source is
  alive and streaming to it this is the usual lag (plus at most one write interval). When the
  source is dead or cut off (unreachable, or the standby's WAL receiver not streaming) it keeps
  growing, like AWS's figure for a replica whose source is gone, and one publishing interval is
  added: the datapoint is what the guard reads until the next one, and by then the lag has grown
  that much. The true loss is the writes between that point and the failure: never more;
- nothing known (a fresh standby that never caught up and replayed nothing): no datapoint, so the
  guard calls the lag unknown and refuses without --accept-data-loss.

A replica whose server is being rebuilt or promoted, or is not in recovery, gets no datapoint."""

import time
import traceback

from . import postgres


def lsn(text):
    """`16/B374D848` as an integer."""
    high, low = text.split("/")
    return (int(high, 16) << 32) + int(low, 16)


def measure(backing, replica_key, standby, source, interval):
    """The lag in seconds of server `standby` behind server `source`, or None when unknown."""
    asked_at = time.time()
    primary_lsn = None
    row = postgres.psql(source.port, "SELECT NOT pg_is_in_recovery(), pg_current_wal_lsn()", check=False)
    if row.startswith("t|"):
        primary_lsn = lsn(row.split("|")[1])
    row = postgres.psql(standby.port, "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn(), "
                                      "extract(epoch FROM pg_last_xact_replay_timestamp()), "
                                      "EXISTS (SELECT FROM pg_stat_wal_receiver WHERE status = 'streaming')",
                        check=False)
    parts = row.split("|")
    if len(parts) != 4 or parts[0] != "t":
        return None  # unreachable, or not a standby
    replayed = lsn(parts[1]) if parts[1] else None
    if primary_lsn is not None and replayed is not None and replayed >= primary_lsn:
        backing.caught_up[replica_key] = asked_at
        return 0.0
    since = [t for t in (float(parts[2]) if parts[2] else None, backing.caught_up.get(replica_key)) if t is not None]
    if not since:
        return None
    lag = max(0.0, time.time() - max(since))
    if primary_lsn is None or parts[3] != "t":
        # Cut off from its source: the lag grows by a second every second until the next datapoint,
        # and the guard may read this one until then.
        lag += interval
    return lag


def publish_once(backing, rds_backends, account, interval):
    from moto.cloudwatch.models import cloudwatch_backends

    from .backing import key, source_region

    for region in backing.regions:
        for instance in list(rds_backends[account][region].databases.values()):
            if not instance.is_replica or instance.status not in ("available", "modifying"):
                continue
            standby, source = backing.server(region), backing.server(source_region(instance))
            if source is None or standby.name == source.name or backing.busy & {standby.name, source.name}:
                continue
            seconds = measure(backing, key(instance), standby, source, interval)
            if seconds is None:
                continue
            datum = {"MetricName": "ReplicaLag", "Value": seconds, "Unit": "Seconds",
                     "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": instance.db_instance_identifier}]}
            endpoint = backing.config.get("cloudwatch_endpoint")
            if endpoint:  # CloudWatch is LocalStack (`up --aws localstack`)
                cloudwatch_client(endpoint, region).put_metric_data(Namespace="AWS/RDS", MetricData=[datum])
            else:
                cloudwatch_backends[account][region].put_metric_data("AWS/RDS", [datum])


_clients = {}


def cloudwatch_client(endpoint, region):
    if (endpoint, region) not in _clients:
        import boto3

        _clients[(endpoint, region)] = boto3.client("cloudwatch", endpoint_url=endpoint, region_name=region,
                                                    aws_access_key_id="testing", aws_secret_access_key="testing")
    return _clients[(endpoint, region)]


def publish_forever(backing, rds_backends, account):
    interval = float(backing.config.get("lag_interval_s", 2))
    while True:
        started = time.monotonic()
        try:
            publish_once(backing, rds_backends, account, interval)
        except Exception:
            print(f"drctl-env backing: publishing ReplicaLag failed:\n{traceback.format_exc()}", flush=True)
        time.sleep(max(0.1, interval - (time.monotonic() - started)))

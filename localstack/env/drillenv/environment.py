"""Bringing the environment up and down, and its `state.json` (what runs where, by PID and port)."""

import json
import os
import secrets
import shutil
import sys
import tempfile
import urllib.request

from . import aws, delays, kube, localstack_backend, postgres, processes

#: The faults `envctl inject` knows (see actions.inject).
FAULTS = ("database_stop", "health_fail", "api_fail", "partition")

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(os.path.dirname(HERE))


def say(line):
    print(f"== {line}", file=sys.stderr, flush=True)


def load_state(directory):
    path = os.path.join(directory, "state.json")
    if not os.path.exists(path):
        raise RuntimeError(f"no environment in {directory}: start one with `localstack/env/up --dir {directory}`")
    with open(path) as f:
        return json.load(f)


def save(path, value, private=False):
    tmp = path + ".tmp"
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644), "w") as f:
        f.write(value if isinstance(value, str) else json.dumps(value, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def servers(state):
    """The two PostgreSQL servers."""
    return {name: postgres.Server(state["pg_root"], name, port) for name, port in state["pg"].items()}


#: The RDS instance each server backs when the environment starts, by server name.
SEEDED_INSTANCES = {"primary": (aws.PRIMARY_REGION, aws.DB_PRIMARY), "dr": (aws.DR_REGION, aws.DB_REPLICA)}


def instance_port(state, name):
    """The port of the seeded RDS instance backed by server `name` (its own endpoint, see
    drillenv/endpoints.py), or the server's own in environments from before instance endpoints."""
    return state.get("instance_ports", {}).get(name) or state["pg"][name]


def app_url(state, password, name):
    """The app's DATABASE_URL for the seeded instance backed by server `name`."""
    return f"postgres://{postgres.APP_ROLE}:{password}@127.0.0.1:{instance_port(state, name)}/{postgres.DATABASE}"


def http_ok(url):
    with urllib.request.urlopen(url, timeout=2) as response:
        return response.status == 200


def refuse_if_up(directory):
    """Raises when `directory` holds an environment already."""
    if os.path.exists(os.path.join(directory, "state.json")):
        raise RuntimeError(f"an environment is already up in {directory}: `localstack/env/down --dir {directory}` first")


def latency(profile, time_scale, seed, directory):
    """The latency settings state.json, the backing file and env.json carry: the profile's path and
    figures, the scale, the seed, and the delays log (see delays.py). Checked before anything starts."""
    if time_scale is not None and time_scale <= 0:
        raise ValueError(f"--time-scale must be positive, not {time_scale}")
    if profile is None:
        if time_scale is not None or seed is not None:
            raise ValueError("--time-scale and --seed apply a latency profile: give it with --profile FILE")
        return {"profile": None, "time_scale": None, "seed": None, "figures": {}, "delays_log": None}
    figures = delays.load_profile(profile)
    return {"profile": os.path.abspath(profile), "time_scale": 1.0 if time_scale is None else time_scale,
            "seed": seed, "figures": figures, "delays_log": os.path.join(directory, "delays.jsonl")}


AWS_BACKENDS = ("moto", "localstack")


def up(directory, profile=None, time_scale=None, seed=None, aws_backend="moto"):
    """Starts everything, seeds it, writes state.json, inventory.json, env.json and env.sh. With a
    latency `profile` (a file like drills/profiles/aws-typical.yaml), the emulators take its times
    scaled by `time_scale`, p50 or (with `seed`) sampled. `aws_backend` `localstack` serves Route53,
    Secrets Manager and CloudWatch from LocalStack, RDS from moto (see localstack_backend.py)."""
    if aws_backend not in AWS_BACKENDS:
        raise ValueError(f"--aws {aws_backend}: choose one of {', '.join(AWS_BACKENDS)}")
    if aws_backend == "localstack" and profile:
        raise ValueError("--profile applies its Route53 and Secrets Manager times in moto's launcher, and LocalStack "
                         "answers those at once, so a timed drill on LocalStack would look faster than production: "
                         "run timed drills with --aws moto (the default)")
    os.makedirs(directory, exist_ok=True)
    directory = os.path.abspath(directory)
    settings = latency(profile, time_scale, seed, directory)
    logs = os.path.join(directory, "logs")
    os.makedirs(logs, exist_ok=True)
    pg_root = tempfile.mkdtemp(prefix="drctl-env-pg-")
    os.chmod(pg_root, 0o755)
    state = {"pids": {}, "pg_root": pg_root, "pg": {"primary": processes.free_port(), "dr": processes.free_port()},
             "instance_ports": {"primary": processes.free_port(), "dr": processes.free_port()},
             "latency": settings, "aws_backend": aws_backend}
    if aws_backend == "localstack":
        localstack_backend.plan(state)
    if settings["delays_log"]:
        save(settings["delays_log"], "")
        say(f"latency profile {settings['profile']} at time scale {settings['time_scale']}"
            + (f", sampled with seed {seed}" if seed is not None else ", p50") + f"; delays logged to "
            f"{settings['delays_log']}")
    state_path = os.path.join(directory, "state.json")
    save(state_path, state)
    password = secrets.token_urlsafe(18)

    say(f"PostgreSQL primary on 127.0.0.1:{state['pg']['primary']}, streaming standby on :{state['pg']['dr']}")
    pg = servers(state)
    tls = postgres.make_certificates(pg_root) if postgres.tls_wanted() else None
    if tls:
        state["pg_ca"] = tls["ca"]
        save(state_path, state)
        say(f"PostgreSQL with TLS ({postgres.TLS_VARIABLE}=1): drctl connects with sslmode=verify-full, CA {tls['ca']}")
    pg["primary"].init_primary(password, tls)
    pg["dr"].rebuild_as_standby_of(state["pg"]["primary"])

    try:
        start_aws(state, logs, directory)
    finally:
        save(state_path, state)  # what started is stopped by `down`, even when a later part failed

    seeds = []
    for cluster, db in (("primary", "primary"), ("dr", "dr")):
        path = os.path.join(directory, f"seed-{cluster}.yaml")
        save(path, kube.seed_manifests(cluster, app_url(state, password, db)), private=True)
        seeds += ["--seed-cluster", f"{cluster}={path}"]
    state["kubeconfig"] = os.path.join(directory, "kubeconfig")
    kube_log = os.path.join(logs, "kube-emulator.log")
    state["pids"]["kube"] = processes.spawn(
        [sys.executable, os.path.join(REPO, "localstack/kube/emulator"), "--cluster", "primary", "--cluster", "dr",
         "--kubeconfig", state["kubeconfig"], "--rollout-delay", "0.3", *seeds, *kube_latency(directory, state)],
        kube_log)
    save(state_path, state)
    processes.wait_for("the Kubernetes API emulator", lambda: os.path.exists(state["kubeconfig"]),
                       pid=state["pids"]["kube"], log_path=kube_log)
    clusters = {name: kube.Cluster(state["kubeconfig"], name) for name in ("primary", "dr")}
    state["kubernetes"] = {name: c.url for name, c in clusters.items()}
    say(f"Kubernetes API emulator: primary {clusters['primary'].url}, dr {clusters['dr'].url}")

    say("seeding AWS: hosted zone example.com, RDS portfolio-primary and its us-west-2 replica, secret "
        "dr-database-url, the fence security group")
    state.update(aws.seed(state["aws_endpoint"], app_url(state, password, "primary"), password))
    if state.get("backing"):
        backing = dict(state["backing"], fence_security_group=state["fence_security_group"])
        save(os.path.join(directory, "backing.json"), backing)
        aws.wait_replica_available(state["aws_endpoint"])

    health_port = processes.free_port()
    health_log = os.path.join(logs, "health.log")
    state["health_url"] = f"http://127.0.0.1:{health_port}"
    save(state_path, state)
    state["pids"]["health"] = processes.spawn(
        [sys.executable, os.path.join(HERE, "envctl"), "--dir", directory, "health-app", "--port", str(health_port)],
        health_log)
    save(state_path, state)
    processes.wait_for("the health app", lambda: http_ok(state["health_url"] + "/health"), pid=state["pids"]["health"],
                       log_path=health_log)
    say(f"health endpoints on {state['health_url']} (us-east-1 healthy, us-west-2 a read-only standby)")

    if settings["delays_log"]:
        save(settings["delays_log"], "")  # what `up` itself waited for is not the drill's
    save(os.path.join(directory, "inventory.json"), inventory(state))
    variables = variables_of(state)
    save(os.path.join(directory, "env.json"), describe(directory, state, variables))
    save(os.path.join(directory, "env.sh"), "".join(f"export {k}='{v}'\n" for k, v in sorted(variables.items())))
    save(os.path.join(directory, "vars.yaml"), vars_file(plan_vars(state)))
    say(f"the environment is up: {os.path.join(directory, 'env.json')}; to drive it by hand: "
        f"`source {os.path.join(directory, 'env.sh')}` and "
        f"`drctl failover --plan us-west-2 --vars {os.path.join(directory, 'vars.yaml')}`")


def backing_config(state):
    """What moto's launcher reads (DRCTL_ENV_BACKING, see backing.py): which server backs each region's
    RDS instances, the seeded instances' endpoint ports, and the latency settings. The fence group is
    added once seeded."""
    settings = state["latency"]
    return {
        "servers": {aws.PRIMARY_REGION: {"name": "primary", "port": state["pg"]["primary"]},
                    aws.DR_REGION: {"name": "dr", "port": state["pg"]["dr"]}},
        "instance_ports": {f"{region}/{instance}": state["instance_ports"][name]
                           for name, (region, instance) in SEEDED_INSTANCES.items()},
        "pg_root": state["pg_root"],
        "fence_security_group": None,
        "lag_interval_s": 1,
        "cloudwatch_endpoint": state["localstack"]["endpoint"] if state.get("localstack") else None,
        "profile": settings["figures"],
        "time_scale": settings["time_scale"],
        "seed": settings["seed"],
        "delays_log": settings["delays_log"],
    }


def kube_latency(directory, state):
    """The Kubernetes emulator's `--latency FILE` (pods ready after the profile's `kube.pod_ready`),
    or nothing without a profile."""
    if not state["latency"]["profile"]:
        return []
    path = os.path.join(directory, "kube-latency.json")
    settings = {k: v for k, v in backing_config(state).items() if k in ("profile", "time_scale", "seed", "delays_log")}
    if settings["seed"] is not None:
        settings["seed"] += 1  # its own stream of draws, not a copy of moto's
    save(path, settings)
    return ["--latency", path]


def start_aws(state, logs, directory):
    """moto on a free port, its RDS backed by the PostgreSQL servers (backing.json); with LocalStack,
    LocalStack too and the router in front of both. Then checks Secrets Manager's behaviour."""
    if state["aws_backend"] == "localstack":
        localstack_backend.start(state, logs, directory, say, http_ok)
    start_moto(state, logs, directory)
    if state["aws_backend"] == "localstack":
        state["aws_endpoint"], log = localstack_backend.start_router(state, logs, directory, HERE)
        processes.wait_for("the AWS router", lambda: http_ok(state["aws_endpoint"] + "/_localstack/health"),
                           pid=state["pids"]["router"], log_path=log)
        say(f"AWS on {state['aws_endpoint']}: RDS and EC2 to moto, Route53, Secrets Manager and CloudWatch to "
            "LocalStack")
    else:
        state["aws_endpoint"] = state["moto_endpoint"]
    aws.check_secrets_behaviour(state["aws_endpoint"])


def start_moto(state, logs, directory):
    port = processes.free_port()
    log = os.path.join(logs, "moto.log")
    state["moto_endpoint"] = f"http://127.0.0.1:{port}"
    state["backing"] = backing_config(state)
    backing_path = os.path.join(directory, "backing.json")
    save(backing_path, state["backing"])
    env = dict(os.environ, MOTO_ALLOW_NONEXISTENT_REGION="true", DRCTL_ENV_BACKING=backing_path)
    argv = [sys.executable, os.path.join(HERE, "moto-server"), "-H", "127.0.0.1", "-p", str(port)]
    state["pids"]["moto"] = processes.spawn(argv, log, env)
    say(f"moto (the AWS emulator) on {state['moto_endpoint']}")
    processes.wait_for("moto", lambda: http_ok(state["moto_endpoint"] + "/moto-api/"), pid=state["pids"]["moto"],
                       log_path=log)


def inventory(state):
    """What exists now (AWS and Kubernetes objects), for the leak check."""
    found = aws.inventory(state["aws_endpoint"])
    for name in ("primary", "dr"):
        found[f"kubernetes.{name}"] = kube.Cluster(state["kubeconfig"], name).inventory()
    return found


def variables_of(state):
    """The environment variables the drill and the fixture plans read (env.sh)."""
    pg, health = state["pg"], state["health_url"]
    tls = f"?{postgres.dsn_tls_parameters(state['pg_ca'])}" if state.get("pg_ca") else ""
    return {
        "AWS_ENDPOINT_URL": state["aws_endpoint"],
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": aws.PRIMARY_REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        "KUBECONFIG": state["kubeconfig"],
        "PRIMARY_DATABASE_DSN": f"postgres://{postgres.SUPERUSER}@127.0.0.1:{pg['primary']}/{postgres.DATABASE}{tls}",
        "DR_DATABASE_DSN": f"postgres://{postgres.SUPERUSER}@127.0.0.1:{pg['dr']}/{postgres.DATABASE}{tls}",
        "DR_DATABASE_ENDPOINT": f"127.0.0.1:{pg['dr']}",
        "API_ZONE_ID": state["zone_id"],
        "API_URL": health,
        "PRIMARY_HEALTH_URL": f"{health}/regions/us-east-1/health",
        "DR_HEALTH_URL": f"{health}/regions/us-west-2/health",
        "SLACK_WEBHOOK_URL": f"{health}/hooks/chat",
        "APP_DATABASE_ROLE": postgres.APP_ROLE,
        "NO_PROXY": "127.0.0.1,localhost",
    }


def plan_vars(state):
    """The values plans/us-west-2.yaml's vars take in this environment (env.json's `vars`; see the
    README's table). Secrets are never among them: the DSNs name no password."""
    health = state["health_url"]
    values = {
        "api_zone_id": state["zone_id"],
        "api_record": aws.RECORD.rstrip("."),
        "api_url": health,
        "primary_health_url": f"{health}/regions/us-east-1/health",
        "dr_health_url": f"{health}/regions/us-west-2/health",
        "primary_lb_dns_name": aws.PRIMARY_ALIAS["DNSName"],
        "primary_lb_zone_id": aws.PRIMARY_ALIAS["HostedZoneId"],
        "dr_lb_dns_name": aws.DR_ALIAS["DNSName"],
        "dr_lb_zone_id": aws.DR_ALIAS["HostedZoneId"],
        "primary_db_instance": aws.DB_PRIMARY,
        "dr_replica_id": aws.DB_REPLICA,
        "reprotect_replica_id": aws.DB_REPROTECTED,
        "primary_db_endpoint": f"127.0.0.1:{instance_port(state, 'primary')}",
        "dr_db_endpoint": f"127.0.0.1:{instance_port(state, 'dr')}",
        "secret_id": aws.SECRET_ID,
        "kube_primary_context": "primary",
        "kube_secondary_context": "dr",
        "app_namespace": kube.NAMESPACE,
        "app_deployment": kube.APP,
        "failover_replicas": str(kube.STEADY_REPLICAS["primary"]),
        "primary_replicas": str(kube.STEADY_REPLICAS["primary"]),
        "dr_standby_replicas": str(kube.STEADY_REPLICAS["dr"]),
        "app_database_role": postgres.APP_ROLE,
    }
    if state.get("fence_security_group"):
        values["fence_security_group"] = state["fence_security_group"]
    return values


def vars_file(values):
    """`--vars` for driving plans/us-west-2.yaml by hand: the values of the variables that plan
    declares (drctl refuses a name a plan does not declare, so the environment's extras stay out)."""
    import yaml
    with open(os.path.join(REPO, "plans", "us-west-2.yaml")) as f:
        declared = yaml.safe_load(f).get("vars") or {}
    # A whole number stays one (replica counts): a quoted "3" is a string, which kube.scale refuses.
    lines = [f"{name}: {value if str(value).isdigit() else json.dumps(str(value))}\n"
             for name, value in sorted(values.items()) if name in declared]
    return "# The drill environment's values for plans/us-west-2.yaml's vars (written by `up`).\n" + "".join(lines)


def aws_services(state):
    """Which emulator answers each AWS service behind `endpoints.aws`."""
    moto = state["moto_endpoint"]
    other = state["localstack"]["endpoint"] if state.get("localstack") else moto
    return {"rds": moto, "ec2": moto, "route53": other, "secretsmanager": other, "cloudwatch": other, "sts": other}


def describe(directory, state, variables):
    """env.json: what `drctl drill` reads."""
    ctl = [sys.executable, os.path.join(HERE, "envctl"), "--dir", directory]
    settings = state["latency"]
    return {
        "name": "local",
        "variables": variables,
        "vars": plan_vars(state),
        "profile": settings["profile"],
        "time_scale": settings["time_scale"],
        "seed": settings["seed"],
        "delays_log": settings["delays_log"],
        "aws_backend": state["aws_backend"],
        "endpoints": {
            "aws": state["aws_endpoint"],
            "aws_services": aws_services(state),
            "kubernetes": state["kubernetes"],
            "postgres": {name: f"127.0.0.1:{port}" for name, port in state["pg"].items()},
            "health": state["health_url"],
        },
        "actions": {
            "inject": {fault: ctl + ["inject", fault] for fault in FAULTS},
            "repair": ctl + ["repair"],
            "restore": ctl + ["restore"],
            "checks": {name: ctl + ["check", name] for name in
                       ("dns-on-primary", "database-on-primary", "app-database", "deployments", "no-leftovers")},
        },
    }


def down(directory):
    """Stops every process by PID and the databases, and removes their data; keeps the logs."""
    try:
        state = load_state(directory)
    except RuntimeError:
        say(f"nothing to stop in {directory}")
        return
    for name, pid in state.get("pids", {}).items():
        processes.stop(pid)
    localstack_backend.stop(state)
    for server in servers(state).values():
        server.stop("immediate")
    shutil.rmtree(state["pg_root"], ignore_errors=True)
    for name in ("state.json", "env.json", "env.sh", "vars.yaml", "seed-primary.yaml", "seed-dr.yaml", "kubeconfig"):
        try:
            os.remove(os.path.join(directory, name))
        except FileNotFoundError:
            pass
    say(f"the environment in {directory} is down (logs kept in {os.path.join(directory, 'logs')})")

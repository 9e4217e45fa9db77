"""LocalStack as the environment's AWS for Route53, Secrets Manager and CloudWatch (`up --aws
localstack`), with RDS (and EC2, for the fence group) on moto behind one routing endpoint (router.py).

With a Docker engine it runs ../docker-compose.yml; without one, host mode: localstack-core from
.venv-localstack (`localstack/setup.sh --localstack` installs it), started with the settings issue 12
measured to work here."""

import os
import subprocess
import sys

from . import processes

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
VENV = os.path.join(REPO, ".venv-localstack")
COMPOSE = os.path.join(REPO, "localstack", "docker-compose.yml")
SERVICES = "route53,secretsmanager,cloudwatch,sts"
COMPOSE_ENDPOINT = "http://127.0.0.1:4566"


def docker_answers():
    """Whether a Docker engine answers (`docker info`)."""
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def plan(state):
    """Decides how LocalStack runs and where, before anything starts: state["localstack"]."""
    if docker_answers():
        state["localstack"] = {"mode": "docker", "endpoint": COMPOSE_ENDPOINT}
        return
    python = os.path.join(VENV, "bin", "python")
    if not os.path.exists(python):
        raise RuntimeError("no Docker engine answers and LocalStack is not installed for host mode: run "
                           "`localstack/setup.sh --localstack` (a Python 3.13 venv in .venv-localstack)")
    port = processes.free_port()
    state["localstack"] = {"mode": "host", "endpoint": f"http://127.0.0.1:{port}", "port": port}


def start(state, logs, directory, say, http_ok):
    """Starts LocalStack as `plan` decided and waits until it answers."""
    settings = state["localstack"]
    log = os.path.join(logs, "localstack.log")
    if settings["mode"] == "docker":
        say(f"LocalStack in Docker ({COMPOSE}) on {settings['endpoint']}")
        done = subprocess.run(["docker", "compose", "-f", COMPOSE, "up", "-d", "--wait"], capture_output=True,
                              text=True)
        if done.returncode != 0:
            raise RuntimeError(f"docker compose up failed: {done.stderr.strip()}")
    else:
        volume = os.path.join(directory, "localstack")  # its state (CloudWatch keeps a SQLite file there)
        os.makedirs(volume, exist_ok=True)
        env = dict(os.environ, GATEWAY_LISTEN=f"127.0.0.1:{settings['port']}", DNS_ADDRESS="0",
                   SKIP_SSL_CERT_DOWNLOAD="1", DISABLE_EVENTS="1", SERVICES=SERVICES, LOCALSTACK_VOLUME_DIR=volume)
        argv = [os.path.join(VENV, "bin", "python"), "-m", "localstack.runtime.main"]
        state["pids"]["localstack"] = processes.spawn(argv, log, env)
        say(f"LocalStack (host mode, {VENV}) on {settings['endpoint']}")
    processes.wait_for("LocalStack", lambda: http_ok(settings["endpoint"] + "/_localstack/health"), timeout=120,
                       pid=state["pids"].get("localstack"), log_path=log)


def start_router(state, logs, directory, here):
    """The routing endpoint (router.py): RDS and EC2 to moto, the rest to LocalStack."""
    port = processes.free_port()
    log = os.path.join(logs, "router.log")
    argv = [sys.executable, os.path.join(here, "envctl"), "--dir", directory, "router", "--port", str(port),
            "--moto", state["moto_endpoint"], "--localstack", state["localstack"]["endpoint"]]
    state["pids"]["router"] = processes.spawn(argv, log)
    return f"http://127.0.0.1:{port}", log


def stop(state):
    """Stops what processes.stop cannot: the compose project."""
    if state.get("localstack", {}).get("mode") == "docker":
        subprocess.run(["docker", "compose", "-f", COMPOSE, "down"], capture_output=True)

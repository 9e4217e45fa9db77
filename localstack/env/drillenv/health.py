"""The application's health endpoints, one per region, whose health follows its database: a region is
healthy when its app has ready pods and the database its DATABASE_URL names (resolved from the
Deployment and its Secret in that region's cluster) accepts writes, connecting as the app would, with
the password. The public endpoint follows DNS: it answers for the region api.example.com points at.

  GET  /health                      the public endpoint (the region Route53's api record points at)
  GET  /regions/<region>/health     200 {"status": "ok", "region": ...} or 503 with the reason
  POST /regions/<region>/write      the app's write path ({"seq": N}; see writes.py): 200 {"region", "seq",
                                    "committed_at_us"} or 503 {"error"}
  POST /hooks/chat                  a Slack-compatible webhook receiver; GET lists the messages
  POST /_env/faults/<region>        makes the region's health fail (the `health_fail` fault)
  DELETE /_env/faults               clears injected faults; GET lists them
"""

import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pg8000.native

from . import aws
from .kube import Cluster
from .writes import RegionApp

#: Region → the cluster that runs it, and the load balancer name its DNS alias contains.
REGIONS = {"us-east-1": "primary", "us-west-2": "dr"}


class App:
    def __init__(self, env):
        self.env = env
        self.clusters = {region: Cluster(env["kubeconfig"], context) for region, context in REGIONS.items()}
        self.apps = {region: RegionApp(cluster) for region, cluster in self.clusters.items()}
        self.lock = threading.Lock()
        self.faults = set()
        self.messages = []

    def region_health(self, region):
        """(healthy, reason)."""
        if region in self.faults:
            return False, "fault injected"
        cluster = self.clusters[region]
        deployment = cluster.deployment()
        if not deployment or not (deployment.get("status") or {}).get("readyReplicas"):
            return False, "no ready pods"
        url = cluster.database_url()
        if not url:
            return False, "the app has no DATABASE_URL"
        return database_writable(url)

    def public_region(self):
        """The region api.example.com points at."""
        target = aws.api_alias(self.env["aws_endpoint"], self.env["zone_id"]) or ""
        return next((region for region in REGIONS if region in target), None)


def database_writable(url):
    """Connects like the app (user, password, host, port and database from the URL) and checks that the
    server is a primary. The reason never contains the URL."""
    parts = urllib.parse.urlsplit(url)
    try:
        connection = pg8000.native.Connection(
            user=urllib.parse.unquote(parts.username or ""), password=urllib.parse.unquote(parts.password or ""),
            host=parts.hostname, port=parts.port or 5432, database=parts.path.lstrip("/"), timeout=2)
    except Exception as e:
        return False, f"database {parts.hostname}:{parts.port} unreachable ({type(e).__name__})"
    try:
        in_recovery = connection.run("SELECT pg_is_in_recovery()")[0][0]
    except Exception as e:
        return False, f"database {parts.hostname}:{parts.port} failed a query ({type(e).__name__})"
    finally:
        connection.close()
    if in_recovery:
        return False, f"database {parts.hostname}:{parts.port} is a read-only standby"
    return True, "ok"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def health(self, region):
        if region not in REGIONS:
            return self.answer(404, {"error": f"no region {region}; there are {sorted(REGIONS)}"})
        try:
            healthy, reason = self.server.app.region_health(region)
        except Exception as e:
            healthy, reason = False, f"cannot observe the region ({type(e).__name__})"
        if healthy:
            return self.answer(200, {"status": "ok", "region": region})
        self.answer(503, {"status": "unavailable", "region": region, "reason": reason})

    def write(self, region, body):
        if region not in REGIONS:
            return self.answer(404, {"error": f"no region {region}; there are {sorted(REGIONS)}"})
        try:
            seq = int(json.loads(body or b"{}")["seq"])
        except (ValueError, KeyError, TypeError):
            return self.answer(400, {"error": 'send {"seq": N} with N an integer'})
        ok, result = self.server.app.apps[region].write(seq)
        if ok:
            return self.answer(200, {"region": region, "seq": seq, "committed_at_us": result})
        self.answer(503, {"region": region, "seq": seq, "error": result})

    def do_GET(self):
        app, path = self.server.app, self.path.split("?")[0]
        if path == "/health":
            region = app.public_region()
            return self.health(region) if region else self.answer(503, {"status": "unavailable", "reason": "DNS points nowhere known"})
        if path.startswith("/regions/") and path.endswith("/health"):
            return self.health(path.split("/")[2])
        if path == "/hooks/chat":
            with app.lock:
                return self.answer(200, list(app.messages))
        if path == "/_env/faults":
            with app.lock:
                return self.answer(200, {"faults": sorted(app.faults)})
        self.answer(404, {"error": f"no route {path}"})

    def do_POST(self):
        app, path = self.server.app, self.path.split("?")[0]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if path.startswith("/regions/") and path.endswith("/write"):
            return self.write(path.split("/")[2], body)
        if path == "/hooks/chat":
            with app.lock:
                app.messages.append(json.loads(body or b"{}"))
            return self.answer(200, {"ok": True})
        if path.startswith("/_env/faults/"):
            with app.lock:
                app.faults.add(path.rsplit("/", 1)[1])
            return self.answer(200, {"faults": sorted(app.faults)})
        self.answer(404, {"error": f"no route {path}"})

    def do_DELETE(self):
        app = self.server.app
        if self.path == "/_env/faults":
            with app.lock:
                app.faults.clear()
            return self.answer(200, {"faults": []})
        self.answer(404, {"error": f"no route {self.path}"})


def serve(env, port):
    """Serves until killed."""
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.app = App(env)
    server.serve_forever()

"""HTTP: routing Kubernetes API paths to the verbs, bearer-token auth, the control API, responses."""

import json
import socket
import sys
import threading
import traceback
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from . import patch as patches
from . import resources
from .errors import (ApiError, bad_request, forbidden, method_not_allowed, unauthorized, unknown_resource,
                     unsupported_media_type)
from .selectors import Selector
from .watch import WatchStream

VERSION = {"major": "1", "minor": "33", "gitVersion": "v1.33.0-drctl-emulator", "gitCommit": "0" * 40,
           "gitTreeState": "clean", "buildDate": "2025-04-23T00:00:00Z", "goVersion": "go1.24.2",
           "compiler": "gc", "platform": "linux/amd64"}
PUBLIC = ("/version", "/healthz", "/readyz", "/livez")
READ_VERBS = ("get", "list", "watch")
AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
ACCESS_REVIEWS = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"


@dataclass
class Route:
    """A resource path: its type, namespace, name and subresource (each may be None)."""

    rtype: resources.ResourceType
    namespace: str = None
    name: str = None
    subresource: str = None

    def target(self):
        """`deployments.apps "web"`, as messages name the object."""
        return f'{self.rtype.group_resource} "{self.name}"' if self.name else self.rtype.group_resource


def parse_route(path):
    """The Route of an `/api/v1/...` or `/apis/{g}/{v}/...` resource path, or None."""
    parts = [p for p in path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        group, version, rest = "", "v1", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    if not rest or len(rest) > 3:
        return None
    rtype = resources.lookup(group, version, rest[0])
    if rtype is None or (namespace is not None and not rtype.namespaced):
        return None
    if not rtype.namespaced or namespace is not None or len(rest) == 1:
        return Route(rtype, namespace, *rest[1:])
    return None


class ClusterServer(ThreadingHTTPServer):
    """One cluster's listener; tracks connections so `stop` can end them (and their watches) promptly."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, cluster, host):
        self.cluster = cluster
        self.connections = set()
        super().__init__((host, 0), Handler)

    def process_request(self, request, client_address):
        self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        self.connections.discard(request)
        super().shutdown_request(request)

    def stop(self):
        """Stops serving and closes every open connection."""
        self.shutdown()
        self.server_close()
        for conn in list(self.connections):
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Handler(BaseHTTPRequestHandler):
    """Answers one connection's requests (HTTP/1.1 keep-alive)."""

    protocol_version = "HTTP/1.1"
    server_version = "drctl-kube-emulator"

    def log_message(self, format, *args):
        if self.server.cluster.verbose:
            sys.stderr.write(f"[{self.server.cluster.name}] {format % args}\n")

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_PATCH(self):
        self.dispatch("PATCH")

    def do_DELETE(self):
        self.dispatch("DELETE")

    # --- responses

    def send_json(self, code, body, headers=None, content_type="application/json"):
        """A complete JSON response."""
        data = json.dumps(body, separators=(",", ":")).encode() if not isinstance(body, bytes) else body
        self.count_success(code)
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def start_chunked(self, code):
        """Headers of a streamed (watch) response."""
        self.count_success(code)
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def count_success(self, code):
        """Counts a 2xx answer to a Kubernetes API request before the client can see it, so a client that
        reads the counts right after its answer sees its own request counted."""
        key, self.success_key = getattr(self, "success_key", None), None
        if key and 200 <= code < 300:
            self.server.cluster.requests.record_success(*key)

    def write_chunk(self, obj):
        """One JSON line as one chunk."""
        data = json.dumps(obj, separators=(",", ":")).encode() + b"\n"
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def end_chunked(self):
        """The last chunk of a streamed response."""
        self.wfile.write(b"0\r\n\r\n")

    def read_body(self):
        """The request body (Content-Length or chunked)."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    # --- dispatch

    def dispatch(self, method):
        """Runs one request: control API, or request count, fault, auth and the Kubernetes API."""
        cluster = self.server.cluster
        self.success_key = None
        url = urlsplit(self.path)
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        try:
            body = self.read_body()
            if url.path.startswith("/_emulator/"):
                return self.send_json(*cluster.control(method, url.path, body))
            cluster.requests.record(method, url.path)
            route = parse_route(url.path)
            fault = cluster.faults.take(method, self.path, route.target() if route and route.name else None)
            if fault:
                raise fault
            user = self.authenticate(url.path)
            if url.path.rstrip("/") == ACCESS_REVIEWS:
                return self.access_review(method, user, body)
            if route is None:
                return self.non_resource(method, url.path)
            self.authorize(user, method, route, query)
            self.success_key = (method, url.path)
            self.resource(method, route, query, body)
        except ApiError as e:
            self.send_json(e.code, e.status(), e.headers)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as e:  # an emulator bug: answer like the server would, and say so on stderr
            traceback.print_exc()
            self.send_json(500, ApiError(500, f"Internal error occurred: {e}").status())

    def authenticate(self, path):
        """The user of the bearer token; 401 for an unknown one (none is allowed on public paths)."""
        header = self.headers.get("Authorization", "")
        if not header and path in PUBLIC:
            return "system:anonymous"
        token = header[7:].strip() if header.lower().startswith("bearer ") else None
        user = self.server.cluster.tokens.get(token)
        if user is None:
            raise unauthorized()
        return user

    def authorize(self, user, method, route, query):
        """403 for a write by the read-only user, in RBAC's words."""
        verb = {"GET": "list" if route.name is None else "get", "POST": "create", "PUT": "update",
                "PATCH": "patch", "DELETE": "delete" if route.name else "deletecollection"}[method]
        if verb == "list" and query.get("watch") in ("true", "1"):
            verb = "watch"
        if user == "readonly" and verb not in READ_VERBS:
            raise forbidden(user, verb, route.rtype, route.subresource, route.namespace, route.name)

    def access_review(self, method, user, body):
        """A SelfSubjectAccessReview: whether this token's user may do what the review asks, by the
        same rule as `authorize` (the read-only user may only get, list and watch). Changes nothing."""
        if method != "POST":
            raise method_not_allowed()
        try:
            review = json.loads(body or b"{}")
        except ValueError:
            raise bad_request("the SelfSubjectAccessReview is not JSON")
        attributes = (review.get("spec") or {}).get("resourceAttributes") or {}
        verb = attributes.get("verb") or ""
        allowed = user != "readonly" or verb in READ_VERBS
        review["apiVersion"], review["kind"] = "authorization.k8s.io/v1", "SelfSubjectAccessReview"
        review.setdefault("metadata", {})
        review["status"] = {"allowed": allowed}
        if not allowed:
            review["status"]["reason"] = f'User "{user}" may only get, list and watch'
        self.success_key = ("POST", ACCESS_REVIEWS)
        self.send_json(201, review)

    def non_resource(self, method, path):
        """Version, health and discovery documents."""
        if method != "GET":
            raise method_not_allowed()
        path = path.rstrip("/") or "/"
        aggregated = "as=APIGroupDiscoveryList" in self.headers.get("Accept", "")
        if path == "/version":
            return self.send_json(200, VERSION)
        if path in PUBLIC:
            return self.send_json(200, b"ok", content_type="text/plain; charset=utf-8")
        if path in ("/api", "/apis") and aggregated:
            return self.send_json(200, resources.aggregated_discovery(path == "/api"), content_type=AGGREGATED)
        if path == "/api":
            return self.send_json(200, resources.api_versions(f"{self.server.server_address[0]}:"
                                                                f"{self.server.server_address[1]}"))
        if path == "/apis":
            return self.send_json(200, resources.api_group_list())
        parts = path.strip("/").split("/")
        if parts[0] == "apis" and len(parts) == 2 and parts[1] in resources.groups():
            return self.send_json(200, resources.api_group(parts[1], resources.groups()[parts[1]]))
        listing = None
        if parts[:2] == ["api", "v1"] and len(parts) == 2:
            listing = resources.api_resource_list("", "v1")
        elif parts[0] == "apis" and len(parts) == 3:
            listing = resources.api_resource_list(parts[1], parts[2])
        if listing is None:
            raise unknown_resource()
        self.send_json(200, listing)

    def resource(self, method, route, query, raw):
        """A verb on a resource path."""
        api, rtype, ns, name, sub = self.server.cluster.api, route.rtype, route.namespace, route.name, route.subresource
        if sub is not None and sub not in rtype.subresources:
            raise unknown_resource()
        dry_run = query.get("dryRun") == "All"
        if method == "GET":
            if name is None:
                selector = Selector(query.get("labelSelector"), query.get("fieldSelector"))
                if query.get("watch") in ("true", "1"):
                    return WatchStream(self, api.store, rtype, ns, selector, query).run()
                return self.send_json(200, api.list(rtype, ns, selector))
            return self.send_json(200, api.scale(rtype, ns, name) if sub == "scale" else api.get(rtype, ns, name))
        if method == "POST":
            if name is not None or (rtype.namespaced and ns is None):
                raise method_not_allowed()
            return self.send_json(201, api.create(rtype, ns, _json(raw), dry_run))
        if method == "DELETE":
            if sub is not None:
                raise method_not_allowed()
            options = _json(raw) if raw.strip() else {}
            if "propagationPolicy" in query:
                options["propagationPolicy"] = query["propagationPolicy"]
            if name is None:
                selector = Selector(query.get("labelSelector"), query.get("fieldSelector"))
                return self.send_json(200, api.delete_collection(rtype, ns, selector, options))
            return self.send_json(200, api.delete(rtype, ns, name, options, dry_run))
        if name is None:
            raise method_not_allowed()
        if method == "PUT":
            body = _json(raw)
            if sub == "scale":
                return self.send_json(200, api.set_scale(rtype, ns, name, None, body, dry_run))
            return self.send_json(200, api.update(rtype, ns, name, body, sub == "status", dry_run))
        content_type = patches.normalize_content_type(self.headers.get("Content-Type"))
        if content_type not in (patches.MERGE, patches.STRATEGIC, patches.JSON_PATCH, patches.APPLY):
            raise unsupported_media_type(content_type)
        doc = patches.parse_body(content_type, raw)
        if sub == "scale":
            return self.send_json(200, api.set_scale(rtype, ns, name, content_type, doc, dry_run))
        code, obj = api.patch(rtype, ns, name, content_type, doc, sub == "status", dry_run,
                              query.get("fieldManager"), query.get("force") == "true")
        self.send_json(code, obj)


def _json(raw):
    try:
        return json.loads(raw.decode("utf-8") or "null")
    except ValueError as e:
        raise bad_request(f"the body of the request was not valid JSON: {e}") from None


def serve(cluster, host):
    """Binds a free port on `host` and serves `cluster` on a daemon thread; returns the server."""
    server = ClusterServer(cluster, host)
    threading.Thread(target=server.serve_forever, args=(0.05,), name=f"serve-{cluster.name}", daemon=True).start()
    return server

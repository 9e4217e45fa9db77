#!/usr/bin/env python3
"""A two-region application stand-in for drctl's local demo: real HTTP on 127.0.0.1.

It has what the sample plan (plans/local.yaml) drives and checks:

  GET  /health                       the public endpoint: healthy when the region taking traffic is
  GET  /regions/<r>/health           200 when region <r> is up and has ready replicas, else 503
  PUT  /regions/<r>/replicas         body: a number; replicas become ready after --ready-delay
  GET  /regions/<r>/replicas/<n>     200 when <r> has <n> ready replicas, else 409 (for observe)
  PUT  /traffic                      body: a region name; moves traffic there (like a DNS swap)
  GET  /traffic/<r>                  200 when traffic goes to <r>, else 409 (for observe)
  POST /fault/<r>                    takes region <r> down (the outage a drill injects)
  POST /repair/<r>                   brings it back
  POST /hooks/chat                   a Slack-compatible webhook receiver; GET lists what it got
  GET  /state                        everything above, as JSON

Run: demo_app.py --port-file FILE [--ready-delay SECONDS]. It listens on a free port and writes
the port to FILE once it accepts connections.
"""

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

REGIONS = ("primary", "secondary")


class World:
    def __init__(self, ready_delay):
        self.lock = threading.Lock()
        self.ready_delay = ready_delay
        self.traffic = "primary"
        self.up = {"primary": True, "secondary": True}
        self.desired = {"primary": 3, "secondary": 0}
        self.ready = {"primary": 3, "secondary": 0}
        self.messages = []

    def scale(self, region, replicas):
        with self.lock:
            self.desired[region] = replicas
        def settle():
            time.sleep(self.ready_delay)
            with self.lock:
                if self.desired[region] == replicas:
                    self.ready[region] = replicas
        threading.Thread(target=settle, daemon=True).start()

    def healthy(self, region):
        return self.up[region] and self.ready[region] > 0

    def snapshot(self):
        with self.lock:
            return {
                "traffic": self.traffic,
                "up": dict(self.up),
                "desired": dict(self.desired),
                "ready": dict(self.ready),
                "messages": list(self.messages),
            }


def handler_for(world):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def reply(self, status, body=None):
            data = json.dumps(body if body is not None else {"status": status}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def body(self):
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length).decode() if length else ""

        def parts(self):
            return [p for p in self.path.split("?")[0].split("/") if p]

        def do_GET(self):
            p = self.parts()
            if p == ["health"]:
                ok = world.healthy(world.traffic)
                return self.reply(200 if ok else 503, {"status": "ok" if ok else "down", "region": world.traffic})
            if p == ["state"]:
                return self.reply(200, world.snapshot())
            if p == ["hooks", "chat"]:
                return self.reply(200, world.snapshot()["messages"])
            if len(p) == 3 and p[0] == "regions" and p[1] in REGIONS and p[2] == "health":
                ok = world.healthy(p[1])
                return self.reply(200 if ok else 503, {"status": "ok" if ok else "down", "region": p[1]})
            if len(p) == 4 and p[0] == "regions" and p[1] in REGIONS and p[2] == "replicas" and p[3].isdigit():
                return self.reply(200 if world.ready[p[1]] == int(p[3]) else 409, {"ready": world.ready[p[1]]})
            if len(p) == 2 and p[0] == "traffic" and p[1] in REGIONS:
                return self.reply(200 if world.traffic == p[1] else 409, {"traffic": world.traffic})
            self.reply(404)

        def do_PUT(self):
            p = self.parts()
            body = self.body().strip()
            if len(p) == 3 and p[0] == "regions" and p[1] in REGIONS and p[2] == "replicas" and body.isdigit():
                world.scale(p[1], int(body))
                return self.reply(202, {"desired": int(body)})
            if p == ["traffic"] and body in REGIONS:
                if not world.healthy(body):
                    return self.reply(409, {"error": f"region {body} is not healthy"})
                with world.lock:
                    world.traffic = body
                return self.reply(200, {"traffic": body})
            self.reply(400)

        def do_POST(self):
            p = self.parts()
            if len(p) == 2 and p[0] in ("fault", "repair") and p[1] in REGIONS:
                with world.lock:
                    world.up[p[1]] = p[0] == "repair"
                return self.reply(200, {"up": world.up[p[1]]})
            if p == ["hooks", "chat"]:
                try:
                    message = json.loads(self.body())
                except ValueError:
                    return self.reply(400)
                with world.lock:
                    world.messages.append({"text": message.get("text", ""), "idempotency_key": self.headers.get("Idempotency-Key")})
                return self.reply(200, {"ok": True})
            self.reply(404)

    return Handler


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--ready-delay", type=float, default=0.5)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(World(args.ready_delay)))
    with open(args.port_file, "w") as f:
        f.write(str(server.server_address[1]))
    server.serve_forever()


if __name__ == "__main__":
    main()

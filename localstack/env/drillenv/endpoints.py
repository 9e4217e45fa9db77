"""A TCP endpoint of its own for each RDS instance (in moto's process, see backing.py): a port on
127.0.0.1 that forwards to the server backing the instance's region, and refuses new connections
while the instance is fenced, as a security group with no inbound rules does.

Without it every instance of a region would be the same address, so a failback that pointed the app
back at the old, fenced `portfolio-primary` would reach the re-protected server and work, where on
AWS it reaches a fenced database missing every write made during the failover."""

import socket
import struct
import threading


def log(line):
    print(f"drctl-env endpoints: {line}", flush=True)


class InstanceEndpoint:
    """One instance's port. Connections accepted while fenced are reset at once (SO_LINGER 0), so a
    client fails fast instead of waiting for a timeout; open connections stay, as AWS's tracked
    connections do (the server-side fence in backing.py terminates the app's sessions)."""

    def __init__(self, name, target_port, port=0):
        self.name = name
        self.target_port = target_port
        self.fenced = False
        self.closed = False
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", port))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self.accept_forever, daemon=True).start()

    def accept_forever(self):
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            if self.fenced or self.closed:
                reset(client)
                continue
            threading.Thread(target=self.forward, args=(client,), daemon=True).start()

    def forward(self, client):
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            upstream.settimeout(None)
        except OSError:
            reset(client)  # the server is down: refused, as the instance would be
            return
        threading.Thread(target=pump, args=(upstream, client), daemon=True).start()
        pump(client, upstream)

    def close(self):
        self.closed = True
        try:
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()


def reset(connection):
    """Closes with a TCP reset, so the client sees the connection refused at once."""
    try:
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    connection.close()


def pump(source, sink):
    """Copies bytes from `source` to `sink` until either end closes, then closes both."""
    try:
        while True:
            data = source.recv(65536)
            if not data:
                break
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for end in (source, sink):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            end.close()


class Endpoints:
    """The instances' endpoints by (region, identifier). `ports` pins the seeded instances' ports
    (`up` writes them into the seeded DATABASE_URLs before moto knows the instances); any other
    instance gets a free port. A deleted instance's endpoint closes; one recreated under a pinned name
    gets its port again."""

    def __init__(self, ports):
        self.ports = ports  # "region/identifier" → port
        self.open = {}
        self.lock = threading.Lock()

    def of(self, region, identifier, target_port):
        with self.lock:
            endpoint = self.open.get((region, identifier))
            if endpoint is None:
                endpoint = InstanceEndpoint(identifier, target_port, self.ports.get(f"{region}/{identifier}", 0))
                self.open[(region, identifier)] = endpoint
                log(f"{identifier} ({region}) on 127.0.0.1:{endpoint.port} → the server on :{target_port}")
            return endpoint

    def close(self, region, identifier):
        with self.lock:
            endpoint = self.open.pop((region, identifier), None)
        if endpoint is not None:
            endpoint.close()
            log(f"{identifier} ({region}) deleted: 127.0.0.1:{endpoint.port} closed")

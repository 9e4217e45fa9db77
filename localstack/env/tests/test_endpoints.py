"""Each RDS instance's own endpoint (endpoints.py): it forwards to its region's server, two instances of
one region have different ports, a fenced instance refuses new connections while the other still
forwards, and a deleted instance's pinned port comes back when it is recreated."""

import socket
import threading
import unittest

import helpers  # noqa: F401

from drillenv.endpoints import Endpoints


class EchoServer:
    """A stand-in for the region's PostgreSQL server: echoes what it receives."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self.echo, args=(connection,), daemon=True).start()

    @staticmethod
    def echo(connection):
        with connection:
            while data := connection.recv(1024):
                connection.sendall(data)


def round_trip(port, payload=b"ping"):
    """What the endpoint on `port` answers to `payload`, or the error's type name."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(payload)
            return s.recv(1024) or "closed"
    except OSError as e:
        return type(e).__name__


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EndpointsTest(unittest.TestCase):
    def setUp(self):
        self.server = EchoServer()
        self.pinned = free_port()
        self.endpoints = Endpoints({"us-east-1/portfolio-primary": self.pinned})
        self.addCleanup(self.server.listener.close)
        self.addCleanup(lambda: [e.close() for e in self.endpoints.open.values()])

    def test_two_instances_of_a_region_have_their_own_ports_and_only_the_fenced_one_refuses(self):
        old = self.endpoints.of("us-east-1", "portfolio-primary", self.server.port)
        new = self.endpoints.of("us-east-1", "portfolio-prod-reprotected", self.server.port)
        self.assertEqual(old.port, self.pinned)
        self.assertNotEqual(old.port, new.port)
        self.assertIs(self.endpoints.of("us-east-1", "portfolio-primary", self.server.port), old)
        self.assertEqual(round_trip(old.port), b"ping")

        old.fenced = True
        self.assertIn(round_trip(old.port), ("ConnectionResetError", "closed"))
        self.assertEqual(round_trip(new.port), b"ping")

        old.fenced = False
        self.assertEqual(round_trip(old.port), b"ping")

    def test_a_deleted_instance_closes_and_a_recreated_one_gets_its_pinned_port_again(self):
        first = self.endpoints.of("us-east-1", "portfolio-primary", self.server.port)
        self.endpoints.close("us-east-1", "portfolio-primary")
        self.assertEqual(round_trip(first.port), "ConnectionRefusedError")
        again = self.endpoints.of("us-east-1", "portfolio-primary", self.server.port)
        self.assertEqual(again.port, self.pinned)
        self.assertEqual(round_trip(again.port), b"ping")

    def test_a_stopped_server_is_refused_through_the_endpoint(self):
        endpoint = self.endpoints.of("us-east-1", "portfolio-primary", self.server.port)
        self.server.listener.shutdown(socket.SHUT_RDWR)  # stops its blocked accept, unlike close()
        self.server.listener.close()
        self.assertIn(round_trip(endpoint.port), ("ConnectionResetError", "closed"))


if __name__ == "__main__":
    unittest.main()

"""One AWS endpoint for two emulators, routed by service: with `up --aws localstack`, RDS and EC2 (the
RDS instances and their fence security group) go to moto, whose RDS is backed by the real PostgreSQL
servers (LocalStack's free edition has no RDS), and everything else (Route53, Secrets Manager,
CloudWatch, STS) to LocalStack.

The service is the one the request is signed for (the SigV4 credential scope,
`Credential=KEY/DATE/REGION/SERVICE/aws4_request`), so every client (drctl, boto3, the AWS CLI) needs
only AWS_ENDPOINT_URL. Neither emulator checks signatures, so forwarding with another Host is
harmless. Requests and answers are relayed whole (AWS API bodies are small)."""

import http.client
import re
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

#: Signing names that go to moto.
MOTO_SERVICES = {"rds", "ec2"}
SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


def service_of(headers, path):
    """The signing name of a request (`rds`, `route53`, `monitoring`...), or None when unsigned."""
    match = SCOPE.search(headers.get("Authorization", ""))
    if match:
        return match.group(1)
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
    credential = query.get("X-Amz-Credential", [""])[0]  # presigned URLs
    parts = credential.split("/")
    return parts[3] if len(parts) >= 5 else None


def serve(port, moto, localstack):
    """Serves on 127.0.0.1:`port` until killed."""
    targets = {"moto": urllib.parse.urlsplit(moto), "localstack": urllib.parse.urlsplit(localstack)}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def relay(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            service = service_of(self.headers, self.path)
            name = "moto" if service in MOTO_SERVICES or self.path.startswith("/moto-api") else "localstack"
            target = targets[name]
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            headers["Host"] = target.netloc
            connection = http.client.HTTPConnection(target.hostname, target.port, timeout=120)
            try:
                connection.request(self.command, self.path, body=body, headers=headers)
                answer = connection.getresponse()
                data = answer.read()
            except OSError as e:
                message = f"drctl-env router: {name} ({target.netloc}) did not answer: {e}".encode()
                self.send_response(502)
                self.send_header("Content-Length", str(len(message)))
                self.end_headers()
                self.wfile.write(message)
                return
            finally:
                connection.close()
            self.send_response(answer.status, answer.reason)
            for key, value in answer.getheaders():
                if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = relay

        def log_message(self, fmt, *args):
            print(f"{self.address_string()} {fmt % args}", file=sys.stderr, flush=True)

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()

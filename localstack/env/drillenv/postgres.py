"""Real PostgreSQL servers (Debian's packages): a primary made by initdb and a streaming standby made by
pg_basebackup, on 127.0.0.1. As root, the server binaries run as the `postgres` OS user
(DRCTL_PG_OS_USER) because initdb refuses root; their directories live under the system temp dir.

The superuser `drctl` is trusted on 127.0.0.1 (drctl's steps and the drill connect as it); the
application role `portfolio` must give its password, which only the secrets hold.

With TLS (`DRCTL_ENV_PG_TLS=1` when the environment comes up, see `make_certificates`) both servers
run with `ssl = on` and a certificate for 127.0.0.1 and localhost from a CA made for this
environment, and `drctl` may connect over TCP only with TLS (`hostssl`): a drctl connection that
does not do TLS fails. The CA certificate is what the DSNs' `sslrootcert` names."""

import datetime
import glob
import ipaddress
import os
import pwd
import shutil
import subprocess
import time

SUPERUSER = "drctl"
DATABASE = "portfolio"
APP_ROLE = "portfolio"

CONFIG = """
# drctl local DR environment
listen_addresses = '127.0.0.1'
wal_level = replica
max_wal_senders = 5
hot_standby = on
fsync = off
full_page_writes = off
shared_buffers = 16MB
max_connections = 40
wal_receiver_status_interval = 1s
wal_retrieve_retry_interval = 1s
logging_collector = off
"""

HBA = f"""local all all trust
host all {APP_ROLE} 127.0.0.1/32 scram-sha-256
host all all 127.0.0.1/32 trust
local replication all trust
host replication all 127.0.0.1/32 trust
"""

# With TLS: drctl (and everyone but the app role, whose health checks stay as they are) over TLS only.
HBA_TLS = f"""local all all trust
host all {APP_ROLE} 127.0.0.1/32 scram-sha-256
hostssl all all 127.0.0.1/32 trust
local replication all trust
host replication all 127.0.0.1/32 trust
"""

TLS_VARIABLE = "DRCTL_ENV_PG_TLS"


def tls_wanted():
    """Whether the environment's PostgreSQL runs with TLS (DRCTL_ENV_PG_TLS=1)."""
    return os.environ.get(TLS_VARIABLE, "") == "1"


def make_certificates(root):
    """A CA and a server certificate for 127.0.0.1 and localhost under `<root>/tls` (the key
    owned by the server's OS user, 0600); returns their paths: `ca`, `cert`, `key`. Made with
    `cryptography`, which moto already brings into the environment's venv."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    directory = os.path.join(root, "tls")
    hand_over(directory)
    now = datetime.datetime.now(datetime.timezone.utc)
    valid = (now - datetime.timedelta(hours=1), now + datetime.timedelta(days=30))

    def certificate(subject, issuer, public_key, signing_key, extensions):
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
                   .serial_number(x509.random_serial_number()).not_valid_before(valid[0]).not_valid_after(valid[1]))
        for extension, critical in extensions:
            builder = builder.add_extension(extension, critical=critical)
        return builder.sign(signing_key, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "drctl drill environment CA")])
    ca = certificate(ca_name, ca_name, ca_key.public_key(), ca_key, [
        (x509.BasicConstraints(ca=True, path_length=0), True),
        (x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                       data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                       encipher_only=False, decipher_only=False), True),
    ])
    key = ec.generate_private_key(ec.SECP256R1())
    names = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")])
    cert = certificate(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]), ca_name, key.public_key(),
                       ca_key, [(names, False), (x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), False)])

    paths = {name: os.path.join(directory, f"{name}.{ext}") for name, ext in (("ca", "crt"), ("cert", "crt"),
                                                                               ("key", "key"))}
    pem = serialization.Encoding.PEM
    with open(paths["ca"], "wb") as f:
        f.write(ca.public_bytes(pem))
    with open(paths["cert"], "wb") as f:
        f.write(cert.public_bytes(pem))
    with open(os.open(paths["key"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
        f.write(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    user = server_user()
    for path in paths.values():
        os.chmod(path, 0o600 if path == paths["key"] else 0o644)
        if user:
            shutil.chown(path, user, user)
    return paths


def dsn_tls_parameters(ca_path):
    """What a drctl DSN appends to verify the environment's servers: `sslmode=verify-full` and the CA."""
    return f"sslmode=verify-full&sslrootcert={ca_path}"


def bindir():
    """DRCTL_PG_BINDIR, else the newest /usr/lib/postgresql/<version>/bin."""
    if os.environ.get("DRCTL_PG_BINDIR"):
        return os.environ["DRCTL_PG_BINDIR"]
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise RuntimeError("PostgreSQL's server binaries are missing: localstack/setup.sh installs postgresql "
                           "(or set DRCTL_PG_BINDIR)")
    return os.path.dirname(found[-1])


def server_user():
    """The OS user the server runs as when we are root, else None."""
    if os.geteuid() != 0:
        return None
    user = os.environ.get("DRCTL_PG_OS_USER", "postgres")
    try:
        pwd.getpwnam(user)
    except KeyError:
        raise RuntimeError(f"running as root, which initdb refuses, and there is no OS user `{user}` to run "
                           "PostgreSQL as: localstack/setup.sh installs postgresql, or set DRCTL_PG_OS_USER")
    return user


def hand_over(path):
    """Creates `path` owned by the server's OS user."""
    os.makedirs(path, exist_ok=True)
    user = server_user()
    if user:
        shutil.chown(path, user, user)


def client_env():
    """This process's environment without PG* variables, so nothing but the arguments picks the server."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PG")}


def server(name, *args, check=True):
    """Runs server binary `name` as the server's OS user; returns the completed process."""
    argv = [os.path.join(bindir(), name), *args]
    if server_user():
        argv = ["runuser", "-u", server_user(), "--", *argv]
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=client_env(), cwd="/")
    if check and done.returncode != 0:
        raise RuntimeError(f"{name} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
    return done


def psql(port, sql, database=DATABASE, check=True):
    """SQL as the superuser over TCP, on psql's standard input (never its command line, which `ps`
    shows); returns the unaligned output."""
    argv = [os.path.join(bindir(), "psql"), "-X", "-qAt", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
            "-p", str(port), "-U", SUPERUSER, "-d", database, "-f", "-"]
    env = dict(client_env(), PGCONNECT_TIMEOUT="3")
    done = subprocess.run(argv, input=sql, capture_output=True, text=True, env=env)
    if check and done.returncode != 0:
        raise RuntimeError(f"psql on 127.0.0.1:{port} failed: {done.stderr.strip()}")
    return done.stdout.strip()


class Server:
    """One PostgreSQL server: `<root>/<name>/{data,socket,server.log}` on `port`."""

    def __init__(self, root, name, port):
        self.name, self.port = name, port
        self.base = os.path.join(root, name)
        self.data = os.path.join(self.base, "data")
        self.socket = os.path.join(self.base, "socket")
        self.log = os.path.join(self.base, "server.log")

    def describe(self):
        return {"name": self.name, "port": self.port, "base": self.base}

    def start(self):
        """Starts the server and waits until it accepts connections."""
        hand_over(self.socket)
        server("pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "60",
               "-o", f"-p {self.port} -k {self.socket}", "start")

    def stop(self, mode="fast"):
        """Stops the server (`immediate` is a crash); quiet when it is not running."""
        if os.path.exists(os.path.join(self.data, "postmaster.pid")):
            server("pg_ctl", "-D", self.data, "-m", mode, "-w", "-t", "30", "stop", check=False)

    def running(self):
        return server("pg_ctl", "-D", self.data, "status", check=False).returncode == 0

    def init_primary(self, app_password, tls=None):
        """initdb, the configuration, the `portfolio` database and its password-protected role;
        `tls` (from `make_certificates`) turns on TLS, required for drctl. A standby made from this
        server by pg_basebackup copies both files, so it runs the same way."""
        shutil.rmtree(self.base, ignore_errors=True)
        hand_over(self.base)
        server("initdb", "-D", self.data, "-U", SUPERUSER, "-A", "trust", "-E", "UTF8", "--locale=C", "-N")
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write(CONFIG)
            if tls:
                f.write(f"ssl = on\nssl_cert_file = '{tls['cert']}'\nssl_key_file = '{tls['key']}'\n")
        with open(os.path.join(self.data, "pg_hba.conf"), "w") as f:
            f.write(HBA_TLS if tls else HBA)
        self.start()
        psql(self.port, f"CREATE DATABASE {DATABASE}", database="postgres")
        escaped = app_password.replace("'", "''")
        psql(self.port, f"CREATE ROLE {APP_ROLE} LOGIN PASSWORD '{escaped}'; "
                        f"GRANT ALL ON SCHEMA public TO {APP_ROLE}")

    def rebuild_as_standby_of(self, primary_port):
        """Throws this server's data away and makes it a streaming standby of the server on
        `primary_port` (pg_basebackup -R), started and streaming."""
        self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)
        hand_over(self.base)
        server("pg_basebackup", "-h", "127.0.0.1", "-p", str(primary_port), "-U", SUPERUSER, "-D", self.data,
               "-R", "-X", "stream", "-c", "fast")
        self.start()
        wait_streaming(self.port, primary_port)

    def in_recovery(self):
        return psql(self.port, "SELECT pg_is_in_recovery()") == "t"


def wait_streaming(port, primary_port, timeout=30.0):
    """Waits until the standby on `port` streams WAL from the primary on `primary_port`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if streaming_from(port) == primary_port:
            return
        time.sleep(0.1)
    raise RuntimeError(f"the standby on 127.0.0.1:{port} does not stream from 127.0.0.1:{primary_port}")


def streaming_from(port):
    """The primary port the standby on `port` streams from, or None."""
    row = psql(port, "SELECT sender_port FROM pg_stat_wal_receiver WHERE status = 'streaming'", check=False)
    return int(row) if row.isdigit() else None

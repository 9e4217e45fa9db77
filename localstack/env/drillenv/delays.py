"""The latency profile the environment applies (`up --profile FILE --time-scale X [--seed N]`), and the
log of every delay it applied.

A profile (drills/profiles/*.yaml) gives each slow cloud operation's p50 and p95. Without a seed the
environment waits p50 × scale; with one it draws from the lognormal distribution with that median and
95th percentile (σ = ln(p95/p50) / 1.645), × scale, from a generator seeded with N, so a run is
reproducible. Each applied delay is one JSON line in `delays_log` (operation, resource, start and end
wall times in RFC 3339 with milliseconds, the delay, the profile's unscaled figure, the scale), so a
drill can rescale what was emulated to real time."""

import datetime
import json
import math
import random
import re
import threading
import time

#: The operations a profile must cover, and what each delays in the environment.
OPERATIONS = {
    "route53.change": "a Route53 change stays PENDING (and DNS answers the old records) this long",
    "rds.promote_read_replica": "a promotion stays `modifying` this long before pg_promote",
    "rds.create_read_replica": "a new read replica stays `creating` this long before the standby is rebuilt",
    "secretsmanager.put_secret_value": "PutSecretValue answers after this long",
    "kube.pod_ready": "a new or restarted pod becomes ready this long after it is created",
}
UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
Z95 = 1.6448536269514722  # the standard normal's 95th percentile


def parse_duration(text, where):
    """`35s`, `1m30s`, `250ms` → seconds; raises naming `where`."""
    text = str(text).strip()
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"{where}: `{text}` is not a duration (a number and one of ms, s, m, h, d, e.g. 35s or 1m30s)")
    return sum(float(n) * UNITS[u] for n, u in parts)


def load_profile(path):
    """{operation: (p50_s, p95_s)} from a profile file; raises ValueError naming the file and field."""
    import yaml

    with open(path) as f:
        try:
            document = yaml.safe_load(f)
        except yaml.YAMLError as e:
            raise ValueError(f"{path}: not YAML: {e}") from None
    operations = (document or {}).get("operations") if isinstance(document, dict) else None
    if not isinstance(operations, dict):
        raise ValueError(f"{path}: `operations` is missing: a map of operation to {{p50, p95}}")
    profile = {}
    for name, figures in operations.items():
        where = f"{path}: operations.{name}"
        if not isinstance(figures, dict) or set(figures) != {"p50", "p95"}:
            raise ValueError(f"{where}: give exactly p50 and p95, e.g. {{p50: 35s, p95: 60s}}")
        p50, p95 = parse_duration(figures["p50"], f"{where}.p50"), parse_duration(figures["p95"], f"{where}.p95")
        if not 0 < p50 <= p95:
            raise ValueError(f"{where}: p50 must be positive and at most p95")
        profile[name] = (p50, p95)
    missing = sorted(set(OPERATIONS) - set(profile))
    if missing:
        raise ValueError(f"{path}: the profile has no figures for {', '.join(missing)}")
    return profile


def rfc3339(seconds):
    moment = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Delays:
    """What a process of the environment waits before a slow operation. `config` carries `profile`
    ({operation: [p50_s, p95_s]}), `time_scale`, `seed` and `delays_log`; without a profile nothing
    waits and nothing is logged."""

    def __init__(self, config):
        self.profile = config.get("profile") or {}
        self.scale = float(config.get("time_scale") or 1.0)
        self.seed = config.get("seed")
        self.log_path = config.get("delays_log")
        self.random = random.Random(self.seed) if self.seed is not None else None
        self.lock = threading.Lock()

    def figure(self, operation):
        """The unscaled delay for one occurrence of `operation` (seconds), or None without a profile."""
        if operation not in self.profile:
            return None
        p50, p95 = self.profile[operation]
        if self.random is None:
            return p50
        with self.lock:
            return math.exp(self.random.gauss(math.log(p50), math.log(p95 / p50) / Z95))

    def due(self, operation, resource):
        """Starts a delay now without waiting: returns the wall time it ends (now without a profile),
        logged as applied from now until then."""
        figure = self.figure(operation)
        start = time.time()
        if figure is None:
            return start
        delay = figure * self.scale
        self.record(operation, resource, start, start + delay, delay, figure)
        return start + delay

    def wait(self, operation, resource):
        """Sleeps the operation's delay (nothing without a profile)."""
        end = self.due(operation, resource)
        time.sleep(max(0.0, end - time.time()))

    def record(self, operation, resource, start, end, delay, figure):
        if not self.log_path:
            return
        line = json.dumps({"operation": operation, "resource": resource, "start": rfc3339(start),
                           "end": rfc3339(end), "delay_s": round(delay, 3), "profile_s": round(figure, 3),
                           "scale": self.scale, "sampled": self.random is not None})
        with self.lock, open(self.log_path, "a") as f:
            f.write(line + "\n")

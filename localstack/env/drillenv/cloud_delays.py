"""moto's Route53 and Secrets Manager with the latency profile's times (installed by backing.py when
the environment runs with a profile; see delays.py and localstack/env/README.md).

- ChangeResourceRecordSets answers at once with a new change id, `PENDING`; the change reaches the
  zone (what ListResourceRecordSets answers, which is what the drill's clients and the health app
  resolve through) when it turns `INSYNC`, p50 × scale later (or sampled). Changes reach the zone
  in the order they were submitted. GetChange answers `PENDING` until then, `INSYNC` after.
- PutSecretValue answers after its delay.

The environment's own calls (seeding, reset) carry the comment `drctl-env:reset` and are not
delayed."""

import itertools
import threading
import time
import traceback

from .backing import RESET_TAG, log

_ids = itertools.count(1)


class PendingChanges:
    """Route53 change batches accepted but not yet in sync, applied in submission order."""

    def __init__(self, backend_of):
        self.backend_of = backend_of  # () → the Route53 backend
        self.lock = threading.Lock()
        self.queue = []  # (due, change id, zone id, changes)
        self.insync = set()
        self.last_due = 0.0

    def submit(self, zone_id, changes, due):
        with self.lock:
            due = max(due, self.last_due)  # never overtakes an earlier change
            self.last_due = due
            change_id = f"C{next(_ids):012d}DRILL"
            self.queue.append((due, change_id, zone_id, changes))
        threading.Timer(max(0.0, due - time.time()), self.flush).start()
        return change_id

    def flush(self):
        """Applies every change that is due, in order."""
        with self.lock:
            now = time.time()
            while self.queue and self.queue[0][0] <= now:
                _, change_id, zone_id, changes = self.queue.pop(0)
                try:
                    self.backend_of().change_resource_record_sets(zone_id, changes)
                except Exception:
                    log(f"Route53 change {change_id} could not be applied when in sync:\n{traceback.format_exc()}")
                self.insync.add(change_id)

    def status(self, change_id):
        self.flush()
        with self.lock:
            if change_id in self.insync or not any(c[1] == change_id for c in self.queue):
                return "INSYNC"
            return "PENDING"


def install(delays):
    """Patches moto's Route53 responses and Secrets Manager backend; `delays` is backing's Delays."""
    from moto.core.responses import ActionResult
    from moto.core.utils import utcnow
    from moto.route53.responses import Route53
    from moto.secretsmanager.models import SecretsManagerBackend

    pending = PendingChanges(lambda: None)

    original_change = Route53.change_resource_record_sets
    original_get_change = Route53.get_change
    original_list = Route53.list_resource_record_sets

    def change_resource_record_sets(self):
        comment = self._get_param("ChangeBatch.Comment") or ""
        zone_id = self._get_param("HostedZoneId")
        if RESET_TAG in comment or delays.figure("route53.change") is None:
            return original_change(self)
        pending.backend_of = lambda backend=self.backend: backend
        self.backend.get_hosted_zone(zone_id)  # NoSuchHostedZone now, as AWS answers
        changes = self._get_param("ChangeBatch.Changes")
        due = delays.due("route53.change", f"{zone_id} {len(changes)} change(s)")
        change_id = pending.submit(zone_id, changes, due)
        return ActionResult({"ChangeInfo": {"Id": f"/change/{change_id}", "Status": "PENDING",
                                            "SubmittedAt": utcnow(), "Comment": comment or None}})

    def get_change(self):
        change_id = (self._get_param("Id") or "").split("/")[-1]
        if not change_id.endswith("DRILL"):
            return original_get_change(self)
        return ActionResult({"ChangeInfo": {"Id": f"/change/{change_id}", "Status": pending.status(change_id),
                                            "SubmittedAt": utcnow()}})

    def list_resource_record_sets(self):
        pending.flush()
        return original_list(self)

    Route53.change_resource_record_sets = change_resource_record_sets
    Route53.get_change = get_change
    Route53.list_resource_record_sets = list_resource_record_sets

    original_put = SecretsManagerBackend.put_secret_value

    def put_secret_value(self, secret_id, *args, **kwargs):
        delays.wait("secretsmanager.put_secret_value", secret_id)
        return original_put(self, secret_id, *args, **kwargs)

    SecretsManagerBackend.put_secret_value = put_secret_value

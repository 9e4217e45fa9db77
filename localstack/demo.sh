#!/usr/bin/env bash
# Runs the sample plan (plans/local.yaml) end to end against the local two-region demo app:
# injects an outage of the primary, fails over, repairs the primary, fails back, and prints the
# chat messages the plan sent. Needs only cargo and python3; everything binds to 127.0.0.1.
# DRCTL (a drctl binary; default: build target/debug/drctl) and DRCTL_STATE_DIR (default: a new
# temporary directory) can be set.
set -euo pipefail
cd "$(dirname "$0")/.."

drctl="${DRCTL:-}"
if [ -z "$drctl" ]; then
  echo "== building drctl (cargo build --bin drctl: a few minutes the first time, seconds after)"
  cargo build --quiet --bin drctl
  drctl=target/debug/drctl
fi
work=$(mktemp -d)
export DRCTL_STATE_DIR="${DRCTL_STATE_DIR:-$work/state}"

python3 localstack/demo_app.py --port-file "$work/port" &
app_pid=$!
cleanup() { kill "$app_pid" 2>/dev/null || true; wait "$app_pid" 2>/dev/null || true; }
trap cleanup EXIT
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done
[ -s "$work/port" ] || { echo "demo app did not start" >&2; exit 1; }
export DEMO_URL="http://127.0.0.1:$(cat "$work/port")"

post() { python3 -c 'import sys,urllib.request; urllib.request.urlopen(urllib.request.Request(sys.argv[1], method="POST"))' "$1"; }

echo "== demo app on $DEMO_URL; state in $DRCTL_STATE_DIR"
echo "== injecting the outage: the primary region goes down"
post "$DEMO_URL/fault/primary"
"$drctl" failover --plan local --yes --incident-start 1s

echo "== the primary region recovers"
post "$DEMO_URL/repair/primary"
"$drctl" failback --plan local --yes

echo "== what the team was told"
python3 -c 'import json,sys,urllib.request; [print(m["text"], end="\n\n") for m in json.load(urllib.request.urlopen(sys.argv[1]))]' "$DEMO_URL/hooks/chat"
"$drctl" status

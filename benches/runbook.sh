#!/usr/bin/env bash
# The runbook benchmark (issue 13, item 7): the runbook's dr-failover.sh (its AWS, health and webhook
# parts, with the AWS CLI) against the equivalent drctl plan (benches/runbook/failover.yaml), both
# against one moto server, interleaved (which goes first alternates), moto reseeded from nothing
# before every run. Prints each run, the medians and the ratio. Speed is reported, never asserted.
#
#   cargo build --release && benches/runbook.sh [ROUNDS]      (default 7 rounds)
#
# Needs localstack/setup.sh's .venv (moto, awscli), jq and curl. DRCTL= picks another binary (default
# target/release/drctl), AWS= another AWS CLI (default .venv/bin/aws).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-7}
drctl=${DRCTL:-target/release/drctl}
python=${DRCTL_PYTHON:-.venv/bin/python}
aws_cli=${AWS:-.venv/bin/aws}
[ -x "$drctl" ] || { echo "$drctl is missing: cargo build --release" >&2; exit 2; }
[ -x "$aws_cli" ] || { echo "$aws_cli is missing: run localstack/setup.sh (it installs awscli)" >&2; exit 2; }
for tool in jq curl; do command -v "$tool" >/dev/null || { echo "$tool is missing" >&2; exit 2; }; done

work=$(mktemp -d)
pids=()
stop() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap stop EXIT
free_port() { "$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_for() { for _ in $(seq 300); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done; echo "$1 never answered" >&2; exit 1; }

moto_port=$(free_port)
MOTO_ALLOW_NONEXISTENT_REGION=true "$python" localstack/env/moto-server -H 127.0.0.1 -p "$moto_port" >"$work/moto.log" 2>&1 &
pids+=($!)
endpoint="http://127.0.0.1:$moto_port"
wait_for "$endpoint/moto-api/"

# The DR region's health endpoint and the chat webhook: 200 to every GET and POST.
http_port=$(free_port)
"$python" - "$http_port" >"$work/http.log" 2>&1 <<'PY' &
import http.server, sys
class Ok(http.server.BaseHTTPRequestHandler):
    def answer(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers(); self.wfile.write(b"ok")
    do_GET = do_POST = answer
    def log_message(self, *args): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Ok).serve_forever()
PY
pids+=($!)
wait_for "http://127.0.0.1:$http_port/health"

export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1
export HEALTH_URL="http://127.0.0.1:$http_port/health" WEBHOOK_URL="http://127.0.0.1:$http_port/webhook"
export SLACK_TOKEN=not-a-token

now_ns() { date +%s%N; }
seed() { ZONE_ID=$("$python" benches/runbook/seed.py "$endpoint"); export ZONE_ID; }
run_script() {
  local bin_dir; bin_dir=$(cd "$(dirname "$aws_cli")" && pwd)
  echo YES | PATH="$bin_dir:$PATH" AWS_ENDPOINT_URL="$endpoint" bash benches/runbook/dr-failover.sh >"$work/script.log" 2>&1 \
    || { cat "$work/script.log" >&2; exit 1; }
}
run_drctl() {
  "$drctl" failover --plan benches/runbook/failover.yaml --yes --new-run --endpoint-url "$endpoint" \
    --state-dir "$work/state" >"$work/drctl.log" 2>&1 || { cat "$work/drctl.log" >&2; exit 1; }
}
timed() { local start; start=$(now_ns); "$1"; echo $(( ($(now_ns) - start) / 1000000 )); }

script_ms=(); drctl_ms=()
for round in $(seq "$rounds"); do
  if (( round % 2 )); then order=(script drctl); else order=(drctl script); fi
  for who in "${order[@]}"; do
    seed
    ms=$(timed "run_$who")
    if [ "$who" = script ]; then script_ms+=("$ms"); else drctl_ms+=("$ms"); fi
  done
  echo "round $round: script ${script_ms[-1]} ms, drctl ${drctl_ms[-1]} ms"
done

median() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
script_median=$(median "${script_ms[@]}")
drctl_median=$(median "${drctl_ms[@]}")
echo "median of $rounds interleaved rounds: dr-failover.sh $script_median ms, drctl $drctl_median ms"
awk -v s="$script_median" -v d="$drctl_median" 'BEGIN {
  if (d <= s) printf "drctl is %.1fx faster than the script\n", s / d; else printf "drctl is %.1fx slower than the script\n", d / s }'
echo "the last drctl run, step by step (where its time goes):"
sed 's/^/  /' "$work/drctl.log"

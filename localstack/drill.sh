#!/usr/bin/env bash
# The README's first command: sets up the local emulated DR environment (moto, the Kubernetes API
# emulator, a PostgreSQL primary and standby, health endpoints; installed on first use) and runs a
# full drill of the us-west-2 runbook against it: the primary database dies, drctl fails over,
# measures RTO and RPO, fails back, checks that everything is back and nothing was left behind,
# and writes the evidence. The environment is torn down at the end.
#
#   localstack/drill.sh [DRILL]      # default us-west-2-monthly (drills/us-west-2-monthly.yaml)
#
# DRCTL (a drctl binary; default: build target/debug/drctl), DRCTL_STATE_DIR (default .drctl) and
# DRCTL_ENV_DIR (default $DRCTL_STATE_DIR/env) can be set. Exit code: drctl drill's (0 passed,
# 1 an objective missed or a check failed).
set -euo pipefail
cd "$(dirname "$0")/.."
drill="${1:-us-west-2-monthly}"
if [ -z "${DRCTL:-}" ]; then
  cargo build --quiet --bin drctl
  DRCTL=target/debug/drctl
fi
export DRCTL_STATE_DIR="${DRCTL_STATE_DIR:-.drctl}"
env_dir="${DRCTL_ENV_DIR:-$DRCTL_STATE_DIR/env}"

localstack/env/up --dir "$env_dir"
trap 'localstack/env/down --dir "$env_dir"' EXIT
"$DRCTL" drill run "$drill" --environment "$env_dir/env.json"

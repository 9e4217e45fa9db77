#!/usr/bin/env bash
# Installs what the tests and the local emulators need: PostgreSQL's server (Debian's packages) for
# the pg.* step types and drills, Chromium (Debian's) to render drill reports in a test, tmux (the
# approval prompt is tested in a real terminal), and, in
# .venv at the repository root, pinned from PyPI: moto's server mode (the AWS emulator), PyYAML
# (seed files of the Kubernetes API emulator) and pg8000 (the drill environment's health app
# connects to PostgreSQL as the application would), prometheus_client (the readiness tests parse
# `drctl check`'s /metrics with its text-format parser), and, without --drill, the AWS CLI
# (benches/runbook.sh runs the runbook's bash script with it; 1.46.3 is the release built on moto's
# botocore, 1.44.8, so installing it changes nothing moto uses).
# `setup.sh --drill` leaves Chromium and tmux out: the drill environment (localstack/env/up) does not need them.
# Idempotent: what is already installed is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
MOTO_VERSION=5.2.5
PYYAML_VERSION=6.0.3
PG8000_VERSION=1.31.6
PROMETHEUS_CLIENT_VERSION=0.26.0
AWSCLI_VERSION=1.46.3

packages=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || packages+=(postgresql)
slim=false  # --drill and --localstack: what the drill environment needs, no Chromium, no tmux
case "${1:-}" in --drill | --localstack) slim=true ;; esac
$slim || [ -x /usr/bin/chromium ] || packages+=(chromium)
python3 -c "import ensurepip" 2>/dev/null || packages+=(python3-venv)
$slim || command -v tmux >/dev/null || packages+=(tmux)  # the approval prompt tests
if [ ${#packages[@]} -gt 0 ]; then
  echo "installing ${packages[*]} (Debian's packages)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
fi

# `setup.sh --localstack`: --drill plus LocalStack for the environment's host mode (no Docker engine):
# localstack-core in .venv-localstack, a Python 3.13 venv (pyenv's, or python3.13 on PATH), with the
# pins issue 12 measured to work here. See localstack/env/README.md.
install_localstack() {
  local version=2026.3.0 venv=.venv-localstack python="" root candidate
  if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('localstack-core') != '$version')" 2>/dev/null; then
    return 0
  fi
  root="$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"
  for candidate in "$root"/versions/3.13*/bin/python3.13 "$(command -v python3.13 || true)"; do
    [ -x "$candidate" ] && python="$candidate" && break
  done
  if [ -z "$python" ]; then
    echo "setup.sh --localstack: LocalStack needs Python 3.13: install it (pyenv install 3.13) or put python3.13 on PATH" >&2
    exit 1
  fi
  echo "installing LocalStack $version in $venv (Python $("$python" -c 'import platform; print(platform.python_version())'), a few minutes the first time)"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "localstack-core[runtime]==$version" \
    "cbor2<6" "pyopenssl==25.1.0" "cryptography<46" service_identity
  echo "LocalStack $version installed in $venv"
}
if [ "${1:-}" = "--localstack" ]; then install_localstack; fi

venv=.venv
# The AWS CLI, for benches/runbook.sh only: added to an existing .venv, left out with --drill.
if [ "${1:-}" != "--drill" ] && [ -x "$venv/bin/python" ] && ! "$venv/bin/python" -c "import awscli" 2>/dev/null; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check "awscli==$AWSCLI_VERSION"
fi
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import moto, yaml, pg8000, prometheus_client, sys; sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null; then
  exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION" "pyyaml==$PYYAML_VERSION" "pg8000==$PG8000_VERSION" \
  "prometheus_client==$PROMETHEUS_CLIENT_VERSION" "awscli==$AWSCLI_VERSION"
echo "moto $MOTO_VERSION installed in $venv"

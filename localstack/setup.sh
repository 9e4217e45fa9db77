#!/usr/bin/env bash
# Installs what the tests and the local emulators need: PostgreSQL's server (Debian's packages) for
# the pg.* step types, and, in .venv at the repository root, moto's server mode (the AWS emulator)
# and PyYAML (YAML seed files of the Kubernetes API emulator), pinned, from PyPI.
# Idempotent: what is already installed is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
MOTO_VERSION=5.2.5
PYYAML_VERSION=6.0.3

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "installing PostgreSQL (Debian's postgresql package)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi

venv=.venv
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import moto, yaml, sys; sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null; then
  exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION" "pyyaml==$PYYAML_VERSION"
echo "moto $MOTO_VERSION installed in $venv"

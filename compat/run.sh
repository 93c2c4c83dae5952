#!/usr/bin/env bash
# Runs real third-party Kafka clients (kcat/librdkafka, confluent-kafka,
# kafka-python) against `weir server`. Installs what it needs: kcat from Debian,
# the Python clients into compat/.venv. Each test module starts its own broker on a
# free port with a temporary data directory (see tests/conftest.py).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")

if ! command -v kcat >/dev/null 2>&1; then
  echo "== installing kcat"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kcat >/dev/null
fi

venv="$here/.venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q --disable-pip-version-check -r "$here/requirements.txt"

# The debug binary that `cargo test --workspace` already built; build it if absent.
export WEIR_BIN="${WEIR_BIN:-$root/target/debug/weir}"
if [ ! -x "$WEIR_BIN" ]; then
  (cd "$root" && cargo build -q -p weir-cli)
fi

echo "== compat: $("$WEIR_BIN" --version 2>/dev/null || echo weir); kcat $(kcat -V 2>&1 | grep -o "Version [^ ]*" | head -1), $(kcat -V 2>&1 | grep -o "librdkafka [0-9.]*" | head -1)"
cd "$here"
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider tests "$@"

#!/usr/bin/env bash
# Runs every test: the Rust unit and integration tests (real server, real
# SQLite, real HTTP), then the example FastAPI backend against a live derp.
# Installs what the tests need (a Python venv with pinned packages) itself.
set -euo pipefail
cd "$(dirname "$0")"

echo "==> cargo test (unit + integration)"
cargo build --locked --all-targets
cargo test --locked --all-targets

echo "==> Python peers: examples/fastapi and aiosmtpd against a live derp"
venv=target/test-venv
stamp="$venv/.requirements"
wanted=$(cat examples/fastapi/requirements.txt tests/peers/requirements.txt | sort -u)
if [ ! -x "$venv/bin/pytest" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    python3 -m venv "$venv"
    timeout 300 "$venv/bin/pip" install --quiet --disable-pip-version-check \
        -r examples/fastapi/requirements.txt -r tests/peers/requirements.txt
    echo "$wanted" > "$stamp"
fi
export DERP_BIN="$PWD/target/debug/derp"
timeout 300 "$venv/bin/pytest" -q -p no:cacheprovider examples/fastapi tests/peers

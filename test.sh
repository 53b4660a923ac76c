#!/usr/bin/env bash
# Runs every test: the Rust unit and integration tests (real server, real
# SQLite, real HTTP), then the example FastAPI backend against a live derp.
# Installs what the tests need (a Python venv with pinned packages) itself.
set -euo pipefail
cd "$(dirname "$0")"

echo "==> cargo test (unit + integration)"
cargo build --locked --all-targets
cargo test --locked --all-targets

echo "==> examples/fastapi against a live derp"
venv=target/test-venv
if [ ! -x "$venv/bin/pytest" ]; then
    python3 -m venv "$venv"
    timeout 300 "$venv/bin/pip" install --quiet --disable-pip-version-check -r examples/fastapi/requirements.txt
fi
DERP_BIN="$PWD/target/debug/derp" timeout 300 "$venv/bin/pytest" -q -p no:cacheprovider examples/fastapi

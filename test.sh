#!/usr/bin/env bash
# Runs every test: the Rust unit and integration tests (real server, real
# SQLite, real HTTP), then the example FastAPI backend and the Python and
# JavaScript client libraries (clients/) against a live derp.
# Installs what the tests need (a Python venv with pinned packages) itself.
set -euo pipefail
cd "$(dirname "$0")"

echo "==> Debian build prerequisites: libssl-dev and pkg-config (webauthn-rs links OpenSSL)"
tests/prereqs.sh

echo "==> npm: the OpenID provider the Rust tests sign in with (oauth2-mock-server)"
(cd tests/oidc && timeout 300 npm ci --no-audit --no-fund --loglevel=error)

echo "==> npm: openid-client 6.8.9 (the certified relying-party library) against derp as a provider"
(cd tests/oidc-client && timeout 300 npm ci --no-audit --no-fund --loglevel=error)

echo "==> npm: cognito-local 5.3.0 (Cognito with the hosted UI's code flow) for the hosted-UI tests"
(cd tests/cognito-local && timeout 300 npm ci --no-audit --no-fund --loglevel=error)
export COGNITO_LOCAL_BIN="$PWD/tests/cognito-local/node_modules/.bin/cognito-local"

echo "==> npm: Litestream 0.3.13 (@flydotio/litestream-linux-x64) for the replication and restore test"
(cd tests/litestream && timeout 300 npm ci --no-audit --no-fund --loglevel=error)
export LITESTREAM_BIN="$PWD/tests/litestream/node_modules/@flydotio/litestream-linux-x64/litestream"

echo "==> moto 5.2.5 (Cognito emulator) for the Rust Cognito tests"
moto_venv=target/moto-venv
if [ "$(cat "$moto_venv/.installed" 2>/dev/null)" != "moto[server]==5.2.5" ] || [ ! -x "$moto_venv/bin/moto_server" ]; then
    python3 -m venv "$moto_venv"
    timeout 600 "$moto_venv/bin/pip" install --quiet --disable-pip-version-check 'moto[server]==5.2.5'
    echo 'moto[server]==5.2.5' > "$moto_venv/.installed"
fi
export MOTO_BIN="$PWD/$moto_venv/bin/moto_server"

echo "==> PostgreSQL 15 from Debian, for the suite's second run and the multi-instance test"
tests/postgres/install.sh

echo "==> cargo test (unit + integration, on SQLite)"
cargo build --locked --all-targets
cargo test --locked --all-targets

echo "==> cargo test: the integration suite again, on PostgreSQL (a throwaway cluster)"
# Every test app gets a database of its own on the cluster. The cluster
# lives under /tmp (the postgres user must reach it; its socket path must
# be short) and is stopped and removed on the way out, pass or fail.
pg_dir=$(mktemp -d /tmp/derp-pg.XXXXXX)
trap 'tests/postgres/cluster.sh stop "$pg_dir"; rm -rf "$pg_dir"' EXIT
DERP_TEST_POSTGRES=$(tests/postgres/cluster.sh start "$pg_dir" 55439 throwaway)
DERP_TEST_POSTGRES="$DERP_TEST_POSTGRES" cargo test --locked --test integration

echo "==> cargo fuzz: each parser of untrusted input for ${FUZZ_SECONDS:-10} s from fuzz/corpus"
# cargo-fuzz (pinned) is built once into target/cargo-fuzz. The targets are
# built with the pinned stable toolchain and no sanitizer (derp's code is
# safe Rust): then cargo-fuzz passes rustc no -Z flag, only the coverage
# instrumentation (SanitizerCoverage), which stable rustc has. --dev: the
# unoptimised build takes minutes less on a fresh machine than release, and
# the short runs here need coverage more than speed.
# DERP_SKIP_FUZZ=1 skips this step.
if [ "${DERP_SKIP_FUZZ:-0}" != 1 ]; then
    fuzz_root="$PWD/target/cargo-fuzz"
    if [ "$(cat "$fuzz_root/.installed" 2>/dev/null)" != "cargo-fuzz 0.13.2" ] || [ ! -x "$fuzz_root/bin/cargo-fuzz" ]; then
        timeout 900 cargo install --locked --quiet cargo-fuzz --version 0.13.2 --root "$fuzz_root"
        echo "cargo-fuzz 0.13.2" > "$fuzz_root/.installed"
    fi
    (cd fuzz && PATH="$fuzz_root/bin:$PATH" timeout 1500 cargo fuzz build -s none --dev)
    for target in jwt page_cookie redirect json_body page_form config; do
        # New inputs go to target/fuzz-corpus; the committed corpus is only read.
        mkdir -p "target/fuzz-corpus/$target"
        log="target/fuzz-corpus/$target.log"
        if ! (cd fuzz && PATH="$fuzz_root/bin:$PATH" \
            timeout $((${FUZZ_SECONDS:-10} + 120)) cargo fuzz run -s none --dev "$target" \
            "../target/fuzz-corpus/$target" "corpus/$target" -- \
            -max_total_time="${FUZZ_SECONDS:-10}" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1) >"$log" 2>&1; then
            tail -n 60 "$log" >&2
            echo "fuzz target $target failed: the input is under fuzz/artifacts/$target" >&2
            exit 1
        fi
        echo "$target: $(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}') runs, no failure"
    done
fi

echo "==> install.sh in a temporary root (stubbed systemctl, useradd, userdel, chown, id)"
DERP_BIN="$PWD/target/debug/derp" timeout 300 tests/install/test_install.sh

echo "==> Python peers: examples/fastapi, aiosmtpd, standardwebhooks, Litestream, openapi-spec-validator and schemathesis against a live derp"
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
# schemathesis runs SCHEMATHESIS_MAX_EXAMPLES (default 5) cases per operation
# and phase, twice (with and without a bearer token): about a minute.
timeout 600 "$venv/bin/pytest" -q -p no:cacheprovider examples/fastapi tests/peers
cat target/schemathesis-counts.txt 2>/dev/null || true

echo "==> Client libraries: clients/python and clients/js against a live derp"
clients_venv=target/clients-venv
clients_stamp="$clients_venv/.requirements"
wanted=$(cat clients/python/requirements-test.txt)
if [ ! -x "$clients_venv/bin/pytest" ] || [ "$(cat "$clients_stamp" 2>/dev/null)" != "$wanted" ]; then
    python3 -m venv "$clients_venv"
    timeout 300 "$clients_venv/bin/pip" install --quiet --disable-pip-version-check \
        -r clients/python/requirements-test.txt
    echo "$wanted" > "$clients_stamp"
fi
# hatchling is in the pinned requirements: the build needs no network.
timeout 120 "$clients_venv/bin/pip" install --quiet --disable-pip-version-check --no-build-isolation ./clients/python
timeout 300 "$clients_venv/bin/pytest" -q -p no:cacheprovider clients/python/tests
(cd clients/js && timeout 300 npm ci --no-audit --no-fund --loglevel=error)
(cd clients/js && timeout 120 node_modules/.bin/tsc -p tsconfig.json && timeout 120 node_modules/.bin/tsc -p test/tsconfig.json \
    && timeout 300 node --test test/*.test.mjs)

echo "==> Browser: Debian's Chromium through the hosted pages"
if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        timeout 600 apt-get update -qq
        DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq chromium >/dev/null
    else
        echo "chromium is missing: install Debian's chromium package (as root: apt-get install chromium)" >&2
        exit 1
    fi
fi
(cd tests/browser && timeout 300 npm ci --no-audit --no-fund --loglevel=error)
timeout 300 node tests/browser/run.mjs
# Passkeys with Chromium's virtual authenticator (public_url http://localhost).
timeout 300 node tests/browser/passkeys.mjs
timeout 300 node tests/browser/oidc.mjs

# A tiny run of both benchmark harnesses keeps them working (release build,
# wrk, seeding, the query plans); the figures of so short a run mean nothing.
# DERP_SKIP_BENCH_SMOKE=1 skips it.
if [ "${DERP_SKIP_BENCH_SMOKE:-0}" != 1 ]; then
    # bench/run.sh runs bench/postgres.sh for its PostgreSQL rows.
    echo "==> bench smoke: bench/run.sh (with bench/postgres.sh), bench/scale.sh and bench/webhooks/run.py with a tiny load"
    BENCH_DURATION=1 BENCH_RUNS=1 BENCH_SKIP_PEER=1 timeout 1800 bench/run.sh > target/bench-smoke.txt
    SCALE_USERS=2000 SCALE_MEMBERS=200 BENCH_DURATION=1 BENCH_RUNS=1 timeout 900 bench/scale.sh > target/scale-smoke.txt
    BENCH_WEBHOOK_EVENTS=200 BENCH_WEBHOOK_ENDPOINTS="1 2" timeout 600 bench/webhooks/run.py > target/webhook-bench-smoke.txt
    grep -A 14 '^PostgreSQL' target/bench-smoke.txt
    if ! grep -Eq '^refreshes/s, 2 instances \(c=[0-9]+\) +[0-9][0-9,]* ' target/bench-smoke.txt; then
        echo "bench smoke: the PostgreSQL rows are missing" >&2
        exit 1
    fi
    tail -n 5 target/bench-smoke.txt target/scale-smoke.txt target/webhook-bench-smoke.txt
fi

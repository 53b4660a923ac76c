#!/usr/bin/env bash
# derp at scale: `bench/scale.sh`.
#
# Measures sign-in, the admin user search and org member lists with 32 users
# and with 100,000 users (an org of 10,000 members), side by side, and prints
# EXPLAIN QUERY PLAN of the hot queries. Each size gets a fresh data dir and
# a release derp on a free loopback port. Users are seeded with one SQL
# transaction (examples/seed_sql.rs, derp's own SQLite), all with the
# password hash of one account signed up over HTTP (one argon2 hash, not
# 100,000). See
# bench/README.md. Knobs (environment): BENCH_DURATION (s per wrk run, 5),
# BENCH_RUNS (1), BENCH_C_HASH (8), BENCH_C_LIGHT (32), SCALE_USERS (100000),
# SCALE_MEMBERS (10000), SCALE_DERP_BIN (a derp binary to measure instead of
# the one built here).
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
LUA=$BENCH_DIR/lua
HELPER=$BENCH_DIR/helper.py

DURATION=${BENCH_DURATION:-5}
RUNS=${BENCH_RUNS:-1}
C_HASH=${BENCH_C_HASH:-8}
C_LIGHT=${BENCH_C_LIGHT:-32}
BIG=${SCALE_USERS:-100000}
MEMBERS=${SCALE_MEMBERS:-10000}
SMALL=32
THREADS=2
HOST=127.0.0.1
WRK_TIMEOUT=$((DURATION + 30))
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
STARTED=$SECONDS

WORK=$(mktemp -d /tmp/derp-scale.XXXXXX)
mkdir -p "$WORK/wrk"
RESULTS=$WORK/results.env
: >"$RESULTS"

PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"/data-* # the databases (tens of MB); logs and plans stay
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '[scale %3ds] %s\n' $((SECONDS - STARTED)) "$*" >&2; }
die() { log "error: $*"; log "logs: $WORK"; exit 1; }
put() { printf '%s=%s\n' "$1" "$2" >>"$RESULTS"; }
cpu_snapshot() { # TAG: as in run.sh, for the other-processes note
  awk '/^cpu / {print $2+$3+$4+$7+$8+$9}' /proc/stat >"$WORK/cpu.$1.ticks"
  date +%s.%N >"$WORK/cpu.$1.wall"
  times >"$WORK/cpu.$1.own"
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

stop_pid() {
  local pid=$1 keep=() p
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  for p in "${PIDS[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}

# run_wrk OUT CONNS URL SCRIPT [SCRIPT ARGS...]: one bounded wrk run.
run_wrk() {
  local out=$1 c=$2 url=$3 script=$4
  shift 4
  timeout -k 5 "$WRK_TIMEOUT" wrk -t$THREADS -c"$c" -d"${DURATION}s" --timeout 10s --latency -s "$script" "$url" \
    -- "$@" >"$out" 2>&1 || echo "wrk exited with $?" >>"$out"
}

# ---------------------------------------------------------------- tools ---
# shellcheck disable=SC2043 # one tool today; the list is where another would go
for tool in wrk; do
  command -v $tool >/dev/null && continue
  command -v apt-get >/dev/null || die "$tool is missing and there is no apt-get to install it"
  log "installing $tool (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  if ! timeout 300 apt-get install -y $tool >>"$WORK/apt.log" 2>&1; then
    timeout 300 apt-get update >>"$WORK/apt.log" 2>&1 || true
    timeout 300 apt-get install -y $tool >>"$WORK/apt.log" 2>&1 || die "cannot install $tool (see $WORK/apt.log)"
  fi
done
command -v python3 >/dev/null || die "python3 is required"
command -v cargo >/dev/null || die "cargo (the Rust toolchain) is required"

log "building derp (cargo build --release; log: $WORK/cargo.log)"
(cd "$ROOT" && timeout 1800 cargo build --release --bin derp --example query_plans --example seed_sql) >"$WORK/cargo.log" 2>&1 \
  || die "cargo build --release failed: $(grep -m1 '^error' "$WORK/cargo.log" || tail -1 "$WORK/cargo.log")"
DERP_BIN=${SCALE_DERP_BIN:-$TARGET_DIR/release/derp}
PLANS_BIN=$TARGET_DIR/release/examples/query_plans
SEED_BIN=$TARGET_DIR/release/examples/seed_sql
[[ -x $DERP_BIN ]] || die "no derp binary at $DERP_BIN"

put cores "$(nproc)"
put cpu "$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo | sed 's/  */ /g')"
put runs "$RUNS"
put duration "$DURATION"
put points "$SMALL $BIG"
put commit "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet HEAD -- src migrations 2>/dev/null || echo '+dirty')${SCALE_DERP_BIN:+ (derp: $SCALE_DERP_BIN)}"
put load_start "$(cut -d' ' -f1 /proc/loadavg)"
SERVICE_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(24))') # 48 bytes

# seed DIR PREFIX USERS MEMBERS: USERS accounts PREFIX-<i>@bench.example.com
# (PREFIX-0 signed up over HTTP, the others copy its password hash), one org
# "scale" whose owner is PREFIX-0 and whose members are the first MEMBERS
# accounts, and one audit row per account and per membership.
seed() {
  local dir=$1 prefix=$2 users=$3 members=$4 now
  now=$(date +%s)
  timeout 600 "$SEED_BIN" "$dir" <<EOF
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $users - 1)
INSERT INTO users (id, email, password_hash, email_confirmed_at, role, data, created_at, updated_at)
SELECT printf('0190aaaa-0000-7000-8000-%012d', i), printf('$prefix-%d@bench.example.com', i),
       (SELECT password_hash FROM users WHERE email = '$prefix-0@bench.example.com'),
       $now, 'default', '{}', $now, $now
FROM n;
INSERT INTO orgs (id, name, slug, created_at, updated_at)
VALUES ('0190bbbb-0000-7000-8000-000000000001', 'Scale', 'scale', $now, $now);
INSERT INTO org_members (org_id, user_id, email, role, joined_at)
SELECT '0190bbbb-0000-7000-8000-000000000001', id, email, 'owner', $now
FROM users WHERE email = '$prefix-0@bench.example.com';
INSERT INTO org_members (org_id, user_id, email, role, joined_at)
SELECT '0190bbbb-0000-7000-8000-000000000001', id, email, 'member', $now
FROM users WHERE id BETWEEN '0190aaaa-0000-7000-8000-000000000001'
                        AND printf('0190aaaa-0000-7000-8000-%012d', $members - 1)
ORDER BY id;
INSERT INTO audit_log (at, action, actor_id, user_id, detail)
SELECT $now, 'sign_up', id, id, '{}' FROM users;
INSERT INTO audit_log (at, action, actor_id, user_id, org_id, target, detail)
SELECT $now, 'org.member.add', NULL, user_id, org_id, user_id, '{}' FROM org_members;
SELECT 'users=' || (SELECT COUNT(*) FROM users) || ' members=' || (SELECT COUNT(*) FROM org_members)
    || ' audit=' || (SELECT COUNT(*) FROM audit_log);
EOF
}

# measure USERS: one fresh server, seeded to USERS accounts, every load.
measure() {
  local n=$1 prefix="scale-$RANDOM$RANDOM" port dir pid base tok members org_id cursor
  local admin="/api/v1/admin/users"
  members=$((n < MEMBERS ? n : MEMBERS))
  port=$(free_port)
  dir=$WORK/data-$n
  mkdir -p "$dir"
  cat >"$WORK/derp-$n.toml" <<EOF
[server]
bind = "$HOST:$port"
data_dir = "$dir"
log_format = "json"

[auth.native]
enable_confirmation = false

[auth.native.jwt]
access_token_expire_minutes = 60

[admin]
service_keys = ["$SERVICE_KEY"]

[rate_limit]
sign_in_per_ip = 0
sign_in_per_account = 0
sign_up_per_ip = 0
email_per_address = 0
EOF
  base="http://$HOST:$port"
  log "$n users: starting derp on $HOST:$port"
  RUST_LOG=warn DERP_BIND="$HOST:$port" "$DERP_BIN" serve --config "$WORK/derp-$n.toml" >"$WORK/derp-$n.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  timeout 90 python3 "$HELPER" wait "$base/healthz" 60 2>>"$WORK/derp-$n.log" \
    || die "derp did not become ready (see $WORK/derp-$n.log)"
  timeout 60 python3 "$HELPER" seed-users derp "$base" "$prefix" 1 2>>"$WORK/helper.log" \
    || die "signing up $prefix-0 failed (see $WORK/helper.log)"
  log "$n users: seeding (examples/seed_sql, one transaction)"
  local t0=$SECONDS
  seed "$dir" "$prefix" "$n" "$members" >"$WORK/seed-$n.log" 2>&1 || die "seeding failed (see $WORK/seed-$n.log)"
  log "$n users: seeded in $((SECONDS - t0)) s: $(tail -1 "$WORK/seed-$n.log")"
  put "seed_s.$n" "$((SECONDS - t0))"

  timeout 60 python3 "$HELPER" tokens derp "$base" "$prefix" 1 1 access "$WORK/token-$n" 2>>"$WORK/helper.log" \
    || die "no access token (see $WORK/helper.log)"
  tok=$(head -1 "$WORK/token-$n")
  org_id=0190bbbb-0000-7000-8000-000000000001

  log "$n users: sign-in"
  put c.signin "$C_HASH"
  for run in $(seq "$RUNS"); do
    run_wrk "$WORK/wrk/$n.signin.$run.txt" "$C_HASH" "$base/" "$LUA/signin.lua" derp "$n" "$prefix"
  done
  # search_one: the last account's number, with the "@" that ends it, matches
  # that account only.
  local -A paths=(
    [search_common]="$admin?q=bench&limit=50"
    [search_one]="$admin?q=-$((n - 1))%40&limit=50"
    [search_short]="$admin?q=zq&limit=50"
    [members]="/api/v1/orgs/$org_id/members?limit=50"
  )
  # Second pages use limit=16, so that 32 users have one too.
  cursor=$(timeout 30 python3 "$HELPER" next-cursor "$base$admin?q=bench&limit=16" "$SERVICE_KEY") \
    || die "no second page of admin users"
  paths[search_page2]="$admin?q=bench&limit=16&cursor=$cursor"
  cursor=$(timeout 30 python3 "$HELPER" next-cursor "$base/api/v1/orgs/$org_id/members?limit=16" "$tok") \
    || die "no second page of org members"
  paths[members_page2]="/api/v1/orgs/$org_id/members?limit=16&cursor=$cursor"
  local test key code
  for test in search_common search_one search_page2 search_short members members_page2; do
    [[ -n ${paths[$test]:-} ]] || { log "$n users: $test: no such page"; continue; }
    key=$tok
    [[ $test == search_* ]] && key=$SERVICE_KEY
    code=$(timeout 30 python3 - "$base${paths[$test]}" "$key" <<'EOF'
import sys, urllib.request
req = urllib.request.Request(sys.argv[1], headers={"Authorization": "Bearer " + sys.argv[2]})
try:
    with urllib.request.urlopen(req, timeout=10) as r:
        print(r.status)
except urllib.error.HTTPError as e:
    print(e.code)
EOF
    ) || code=failed
    [[ $code == 200 ]] || { log "$n users: $test answers $code: skipped"; continue; }
    put "c.$test" "$C_LIGHT"
    log "$n users: $test"
    for run in $(seq "$RUNS"); do
      run_wrk "$WORK/wrk/$n.$test.$run.txt" "$C_LIGHT" "$base/" "$LUA/bearer_get.lua" "${paths[$test]}" "$key"
    done
  done
  kill -0 "$pid" 2>/dev/null || die "derp died during the $n-user loads (see $WORK/derp-$n.log)"
  stop_pid "$pid"
  "$PLANS_BIN" "$dir" >"$WORK/plans-$n.txt" 2>&1 || true
}

cpu_snapshot start
measure "$SMALL"
measure "$BIG"
cpu_snapshot end
put load_end "$(cut -d' ' -f1 /proc/loadavg)"
log "done in $((SECONDS - STARTED)) s"

python3 "$HELPER" scale-report "$WORK"
echo
echo "EXPLAIN QUERY PLAN at $BIG users (examples/query_plans.rs):"
sed 's/^/  /' "$WORK/plans-$BIG.txt"

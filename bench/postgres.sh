#!/usr/bin/env bash
# derp on PostgreSQL, one and two instances, beside derp on SQLite and
# Better Auth on the same PostgreSQL: `bench/postgres.sh`. Same loads as
# bench/run.sh's rows (sign-ups, sign-ins, refreshes, GET /session), driven
# by wrk on 127.0.0.1; with two instances, one wrk per instance with half
# the connections each, and their rates summed. PostgreSQL is Debian's
# (tests/postgres/install.sh), in a throwaway cluster with its shipped
# durability (fsync on). Prints one table (the median run of each load).
#
# bench/run.sh calls it for the PostgreSQL rows of its own table, with
# BENCH_PG_WORK (its work directory: the wrk outputs go to its wrk/) and
# BENCH_PG_SETUPS and its binary (BENCH_PG_DERP_BIN). Knobs: BENCH_DURATION (s per wrk run, 8), BENCH_RUNS (2),
# BENCH_C_HASH (8), BENCH_C_LIGHT (32), BENCH_SKIP_PEER=1, BENCH_PG_SETUPS
# (a list of: sqlite pg1 pg2 peer_pg1 peer_pg2; all by default, the peer's
# only when its npm packages are installed: bench/run.sh installs them).
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
PEER_DIR=$BENCH_DIR/peers/better-auth
LUA=$BENCH_DIR/lua
HELPER=$BENCH_DIR/helper.py
DURATION=${BENCH_DURATION:-8}
RUNS=${BENCH_RUNS:-2}
C_HASH=${BENCH_C_HASH:-8}
C_LIGHT=${BENCH_C_LIGHT:-32}
SEED_USERS=32
HOST=127.0.0.1
STARTED=$SECONDS
WORK=${BENCH_PG_WORK:-$(mktemp -d /tmp/derp-pgbench.XXXXXX)}
mkdir -p "$WORK/wrk"
PG_DIR=$(mktemp -d /tmp/derp-pgb.XXXXXX)
PIDS=()

SETUPS=${BENCH_PG_SETUPS:-sqlite pg1 pg2 peer_pg1 peer_pg2}
if [[ ${BENCH_SKIP_PEER:-0} == 1 ]]; then SETUPS=${SETUPS//peer_pg1/}; SETUPS=${SETUPS//peer_pg2/}; fi

log() { printf '[pgbench %3ds] %s\n' $((SECONDS - STARTED)) "$*" >&2; }
die() { log "error: $*"; log "logs: $WORK"; exit 1; }
stop_all() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  PIDS=()
}
cleanup() {
  stop_all
  "$ROOT/tests/postgres/cluster.sh" stop "$PG_DIR"
  rm -rf "$PG_DIR"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

if [[ $SETUPS == *peer_pg* ]] && ! (cd "$PEER_DIR" && timeout 30 node -e "require('better-auth'); require('pg')") >/dev/null 2>&1; then
  log "the peer is not installed (bench/run.sh installs it, or: npm ci in bench/peers/better-auth): its rows are skipped"
  SETUPS=${SETUPS//peer_pg1/}
  SETUPS=${SETUPS//peer_pg2/}
fi

command -v wrk >/dev/null || { timeout 300 apt-get install -y -qq wrk >/dev/null 2>&1 || die "install wrk"; }
"$ROOT/tests/postgres/install.sh"
DERP_BIN=${BENCH_PG_DERP_BIN:-}
if [[ -z $DERP_BIN ]]; then
  # The same build as run.sh's (its examples' dev-dependencies turn on
  # features): one binary for both, and no rebuild after either.
  log "building derp (release)"
  (cd "$ROOT" && timeout 1800 cargo build --release --quiet --bin derp --example argon2_cost --example fixed_rate) \
    || die "build failed"
  DERP_BIN=$ROOT/target/release/derp
fi
PG_PORT=$(free_port)
PG_URL="$("$ROOT/tests/postgres/cluster.sh" start "$PG_DIR" "$PG_PORT")"

# config DIR PORT STORAGE: a derp.toml for one instance.
config() {
  cat >"$1/derp.toml" <<EOF
[server]
bind = "$HOST:$2"
public_url = "http://derp.bench"
data_dir = "$1/data"
log_format = "json"
$3
[auth.native]
enable_confirmation = false
[auth.native.jwt]
access_token_expire_minutes = 60
[rate_limit]
sign_in_per_ip = 0
sign_in_per_account = 0
sign_up_per_ip = 0
email_per_address = 0
EOF
}

# start_derp DIR PORT / start_peer DIR PORT DATABASE: one server, ready.
start_derp() {
  RUST_LOG=warn DERP_BIND="$HOST:$2" "$DERP_BIN" serve --config "$1/derp.toml" >"$1/server.log" 2>&1 &
  PIDS+=($!)
  timeout 90 python3 "$HELPER" wait "http://$HOST:$2/healthz" 60 2>>"$1/server.log" || die "derp did not start ($1/server.log)"
}
# pg reads a libpq URL, not the keyword form: the cluster listens on a
# socket in $PG_DIR.
peer_url() { echo "postgresql://postgres@localhost:$PG_PORT/$1?host=$PG_DIR"; }
start_peer() {
  (cd "$PEER_DIR" && NODE_ENV=production PORT=$2 DATABASE_URL="$(peer_url "$3")" exec node server.mjs) >"$1/server.log" 2>&1 &
  PIDS+=($!)
  timeout 90 python3 "$HELPER" wait "http://$HOST:$2/healthz" 60 2>>"$1/server.log" || die "the peer did not start ($1/server.log)"
}

# load LABEL TEST URLS CONNS SCRIPT ARGS...: RUNS runs, one wrk per URL at
# once (CONNS and wrk's 2 threads split between them), each writing
# wrk/LABEL.TEST.RUN.INSTANCE.txt (helper.py sums the instances of a run).
load() {
  local label=$1 test=$2 urls=$3 conns=$4 script=$5
  shift 5
  local n run i url args wrks pid
  read -ra list <<<"$urls"
  n=${#list[@]}
  for run in $(seq "$RUNS"); do
    i=0
    wrks=()
    for url in "${list[@]}"; do
      args=("$@")
      if [[ $script == refresh.lua ]]; then args=("${args[0]}.$run.$i" "$((2 / n))"); fi
      timeout -k 5 $((DURATION + 30)) wrk -t$((2 / n)) -c$((conns / n)) -d"${DURATION}s" --timeout 10s --latency \
        -s "$LUA/$script" "$url/" -- "${args[@]}" >"$WORK/wrk/$label.$test.$run.$i.txt" 2>&1 &
      wrks+=($!)
      i=$((i + 1))
    done
    for pid in "${wrks[@]}"; do wait "$pid" || true; done
    # A run counts only whole: every instance's wrk reported.
    for i in $(seq 0 $((n - 1))); do
      grep -q '^Requests/sec:' "$WORK/wrk/$label.$test.$run.$i.txt" \
        || die "wrk against instance $i gave no figures: $WORK/wrk/$label.$test.$run.$i.txt"
    done
  done
}

# bench_setup LABEL: start the setup's servers, seed, run every load, stop.
bench_setup() {
  local label=$1 target=derp count=1 storage="" db="" i dir port urls="" first=""
  case $label in
    sqlite) ;;
    pg1 | pg2) db=derp_$label ;;
    peer_pg1 | peer_pg2) target=peer db=$label ;;
    *) die "unknown setup $label" ;;
  esac
  [[ $label == *2 ]] && count=2
  if [[ -n $db ]]; then
    psql "$PG_URL" -qc "CREATE DATABASE $db" || die "CREATE DATABASE $db"
    storage=$(printf '[storage]\nengine = "postgres"\nurl = "%s dbname=%s"' "$PG_URL" "$db")
  fi
  if [[ $target == peer ]]; then
    (cd "$PEER_DIR" && DATABASE_URL="$(peer_url "$db")" timeout 60 node server.mjs --migrate) >"$WORK/$label.migrate.log" 2>&1 \
      || die "the peer's migration failed ($WORK/$label.migrate.log)"
  fi
  for i in $(seq "$count"); do
    dir="$WORK/pg/$label.$i"
    port=$(free_port)
    mkdir -p "$dir/data"
    if [[ $target == peer ]]; then
      start_peer "$dir" "$port" "$db"
    else
      # Every instance seals with the first one's key.
      if [[ $i -gt 1 ]]; then cp "$WORK/pg/$label.1/data/secrets.key" "$dir/data/secrets.key"; fi
      config "$dir" "$port" "$storage"
      start_derp "$dir" "$port"
    fi
    urls+="http://$HOST:$port "
    [[ -n $first ]] || first="http://$HOST:$port"
  done
  local prefix="pgb-$RANDOM$RANDOM" name="${target}_$label" tok session_path=/api/v1/auth/session
  [[ $label == sqlite ]] && name=derp_sqlite
  [[ $target == peer ]] && { name=$label; session_path=/api/auth/get-session; }
  log "$name: seeding $SEED_USERS accounts"
  timeout 300 python3 "$HELPER" seed-users "$target" "$first" "$prefix" "$SEED_USERS" 2>>"$WORK/pg-helper.log" || die "seeding failed"
  timeout 60 python3 "$HELPER" tokens "$target" "$first" "$prefix" "$SEED_USERS" 1 access "$WORK/$name.session-token" \
    2>>"$WORK/pg-helper.log" || die "no session token"
  tok=$(head -1 "$WORK/$name.session-token")
  log "$name: sign-ups"
  load "$name" signup "$urls" "$C_HASH" signup.lua "$target"
  log "$name: sign-ins"
  load "$name" signin "$urls" "$C_HASH" signin.lua "$target" "$SEED_USERS" "$prefix"
  if [[ $target == derp ]]; then
    log "$name: refreshes (seeding $((C_LIGHT + 2)) fresh tokens per instance and run)"
    local run j
    for run in $(seq "$RUNS"); do
      for j in $(seq 0 $((count - 1))); do
        timeout 120 python3 "$HELPER" tokens derp "$first" "$prefix" "$SEED_USERS" $((C_LIGHT + 2)) refresh \
          "$WORK/$name.refresh-tokens.$run.$j" 2>>"$WORK/pg-helper.log" || die "token seeding failed"
      done
    done
    load "$name" refresh "$urls" "$C_LIGHT" refresh.lua "$WORK/$name.refresh-tokens"
  fi
  log "$name: /session"
  load "$name" session "$urls" "$C_LIGHT" bearer_get.lua "$session_path" "$tok"
  stop_all
}

for setup in $SETUPS; do bench_setup "$setup"; done
printf 'pg.setups=%s\npg.runs=%s\npg.duration=%s\npg.version=%s\n' "$SETUPS" "$RUNS" "$DURATION" \
  "$(psql "$PG_URL" -Atc 'SHOW server_version' | cut -d' ' -f1)" >>"$WORK/results.env"
python3 "$HELPER" pg-report "$WORK"
log "done in $((SECONDS - STARTED)) s; logs in $WORK"

#!/usr/bin/env bash
# derp on SQLite beside derp on PostgreSQL, one and two instances:
# `bench/postgres.sh`. Same loads as bench/run.sh's derp rows (sign-ups,
# sign-ins, refreshes, GET /session), driven by wrk on 127.0.0.1; with two
# instances, one wrk per instance with half the connections each, and the
# rates summed. PostgreSQL is Debian's (tests/postgres/install.sh), in a
# throwaway cluster with its shipped durability (fsync on). Prints one table.
# Knobs: BENCH_DURATION (s per wrk run, 8), BENCH_RUNS (2: the best run is
# kept), BENCH_C_HASH (8), BENCH_C_LIGHT (32).
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
LUA=$BENCH_DIR/lua
HELPER=$BENCH_DIR/helper.py
DURATION=${BENCH_DURATION:-8}
RUNS=${BENCH_RUNS:-2}
C_HASH=${BENCH_C_HASH:-8}
C_LIGHT=${BENCH_C_LIGHT:-32}
SEED_USERS=32
HOST=127.0.0.1
STARTED=$SECONDS
WORK=$(mktemp -d /tmp/derp-pgbench.XXXXXX)
PG_DIR=$(mktemp -d /tmp/derp-pgb.XXXXXX)
PIDS=()

log() { printf '[pgbench %3ds] %s\n' $((SECONDS - STARTED)) "$*" >&2; }
die() { log "error: $*"; log "logs: $WORK"; exit 1; }
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  "$ROOT/tests/postgres/cluster.sh" stop "$PG_DIR"
  rm -rf "$PG_DIR"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

command -v wrk >/dev/null || { timeout 300 apt-get install -y -qq wrk >/dev/null 2>&1 || die "install wrk"; }
"$ROOT/tests/postgres/install.sh"
log "building derp (release)"
(cd "$ROOT" && cargo build --release --locked --quiet) || die "build failed"
DERP_BIN=$ROOT/target/release/derp
PG_URL="$("$ROOT/tests/postgres/cluster.sh" start "$PG_DIR" "$(free_port)")"

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

# start DIR PORT: one derp, ready.
start() {
  RUST_LOG=warn DERP_BIND="$HOST:$2" "$DERP_BIN" serve --config "$1/derp.toml" >"$1/derp.log" 2>&1 &
  PIDS+=($!)
  timeout 90 python3 "$HELPER" wait "http://$HOST:$2/healthz" 60 2>>"$1/derp.log" || die "derp did not start ($1/derp.log)"
}

# rps FILE...: the summed Requests/sec of wrk outputs; p99 of the first.
rps() { awk '/^Requests\/sec:/ {s += $2} END {printf "%.0f", s}' "$@"; }
p99() { awk '$1 == "99%" {print $2; exit}' "$1"; }

# load NAME URLS CONNS SCRIPT ARGS...: RUNS runs, one wrk per URL at once
# (CONNS split between them); prints the best run's "rate p99".
load() {
  local name=$1 urls=$2 conns=$3 script=$4; shift 4
  local n best=0 best_p99=- run i files rate
  read -ra list <<<"$urls"
  n=${#list[@]}
  for run in $(seq "$RUNS"); do
    files=()
    i=0
    for url in "${list[@]}"; do
      local out="$WORK/$name.$run.$i.txt"
      files+=("$out")
      local args=("$@")
      if [[ $script == refresh.lua ]]; then args=("${args[0]}.$i" "$((2 / n))"); fi
      timeout -k 5 $((DURATION + 30)) wrk -t$((2 / n)) -c$((conns / n)) -d"${DURATION}s" --timeout 10s --latency \
        -s "$LUA/$script" "$url/" -- "${args[@]}" >"$out" 2>&1 &
      i=$((i + 1))
    done
    wait
    rate=$(rps "${files[@]}")
    if ((rate > best)); then best=$rate; best_p99=$(p99 "${files[0]}"); fi
  done
  echo "$best $best_p99"
}

declare -A RESULT
# bench_setup LABEL STORAGE INSTANCES
bench_setup() {
  local label=$1 storage=$2 count=$3 urls="" first="" i
  local prefix="pgb-$RANDOM$RANDOM"
  for i in $(seq "$count"); do
    local dir="$WORK/$label.$i" port
    port=$(free_port)
    mkdir -p "$dir/data"
    # Every instance seals with the first one's key.
    if [[ $i -gt 1 ]]; then cp "$WORK/$label.1/data/secrets.key" "$dir/data/secrets.key"; fi
    config "$dir" "$port" "$storage"
    start "$dir" "$port"
    urls+="http://$HOST:$port "
    if [[ -z $first ]]; then first="http://$HOST:$port"; fi
  done
  log "$label: seeding $SEED_USERS accounts"
  timeout 300 python3 "$HELPER" seed-users derp "$first" "$prefix" "$SEED_USERS" 2>>"$WORK/helper.log" || die "seeding failed"
  timeout 60 python3 "$HELPER" tokens derp "$first" "$prefix" "$SEED_USERS" 1 access "$WORK/$label.session-token" 2>>"$WORK/helper.log"
  local tok
  tok=$(head -1 "$WORK/$label.session-token")
  log "$label: sign-ups"
  RESULT[$label.signup]=$(load "$label.signup" "$urls" "$C_HASH" signup.lua derp)
  log "$label: sign-ins"
  RESULT[$label.signin]=$(load "$label.signin" "$urls" "$C_HASH" signin.lua derp "$SEED_USERS" "$prefix")
  log "$label: refreshes"
  local seeds=$((C_LIGHT + 2)) run j
  for run in $(seq "$RUNS"); do
    for j in $(seq 0 $((count - 1))); do
      timeout 120 python3 "$HELPER" tokens derp "$first" "$prefix" "$SEED_USERS" "$seeds" refresh \
        "$WORK/$label.refresh-tokens.$j" 2>>"$WORK/helper.log" || die "token seeding failed"
    done
    RESULT[$label.refresh.$run]=$(RUNS=1 load "$label.refresh.$run" "$urls" "$C_LIGHT" refresh.lua "$WORK/$label.refresh-tokens" 2)
  done
  RESULT[$label.refresh]=$(printf '%s\n' "${RESULT[$label.refresh.1]}" "${RESULT[$label.refresh.${RUNS}]}" | sort -n | tail -1)
  log "$label: /session"
  RESULT[$label.session]=$(load "$label.session" "$urls" "$C_LIGHT" bearer_get.lua /api/v1/auth/session "$tok")
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  PIDS=()
}

bench_setup sqlite "" 1
PG_STORAGE=$(printf '[storage]\nengine = "postgres"\nurl = "%s dbname=derp_one"' "$PG_URL")
psql "$PG_URL" -qc 'CREATE DATABASE derp_one' && psql "$PG_URL" -qc 'CREATE DATABASE derp_two'
bench_setup pg1 "$PG_STORAGE" 1
bench_setup pg2 "${PG_STORAGE/derp_one/derp_two}" 2

row() { # LABEL KEY
  local v=${RESULT[$1.$2]:-"- -"}
  printf '%s (p99 %s)' "${v%% *}" "${v##* }"
}
echo
echo "derp on SQLite and on PostgreSQL ($(nproc) cores, ${DURATION}s runs, best of $RUNS; $(date -u +%F))"
echo
printf '| load | SQLite, 1 instance | PostgreSQL, 1 instance | PostgreSQL, 2 instances |\n'
printf '| --- | --- | --- | --- |\n'
for key in signup signin refresh session; do
  printf '| %s/s | %s | %s | %s |\n' "$key" "$(row sqlite $key)" "$(row pg1 $key)" "$(row pg2 $key)"
done
echo
log "done in $((SECONDS - STARTED)) s; logs in $WORK"

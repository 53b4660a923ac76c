#!/usr/bin/env bash
# derp's benchmark, with Better Auth side by side: `bench/run.sh`.
#
# Installs wrk if missing, builds derp in release mode, installs the peer's
# npm packages, then runs every load with wrk against 127.0.0.1 only and
# prints one table on stdout. Progress goes to stderr, everything else to log
# files in a temporary directory whose path the table ends with.
# Webhook deliveries are measured by bench/webhooks/run.py (its own derp and
# a Node receiver) once the main derp has stopped.
# See bench/README.md. Knobs (environment): BENCH_DURATION (s per wrk run and
# for the idle-machine pause probe, 8),
# BENCH_RUNS (3), BENCH_C_HASH (connections on hash-bound paths, 8),
# BENCH_C_LIGHT (connections on the others, 32), BENCH_SKIP_PEER=1,
# BENCH_SKIP_PG=1 (no PostgreSQL rows).
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
PEER_DIR=$BENCH_DIR/peers/better-auth
LUA=$BENCH_DIR/lua
HELPER=$BENCH_DIR/helper.py

DURATION=${BENCH_DURATION:-8}
RUNS=${BENCH_RUNS:-3}
PROBE_SECONDS=$DURATION          # the idle-machine pause probe (examples/stall_probe.rs)
C_HASH=${BENCH_C_HASH:-8}
C_LIGHT=${BENCH_C_LIGHT:-32}
THREADS=2
SEED_USERS=32                 # accounts the sign-in loads cycle over
REFRESH_SEEDS=$((C_LIGHT + THREADS)) # fresh refresh tokens per refresh run: one per connection, plus
                              # one per thread for the request wrk builds and drops at start
HOST=127.0.0.1
WRK_TIMEOUT=$((DURATION + 30)) # hard bound on one wrk process
STARTED=$SECONDS

WORK=$(mktemp -d /tmp/derp-bench.XXXXXX)
mkdir -p "$WORK/wrk"
RESULTS=$WORK/results.env
: >"$RESULTS"

PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '[bench %3ds] %s\n' $((SECONDS - STARTED)) "$*" >&2; }
die() { log "error: $*"; log "logs: $WORK"; exit 1; }
put() { printf '%s=%s\n' "$1" "$2" >>"$RESULTS"; }
# CPU accounting, to tell whether other processes competed for the cores:
# busy ticks of the whole machine, and this script's own CPU (itself plus
# every child it has waited for: servers, wrk, helpers).
cpu_snapshot() { # TAG
  awk '/^cpu / {print $2+$3+$4+$7+$8+$9}' /proc/stat >"$WORK/cpu.$1.ticks"
  date +%s.%N >"$WORK/cpu.$1.wall"
  times >"$WORK/cpu.$1.own"
}
# cpu_split PID: CPU ticks (1/100 s) of the server's password-hashing
# threads (derp names them derp-hash-N), of its other threads, and of the
# whole machine's idle time, then the wall clock, on one line. Tells how the cores were shared
# during a load: what hashing got, what serving took, what nobody used.
cpu_split() {
  local t line comm hash=0 other=0
  for t in /proc/"$1"/task/*; do
    read -r line <"$t/stat" 2>/dev/null || continue
    comm=${line#*(}
    comm=${comm%%)*}
    set -- ${line##*) }
    if [[ $comm == derp-hash-* ]]; then hash=$((hash + ${12} + ${13})); else other=$((other + ${12} + ${13})); fi
  done
  echo "$hash $other $(awk '/^cpu / {print $5+$6}' /proc/stat) $EPOCHREALTIME"
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Stops one server started here (by PID) and forgets it.
stop_pid() {
  local pid=$1 keep=() p
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  for p in "${PIDS[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}

# Samples the VmRSS of PID into FILE every 0.5 s while PID lives.
sample_rss() {
  local pid=$1 file=$2
  while kill -0 "$pid" 2>/dev/null; do
    awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null >>"$file" || true
    sleep 0.5
  done
}

# run_wrk OUT CONNS THREADS URL [SCRIPT [SCRIPT ARGS...]]: one bounded wrk run.
run_wrk() {
  local out=$1 c=$2 t=$3 url=$4 script=()
  shift 4
  if [[ $# -gt 0 ]]; then script=(-s "$1"); shift; fi
  timeout -k 5 "$WRK_TIMEOUT" wrk -t"$t" -c"$c" -d"${DURATION}s" --timeout 10s --latency "${script[@]}" "$url" \
    ${1+--} "$@" >"$out" 2>&1 || echo "wrk exited with $?" >>"$out"
}

# ---------------------------------------------------------------- tools ---
install_wrk() {
  command -v wrk >/dev/null && return 0
  command -v apt-get >/dev/null || die "wrk is missing and there is no apt-get to install it"
  log "installing wrk (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  if ! timeout 300 apt-get install -y wrk >>"$WORK/apt.log" 2>&1; then
    timeout 300 apt-get update >>"$WORK/apt.log" 2>&1 || true
    timeout 300 apt-get install -y wrk >>"$WORK/apt.log" 2>&1 || die "cannot install wrk (see $WORK/apt.log)"
  fi
}
install_wrk
command -v python3 >/dev/null || die "python3 is required"
command -v cargo >/dev/null || die "cargo (the Rust toolchain) is required"

CORES=$(nproc)
put cores "$CORES"
put cpu "$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo | sed 's/  */ /g')"
put runs "$RUNS"
put duration "$DURATION"
put c_hash "$C_HASH"
put c_light "$C_LIGHT"
put refresh_seeds "$REFRESH_SEEDS"
put load_start "$(cut -d' ' -f1 /proc/loadavg)"
put derp.commit "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet HEAD -- src Cargo.toml 2>/dev/null || echo '+dirty')"

# ---------------------------------------------------------------- build ---
log "building derp (cargo build --release; log: $WORK/cargo.log)"
(cd "$ROOT" && timeout 1800 cargo build --release --bin derp --example argon2_cost --example fixed_rate --example stall_probe) >"$WORK/cargo.log" 2>&1 \
  || die "cargo build --release failed: $(grep -m1 '^error' "$WORK/cargo.log" || tail -1 "$WORK/cargo.log")"
DERP_BIN=$ROOT/target/release/derp
FIXED_RATE=$ROOT/target/release/examples/fixed_rate
put derp.version "$("$DERP_BIN" --version 2>/dev/null | awk '{print $NF}' || true)"

log "timing one argon2id hash (examples/argon2_cost.rs)"
ARGON=$(timeout 120 "$ROOT/target/release/examples/argon2_cost" 20) || die "argon2_cost failed"
put derp.hash_ms "$(sed -n 's/.*mean_ms=\([0-9.]*\).*/\1/p' <<<"$ARGON")"
put derp.hash_par "$(sed -n 's/.*hashes_per_s=\([0-9.]*\).*/\1/p' <<<"$ARGON")"

STALL_PROBE=("$ROOT/target/release/examples/stall_probe")
# As real-time threads when allowed (root or CAP_SYS_NICE): then no thread
# of normal priority can delay them, and what they meet are the machine's
# own pauses.
if ! command -v chrt >/dev/null 2>&1; then
  put probe.policy "normal priority: chrt is missing"
elif chrt -f 50 true 2>/dev/null; then
  STALL_PROBE=(chrt -f 50 "${STALL_PROBE[@]}")
  put probe.policy "real-time, SCHED_FIFO 50"
else
  put probe.policy "normal priority: SCHED_FIFO is not allowed here"
fi
log "probing the idle machine for pauses (examples/stall_probe.rs, ${PROBE_SECONDS}s)"
# A diagnostic: if it fails, the loads still run and its rows say so.
PROBE=$(timeout $((PROBE_SECONDS + 30)) "${STALL_PROBE[@]}" "$PROBE_SECONDS") || {
  log "stall_probe failed: no pause figures"
  PROBE=""
}
for k in late_1ms_per_s max_ms lost_pct steal_pct; do
  put "probe.$k" "$(sed -n "s/.*\b$k=\([0-9.na]*\).*/\1/p" <<<"$PROBE")"
done

# ----------------------------------------------------------------- peer ---
PEER_REASON=""
peer_setup() {
  if [[ ${BENCH_SKIP_PEER:-0} == 1 ]]; then PEER_REASON="skipped: BENCH_SKIP_PEER=1"; return 1; fi
  command -v node >/dev/null || { PEER_REASON="node not found"; return 1; }
  command -v npm >/dev/null || { PEER_REASON="npm not found"; return 1; }
  put node.version "$(node --version)"
  local stamp probe="new (require('better-sqlite3'))(':memory:').close()"
  stamp="$(cat "$PEER_DIR/package.json" "$PEER_DIR/package-lock.json" | sha256sum | cut -c1-16) $(node --version)"
  if [[ -f $PEER_DIR/node_modules/.bench-stamp && "$(cat "$PEER_DIR/node_modules/.bench-stamp")" == "$stamp" ]] \
    && (cd "$PEER_DIR" && timeout 30 node -e "$probe") >>"$WORK/npm.log" 2>&1; then
    return 0
  fi
  log "installing the peer's npm packages (npm ci; log: $WORK/npm.log)"
  # build_from_source: compile better-sqlite3 against the local Node headers
  # rather than fetching a prebuilt binary from outside the npm registry.
  if ! (cd "$PEER_DIR" && npm_config_build_from_source=true timeout 900 npm ci --no-audit --no-fund) \
    >>"$WORK/npm.log" 2>&1; then
    PEER_REASON="npm ci failed: $(grep -m1 -iE 'npm (error|ERR!)' "$WORK/npm.log" | cut -c1-100 || echo 'see npm.log')"
    return 1
  fi
  if ! (cd "$PEER_DIR" && timeout 30 node -e "$probe") >>"$WORK/npm.log" 2>&1; then
    log "better-sqlite3 has no native binding yet: npm rebuild"
    (cd "$PEER_DIR" && npm_config_build_from_source=true timeout 900 npm rebuild better-sqlite3 --foreground-scripts) \
      >>"$WORK/npm.log" 2>&1 || true
    (cd "$PEER_DIR" && timeout 30 node -e "$probe") >>"$WORK/npm.log" 2>&1 \
      || { PEER_REASON="better-sqlite3 native module does not load (see npm.log)"; return 1; }
  fi
  echo "$stamp" >"$PEER_DIR/node_modules/.bench-stamp"
}
PEER_OK=0
if peer_setup; then
  PEER_OK=1
  put peer.version "$(cd "$PEER_DIR" && node -p "require('./node_modules/better-auth/package.json').version" 2>/dev/null || echo '?')"
  put peer.sqlite_version "$(cd "$PEER_DIR" && node -p "require('./node_modules/better-sqlite3/package.json').version" 2>/dev/null || echo '?')"
  log "timing one scrypt hash (Better Auth's own hashPassword)"
  if SCRYPT=$(cd "$PEER_DIR" && timeout 120 node server.mjs --hash-cost 20 2>>"$WORK/peer-hash.log"); then
    put peer.hash_ms "$(sed -n 's/.*mean_ms=\([0-9.]*\).*/\1/p' <<<"$SCRYPT")"
    put peer.hash_par "$(sed -n 's/.*hashes_per_s=\([0-9.]*\).*/\1/p' <<<"$SCRYPT")"
  fi
else
  log "peer unavailable: $PEER_REASON"
fi

# --------------------------------------------------------------- targets ---
# bench_target NAME PID BASE: every load against one running server.
bench_target() {
  local name=$1 pid=$2 base=$3 prefix="bench-signin-$RANDOM$RANDOM" run tok out
  local lua_target=$name
  local session_path=/api/v1/auth/session
  [[ $name == peer ]] && session_path=/api/auth/get-session

  sample_rss "$pid" "$WORK/$name.rss" &
  PIDS+=($!)

  log "$name: seeding $SEED_USERS accounts"
  timeout 300 python3 "$HELPER" seed-users "$name" "$base" "$prefix" "$SEED_USERS" 2>>"$WORK/$name.helper.log" \
    || { log "$name: seeding failed (see $WORK/$name.helper.log)"; return 1; }
  timeout 60 python3 "$HELPER" tokens "$name" "$base" "$prefix" "$SEED_USERS" 1 access "$WORK/$name.session-token" \
    2>>"$WORK/$name.helper.log" || { log "$name: no session token (see $WORK/$name.helper.log)"; return 1; }
  tok=$(head -1 "$WORK/$name.session-token")
  local check
  check=$(python3 - "$base$session_path" "$tok" <<'EOF'
import sys, urllib.request
req = urllib.request.Request(sys.argv[1], headers={"Authorization": "Bearer " + sys.argv[2]})
with urllib.request.urlopen(req, timeout=10) as r:
    body = r.read()
print(r.status if body.strip() not in (b"", b"null") else "empty")
EOF
  ) || check=failed
  [[ $check == 200 ]] || { log "$name: the session token does not work ($check)"; return 1; }

  for run in $(seq "$RUNS"); do
    log "$name: sign-up run $run/$RUNS"
    run_wrk "$WORK/wrk/$name.signup.$run.txt" "$C_HASH" $THREADS "$base/" "$LUA/signup.lua" "$lua_target"
  done
  for run in $(seq "$RUNS"); do
    log "$name: sign-in run $run/$RUNS"
    local before
    before=$(cpu_split "$pid")
    run_wrk "$WORK/wrk/$name.signin.$run.txt" "$C_HASH" $THREADS "$base/" \
      "$LUA/signin.lua" "$lua_target" "$SEED_USERS" "$prefix"
    put "$name.signin_cpu.$run" "$before $(cpu_split "$pid")"
  done
  # Sign-in + TOTP challenge: every run gets its own accounts with a TOTP
  # factor (each challenged at most once: no code is replayed), as many as
  # the plain sign-in rate of this run could use, twice over.
  local mfa_users mfa_steps=$(((DURATION + 60) / 30 + 3))
  mfa_users=$(python3 "$HELPER" mfa-users-count "$(python3 "$HELPER" median-rps "$WORK" "$name" signin)" \
    "$DURATION" "$C_HASH")
  put "$name.mfa_users" "$mfa_users"
  for run in $(seq "$RUNS"); do
    log "$name: sign-in + TOTP challenge run $run/$RUNS (seeding $mfa_users accounts with a TOTP factor)"
    timeout 600 python3 "$HELPER" mfa-users "$name" "$base" "$prefix-mfa$run" 0 "$mfa_users" "$mfa_steps" \
      "$WORK/$name.mfa-users.$run" 2>>"$WORK/$name.helper.log" || { log "$name: TOTP seeding failed"; continue; }
    run_wrk "$WORK/wrk/$name.mfa.$run.txt" "$C_HASH" "$C_HASH" "$base/" \
      "$LUA/mfa.lua" "$lua_target" "$WORK/$name.mfa-users.$run" "$C_HASH"
  done
  if [[ $name == derp ]]; then
    for run in $(seq "$RUNS"); do
      log "$name: refresh run $run/$RUNS (seeding $REFRESH_SEEDS tokens)"
      timeout 120 python3 "$HELPER" tokens "$name" "$base" "$prefix" "$SEED_USERS" "$REFRESH_SEEDS" refresh \
        "$WORK/$name.refresh-tokens.$run" 2>>"$WORK/$name.helper.log" || { log "$name: token seeding failed"; continue; }
      run_wrk "$WORK/wrk/$name.refresh.$run.txt" "$C_LIGHT" $THREADS "$base/" \
        "$LUA/refresh.lua" "$WORK/$name.refresh-tokens.$run" "$THREADS"
    done
    # The OIDC token endpoint: the same queue of single-use refresh tokens,
    # each from its own authorization-code flow (PKCE) of the bench client.
    local basic
    basic=$(python3 "$HELPER" oidc-basic)
    for run in $(seq "$RUNS"); do
      log "$name: OIDC refresh_token grant run $run/$RUNS (seeding $REFRESH_SEEDS tokens by the code flow)"
      timeout 300 python3 "$HELPER" oidc-tokens "$base" "$prefix" "$SEED_USERS" "$REFRESH_SEEDS" \
        "$WORK/$name.oidc-tokens.$run" 2>>"$WORK/$name.helper.log" || { log "$name: OIDC token seeding failed"; continue; }
      run_wrk "$WORK/wrk/$name.oidc_refresh.$run.txt" "$C_LIGHT" $THREADS "$base/" \
        "$LUA/refresh.lua" "$WORK/$name.oidc-tokens.$run" "$THREADS" oidc "$basic"
    done
  fi
  for run in $(seq "$RUNS"); do
    log "$name: /session run $run/$RUNS"
    run_wrk "$WORK/wrk/$name.session.$run.txt" "$C_LIGHT" $THREADS "$base/" \
      "$LUA/bearer_get.lua" "$session_path" "$tok"
  done
  for run in $(seq "$RUNS"); do
    log "$name: /healthz run $run/$RUNS"
    run_wrk "$WORK/wrk/$name.healthz.$run.txt" "$C_LIGHT" $THREADS "$base/healthz"
  done
  if [[ $name == derp ]]; then
    local code
    code=$(timeout 30 python3 "$HELPER" status "$base/login")
    if [[ $code == 200 ]]; then
      for run in $(seq "$RUNS"); do
        log "$name: /login run $run/$RUNS"
        run_wrk "$WORK/wrk/$name.login.$run.txt" "$C_LIGHT" $THREADS "$base/login"
      done
      # The same page in German, when derp serves it (<html lang="de">).
      if [[ $(timeout 30 python3 "$HELPER" status "$base/login" "Accept-Language: de") == "200 de" ]]; then
        for run in $(seq "$RUNS"); do
          log "$name: /login (Accept-Language: de) run $run/$RUNS"
          run_wrk "$WORK/wrk/$name.login_de.$run.txt" "$C_LIGHT" $THREADS "$base/" \
            "$LUA/get.lua" /login "Accept-Language" de
        done
      else
        put derp.login_de "n/a (no German page)"
      fi
    else
      put derp.login "n/a (not built yet)"
      log "$name: GET /login answers $code: not measured"
    fi
  fi
  for run in $(seq "$RUNS"); do
    log "$name: /session during a sign-in flood, run $run/$RUNS"
    run_wrk "$WORK/wrk/$name.mixed_signin.$run.txt" "$C_HASH" 1 "$base/" \
      "$LUA/signin.lua" "$lua_target" "$SEED_USERS" "$prefix" &
    local flood=$!
    PIDS+=("$flood")
    run_wrk "$WORK/wrk/$name.mixed_session.$run.txt" "$C_LIGHT" 1 "$base/" \
      "$LUA/bearer_get.lua" "$session_path" "$tok"
    wait "$flood" || true
    local keep=() p
    for p in "${PIDS[@]}"; do [[ $p == "$flood" ]] || keep+=("$p"); done
    PIDS=("${keep[@]}")
  done

  # Fair share: /session at a fixed rate, half of its median solo rate in
  # this run (examples/fixed_rate.rs, open loop: latency from the intended
  # send time), while sign-ins flood at c=C_HASH.
  local solo fair
  solo=$(python3 "$HELPER" median-rps "$WORK" "$name" session)
  fair=$(python3 -c "import sys; v=float(sys.argv[1]); print(int(v/2) if v==v else 0)" "$solo")
  put "$name.fair_rate" "$fair"
  if [[ $fair -gt 0 ]]; then
    for run in $(seq "$RUNS"); do
      log "$name: /session at $fair req/s with a sign-in flood, run $run/$RUNS"
      run_wrk "$WORK/wrk/$name.fair_signin.$run.txt" "$C_HASH" 1 "$base/" \
        "$LUA/signin.lua" "$lua_target" "$SEED_USERS" "$prefix" &
      local flood=$! before
      PIDS+=("$flood")
      before=$(cpu_split "$pid")
      # The machine's own pauses during derp's runs. Every 10 ms: each
      # wake-up makes the kernel choose again what runs on that CPU, and a
      # probe waking every millisecond may have changed the runs it watched
      # (bench/README.md, "The machine's pauses"); any pause over 10 ms
      # still covers one of its deadlines.
      local probe=""
      if [[ $name == derp ]]; then
        timeout -k 5 "$WRK_TIMEOUT" "${STALL_PROBE[@]}" "$DURATION" 10000 >"$WORK/$name.fair_probe.$run" 2>&1 &
        probe=$!
        PIDS+=("$probe")
      fi
      timeout -k 5 "$WRK_TIMEOUT" "$FIXED_RATE" "${base#http://}" "$session_path" "$fair" "$DURATION" 64 \
        "Authorization: Bearer $tok" >"$WORK/wrk/$name.fair_session.$run.txt" 2>&1 || true
      put "$name.fair_cpu.$run" "$before $(cpu_split "$pid")"
      if [[ -n $probe ]]; then
        wait "$probe" || true
        put "$name.fair_probe.$run" "$(sed -n 's/.*max_ms=\([0-9.]*\) lost_pct=\([0-9.]*\).*/\1 \2/p' "$WORK/$name.fair_probe.$run")"
      fi
      wait "$flood" || true
      local keep=() p
      for p in "${PIDS[@]}"; do [[ $p == "$flood" || ( -n $probe && $p == "$probe" ) ]] || keep+=("$p"); done
      PIDS=("${keep[@]}")
    done
  fi

  kill -0 "$pid" 2>/dev/null || { log "$name: the server died during the run"; return 1; }
  put "$name.vmhwm_kb" "$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status")"
  put "$name.rss_peak_kb" "$(sort -n "$WORK/$name.rss" | tail -1)"
}

cpu_snapshot start
# derp
DERP_PORT=$(free_port)
mkdir -p "$WORK/derp-data"
cat >"$WORK/derp.toml" <<EOF
[server]
bind = "$HOST:$DERP_PORT"
public_url = "http://$HOST:$DERP_PORT"
data_dir = "$WORK/derp-data"
log_format = "json"

[auth.native]
enable_confirmation = false

[auth.native.jwt]
access_token_expire_minutes = 60

[rate_limit]
sign_in_per_ip = 0
sign_in_per_account = 0
sign_up_per_ip = 0
email_per_address = 0

$(python3 "$HELPER" oidc-client)
EOF
log "derp: starting on $HOST:$DERP_PORT"
RUST_LOG=warn DERP_BIND="$HOST:$DERP_PORT" "$DERP_BIN" serve --config "$WORK/derp.toml" >"$WORK/derp.log" 2>&1 &
DERP_PID=$!
PIDS+=("$DERP_PID")
timeout 90 python3 "$HELPER" wait "http://$HOST:$DERP_PORT/healthz" 60 2>>"$WORK/derp.log" \
  || die "derp did not become ready (see $WORK/derp.log)"
bench_target derp "$DERP_PID" "http://$HOST:$DERP_PORT" || log "derp: benchmark incomplete"
stop_pid "$DERP_PID"

# Webhook deliveries per second: bench/webhooks/run.py with one endpoint
# (its own derp, fresh data, and a Node receiver that answers 204 at once),
# 250 events per second of BENCH_DURATION (at least 200), BENCH_RUNS times.
if command -v node >/dev/null; then
  WEBHOOK_EVENTS=$((DURATION * 250 > 200 ? DURATION * 250 : 200))
  put webhook_events "$WEBHOOK_EVENTS"
  for run in $(seq "$RUNS"); do
    log "derp: webhook deliveries run $run/$RUNS ($WEBHOOK_EVENTS events, 1 endpoint)"
    BENCH_WEBHOOK_EVENTS=$WEBHOOK_EVENTS BENCH_WEBHOOK_ENDPOINTS=1 timeout -k 10 900 \
      python3 "$BENCH_DIR/webhooks/run.py" --json "$WORK/wrk/derp.webhooks.$run.json" "$DERP_BIN" \
      >"$WORK/webhooks.$run.log" 2>&1 || log "derp: webhook run $run failed (see $WORK/webhooks.$run.log)"
  done
else
  put derp.webhooks "n/a (node not found)"
fi

# the peer
if [[ $PEER_OK == 1 ]]; then
  PEER_PORT=$(free_port)
  log "peer: migrating and starting Better Auth on $HOST:$PEER_PORT"
  if (cd "$PEER_DIR" && DB="$WORK/peer.db" timeout 60 node server.mjs --migrate) >"$WORK/peer.log" 2>&1; then
    (cd "$PEER_DIR" && NODE_ENV=production PORT=$PEER_PORT DB="$WORK/peer.db" exec node server.mjs) >>"$WORK/peer.log" 2>&1 &
    PEER_PID=$!
    PIDS+=("$PEER_PID")
    if timeout 90 python3 "$HELPER" wait "http://$HOST:$PEER_PORT/healthz" 60 2>>"$WORK/peer.log"; then
      if bench_target peer "$PEER_PID" "http://$HOST:$PEER_PORT"; then
        put peer.status ok
      else
        PEER_REASON="benchmark failed (see $WORK/peer.log)"
      fi
    else
      PEER_REASON="server did not become ready (see $WORK/peer.log)"
    fi
    stop_pid "$PEER_PID"
  else
    PEER_REASON="migration failed (see $WORK/peer.log)"
  fi
fi
[[ -n $PEER_REASON ]] && put peer.reason "$PEER_REASON"

# The foreign-CPU note covers the loads up to here: PostgreSQL's server
# processes below are not this script's children, so their CPU would count
# as other processes'.
put load_end "$(cut -d' ' -f1 /proc/loadavg)"
cpu_snapshot end

# PostgreSQL rows: derp with one and two instances on one PostgreSQL, and
# the peer on the same (bench/postgres.sh, into this work directory).
if [[ ${BENCH_SKIP_PG:-0} == 1 ]]; then
  put pg.reason "skipped: BENCH_SKIP_PG=1"
else
  PG_SETUPS="pg1 pg2"
  [[ $PEER_OK == 1 ]] && PG_SETUPS+=" peer_pg1 peer_pg2"
  log "PostgreSQL: $PG_SETUPS (bench/postgres.sh; log: $WORK/postgres.log)"
  if ! BENCH_PG_WORK=$WORK BENCH_PG_SETUPS=$PG_SETUPS BENCH_PG_DERP_BIN=$DERP_BIN BENCH_RUNS=$RUNS \
    timeout -k 10 3600 "$BENCH_DIR/postgres.sh" \
    >"$WORK/postgres.txt" 2>"$WORK/postgres.log"; then
    put pg.reason "bench/postgres.sh failed (see $WORK/postgres.log)"
    log "PostgreSQL: bench/postgres.sh failed (see $WORK/postgres.log)"
  fi
fi

for pid in "${PIDS[@]}"; do # only the RSS samplers are left; they end with their server
  for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
done
PIDS=()
put elapsed "$((SECONDS - STARTED))"
log "done in $((SECONDS - STARTED)) s"
python3 "$HELPER" report "$WORK"
